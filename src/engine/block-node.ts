/**
 * A block node (QEMU's BlockDriverState): its children, its I/O requests
 * with QEMU's generic checks around the driver's own behaviour, and the list
 * of dirty bitmaps that its writes dirty, newest first.
 */
import { DirtyBitmap, checkBitmap, BUSY } from './dirty-bitmap';
import { ERRNO, IoError } from './io-error';
import { genericError } from './qmp-error';
import { qdictOrder, toQemuJson } from './qobject';

export const MAX_BITMAP_NAME_BYTES = 1023;
const utf8 = new TextEncoder();

/** Options every driver takes (the base of QAPI BlockdevOptions). */
export interface CommonNodeOptions {
  readOnly: boolean;
  /** `discard: unmap` (BDRV_O_UNMAP): discards reach the driver. */
  discardUnmap: boolean;
  detectZeroes: 'off' | 'on' | 'unmap';
  cache: { direct: boolean; noFlush: boolean };
}

export const DEFAULT_NODE_OPTIONS: CommonNodeOptions = {
  readOnly: false,
  discardUnmap: false,
  detectZeroes: 'off',
  cache: { direct: false, noFlush: false },
};

export const SECTOR = 512;

/** The blkdebug events a driver can announce (BlkdebugEvent in QAPI). */
export const BLKDEBUG_EVENTS = [
  'l1_update', 'l1_grow_alloc_table', 'l1_grow_write_table', 'l1_grow_activate_table', 'l2_load', 'l2_update',
  'l2_update_compressed', 'l2_alloc_cow_read', 'l2_alloc_write', 'read_aio', 'read_backing_aio', 'read_compressed',
  'write_aio', 'write_compressed', 'vmstate_load', 'vmstate_save', 'cow_read', 'cow_write', 'reftable_load',
  'reftable_grow', 'reftable_update', 'refblock_load', 'refblock_update', 'refblock_update_part', 'refblock_alloc',
  'refblock_alloc_hookup', 'refblock_alloc_write', 'refblock_alloc_write_blocks', 'refblock_alloc_write_table',
  'refblock_alloc_switch_table', 'cluster_alloc', 'cluster_alloc_bytes', 'cluster_free', 'flush_to_os',
  'flush_to_disk', 'pwritev_rmw_head', 'pwritev_rmw_after_head', 'pwritev_rmw_tail', 'pwritev_rmw_after_tail',
  'pwritev', 'pwritev_zero', 'pwritev_done', 'empty_image_prepare', 'l1_shrink_write_table',
  'l1_shrink_free_l2_clusters', 'cor_write', 'cluster_alloc_space', 'none',
] as const;
export type BlkdebugEvent = (typeof BLKDEBUG_EVENTS)[number];

/** What block status says of a byte range (bdrv_block_status()). */
export interface BlockStatus {
  /** Bytes from the requested offset that share this status. */
  length: number;
  /** The range reads as zeroes. */
  zero: boolean;
  /** The range holds data in this node (not zero, not from a backing file). */
  data: boolean;
  /** The range is allocated in this node rather than left to its backing file. */
  allocated: boolean;
}

/** What bdrv_get_info() and the format-specific info say of a node. */
export interface DriverInfo {
  clusterSize?: number;
  /** The image is marked dirty (qcow2 lazy refcounts). */
  dirty: boolean;
  formatSpecific?: unknown;
}

export abstract class BlockNode {
  /** Newest first, as QEMU inserts at the head of the list. */
  readonly bitmaps: DirtyBitmap[] = [];
  /** Children by role (`file`, `backing`, `image`), as QEMU names the edges. */
  readonly children = new Map<string, BlockNode>();
  private byteLength: number;

  constructor(
    readonly nodeName: string,
    size: number,
    readonly common: CommonNodeOptions = DEFAULT_NODE_OPTIONS,
  ) {
    this.byteLength = size;
  }

  /** QEMU counts a node's length in whole 512-byte sectors (bdrv_getlength()). */
  get length(): number {
    return Math.ceil(this.byteLength / SECTOR) * SECTOR;
  }

