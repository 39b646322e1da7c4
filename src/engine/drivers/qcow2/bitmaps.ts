/**
 * Persistent dirty bitmaps (block/qcow2-bitmap.c; SPEC §4): the bitmap
 * directory and its checks, loading bitmaps on open (and marking them
 * in_use on disk with the in-place update protocol), storing them on close,
 * removing one, the add-time checks, and the list `qemu-img info` shows.
 */
import type { BlockNode } from '../../block-node';
import type { DirtyBitmap } from '../../dirty-bitmap';
import { ERRNO, IoError } from '../../io-error';
import { genericError } from '../../qmp-error';
import { describeError as reason } from './errors';
import { AUTOCLEAR, QCOW2_MAX_BITMAPS, QCOW2_MAX_BITMAP_DIRECTORY_SIZE } from './format';
import { OL, type Qcow2State } from './state';

const MAX_TABLE_SIZE = 0x8000000;
const MAX_PHYS_SIZE = 0x20000000;
const MAX_GRANULARITY_BITS = 31;
const MIN_GRANULARITY_BITS = 9;
const MAX_NAME_SIZE = 1023;
const RESERVED_FLAGS = 0xfffffffc;
export const FLAG_IN_USE = 1;
export const FLAG_AUTO = 2;
const ENTRY_HEADER = 24;
const TYPE_DIRTY_TRACKING = 1;
/** Bitmap table entries: bits 1-8 and 56-63 reserved, 9-55 offset, 0 "all ones". */
const TABLE_RESERVED_HI = 0xff000000;
const TABLE_RESERVED_LO = 0x1fe;

