/**
 * Guest-to-host mapping (block/qcow2-cluster.c): the L1 table, L2 tables
 * through the L2 cache, the lookups reads make, the allocation writes make
 * (reuse a cluster we own, or allocate and describe the copy-on-write
 * around the request), L2 tables copied when shared, the L1 table grown,
 * and the discard and zero-cluster operations.
 */
import { ERRNO, IoError } from '../../io-error';
import { QCOW_MAX_L1_SIZE } from './format';
import { hex } from './refcounts';
import { L1E_OFFSET_MASK, OL, QCOW_OFLAG_COPIED, type DiscardType, type Qcow2State } from './state';

/** Cluster types (QCow2ClusterType; without subclusters each cluster is one subcluster). */
export const CT = { unallocated: 0, zeroPlain: 1, zeroAlloc: 2, normal: 3, compressed: 4 } as const;
export type ClusterType = (typeof CT)[keyof typeof CT];

const OFFSET_HI = 0x00ffffff;
const OFFSET_LO = 0xfffffe00;
const COMPRESSED_BIT = 0x40000000;
const COPIED_BIT = 0x80000000;
const ZERO_BIT = 1;
/** BDRV_REQUEST_MAX_BYTES. */
const REQUEST_MAX_BYTES = 2 ** 31 - 512;

/** What handle_copied() / handle_alloc() did: whether they placed the bytes, how many, and where. */
type HandleResult = { done: boolean; bytes: number; hostOffset: number };

export function entryType(hi: number, lo: number): ClusterType {
  if (hi & COMPRESSED_BIT) return CT.compressed;
  const hasOffset = (hi & OFFSET_HI) !== 0 || (lo & OFFSET_LO) !== 0;
  if (lo & ZERO_BIT) return hasOffset ? CT.zeroAlloc : CT.zeroPlain;
  return hasOffset ? CT.normal : CT.unallocated;
}

/** The host cluster offset of a normal or zero-alloc entry; -1 if it cannot be a file offset here. */
export function entryOffset(hi: number, lo: number): number {
  const high = hi & OFFSET_HI;
  if (high >= 2 ** 21) return -1;
  return high * 2 ** 32 + ((lo & OFFSET_LO) >>> 0);
}

export function isAllocated(type: ClusterType): boolean {
  return type === CT.normal || type === CT.compressed || type === CT.zeroAlloc;
}

/** An L2 entry as two 32-bit halves. */
export interface L2Entry {
  hi: number;
  lo: number;
}

/** QCowL2Meta: clusters allocated for a write, and the copy-on-write around it. */
export interface L2Meta {
  /** Guest offset of the first cluster. */
  offset: number;
  allocOffset: number;
  clusters: number;
  keepOldClusters: boolean;
  cowStart: { offset: number; bytes: number };
  cowEnd: { offset: number; bytes: number };
  /** The data write was merged into the COW write (m->data_qiov). */
  data?: Uint8Array;
  skipCow: boolean;
}

export interface HostMapping {
  type: ClusterType;
  /** Host offset of `offset` (normal and zero-alloc); for compressed clusters see `entry`. */
  hostOffset: number;
  /** Bytes from `offset` with the same type (and contiguous on the host). */
  bytes: number;
  entry: L2Entry;
}

export class Mapping {
  constructor(private readonly s: Qcow2State) {}

  private l1Index(offset: number): number {
    return Math.floor(offset / (this.s.clusterSize * this.s.l2Size));
  }

  private l2Index(offset: number): number {
    return Math.floor(offset / this.s.clusterSize) % this.s.l2Size;
  }

  private sliceIndex(offset: number): number {
    return Math.floor(offset / this.s.clusterSize) % this.s.l2SliceSize;
  }

  /** l2_load(): the cached slice of the L2 table at `l2Offset` that maps `offset`. */
  private loadSlice(offset: number, l2Offset: number): number {
    const startOfSlice = 8 * (this.l2Index(offset) - this.sliceIndex(offset));
    return this.s.l2Cache.get(l2Offset + startOfSlice);
  }