  /** A protocol node grows when written past its end; format nodes do not. */
  protected setByteLength(bytes: number): void {
    this.byteLength = bytes;
  }

  /** The QAPI driver name (`null-co`, `qcow2`, ...). */
  abstract readonly driver: string;

  /**
   * bs->options: what the node was opened with, flattened as QEMU keeps them
   * (`inject-error.0.event`), children excluded. Set by whoever opens it.
   */
  options: Readonly<Record<string, unknown>> = {};

  /** Options that change what the node is; a trailing `.` matches a prefix. */
  protected get strongRuntimeOptions(): readonly string[] {
    return [];
  }

  /** Filters (blkdebug) cannot be reopened from their child's file name. */
  protected get isFilter(): boolean {
    return false;
  }

  /** Protocol nodes (file) are opened from a file name. */
  get isProtocol(): boolean {
    return false;
  }

  /** bdrv_filter_or_cow_child(): what a filter filters, or a COW format's backing. */
  get filterOrCowChild(): BlockNode | undefined {
    return this.isFilter ? this.primaryChild : this.children.get('backing');
  }

  /** The user chose a backing node other than the one the image names. */
  protected get backingOverridden(): boolean {
    return false;
  }

  /** bs->full_open_options: the strong options, the driver, and the children's. */
  fullOpenOptions(): Record<string, unknown> {
    const options: Record<string, unknown> = { driver: this.driver };
    for (const key of qdictOrder(Object.keys(this.options))) {
      const strong = this.strongRuntimeOptions.some((name) => (name.endsWith('.') ? key.startsWith(name) : key === name));
      if (strong) options[key] = this.options[key];
    }
    for (const [role, child] of this.children) {
      if (role !== 'backing' || this.backingOverridden) options[role] = child.fullOpenOptions();
    }
    if (this.backingOverridden && !this.children.has('backing')) options.backing = null;
    return options;
  }

  /**
   * bs->exact_filename: a format node over a protocol node takes its file's
   * name, unless strong options or an overridden backing make it something
   * that file name alone would not open.
   */
  exactFilename(): string | undefined {
    const primary = this.primaryChild;
    const strong = Object.keys(this.fullOpenOptions()).some((key) => key !== 'driver' && !this.children.has(key));
    if (!primary?.isProtocol || this.isFilter || strong || this.backingOverridden) return undefined;
    return primary.exactFilename();
  }

  /** What QEMU shows as the node's file name (bdrv_refresh_filename()). */
  get filename(): string {
    return this.exactFilename() ?? `json:${toQemuJson(this.fullOpenOptions())}`;
  }

  /** Bytes the node occupies on the host, when the driver can tell. */
  abstract get actualSize(): number | undefined;

  /** Whether writes past the end grow the node (protocol nodes). */
  get growable(): boolean {
    return false;
  }

  // Driver hooks: the node's own behaviour, in bytes, after the generic checks.
  protected abstract driverRead(offset: number, buffer: Uint8Array): void;
  protected abstract driverWrite(offset: number, data: Uint8Array): void;
  protected driverWriteZeroes(offset: number, bytes: number, _mayUnmap: boolean): void {
    this.driverWrite(offset, new Uint8Array(bytes));
  }
  /** bdrv_driver_pwritev_compressed(): drivers without compressed writes refuse. */
  protected driverWriteCompressed(_offset: number, _data: Uint8Array): void {
    throw new IoError(ERRNO.ENOTSUP);
  }
  /** Returns false when the driver cannot discard (QEMU then does nothing). */
  protected driverDiscard(_offset: number, _bytes: number): boolean {
    return false;
  }
  protected driverFlush(): void {}
  abstract blockStatus(offset: number, bytes: number): BlockStatus;

  /** Releases what the node holds (file handles); persistent bitmaps are stored first. */
  close(): void {}

  /** The role of `child` if this node unshares WRITE on it (copy-before-write on its source). */
  unsharedWriteRole(_child: BlockNode): string | undefined {
    return undefined;
  }

