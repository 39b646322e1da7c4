/**
 * The backup job on the engine alone (no QEMU needed): the bitmap cleanup of
 * each mode after a failure part-way, the job verbs, and the scheduler's
 * determinism. The same cases run against QEMU in test/conformance.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createQcow2 } from '../../src/engine/drivers/qcow2/create';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';

const MiB = 1 << 20;

/** Runs QMP commands on `monitor`: each returns its result, or throws its error. */
function commandsOf(monitor: QmpMonitor) {
  return (execute: string, args: Record<string, unknown> = {}) => {
    const reply = monitor.execute({ execute, arguments: args }) as { return?: unknown; error?: { desc: string } };
    if (reply.error) throw new Error(`${execute}: ${reply.error.desc}`);
    return reply.return;
  };
}

/** A 64 MiB source and target, a 64 KiB bitmap, and a source that fails its Nth read. */
function setUp(failRead?: number) {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  const run = commandsOf(monitor);
  const blkdebug = failRead
    ? {
        'set-state': Array.from({ length: failRead - 1 }, (_, i) => ({ event: 'read_aio', state: i + 1, new_state: i + 2 })),
        'inject-error': [{ event: 'read_aio', state: failRead, once: true }],
      }
    : {};
  run('blockdev-add', { driver: 'raw', 'node-name': 'src', file: { driver: 'blkdebug', image: { driver: 'null-co', size: 64 * MiB }, ...blkdebug } });
  run('blockdev-add', { driver: 'null-co', 'node-name': 'tgt', size: 64 * MiB });
  run('block-dirty-bitmap-add', { node: 'src', name: 'b0' });
  const write = (offset: number, bytes: number, node = 'src') =>
    assert.equal(run('human-monitor-command', { 'command-line': `qemu-io ${node} "write ${offset} ${bytes}"` }), '');
  const bitmap = () => {
    const nodes = run('query-named-block-nodes') as Array<{ 'node-name': string; 'dirty-bitmaps'?: Array<{ name?: string; count: number; busy: boolean }> }>;
    return nodes.find((node) => node['node-name'] === 'src')!['dirty-bitmaps']!.find((b) => b.name === 'b0')!;
  };
  return { engine, monitor, run, write, bitmap };
}

const backup = (mode: string, extra: Record<string, unknown> = {}) => ({
  'job-id': 'j0', device: 'src', target: 'tgt', 'filter-node-name': 'cbw', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': mode,
  'x-perf': { 'max-workers': 1, 'max-chunk': 65536 }, ...extra,
});

test('a failed incremental backup: always keeps what is left plus new writes, on-success keeps everything', () => {
  const counts: Record<string, number> = {};
  for (const mode of ['always', 'on-success', 'never']) {
    const { run, write, bitmap } = setUp(4);
    write(0, 16 * 65536); // 16 dirty clusters: S
    run('blockdev-backup', backup(mode, { speed: 1 }));
    write(40 * 65536, 65536, 'cbw'); // N: a write during the job, through the filter
    run('block-job-set-speed', { device: 'j0', speed: 0 }); // the 4th read fails: 3 clusters copied
    counts[mode] = bitmap().count;
    assert.equal(bitmap().busy, false);
  }
  // always: N ∪ C = 1 + (16 - 3); on-success and never: S ∪ N = 16 + 1.
  assert.deepEqual(counts, { always: 14 * 65536, 'on-success': 17 * 65536, never: 17 * 65536 });
});

test('a successful backup: always and on-success keep only what was written meanwhile; never keeps S ∪ N', () => {
  for (const [mode, expected] of [['always', 1], ['on-success', 1], ['never', 17]] as const) {
    const { run, write, bitmap } = setUp();
    write(0, 16 * 65536);
    run('blockdev-backup', backup(mode, { speed: 1 }));
    write(40 * 65536, 4096, 'cbw');
    run('block-job-set-speed', { device: 'j0', speed: 0 });
    assert.equal(bitmap().count, expected * 65536, mode);
  }
});

test('cancel in pending counts as a failure', () => {
  const { run, write, bitmap, monitor } = setUp();
  write(0, 4 * 65536);
  run('blockdev-backup', backup('always', { 'auto-finalize': false }));
  assert.equal((run('query-jobs') as Array<{ status: string }>)[0].status, 'pending');
  monitor.takeEvents();
  run('job-cancel', { id: 'j0' });
  assert.deepEqual(monitor.takeEvents().map((e) => e.event + (e.data.status ? `:${e.data.status}` : '')), [
    'JOB_STATUS_CHANGE:aborting', 'BLOCK_JOB_CANCELLED', 'JOB_STATUS_CHANGE:concluded', 'JOB_STATUS_CHANGE:null',
  ]);
  // Everything was copied, so C is empty: N ∪ C = ∅.
  assert.equal(bitmap().count, 0);
});

