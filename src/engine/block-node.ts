/**
 * A block node (QEMU's BlockDriverState) as far as dirty bitmaps see it: a
 * length, and the list of bitmaps that its writes dirty, newest first.
 */
import { DirtyBitmap, checkBitmap, BUSY } from './dirty-bitmap';
import { genericError } from './qmp-error';

export const MAX_BITMAP_NAME_BYTES = 1023;
const utf8 = new TextEncoder();

/** Options every driver takes (the base of QAPI BlockdevOptions). */
export interface CommonNodeOptions {
  readOnly: boolean;
  detectZeroes: 'off' | 'on' | 'unmap';
  cache: { direct: boolean; noFlush: boolean };
}

export const DEFAULT_NODE_OPTIONS: CommonNodeOptions = {
  readOnly: false,
  detectZeroes: 'off',
  cache: { direct: false, noFlush: false },
};

const SECTOR = 512;

export abstract class BlockNode {
  /** Newest first, as QEMU inserts at the head of the list. */
  readonly bitmaps: DirtyBitmap[] = [];
  /** QEMU counts a node's length in whole 512-byte sectors (bdrv_getlength()). */
  readonly length: number;

  constructor(
    readonly nodeName: string,
    size: number,
    readonly common: CommonNodeOptions = DEFAULT_NODE_OPTIONS,
  ) {
    this.length = Math.ceil(size / SECTOR) * SECTOR;
  }

  /** The QAPI driver name (`null-co`, `qcow2`, ...). */
  abstract readonly driver: string;

  /** What QEMU shows as the node's file name (bdrv_refresh_filename()). */
  abstract get filename(): string;

  /** Bytes the node occupies on the host. */
  abstract get actualSize(): number;

  /** Cluster size from the driver's info call, when it has one. */
  get clusterSize(): number | undefined {
    return undefined;
  }

  /** bdrv_get_default_bitmap_granularity(). */
  defaultGranularity(): number {
    const cluster = this.clusterSize;
    return cluster && cluster > 0 ? Math.min(65536, Math.max(4096, cluster)) : 65536;
  }

  /** bdrv_can_store_new_dirty_bitmap(): only drivers with persistent bitmaps can. */
  checkCanStoreNewBitmap(_name: string, _granularity: number): void {
    throw genericError(`Can't store persistent bitmaps to ${this.nodeName}: Operation not supported`);
  }

  /** Deletes a stored bitmap from the image; nothing to do without persistence. */
  removePersistentBitmap(_name: string): void {}

  /** bdrv_create_dirty_bitmap(): named or anonymous, inserted at the head. */
  createBitmap(granularity: number, name?: string): DirtyBitmap {
    if (name !== undefined) {
      if (this.findBitmap(name)) throw genericError(`Bitmap already exists: ${name}`);
      if (utf8.encode(name).length > MAX_BITMAP_NAME_BYTES) throw genericError(`Bitmap name too long: ${name}`);
    }
    const bitmap = new DirtyBitmap(name, granularity, this.length);
    this.bitmaps.unshift(bitmap);
    return bitmap;
  }

  findBitmap(name: string): DirtyBitmap | undefined {
    return this.bitmaps.find((bitmap) => bitmap.name === name);
  }

  releaseBitmap(bitmap: DirtyBitmap): void {
    const index = this.bitmaps.indexOf(bitmap);
    if (index < 0) throw new Error('releasing a bitmap that is not on this node');
    if (bitmap.busy || bitmap.successor) throw new Error('releasing a busy bitmap');
    this.bitmaps.splice(index, 1);
  }

  /** bdrv_dirty_bitmap_create_successor(): freeze `bitmap`, record into a new child. */
  createSuccessor(bitmap: DirtyBitmap): DirtyBitmap {
    checkBitmap(bitmap, BUSY);
    if (bitmap.successor) throw genericError('Cannot create a successor for a bitmap that already has one');
    const successor = this.createBitmap(bitmap.granularity);
    successor.disabled = bitmap.disabled;
    bitmap.disabled = true;
    bitmap.successor = successor;
    bitmap.busy = true;
    return successor;
  }

  /** bdrv_dirty_bitmap_abdicate(): the successor takes the parent's place and name. */
  abdicate(bitmap: DirtyBitmap): DirtyBitmap {
    const successor = bitmap.successor;
    if (!successor) throw genericError("Cannot relinquish control if there's no successor present");
    successor.name = bitmap.name;
    successor.persistent = bitmap.persistent;
    bitmap.name = undefined;
    bitmap.persistent = false;
    bitmap.successor = undefined;
    bitmap.busy = false;
    this.releaseBitmap(bitmap);
    return successor;
  }

  /** bdrv_reclaim_dirty_bitmap(): fold the successor back in; parent := S ∪ N. */
  reclaim(bitmap: DirtyBitmap): DirtyBitmap {
    const successor = bitmap.successor;
    if (!successor) throw genericError('Cannot reclaim a successor when none is present');
    bitmap.mergeInternal(successor);
    bitmap.disabled = successor.disabled;
    bitmap.busy = false;
    bitmap.successor = undefined;
    this.releaseBitmap(successor);
    return bitmap;
  }

  /** bdrv_set_dirty(): a write, write-zeroes or discard dirties every enabled bitmap. */
  markDirty(offset: number, bytes: number): void {
    for (const bitmap of this.bitmaps) {
      if (!bitmap.disabled) bitmap.markDirty(offset, bytes);
    }
  }
}
