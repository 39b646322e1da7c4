/**
 * QEMU's dirty bitmap (block/dirty-bitmap.c): a bit set over a node's bytes at
 * a granularity, with the flags and checks that govern who may touch it.
 */
import { createHash } from 'node:crypto';
import { HBitmap } from './hbitmap';
import { genericError } from './qmp-error';

/** What `dirty-bitmaps` lists per bitmap (QAPI BlockDirtyInfo). */
export interface BlockDirtyInfo {
  name?: string;
  recording: boolean;
  persistent: boolean;
  busy: boolean;
  count: number;
  granularity: number;
  inconsistent?: boolean;
}

/** The state checks of bdrv_dirty_bitmap_check(), as bit flags. */
export const BUSY = 1;
export const RO = 2;
export const INCONSISTENT = 4;
export const DEFAULT_CHECKS = BUSY | RO | INCONSISTENT;
export const ALLOW_RO = BUSY | INCONSISTENT;

export class DirtyBitmap {
  readonly bits: HBitmap;
  disabled = false;
  busy = false;
  readonly = false;
  persistent = false;
  inconsistent = false;
  /** Do not store to the image at the next close (a pending removal). */
  skipStore = false;
  successor: DirtyBitmap | undefined;

  /** `size` is the node length in bytes when the bitmap was made. */
  constructor(
    public name: string | undefined,
    readonly granularity: number,
    readonly size: number,
  ) {
    this.bits = new HBitmap(Math.ceil(size / granularity));
  }

  get recording(): boolean {
    return !this.disabled || (this.successor !== undefined && !this.successor.disabled);
  }

  /** Dirty bytes: set granules times the granularity, not clipped to the disk. */
  get count(): number {
    return this.bits.count * this.granularity;
  }

  /** Marks every granule that overlaps [offset, offset + bytes). */
  markDirty(offset: number, bytes: number): void {
    if (bytes <= 0) return;
    const first = Math.floor(offset / this.granularity);
    const last = Math.floor((offset + bytes - 1) / this.granularity);
    this.bits.set(first, last - first + 1);
  }

  /** Clears whole granules; callers pass granule-aligned ranges as QEMU does. */
  markClean(offset: number, bytes: number): void {
    const first = Math.floor(offset / this.granularity);
    const end = Math.ceil(Math.min(offset + bytes, this.size) / this.granularity);
    this.bits.reset(first, end - first);
  }

  clear(): void {
    this.bits.resetAll();
  }

  /** Maximal dirty byte ranges [start, end), clipped to the node length. */
  *dirtyExtents(): Generator<[number, number]> {
    for (const [first, end] of this.bits.extents()) {
      yield [first * this.granularity, Math.min(end * this.granularity, this.size)];
    }
  }

  /**
   * this |= source without checks (bdrv_dirty_bitmap_merge_internal). Equal
   * granularities OR their bits; otherwise each dirty byte range of the
   * source is marked here, re-quantised to this granularity.
   */
  mergeInternal(source: DirtyBitmap): void {
    if (source.granularity === this.granularity) {
      this.bits.merge(source.bits);
      return;
    }
    for (const [start, end] of source.dirtyExtents()) this.markDirty(start, end - start);
  }

  /** SHA-256 of the bits in QEMU's layout (x-debug-block-dirty-bitmap-sha256). */
  sha256(): string {
    return createHash('sha256').update(this.bits.bytes()).digest('hex');
  }

  info(): BlockDirtyInfo {
    const info: BlockDirtyInfo = {
      ...(this.name !== undefined && { name: this.name }),
      recording: this.recording,
      persistent: this.persistent,
      busy: this.busy,
      count: this.count,
      granularity: this.granularity,
    };
    if (this.inconsistent) info.inconsistent = true;
    return info;
  }
}

/** bdrv_dirty_bitmap_check(): the first failing check wins. */
export function checkBitmap(bitmap: DirtyBitmap, checks: number): void {
  const name = bitmap.name ?? '(null)';
  if (checks & BUSY && bitmap.busy) {
    throw genericError(`Bitmap '${name}' is currently in use by another operation and cannot be used`);
  }
  if (checks & RO && bitmap.readonly) {
    throw genericError(`Bitmap '${name}' is readonly and cannot be modified`);
  }
  if (checks & INCONSISTENT && bitmap.inconsistent) {
    throw genericError(`Bitmap '${name}' is inconsistent and cannot be used`);
  }
}

/** bdrv_merge_dirty_bitmap(): dest |= source after the public checks. */
export function mergeBitmaps(dest: DirtyBitmap, source: DirtyBitmap): void {
  checkBitmap(dest, DEFAULT_CHECKS);
  checkBitmap(source, ALLOW_RO);
  if (source.size !== dest.size) {
    throw genericError(
      `Bitmaps are of different sizes (destination size is ${dest.size}, source size is ${source.size}) and can't be merged`,
    );
  }
  dest.mergeInternal(source);
}
