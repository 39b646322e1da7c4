/**
 * The `qcow2` format driver (block/qcow2.c): opening an image with QEMU's
 * checks, the read and write paths with their blkdebug events in QEMU's
 * order, write-zeroes, discard, flush, block status, close (which stores
 * the persistent bitmaps), and the information QEMU reports.
 */
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { BlockNode, SECTOR, type BlockStatus, type CommonNodeOptions, type DriverInfo } from '../../block-node';
import { DEFAULT_CHECKS, checkBitmap } from '../../dirty-bitmap';
import { ERRNO, IoError } from '../../io-error';
import { genericError } from '../../qmp-error';
import { PersistentBitmaps } from './bitmaps';
import { compressCluster } from './compress';
import { describeError } from './errors';
import { COMPAT_LAZY_REFCOUNTS, COMPRESSION, INCOMPAT, MiB } from './format';
import { CT, Mapping, type L2Meta } from './mapping';
import { readImage } from './open';
import { createCaches, readCacheSizes, type Qcow2OpenConfig, type Qcow2Options } from './options';
import { repairImage } from './repair';
import type { CorruptionReport, Qcow2State } from './state';

export type { Qcow2OpenConfig, Qcow2Options } from './options';

const INT_MAX = 2 ** 31 - 1;
/** MAX_BOUNCE_BUFFER in block/io.c: write-zeroes fallback chunks. */
const MAX_BOUNCE_BUFFER = 16 * MiB;
const MAX_MERGED_COW_GAP = 16384;