test('verbs the state does not allow are refused with QEMU text', () => {
  const { run, write, monitor } = setUp();
  write(0, 4 * 65536);
  run('blockdev-backup', backup('always', { speed: 1, 'auto-dismiss': false }));
  const err = (execute: string, args: Record<string, unknown>) => (monitor.execute({ execute, arguments: args }) as { error: { class: string; desc: string } }).error;
  assert.deepEqual(err('job-finalize', { id: 'j0' }), { class: 'GenericError', desc: "Job 'j0' in state 'running' cannot accept command verb 'finalize'" });
  assert.deepEqual(err('job-complete', { id: 'j0' }), { class: 'GenericError', desc: "Job 'j0' in state 'running' cannot accept command verb 'complete'" });
  assert.deepEqual(err('job-resume', { id: 'j0' }), { class: 'GenericError', desc: "Can't resume a job that was not paused" });
  assert.deepEqual(err('job-pause', { id: 'nope' }), { class: 'GenericError', desc: 'Job not found' });
  assert.deepEqual(err('block-job-pause', { device: 'nope' }), { class: 'DeviceNotActive', desc: "Block job 'nope' not found" });
  run('job-pause', { id: 'j0' });
  assert.deepEqual(err('job-pause', { id: 'j0' }), { class: 'GenericError', desc: 'Job is already paused' });
  assert.deepEqual(err('block-job-cancel', { device: 'j0' }), { class: 'GenericError', desc: "The block job for device 'j0' is currently paused" });
  run('job-cancel', { id: 'j0' });
  assert.deepEqual(err('job-cancel', { id: 'j0' }), { class: 'GenericError', desc: "Job 'j0' in state 'concluded' cannot accept command verb 'cancel'" });
});

test('the same inputs give the same events, in the same order, at the same virtual times', () => {
  const trace = () => {
    const { engine, run, write } = setUp(3);
    const events: string[] = [];
    engine.onEvent((e) => events.push(`${e.time} ${e.kind} ${e.name} ${JSON.stringify(e.data)}`));
    write(0, 8 * 65536);
    run('blockdev-backup', backup('always', { speed: 1000000, 'on-source-error': 'ignore' }));
    for (let i = 0; i < 200 && engine.scheduler.step(); i++);
    return events;
  };
  const first = trace();
  assert.ok(first.length > 5);
  assert.deepEqual(trace(), first);
});

test('quit with a job running: drain, cancel, then close (the events QEMU 7.2 sends between SHUTDOWN and the reply)', () => {
  const { run, write, monitor } = setUp();
  write(0, 4 * 65536);
  run('blockdev-backup', backup('always', { speed: 1 }));
  monitor.takeEvents();
  run('quit');
  assert.deepEqual(monitor.takeEvents().map((e) => e.event + (e.data.status ? `:${e.data.status}` : '')), [
    'SHUTDOWN', 'JOB_STATUS_CHANGE:paused', 'JOB_STATUS_CHANGE:running', 'JOB_STATUS_CHANGE:aborting', 'BLOCK_JOB_CANCELLED',
    'JOB_STATUS_CHANGE:concluded', 'JOB_STATUS_CHANGE:null',
  ]);
});

test('drive-backup sync=none from a qcow2 node: the target closes without closing its backing, the source (random seed 16)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-drive-none-'));
  try {
    createQcow2(path.join(dir, 'q.qcow2'), { size: 4 * MiB });
    const run = commandsOf(new QmpMonitor(new Engine(), { negotiated: true }));
    run('blockdev-add', { driver: 'qcow2', 'node-name': 'qc', file: { driver: 'file', filename: path.join(dir, 'q.qcow2') } });
    run('drive-backup', { 'job-id': 'j0', device: 'qc', sync: 'none', target: path.join(dir, 'd.qcow2'), format: 'qcow2', speed: 1, 'auto-finalize': false, 'auto-dismiss': false });
    run('job-cancel', { id: 'j0' });
    run('job-dismiss', { id: 'j0' });
    const nodes = run('query-named-block-nodes') as Array<{ 'node-name': string }>;
    assert.deepEqual(nodes.map((node) => node['node-name']).filter((name) => !name.startsWith('#')), ['qc']);
    assert.equal(run('human-monitor-command', { 'command-line': 'qemu-io qc "write -P 0x5a 0 65536"' }), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('drive-backup mode=existing sync=none: the target, backed by the source, is named by json: with its file name, as QEMU 7.2 names it (random seed 128)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-drive-existing-'));
  try {
    createQcow2(path.join(dir, 'q.qcow2'), { size: 4 * MiB });
    createQcow2(path.join(dir, 'd.qcow2'), { size: 4 * MiB });
    const run = commandsOf(new QmpMonitor(new Engine(), { negotiated: true }));
    run('blockdev-add', { driver: 'qcow2', 'node-name': 'qc', file: { driver: 'file', filename: path.join(dir, 'q.qcow2') } });
    run('drive-backup', { 'job-id': 'j0', device: 'qc', sync: 'none', target: path.join(dir, 'd.qcow2'), mode: 'existing', speed: 1, 'auto-finalize': false });
    const nodes = run('query-named-block-nodes') as Array<{ 'node-name': string; drv: string; file: string }>;
    const target = nodes.find((node) => node.drv === 'qcow2' && node['node-name'] !== 'qc')!;
    assert.equal(
      target.file.replaceAll(dir, '@DIR@'),
      'json:{"backing": {"driver": "qcow2", "file": {"driver": "file", "filename": "@DIR@/q.qcow2"}}, "driver": "qcow2", "file": {"driver": "file", "filename": "@DIR@/d.qcow2"}}',
    );
    run('job-cancel', { id: 'j0' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
