/**
 * The `qcow2` format driver (block/qcow2.c): opening an image with QEMU's
 * checks, the read and write paths with their blkdebug events in QEMU's
 * order, write-zeroes, discard, flush, block status, close (which stores
 * the persistent bitmaps), and the information QEMU reports.
 */
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import {
  BlockNode,
  SECTOR,
  type BlkdebugEvent,
  type BlockStatus,
  type CommonNodeOptions,
  type DriverInfo,
} from '../../block-node';
import { DEFAULT_CHECKS, checkBitmap } from '../../dirty-bitmap';
import { ERRNO, IoError } from '../../io-error';
import { genericError } from '../../qmp-error';
import { PersistentBitmaps } from './bitmaps';
import { Qcow2Cache } from './cache';
import { describeError } from './errors';
import {
  AUTOCLEAR,
  AUTOCLEAR_MASK,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION,
  CRYPT,
  HEADER_SIZE,
  INCOMPAT,
  INCOMPAT_MASK,
  MiB,
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_REFTABLE_SIZE,
  QCOW_MAX_SNAPSHOTS,
  SNAPSHOT_HEADER_SIZE,
  checkBackingFileName,
  checkCompressionType,
  checkHeaderStart,
  cString,
  parseExtensions,
  parseHeader,
  unsupportedFeatureMessage,
  validateTable,
  type Extensions,
} from './format';
import { CT, Mapping, type L2Meta } from './mapping';
import { Refcounts } from './refcounts';
import { repairImage } from './repair';
import { readSnapshots } from './snapshots';
import { OL_ALL, OL_CACHED, OL_CONSTANT, Qcow2State, type CorruptionReport } from './state';

/** The qcow2 members of blockdev-add (BlockdevOptionsQcow2), as QAPI names them. */
export interface Qcow2Options {
  'lazy-refcounts'?: boolean;
  'pass-discard-request'?: boolean;
  'pass-discard-snapshot'?: boolean;
  'pass-discard-other'?: boolean;
  'overlap-check'?: 'none' | 'constant' | 'cached' | 'all' | { template?: 'none' | 'constant' | 'cached' | 'all' };
  'cache-size'?: number;
  'l2-cache-size'?: number;
  'l2-cache-entry-size'?: number;
  'refcount-cache-size'?: number;
  'cache-clean-interval'?: number;
}

export interface Qcow2OpenConfig {
  /** The backing node; `null` for none; absent to open what the header names. */
  backing?: BlockNode | null;
  /** Opens the backing file the header names (a path already resolved against the image's directory). */
  openBacking?: (filename: string, format: string | undefined) => BlockNode;
  options?: Qcow2Options;
  /** BLOCK_IMAGE_CORRUPTED. */
  onCorruption?: (report: CorruptionReport) => void;
  /** What QEMU prints to stderr (warn_report, error_report). */
  warn?: (message: string) => void;
}

const DEFAULT_L2_CACHE_MAX_SIZE = 32 * MiB;
const MIN_L2_CACHE_SIZE = 2;
const MIN_REFCOUNT_CACHE_SIZE = 4;
const INT_MAX = 2 ** 31 - 1;
/** MAX_BOUNCE_BUFFER in block/io.c: write-zeroes fallback chunks. */
const MAX_BOUNCE_BUFFER = 16 * MiB;
const MAX_MERGED_COW_GAP = 16384;

