/**
 * Refcount checking and repair (qcow2_check_refcounts() with
 * BDRV_FIX_ERRORS | BDRV_FIX_LEAKS), as QEMU runs it when it opens a dirty
 * image (lazy refcounts) read-write: count every reference the metadata
 * makes, set every refcount to its count (building new refcount structures
 * at the end of the file when some are missing), then fix the COPIED flags.
 */
import { ERRNO, IoError } from '../../io-error';
import { genericError } from '../../qmp-error';
import { AUTOCLEAR, INCOMPAT } from './format';
import { CT, entryOffset, entryType, type Mapping } from './mapping';
import { Refcounts, refcountMetadataSize, setRefcount } from './refcounts';
import { L1E_OFFSET_MASK, OL, QCOW_OFLAG_COPIED, type Qcow2State } from './state';

/** Counting more clusters than this would take too much memory. */
const MAX_CHECKED_CLUSTERS = 2 ** 25;
const COPIED_BIT = 0x80000000;

interface CheckResult {
  /** Clusters whose refcount is lower than their references. */
  corruptions: number;
  /** Clusters whose refcount is higher than their references. */
  leaks: number;
  /** Metadata that could not be read or makes no sense. */
  checkErrors: number;
  /** The expected refcount of every cluster. */
  references: Uint32Array;
  /** QEMU's stderr lines. */
  messages: string[];
}

class ReferenceCounter {
  references: Uint32Array;
  checkErrors = 0;
  readonly messages: string[] = [];

  constructor(private readonly s: Qcow2State) {
    this.references = new Uint32Array(Math.max(1, Math.ceil(s.file.length / s.clusterSize)));
  }

  /** qcow2_inc_refcounts_imrt(): one more reference to every cluster of the range. */
  add(offset: number, bytes: number): void {
    if (bytes <= 0) return;
    const s = this.s;
    const first = Math.floor(offset / s.clusterSize);
    const last = Math.floor((offset + bytes - 1) / s.clusterSize);
    if (last >= MAX_CHECKED_CLUSTERS) {
      this.checkErrors++;
      this.messages.push(`ERROR: reference to cluster ${last} beyond what Bitmap Lab checks`);
      return;
    }
    if (last >= this.references.length) {
      const grown = new Uint32Array(Math.min(MAX_CHECKED_CLUSTERS, Math.max(last + 1, this.references.length * 2)));
      grown.set(this.references);
      this.references = grown;
    }
    for (let i = first; i <= last; i++) this.references[i]++;
  }
}

/** calculate_refcounts(): what every cluster's refcount should be. */
function countReferences(s: Qcow2State, mapping: Mapping, refcountStructures: boolean): ReferenceCounter {
  const counter = new ReferenceCounter(s);
  const cs = s.clusterSize;
  counter.add(0, cs);
  countL1(s, mapping, counter, s.l1TableOffset, s.l1Table);
  for (const snapshot of s.snapshots) {
    const bytes = s.readFile(snapshot.l1TableOffset, snapshot.l1Size * 8);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const table = new BigUint64Array(snapshot.l1Size);
    for (let i = 0; i < snapshot.l1Size; i++) table[i] = view.getBigUint64(i * 8);
    countL1(s, mapping, counter, snapshot.l1TableOffset, table);
  }
  if (s.snapshots.length) counter.add(s.snapshotsOffset, s.snapshotTableBytes());
  if (refcountStructures) counter.add(s.refcounts.tableOffset, s.refcounts.tableSize * 8);
  countBitmaps(s, counter);
  if (refcountStructures) {
    for (let i = 0; i < s.refcounts.tableSize; i++) {
      const block = s.refcounts.blockOffset(i);
      if (!block) continue;
      if (block < 0 || block % cs) {
        counter.checkErrors++;
        counter.messages.push(`ERROR refcount block ${i} is not cluster aligned; refcount table entry corrupted`);
        continue;
      }
      counter.add(block, cs);
    }
  }
  return counter;
}

