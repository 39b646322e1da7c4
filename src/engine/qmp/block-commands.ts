/** blockdev-add, blockdev-del and query-named-block-nodes for the drivers we have. */
import type { BlockGraph } from '../block-graph';
import { BLKDEBUG_EVENTS, type BlockNode, type CommonNodeOptions } from '../block-node';
import { BLKDEBUG_IO_TYPES, BlkdebugNode, type InjectErrorOptions, type SetStateOptions } from '../drivers/blkdebug';
import { FileNode } from '../drivers/file';
import { NullNode, type NullOptions } from '../drivers/null-co';
import { backingPath, openQcow2 } from '../drivers/open-image';
import { Qcow2Node, type Qcow2Options } from '../drivers/qcow2/qcow2-node';
import { RawNode } from '../drivers/raw';
import { qdictOrder } from '../qobject';
import { genericError } from '../qmp-error';
import { arrayOf, bool, enumOf, int, str, struct, uint64, type Members, type QapiType } from './qapi';

/** BlockdevDriver as Debian's QEMU 7.2 build lists it. */
const BLOCKDEV_DRIVERS = [
  'blkdebug', 'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-before-write',
  'copy-on-read', 'dmg', 'file', 'snapshot-access', 'ftp', 'ftps', 'gluster', 'host_cdrom', 'host_device', 'http',
  'https', 'iscsi', 'luks', 'nbd', 'nfs', 'null-aio', 'null-co', 'nvme', 'parallels', 'preallocate', 'qcow',
  'qcow2', 'qed', 'quorum', 'raw', 'rbd', 'replication', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
];

const blockdevRef: QapiType = {
  kind: 'alternate',
  name: 'BlockdevRef',
  string: str,
  object: { kind: 'lazy', resolve: () => blockdevOptionsType },
};
const blockdevRefOrNull: QapiType = { ...blockdevRef, name: 'BlockdevRefOrNull', null: true };
const permissions = arrayOf(enumOf(['consistent-read', 'write', 'write-unchanged', 'resize']));

const nullOptions: Members = { '*size': int, '*latency-ns': uint64, '*read-zeroes': bool };

const VARIANTS: Record<string, Members> = {
  'null-co': nullOptions,
  'null-aio': nullOptions,
  file: {
    filename: str,
    '*pr-manager': str,
    '*locking': enumOf(['auto', 'on', 'off']),
    '*aio': enumOf(['threads', 'native', 'io_uring']),
    '*aio-max-batch': int,
    '*drop-cache': bool,
    '*x-check-cache-dropped': bool,
  },
  raw: { file: blockdevRef, '*offset': int, '*size': int },
  blkdebug: {
    image: blockdevRef,
    '*config': str,
    '*align': int,
    '*max-transfer': int,
    '*opt-write-zero': int,
    '*max-write-zero': int,
    '*opt-discard': int,
    '*max-discard': int,
    '*inject-error': arrayOf(struct({
      event: enumOf(BLKDEBUG_EVENTS),
      '*state': int,
      '*iotype': enumOf(BLKDEBUG_IO_TYPES),
      '*errno': int,
      '*sector': int,
      '*once': bool,
      '*immediately': bool,
    })),
    '*set-state': arrayOf(struct({ event: enumOf(BLKDEBUG_EVENTS), '*state': int, new_state: int })),
    '*take-child-perms': permissions,
    '*unshare-child-perms': permissions,
  },
  qcow2: {
    file: blockdevRef,
    '*backing': blockdevRefOrNull,
    '*lazy-refcounts': bool,
    '*pass-discard-request': bool,
    '*pass-discard-snapshot': bool,
    '*pass-discard-other': bool,
    '*overlap-check': { kind: 'any' },
    '*cache-size': int,
    '*l2-cache-size': int,
    '*l2-cache-entry-size': int,
    '*refcount-cache-size': int,
    '*cache-clean-interval': int,
    '*encrypt': { kind: 'any' },
    '*data-file': blockdevRef,
  },
};

export const blockdevOptionsType: QapiType = {
  kind: 'union',
  discriminator: 'driver',
  base: {
    driver: enumOf(BLOCKDEV_DRIVERS),
    '*node-name': str,
    '*discard': enumOf(['ignore', 'unmap']),
    '*cache': struct({ '*direct': bool, '*no-flush': bool }),
    '*read-only': bool,
    '*auto-read-only': bool,
    '*force-share': bool,
    '*detect-zeroes': enumOf(['off', 'on', 'unmap']),
  },
  variants: VARIANTS,
};

