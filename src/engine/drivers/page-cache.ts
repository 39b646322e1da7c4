/**
 * What the host's filesystem tells file-posix's SEEK_DATA about blocks that
 * fallocate(FALLOC_FL_ZERO_RANGE) left unwritten (allocated, reading as
 * zeroes): ext4 (measured on Linux 6.18) calls them holes, unless their pages are in the page
 * cache, where a read (and the kernel's readahead around it) put them. Node
 * has neither fallocate nor SEEK_DATA, so the file driver models both: the
 * extents its own requests made unwritten, and Linux's page cache of the
 * node's open file with its readahead (mm/readahead.c, page-sized folios).
 */
import * as fs from 'node:fs';
import { Extents } from './extents';

export const PAGE = 4096;
/** PAGEVEC_SIZE: filemap_get_read_batch() takes at most this many folios at a time. */
const BATCH = 31;
/** The default read_ahead_kb (VM_READAHEAD_PAGES), when the device's cannot be read. */
const DEFAULT_RA_PAGES = 32;

/** The bdi's read_ahead_kb of the device holding `path`, in pages (Linux sysfs). */
export function readaheadPages(path: string): number {
  try {
    const dev = fs.statSync(path).dev;
    const major = ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
    const minor = (dev & 0xff) | ((dev >> 12) & ~0xff);
    const kb = Number(fs.readFileSync(`/sys/class/bdi/${major}:${minor}/read_ahead_kb`, 'utf8'));
    return Number.isInteger(kb) && kb >= 0 ? kb / 4 : DEFAULT_RA_PAGES;
  } catch {
    return DEFAULT_RA_PAGES;
  }
}

const roundUpPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** The page cache of one open file (in page indices) and its file_ra_state. */
export class PageCache {
  private readonly cached = new Extents();
  /** Pages with PG_readahead: reading one starts the next window. */
  private readonly marks = new Set<number>();
  private ra = { start: 0, size: 0, asyncSize: 0, prevPos: -1 };

  constructor(private readonly raPages: number) {}

  has(page: number): boolean {
    return this.cached.at(page).inside;
  }

  /** Where, from `page` on, being cached changes (Infinity if never). */
  until(page: number): number {
    return this.cached.at(page).until;
  }

  /** truncate_pagecache_range() over whole pages [first, end). */
  drop(first: number, end: number): void {
    this.cached.remove(first, end);
    for (const mark of this.marks) if (mark >= first && mark < end) this.marks.delete(mark);
  }

  /** A buffered write leaves its pages in the cache. */
  written(first: number, end: number): void {
    this.cached.add(first, end);
  }

  /** filemap_read(): what a pread of [pos, pos + count) brings into the cache, readahead included. */
  read(pos: number, count: number, fileSize: number): void {
    count = Math.min(count, fileSize - pos);
    if (count <= 0) return;
    const lastIndex = Math.ceil((pos + count) / PAGE);
    for (let index = Math.floor(pos / PAGE); index < lastIndex; ) {
      // filemap_get_pages()
      if (!this.has(index)) this.syncReadahead(index, lastIndex - index, fileSize);
      if (!this.has(index)) this.cached.add(index, index + 1);
      let last = index;
      while (last + 1 < lastIndex && last + 1 - index < BATCH && this.has(last + 1) && !this.marks.has(last)) last++;
      if (this.marks.has(last)) this.asyncReadahead(last, lastIndex - last, fileSize);
      index = last + 1;
    }
    this.ra.prevPos = pos + count;
  }

  /** page_cache_sync_ra(). */
  private syncReadahead(index: number, req: number, fileSize: number): void {
    const max = Math.max(this.raPages, req);
    if (this.raPages === 0) return this.readPages(index, req, 0, fileSize);
    const prevIndex = this.ra.prevPos < 0 ? -Infinity : Math.floor(this.ra.prevPos / PAGE);
    if (index === 0 || req > this.raPages || (index - prevIndex >= 0 && index - prevIndex <= 1)) {
      const size = this.initialSize(req, max);
      this.ra = { ...this.ra, start: index, size, asyncSize: size > req ? size - req : size >> 1 };
      return this.readWindow(fileSize);
    }
    // page_cache_prev_miss(): the cached history a sequential reader leaves behind.
    let miss = index - 1;
    while (miss >= 0 && index - 1 - miss < max && this.has(miss)) miss--;
    let contig = index - miss - 1;
    if (contig <= req) return this.readPages(index, req, 0, fileSize);
    if (miss < 0) contig *= 2;
    this.ra = { ...this.ra, start: index, size: Math.min(contig + req, max), asyncSize: 1 };
    this.readWindow(fileSize);
  }

  /** page_cache_async_ra(), on reaching a page marked PG_readahead. */
  private asyncReadahead(index: number, req: number, fileSize: number): void {
    this.marks.delete(index);
    const max = Math.max(this.raPages, req);
    if (index === this.ra.start + this.ra.size - this.ra.asyncSize) {
      const start = this.ra.start + this.ra.size;
      const size = Math.max(this.ra.size, this.nextSize(this.ra.size, max));
      this.ra = { ...this.ra, start, size, asyncSize: size };
      return this.readWindow(fileSize);
    }
    let start = index + 1;
    while (start - index <= max && this.has(start)) start++;
    if (start - index > max) return;
    const size = this.nextSize(start - index + req, max);
    this.ra = { ...this.ra, start, size, asyncSize: size };
    this.readWindow(fileSize);
  }

  private readWindow(fileSize: number): void {
    this.readPages(this.ra.start, this.ra.size, this.ra.asyncSize, fileSize);
  }

  /** do_page_cache_ra(): reads the missing pages of [index, index + count) within the file; marks the lookahead's first. */
  private readPages(index: number, count: number, lookahead: number, fileSize: number): void {
    if (fileSize === 0) return;
    const endIndex = Math.floor((fileSize - 1) / PAGE);
    if (index > endIndex) return;
    count = Math.min(count, endIndex - index + 1);
    const mark = lookahead > 0 ? index + count - lookahead : -1;
    for (let page = index; page < index + count; page++) {
      if (this.has(page)) continue;
      this.cached.add(page, page + 1);
      if (page === mark) this.marks.add(page);
    }
  }

  /** get_init_ra_size(). */
  private initialSize(req: number, max: number): number {
    const size = roundUpPow2(req);
    if (size <= max / 32) return size * 4;
    if (size <= max / 4) return size * 2;
    return max;
  }

  /** get_next_ra_size(). */
  private nextSize(current: number, max: number): number {
    if (current < max / 16) return 4 * current;
    if (current <= max / 2) return 2 * current;
    return max;
  }
}