function countL1(s: Qcow2State, mapping: Mapping, counter: ReferenceCounter, l1Offset: number, l1: BigUint64Array): void {
  const cs = s.clusterSize;
  counter.add(l1Offset, l1.length * 8);
  for (let i = 0; i < l1.length; i++) {
    const l2Offset = Number(l1[i] & L1E_OFFSET_MASK);
    if (!l2Offset) continue;
    if (l2Offset % cs) {
      counter.checkErrors++;
      counter.messages.push(`ERROR l2_offset=${l2Offset.toString(16)}: Table is not cluster aligned; L1 entry corrupted`);
      continue;
    }
    counter.add(l2Offset, cs);
    const table = s.readFile(l2Offset, cs);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let j = 0; j < s.l2Size; j++) {
      const hi = view.getUint32(j * 8);
      const lo = view.getUint32(j * 8 + 4);
      const type = entryType(hi, lo);
      if (type === CT.compressed) {
        const { offset, bytes } = mapping.compressedLocation({ hi, lo });
        counter.add(offset, bytes);
      } else if (type === CT.normal || type === CT.zeroAlloc) {
        const offset = entryOffset(hi, lo);
        if (offset < 0 || offset % cs) {
          counter.checkErrors++;
          counter.messages.push(`ERROR offset=${Math.max(offset, 0).toString(16)}: Cluster is not properly aligned; L2 entry corrupted.`);
          continue;
        }
        counter.add(offset, cs);
      }
    }
  }
}

/** qcow2_check_bitmaps_refcounts(). */
function countBitmaps(s: Qcow2State, counter: ReferenceCounter): void {
  const ext = s.bitmapsExt;
  if (!ext || !(s.autoclearFeatures & AUTOCLEAR.bitmaps)) return;
  counter.add(ext.directoryOffset, ext.directorySize);
  const dir = s.readFile(ext.directoryOffset, ext.directorySize);
  const view = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
  for (let at = 0, n = 0; at + 24 <= dir.length && n < ext.nbBitmaps; n++) {
    const tableOffset = Number(view.getBigUint64(at));
    const tableSize = view.getUint32(at + 8);
    counter.add(tableOffset, tableSize * 8);
    const table = s.readFile(tableOffset, tableSize * 8);
    const tableView = new DataView(table.buffer, table.byteOffset, table.byteLength);
    for (let i = 0; i < tableSize; i++) {
      const offset = entryOffset(tableView.getUint32(i * 8), tableView.getUint32(i * 8 + 4));
      if (offset > 0) counter.add(offset, s.clusterSize);
    }
    at += Math.ceil((24 + view.getUint16(at + 18) + view.getUint32(at + 20)) / 8) * 8;
  }
}

/** Checks refcounts against references without changing anything (qemu-img check's refcount part). */
function checkRefcounts(s: Qcow2State, mapping: Mapping): CheckResult {
  const counter = countReferences(s, mapping, true);
  const result: CheckResult = {
    corruptions: 0,
    leaks: 0,
    checkErrors: counter.checkErrors,
    references: counter.references,
    messages: counter.messages,
  };
  const clusters = Math.max(counter.references.length, s.refcounts.tableSize * s.refcountBlockSize);
  for (let i = 0; i < clusters && i < MAX_CHECKED_CLUSTERS; i++) {
    const expected = i < counter.references.length ? counter.references[i] : 0;
    const actual = s.refcounts.get(i);
    if (actual === expected) continue;
    if (actual < expected) {
      result.corruptions++;
      result.messages.push(`ERROR cluster ${i} refcount=${actual} reference=${expected}`);
    } else {
      result.leaks++;
      result.messages.push(`Leaked cluster ${i} refcount=${actual} reference=${expected}`);
    }
  }
  return result;
}

/**
 * Repairs the refcounts of a dirty image and clears the dirty bit. A
 * referenced cluster without a refcount means the refcount structures are
 * rebuilt from scratch past the end of the file.
 */
export function repairImage(s: Qcow2State, mapping: Mapping, log: (message: string) => void = () => {}): void {
  const check = checkRefcounts(s, mapping);
  if (check.checkErrors) throw new IoError(ERRNO.EIO);
  const references = check.references;
  let rebuild = false;
  for (let i = 0; i < references.length && !rebuild; i++) {
    if (references[i] > 0 && s.refcounts.get(i) === 0) rebuild = true;
  }
  if (rebuild) {
    rebuildRefcounts(s, mapping, log);
  } else {
    const clusters = Math.max(references.length, s.refcounts.tableSize * s.refcountBlockSize);
    for (let i = 0; i < clusters && i < MAX_CHECKED_CLUSTERS; i++) {
      const expected = i < references.length ? references[i] : 0;
      const actual = s.refcounts.get(i);
      if (actual === expected) continue;
      log(`Repairing cluster ${i} refcount=${actual} reference=${expected}`);
      s.refcounts.update(i * s.clusterSize, 1, Math.abs(actual - expected), actual > expected, 'always');
    }
  }
  fixCopiedFlags(s, mapping);
  s.markClean();
  // qcow2_mark_consistent(): the corrupt bit goes too.
  if (s.incompatibleFeatures & INCOMPAT.corrupt) {
    s.flushCaches();
    s.incompatibleFeatures &= ~INCOMPAT.corrupt;
    s.updateHeader();
  }
}