/** Visited blockdev-add arguments: the base members plus the driver's own. */
export interface BlockdevOptions {
  driver: string;
  'node-name'?: string;
  discard?: 'ignore' | 'unmap';
  cache?: { direct?: boolean; 'no-flush'?: boolean };
  'read-only'?: boolean;
  'detect-zeroes'?: CommonNodeOptions['detectZeroes'];
  [option: string]: unknown;
}

type BlockdevRef = string | BlockdevOptions;

/** Opens nodes from blockdev-add options, children before their parent as QEMU does. */
export class NodeOpener {
  constructor(
    private readonly graph: BlockGraph,
    /** Where QEMU would print its warnings. */
    private readonly warn: (message: string) => void = () => {},
  ) {}

  open(options: BlockdevOptions, inherited?: CommonNodeOptions): BlockNode {
    const common = commonOptions(options, inherited);
    const node = this.openDriver(options, common);
    node.options = flatten(options, CHILD_OPTIONS);
    this.graph.add(node);
    return node;
  }

  /**
   * bdrv_assign_node_name(): a format driver's file child is opened before
   * its parent is named; a driver's own children (blkdebug's image) after.
   */
  private name(options: BlockdevOptions): string {
    const given = options['node-name'];
    if (given !== undefined) this.graph.checkNewNodeName(given);
    const name = given ?? this.graph.autoNodeName();
    this.graph.reserve(name);
    return name;
  }

  private openDriver(options: BlockdevOptions, common: CommonNodeOptions): BlockNode {
    switch (options.driver) {
      case 'null-co':
      case 'null-aio': {
        const name = this.name(options);
        // QEMU reads `size` as an option string and rejects (indeed aborts on) negatives.
        if (typeof options.size === 'number' && options.size < 0) {
          throw genericError("Parameter 'size' expects a non-negative number below 2^64");
        }
        return new NullNode(name, options.driver, options as NullOptions, common);
      }
      case 'file':
        return new FileNode(this.name(options), options.filename as string, common);
      case 'raw': {
        const file = this.child(options.file as BlockdevRef, common);
        return new RawNode(this.name(options), file, (options.offset as number) ?? 0, options.size as number | undefined, common);
      }
      case 'blkdebug': {
        const name = this.name(options);
        if (options.config !== undefined) throw genericError('Bitmap Lab does not read blkdebug config files');
        const image = this.child(options.image as BlockdevRef, common);
        const node = new BlkdebugNode(name, image, (options['inject-error'] ?? []) as InjectErrorOptions[], (options['set-state'] ?? []) as SetStateOptions[], common);
        // qdict_flatten() keeps an empty list as it is, under a key blkdebug does not read: bdrv_open_inherit() refuses the leftover.
        const empty = (['inject-error', 'set-state'] as const).filter((key) => Array.isArray(options[key]) && (options[key] as unknown[]).length === 0);
        if (empty.length) {
          node.close();
          throw genericError(`Block protocol 'blkdebug' doesn't support the option '${qdictOrder(empty)[0]}'`);
        }
        return node;
      }
      case 'qcow2': {
        if (options.encrypt !== undefined) throw genericError('Bitmap Lab does not open encrypted qcow2 images');
        if (options['data-file'] !== undefined) throw genericError('Bitmap Lab does not support qcow2 external data files');
        const file = this.child(options.file as BlockdevRef, common);
        const name = this.name(options);
        const backing = options.backing === undefined ? undefined : options.backing === null ? null : this.child(options.backing as BlockdevRef, { ...common, readOnly: true });
        return openQcow2(name, file, backing, options as Qcow2Options, common, {
          // The backing chain the header names opens read-only, as implicit nodes named in QEMU's order.
          nameNode: () => {
            const implicit = this.graph.autoNodeName();
            this.graph.reserve(implicit);
            return implicit;
          },
          register: (node) => this.graph.add(node),
          warn: this.warn,
        });
      }
    }
    throw genericError(`Bitmap Lab does not implement the block driver '${options.driver}' yet`);
  }

  /** A child given by name, or defined inline (then it inherits the parent's flags). */
  private child(ref: BlockdevRef, parent: CommonNodeOptions): BlockNode {
    return typeof ref === 'string' ? this.graph.lookupDeviceOrNode(ref, ref) : this.open(ref, parent);
  }
}

/** Members that name or define a child node rather than configure this one. */
const CHILD_OPTIONS = new Set(['file', 'image', 'backing', 'data-file']);