/** Reads `bytes` at `offset`, zero-filling past the end of the node. */
function readClipped(node: BlockNode, offset: number, bytes: number): Uint8Array {
  const length = node.length;
  if (offset >= length) return new Uint8Array(bytes);
  if (offset + bytes <= length) return node.read(offset, bytes);
  const buffer = new Uint8Array(bytes);
  buffer.set(node.read(offset, length - offset));
  return buffer;
}

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
    let headerBytes: Uint8Array;
    try {
      headerBytes = readClipped(file, 0, HEADER_SIZE);
    } catch (error) {
      throw genericError(`Could not read qcow2 header: ${describeError(error)}`);
    }
    const magic = new DataView(headerBytes.buffer, headerBytes.byteOffset).getUint32(0);
    const header = parseHeader(headerBytes);
    checkHeaderStart(magic, header);
    const cs = 2 ** header.clusterBits;
    let unknownHeaderFields: Uint8Array = new Uint8Array(0);
    if (header.headerLength > HEADER_SIZE) {
      try {
        unknownHeaderFields = readClipped(file, HEADER_SIZE, header.headerLength - HEADER_SIZE);
      } catch (error) {
        throw genericError(`Could not read unknown qcow2 header fields: ${describeError(error)}`);
      }
    }
    const extEnd = header.backingFileOffset ? Number(header.backingFileOffset) : cs;
    checkCompressionType(header);
    const readExtension = (offset: number, bytes: number): Uint8Array => {
      try {
        return readClipped(file, offset, bytes);
      } catch (error) {
        throw genericError(`qcow2_read_extension: ERROR: pread fail from offset ${offset}: ${describeError(error)}`);
      }
    };
    const unsupported = header.incompatibleFeatures & ~INCOMPAT_MASK;
    if (unsupported) {
      const partial: Extensions = { bitmapsDropped: false, unknown: [] };
      try {
        parseExtensions(readExtension, header.headerLength, extEnd, header.cryptMethod, header.autoclearFeatures, cs, true, partial);
      } catch {
        // QEMU reads the feature table with errors ignored.
      }
      throw genericError(unsupportedFeatureMessage(partial.featureTable, unsupported));
    }
    if (header.incompatibleFeatures & INCOMPAT.corrupt && !common.readOnly) {
      throw genericError('qcow2: Image is corrupt; cannot be opened read/write');
    }
    if (header.incompatibleFeatures & INCOMPAT.extendedL2) {
      if (cs / 32 < 512) throw genericError(`Unsupported subcluster size: ${cs / 32}`);
      throw genericError('Bitmap Lab does not support qcow2 images with extended L2 entries');
    }
    if (header.refcountOrder > 6) throw genericError('Reference count entry width too large; may not exceed 64 bits');
    if (header.cryptMethod === CRYPT.aes) {
      throw genericError('Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators');
    }
    if (header.refcountTableClusters === 0) throw genericError('Image does not contain a reference count table');
    validateTable(header.refcountTableOffset, header.refcountTableClusters, cs, QCOW_MAX_REFTABLE_SIZE, cs, 'Reference count table');
    validateTable(
      header.snapshotsOffset,
      header.nbSnapshots,
      SNAPSHOT_HEADER_SIZE,
      SNAPSHOT_HEADER_SIZE * QCOW_MAX_SNAPSHOTS,
      cs,
      'Snapshot table',
    );
    validateTable(header.l1TableOffset, header.l1Size, 8, QCOW_MAX_L1_SIZE, cs, 'Active L1 table');
    const l2Bits = header.clusterBits - 3;
    const l1Shift = BigInt(header.clusterBits + l2Bits);
    const l1VmStateIndex = (header.size + (1n << l1Shift) - 1n) >> l1Shift;
    if (l1VmStateIndex > BigInt(INT_MAX)) throw genericError('Image is too big');
    if (BigInt(header.l1Size) < l1VmStateIndex) throw genericError('L1 table is too small');
    if (header.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw genericError(`Bitmap Lab supports virtual sizes up to ${Number.MAX_SAFE_INTEGER} bytes, not ${header.size}`);
    }
    // Beyond QEMU (which reads zeroes there): tables past the end of the file mean a broken image.
    const l1Offset = Number(header.l1TableOffset);
    if (header.l1Size > 0 && l1Offset + header.l1Size * 8 > file.length) {
      throw genericError('Active L1 table lies beyond the end of the image file');
    }
    const refcountTableOffset = Number(header.refcountTableOffset);
    const refcountTableBytes = header.refcountTableClusters * cs;
    if (refcountTableOffset + refcountTableBytes > file.length) {
      throw genericError('Reference count table lies beyond the end of the image file');
    }
    let l1Bytes: Uint8Array;
    try {
      l1Bytes = readClipped(file, l1Offset, header.l1Size * 8);
    } catch (error) {
      throw genericError(`Could not read L1 table: ${describeError(error)}`);
    }

    const options = config.options ?? {};
    const lazyRefcounts = options['lazy-refcounts'] ?? (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n;
    const diskSize = Number(header.size);
    const caches = readCacheSizes(options, cs, Math.floor(diskSize / SECTOR) * SECTOR);
    if (lazyRefcounts && header.version < 3) {
      throw genericError('Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility level');
    }
    const overlapCheck = overlapTemplate(options['overlap-check']);
    if (header.cryptMethod === CRYPT.luks) throw genericError('Bitmap Lab does not open encrypted qcow2 images');
    if (header.cryptMethod !== CRYPT.none) throw genericError(`Unsupported encryption method ${header.cryptMethod}`);
    if (header.compressionType === COMPRESSION.zstd) {
      throw genericError('Bitmap Lab does not support zstd-compressed qcow2 images');
    }

    const writable = !common.readOnly;
    const s = new Qcow2State(
      file,
      header.version,
      header.clusterBits,
      header.refcountOrder,
      header.cryptMethod,
      header.compressionType,
      diskSize,
      { incompatible: header.incompatibleFeatures, compatible: header.compatibleFeatures, autoclear: header.autoclearFeatures },
      writable,
      (event: BlkdebugEvent) => file.debugEvent(event),
      (report) => {
        const verb = report.fatal ? 'Marking image as corrupt' : 'Image is corrupt';
        const tail = report.fatal ? 'further corruption events will be suppressed' : 'further non-fatal corruption events will be suppressed';
        warn(`qcow2: ${verb}: ${report.message}; ${tail}`);
        config.onCorruption?.(report);
      },
    );
    s.unknownHeaderFields = unknownHeaderFields;
    s.l1TableOffset = l1Offset;
    s.l1VmStateIndex = Number(l1VmStateIndex);
    const l1View = new DataView(l1Bytes.buffer, l1Bytes.byteOffset, l1Bytes.byteLength);
    s.l1Table = new BigUint64Array(header.l1Size);
    for (let i = 0; i < header.l1Size; i++) s.l1Table[i] = l1View.getBigUint64(i * 8);
    s.useLazyRefcounts = lazyRefcounts;
    s.overlapCheck = overlapCheck;
    s.discardPassthrough.request = options['pass-discard-request'] ?? common.discardUnmap;
    s.discardPassthrough.snapshot = options['pass-discard-snapshot'] ?? true;
    s.discardPassthrough.other = options['pass-discard-other'] ?? false;
    createCaches(s, caches);

    let refcountTable: Uint8Array;
    try {
      s.event('reftable_load');
      refcountTable = readClipped(file, refcountTableOffset, refcountTableBytes);
    } catch (error) {
      throw genericError(`Could not initialize refcount handling: ${describeError(error)}`);
    }
    s.refcounts = new Refcounts(s, refcountTableOffset, refcountTable);

    const ext = parseExtensions(readExtension, header.headerLength, extEnd, header.cryptMethod, header.autoclearFeatures, cs);
    if (ext.bitmapsDropped) {
      warn(
        header.version < 3
          ? 'This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent'
          : 'a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent',
      );
      warn("Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.");
    }
    if (header.incompatibleFeatures & INCOMPAT.dataFile) {
      throw genericError('Bitmap Lab does not support qcow2 images with an external data file');
    }
    if (header.autoclearFeatures & AUTOCLEAR.dataFileRaw) throw genericError('data-file-raw requires a data file');
    s.backingFormat = ext.backingFormat;
    s.unknownExtensions = ext.unknown;
    s.bitmapsExt = ext.bitmaps;

    if (header.backingFileOffset !== 0n) {
      checkBackingFileName(header, cs);
      const offset = Number(header.backingFileOffset);
      try {
        s.backingFile = cString(readClipped(file, offset, header.backingFileSize));
      } catch (error) {
        throw genericError(`Could not read backing file name: ${describeError(error)}`);
      }
    }
    s.snapshotsOffset = Number(header.snapshotsOffset);
    s.snapshots = readSnapshots((offset, bytes) => s.readFile(offset, bytes), s.snapshotsOffset, header.nbSnapshots);

    let updateHeader = ext.bitmapsDropped || (s.autoclearFeatures & ~AUTOCLEAR_MASK) !== 0n;
    updateHeader = updateHeader && writable;
    if (updateHeader) s.autoclearFeatures &= AUTOCLEAR_MASK;

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

  private attachBacking(backing: BlockNode, implicit: boolean): void {
    this.children.set('backing', backing);
    this.s.hasBacking = true;
    if (implicit) this.autoBackingFile = backing.filename;
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
          target.set(this.s.readFile(mapping.hostOffset, target.length));
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
    target.set(backing.read(offset, bytes));
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
    this.backing?.close();
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

function createCaches(s: Qcow2State, caches: ReturnType<typeof readCacheSizes>): void {
  s.l2SliceSize = caches.l2EntrySize / 8;
  s.l2Cache = new Qcow2Cache(s, 'l2', caches.l2Entries, caches.l2EntrySize);
  s.refcountCache = new Qcow2Cache(s, 'refblock', caches.refcountEntries, s.clusterSize);
}

/** read_cache_sizes() and the minimums of qcow2_update_options_prepare(). */
function readCacheSizes(
  options: Qcow2Options,
  clusterSize: number,
  diskSize: number,
): { l2Entries: number; l2EntrySize: number; refcountEntries: number } {
  const minRefcountCache = MIN_REFCOUNT_CACHE_SIZE * clusterSize;
  const maxL2Cache = Math.ceil((Math.ceil(diskSize / clusterSize) * 8) / clusterSize) * clusterSize;
  const combinedSet = options['cache-size'] !== undefined;
  const l2Set = options['l2-cache-size'] !== undefined;
  const refcountSet = options['refcount-cache-size'] !== undefined;
  const combined = options['cache-size'] ?? 0;
  const l2Max = options['l2-cache-size'] ?? DEFAULT_L2_CACHE_MAX_SIZE;
  let refcountCache = options['refcount-cache-size'] ?? 0;
  let l2EntrySize = options['l2-cache-entry-size'] ?? clusterSize;
  let l2Cache = Math.min(maxL2Cache, l2Max);
  if (combinedSet) {
    if (l2Set && refcountSet) {
      throw genericError('cache-size, l2-cache-size and refcount-cache-size may not be set at the same time');
    } else if (l2Set && l2Max > combined) {
      throw genericError('l2-cache-size may not exceed cache-size');
    } else if (refcountCache > combined) {
      throw genericError('refcount-cache-size may not exceed cache-size');
    }
    if (l2Set) {
      refcountCache = combined - l2Cache;
    } else if (refcountSet) {
      l2Cache = combined - refcountCache;
    } else if (combined >= maxL2Cache + minRefcountCache) {
      l2Cache = maxL2Cache;
      refcountCache = combined - l2Cache;
    } else {
      refcountCache = Math.min(combined, minRefcountCache);
      l2Cache = combined - refcountCache;
    }
  }
  if (l2Cache < maxL2Cache && options['l2-cache-entry-size'] === undefined) l2EntrySize = Math.min(clusterSize, 4096);
  if (l2EntrySize < 512 || l2EntrySize > clusterSize || (l2EntrySize & (l2EntrySize - 1)) !== 0) {
    throw genericError(`L2 cache entry size must be a power of two between 512 and the cluster size (${clusterSize})`);
  }
  let l2Entries = Math.floor(l2Cache / l2EntrySize);
  if (l2Entries < MIN_L2_CACHE_SIZE) l2Entries = MIN_L2_CACHE_SIZE;
  if (l2Entries > INT_MAX) throw genericError('L2 cache size too big');
  let refcountEntries = Math.floor(refcountCache / clusterSize);
  if (refcountEntries < MIN_REFCOUNT_CACHE_SIZE) refcountEntries = MIN_REFCOUNT_CACHE_SIZE;
  if (refcountEntries > INT_MAX) throw genericError('Refcount cache size too big');
  return { l2Entries, l2EntrySize, refcountEntries };
}

function overlapTemplate(option: Qcow2Options['overlap-check']): number {
  const name = typeof option === 'string' ? option : (option?.template ?? 'cached');
  switch (name) {
    case 'none':
      return 0;
    case 'constant':
      return OL_CONSTANT;
    case 'cached':
      return OL_CACHED;
    case 'all':
      return OL_ALL;
  }
  throw genericError(
    `Unsupported value '${String(name)}' for qcow2 option 'overlap-check'. Allowed are any of the following: none, constant, cached, all`,
  );
}

