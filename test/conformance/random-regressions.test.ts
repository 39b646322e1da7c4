/**
 * Curated reproducers of divergences the random conformance runs found
 * (`npm run conformance`), each pinned on the engine alone (QEMU 7.2's answer,
 * observed) and compared with real QEMU when it is installed.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { onEngine, onQemu, type Setup, type Step } from '../support/differential';

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');
const MiB = 1 << 20;

const sparseRaw = (...names: string[]): Setup => (dir) => {
  for (const name of names) {
    fs.writeFileSync(path.join(dir, name), '');
    fs.truncateSync(path.join(dir, name), 4 * MiB);
  }
};

const statusChanges = (events: unknown[]) =>
  (events as Array<{ event: string; data: { status?: string } }>).filter((e) => e.event === 'JOB_STATUS_CHANGE').map((e) => e.data.status);

/**
 * A rate-limited backup has copied one of two dirty clusters; a guest write
 * through the filter copies the other. Detaching qemu-io's backend drains
 * twice after the request: the job pauses, resumes, finds nothing left and
 * completes before the second drain (seeds 1377, 1454).
 */
const lastClustersByCopyBeforeWrite = (write: string): Step[] => [
  { execute: 'blockdev-add', arguments: { driver: 'raw', 'node-name': 'tgt', file: { driver: 'file', filename: '@DIR@/t.raw' } } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0', size: 4 * MiB } },
  { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b0', granularity: 65536 } },
  { io: 'write -P 0x82 192512 65536', node: 'n0' },
  {
    execute: 'blockdev-backup',
    arguments: {
      'job-id': 'j0', device: 'n0', target: 'tgt', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'never', 'filter-node-name': 'cbw',
      speed: 1, 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 }, 'auto-finalize': false, 'auto-dismiss': false,
    },
  },
  { io: write, node: 'cbw' },
  { execute: 'job-finalize', arguments: { id: 'j0' } },
  { execute: 'job-dismiss', arguments: { id: 'j0' } },
];

describe('divergences found by random seeds', () => {
  test('a guest write that copies the last dirty clusters completes the job within its qemu-io command (seeds 1377, 1454)', async () => {
    const ours = await onEngine(lastClustersByCopyBeforeWrite('write -P 0x36 178939 77776'), sparseRaw('t.raw'));
    assert.deepEqual(statusChanges(ours[5].events), ['paused', 'running', 'waiting', 'pending']);
  });

  test('a guest write that copies nothing pauses and resumes the job twice, after the request', async () => {
    const ours = await onEngine(lastClustersByCopyBeforeWrite('write -P 0x36 131072 4096'), sparseRaw('t.raw'));
    assert.deepEqual(statusChanges(ours[5].events), ['paused', 'running', 'paused', 'running']);
  });

  for (const write of ['write -P 0x36 178939 77776', 'write -P 0x36 196608 4096', 'write -P 0x36 131072 4096']) {
    test(`the same on QEMU 7.2: ${write} through the filter`, { skip }, async () => {
      const steps = lastClustersByCopyBeforeWrite(write);
      const ours = await onEngine(steps, sparseRaw('t.raw'));
      const theirs = await onQemu(steps, sparseRaw('t.raw'), ours);
      for (let i = 0; i < steps.length; i++) assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
    });
  }
});
