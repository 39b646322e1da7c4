/**
 * File, raw and blkdebug nodes, and guest I/O through HMP's qemu-io, on real
 * QEMU 7.2 and on our engine: replies, qemu-io's output, node records,
 * bitmaps. Each side works on its own copy of the same files.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { onEngine, onQemu, type Setup, type Step } from '../support/differential';

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');
const MiB = 1024 * 1024;

const qmp = (execute: string, args?: Record<string, unknown>): Step => (args ? { execute, arguments: args } : { execute });
const io = (node: string, command: string): Step => ({ io: command, node });
const hmp = (line: string): Step => qmp('human-monitor-command', { 'command-line': line });
const fileRef = (name: string) => ({ driver: 'file', filename: `@DIR@/${name}` });

/** Sparse raw images of the given sizes, in the side's scratch directory. */
const rawImages = (sizes: Record<string, number>): Setup => (dir) => {
  for (const [name, size] of Object.entries(sizes)) {
    fs.writeFileSync(path.join(dir, name), '');
    fs.truncateSync(path.join(dir, name), size);
  }
};

const scenarios: Array<[string, Setup, Step[]]> = [
  [
    'qemu-io on a raw image: reports, verification, errors',
    rawImages({ 'a.raw': MiB }),
    [
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: fileRef('a.raw') }),
      qmp('block-dirty-bitmap-add', { node: 'r0', name: 'b', granularity: 4096 }),
      io('r0', 'write -P 0x65 0 64k'),
      io('r0', 'read -P 0x65 0 64k'),
      io('r0', 'read -P 0x66 0 4k'),
      io('r0', 'read -P 101 4k 4k'),
      io('r0', 'write 100 1'),
      io('r0', 'write -z 512k 8k'),
      io('r0', 'read -P 0 512k 8k'),
      io('r0', 'discard 256k 64k'),
      io('r0', 'write 1M 64k'),
      io('r0', 'write 1020k 8k'),
      io('r0', 'read 1M 1'),
      io('r0', 'flush'),
      io('r0', 'bogus 0 1'),
      io('r0', 'read'),
      io('r0', 'read 0'),
      io('r0', 'read 0 1 2'),
      io('r0', 'read -x 0 1'),
      io('r0', 'read 0 1x'),
      io('r0', 'read -P 300 0 1'),
      io('r0', 'write -q 0x1000 0x10'),
      io('r0', 'write 1.5k 1k'),
      hmp('qemu-io nope "read 0 1"'),
      hmp('qemu-io -d r0 "read 0 1"'),
      hmp('qemu-io r0 read 0 1'),
      hmp('qemu-io r0'),
      hmp('bogus'),
    ],
  ],
  [
    'file nodes by reference, discard=unmap, read-only nodes, deletion rules',
    rawImages({ 'a.raw': MiB, 'b.raw': 2 * MiB }),
    [
      qmp('blockdev-add', { driver: 'file', 'node-name': 'f1', filename: '@DIR@/b.raw' }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'r1', file: 'f1', discard: 'unmap' }),
      qmp('block-dirty-bitmap-add', { node: 'r1', name: 'b' }),
      io('r1', 'discard 0 64k'),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'ro', 'read-only': true, file: fileRef('a.raw') }),
      qmp('block-dirty-bitmap-add', { node: 'ro', name: 'c' }),
      io('ro', 'write 0 4k'),
      io('ro', 'discard 0 4k'),
      io('ro', 'read 0 4k'),
      qmp('blockdev-del', { 'node-name': 'f1' }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'x', file: 'nope' }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'x', file: fileRef('missing.raw') }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'x', file: fileRef('a.raw'), offset: 4096, size: 8192 }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'y', file: fileRef('a.raw'), offset: 2 * MiB }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'y', file: fileRef('a.raw'), offset: 512, size: MiB }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'y', file: fileRef('a.raw'), size: 1000 }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'y', file: 5 }),
      qmp('blockdev-del', { 'node-name': 'r1' }),
      qmp('blockdev-del', { 'node-name': 'f1' }),
      qmp('blockdev-del', { 'node-name': 'x' }),
    ],
  ],
  [
    'blkdebug: the Nth write fails, the bitmap is dirtied anyway',
    rawImages({ 'a.raw': MiB }),
    [
      qmp('blockdev-add', {
        driver: 'raw',
        'node-name': 'r0',
        file: {
          driver: 'blkdebug',
          image: fileRef('a.raw'),
          'set-state': [
            { event: 'write_aio', state: 1, new_state: 2 },
            { event: 'write_aio', state: 2, new_state: 3 },
          ],
          'inject-error': [{ event: 'write_aio', state: 3, once: true }],
        },
      }),
      qmp('block-dirty-bitmap-add', { node: 'r0', name: 'b', granularity: 4096 }),
      io('r0', 'write 0 4k'),
      io('r0', 'write 8k 4k'),
      io('r0', 'write 16k 4k'),
      io('r0', 'write 24k 4k'),
      io('r0', 'write 32k 4k'),
      io('r0', 'read 0 4k'),
    ],
  ],
  [
    'blkdebug: errno, sector and iotype select the requests that fail',
    rawImages({ 'a.raw': MiB }),
    [
      qmp('blockdev-add', {
        driver: 'raw',
        'node-name': 'r0',
        file: {
          driver: 'blkdebug',
          image: fileRef('a.raw'),
          'inject-error': [
            { event: 'read_aio', errno: 28, sector: 16, iotype: 'read' },
            { event: 'write_aio', errno: 1, once: true },
          ],
        },
      }),
      io('r0', 'read 0 4k'),
      io('r0', 'read 8k 4k'),
      io('r0', 'read 4k 4k'),
      io('r0', 'write 0 4k'),
      io('r0', 'write 0 4k'),
      io('r0', 'read 0 4k'),
      io('r0', 'flush'),
    ],
  ],
  [
    'blkdebug: an empty rule list is an option blkdebug does not know',
    rawImages({ 'a.raw': MiB }),
    [
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: { driver: 'blkdebug', image: fileRef('a.raw'), 'set-state': [], 'inject-error': [] } }),
      qmp('blockdev-add', {
        driver: 'raw',
        'node-name': 'r0',
        file: { driver: 'blkdebug', image: fileRef('a.raw'), 'set-state': [{ event: 'read_aio', new_state: 2 }], 'inject-error': [] },
      }),
      qmp('blockdev-add', { driver: 'blkdebug', 'node-name': 'b0', image: fileRef('a.raw'), 'set-state': [] }),
      qmp('blockdev-add', { driver: 'raw', 'node-name': 'r0', file: { driver: 'blkdebug', image: fileRef('a.raw'), 'inject-error': [{ event: 'read_aio' }] } }),
    ],
  ],
];

describe('image nodes and qemu-io against QEMU 7.2', { skip }, () => {
  for (const [name, setup, steps] of scenarios) {
    test(name, async () => {
      const [ours, theirs] = await Promise.all([onEngine(steps, setup), onQemu(steps, setup)]);
      for (let i = 0; i < steps.length; i++) {
        assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
      }
    });
  }
});