/** qdict_flatten(): nested objects and lists become dotted keys (`inject-error.0.event`). */
function flatten(value: Record<string, unknown>, skip: ReadonlySet<string>, prefix = ''): Record<string, unknown> {
  const flat: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    if (skip.has(key)) continue;
    if (typeof member === 'object' && member !== null) {
      Object.assign(flat, flatten(member as Record<string, unknown>, new Set(), `${prefix}${key}.`));
    } else {
      flat[`${prefix}${key}`] = member;
    }
  }
  return flat;
}

function commonOptions(options: BlockdevOptions, inherited?: CommonNodeOptions): CommonNodeOptions {
  return {
    readOnly: options['read-only'] ?? inherited?.readOnly ?? false,
    // Children default to discard=unmap: their parents already decide what to discard (bdrv_inherited_options()).
    discardUnmap: options.discard === undefined ? inherited !== undefined : options.discard === 'unmap',
    detectZeroes: options['detect-zeroes'] ?? 'off',
    cache: {
      direct: options.cache?.direct ?? inherited?.cache.direct ?? false,
      noFlush: options.cache?.['no-flush'] ?? inherited?.cache.noFlush ?? false,
    },
  };
}

/** qmp_blockdev_add(). */
export function blockdevAdd(graph: BlockGraph, opener: NodeOpener, options: BlockdevOptions): Record<string, never> {
  if (options['node-name'] === undefined) throw genericError("'node-name' must be specified for the root node");
  graph.transaction(() => graph.setMonitorOwned(opener.open(options)));
  return {};
}

/** qmp_blockdev_del(). */
export function blockdevDel(graph: BlockGraph, nodeName: string): Record<string, never> {
  const node = graph.find(nodeName);
  if (!node) throw genericError(`Failed to find node with node-name='${nodeName}'`);
  if (!graph.isMonitorOwned(node)) throw genericError(`Node ${nodeName} is not owned by the monitor`);
  if (graph.parentsOf(node).length > 0) throw genericError(`Block device ${nodeName} is in use`);
  graph.release(node);
  return {};
}

/** What ImageInfo says of a COW image's backing file: the header's name and the resolved one. */
function backingInfo(node: BlockNode): Record<string, unknown> {
  if (!(node instanceof Qcow2Node) || node.backingFile === undefined) return {};
  const image = node.primaryChild?.exactFilename();
  return {
    'backing-filename': node.backingFile,
    'full-backing-filename': image === undefined ? node.backingFile : backingPath(image, node.backingFile),
    ...(node.backingFormat !== undefined && { 'backing-filename-format': node.backingFormat }),
  };
}

/** ImageInfo of one node. */
function imageInfo(node: BlockNode): Record<string, unknown> {
  const info = node.driverInfo();
  return {
    ...backingInfo(node),
    filename: node.filename,
    format: node.driver,
    'virtual-size': node.length,
    ...(node.actualSize !== undefined && { 'actual-size': node.actualSize }),
    ...(info?.clusterSize && { 'cluster-size': info.clusterSize }),
    ...(info && { 'dirty-flag': info.dirty }),
    ...(info?.formatSpecific !== undefined && { 'format-specific': info.formatSpecific }),
  };
}

/**
 * One BlockDeviceInfo of query-named-block-nodes. Unless `flat`, the image
 * info nests what each filter filters and each COW image's backing.
 */
export function blockDeviceInfo(node: BlockNode, flat: boolean): Record<string, unknown> {
  const { readOnly, detectZeroes, cache } = node.common;
  const image = imageInfo(node);
  let depth = 0;
  let innermost = image;
  for (let below = flat ? undefined : node.filterOrCowChild; below; below = below.filterOrCowChild) {
    depth++;
    innermost = innermost['backing-image'] = imageInfo(below);
  }
  return {
    file: node.filename,
    'node-name': node.nodeName,
    ...(node.children.has('backing') && { backing_file: node.children.get('backing')!.filename }),
    ro: readOnly,
    drv: node.driver,
    backing_file_depth: depth,
    encrypted: false,
    detect_zeroes: detectZeroes,
    bps: 0, bps_rd: 0, bps_wr: 0, iops: 0, iops_rd: 0, iops_wr: 0,
    image,
    cache: { writeback: true, direct: cache.direct, 'no-flush': cache.noFlush },
    write_threshold: 0,
    ...(node.bitmaps.length > 0 && { 'dirty-bitmaps': node.bitmaps.map((bitmap) => bitmap.info()) }),
  };
}

export function queryNamedBlockNodes(graph: BlockGraph, flat = false): Array<Record<string, unknown>> {
  return graph.list().map((node) => blockDeviceInfo(node, flat));
}
