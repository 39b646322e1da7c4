/**
 * The block-dirty-bitmap-* commands (block/monitor/bitmap-qmp-cmds.c). Each
 * is an action with QEMU's transaction phases; run alone it is prepare then
 * commit, which is what QEMU's standalone handlers amount to.
 */
import type { BlockGraph } from '../block-graph';
import { ALLOW_RO, BUSY, DEFAULT_CHECKS, RO, checkBitmap, mergeBitmaps, type DirtyBitmap } from '../dirty-bitmap';
import { HBitmap } from '../hbitmap';
import { genericError } from '../qmp-error';
import { arrayOf, bool, str, struct, uint32, type QapiType } from './qapi';

export interface Action {
  prepare(): void;
  commit(): void;
  abort(): void;
  /** After commit or abort, for every action. */
  clean?(): void;
}

export interface BlockDirtyBitmap {
  node: string;
  name: string;
}

export interface BlockDirtyBitmapAdd extends BlockDirtyBitmap {
  granularity?: number;
  persistent?: boolean;
  disabled?: boolean;
}

export interface BlockDirtyBitmapMerge {
  node: string;
  target: string;
  bitmaps: Array<string | BlockDirtyBitmap>;
}

export const blockDirtyBitmapType = struct({ node: str, name: str });
export const blockDirtyBitmapAddType = struct({
  node: str,
  name: str,
  '*granularity': uint32,
  '*persistent': bool,
  '*disabled': bool,
});
export const blockDirtyBitmapMergeType: QapiType = struct({
  node: str,
  target: str,
  bitmaps: arrayOf({ kind: 'alternate', name: 'BlockDirtyBitmapOrStr', string: str, object: blockDirtyBitmapType }),
});

const isPowerOfTwo = (n: number) => n > 0 && Number.isInteger(Math.log2(n));

/** Keeps a bitmap's bits so that abort can put them back. */
function saveBits(bitmap: DirtyBitmap): HBitmap {
  const saved = new HBitmap(bitmap.bits.size);
  saved.merge(bitmap.bits);
  return saved;
}

function restoreBits(bitmap: DirtyBitmap, saved: HBitmap): void {
  bitmap.bits.resetAll();
  bitmap.bits.merge(saved);
}

export function addAction(graph: BlockGraph, args: BlockDirtyBitmapAdd): Action {
  let added: DirtyBitmap | undefined;
  return {
    prepare() {
      if (args.name === '') throw genericError('Bitmap name cannot be empty');
      const node = graph.lookupDeviceOrNode(args.node, args.node);
      let granularity = node.defaultGranularity();
      if (args.granularity !== undefined) {
        if (args.granularity < 512 || !isPowerOfTwo(args.granularity)) {
          throw genericError('Granularity must be power of 2 and at least 512');
        }
        granularity = args.granularity;
      }
      if (args.persistent) node.checkCanStoreNewBitmap(args.name, granularity);
      added = node.createBitmap(granularity, args.name);
      if (args.disabled) added.disabled = true;
      added.persistent = args.persistent ?? false;
    },
    commit() {},
    abort() {
      if (added) graph.lookupDeviceOrNode(args.node, args.node).releaseBitmap(added);
    },
  };
}

export function removeAction(graph: BlockGraph, args: BlockDirtyBitmap): Action {
  let removed: { bitmap: DirtyBitmap; release(): void } | undefined;
  return {
    prepare() {
      const { node, bitmap } = graph.lookupBitmap(args.node, args.name);
      checkBitmap(bitmap, BUSY | RO);
      if (bitmap.persistent) node.removePersistentBitmap(args.name);
      // Busy until commit, so later actions in the same transaction fail on it.
      bitmap.skipStore = true;
      bitmap.busy = true;
      removed = { bitmap, release: () => node.releaseBitmap(bitmap) };
    },
    commit() {
      if (!removed) return;
      removed.bitmap.busy = false;
      removed.release();
    },
    abort() {
      if (!removed) return;
      removed.bitmap.skipStore = false;
      removed.bitmap.busy = false;
    },
  };
}

export function clearAction(graph: BlockGraph, args: BlockDirtyBitmap): Action {
  let cleared: { bitmap: DirtyBitmap; saved: HBitmap } | undefined;
  return {
    prepare() {
      const { bitmap } = graph.lookupBitmap(args.node, args.name);
      checkBitmap(bitmap, DEFAULT_CHECKS);
      cleared = { bitmap, saved: saveBits(bitmap) };
      bitmap.clear();
    },
    commit() {},
    abort() {
      if (cleared) restoreBits(cleared.bitmap, cleared.saved);
    },
  };
}

/**
 * block-dirty-bitmap-enable (`enable` true) and -disable. QEMU's abort
 * restores "was enabled", which stays false when the bitmap was found but
 * failed its check: an aborted enable then disables the bitmap. We keep that.
 */
export function setEnabledAction(graph: BlockGraph, args: BlockDirtyBitmap, enable: boolean): Action {
  let bitmap: DirtyBitmap | undefined;
  let wasEnabled = false;
  return {
    prepare() {
      bitmap = graph.lookupBitmap(args.node, args.name).bitmap;
      checkBitmap(bitmap, ALLOW_RO);
      wasEnabled = !bitmap.disabled;
      bitmap.disabled = !enable;
    },
    commit() {},
    abort() {
      // QEMU 7.2 crashes when the lookup itself failed; we do nothing then.
      if (!bitmap) return;
      if (enable && !wasEnabled) bitmap.disabled = true;
      if (!enable && wasEnabled) bitmap.disabled = false;
    },
  };
}

export function mergeAction(graph: BlockGraph, args: BlockDirtyBitmapMerge): Action {
  let merged: { bitmap: DirtyBitmap; saved: HBitmap } | undefined;
  return {
    prepare() {
      const { node, bitmap: target } = graph.lookupBitmap(args.node, args.target);
      // Sources gather in a temporary bitmap first, so a failure leaves the target as it was.
      // QEMU 7.2 checks the target as each source is merged, after that source's lookup.
      const gathered = node.createBitmap(target.granularity);
      try {
        for (const source of args.bitmaps) {
          const bitmap = lookupSource(graph, args.node, source);
          checkBitmap(target, DEFAULT_CHECKS);
          mergeBitmaps(gathered, bitmap);
        }
        const saved = saveBits(target);
        mergeBitmaps(target, gathered);
        merged = { bitmap: target, saved };
      } finally {
        node.releaseBitmap(gathered);
      }
    },
    commit() {},
    abort() {
      if (merged) restoreBits(merged.bitmap, merged.saved);
    },
  };
}

function lookupSource(graph: BlockGraph, nodeName: string, source: string | BlockDirtyBitmap): DirtyBitmap {
  if (typeof source !== 'string') return graph.lookupBitmap(source.node, source.name).bitmap;
  const bitmap = graph.find(nodeName)?.findBitmap(source);
  if (!bitmap) throw genericError(`Dirty bitmap '${source}' not found`);
  return bitmap;
}

export function sha256(graph: BlockGraph, args: BlockDirtyBitmap): { sha256: string } {
  return { sha256: graph.lookupBitmap(args.node, args.name).bitmap.sha256() };
}
