/**
 * Reference counts and cluster allocation (block/qcow2-refcount.c): the
 * refcount table, refcount blocks of 1 to 64 bits per entry, QEMU's
 * first-fit search from the lowest free cluster, new refcount blocks (and a
 * new self-describing table) when the image outgrows them, and the discard
 * requests passed down when clusters are freed.
 */
import { ERRNO, IoError } from '../../io-error';
import { QCOW_MAX_REFTABLE_SIZE } from './format';
import { RetryAllocation, type DiscardType, type Qcow2State } from './state';

const REFT_OFFSET_MASK = 0xfffffffffffffe00n;
/** Largest host cluster offset a normal L2 entry holds (QCOW_MAX_CLUSTER_OFFSET). */
export const MAX_CLUSTER_OFFSET = 2 ** 56 - 1;

/** qcow2_refcount_metadata_size(): refcount blocks and table clusters for `clusters`. */
export function refcountMetadataSize(
  clusters: number,
  clusterSize: number,
  refcountOrder: number,
  generousIncrease: boolean,
): { bytes: number; blocks: number } {
  const blocksPerTableCluster = clusterSize / 8;
  const refcountsPerBlock = (clusterSize * 8) / 2 ** refcountOrder;
  let table = 0;
  let blocks = 0;
  let last: number;
  let n = 0;
  do {
    last = n;
    blocks = Math.ceil((clusters + table + blocks) / refcountsPerBlock);
    table = Math.ceil(blocks / blocksPerTableCluster);
    n = clusters + blocks + table;
    if (n === last && generousIncrease) {
      clusters += Math.ceil(table / 2);
      n = 0;
      generousIncrease = false;
    }
  } while (n !== last);
  return { bytes: (blocks + table) * clusterSize, blocks };
}

/** Reads and writes entries of `2^order` bits in a refcount block. */
export function getRefcount(view: DataView, order: number, index: number): number {
  switch (order) {
    case 0:
      return (view.getUint8(index >>> 3) >>> (index & 7)) & 1;
    case 1:
      return (view.getUint8(index >>> 2) >>> (2 * (index & 3))) & 3;
    case 2:
      return (view.getUint8(index >>> 1) >>> (4 * (index & 1))) & 15;
    case 3:
      return view.getUint8(index);
    case 4:
      return view.getUint16(index * 2);
    case 5:
      return view.getUint32(index * 4);
    default:
      return view.getUint32(index * 8) * 2 ** 32 + view.getUint32(index * 8 + 4);
  }
}

export function setRefcount(view: DataView, order: number, index: number, value: number): void {
  switch (order) {
    case 0:
    case 1:
    case 2: {
      const bits = 2 ** order;
      const perByte = 8 / bits;
      const byte = Math.floor(index / perByte);
      const shift = (index % perByte) * bits;
      const mask = ((1 << bits) - 1) << shift;
      view.setUint8(byte, (view.getUint8(byte) & ~mask) | (value << shift));
      return;
    }
    case 3:
      view.setUint8(index, value);
      return;
    case 4:
      view.setUint16(index * 2, value);
      return;
    case 5:
      view.setUint32(index * 4, value);
      return;
    default:
      view.setUint32(index * 8, Math.floor(value / 2 ** 32));
      view.setUint32(index * 8 + 4, value >>> 0);
  }
}

export class Refcounts {
  tableOffset: number;
  /** Entries in the refcount table. */
  tableSize: number;
  /** Raw entries, reserved bits included, and the block offsets they hold (-1: not representable). */
  private table: BigUint64Array;
  private offsets: Float64Array;
  /** Index of the last refcount table entry in use. */
  maxTableIndex = 0;
  /** Where the search for free clusters starts (s->free_cluster_index). */
  freeClusterIndex = 0;
  /** Where the next compressed cluster may go, inside a cluster already in use; 0 for none (s->free_byte_offset). */
  freeByteOffset = 0;
  /** While set, freed ranges are queued and discarded together (s->cache_discards). */
  cacheDiscards = false;
  private discards: Array<{ offset: number; bytes: number }> = [];
  readonly refcountMax: number;

