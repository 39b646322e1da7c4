/** The file driver's block status: written blocks are data, zeroed and untouched ones holes. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS } from '../../src/engine/block-node';
import { FileNode } from '../../src/engine/drivers/file';
import { Extents } from '../../src/engine/drivers/extents';
import { PAGE, PageCache } from '../../src/engine/drivers/page-cache';

const KiB = 1024;

function scratchFile(bytes: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-file-'));
  const file = path.join(dir, 'disk.raw');
  fs.writeFileSync(file, Buffer.alloc(0));
  fs.truncateSync(file, bytes);
  return file;
}

/** [offset, length, data] runs covering the whole file. */
function runs(node: FileNode, size: number): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  for (let at = 0; at < size; ) {
    const status = node.blockStatus(at, size - at);
    out.push([at, status.length, status.data]);
    at += status.length;
  }
  return out;
}

test('Extents adds, joins and removes ranges', () => {
  const set = new Extents();
  set.add(0, 10);
  set.add(10, 20);
  set.add(30, 40);
  assert.deepEqual(set.at(5), { inside: true, until: 20 });
  assert.deepEqual(set.at(20), { inside: false, until: 30 });
  set.remove(5, 35);
  assert.deepEqual(set.at(0), { inside: true, until: 5 });
  assert.deepEqual(set.at(5), { inside: false, until: 35 });
  assert.deepEqual(set.at(36), { inside: true, until: 40 });
  assert.deepEqual(set.at(40), { inside: false, until: Infinity });
});

test('a block written with zeroes is data; write-zeroes makes whole blocks holes again', () => {
  const size = 64 * KiB;
  const file = scratchFile(size);
  const node = new FileNode('f', file, DEFAULT_NODE_OPTIONS);
  try {
    assert.deepEqual(runs(node, size), [[0, size, false]]);
    node.write(8 * KiB + 100, new Uint8Array(5000));
    assert.deepEqual(runs(node, size), [
      [0, 8 * KiB, false],
      [8 * KiB, 8 * KiB, true],
      [16 * KiB, 48 * KiB, false],
    ]);
    node.writeZeroes(8 * KiB, 5 * KiB);
    assert.deepEqual(runs(node, size), [
      [0, 12 * KiB, false],
      [12 * KiB, 4 * KiB, true],
      [16 * KiB, 48 * KiB, false],
    ]);
  } finally {
    node.close();
    fs.rmSync(path.dirname(file), { recursive: true });
  }
});

test('bytes already in the file count as data where they are not zero', () => {
  const size = 32 * KiB;
  const file = scratchFile(size);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.alloc(4 * KiB, 1), 0, 4 * KiB, 16 * KiB);
  fs.closeSync(fd);
  const node = new FileNode('f', file, { ...DEFAULT_NODE_OPTIONS, readOnly: true });
  try {
    assert.deepEqual(runs(node, size), [
      [0, 16 * KiB, false],
      [16 * KiB, 4 * KiB, true],
      [20 * KiB, 12 * KiB, false],
    ]);
  } finally {
    node.close();
    fs.rmSync(path.dirname(file), { recursive: true });
  }
});

/** Cached pages of [first, end), as runs of page indices. */
function cachedRuns(cache: PageCache, first: number, end: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let page = first; page < end; page = Math.min(end, cache.until(page))) {
    if (cache.has(page)) out.push([page, Math.min(end, cache.until(page))]);
  }
  return out;
}

test('write-zeroes leaves blocks unwritten: holes until reads bring their pages into the page cache (random seeds 1231, 1476, 1873)', () => {
  const size = 4 << 20;
  const file = scratchFile(size);
  const node = new FileNode('f', file, DEFAULT_NODE_OPTIONS);
  const cluster = (n: number) => node.blockStatus(n * 65536, 65536);
  try {
    // A backup of an empty disk onto this file wrote zeroes all over; then a guest wrote pages 916-937.
    node.writeZeroes(0, size);
    node.write(3753856, new Uint8Array(84174).fill(0x8c));
    assert.deepEqual(runs(node, size), [[0, 916 * 4096, false], [916 * 4096, 22 * 4096, true], [938 * 4096, 86 * 4096, false]]);
    // A backup from it reads clusters 57 and 58: the readahead (with any read_ahead_kb from 128 KiB up)
    // caches pages 938-969, which SEEK_DATA now reports as data although the blocks are unwritten.
    node.read(57 * 65536, 65536);
    assert.deepEqual(cluster(59), { length: 65536, zero: true, data: false, allocated: true });
    node.read(58 * 65536, 65536);
    assert.deepEqual(cluster(59), { length: 65536, zero: false, data: true, allocated: true });
    assert.deepEqual(cluster(60), { length: 10 * 4096, zero: false, data: true, allocated: true });
  } finally {
    node.close();
    fs.rmSync(path.dirname(file), { recursive: true });
  }
});

test("Linux's readahead, as QEMU's reads of a backup source leave it (random seed 1231: the clusters after a write become data)", () => {
  // A 4 MiB file with an 8 MiB read_ahead_kb (2048 pages): the pages a guest wrote (916-937) are cached.
  const fileSize = 4 << 20;
  const cache = new PageCache(2048);
  cache.written(916, 938);
  // Cluster 57 (pages 912-927): a lone read, no readahead.
  cache.read(57 * 65536, 65536, fileSize);
  assert.deepEqual(cachedRuns(cache, 0, 1024), [[912, 938]]);
  // Cluster 58 (928-943): the cached run before 938 makes it sequential; 32 pages from 938, 969 marked.
  cache.read(58 * 65536, 65536, fileSize);
  assert.deepEqual(cachedRuns(cache, 0, 1024), [[912, 970]]);
  // Cluster 60 (960-975) reaches the mark: the next window, four times larger, to the end of the file.
  cache.read(60 * 65536, 65536, fileSize);
  assert.deepEqual(cachedRuns(cache, 0, 1024), [[912, 1024]]);
  assert.equal(PAGE, 4096);
});
