/**
 * What an open qcow2 image knows of itself (QEMU's BDRVQcow2State): the
 * header fields, the metadata caches, and the file access every module
 * shares. The modules (refcounts, mapping, bitmaps) each own one concern
 * and meet here.
 */
import type { BlkdebugEvent, BlockNode } from '../../block-node';
import { ERRNO, IoError } from '../../io-error';
import { Qcow2Cache, type CacheHost } from './cache';
import {
  AUTOCLEAR,
  INCOMPAT,
  encodeHeader,
  type BitmapsExtension,
  type HeaderImage,
  type UnknownExtension,
} from './format';
import type { Snapshot } from './snapshots';

/** Why clusters are freed; each kind may or may not pass the discard down (QCOW2_DISCARD_*). */
export type DiscardType = 'never' | 'always' | 'request' | 'snapshot' | 'other';

/** Overlap check bits (QCOW2_OL_*). */
export const OL = {
  mainHeader: 1,
  activeL1: 2,
  activeL2: 4,
  refcountTable: 8,
  refcountBlock: 16,
  snapshotTable: 32,
  inactiveL1: 64,
  inactiveL2: 128,
  bitmapDirectory: 256,
} as const;
const OL_NAMES: Record<number, string> = {
  1: 'qcow2_header',
  2: 'active L1 table',
  4: 'active L2 table',
  8: 'refcount table',
  16: 'refcount block',
  32: 'snapshot table',
  64: 'inactive L1 table',
  128: 'inactive L2 table',
  256: 'bitmap directory',
};
export const OL_CONSTANT = OL.mainHeader | OL.activeL1 | OL.refcountTable | OL.snapshotTable | OL.bitmapDirectory;
export const OL_CACHED = OL_CONSTANT | OL.activeL2 | OL.refcountBlock | OL.inactiveL1;
export const OL_ALL = OL_CACHED | OL.inactiveL2;

/** A corruption QEMU reports with BLOCK_IMAGE_CORRUPTED. */
export interface CorruptionReport {
  message: string;
  fatal: boolean;
  offset?: number;
  size?: number;
}

/** Thrown inside allocation when new refcount structures moved the free space (-EAGAIN). */
export class RetryAllocation extends Error {
  constructor() {
    super('retry the cluster allocation');
  }
}

export const L1E_OFFSET_MASK = 0x00fffffffffffe00n;
export const QCOW_OFLAG_COPIED = 1n << 63n;

export class Qcow2State implements CacheHost {
  readonly clusterSize: number;
  readonly l2Bits: number;
  readonly l2Size: number;
  readonly refcountBlockBits: number;
  readonly refcountBlockSize: number;
  readonly csizeShift: number;
  readonly csizeMask: number;
  l2Cache!: Qcow2Cache;
  refcountCache!: Qcow2Cache;
  /** Entries per L2 cache slice. */
  l2SliceSize = 0;

  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  useLazyRefcounts = false;
  overlapCheck = OL_CACHED;
  readonly discardPassthrough: Record<DiscardType, boolean> = {
    never: false,
    always: true,
    request: false,
    snapshot: true,
    other: false,
  };

  /** Active L1 table: raw entries, flags included. */
  l1Table = new BigUint64Array(0);
  l1TableOffset = 0;
  /** Entries needed to map the whole disk (s->l1_vm_state_index). */
  l1VmStateIndex = 0;

  snapshots: Snapshot[] = [];
  snapshotsOffset = 0;
  bitmapsExt: BitmapsExtension | undefined;

  /** The node has a backing child (bs->backing): discards must then leave zero clusters. */
  hasBacking = false;
  backingFile: string | undefined;
  backingFormat: string | undefined;
  unknownHeaderFields: Uint8Array = new Uint8Array(0);
  unknownExtensions: UnknownExtension[] = [];

  /** Set after a fatal corruption: the node no longer does I/O (bs->drv = NULL). */
  ejected = false;
  private signaledCorruption = false;
  readonly corruptions: CorruptionReport[] = [];

  constructor(
    readonly file: BlockNode,
    readonly version: number,
    readonly clusterBits: number,
    readonly refcountOrder: number,
    readonly cryptMethod: number,
    readonly compressionType: number,
    public diskSize: number,
    features: { incompatible: bigint; compatible: bigint; autoclear: bigint },
    readonly writable: boolean,
    private readonly announce: (event: BlkdebugEvent) => void,
    private readonly onCorruption: (report: CorruptionReport) => void,
  ) {
    this.clusterSize = 2 ** clusterBits;
    this.l2Bits = clusterBits - 3;
    this.l2Size = 2 ** this.l2Bits;
    this.refcountBlockBits = clusterBits - (refcountOrder - 3);
    this.refcountBlockSize = 2 ** this.refcountBlockBits;
    this.csizeShift = 62 - (clusterBits - 8);
    this.csizeMask = 2 ** (clusterBits - 8) - 1;
    this.incompatibleFeatures = features.incompatible;
    this.compatibleFeatures = features.compatible;
    this.autoclearFeatures = features.autoclear;
  }