  constructor(
    private readonly s: Qcow2State,
    tableOffset: number,
    tableBytes: Uint8Array,
  ) {
    this.tableOffset = tableOffset;
    this.tableSize = tableBytes.length / 8;
    this.table = new BigUint64Array(this.tableSize);
    this.offsets = new Float64Array(this.tableSize);
    const view = new DataView(tableBytes.buffer, tableBytes.byteOffset, tableBytes.byteLength);
    for (let i = 0; i < this.tableSize; i++) this.table[i] = view.getBigUint64(i * 8);
    this.refreshOffsets();
    const bits = 2 ** s.refcountOrder;
    this.refcountMax = bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
  }

  /** The refcount block a table entry points to (0 = none; -1 = beyond what we can address). */
  blockOffset(index: number): number {
    return this.offsets[index];
  }

  private refreshOffsets(): void {
    for (let i = 0; i < this.tableSize; i++) this.offsets[i] = safeOffset(this.table[i] & REFT_OFFSET_MASK);
    let i = this.tableSize - 1;
    while (i > 0 && this.offsets[i] === 0) i--;
    this.maxTableIndex = Math.max(i, 0);
  }

  private setEntry(index: number, blockOffset: number): void {
    this.table[index] = BigInt(blockOffset);
    this.offsets[index] = blockOffset;
    this.maxTableIndex = Math.max(this.maxTableIndex, index);
  }

  /** A refcount block offset that is usable, or a corruption. */
  private checkedBlockOffset(tableIndex: number): number {
    const blockOffset = this.offsets[tableIndex];
    if (blockOffset < 0 || this.s.offsetIntoCluster(blockOffset)) {
      const raw = Number(this.table[tableIndex] & REFT_OFFSET_MASK);
      this.s.signalCorruption(true, `Refblock offset ${hex(raw)} unaligned (reftable index: ${hex(tableIndex)})`);
    }
    return blockOffset;
  }

  private loadBlock(offset: number): number {
    this.s.event('refblock_load');
    return this.s.refcountCache.get(offset);
  }

  /** qcow2_get_refcount(). */
  get(clusterIndex: number): number {
    const s = this.s;
    const tableIndex = Math.floor(clusterIndex / s.refcountBlockSize);
    if (tableIndex >= this.tableSize) return 0;
    if (!this.offsets[tableIndex]) return 0;
    const blockOffset = this.checkedBlockOffset(tableIndex);
    const block = s.refcountCache.get(blockOffset);
    const value = getRefcount(s.refcountCache.view(block), s.refcountOrder, clusterIndex % s.refcountBlockSize);
    s.refcountCache.put(block);
    return value;
  }

  private inSameBlock(a: number, b: number): boolean {
    const span = this.s.clusterSize * this.s.refcountBlockSize;
    return Math.floor(a / span) === Math.floor(b / span);
  }

  /**
   * alloc_refcount_block(): the cached refcount block for `clusterIndex`,
   * created (and the table grown) when missing. Creating one moves free
   * space, so the caller must restart its search: `retry` is then set and
   * the block is still held.
   */
  private allocBlock(clusterIndex: number): { index: number; retry: boolean } {
    const s = this.s;
    const cache = s.refcountCache;
    s.event('refblock_alloc');
    const tableIndex = Math.floor(clusterIndex / s.refcountBlockSize);
    if (tableIndex < this.tableSize) {
      if (this.offsets[tableIndex]) {
        return { index: this.loadBlock(this.checkedBlockOffset(tableIndex)), retry: false };
      }
    }

    // The refcount table will change, and it may be what the L2 tables depend on.
    s.l2Cache.flush();
    const newBlock = this.allocClustersNoref(s.clusterSize, Number.MAX_SAFE_INTEGER);
    if (newBlock === 0) s.signalCorruption(true, 'Preventing invalid allocation of refcount block at offset 0');

    let held = -1;
    try {
      if (this.inSameBlock(newBlock, clusterIndex * s.clusterSize)) {
        held = cache.getEmpty(newBlock);
        cache.data(held).fill(0);
        // The block describes itself.
        setRefcount(cache.view(held), s.refcountOrder, (newBlock / s.clusterSize) % s.refcountBlockSize, 1);
      } else {
        // Described by another block: this recurses at most twice.
        this.update(newBlock, s.clusterSize, 1, false, 'never');
        cache.flush();
        held = cache.getEmpty(newBlock);
        cache.data(held).fill(0);
      }
      s.event('refblock_alloc_write');
      cache.markDirty(held);
      cache.flush();

      if (tableIndex < this.tableSize) {
        s.event('refblock_alloc_hookup');
        s.writeSync(this.tableOffset + tableIndex * 8, be64(newBlock));
        this.setEntry(tableIndex, newBlock);
        return { index: held, retry: true };
      }
      cache.put(held);
      held = -1;
    } catch (error) {
      if (held >= 0) cache.put(held);
      throw error;
    }

    // The table is full: new self-describing refcount structures go at the end.
    s.event('reftable_grow');
    const blocksUsed = Math.ceil(Math.max(clusterIndex + 1, newBlock / s.clusterSize + 1) / s.refcountBlockSize);
    const metaOffset = blocksUsed * s.refcountBlockSize * s.clusterSize;
    this.area(metaOffset, 0, false, tableIndex, newBlock);
    return { index: this.loadBlock(newBlock), retry: true };
  }

