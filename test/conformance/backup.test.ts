/**
 * The backup job on real QEMU 7.2 and on our engine, compared at the points
 * where QEMU parks the job: replies, events, node records with every bitmap
 * (successor and copy-before-write bitmaps included), sha256, job queries.
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

const images: Setup = (dir) => {
  for (const name of ['s.raw', 't.raw']) {
    fs.writeFileSync(path.join(dir, name), '');
    fs.truncateSync(path.join(dir, name), 4 * MiB);
  }
};

const raw = (name: string, file: string, image?: Record<string, unknown>) =>
  qmp('blockdev-add', { driver: 'raw', 'node-name': name, file: image ?? { driver: 'file', filename: `@DIR@/${file}` } });

/** A job that copies one cluster and waits (QEMU-REFERENCE.md), held at pending and concluded. */
const parked = (extra: Record<string, unknown>) =>
  qmp('blockdev-backup', {
    'job-id': 'j0',
    device: 'src',
    target: 'tgt',
    speed: 1,
    'x-perf': { 'max-workers': 1, 'max-chunk': 65536 },
    'auto-finalize': false,
    'auto-dismiss': false,
    'filter-node-name': 'cbw',
    ...extra,
  });

const queries = [qmp('query-jobs'), qmp('query-block-jobs')];
const setup = [
  raw('src', 's.raw'),
  raw('tgt', 't.raw'),
  qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }),
  io('src', 'write -P 0x11 0 128k'),
  io('src', 'write -P 0x22 1M 64k'),
];
const finish = [qmp('block-job-set-speed', { device: 'j0', speed: 0 }), { waitFor: 'BLOCK_JOB_PENDING' } as Step, ...queries, qmp('job-finalize', { id: 'j0' }), ...queries, qmp('job-dismiss', { id: 'j0' }), ...queries];

const scenarios: Array<[string, Step[]]> = [
  ['sync=bitmap, always, success', [...setup, parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }), ...queries, ...finish]],
  ['sync=full, on-success, success', [...setup, parked({ sync: 'full', bitmap: 'b0', 'bitmap-mode': 'on-success' }), ...queries, ...finish]],
  ['sync=incremental, cancel while running', [...setup, parked({ sync: 'incremental', bitmap: 'b0' }), ...queries, qmp('job-cancel', { id: 'j0' }), { waitFor: 'BLOCK_JOB_CANCELLED' }, ...queries, qmp('job-dismiss', { id: 'j0' })]],
  [
    'guest writes through the filter while parked, then cancel under always',
    [
      ...setup,
      parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }),
      io('cbw', 'write -P 0x33 1M 4k'),
      io('cbw', 'write -P 0x33 2M 4k'),
      io('src', 'write 2M 4k'),
      ...queries,
      qmp('job-cancel', { id: 'j0' }),
      { waitFor: 'BLOCK_JOB_CANCELLED' },
      ...queries,
      qmp('job-dismiss', { id: 'j0' }),
      io('tgt', 'read -P 0x22 1M 64k'),
      io('tgt', 'read -P 0 2M 64k'),
    ],
  ],
  [
    'sync=none: copy-before-write only, until cancelled',
    [...setup, parked({ sync: 'none' }), io('cbw', 'write -P 0x33 1M 4k'), ...queries, qmp('job-cancel', { id: 'j0' }), { waitFor: 'BLOCK_JOB_CANCELLED' }, ...queries, qmp('job-dismiss', { id: 'j0' }), io('tgt', 'read -P 0x22 1M 64k')],
  ],
];

describe('backup against QEMU 7.2', { skip }, () => {
  for (const [name, steps] of scenarios) {
    test(name, async () => {
      const [ours, theirs] = await Promise.all([onEngine(steps, images), onQemu(steps, images)]);
      for (let i = 0; i < steps.length; i++) {
        assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
      }
    });
  }
});