  event(event: BlkdebugEvent): void {
    this.announce(event);
  }

  /** Refcounts are exact on disk unless the image is dirty (lazy refcounts). */
  get needAccurateRefcounts(): boolean {
    return (this.incompatibleFeatures & INCOMPAT.dirty) === 0n;
  }

  startOfCluster(offset: number): number {
    return offset - (offset % this.clusterSize);
  }

  offsetIntoCluster(offset: number): number {
    return offset % this.clusterSize;
  }

  sizeToClusters(bytes: number): number {
    return Math.ceil(bytes / this.clusterSize);
  }

  /** Reads file bytes; bytes past the end of the file read as zeroes, as in QEMU. */
  readFile(offset: number, bytes: number): Uint8Array {
    const fileLength = this.file.length;
    if (offset >= fileLength || bytes === 0) return new Uint8Array(bytes);
    if (offset + bytes <= fileLength) return this.file.read(offset, bytes);
    const buffer = new Uint8Array(bytes);
    buffer.set(this.file.read(offset, fileLength - offset));
    return buffer;
  }

  /** readFile() into `target`, with no copy. */
  readFileInto(offset: number, target: Uint8Array): void {
    const available = Math.max(0, Math.min(target.length, this.file.length - offset));
    if (available > 0) this.file.readInto(offset, available === target.length ? target : target.subarray(0, available));
    target.fill(0, available);
  }

  readTable(offset: number, bytes: number): Uint8Array {
    return this.readFile(offset, bytes);
  }

  writeTable(offset: number, data: Uint8Array): void {
    this.file.write(offset, data);
  }

  /** bdrv_pwrite_sync(): write, then flush the file. */
  writeSync(offset: number, data: Uint8Array): void {
    this.file.write(offset, data);
    this.file.flush();
  }

  flushFile(): void {
    this.file.flush();
  }

  /** bdrv_pdiscard() on the file: advisory, so failures are ignored. */
  discardFile(offset: number, bytes: number): void {
    const end = Math.min(offset + bytes, this.file.length);
    if (end <= offset) return;
    try {
      this.file.discard(offset, end - offset);
    } catch {
      // QEMU ignores the result of discards it passes down.
    }
  }

  l1Offset(index: number): number {
    return Number(this.l1Table[index] & L1E_OFFSET_MASK);
  }

  checkOverlap(kind: 'l2' | 'refblock', offset: number, bytes: number): void {
    this.preWriteOverlapCheck(kind === 'l2' ? OL.activeL2 : OL.refcountBlock, offset, bytes);
  }

  /**
   * qcow2_pre_write_overlap_check(): a write that would land on metadata
   * means the image is corrupt; QEMU marks it so and refuses the write.
   */
  preWriteOverlapCheck(ignore: number, offset: number, bytes: number): void {
    const overlap = this.metadataOverlap(this.overlapCheck & ~ignore, offset, bytes);
    if (overlap === 0) return;
    const name = OL_NAMES[overlap];
    this.signalCorruption(true, `Preventing invalid write on metadata (overlaps with ${name})`, offset, bytes);
  }

  /** qcow2_check_metadata_overlap(): the first kind of metadata the range touches, in QEMU's order. */
  metadataOverlap(checks: number, offset: number, bytes: number): number {
    if (bytes <= 0) return 0;
    const cs = this.clusterSize;
    if (checks & OL.mainHeader && offset < cs) return OL.mainHeader;
    const start = this.startOfCluster(offset);
    const end = start + Math.ceil((this.offsetIntoCluster(offset) + bytes) / cs) * cs;
    const hits = (at: number, size: number): boolean => size > 0 && at < end && start < at + size;
    if (checks & OL.activeL1 && this.l1Table.length && hits(this.l1TableOffset, this.l1Table.length * 8)) {
      return OL.activeL1;
    }
    if (checks & OL.refcountTable && hits(this.refcounts.tableOffset, this.refcounts.tableSize * 8)) {
      return OL.refcountTable;
    }
    if (checks & OL.snapshotTable && this.snapshots.length && hits(this.snapshotsOffset, this.snapshotTableBytes())) {
      return OL.snapshotTable;
    }
    if (checks & OL.inactiveL1) {
      for (const snapshot of this.snapshots) {
        if (snapshot.l1Size && hits(snapshot.l1TableOffset, snapshot.l1Size * 8)) return OL.inactiveL1;
      }
    }
    if (checks & OL.activeL2) {
      for (let i = 0; i < this.l1Table.length; i++) {
        const l2 = this.l1Offset(i);
        if (l2 && hits(l2, cs)) return OL.activeL2;
      }
    }
    if (checks & OL.refcountBlock) {
      for (let i = 0; i <= this.refcounts.maxTableIndex && i < this.refcounts.tableSize; i++) {
        const block = this.refcounts.blockOffset(i);
        if (block && hits(block, cs)) return OL.refcountBlock;
      }
    }
    if (checks & OL.bitmapDirectory && this.autoclearFeatures & AUTOCLEAR.bitmaps) {
      // Unguarded in QEMU: with the bit set but no extension, the directory
      // is [0, 0), which ranges_overlap() sees as the whole 64-bit space.
      const dirOffset = this.bitmapsExt?.directoryOffset ?? 0;
      const dirSize = this.bitmapsExt?.directorySize ?? 0;
      if (dirSize === 0 ? dirOffset === 0 || (start < dirOffset && end > dirOffset) : hits(dirOffset, dirSize)) {
        return OL.bitmapDirectory;
      }
    }
    return 0;
  }

