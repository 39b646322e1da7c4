/**
 * The differential harness itself (test/support/differential.ts): when it
 * takes QEMU's state as parked. Needs no QEMU: a stand-in plays QEMU's timing.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { agreesWith, normaliser, onEngine, parked, type Step } from '../support/differential';
import { backupTargetFiles, layout } from '../support/generator';

const MiB = 1 << 20;

/** A rate-limited backup copies its first chunk, then sleeps. */
const steps: Step[] = [
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'src', size: 4 * MiB } },
  { execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'tgt', size: 4 * MiB } },
  {
    execute: 'blockdev-backup',
    arguments: {
      'job-id': 'j0', device: 'src', target: 'tgt', sync: 'full', speed: 1, 'auto-finalize': false, 'auto-dismiss': false,
      'x-perf': { 'max-workers': 1, 'max-chunk': 65536 },
    },
  },
];

test('a parked job counts as the engine\'s only once its progress is the engine\'s (seed 286: a task still in flight)', async () => {
  const ours = await onEngine(steps);
  assert.equal((ours[2].reply as { return?: unknown }).return !== undefined, true);

  // QEMU's stand-in: the same engine, but its job's first task completes 100 ms after the command returned, as on
  // QEMU's thread pool on a loaded machine. Until then its nodes and bitmaps already look the same (null-co).
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  for (const step of steps) monitor.execute(step);
  const started = Date.now();
  const execute = async (message: Record<string, unknown>) => {
    const reply = monitor.execute(message) as { return?: Array<Record<string, unknown>> };
    if (message.execute === 'query-block-jobs' && Date.now() - started < 100) return { return: reply.return!.map((job) => ({ ...job, offset: 0 })) };
    return reply;
  };
  const same = normaliser('@DIR@');
  assert.ok(await agreesWith({ execute: async (message) => monitor.execute(message) }, ours[2], same), 'the stand-in holds the engine\'s state');
  await parked(execute, () => agreesWith({ execute }, ours[2], same));
  const jobs = (await execute({ execute: 'query-block-jobs' })) as { return: Array<{ offset: number }> };
  assert.equal(jobs.return[0].offset, 65536, 'the wait ended while the first task was still in flight');
  monitor.execute({ execute: 'job-cancel', arguments: { id: 'j0' } });
});

test('qcow2 maps compare by what each range is, not by where QEMU happened to put its clusters (seed 993)', () => {
  const oneExtent = '[{ "start": 0, "length": 65536, "depth": 0, "present": false, "zero": true, "data": false},\n'
    + '{ "start": 65536, "length": 196608, "depth": 0, "present": true, "zero": false, "data": true, "offset": 327680}]';
  const split = '[{ "start": 0, "length": 65536, "depth": 0, "present": false, "zero": true, "data": false},\n'
    + '{ "start": 65536, "length": 131072, "depth": 0, "present": true, "zero": false, "data": true, "offset": 393216},\n'
    + '{ "start": 196608, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true, "offset": 327680}]';
  assert.deepEqual(layout(split), layout(oneExtent));
  const zeroInstead = split.replace('"zero": false, "data": true, "offset": 327680', '"zero": true, "data": false');
  assert.notDeepEqual(layout(zeroInstead), layout(oneExtent));
});

test('qcow2 maps still tell a compressed cluster (no host offset) from a normal one', () => {
  const extent = (start: number, offset?: number) =>
    `{ "start": ${start}, "length": 65536, "depth": 0, "present": true, "zero": false, "data": true${offset === undefined ? '' : `, "offset": ${offset}`}}`;
  const normal = `[${extent(0, 327680)},\n${extent(65536, 393216)}]`;
  const compressed = `[${extent(0, 327680)},\n${extent(65536)}]`;
  assert.notDeepEqual(layout(compressed), layout(normal));
  assert.deepEqual(layout(normal), [{ start: 0, length: 131072, depth: 0, present: true, zero: false, data: true, offset: 'host' }]);
});

test('the blockdev-backup targets compared at the end: not those whose bytes came from null-co, directly or through another target', () => {
  const add = (name: string, driver: string, file?: Record<string, unknown>, extra: Record<string, unknown> = {}): Step => ({
    execute: 'blockdev-add',
    arguments: { driver, 'node-name': name, ...(file ? { file } : {}), ...extra },
  });
  const file = (name: string) => ({ driver: 'file', filename: `@DIR@/${name}` });
  const backup = (device: string, target: string): Step => ({ execute: 'blockdev-backup', arguments: { 'job-id': 'j', device, target, sync: 'full' } });
  const base = [
    add('src', 'raw', file('s.raw')),
    add('tgt', 'raw', { driver: 'blkdebug', image: file('t.raw') }),
    add('tq', 'qcow2', file('tq.qcow2')),
    add('n0', 'null-co', undefined, { size: 4 << 20 }),
    add('z', 'null-co', undefined, { size: 4 << 20, 'read-zeroes': true }),
  ];
  assert.deepEqual(backupTargetFiles([...base, backup('src', 'tgt'), backup('z', 'tq')]), {
    compared: [{ name: 't.raw', format: 'raw' }, { name: 'tq.qcow2', format: 'qcow2' }],
    undefined: [],
  });
  // n0 to tgt, then tgt to tq (in a transaction): both undefined, whatever came before.
  const transaction: Step = { execute: 'transaction', arguments: { actions: [{ type: 'blockdev-backup', data: { 'job-id': 'k', device: 'tgt', target: 'tq', sync: 'full' } }] } };
  assert.deepEqual(backupTargetFiles([...base, backup('src', 'tq'), backup('n0', 'tgt'), transaction]), { compared: [], undefined: ['t.raw', 'tq.qcow2'] });
  // A drive-backup target is compared whole elsewhere.
  const drive: Step = { execute: 'drive-backup', arguments: { 'job-id': 'd', device: 'src', target: '@DIR@/t.raw', mode: 'existing', sync: 'full' } };
  assert.deepEqual(backupTargetFiles([...base, backup('src', 'tgt'), drive]).compared, []);
});