/** One bitmap as the directory describes it (Qcow2Bitmap). */
export interface StoredBitmap {
  tableOffset: number;
  tableSize: number;
  flags: number;
  granularityBits: number;
  name: string;
  /** The in-memory bitmap to store (bm->dirty_bitmap). */
  bitmap?: DirtyBitmap;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A name is bytes up to the first NUL (g_strndup()), shown as UTF-8. */
function decodeName(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return utf8Decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function entrySize(nameBytes: number): number {
  return Math.ceil((ENTRY_HEADER + nameBytes) / 8) * 8;
}

/** 8-byte words of the serialised bit array for `bits` bits (hbitmap_serialization_size). */
function serializedBytes(bits: number): number {
  return 8 * Math.ceil(bits / 64);
}


export class PersistentBitmaps {
  constructor(
    private readonly s: Qcow2State,
    private readonly node: BlockNode,
  ) {}

  private get nbBitmaps(): number {
    return this.s.bitmapsExt?.nbBitmaps ?? 0;
  }

  /** check_dir_entry(). */
  private entryValid(e: {
    tableOffset: number;
    tableSize: number;
    flags: number;
    type: number;
    granularityBits: number;
    nameSize: number;
  }): boolean {
    const cs = this.s.clusterSize;
    if (
      e.tableSize === 0 ||
      e.tableOffset === 0 ||
      e.tableOffset % cs !== 0 ||
      e.tableSize > MAX_TABLE_SIZE ||
      e.granularityBits > MAX_GRANULARITY_BITS ||
      e.granularityBits < MIN_GRANULARITY_BITS ||
      (e.flags & RESERVED_FLAGS) >>> 0 !== 0 ||
      e.nameSize > MAX_NAME_SIZE ||
      e.type !== TYPE_DIRTY_TRACKING
    ) {
      return false;
    }
    const physicalBytes = e.tableSize * cs;
    if (physicalBytes > MAX_PHYS_SIZE) return false;
    return !!(e.flags & FLAG_IN_USE) || this.node.length <= physicalBytes * 8 * 2 ** e.granularityBits;
  }

  /** bitmap_list_load(): the directory, checked entry by entry. */
  loadDirectory(): StoredBitmap[] {
    const ext = this.s.bitmapsExt;
    if (!ext) return [];
    const size = ext.directorySize;
    if (size === 0) throw genericError('Requested bitmap directory size is zero');
    if (size > QCOW2_MAX_BITMAP_DIRECTORY_SIZE) throw genericError('Requested bitmap directory size is too big');
    let dir: Uint8Array;
    try {
      dir = this.s.readFile(ext.directoryOffset, size);
    } catch (error) {
      throw genericError(`Failed to read bitmap directory: ${reason(error)}`);
    }
    const view = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
    const list: StoredBitmap[] = [];
    let at = 0;
    const broken = () => genericError('Broken bitmap directory');
    while (at < size) {
      if (at + ENTRY_HEADER > size) throw broken();
      if (list.length + 1 > ext.nbBitmaps) throw genericError('More bitmaps found than specified in header extension');
      const tableOffsetBig = view.getBigUint64(at);
      const entry = {
        tableOffset: tableOffsetBig > BigInt(Number.MAX_SAFE_INTEGER) ? 1 : Number(tableOffsetBig),
        tableSize: view.getUint32(at + 8),
        flags: view.getUint32(at + 12),
        type: view.getUint8(at + 16),
        granularityBits: view.getUint8(at + 17),
        nameSize: view.getUint16(at + 18),
        extraDataSize: view.getUint32(at + 20),
      };
      const next = at + Math.ceil((ENTRY_HEADER + entry.nameSize + entry.extraDataSize) / 8) * 8;
      if (next > size) throw broken();
      if (entry.extraDataSize !== 0) throw genericError('Bitmap extra data is not supported');
      const name = decodeName(dir.subarray(at + ENTRY_HEADER, at + ENTRY_HEADER + entry.nameSize));
      if (!this.entryValid(entry)) throw genericError(`Bitmap '${name}' doesn't satisfy the constraints`);
      list.push({
        tableOffset: entry.tableOffset,
        tableSize: entry.tableSize,
        flags: entry.flags,
        granularityBits: entry.granularityBits,
        name,
      });
      at = next;
    }
    if (list.length !== ext.nbBitmaps) throw genericError('Less bitmaps found than specified in header extension');
    if (at !== size) throw broken();
    return list;
  }

  /** bitmap_table_load(): the table, every entry checked (EINVAL otherwise). */
  private loadTable(bm: StoredBitmap): { hi: Uint32Array; lo: Uint32Array } {
    const bytes = this.s.readFile(bm.tableOffset, bm.tableSize * 8);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const hi = new Uint32Array(bm.tableSize);
    const lo = new Uint32Array(bm.tableSize);
    for (let i = 0; i < bm.tableSize; i++) {
      hi[i] = view.getUint32(i * 8);
      lo[i] = view.getUint32(i * 8 + 4);
      if (!this.tableEntryValid(hi[i], lo[i])) throw new IoError(ERRNO.EINVAL);
    }
    return { hi, lo };
  }

  /** check_table_entry(). */
  private tableEntryValid(hi: number, lo: number): boolean {
    if (hi & TABLE_RESERVED_HI || lo & TABLE_RESERVED_LO) return false;
    const offset = (hi & 0x00ffffff) * 2 ** 32 + ((lo & 0xfffffe00) >>> 0);
    if (offset !== 0) {
      if (lo & 1) return false;
      if (offset % this.s.clusterSize !== 0) return false;
    }
    return true;
  }

  /** load_bitmap_data(): the bits, cluster by cluster; an unallocated entry reads as zeroes or ones. */
  private loadData(bm: StoredBitmap, table: { hi: Uint32Array; lo: Uint32Array }, bitmap: DirtyBitmap): void {
    const cs = this.s.clusterSize;
    const bits = bitmap.bits.size;
    const tableSize = Math.ceil(serializedBytes(bits) / cs);
    if (tableSize !== bm.tableSize || tableSize > MAX_TABLE_SIZE) throw new IoError(ERRNO.EINVAL);
    const bitsPerCluster = cs * 8;
    for (let i = 0; i < tableSize; i++) {
      const first = i * bitsPerCluster;
      const count = Math.min(bits - first, bitsPerCluster);
      const offset = (table.hi[i] & 0x00ffffff) * 2 ** 32 + ((table.lo[i] & 0xfffffe00) >>> 0);
      if (offset === 0) {
        if (table.lo[i] & 1) bitmap.bits.set(first, count);
        continue;
      }
      const data = this.s.readFile(offset, cs);
      bitmap.bits.deserializePart(i * cs, data.subarray(0, serializedBytes(count)));
    }
    bitmap.bits.deserializeFinish();
  }

  /**
   * qcow2_load_dirty_bitmaps(): every bitmap of the directory becomes a
   * persistent bitmap of the node; on a writable image their in_use flags
   * are set on disk. Returns whether the header was rewritten.
   */
  load(): boolean {
    if (this.nbBitmaps === 0) return false;
    const list = this.loadDirectory();
    const created: DirtyBitmap[] = [];
    let needsUpdate = false;
    try {
      for (const bm of list) {
        let bitmap: DirtyBitmap;
        try {
          bitmap = this.node.createBitmap(2 ** bm.granularityBits, bm.name);
        } catch (error) {
          if (!(error instanceof RangeError)) throw error;
          // An in_use bitmap's table is not checked against the disk; its bits must still fit in memory.
          throw genericError(`Bitmap '${bm.name}' has more bits than Bitmap Lab can hold`);
        }
        created.push(bitmap);
        if (!(bm.flags & FLAG_IN_USE)) {
          let table: { hi: Uint32Array; lo: Uint32Array };
          try {
            table = this.loadTable(bm);
          } catch (error) {
            throw genericError(`Could not read bitmap_table table from image for bitmap '${bm.name}': ${reason(error)}`);
          }
          try {
            this.loadData(bm, table, bitmap);
          } catch (error) {
            throw genericError(`Could not read bitmap '${bm.name}' from image: ${reason(error)}`);
          }
        }
        bitmap.persistent = true;
        if (bm.flags & FLAG_IN_USE) {
          bitmap.inconsistent = true;
          bitmap.disabled = true;
        } else {
          bm.flags |= FLAG_IN_USE;
          needsUpdate = true;
        }
        if (!(bm.flags & FLAG_AUTO)) bitmap.disabled = true;
      }
      let headerUpdated = false;
      if (needsUpdate && this.s.writable) {
        try {
          this.updateInPlace(list);
        } catch (error) {
          throw genericError(`Can't update bitmap directory: ${reason(error)}`);
        }
        headerUpdated = true;
      }
      if (!this.s.writable) for (const bitmap of created) bitmap.readonly = true;
      return headerUpdated;
    } catch (error) {
      for (const bitmap of created) this.node.releaseBitmap(bitmap);
      throw error;
    }
  }

  /** bitmap_list_store(): the directory bytes, each entry checked. */
  private encodeDirectory(list: StoredBitmap[]): Uint8Array {
    const names = list.map((bm) => utf8.encode(bm.name));
    const size = names.reduce((sum, name) => sum + entrySize(name.length), 0);
    if (size === 0 || size > QCOW2_MAX_BITMAP_DIRECTORY_SIZE) throw new IoError(ERRNO.EINVAL);
    const dir = new Uint8Array(size);
    const view = new DataView(dir.buffer);
    let at = 0;
    list.forEach((bm, i) => {
      const entry = {
        tableOffset: bm.tableOffset,
        tableSize: bm.tableSize,
        flags: bm.flags,
        type: TYPE_DIRTY_TRACKING,
        granularityBits: bm.granularityBits,
        nameSize: names[i].length,
      };
      if (!this.entryValid(entry)) throw new IoError(ERRNO.EINVAL);
      view.setBigUint64(at, BigInt(bm.tableOffset));
      view.setUint32(at + 8, bm.tableSize);
      view.setUint32(at + 12, bm.flags);
      view.setUint8(at + 16, TYPE_DIRTY_TRACKING);
      view.setUint8(at + 17, bm.granularityBits);
      view.setUint16(at + 18, names[i].length);
      dir.set(names[i], at + ENTRY_HEADER);
      at += entrySize(names[i].length);
    });
    return dir;
  }

  /**
   * update_ext_header_and_dir_in_place(): with the autoclear bit cleared
   * while the directory is rewritten, a crash leaves bitmaps that are
   * merely considered inconsistent.
   */
  private updateInPlace(list: StoredBitmap[]): void {
    const s = this.s;
    const ext = s.bitmapsExt;
    if (!(s.autoclearFeatures & AUTOCLEAR.bitmaps) || !ext || list.length === 0 || list.length !== ext.nbBitmaps) {
      throw new IoError(ERRNO.EINVAL);
    }
    s.autoclearFeatures &= ~AUTOCLEAR.bitmaps;
    s.updateHeaderSync();
    const dir = this.encodeDirectory(list);
    if (dir.length !== ext.directorySize || ext.directoryOffset === 0) throw new IoError(ERRNO.EINVAL);
    s.preWriteOverlapCheck(OL.bitmapDirectory, ext.directoryOffset, dir.length);
    s.file.write(ext.directoryOffset, dir);
    s.updateHeaderSync();
    s.autoclearFeatures |= AUTOCLEAR.bitmaps;
    s.updateHeaderSync();
  }

  /** update_ext_header_and_dir(): a new directory in new clusters, then the header, then free the old. */
  private updateDirectory(list: StoredBitmap[]): void {
    const s = this.s;
    const old = s.bitmapsExt;
    const oldAutoclear = s.autoclearFeatures;
    let newOffset = 0;
    let newSize = 0;
    try {
      if (list.length > 0) {
        if (list.length > QCOW2_MAX_BITMAPS) throw new IoError(ERRNO.EINVAL);
        const dir = this.encodeDirectory(list);
        newOffset = s.refcounts.allocClusters(dir.length);
        newSize = dir.length;
        s.preWriteOverlapCheck(0, newOffset, dir.length);
        s.file.write(newOffset, dir);
        s.flushCaches();
        s.autoclearFeatures |= AUTOCLEAR.bitmaps;
      } else {
        s.autoclearFeatures &= ~AUTOCLEAR.bitmaps;
      }
      s.bitmapsExt = list.length ? { nbBitmaps: list.length, directoryOffset: newOffset, directorySize: newSize } : undefined;
      s.updateHeaderSync();
    } catch (error) {
      if (newOffset > 0) s.refcounts.free(newOffset, newSize, 'other');
      s.bitmapsExt = old;
      s.autoclearFeatures = oldAutoclear;
      throw error;
    }
    if (old && old.directorySize > 0) s.refcounts.free(old.directoryOffset, old.directorySize, 'other');
  }

  /** free_bitmap_clusters(): the data clusters, then the table. */
  private freeClusters(bm: { tableOffset: number; tableSize: number }): void {
    const s = this.s;
    const table = this.loadTable({ ...bm, flags: 0, granularityBits: 0, name: '' });
    for (let i = 0; i < bm.tableSize; i++) {
      const offset = (table.hi[i] & 0x00ffffff) * 2 ** 32 + ((table.lo[i] & 0xfffffe00) >>> 0);
      if (offset) s.refcounts.free(offset, s.clusterSize, 'always');
    }
    s.refcounts.free(bm.tableOffset, bm.tableSize * 8, 'other');
  }

  /** check_constraints_on_bitmap(). */
  private checkConstraints(name: string, granularity: number): void {
    const bits = Math.log2(granularity);
    if (bits > MAX_GRANULARITY_BITS) throw genericError(`Granularity exceeds maximum (${2 ** MAX_GRANULARITY_BITS} bytes)`);
    if (bits < MIN_GRANULARITY_BITS) throw genericError(`Granularity is under minimum (${2 ** MIN_GRANULARITY_BITS} bytes)`);
    const bytes = Math.ceil(Math.ceil(this.node.length / granularity) / 8);
    if (bytes > MAX_PHYS_SIZE || bytes > MAX_TABLE_SIZE * this.s.clusterSize) {
      throw genericError('Too much space will be occupied by the bitmap. Use larger granularity');
    }
    if (utf8.encode(name).length > MAX_NAME_SIZE) {
      throw genericError(`Name length exceeds maximum (${MAX_NAME_SIZE} characters)`);
    }
  }

  /** qcow2_co_can_store_new_dirty_bitmap(). */
  canStoreNew(name: string, granularity: number): void {
    if (this.node.findBitmap(name)) throw genericError(`Bitmap already exists: ${name}`);
    try {
      if (this.s.version < 3) throw genericError('Cannot store dirty bitmaps in qcow2 v2 files');
      this.checkConstraints(name, granularity);
      let count = 1;
      let dirSize = entrySize(utf8.encode(name).length);
      for (const bitmap of this.node.bitmaps) {
        if (!bitmap.persistent || bitmap.skipStore) continue;
        count++;
        dirSize += entrySize(utf8.encode(bitmap.name ?? '').length);
      }
      if (count > QCOW2_MAX_BITMAPS) throw genericError('Maximum number of persistent bitmaps is already reached');
      if (dirSize > QCOW2_MAX_BITMAP_DIRECTORY_SIZE) throw genericError('Not enough space in the bitmap directory');
    } catch (error) {
      throw genericError(`Can't make bitmap '${name}' persistent in '${this.node.nodeName}': ${reason(error)}`);
    }
  }

  /** qcow2_co_remove_persistent_dirty_bitmap(): a missing bitmap is no error. */
  remove(name: string): void {
    if (this.nbBitmaps === 0) return;
    const list = this.loadDirectory();
    const index = list.findIndex((bm) => bm.name === name);
    if (index < 0) return;
    const [removed] = list.splice(index, 1);
    try {
      this.updateDirectory(list);
    } catch (error) {
      throw genericError(`Failed to update bitmap extension: ${reason(error)}`);
    }
    try {
      this.freeClusters(removed);
    } catch {
      // QEMU ignores a failure to free the clusters: they leak.
    }
  }

  /**
   * store_bitmap_data() and store_bitmap(): every bitmap cluster holding a
   * dirty bit is written to a new cluster, then the table.
   */
  private storeBitmap(bm: StoredBitmap, bitmap: DirtyBitmap): void {
    const s = this.s;
    const cs = s.clusterSize;
    const name = bitmap.name ?? '';
    const bits = bitmap.bits.size;
    const tableSize = Math.ceil(serializedBytes(bits) / cs);
    if (tableSize > MAX_TABLE_SIZE || tableSize * cs > MAX_PHYS_SIZE) throw genericError(`Bitmap '${name}' is too big`);
    const table = new Float64Array(tableSize);
    const bitsPerCluster = cs * 8;
    const serialized = bitmap.bits.bytes();
    try {
      for (let bit = bitmap.bits.nextDirty(0); bit >= 0; ) {
        const cluster = Math.floor(bit / bitsPerCluster);
        const first = cluster * bitsPerCluster;
        const end = Math.min(bits, first + bitsPerCluster);
        let offset: number;
        try {
          offset = s.refcounts.allocClusters(cs);
        } catch (error) {
          throw genericError(`Failed to allocate clusters for bitmap '${name}': ${reason(error)}`);
        }
        table[cluster] = offset;
        const buffer = new Uint8Array(cs);
        buffer.set(serialized.subarray(cluster * cs, cluster * cs + serializedBytes(end - first)));
        try {
          s.preWriteOverlapCheck(0, offset, cs);
        } catch (error) {
          throw genericError(`Qcow2 overlap check failed: ${reason(error)}`);
        }
        try {
          s.file.write(offset, buffer);
        } catch (error) {
          throw genericError(`Failed to write bitmap '${name}' to file: ${reason(error)}`);
        }
        bit = end < bits ? bitmap.bits.nextDirty(end) : -1;
      }
      let tableOffset = 0;
      try {
        tableOffset = s.refcounts.allocClusters(tableSize * 8);
      } catch (error) {
        throw genericError(`Failed to allocate clusters for bitmap '${name}': ${reason(error)}`);
      }
      try {
        try {
          s.preWriteOverlapCheck(0, tableOffset, tableSize * 8);
        } catch (error) {
          throw genericError(`Qcow2 overlap check failed: ${reason(error)}`);
        }
        const bytes = new Uint8Array(tableSize * 8);
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < tableSize; i++) view.setBigUint64(i * 8, BigInt(table[i]));
        try {
          s.file.write(tableOffset, bytes);
        } catch (error) {
          throw genericError(`Failed to write bitmap '${name}' to file: ${reason(error)}`);
        }
      } catch (error) {
        s.refcounts.free(tableOffset, tableSize * 8, 'other');
        throw error;
      }
      bm.tableOffset = tableOffset;
      bm.tableSize = tableSize;
    } catch (error) {
      // clear_bitmap_table(): give back the data clusters written so far.
      for (const offset of table) if (offset) s.refcounts.free(offset, cs, 'always');
      throw error;
    }
  }

  /**
   * qcow2_store_persistent_dirty_bitmaps(): what QEMU does on close. A
   * bitmap already on disk may only be replaced when it is marked in_use.
   */
  store(): void {
    const s = this.s;
    const list = this.nbBitmaps === 0 ? [] : this.loadDirectory();
    let count = this.nbBitmaps;
    let dirSize = s.bitmapsExt?.directorySize ?? 0;
    const dropTables: Array<{ tableOffset: number; tableSize: number }> = [];
    let needWrite = false;
    const failed = (error: unknown): never => {
      for (const bm of list) {
        if (bm.bitmap && bm.tableOffset && !bm.bitmap.readonly) {
          try {
            this.freeClusters(bm);
          } catch {
            // Leaked, as in QEMU.
          }
        }
      }
      throw error;
    };
    try {
      for (const bitmap of this.node.bitmaps) {
        const name = bitmap.name ?? '';
        if (!bitmap.persistent || bitmap.skipStore || bitmap.inconsistent) continue;
        if (bitmap.readonly) {
          const bm = list.find((entry) => entry.name === name);
          if (bm) bm.bitmap = bitmap;
          continue;
        }
        needWrite = true;
        try {
          this.checkConstraints(name, bitmap.granularity);
        } catch (error) {
          throw genericError(`Bitmap '${name}' doesn't satisfy the constraints: ${reason(error)}`);
        }
        let bm = list.find((entry) => entry.name === name);
        if (!bm) {
          if (++count > QCOW2_MAX_BITMAPS) throw genericError('Too many persistent bitmaps');
          dirSize += entrySize(utf8.encode(name).length);
          if (dirSize > QCOW2_MAX_BITMAP_DIRECTORY_SIZE) throw genericError('Bitmap directory is too large');
          bm = { tableOffset: 0, tableSize: 0, flags: 0, granularityBits: 0, name };
          list.push(bm);
        } else {
          if (!(bm.flags & FLAG_IN_USE)) throw genericError(`Bitmap '${name}' already exists in the image`);
          dropTables.push({ tableOffset: bm.tableOffset, tableSize: bm.tableSize });
          bm.tableOffset = 0;
          bm.tableSize = 0;
        }
        bm.flags = bitmap.disabled ? 0 : FLAG_AUTO;
        bm.granularityBits = Math.log2(bitmap.granularity);
        bm.bitmap = bitmap;
      }
      if (!needWrite) return;
      if (!s.writable) throw genericError('No write access');
      for (const bm of list) {
        if (!bm.bitmap || bm.bitmap.readonly) continue;
        this.storeBitmap(bm, bm.bitmap);
      }
      try {
        this.updateDirectory(list);
      } catch (error) {
        throw genericError(`Failed to update bitmap extension: ${reason(error)}`);
      }
    } catch (error) {
      failed(error);
    }
    for (const table of dropTables) {
      try {
        this.freeClusters(table);
      } catch {
        // Leaked, as in QEMU.
      }
    }
  }

  /** qcow2_get_bitmap_info_list(): read from the image each time, as QEMU does. */
  infoList(): Array<{ name: string; granularity: number; flags: string[] }> | undefined {
    if (this.nbBitmaps === 0) return undefined;
    return this.loadDirectory().map((bm) => ({
      name: bm.name,
      granularity: 2 ** bm.granularityBits,
      flags: [...(bm.flags & FLAG_IN_USE ? ['in-use'] : []), ...(bm.flags & FLAG_AUTO ? ['auto'] : [])],
    }));
  }
}