  /**
   * qcow2_refcount_area(): a new refcount table and the refcount blocks to
   * cover everything up to its own end plus `additionalClusters`, written at
   * `startOffset` (the end of the image), then switched to in the header.
   * Returns where the additional clusters may go.
   */
  area(
    startOffset: number,
    additionalClusters: number,
    exactSize: boolean,
    newBlockIndex: number,
    newBlockOffset: number,
  ): number {
    const s = this.s;
    const cs = s.clusterSize;
    const cache = s.refcountCache;
    const { blocks: totalBlocks } = refcountMetadataSize(
      startOffset / cs + additionalClusters,
      cs,
      s.refcountOrder,
      !exactSize,
    );
    if (totalBlocks > QCOW_MAX_REFTABLE_SIZE) throw new IoError(ERRNO.EFBIG);
    const areaTableIndex = Math.floor(startOffset / cs / s.refcountBlockSize);
    let tableSize = exactSize ? totalBlocks : totalBlocks + Math.ceil(totalBlocks / 2);
    tableSize = Math.ceil(tableSize / (cs / 8)) * (cs / 8);
    const tableClusters = (tableSize * 8) / cs;
    if (tableSize > QCOW_MAX_REFTABLE_SIZE) throw new IoError(ERRNO.EFBIG);

    const newTable = new BigUint64Array(tableSize);
    if (tableSize > this.maxTableIndex) {
      newTable.set(this.table.subarray(0, Math.min(this.maxTableIndex + 1, this.tableSize)));
    } else {
      newTable.set(this.table.subarray(0, tableSize));
    }
    if (newBlockOffset) newTable[newBlockIndex] = BigInt(newBlockOffset);

    let additionalBlocks = 0;
    for (let i = areaTableIndex; i < totalBlocks; i++) if (!newTable[i]) additionalBlocks++;
    const tableOffset = startOffset + additionalBlocks * cs;
    const endOffset = tableOffset + tableClusters * cs;

    let blockOffset = startOffset;
    for (let i = areaTableIndex; i < totalBlocks; i++) {
      let block: number;
      if (newTable[i]) {
        const existing = safeOffset(newTable[i] & REFT_OFFSET_MASK);
        if (existing <= 0 || s.offsetIntoCluster(existing)) {
          s.signalCorruption(true, `Refblock offset ${hex(existing)} unaligned (reftable index: ${hex(i)})`);
        }
        block = cache.get(existing);
      } else {
        block = cache.getEmpty(blockOffset);
        cache.data(block).fill(0);
        cache.markDirty(block);
        newTable[i] = BigInt(blockOffset);
        blockOffset += cs;
      }
      const firstCovered = i * s.refcountBlockSize * cs;
      if (firstCovered < endOffset) {
        let j = firstCovered < startOffset ? (startOffset - firstCovered) / cs : 0;
        const endIndex = Math.min((endOffset - firstCovered) / cs, s.refcountBlockSize);
        for (; j < endIndex; j++) setRefcount(cache.view(block), s.refcountOrder, j, 1);
        cache.markDirty(block);
      }
      cache.put(block);
    }

    s.event('refblock_alloc_write_blocks');
    cache.flush();

    const tableBytes = new Uint8Array(tableSize * 8);
    const view = new DataView(tableBytes.buffer);
    for (let i = 0; i < totalBlocks; i++) view.setBigUint64(i * 8, newTable[i]);
    s.event('refblock_alloc_write_table');
    s.writeSync(tableOffset, tableBytes);

    const pointer = new Uint8Array(12);
    const pointerView = new DataView(pointer.buffer);
    pointerView.setBigUint64(0, BigInt(tableOffset));
    pointerView.setUint32(8, tableClusters);
    s.event('refblock_alloc_switch_table');
    s.writeSync(48, pointer);

    const oldOffset = this.tableOffset;
    const oldSize = this.tableSize;
    this.table = newTable;
    this.offsets = new Float64Array(tableSize);
    this.tableSize = tableSize;
    this.tableOffset = tableOffset;
    this.refreshOffsets();
    this.free(oldOffset, oldSize * 8, 'other');
    return endOffset;
  }