  snapshotTableBytes(): number {
    return this.snapshots.reduce((sum, snapshot) => sum + snapshot.entrySize, 0);
  }

  /**
   * qcow2_signal_corruption(): a fatal corruption of a writable image sets
   * the corrupt bit and takes the node out of service; every caller then
   * fails its request with EIO.
   */
  signalCorruption(fatal: boolean, message: string, offset?: number, size?: number): never {
    fatal = fatal && this.writable;
    if (this.signaledCorruption && (!fatal || this.incompatibleFeatures & INCOMPAT.corrupt)) fatal = false;
    this.onCorruption({ message, fatal, offset, size });
    this.corruptions.push({ message, fatal, offset, size });
    if (fatal) {
      this.incompatibleFeatures |= INCOMPAT.corrupt;
      try {
        this.updateHeader();
      } catch {
        // QEMU ignores a failure to record the corrupt bit.
      }
      this.ejected = true;
    }
    this.signaledCorruption = true;
    throw new IoError(ERRNO.EIO);
  }

  /** qcow2_update_header(): rewrite the first cluster from what we know. */
  updateHeader(): void {
    this.file.write(0, encodeHeader(this.headerImage()));
  }

  headerImage(): HeaderImage {
    return {
      version: this.version,
      clusterBits: this.clusterBits,
      size: this.diskSize,
      cryptMethod: this.cryptMethod,
      l1Size: this.l1Table.length,
      l1TableOffset: this.l1TableOffset,
      refcountTableOffset: this.refcounts.tableOffset,
      refcountTableClusters: (this.refcounts.tableSize * 8) / this.clusterSize,
      nbSnapshots: this.snapshots.length,
      snapshotsOffset: this.snapshotsOffset,
      incompatibleFeatures: this.incompatibleFeatures,
      compatibleFeatures: this.compatibleFeatures,
      autoclearFeatures: this.autoclearFeatures,
      refcountOrder: this.refcountOrder,
      compressionType: this.compressionType,
      unknownHeaderFields: this.unknownHeaderFields,
      backingFormat: this.backingFormat,
      backingFile: this.backingFile,
      bitmaps: this.bitmapsExt,
      unknownExtensions: this.unknownExtensions,
    };
  }

  /** update_header_sync() in qcow2-bitmap.c. */
  updateHeaderSync(): void {
    this.updateHeader();
    this.file.flush();
  }

  /** qcow2_write_caches(). */
  writeCaches(): void {
    this.l2Cache.write();
    if (this.needAccurateRefcounts) this.refcountCache.write();
  }

  /** qcow2_flush_caches(). */
  flushCaches(): void {
    this.writeCaches();
    this.file.flush();
  }

  /** qcow2_mark_dirty(): set the dirty bit on disk before relying on lazy refcounts. */
  markDirty(): void {
    if (this.incompatibleFeatures & INCOMPAT.dirty) return;
    const field = new Uint8Array(8);
    new DataView(field.buffer).setBigUint64(0, this.incompatibleFeatures | INCOMPAT.dirty);
    this.writeSync(72, field);
    this.incompatibleFeatures |= INCOMPAT.dirty;
  }

  /** qcow2_mark_clean(). */
  markClean(): void {
    if (!(this.incompatibleFeatures & INCOMPAT.dirty)) return;
    this.incompatibleFeatures &= ~INCOMPAT.dirty;
    this.flushCaches();
    this.updateHeader();
  }

  // Set once the modules exist (they need the state to be built).
  refcounts!: import('./refcounts').Refcounts;
}
