import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { Recorder } from '../../src/engine/timeline/recorder';
import { Timeline } from '../../src/engine/timeline/timeline';

const MiB = 1 << 20;

/** A failing incremental backup with guest writes through the filter, recorded. */
function record() {
  const engine = new Engine();
  const recorder = new Recorder(engine);
  // The recorder's first frame (start) came before we could listen: nothing existed yet.
  const truth: Array<Map<number, string>> = [new Map()];
  recorder.onFrame = () => {
    const state = new Map<number, string>();
    for (const node of engine.graph.list()) {
      for (const bitmap of node.bitmaps) state.set(recorder.idOf(bitmap)!, JSON.stringify([...bitmap.bits.extents()]));
    }
    truth.push(state);
  };
  const monitor = new QmpMonitor(engine, { negotiated: true });
  const run = (execute: string, args: Record<string, unknown> = {}) => monitor.execute({ execute, arguments: args });
  const io = (node: string, line: string) => run('human-monitor-command', { 'command-line': `qemu-io ${node} "${line}"` });
  run('blockdev-add', {
    driver: 'raw', 'node-name': 'src',
    file: { driver: 'blkdebug', image: { driver: 'null-co', size: 64 * MiB }, 'set-state': [1, 2, 3, 4, 5].map((state) => ({ event: 'read_aio', state, new_state: state + 1 })), 'inject-error': [{ event: 'read_aio', state: 6, once: true }] },
  });
  run('blockdev-add', { driver: 'null-co', 'node-name': 'tgt', size: 64 * MiB });
  run('block-dirty-bitmap-add', { node: 'src', name: 'b0', granularity: 16384 });
  io('src', 'write 0 1M');
  io('src', 'write 9M 100k');
  run('blockdev-backup', { 'job-id': 'j0', device: 'src', target: 'tgt', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', speed: 1, 'filter-node-name': 'cbw', 'x-perf': { 'max-workers': 2, 'max-chunk': 65536 } });
  io('cbw', 'write 20M 4k');
  io('cbw', 'write 64k 4k');
  run('block-job-set-speed', { device: 'j0', speed: 0 });
  return { recorder, truth, engine };
}

test('every frame, reached forwards, backwards or by jumping, equals the state recorded while running', () => {
  const { recorder, truth } = record();
  const timeline = new Timeline(recorder.frames);
  assert.ok(timeline.length > 40, `only ${timeline.length} frames`);
  const check = (index: number) => {
    const state = timeline.seek(index);
    const seen = new Map([...state.bitmaps].map(([id, { bits }]) => [id, JSON.stringify([...bits.extents()])]));
    assert.deepEqual(seen, truth[index], `frame ${index}`);
  };
  for (let i = 0; i < timeline.length; i++) check(i);
  for (let i = timeline.length - 1; i >= 0; i--) check(i);
  let seed = 7;
  for (let n = 0; n < 200; n++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    check(seed % timeline.length);
  }
});

test('frames name what happened: the job, its chunks, the cleanup steps', () => {
  const { recorder } = record();
  const causes = recorder.frames.map((frame) => `${frame.cause.kind}:${frame.cause.label}`);
  for (const expected of ['event:JOB_STATUS_CHANGE', 'event:BLOCK_JOB_ERROR', 'trace:abdicate', 'trace:merge-copy-bitmap', 'event:BLOCK_JOB_COMPLETED']) {
    assert.ok(causes.includes(expected), `${expected} missing from ${causes.join(' ')}`);
  }
  const roles = new Set(recorder.frames.flatMap((frame) => frame.bitmaps.map((change) => (change.meta ?? change.before)!.role)));
  assert.deepEqual([...roles].sort(), ['cbw-access', 'cbw-done', 'copy', 'named', 'successor', 'sync']);
  // Frames are plain data.
  assert.deepEqual(JSON.parse(JSON.stringify(recorder.frames)), recorder.frames);
});
