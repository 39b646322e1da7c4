/** The `file` protocol driver: positional reads and writes on a host file. */
import * as fs from 'node:fs';
import { Extents } from './extents';
import { PAGE, PageCache, readaheadPages } from './page-cache';
import { BlockNode, type BlockStatus, type CommonNodeOptions, type DriverInfo } from '../block-node';
import { IoError } from '../io-error';
import { genericError } from '../qmp-error';

/** Node's fs errors carry errno as a negative number. */
function errnoOf(error: unknown): number {
  const errno = (error as NodeJS.ErrnoException).errno;
  return typeof errno === 'number' ? Math.abs(errno) : 5;
}

/** The filesystem block: the unit of holes. */
const FS_BLOCK = 4096;
const SCAN_CHUNK = 1 << 20;

function isZero(bytes: Uint8Array): boolean {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = words.length << 2; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Offset of the first filesystem block in `bytes` whose zeroness differs from `zero`, or -1. */
function firstBlockNot(bytes: Uint8Array, zero: boolean): number {
  for (let at = 0; at < bytes.length; at += FS_BLOCK) {
    if (isZero(bytes.subarray(at, at + FS_BLOCK)) !== zero) return at;
  }
  return -1;
}

export class FileNode extends BlockNode {
  readonly driver = 'file';
  private fd: number | undefined;
  /** Filesystem blocks this node wrote data to: allocated, whatever the bytes. */
  private readonly written = new Extents();
  /** Blocks this node's write-zeroes left allocated but unwritten (FALLOC_FL_ZERO_RANGE). */
  private readonly unwritten = new Extents();
  /** The page cache of QEMU's open file: unwritten blocks in it are data to SEEK_DATA. */
  private readonly cache: PageCache;

  /** Opens read-only unless the node is to be written. */
  constructor(nodeName: string, readonly path: string, common: CommonNodeOptions) {
    let fd: number;
    try {
      fd = fs.openSync(path, common.readOnly ? 'r' : 'r+');
    } catch (error) {
      throw genericError(`Could not open '${path}': ${describe(error)}`);
    }
    super(nodeName, fs.fstatSync(fd).size, common);
    this.fd = fd;
    this.cache = new PageCache(readaheadPages(path));
  }

  override get isProtocol(): boolean {
    return true;
  }

  protected override get strongRuntimeOptions(): readonly string[] {
    return ['filename'];
  }

  override exactFilename(): string {
    return this.path;
  }

  override driverInfo(): DriverInfo {
    return { dirty: false };
  }

  get actualSize(): number {
    return fs.fstatSync(this.handle()).blocks * 512;
  }

  override get growable(): boolean {
    return true;
  }

  /** Bytes past the end of the file read as zeroes, as QEMU fills short reads. */
  protected driverRead(offset: number, buffer: Uint8Array): void {
    this.readBytes(offset, buffer);
    this.cache.read(offset, buffer.length, fs.fstatSync(this.handle()).size);
  }

  /** pread() without the page cache model (our own look at the bytes). */
  private readBytes(offset: number, buffer: Uint8Array): void {
    let done = 0;
    while (done < buffer.length) {
      const n = this.io(() => fs.readSync(this.handle(), buffer, done, buffer.length - done, offset + done));
      if (n === 0) break;
      done += n;
    }
  }

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.writeBytes(offset, data);
    const start = Math.floor(offset / FS_BLOCK) * FS_BLOCK;
    const end = Math.ceil((offset + data.length) / FS_BLOCK) * FS_BLOCK;
    this.written.add(start, end);
    this.unwritten.remove(start, end);
    this.cache.written(start / PAGE, end / PAGE);
  }

  private writeBytes(offset: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      done += this.io(() => fs.writeSync(this.handle(), data, done, data.length - done, offset + done));
    }
  }

  /** FALLOC_FL_PUNCH_HOLE (Node has none; zeroes read back the same). */
  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.driverWriteZeroes(offset, bytes, true);
    return true;
  }

  /**
   * file-posix's write-zeroes: FALLOC_FL_PUNCH_HOLE when it may unmap, else
   * FALLOC_FL_ZERO_RANGE. Both drop the whole blocks' pages from the cache;
   * a punched whole block becomes a hole, a zeroed one unwritten, and so does
   * a partial block at either end that was not data already (as ext4 does).
   */
  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    const chunk = new Uint8Array(Math.min(bytes, 1 << 20));
    for (let done = 0; done < bytes; done += chunk.length) {
      this.writeBytes(offset + done, chunk.subarray(0, Math.min(chunk.length, bytes - done)));
    }
    const first = Math.floor(offset / FS_BLOCK) * FS_BLOCK;
    const last = Math.ceil((offset + bytes) / FS_BLOCK) * FS_BLOCK;
    const start = Math.ceil(offset / FS_BLOCK) * FS_BLOCK;
    const end = Math.floor((offset + bytes) / FS_BLOCK) * FS_BLOCK;
    if (end > start) {
      this.written.remove(start, end);
      this.cache.drop(start / PAGE, end / PAGE);
      if (mayUnmap) this.unwritten.remove(start, end);
      else this.unwritten.add(start, end);
    }
    if (mayUnmap) return;
    for (const edge of new Set([first, last - FS_BLOCK])) {
      if ((edge >= start && edge < end) || this.written.at(edge).inside || this.unwritten.at(edge).inside) continue;
      const block = new Uint8Array(FS_BLOCK);
      this.readBytes(edge, block);
      if (isZero(block)) this.unwritten.add(edge, edge + FS_BLOCK);
    }
  }

  protected override driverFlush(): void {
    this.io(() => fs.fdatasyncSync(this.handle()));
  }

  /**
   * file-posix answers with SEEK_DATA / SEEK_HOLE, which Node does not offer:
   * we call data what this node wrote, unwritten blocks holes unless the page
   * cache holds them, and elsewhere a filesystem block that reads as zeroes a
   * hole (docs/differences-from-qemu.md). Past the end of the file is zero.
   */
  blockStatus(offset: number, bytes: number): BlockStatus {
    const size = fs.fstatSync(this.handle()).size;
    if (offset >= size) return { length: bytes, zero: true, data: false, allocated: true };
    // SEEK_DATA / SEEK_HOLE see one hole (or one data extent) however our bookkeeping splits it.
    const end = Math.min(offset + bytes, size);
    const first = this.run(offset, end, size);
    let at = offset + first.length;
    while (at < end) {
      const next = this.run(at, end, size);
      if (next.zero !== first.zero) break;
      at += next.length;
    }
    return { length: at - offset, zero: first.zero, data: !first.zero, allocated: true };
  }

  /** One stretch of [offset, end) that our bookkeeping treats alike. */
  private run(offset: number, end: number, size: number): { length: number; zero: boolean } {
    const written = this.written.at(offset);
    const unwritten = this.unwritten.at(offset);
    end = Math.min(end, written.until, unwritten.until);
    if (written.inside) return { length: end - offset, zero: false };
    if (unwritten.inside) {
      const page = Math.floor(offset / PAGE);
      return { length: Math.min(end, this.cache.until(page) * PAGE) - offset, zero: !this.cache.has(page) };
    }
    const status = this.contentStatus(offset, end, size);
    return { length: status.length, zero: status.zero };
  }

  /** Status from the bytes themselves, for [offset, end) that this node has not written. */
  private contentStatus(offset: number, end: number, size: number): BlockStatus {
    const first = Math.floor(offset / FS_BLOCK) * FS_BLOCK;
    const head = new Uint8Array(Math.min(FS_BLOCK, size - first));
    this.readBytes(first, head);
    const zero = isZero(head);
    let at = first + FS_BLOCK;
    const chunk = new Uint8Array(SCAN_CHUNK);
    while (at < end) {
      const n = Math.min(SCAN_CHUNK, Math.ceil((end - at) / FS_BLOCK) * FS_BLOCK, size - at);
      const view = chunk.subarray(0, n);
      this.readBytes(at, view);
      const change = firstBlockNot(view, zero);
      if (change >= 0) {
        at += change;
        break;
      }
      at += n;
    }
    return { length: Math.min(at, end) - offset, zero, data: !zero, allocated: true };
  }

  /** Sets the file's size (qcow2 grows and shrinks its file this way). */
  override truncate(bytes: number): void {
    this.io(() => fs.ftruncateSync(this.handle(), bytes));
    this.written.remove(bytes, Infinity);
    this.unwritten.remove(bytes, Infinity);
    this.cache.drop(Math.ceil(bytes / PAGE), Infinity);
    this.setByteLength(bytes);
  }

  override close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private handle(): number {
    if (this.fd === undefined) throw new IoError(9, 'Bad file descriptor');
    return this.fd;
  }

  private io<T>(call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw new IoError(errnoOf(error));
    }
  }
}

/** strerror() text for an fs error. */
function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const texts: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EISDIR: 'Is a directory',
    EROFS: 'Read-only file system',
    ENOTDIR: 'Not a directory',
  };
  return (code && texts[code]) ?? (error instanceof Error ? error.message : String(error));
}