  /** qcow2_process_discards(): pass the queued freed ranges down to the file. */
  processDiscards(succeeded: boolean): void {
    const queued = this.discards;
    this.discards = [];
    if (!succeeded) return;
    for (const { offset, bytes } of queued) this.s.discardFile(offset, bytes);
  }

  /** update_refcount_discard(): queue a freed cluster, merging neighbours. */
  private queueDiscard(offset: number, length: number): void {
    let region = this.discards.find((d) => {
      const start = Math.min(offset, d.offset);
      const end = Math.max(offset + length, d.offset + d.bytes);
      return end - start <= length + d.bytes;
    });
    if (region) {
      const start = Math.min(offset, region.offset);
      region.bytes = Math.max(offset + length, region.offset + region.bytes) - start;
      region.offset = start;
    } else {
      region = { offset, bytes: length };
      this.discards.push(region);
    }
    const d = region;
    this.discards = this.discards.filter((p) => {
      if (p === d || p.offset > d.offset + d.bytes || d.offset > p.offset + p.bytes) return true;
      d.offset = Math.min(d.offset, p.offset);
      d.bytes += p.bytes;
      return false;
    });
  }

  /**
   * update_refcount(): add or subtract `addend` for every cluster touched by
   * [offset, offset + length). On failure the clusters already updated are
   * put back, and the error (or the retry signal) is rethrown.
   */
  update(offset: number, length: number, addend: number, decrease: boolean, type: DiscardType): void {
    const s = this.s;
    const cache = s.refcountCache;
    if (length < 0) throw new IoError(ERRNO.EINVAL);
    if (length === 0) return;
    if (decrease) cache.setDependency(s.l2Cache);

    const start = s.startOfCluster(offset);
    const last = s.startOfCluster(offset + length - 1);
    let block = -1;
    let oldTableIndex = -1;
    let clusterOffset = start;
    let failure: unknown;
    try {
      for (; clusterOffset <= last; clusterOffset += s.clusterSize) {
        const clusterIndex = clusterOffset / s.clusterSize;
        const tableIndex = Math.floor(clusterIndex / s.refcountBlockSize);
        if (tableIndex !== oldTableIndex) {
          if (block >= 0) cache.put(block);
          block = -1;
          const allocated = this.allocBlock(clusterIndex);
          block = allocated.index;
          if (allocated.retry) {
            // Try the same clusters first when the caller searches again.
            this.freeClusterIndex = Math.min(this.freeClusterIndex, start / s.clusterSize);
            throw new RetryAllocation();
          }
        }
        oldTableIndex = tableIndex;
        cache.markDirty(block);
        const blockIndex = clusterIndex % s.refcountBlockSize;
        const view = cache.view(block);
        let refcount = getRefcount(view, s.refcountOrder, blockIndex);
        if (decrease ? refcount - addend < 0 : refcount + addend > this.refcountMax) throw new IoError(ERRNO.EINVAL);
        refcount = decrease ? refcount - addend : refcount + addend;
        if (refcount === 0 && clusterIndex < this.freeClusterIndex) this.freeClusterIndex = clusterIndex;
        setRefcount(view, s.refcountOrder, blockIndex, refcount);

        if (refcount === 0) {
          // QEMU looks the freed range's start up in the caches (its `offset`).
          const cachedBlock = cache.indexOf(offset);
          if (cachedBlock >= 0) {
            cache.put(block);
            block = -1;
            oldTableIndex = -1;
            cache.discard(cachedBlock);
          }
          const cachedL2 = s.l2Cache.indexOf(offset);
          if (cachedL2 >= 0) s.l2Cache.discard(cachedL2);
          if (s.discardPassthrough[type]) this.queueDiscard(clusterOffset, s.clusterSize);
        }
      }
    } catch (error) {
      failure = error;
    }
    if (!this.cacheDiscards) this.processDiscards(failure === undefined);
    if (block >= 0) cache.put(block);
    if (failure !== undefined) {
      // Undo what was done; this may work (e.g. after ENOSPC on a new block).
      try {
        this.update(offset, clusterOffset - offset, addend, !decrease, 'never');
      } catch {
        // QEMU ignores the result of the undo.
      }
      throw failure;
    }
  }