/**
 * New self-describing refcount blocks and table after the end of the file,
 * holding the counted references; the old structures are then free.
 */
function rebuildRefcounts(s: Qcow2State, mapping: Mapping, log: (message: string) => void): void {
  log('Rebuilding refcount structure');
  const cs = s.clusterSize;
  const counter = countReferences(s, mapping, false);
  let used = counter.references.length;
  while (used > 0 && counter.references[used - 1] === 0) used--;
  const start = Math.max(Math.ceil(s.file.length / cs), used);
  // Blocks and table sized to cover everything up to their own end.
  const { blocks } = refcountMetadataSize(start, cs, s.refcountOrder, false);
  const tableClusters = Math.ceil((blocks * 8) / cs);
  const blockBytes = new Uint8Array(blocks * cs);
  const perBlock = s.refcountBlockSize;
  const end = start + blocks + tableClusters;
  if (end > MAX_CHECKED_CLUSTERS) throw genericError('Image too large for Bitmap Lab to rebuild its refcounts');
  const refcount = (i: number): number => (i < counter.references.length ? counter.references[i] : 0) + (i >= start && i < end ? 1 : 0);
  const blockCount = Math.ceil(end / perBlock);
  if (blockCount > blocks) throw new IoError(ERRNO.EIO);
  for (let i = 0; i < end; i++) {
    const value = refcount(i);
    if (value) {
      const block = Math.floor(i / perBlock);
      setRefcount(new DataView(blockBytes.buffer, block * cs, cs), s.refcountOrder, i % perBlock, value);
    }
  }
  const table = new Uint8Array(tableClusters * cs);
  const tableView = new DataView(table.buffer);
  for (let b = 0; b < blocks; b++) tableView.setBigUint64(b * 8, BigInt((start + b) * cs));
  s.refcountCache.empty();
  s.preWriteOverlapCheck(0, start * cs, blockBytes.length);
  s.file.write(start * cs, blockBytes);
  s.file.write((start + blocks) * cs, table);
  s.file.flush();
  const pointer = new Uint8Array(12);
  const pointerView = new DataView(pointer.buffer);
  pointerView.setBigUint64(0, BigInt((start + blocks) * cs));
  pointerView.setUint32(8, tableClusters);
  s.writeSync(48, pointer);
  s.refcounts = new Refcounts(s, (start + blocks) * cs, table);
}

/** check_oflag_copied() with fixing: COPIED exactly where the refcount is 1. */
function fixCopiedFlags(s: Qcow2State, mapping: Mapping): void {
  const cs = s.clusterSize;
  s.l2Cache.empty();
  for (const { l1Index, offset: l2Offset } of mapping.l2Tables()) {
    const l2Refcount = s.refcounts.get(l2Offset / cs);
    const copied = (s.l1Table[l1Index] & QCOW_OFLAG_COPIED) !== 0n;
    if ((l2Refcount === 1) !== copied) {
      s.l1Table[l1Index] = l2Refcount === 1 ? s.l1Table[l1Index] | QCOW_OFLAG_COPIED : s.l1Table[l1Index] & ~QCOW_OFLAG_COPIED;
      mapping.writeL1Entry(l1Index);
    }
    const table = s.readFile(l2Offset, cs);
    const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
    let changed = false;
    for (let j = 0; j < s.l2Size; j++) {
      const hi = view.getUint32(j * 8);
      const lo = view.getUint32(j * 8 + 4);
      const type = entryType(hi, lo);
      if (type !== CT.normal && type !== CT.zeroAlloc) continue;
      const one = s.refcounts.get(entryOffset(hi, lo) / cs) === 1;
      if (one !== ((hi & COPIED_BIT) !== 0)) {
        view.setUint32(j * 8, one ? (hi | COPIED_BIT) >>> 0 : hi & ~COPIED_BIT);
        changed = true;
      }
    }
    if (changed) {
      s.preWriteOverlapCheck(OL.activeL2, l2Offset, cs);
      s.file.write(l2Offset, table);
    }
  }
  s.refcountCache.flush();
}