function isAllZero(data: Uint8Array): boolean {
  const words = data.byteOffset % 4 === 0 ? new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2) : undefined;
  let i = 0;
  if (words) {
    for (const word of words) if (word !== 0) return false;
    i = words.length * 4;
  }
  for (; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

/** The status of one layer (bdrv_co_block_status()); `bytes` 0 means the range starts at or past the end. */
interface LayerStatus {
  bytes: number;
  zero: boolean;
  data: boolean;
  allocated: boolean;
}

export class Qcow2Node extends BlockNode {
  readonly driver = 'qcow2';
  readonly warnings: string[] = [];
  private readonly mapping: Mapping;
  private readonly persistentBitmaps: PersistentBitmaps;
  /** bs->write_gen and bs->flushed_gen: flush_to_disk only when something was written since. */
  private writeGen = 0;
  private flushedGen = 0;
  private closed = false;
  private metadataPreallocation: boolean | undefined;

  private constructor(
    nodeName: string,
    common: CommonNodeOptions,
    private readonly s: Qcow2State,
    private readonly warn: (message: string) => void,
    private readonly qcow2Options: Qcow2Options,
  ) {
    super(nodeName, Math.floor(s.diskSize / SECTOR) * SECTOR, common);
    this.children.set('file', s.file);
    this.mapping = new Mapping(s);
    this.persistentBitmaps = new PersistentBitmaps(s, this);
  }

  /** qcow2_open() and qcow2_do_open(): every check in QEMU's order. */
  static open(nodeName: string, file: BlockNode, common: CommonNodeOptions, config: Qcow2OpenConfig = {}): Qcow2Node {
    const warnings: string[] = [];
    const warn = (message: string): void => {
      warnings.push(message);
      config.warn?.(message);
    };
    const { s, options, updateHeader } = readImage(file, common, config, warn);
    const writable = !common.readOnly;
    const node = new Qcow2Node(nodeName, common, s, warn, options);
    node.warnings.push(...warnings);
    node.autoBackingFile = s.backingFile ?? '';
    const headerUpdated = node.persistentBitmaps.load();
    if (updateHeader && !headerUpdated) {
      try {
        s.updateHeader();
      } catch (error) {
        throw genericError(`Could not update qcow2 header: ${describeError(error)}`);
      }
    }
    if (writable && s.incompatibleFeatures & INCOMPAT.dirty) {
      try {
        repairImage(s, node.mapping);
      } catch (error) {
        throw genericError(`Could not repair dirty image: ${describeError(error)}`);
      }
    }

    if (config.backing === undefined && s.backingFile !== undefined) {
      if (!config.openBacking) throw genericError('Bitmap Lab cannot open the backing file of this node');
      try {
        node.attachBacking(config.openBacking(s.backingFile, s.backingFormat), true);
      } catch (error) {
        // QEMU closes the half-opened node, which writes its bitmaps back.
        node.shutDown();
        throw genericError(`Could not open backing file: ${describeError(error)}`);
      }
    } else if (config.backing) {
      node.attachBacking(config.backing, false);
    }
    return node;
  }

  /** bs->auto_backing_file: the header's name, or the file name of the backing node opened from it. */
  private autoBackingFile = '';

  /** The backing node this node opened from its header: only that one is closed with it (bdrv_unref_child()). */
  private ownsBacking = false;

  private attachBacking(backing: BlockNode, implicit: boolean): void {
    this.children.set('backing', backing);
    this.s.hasBacking = true;
    this.ownsBacking = implicit;
    if (implicit) this.autoBackingFile = backing.filename;
  }

  /** bdrv_set_backing_hd() on a node opened without its backing file; the header keeps its name. */
  setBackingHd(backing: BlockNode): void {
    this.attachBacking(backing, false);
  }

  get backing(): BlockNode | undefined {
    return this.children.get('backing');
  }

  /** The backing file name stored in the image, as written there. */
  get backingFile(): string | undefined {
    return this.s.backingFile;
  }

  get backingFormat(): string | undefined {
    return this.s.backingFormat;
  }

  /** bdrv_get_allocated_file_size(): what the file child takes on the host. */
  get actualSize(): number | undefined {
    return this.s.file.actualSize;
  }

  /** bdrv_backing_overridden(): the backing node is not the one the header names. */
  protected override get backingOverridden(): boolean {
    const backing = this.backing;
    return backing ? this.autoBackingFile !== backing.filename : this.autoBackingFile !== '';
  }

  get version(): number {
    return this.s.version;
  }

  get clusterBytes(): number {
    return this.s.clusterSize;
  }

  /** Corruptions signalled since open (BLOCK_IMAGE_CORRUPTED). */
  get corruptions(): readonly CorruptionReport[] {
    return this.s.corruptions;
  }

  private checkUsable(): void {
    if (this.s.ejected || this.closed) throw new IoError(123, 'No medium found');
  }

  // ---- reads ----

  protected driverRead(offset: number, buffer: Uint8Array): void {
    this.checkUsable();
    this.readGuest(offset, buffer);
  }

  /** qcow2_co_preadv_part(): any guest offset, the node's length not checked (COW reads past it). */
  private readGuest(offset: number, buffer: Uint8Array): void {
    let done = 0;
    while (done < buffer.length) {
      const at = offset + done;
      const mapping = this.mapping.hostOffset(at, Math.min(buffer.length - done, INT_MAX));
      const target = buffer.subarray(done, done + mapping.bytes);
      switch (mapping.type) {
        case CT.zeroPlain:
        case CT.zeroAlloc:
          target.fill(0);
          break;
        case CT.unallocated:
          if (this.backing) {
            this.s.event('read_backing_aio');
            this.readBacking(this.backing, at, target);
          } else {
            target.fill(0);
          }
          break;
        case CT.compressed:
          this.readCompressed(mapping.entry, at, target);
          break;
        default:
          this.s.event('read_aio');
          this.s.readFileInto(mapping.hostOffset, target);
      }
      done += mapping.bytes;
    }
  }

  /** The generic layer fills what lies past the backing node's end with zeroes. */
  private readBacking(backing: BlockNode, offset: number, target: Uint8Array): void {
    const available = backing.length - offset;
    if (available <= 0) {
      target.fill(0);
      return;
    }
    const bytes = Math.min(target.length, available);
    backing.readInto(offset, bytes === target.length ? target : target.subarray(0, bytes));
    target.fill(0, bytes);
  }

  /** qcow2_co_preadv_compressed(): raw deflate must give exactly one cluster. */
  private readCompressed(entry: { hi: number; lo: number }, offset: number, target: Uint8Array): void {
    const s = this.s;
    const location = this.mapping.compressedLocation(entry);
    s.event('read_compressed');
    const input = s.readFile(location.offset, location.bytes);
    let cluster: Buffer;
    try {
      cluster = inflateRawSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: s.clusterSize });
    } catch {
      throw new IoError(ERRNO.EIO);
    }
    if (cluster.length !== s.clusterSize) throw new IoError(ERRNO.EIO);
    const inCluster = s.offsetIntoCluster(offset);
    target.set(cluster.subarray(inCluster, inCluster + target.length));
  }

  // ---- writes ----

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.checkUsable();
    // detect-zeroes (bdrv_aligned_pwritev): an all-zero write becomes write-zeroes.
    if (this.common.detectZeroes !== 'off' && isAllZero(data)) {
      this.driverWriteZeroes(offset, data.length, this.common.detectZeroes === 'unmap');
      return;
    }
    this.writeGen++;
    this.writeData(offset, data);
  }

  /** qcow2_co_pwritev_part(). */
  private writeData(offset: number, data: Uint8Array): void {
    const s = this.s;
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const allocation = this.mapping.allocHostOffset(at, Math.min(data.length - done, INT_MAX));
      try {
        s.preWriteOverlapCheck(0, allocation.hostOffset, allocation.bytes);
      } catch (error) {
        for (const meta of allocation.metas) this.mapping.abortMeta(meta);
        throw error;
      }
      this.writeTask(allocation.hostOffset, at, data.subarray(done, done + allocation.bytes), allocation.metas);
      done += allocation.bytes;
    }
  }

  /** qcow2_co_pwritev_task(): data first, then the L2 entries that point at it. */
  private writeTask(hostOffset: number, offset: number, data: Uint8Array, metas: L2Meta[]): void {
    const s = this.s;
    try {
      this.handleAllocSpace(metas);
      if (!this.mergeCow(offset, data, metas)) {
        s.event('write_aio');
        s.file.write(hostOffset, data);
      }
      while (metas.length > 0) {
        this.performCow(metas[0]);
        this.mapping.linkL2(metas[0]);
        metas.shift();
      }
    } catch (error) {
      for (const meta of metas) this.mapping.abortMeta(meta);
      throw error;
    }
  }

  override get supportsCompressedWrites(): boolean {
    return true;
  }

  /**
   * qcow2_co_pwritev_compressed_part(): whole clusters (or the image's
   * partial last one), each compressed on its own. detect-zeroes comes first,
   * as in bdrv_aligned_pwritev().
   */
  protected override driverWriteCompressed(offset: number, data: Uint8Array): void {
    this.checkUsable();
    if (this.common.detectZeroes !== 'off' && isAllZero(data)) {
      this.driverWriteZeroes(offset, data.length, this.common.detectZeroes === 'unmap');
      return;
    }
    this.writeGen++;
    const cs = this.s.clusterSize;
    if (offset % cs !== 0) throw new IoError(ERRNO.EINVAL);
    if (data.length % cs !== 0 && offset + data.length !== this.length) throw new IoError(ERRNO.EINVAL);
    for (let done = 0; done < data.length; done += cs) {
      this.writeCompressedCluster(offset + done, data.subarray(done, done + cs));
    }
  }

  /**
   * qcow2_co_pwritev_compressed_task(): the last cluster is padded with
   * zeroes; data that does not shrink is written as a normal cluster. The
   * L2 entry points at the bytes before they are written.
   */
  private writeCompressedCluster(offset: number, chunk: Uint8Array): void {
    const s = this.s;
    const cluster = new Uint8Array(s.clusterSize);
    cluster.set(chunk);
    const compressed = compressCluster(cluster);
    if (!compressed) {
      this.writeData(offset, chunk);
      return;
    }
    const hostOffset = this.mapping.allocCompressed(offset, compressed.length);
    s.preWriteOverlapCheck(0, hostOffset, compressed.length);
    s.event('write_compressed');
    s.file.write(hostOffset, compressed);
  }

  /** merge_cow(): the guest data joins the COW write when it fills the gap exactly. */
  private mergeCow(offset: number, data: Uint8Array, metas: L2Meta[]): boolean {
    for (const m of metas) {
      if (m.cowStart.bytes === 0 && m.cowEnd.bytes === 0) continue;
      if (m.skipCow) continue;
      if (m.offset + m.cowStart.offset + m.cowStart.bytes !== offset) continue;
      if (m.offset + m.cowEnd.offset !== offset + data.length) continue;
      m.data = data;
      return true;
    }
    return false;
  }

  /** handle_alloc_space(): COW regions that read as zeroes are zeroed in the file instead of copied. */
  private handleAllocSpace(metas: L2Meta[]): void {
    const s = this.s;
    for (const m of metas) {
      if (m.cowStart.bytes === 0 && m.cowEnd.bytes === 0) continue;
      if (!this.isZeroCow(m)) continue;
      const start = m.allocOffset + m.cowStart.offset;
      const bytes = m.cowEnd.offset + m.cowEnd.bytes - m.cowStart.offset;
      s.preWriteOverlapCheck(0, start, bytes);
      s.event('cluster_alloc_space');
      try {
        s.file.writeZeroes(start, bytes);
      } catch (error) {
        if (error instanceof IoError && error.errno === ERRNO.ENOTSUP) continue;
        throw error;
      }
      m.skipCow = true;
    }
  }

  /** is_zero_cow(): bdrv_co_is_zero_fast() over both COW regions. */
  private isZeroCow(m: L2Meta): boolean {
    return (
      this.isZeroFast(m.offset + m.cowStart.offset, m.cowStart.bytes) &&
      this.isZeroFast(m.offset + m.cowEnd.offset, m.cowEnd.bytes)
    );
  }

  private isZeroFast(offset: number, bytes: number): boolean {
    if (bytes === 0) return true;
    const status = this.statusAbove(offset, bytes, false);
    return status.bytes === bytes && status.zero;
  }

  /** perform_cow(): read the old data around the request, write it with (or beside) the new. */
  private performCow(m: L2Meta): void {
    const s = this.s;
    const start = m.cowStart;
    const end = m.cowEnd;
    if ((start.bytes === 0 && end.bytes === 0) || m.skipCow) return;
    const gap = end.offset - (start.offset + start.bytes);
    let startData: Uint8Array;
    let endData: Uint8Array;
    if (start.bytes && end.bytes && gap <= MAX_MERGED_COW_GAP) {
      const whole = this.cowRead(m.offset + start.offset, start.bytes + gap + end.bytes);
      startData = whole.subarray(0, start.bytes);
      endData = whole.subarray(start.bytes + gap);
    } else {
      startData = this.cowRead(m.offset + start.offset, start.bytes);
      endData = this.cowRead(m.offset + end.offset, end.bytes);
    }
    if (m.data) {
      const merged = new Uint8Array(start.bytes + m.data.length + end.bytes);
      merged.set(startData);
      merged.set(m.data, start.bytes);
      merged.set(endData, start.bytes + m.data.length);
      // QEMU announces write_aio and then cow_write for this single write.
      s.event('write_aio');
      this.cowWrite(m.allocOffset + start.offset, merged);
    } else {
      this.cowWrite(m.allocOffset + start.offset, startData);
      this.cowWrite(m.allocOffset + end.offset, endData);
    }
    s.l2Cache.setDependsOnFlush();
  }

  private cowRead(offset: number, bytes: number): Uint8Array {
    const buffer = new Uint8Array(bytes);
    if (bytes === 0) return buffer;
    this.s.event('cow_read');
    this.readGuest(offset, buffer);
    return buffer;
  }

  private cowWrite(hostOffset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.s.preWriteOverlapCheck(0, hostOffset, data.length);
    this.s.event('cow_write');
    this.s.file.write(hostOffset, data);
  }

  /**
   * bdrv_co_do_pwrite_zeroes() with qcow2_co_pwrite_zeroes(): whole clusters
   * become zero clusters; a partial cluster does too if the rest of it
   * reads as zeroes, else zeroes are written as data.
   */
  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    this.checkUsable();
    this.writeGen++;
    const unmap = mayUnmap && this.common.discardUnmap;
    const cs = this.s.clusterSize;
    let head = offset % cs;
    const tail = (offset + bytes) % cs;
    while (bytes > 0) {
      let num = bytes;
      if (head) {
        num = Math.min(bytes, MAX_BOUNCE_BUFFER, cs - head);
        head = (head + num) % cs;
      } else if (tail && num > cs) {
        num -= tail;
      }
      try {
        this.pwriteZeroes(offset, num, unmap);
      } catch (error) {
        if (!(error instanceof IoError && error.errno === ERRNO.ENOTSUP)) throw error;
        num = Math.min(num, MAX_BOUNCE_BUFFER);
        this.writeData(offset, new Uint8Array(num));
      }
      offset += num;
      bytes -= num;
    }
  }

  /** qcow2_co_pwrite_zeroes(). */
  private pwriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    const cs = this.s.clusterSize;
    const head = offset % cs;
    let tail = Math.ceil((offset + bytes) / cs) * cs - (offset + bytes);
    if (offset + bytes === this.length) tail = 0;
    if (head || tail) {
      if (!(this.isZero(offset - head, head) && this.isZero(offset + bytes, tail))) throw new IoError(ERRNO.ENOTSUP);
      offset -= head;
      bytes = cs;
      const { type } = this.mapping.hostOffset(offset, cs);
      if (type !== CT.unallocated && type !== CT.zeroPlain && type !== CT.zeroAlloc) throw new IoError(ERRNO.ENOTSUP);
    }
    this.mapping.zeroize(offset, bytes, mayUnmap);
  }

  /** is_zero() in qcow2.c: every byte reads as zeroes, by block status over the chain. */
  private isZero(offset: number, bytes: number): boolean {
    if (offset + bytes > this.length) bytes = this.length - offset;
    if (bytes <= 0) return true;
    for (;;) {
      const status = this.statusAbove(offset, bytes, true);
      offset += status.bytes;
      bytes -= status.bytes;
      if (!status.zero || status.bytes === 0) return status.zero && bytes === 0;
      if (bytes === 0) return true;
    }
  }

  /** qcow2_co_pdiscard() after the generic split: only whole clusters, or the image's partial last one. */
  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.checkUsable();
    this.writeGen++;
    const cs = this.s.clusterSize;
    let head = offset % cs;
    const tail = (offset + bytes) % cs;
    while (bytes > 0) {
      let num = bytes;
      if (head) {
        num = Math.min(bytes, cs - head);
        head = (head + num) % cs;
      } else if (tail && num > cs) {
        num -= tail;
      }
      this.pdiscard(offset, num);
      offset += num;
      bytes -= num;
    }
    return true;
  }

  private pdiscard(offset: number, bytes: number): void {
    const s = this.s;
    if (s.version < 3 && this.backing) return;
    if ((offset | bytes) % s.clusterSize !== 0) {
      if (offset % s.clusterSize !== 0 || offset + bytes !== this.length) return;
    }
    this.mapping.discard(offset, bytes, 'request', false);
  }

  /**
   * bdrv_co_flush() for a qcow2 node: flush_to_os writes the caches back,
   * flush_to_disk is announced only when something was written since the
   * last flush, then the file is flushed.
   */
  protected override driverFlush(): void {
    if (this.common.readOnly || this.s.ejected || this.closed) return;
    const current = this.writeGen;
    this.s.event('flush_to_os');
    this.s.writeCaches();
    if (!this.common.cache.noFlush && this.flushedGen !== current) this.s.event('flush_to_disk');
    this.s.file.flush();
    this.flushedGen = current;
  }

  // ---- block status ----

  /** bdrv_block_status() of this layer alone. */
  blockStatus(offset: number, bytes: number): BlockStatus {
    this.checkUsable();
    const status = this.layerStatus(offset, bytes, true);
    if (status.bytes === 0) return { length: bytes, zero: true, data: false, allocated: false };
    return { length: status.bytes, zero: status.zero, data: status.data, allocated: status.allocated };
  }

  /** bdrv_co_block_status() on this node (qcow2_co_block_status() plus the generic rules). */
  layerStatus(offset: number, bytes: number, wantZero: boolean): LayerStatus {
    const total = this.length;
    if (offset >= total) return { bytes: 0, zero: false, data: false, allocated: false };
    bytes = Math.min(bytes, total - offset);
    if (this.metadataPreallocation === undefined) this.metadataPreallocation = this.detectMetadataPreallocation();
    const mapping = this.mapping.hostOffset(offset, Math.min(bytes, INT_MAX));
    const zero = mapping.type === CT.zeroPlain || mapping.type === CT.zeroAlloc;
    const data = mapping.type === CT.normal || mapping.type === CT.compressed;
    const status = { bytes: mapping.bytes, zero, data, allocated: zero || data };
    if (!status.allocated) {
      const backing = this.backing;
      if (!backing) status.zero = true;
      else if (wantZero && offset >= backing.length) status.zero = true;
    }
    return status;
  }

  /** bdrv_co_common_block_status_above() down the whole backing chain. */
  private statusAbove(offset: number, bytes: number, wantZero: boolean): LayerStatus {
    let status = this.layerStatus(offset, bytes, wantZero);
    if (status.bytes === 0 || status.allocated) return status;
    bytes = status.bytes;
    for (let layer = this.backing; layer; layer = layer.children.get('backing')) {
      const below = layerStatusOf(layer, offset, bytes, wantZero);
      if (below.bytes === 0) return { bytes, zero: true, data: false, allocated: true };
      if (below.allocated) return below;
      bytes = below.bytes;
      status = below;
    }
    return status;
  }

  /** qcow2_detect_metadata_preallocation(): run once, for the same refcount reads as QEMU. */
  private detectMetadataPreallocation(): boolean {
    const s = this.s;
    const allocated = s.file.actualSize;
    if (allocated === undefined) return false;
    const realClusters = Math.floor(allocated / s.clusterSize);
    const threshold = Math.max(Math.floor((realClusters * 10) / 9), realClusters + 2);
    const endCluster = Math.ceil(s.file.length / s.clusterSize);
    let count = 0;
    for (let i = 0; i < endCluster && count < threshold; i++) if (s.refcounts.get(i) !== 0) count++;
    return count >= threshold;
  }

  // ---- close, info, persistent bitmaps ----

  /**
   * bdrv_close(): a flush, then qcow2_inactivate() (store the persistent
   * bitmaps, write the caches back, clear the dirty bit), then the children.
   * Failures are reported as QEMU prints them; close itself does not fail.
   */
  override close(): void {
    if (this.closed) return;
    this.shutDown();
    this.s.file.close();
    // A backing node set with bdrv_set_backing_hd() (drive-backup sync=none: the source) has other holders.
    if (this.ownsBacking) this.backing?.close();
  }

  /** Everything close() does but closing the children. */
  private shutDown(): void {
    if (this.closed) return;
    if (!this.s.ejected) {
      try {
        this.flush();
      } catch (error) {
        this.report(`Failed to flush node '${this.nodeName}': ${describeError(error)}`);
      }
      if (this.s.writable) this.inactivate();
    }
    this.closed = true;
  }

  private inactivate(): void {
    const s = this.s;
    let failed = false;
    try {
      this.persistentBitmaps.store();
    } catch (error) {
      failed = true;
      this.report(`Lost persistent bitmaps during inactivation of node '${this.nodeName}': ${describeError(error)}`);
    }
    try {
      s.l2Cache.flush();
    } catch (error) {
      failed = true;
      this.report(`Failed to flush the L2 table cache: ${describeError(error)}`);
    }
    try {
      s.refcountCache.flush();
    } catch (error) {
      failed = true;
      this.report(`Failed to flush the refcount block cache: ${describeError(error)}`);
    }
    if (!failed) {
      try {
        s.markClean();
      } catch {
        // QEMU ignores the result of qcow2_mark_clean() here.
      }
    }
  }

  private report(message: string): void {
    this.warnings.push(message);
    this.warn(message);
  }

  override driverInfo(): DriverInfo {
    return {
      clusterSize: this.s.clusterSize,
      dirty: (this.s.incompatibleFeatures & INCOMPAT.dirty) !== 0n,
      formatSpecific: this.formatSpecific(),
    };
  }

  /** qcow2_get_specific_info(): members in the QAPI order QEMU inserts them. */
  formatSpecific(): { type: 'qcow2'; data: Record<string, unknown> } {
    const s = this.s;
    if (s.version === 2) {
      return { type: 'qcow2', data: { compat: '0.10', 'refcount-bits': 2 ** s.refcountOrder, 'compression-type': 'zlib' } };
    }
    const bitmaps = this.persistentBitmaps.infoList();
    return {
      type: 'qcow2',
      data: {
        compat: '1.1',
        'extended-l2': false,
        'lazy-refcounts': (s.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n,
        corrupt: (s.incompatibleFeatures & INCOMPAT.corrupt) !== 0n,
        'refcount-bits': 2 ** s.refcountOrder,
        ...(bitmaps && { bitmaps }),
        'compression-type': s.compressionType === COMPRESSION.zstd ? 'zstd' : 'zlib',
      },
    };
  }

  /** Bytes of the virtual disk that are data, zero clusters, or left to the backing file. */
  allocationSummary(): { allocated: number; zero: number; unallocated: number } {
    const summary = { allocated: 0, zero: 0, unallocated: 0 };
    for (let offset = 0; offset < this.length; ) {
      const mapping = this.mapping.hostOffset(offset, Math.min(this.length - offset, INT_MAX));
      const bytes = Math.min(mapping.bytes, this.length - offset);
      if (mapping.type === CT.normal || mapping.type === CT.compressed) summary.allocated += bytes;
      else if (mapping.type === CT.zeroPlain || mapping.type === CT.zeroAlloc) summary.zero += bytes;
      else summary.unallocated += bytes;
      offset += bytes;
    }
    return summary;
  }

  /**
   * qcow2_co_truncate() growing the image (preallocation off): a larger L1
   * table, the new size in the header, caches sized for the new disk.
   */
  override truncate(bytes: number): void {
    this.checkUsable();
    const s = this.s;
    if (bytes % SECTOR !== 0) throw genericError(`The new size must be a multiple of ${SECTOR}`);
    if (s.snapshots.length && s.version < 3) throw genericError("Can't resize a v2 image which has snapshots");
    if (s.bitmapsExt) {
      for (const bm of this.persistentBitmaps.loadDirectory()) {
        const bitmap = this.findBitmap(bm.name);
        if (!bitmap) {
          throw genericError('Cannot resize qcow2 with persistent bitmaps that were not loaded into memory');
        }
        checkBitmap(bitmap, DEFAULT_CHECKS);
      }
    }
    if (this.bitmaps.length) throw genericError('Bitmap Lab cannot resize a node with dirty bitmaps');
    if (bytes < this.length) throw genericError('Bitmap Lab does not shrink qcow2 images');
    const l1Size = Math.ceil(bytes / (s.clusterSize * s.l2Size));
    this.writeGen++;
    try {
      this.mapping.growL1(l1Size, true);
    } catch (error) {
      throw genericError(`Failed to grow the L1 table: ${describeError(error)}`);
    }
    s.diskSize = bytes;
    this.setByteLength(bytes);
    const field = new Uint8Array(8);
    new DataView(field.buffer).setBigUint64(0, BigInt(bytes));
    try {
      s.writeSync(24, field);
    } catch (error) {
      throw genericError(`Failed to update the image size: ${describeError(error)}`);
    }
    s.l1VmStateIndex = l1Size;
    // qcow2_update_options(): the caches are written back and made anew for the new size.
    try {
      s.l2Cache.flush();
    } catch (error) {
      throw genericError(`Failed to flush the L2 table cache: ${describeError(error)}`);
    }
    try {
      s.refcountCache.flush();
    } catch (error) {
      throw genericError(`Failed to flush the refcount block cache: ${describeError(error)}`);
    }
    createCaches(s, readCacheSizes(this.qcow2Options, s.clusterSize, this.length));
  }

  /** The steps of qcow2_co_create() once the minimal image is open. */
  initialiseNewImage(size: number, backingFile?: string, backingFormat?: string): void {
    const s = this.s;
    let offset: number;
    try {
      offset = s.refcounts.allocClusters(3 * s.clusterSize);
    } catch (error) {
      throw genericError(`Could not allocate clusters for qcow2 header and refcount table: ${describeError(error)}`);
    }
    if (offset !== 0) throw new Error('Huh, first cluster in empty image is already in use?');
    try {
      s.updateHeader();
    } catch (error) {
      throw genericError(`Could not update qcow2 header: ${describeError(error)}`);
    }
    try {
      this.truncate(size);
    } catch (error) {
      throw genericError(`Could not resize image: ${describeError(error)}`);
    }
    if (backingFile !== undefined) {
      s.backingFile = backingFile;
      s.backingFormat = backingFormat;
      try {
        s.updateHeader();
      } catch (error) {
        throw genericError(`Could not assign backing file '${backingFile}' with format '${backingFormat}': ${describeError(error)}`);
      }
    }
  }

  override checkCanStoreNewBitmap(name: string, granularity: number): void {
    this.persistentBitmaps.canStoreNew(name, granularity);
  }

  override removePersistentBitmap(name: string): void {
    this.checkUsable();
    this.persistentBitmaps.remove(name);
  }
}

/** bdrv_co_block_status() of any backing layer. */
function layerStatusOf(node: BlockNode, offset: number, bytes: number, wantZero: boolean): LayerStatus {
  if (node instanceof Qcow2Node) return node.layerStatus(offset, bytes, wantZero);
  if (offset >= node.length) return { bytes: 0, zero: false, data: false, allocated: false };
  const status = node.blockStatus(offset, Math.min(bytes, node.length - offset));
  return { bytes: status.length, zero: status.zero, data: status.data, allocated: status.allocated };
}
