/**
 * QEMU's qcow2 metadata cache (block/qcow2-cache.c), one for L2 tables and
 * one for refcount blocks. Tables are changed in memory and written back
 * when the cache is flushed, when a dirty table is evicted, or when another
 * cache that depends on this one is flushed: the same write-back points, and
 * so the same blkdebug events in the same order, as QEMU's.
 */
import type { BlkdebugEvent } from '../../block-node';

/** What the cache needs from the image: file I/O, events and the overlap check. */
export interface CacheHost {
  readonly clusterSize: number;
  event(event: BlkdebugEvent): void;
  readTable(offset: number, bytes: number): Uint8Array;
  writeTable(offset: number, data: Uint8Array): void;
  flushFile(): void;
  /** qcow2_pre_write_overlap_check() for a table about to be written. */
  checkOverlap(kind: 'l2' | 'refblock', offset: number, bytes: number): void;
}

interface Entry {
  offset: number;
  lruCounter: number;
  ref: number;
  dirty: boolean;
  data: Uint8Array;
  view: DataView;
}

export class Qcow2Cache {
  private readonly entries: Entry[];
  /** Where each cached table lives, so a hit needs no scan. */
  private readonly byOffset = new Map<number, number>();
  private depends: Qcow2Cache | undefined;
  private dependsOnFlush = false;
  private lruCounter = 0;

  constructor(
    private readonly host: CacheHost,
    readonly kind: 'l2' | 'refblock',
    size: number,
    readonly tableSize: number,
  ) {
    // Tables get their memory when first used: a large cache costs nothing until filled.
    const none = new Uint8Array(0);
    this.entries = Array.from({ length: size }, () => ({
      offset: 0,
      lruCounter: 0,
      ref: 0,
      dirty: false,
      data: none,
      view: new DataView(none.buffer),
    }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** qcow2_cache_get(): the table at `offset`, read from the file on a miss. */
  get(offset: number): number {
    return this.doGet(offset, true);
  }

  /** qcow2_cache_get_empty(): a slot for a table the caller fills. */
  getEmpty(offset: number): number {
    return this.doGet(offset, false);
  }

  data(index: number): Uint8Array {
    return this.entries[index].data;
  }

  view(index: number): DataView {
    return this.entries[index].view;
  }

  put(index: number): void {
    const entry = this.entries[index];
    entry.ref--;
    if (entry.ref === 0) entry.lruCounter = ++this.lruCounter;
  }

  markDirty(index: number): void {
    this.entries[index].dirty = true;
  }

  /** qcow2_cache_is_table_offset(). */
  indexOf(offset: number): number {
    return this.byOffset.get(offset) ?? -1;
  }

  /** qcow2_cache_discard(): forget a table whose cluster was freed. */
  discard(index: number): void {
    const entry = this.entries[index];
    this.byOffset.delete(entry.offset);
    entry.offset = 0;
    entry.lruCounter = 0;
    entry.dirty = false;
  }

  /**
   * qcow2_cache_set_dependency(). Every QEMU caller ignores its result: when
   * a flush it needs fails, the dependency is just not recorded.
   */
  setDependency(dependency: Qcow2Cache): void {
    try {
      if (dependency.depends) dependency.flushDependency();
      if (this.depends && this.depends !== dependency) this.flushDependency();
    } catch {
      return;
    }
    this.depends = dependency;
  }

  setDependsOnFlush(): void {
    this.dependsOnFlush = true;
  }

  /** qcow2_cache_write(): every dirty table, in slot order; the first error wins. */
  write(): void {
    let failure: unknown;
    for (let i = 0; i < this.entries.length; i++) {
      try {
        this.entryFlush(i);
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** qcow2_cache_flush(): write, then flush the file. */
  flush(): void {
    this.write();
    this.host.flushFile();
  }

  /** qcow2_cache_empty(). */
  empty(): void {
    this.flush();
    for (const entry of this.entries) {
      entry.offset = 0;
      entry.lruCounter = 0;
    }
    this.byOffset.clear();
    this.lruCounter = 0;
  }

  private flushDependency(): void {
    this.depends!.flush();
    this.depends = undefined;
    this.dependsOnFlush = false;
  }

  private entryFlush(i: number): void {
    const entry = this.entries[i];
    if (!entry.dirty || entry.offset === 0) return;
    if (this.depends) {
      this.flushDependency();
    } else if (this.dependsOnFlush) {
      this.host.flushFile();
      this.dependsOnFlush = false;
    }
    this.host.checkOverlap(this.kind, entry.offset, this.tableSize);
    this.host.event(this.kind === 'refblock' ? 'refblock_update_part' : 'l2_update');
    this.host.writeTable(entry.offset, entry.data);
    entry.dirty = false;
  }

  private doGet(offset: number, readFromDisk: boolean): number {
    const hit = this.byOffset.get(offset);
    if (hit !== undefined) {
      this.entries[hit].ref++;
      return hit;
    }
    // QEMU starts the search at a slot derived from the offset and replaces
    // the least recently used free entry, the first one found on ties.
    const size = this.entries.length;
    const start = (Math.floor(offset / this.tableSize) * 4) % size;
    let victim = -1;
    let minLru = Infinity;
    for (let n = 0, i = start; n < size; n++, i = i + 1 === size ? 0 : i + 1) {
      const entry = this.entries[i];
      if (entry.ref === 0 && entry.lruCounter < minLru) {
        minLru = entry.lruCounter;
        victim = i;
      }
    }
    if (victim < 0) throw new Error('qcow2 cache: every entry is in use');
    this.entryFlush(victim);
    const entry = this.entries[victim];
    if (entry.offset !== 0) this.byOffset.delete(entry.offset);
    entry.offset = 0;
    if (entry.data.length === 0) {
      entry.data = new Uint8Array(this.tableSize);
      entry.view = new DataView(entry.data.buffer);
    }
    if (readFromDisk) {
      if (this.kind === 'l2') this.host.event('l2_load');
      entry.data.set(this.host.readTable(offset, this.tableSize));
    }
    entry.offset = offset;
    this.byOffset.set(offset, victim);
    entry.ref++;
    return victim;
  }
}
