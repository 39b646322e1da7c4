/** The file driver's block status: written blocks are data, zeroed and untouched ones holes. */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS } from '../../src/engine/block-node';
import { FileNode } from '../../src/engine/drivers/file';
import { Extents } from '../../src/engine/drivers/extents';

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