  /** bdrv_replace_child(): every edge to `old` now leads to `replacement`. */
  replaceChild(old: BlockNode, replacement: BlockNode): void {
    for (const [role, child] of this.children) if (child === old) this.children.set(role, replacement);
  }

  /** The child that carries this node's data (bdrv_primary_bs()): `file` or `image`. */
  get primaryChild(): BlockNode | undefined {
    return this.children.get('file') ?? this.children.get('image');
  }

  /**
   * BLKDBG_EVENT(): a format driver announces what it is about to do to its
   * file; it travels down to the first node that listens (blkdebug).
   */
  debugEvent(event: BlkdebugEvent): void {
    this.primaryChild?.debugEvent(event);
  }

  /** bdrv_co_truncate() on a protocol node; drivers that can resize override this. */
  truncate(_bytes: number): void {
    throw new IoError(ERRNO.ENOTSUP);
  }

  read(offset: number, bytes: number): Uint8Array {
    this.checkRange(offset, bytes, false);
    const buffer = new Uint8Array(bytes);
    if (bytes > 0) this.driverRead(offset, buffer);
    return buffer;
  }

  /** read() into the caller's buffer: a format driver passes its own down, with no copy. */
  readInto(offset: number, buffer: Uint8Array): void {
    this.checkRange(offset, buffer.length, false);
    if (buffer.length > 0) this.driverRead(offset, buffer);
  }

  /** bdrv_co_pwritev(): bitmaps are dirtied even when the write fails. */
  write(offset: number, data: Uint8Array): void {
    this.checkRange(offset, data.length, true);
    this.tracked(offset, data.length, () => this.driverWrite(offset, data));
  }

  /** bdrv_co_pwritev() with BDRV_REQ_WRITE_COMPRESSED. */
  writeCompressed(offset: number, data: Uint8Array): void {
    this.checkRange(offset, data.length, true);
    this.tracked(offset, data.length, () => this.driverWriteCompressed(offset, data));
  }

  /** bdrv_supports_compressed_writes(): only qcow2 among our drivers writes compressed clusters. */
  get supportsCompressedWrites(): boolean {
    return false;
  }

  writeZeroes(offset: number, bytes: number, mayUnmap = false): void {
    this.checkRange(offset, bytes, true);
    this.tracked(offset, bytes, () => this.driverWriteZeroes(offset, bytes, mayUnmap));
  }

  /** bdrv_co_pdiscard(): a no-op unless the node was opened with discard=unmap; says whether it was done. */
  discard(offset: number, bytes: number): boolean {
    this.checkRange(offset, bytes, false);
    if (!this.common.discardUnmap) return false;
    this.tracked(offset, bytes, () => this.driverDiscard(offset, bytes));
    return true;
  }

  flush(): void {
    this.driverFlush();
  }

  private checkRange(offset: number, bytes: number, growing: boolean): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes < 0) {
      throw new IoError(ERRNO.EINVAL);
    }
    if (offset + bytes > this.length && !(growing && this.growable)) throw new IoError(ERRNO.EIO);
  }

  /** bdrv_co_write_req_prepare() / _finish(): the checks, the request, the dirtying. */
  private tracked(offset: number, bytes: number, request: () => void): void {
    try {
      if (this.bitmaps.some((bitmap) => bitmap.readonly)) throw new IoError(ERRNO.EPERM);
      request();
    } finally {
      if (offset + bytes > this.byteLength && this.growable) this.setByteLength(offset + bytes);
      this.markDirty(offset, bytes);
    }
  }

  /**
   * bdrv_get_info(): a filter answers for its child (but has no format-specific
   * info of its own); undefined for drivers without one (null-co).
   */
  driverInfo(): DriverInfo | undefined {
    const info = this.isFilter ? this.primaryChild?.driverInfo() : undefined;
    return info && { clusterSize: info.clusterSize, dirty: info.dirty };
  }

  /** bdrv_get_default_bitmap_granularity(). */
  defaultGranularity(): number {
    const cluster = this.driverInfo()?.clusterSize;
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