  private entry(slice: number, index: number): L2Entry {
    const view = this.s.l2Cache.view(slice);
    return { hi: view.getUint32(index * 8), lo: view.getUint32(index * 8 + 4) };
  }

  private setEntry(slice: number, index: number, hi: number, lo: number): void {
    const view = this.s.l2Cache.view(slice);
    view.setUint32(index * 8, hi >>> 0);
    view.setUint32(index * 8 + 4, lo >>> 0);
  }

  private checkedL2Offset(l1Index: number): number {
    const s = this.s;
    const l2Offset = s.l1Offset(l1Index);
    if (s.offsetIntoCluster(l2Offset) || l2Offset > Number.MAX_SAFE_INTEGER - s.clusterSize) {
      s.signalCorruption(true, `L2 table offset ${hex(l2Offset)} unaligned (L1 index: ${hex(l1Index)})`);
    }
    return l2Offset;
  }

  /**
   * qcow2_get_host_offset(): what `offset` maps to, and for how many bytes
   * (at most `bytes`, within one L2 slice) the same holds.
   */
  hostOffset(offset: number, bytes: number): HostMapping {
    const s = this.s;
    const cs = s.clusterSize;
    const inCluster = s.offsetIntoCluster(offset);
    let needed = bytes + inCluster;
    let available = (s.l2SliceSize - this.sliceIndex(offset)) * cs;
    if (needed > available) needed = available;
    const unallocated: L2Entry = { hi: 0, lo: 0 };
    const l1Index = this.l1Index(offset);
    if (l1Index >= s.l1Table.length || s.l1Offset(l1Index) === 0) {
      return { type: CT.unallocated, hostOffset: 0, bytes: Math.min(available, needed) - inCluster, entry: unallocated };
    }
    const l2Offset = this.checkedL2Offset(l1Index);
    const slice = this.loadSlice(offset, l2Offset);
    try {
      const index = this.sliceIndex(offset);
      const entry = this.entry(slice, index);
      const type = entryType(entry.hi, entry.lo);
      let hostOffset = 0;
      if (s.version < 3 && (type === CT.zeroPlain || type === CT.zeroAlloc)) {
        s.signalCorruption(
          true,
          `Zero cluster entry found in pre-v3 image (L2 offset: ${hex(l2Offset)}, L2 index: ${hex(index)})`,
        );
      }
      if (type === CT.zeroAlloc || type === CT.normal) {
        const host = entryOffset(entry.hi, entry.lo);
        if (host < 0 || s.offsetIntoCluster(host)) {
          s.signalCorruption(
            true,
            `Cluster allocation offset ${hex(Math.max(host, 0))} unaligned (L2 offset: ${hex(l2Offset)}, L2 index: ${hex(index)})`,
          );
        }
        hostOffset = host + inCluster;
      }
      const clusters = this.countContiguous(slice, index, s.sizeToClusters(needed), type, entry);
      available = clusters * cs;
      return { type, hostOffset, bytes: Math.min(available, needed) - inCluster, entry };
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /** count_contiguous_subclusters() without subclusters. */
  private countContiguous(slice: number, index: number, clusters: number, type: ClusterType, first: L2Entry): number {
    if (type === CT.compressed) return 1;
    const view = this.s.l2Cache.view(slice);
    const checkOffset = type === CT.normal || type === CT.zeroAlloc;
    let expected = checkOffset ? entryOffset(first.hi, first.lo) : 0;
    let i = 1;
    for (; i < clusters; i++) {
      const hi = view.getUint32((index + i) * 8);
      const lo = view.getUint32((index + i) * 8 + 4);
      if (entryType(hi, lo) !== type) break;
      if (checkOffset) {
        expected += this.s.clusterSize;
        if (entryOffset(hi, lo) !== expected) break;
      }
    }
    return i;
  }

  /** qcow2_parse_compressed_l2_entry(). */
  compressedLocation(entry: L2Entry): { offset: number; bytes: number } {
    const s = this.s;
    const raw = (BigInt(entry.hi >>> 0) << 32n) | BigInt(entry.lo >>> 0);
    const shift = BigInt(s.csizeShift);
    const offset = Number(raw & ((1n << shift) - 1n));
    const sectors = Number((raw >> shift) & BigInt(s.csizeMask)) + 1;
    return { offset, bytes: sectors * 512 - (offset & 511) };
  }

  /**
   * get_cluster_table(): the L2 slice for `offset`, ready to be modified:
   * the L1 table is grown and a shared or missing L2 table is (copied and)
   * allocated first. The caller puts the slice back.
   */
  clusterTable(offset: number): { slice: number; index: number } {
    const s = this.s;
    const l1Index = this.l1Index(offset);
    if (l1Index >= s.l1Table.length) this.growL1(l1Index + 1, false);
    let l2Offset = this.checkedL2Offset(l1Index);
    if (!(s.l1Table[l1Index] & QCOW_OFLAG_COPIED)) {
      this.allocateL2(l1Index);
      if (l2Offset) s.refcounts.free(l2Offset, s.l2Size * 8, 'other');
      l2Offset = s.l1Offset(l1Index);
    }
    return { slice: this.loadSlice(offset, l2Offset), index: this.sliceIndex(offset) };
  }

  /** qcow2_write_l1_entry(): the file's request alignment decides how much of the L1 table is written. */
  writeL1Entry(l1Index: number): void {
    const s = this.s;
    const alignment = s.file.common.cache.direct ? 512 : 1;
    const bufferSize = Math.max(8, Math.min(alignment, s.clusterSize));
    const entries = bufferSize / 8;
    const first = l1Index - (l1Index % entries);
    const buffer = new Uint8Array(bufferSize);
    const view = new DataView(buffer.buffer);
    for (let i = 0; i < entries && first + i < s.l1Table.length; i++) view.setBigUint64(i * 8, s.l1Table[first + i]);
    s.preWriteOverlapCheck(OL.activeL1, s.l1TableOffset + 8 * first, bufferSize);
    s.event('l1_update');
    s.writeSync(s.l1TableOffset + 8 * first, buffer);
  }

  /** l2_allocate(): a new L2 table for `l1Index`, a copy of the old one if there was one. */
  private allocateL2(l1Index: number): void {
    const s = this.s;
    const cache = s.l2Cache;
    const old = s.l1Table[l1Index];
    const oldOffset = Number(old & L1E_OFFSET_MASK);
    let l2Offset = 0;
    let held = -1;
    try {
      l2Offset = s.refcounts.allocClusters(s.l2Size * 8);
      if (l2Offset === 0) s.signalCorruption(true, 'Preventing invalid allocation of L2 table at offset 0');
      s.refcountCache.flush();
      const sliceBytes = s.l2SliceSize * 8;
      for (let slice = 0; slice < s.clusterSize / sliceBytes; slice++) {
        held = cache.getEmpty(l2Offset + slice * sliceBytes);
        if (oldOffset === 0) {
          cache.data(held).fill(0);
        } else {
          s.event('l2_alloc_cow_read');
          const source = cache.get(oldOffset + slice * sliceBytes);
          cache.data(held).set(cache.data(source));
          cache.put(source);
        }
        s.event('l2_alloc_write');
        cache.markDirty(held);
        cache.put(held);
        held = -1;
      }
      cache.flush();
      s.l1Table[l1Index] = BigInt(l2Offset) | QCOW_OFLAG_COPIED;
      this.writeL1Entry(l1Index);
    } catch (error) {
      if (held >= 0) cache.put(held);
      s.l1Table[l1Index] = old;
      if (l2Offset > 0) s.refcounts.free(l2Offset, s.l2Size * 8, 'always');
      throw error;
    }
  }

  /** qcow2_grow_l1_table(). */
  growL1(minSize: number, exactSize: boolean): void {
    const s = this.s;
    const oldSize = s.l1Table.length;
    if (minSize <= oldSize) return;
    if (minSize > Math.floor((2 ** 31 - 1) / 8)) throw new IoError(ERRNO.EFBIG);
    let newSize = minSize;
    if (!exactSize) {
      newSize = Math.max(oldSize, 1);
      while (minSize > newSize) newSize = Math.ceil((newSize * 3) / 2);
    }
    if (newSize > QCOW_MAX_L1_SIZE / 8) throw new IoError(ERRNO.EFBIG);
    const newTable = new BigUint64Array(newSize);
    newTable.set(s.l1Table);
    s.event('l1_grow_alloc_table');
    const newOffset = s.refcounts.allocClusters(newSize * 8);
    try {
      s.refcountCache.flush();
      s.preWriteOverlapCheck(0, newOffset, newSize * 8);
      s.event('l1_grow_write_table');
      const bytes = new Uint8Array(newSize * 8);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < newSize; i++) view.setBigUint64(i * 8, newTable[i]);
      s.writeSync(newOffset, bytes);
      s.event('l1_grow_activate_table');
      const pointer = new Uint8Array(12);
      const pointerView = new DataView(pointer.buffer);
      pointerView.setUint32(0, newSize);
      pointerView.setBigUint64(4, BigInt(newOffset));
      s.writeSync(36, pointer);
    } catch (error) {
      s.refcounts.free(newOffset, newSize * 8, 'other');
      throw error;
    }
    const oldOffset = s.l1TableOffset;
    s.l1TableOffset = newOffset;
    s.l1Table = newTable;
    s.refcounts.free(oldOffset, oldSize * 8, 'other');
  }

  /** cluster_needs_new_alloc(). */
  private needsNewAlloc(entry: L2Entry): boolean {
    const type = entryType(entry.hi, entry.lo);
    return !((type === CT.normal || type === CT.zeroAlloc) && entry.hi & COPIED_BIT);
  }

  /** count_single_write_clusters(). */
  private countSingleWrite(slice: number, index: number, clusters: number, newAlloc: boolean): number {
    const firstEntry = this.entry(slice, index);
    let expected = entryOffset(firstEntry.hi, firstEntry.lo);
    let i = 0;
    for (; i < clusters; i++) {
      const entry = this.entry(slice, index + i);
      if (this.needsNewAlloc(entry) !== newAlloc) break;
      if (!newAlloc) {
        if (expected !== entryOffset(entry.hi, entry.lo)) break;
        expected += this.s.clusterSize;
      }
    }
    return i;
  }

  /**
   * qcow2_alloc_host_offset(): where the write of `bytes` at `offset` goes
   * (host offsets contiguous for the returned length), allocating clusters
   * and recording the L2 updates to make once the data is written.
   */
  allocHostOffset(offset: number, bytes: number): { hostOffset: number; bytes: number; metas: L2Meta[] } {
    const metas: L2Meta[] = [];
    let start = offset;
    let remaining = bytes;
    let clusterOffset = -1;
    let hostOffset = -1;
    let current = 0;
    for (;;) {
      if (hostOffset < 0 && clusterOffset >= 0) hostOffset = clusterOffset;
      start += current;
      remaining -= current;
      if (clusterOffset >= 0) clusterOffset += current;
      if (remaining === 0) break;
      current = remaining;
      const copied = this.handleCopied(start, clusterOffset, current, metas);
      current = copied.bytes;
      if (copied.done) {
        clusterOffset = copied.hostOffset;
        continue;
      }
      if (current === 0) break;
      const allocated = this.handleAlloc(start, clusterOffset, current, metas);
      current = allocated.bytes;
      if (allocated.done) {
        clusterOffset = allocated.hostOffset;
        continue;
      }
      break;
    }
    return { hostOffset, bytes: bytes - remaining, metas };
  }

  private requestClusters(guestOffset: number, bytes: number): number {
    const s = this.s;
    let clusters = s.sizeToClusters(s.offsetIntoCluster(guestOffset) + bytes);
    clusters = Math.min(clusters, s.l2SliceSize - this.sliceIndex(guestOffset));
    return Math.min(clusters, Math.floor(REQUEST_MAX_BYTES / s.clusterSize));
  }

  /** handle_copied(): clusters we own already (COPIED) are written in place. */
  private handleCopied(
    guestOffset: number,
    hostOffset: number,
    bytes: number,
    metas: L2Meta[],
  ): HandleResult {
    const s = this.s;
    const clusters = this.requestClusters(guestOffset, bytes);
    const { slice, index } = this.clusterTable(guestOffset);
    try {
      const entry = this.entry(slice, index);
      const clusterOffset = entryOffset(entry.hi, entry.lo);
      if (this.needsNewAlloc(entry)) return { done: false, bytes, hostOffset };
      if (clusterOffset < 0 || s.offsetIntoCluster(clusterOffset)) {
        const kind = entry.lo & ZERO_BIT ? 'Preallocated zero' : 'Data';
        s.signalCorruption(
          true,
          `${kind} cluster offset ${hex(Math.max(clusterOffset, 0))} unaligned (guest offset: ${hex(guestOffset)})`,
        );
      }
      if (hostOffset >= 0 && clusterOffset !== s.startOfCluster(hostOffset)) return { done: false, bytes: 0, hostOffset };
      const keep = this.countSingleWrite(slice, index, clusters, false);
      bytes = Math.min(bytes, keep * s.clusterSize - s.offsetIntoCluster(guestOffset));
      this.calculateMeta(clusterOffset, guestOffset, bytes, slice, metas, true);
      return { done: true, bytes, hostOffset: clusterOffset + s.offsetIntoCluster(guestOffset) };
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /** handle_alloc(): new clusters, contiguous with the previous part when possible. */
  private handleAlloc(
    guestOffset: number,
    hostOffset: number,
    bytes: number,
    metas: L2Meta[],
  ): HandleResult {
    const s = this.s;
    let clusters = this.requestClusters(guestOffset, bytes);
    const { slice, index } = this.clusterTable(guestOffset);
    try {
      clusters = this.countSingleWrite(slice, index, clusters, true);
      let allocOffset: number;
      if (hostOffset < 0) {
        allocOffset = s.refcounts.allocClusters(clusters * s.clusterSize);
      } else {
        allocOffset = s.startOfCluster(hostOffset);
        clusters = s.refcounts.allocClustersAt(allocOffset, clusters);
      }
      if (clusters === 0) return { done: false, bytes: 0, hostOffset };
      const inCluster = s.offsetIntoCluster(guestOffset);
      const available = Math.min(bytes + inCluster, clusters * s.clusterSize);
      bytes = Math.min(bytes, available - inCluster);
      this.calculateMeta(allocOffset, guestOffset, bytes, slice, metas, false);
      return { done: true, bytes, hostOffset: allocOffset + inCluster };
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /** calculate_l2_meta(): nothing to record when overwriting data clusters we own. */
  private calculateMeta(
    hostClusterOffset: number,
    guestOffset: number,
    bytes: number,
    slice: number,
    metas: L2Meta[],
    keepOld: boolean,
  ): void {
    const s = this.s;
    const index = this.sliceIndex(guestOffset);
    const cowStartTo = s.offsetIntoCluster(guestOffset);
    const cowEndFrom = cowStartTo + bytes;
    const clusters = s.sizeToClusters(cowEndFrom);
    if (keepOld) {
      let allNormal = true;
      for (let i = 0; i < clusters; i++) {
        const entry = this.entry(slice, index + i);
        if (entryType(entry.hi, entry.lo) !== CT.normal) allNormal = false;
      }
      if (allNormal) return;
    }
    const first = this.entry(slice, index);
    const last = this.entry(slice, index + clusters - 1);
    const cowStartFrom = keepOld && entryType(first.hi, first.lo) === CT.normal ? cowStartTo : 0;
    const roundedEnd = Math.ceil(cowEndFrom / s.clusterSize) * s.clusterSize;
    const cowEndTo = keepOld && entryType(last.hi, last.lo) === CT.normal ? cowEndFrom : roundedEnd;
    // QEMU links the newest allocation first.
    metas.unshift({
      offset: s.startOfCluster(guestOffset),
      allocOffset: hostClusterOffset,
      clusters,
      keepOldClusters: keepOld,
      cowStart: { offset: cowStartFrom, bytes: cowStartTo - cowStartFrom },
      cowEnd: { offset: cowEndFrom, bytes: cowEndTo - cowEndFrom },
      skipCow: false,
    });
  }

  /**
   * qcow2_alloc_compressed_cluster_offset(): bytes in the compressed area
   * for the cluster at `offset`, its L2 entry pointing there at once (before
   * the data is written). Compression never overwrites: a cluster with a
   * host offset already fails with EIO.
   */
  allocCompressed(offset: number, compressedSize: number): number {
    const s = this.s;
    const { slice, index } = this.clusterTable(offset);
    try {
      const old = this.entry(slice, index);
      if (old.hi & OFFSET_HI || old.lo & OFFSET_LO) throw new IoError(ERRNO.EIO);
      const hostOffset = s.refcounts.allocBytes(compressedSize);
      // The descriptor counts the 512-byte sectors the data touches, less one.
      const sectors = Math.floor((hostOffset + compressedSize - 1) / 512) - Math.floor(hostOffset / 512);
      const descriptor = (1n << 62n) | (BigInt(sectors) << BigInt(s.csizeShift)) | BigInt(hostOffset);
      s.event('l2_update_compressed');
      s.l2Cache.markDirty(slice);
      this.setEntry(slice, index, Number(descriptor >> 32n), Number(descriptor & 0xffffffffn));
      return hostOffset;
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /**
   * The L2 half of qcow2_alloc_cluster_link_l2(), after the copy-on-write:
   * point the entries at the new clusters and free what they replaced.
   */
  linkL2(meta: L2Meta): void {
    const s = this.s;
    if (s.useLazyRefcounts) s.markDirty();
    if (s.needAccurateRefcounts) s.l2Cache.setDependency(s.refcountCache);
    const { slice, index } = this.clusterTable(meta.offset);
    const oldClusters: L2Entry[] = [];
    try {
      s.l2Cache.markDirty(slice);
      for (let i = 0; i < meta.clusters; i++) {
        const old = this.entry(slice, index + i);
        if (old.hi !== 0 || old.lo !== 0) oldClusters.push(old);
        const offset = meta.allocOffset + i * s.clusterSize;
        this.setEntry(slice, index + i, (Math.floor(offset / 2 ** 32) | COPIED_BIT) >>> 0, offset >>> 0);
      }
    } finally {
      s.l2Cache.put(slice);
    }
    if (!meta.keepOldClusters) for (const old of oldClusters) this.freeAnyCluster(old, 'never');
  }

  /** qcow2_alloc_cluster_abort(). */
  abortMeta(meta: L2Meta): void {
    if (!meta.keepOldClusters) {
      this.s.refcounts.free(meta.allocOffset, meta.clusters * this.s.clusterSize, 'never');
    }
  }

  /** qcow2_free_any_cluster(). */
  freeAnyCluster(entry: L2Entry, type: DiscardType): void {
    const s = this.s;
    switch (entryType(entry.hi, entry.lo)) {
      case CT.compressed: {
        const { offset, bytes } = this.compressedLocation(entry);
        s.refcounts.free(offset, bytes, type);
        break;
      }
      case CT.normal:
      case CT.zeroAlloc: {
        const offset = entryOffset(entry.hi, entry.lo);
        if (offset < 0 || s.offsetIntoCluster(offset)) {
          try {
            s.signalCorruption(false, `Cannot free unaligned cluster ${hex(Math.max(offset, 0))}`);
          } catch {
            // A non-fatal report: the cluster just leaks.
          }
        } else {
          s.refcounts.free(offset, s.clusterSize, type);
        }
        break;
      }
    }
  }

  /**
   * qcow2_cluster_discard(): `full` drops the clusters (reads fall through
   * to the backing file); otherwise v3 images keep reading zeroes.
   */
  discard(offset: number, bytes: number, type: DiscardType, full: boolean): void {
    const s = this.s;
    let clusters = s.sizeToClusters(bytes);
    s.refcounts.cacheDiscards = true;
    let ok = false;
    try {
      while (clusters > 0) {
        const done = this.discardInSlice(offset, clusters, type, full);
        clusters -= done;
        offset += done * s.clusterSize;
      }
      ok = true;
    } finally {
      s.refcounts.cacheDiscards = false;
      s.refcounts.processDiscards(ok);
    }
  }

  private discardInSlice(offset: number, clusters: number, type: DiscardType, full: boolean): number {
    const s = this.s;
    const { slice, index } = this.clusterTable(offset);
    try {
      clusters = Math.min(clusters, s.l2SliceSize - index);
      for (let i = 0; i < clusters; i++) {
        const old = this.entry(slice, index + i);
        const oldType = entryType(old.hi, old.lo);
        let hi = old.hi;
        let lo = old.lo;
        if (full) {
          hi = lo = 0;
        } else if (s.hasBacking || isAllocated(oldType)) {
          hi = 0;
          lo = s.version >= 3 ? ZERO_BIT : 0;
        }
        if (hi === old.hi && lo === old.lo) continue;
        s.l2Cache.markDirty(slice);
        this.setEntry(slice, index + i, hi, lo);
        this.freeAnyCluster(old, type);
      }
      return clusters;
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /** qcow2_subcluster_zeroize() for whole clusters (no subclusters). */
  zeroize(offset: number, bytes: number, mayUnmap: boolean): void {
    const s = this.s;
    if (s.version < 3) {
      if (!s.hasBacking) {
        this.discard(offset, bytes, 'request', false);
        return;
      }
      throw new IoError(ERRNO.ENOTSUP);
    }
    let clusters = s.sizeToClusters(bytes);
    s.refcounts.cacheDiscards = true;
    let ok = false;
    try {
      while (clusters > 0) {
        const done = this.zeroInSlice(offset, clusters, mayUnmap);
        clusters -= done;
        offset += done * s.clusterSize;
      }
      ok = true;
    } finally {
      s.refcounts.cacheDiscards = false;
      s.refcounts.processDiscards(ok);
    }
  }

  private zeroInSlice(offset: number, clusters: number, mayUnmap: boolean): number {
    const s = this.s;
    const { slice, index } = this.clusterTable(offset);
    try {
      clusters = Math.min(clusters, s.l2SliceSize - index);
      for (let i = 0; i < clusters; i++) {
        const old = this.entry(slice, index + i);
        const type = entryType(old.hi, old.lo);
        const unmap = type === CT.compressed || (mayUnmap && isAllocated(type));
        const hi = unmap ? 0 : old.hi;
        const lo = (unmap ? 0 : old.lo) | ZERO_BIT;
        if (hi === old.hi && lo === old.lo) continue;
        s.l2Cache.markDirty(slice);
        this.setEntry(slice, index + i, hi, lo);
        if (unmap) this.freeAnyCluster(old, 'request');
      }
      return clusters;
    } finally {
      s.l2Cache.put(slice);
    }
  }

  /** Every L2 table the active L1 table points to (for repair and info). */
  *l2Tables(): Generator<{ l1Index: number; offset: number }> {
    for (let i = 0; i < this.s.l1Table.length; i++) {
      const offset = this.s.l1Offset(i);
      if (offset) yield { l1Index: i, offset };
    }
  }
}