  /**
   * alloc_clusters_noref(): the first run of `size` bytes of free clusters
   * from the search start. Refcounts past the end of the table read as 0,
   * so the search ends; a corrupt image whose refcounts claim clusters far
   * past the end of the file is refused instead of scanned for ever.
   */
  allocClustersNoref(size: number, max: number): number {
    const s = this.s;
    if (this.cacheDiscards) this.processDiscards(true);
    const clusters = s.sizeToClusters(size);
    const limit = Math.ceil(s.file.length / s.clusterSize) + clusters + 2 ** 20;
    for (let found = 0; found < clusters; ) {
      const index = this.freeClusterIndex++;
      if (this.get(index) !== 0) {
        found = 0;
        if (index > limit) s.signalCorruption(true, 'Refcounts claim clusters far past the end of the image file');
      } else {
        found++;
      }
    }
    if (this.freeClusterIndex > 0 && this.freeClusterIndex - 1 > Math.floor(max / s.clusterSize)) {
      throw new IoError(ERRNO.EFBIG);
    }
    return (this.freeClusterIndex - clusters) * s.clusterSize;
  }

  /** qcow2_alloc_clusters(). */
  allocClusters(size: number): number {
    this.s.event('cluster_alloc');
    for (;;) {
      const offset = this.allocClustersNoref(size, MAX_CLUSTER_OFFSET);
      try {
        this.update(offset, size, 1, false, 'never');
        return offset;
      } catch (error) {
        if (!(error instanceof RetryAllocation)) throw error;
      }
    }
  }

  /**
   * qcow2_alloc_bytes(): `size` bytes for a compressed cluster, packed after
   * the previous one; they spill into the next cluster when that one is free
   * and adjacent, else start a new cluster. Every cluster the bytes touch
   * gains a reference.
   */
  allocBytes(size: number): number {
    const s = this.s;
    s.event('cluster_alloc_bytes');
    let offset = this.freeByteOffset;
    if (offset && this.get(Math.floor(offset / s.clusterSize)) === this.refcountMax) offset = 0;
    let freeInCluster = s.clusterSize - s.offsetIntoCluster(offset);
    for (;;) {
      if (!offset || freeInCluster < size) {
        const newCluster = this.allocClustersNoref(s.clusterSize, MAX_CLUSTER_OFFSET);
        if (newCluster === 0) s.signalCorruption(true, 'Preventing invalid allocation of compressed cluster at offset 0');
        if (!offset || Math.ceil(offset / s.clusterSize) * s.clusterSize !== newCluster) {
          offset = newCluster;
          freeInCluster = s.clusterSize;
        } else {
          freeInCluster += s.clusterSize;
        }
      }
      try {
        this.update(offset, size, 1, false, 'never');
        break;
      } catch (error) {
        offset = 0;
        if (!(error instanceof RetryAllocation)) throw error;
      }
    }
    // The new references must reach the disk before the L2 entry that needs them.
    s.l2Cache.setDependency(s.refcountCache);
    this.freeByteOffset = s.offsetIntoCluster(offset + size) ? offset + size : 0;
    return offset;
  }

  /** qcow2_alloc_clusters_at(): how many of `count` clusters at `offset` could be taken. */
  allocClustersAt(offset: number, count: number): number {
    if (count === 0) return 0;
    for (;;) {
      let free = 0;
      const first = offset / this.s.clusterSize;
      while (free < count && this.get(first + free) === 0) free++;
      try {
        this.update(offset, free * this.s.clusterSize, 1, false, 'never');
        return free;
      } catch (error) {
        if (!(error instanceof RetryAllocation)) throw error;
      }
    }
  }

  /** qcow2_free_clusters(): failures are reported and the clusters leak, as in QEMU. */
  free(offset: number, size: number, type: DiscardType): void {
    this.s.event('cluster_free');
    try {
      this.update(offset, size, 1, true, type);
    } catch {
      // QEMU prints "qcow2_free_clusters failed" and leaks the clusters.
    }
  }

}

/** An offset as a number, or -1 when a number cannot hold it exactly. */
export function safeOffset(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(value);
}

export function be64(value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(value));
  return bytes;
}

/** printf's %#x: no prefix for zero. */
export function hex(value: number): string {
  return value === 0 ? '0' : `0x${value.toString(16)}`;
}
