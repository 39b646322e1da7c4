// The player's model of a recording, without a browser: packing, runs of granules, guest data, markers, cleanup.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import { Timeline } from '../../src/engine/timeline/timeline';
import { cellLayout } from '../../webview/player/layout';
import { combine, countOf, differences, erase, paint, regranulate, union, valueAt, type ValueRun } from '../../webview/player/ranges';
import { RunModel } from '../../webview/player/run-model';
import { packRuns, unpackRuns } from '../../webview/player/runs-format';
import { exampleRun } from './page';

const always = exampleRun('always');
const onSuccess = exampleRun('on-success');

test('packing drops every `before` and unpacking puts back exactly what was there', () => {
  const runs = [always, onSuccess];
  const packed = packRuns(runs);
  assert.ok(packed.runs.every((run) => run.frames.every((frame) => frame.bitmaps.every((change) => !('before' in change)))));
  assert.ok(JSON.stringify(packed).length < 0.6 * JSON.stringify(runs).length);
  assert.deepEqual(unpackRuns(JSON.parse(JSON.stringify(packed))), runs);
  assert.deepEqual(unpackRuns({ version: 2, runs: [] }), { error: 'not a packed recording of version 1' });
  assert.deepEqual(unpackRuns({ version: 1, runs: [{ title: 't', frames: [] }] }), { error: 'runs[0] needs a title and at least one frame' });
});

/** Runs as one value per granule, undefined where there is none: the obvious model to check against. */
const SIZE = 64;
const toArray = (runs: readonly ValueRun[]) => {
  const cells: Array<number | undefined> = new Array(SIZE).fill(undefined);
  for (const [start, end, value] of runs) for (let g = start; g < end; g++) cells[g] = value;
  return cells;
};
const arbitraryRuns = fc
  .array(fc.tuple(fc.integer({ min: 0, max: SIZE - 1 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 3 })), { maxLength: 8 })
  .map((paints) => paints.reduce<ValueRun[]>((runs, [start, length, value]) => paint(runs, start, Math.min(SIZE, start + length), value), []));
/** Sorted, disjoint, non-empty, and adjacent runs of equal value merged. */
const wellFormed = (runs: readonly ValueRun[]) =>
  runs.every(([start, end], i) => start < end && (i === 0 || runs[i - 1][1] < start || (runs[i - 1][1] === start && runs[i - 1][2] !== runs[i][2])));

test('runs of granules: paint, erase, union, differences and lookup agree with one value per granule', () => {
  fc.assert(
    fc.property(arbitraryRuns, arbitraryRuns, fc.integer({ min: 0, max: SIZE }), fc.integer({ min: 0, max: SIZE }), (a, b, x, y) => {
      const [start, end] = [Math.min(x, y), Math.max(x, y)];
      const [cellsA, cellsB] = [toArray(a), toArray(b)];
      for (const runs of [a, b, union(a, b), differences(a, b), erase(a, start, end), paint(a, start, end, 9)]) assert.ok(wellFormed(runs), JSON.stringify(runs));
      assert.deepEqual(toArray(union(a, b)), cellsA.map((v, g) => (v !== undefined || cellsB[g] !== undefined ? 1 : undefined)));
      assert.deepEqual(toArray(differences(a, b)), cellsA.map((v, g) => (v === cellsB[g] ? undefined : cellsB[g] === undefined ? 0 : 1)));
      assert.deepEqual(toArray(erase(a, start, end)), cellsA.map((v, g) => (g >= start && g < end ? undefined : v)));
      assert.deepEqual(toArray(paint(a, start, end, 9)), cellsA.map((v, g) => (g >= start && g < end ? 9 : v)));
      assert.deepEqual(cellsA.map((_, g) => valueAt(a, g)), cellsA);
      assert.equal(countOf(a), cellsA.filter((v) => v !== undefined).length);
    }),
  );
  assert.deepEqual(combine([[0, 4, 1]], [[2, 6, 2]], (p, q) => p !== undefined && q !== undefined), [[2, 4, 1]]);
  // Coarser granules cover every byte the finer ones did.
  assert.deepEqual(regranulate([[1, 2, 1], [5, 9, 1]], 4096, 65536), [[0, 1, 1]]);
  assert.deepEqual(regranulate([[0, 1, 1]], 65536, 4096), [[0, 16, 1]]);
});

test('lanes follow roles: bitmap0 is one lane whether it is S or, after abdicate, the former N', () => {
  const model = new RunModel(always);
  assert.deepEqual(
    model.lanes.map((lane) => lane.key),
    ['source', 'named:drive0/bitmap0', 'successor:drive0', 'copy:drive0', 'cbw-done', 'cbw-access', 'target'],
  );
  const [abdicate] = model.cleanups[0].operations;
  const bitmap0 = (index: number) => model.lanesAt(index).find((lane) => lane.spec.key === 'named:drive0/bitmap0')!;
  assert.equal(bitmap0(abdicate.frame - 1).meta?.role, 'sync');
  assert.equal(bitmap0(abdicate.frame).meta?.role, 'named');
  assert.notEqual(bitmap0(abdicate.frame - 1).meta?.id, bitmap0(abdicate.frame).meta?.id);
});

test('guest data: writes on the source, copies on the target as the job progress confirms them', () => {
  const model = new RunModel(always);
  const failed = model.markers.find((m) => m.kind === 'failure')!.frame;
  const state = (index: number) => Object.fromEntries(model.lanesAt(index).map((lane) => [lane.spec.role, lane]));
  const atFailure = state(failed);
  assert.deepEqual(atFailure.source.runs, [[0, 576, 1], [704, 705, 2]]);
  // The job's progress when it failed, and not the chunks that were in flight.
  const job = always.frames[failed].jobs.find((j) => j.id === 'inc')!;
  assert.deepEqual(atFailure.target.runs, [[0, job.current / 65536, 1]]);
  assert.deepEqual(atFailure.target.inFlight, []);
  assert.equal(atFailure.target.job, 'inc');
  // In flight: taken from C by block-copy, not yet in the progress.
  const taking = always.frames.find((f) => f.index < failed && f.cause.label === 'block-copy call' && f.jobs[0]?.current > 0)!;
  assert.ok(countOf(state(taking.index).target.inFlight!) > 0);
  // The retry copies N ∪ C: the rest of write #1, and write #2.
  const last = state(always.frames.length - 1);
  assert.equal(last.target.job, 'retry');
  assert.deepEqual(last.target.runs, [[384, 576, 1], [704, 705, 2]]);
  // Seeking back and forth gives the same state as going straight there.
  const fresh = new RunModel(always);
  for (const index of [200, 10, 150, 0, 224, 179]) assert.deepEqual(model.lanesAt(index), fresh.lanesAt(index), `frame ${index}`);
});

test('markers: the failure, the cleanup operations, writes and job events, at the frames that have them', () => {
  const model = new RunModel(always);
  const of = (kind: string) => model.markers.filter((m) => m.kind === kind).map((m) => [m.frame, m.label]);
  const frameOf = (test: (f: (typeof always.frames)[number]) => boolean) => always.frames.find(test)!.index;
  assert.deepEqual(of('failure'), [[frameOf((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR')), 'job inc: read error (action report)']]);
  assert.deepEqual(
    of('cleanup').map(([, label]) => label),
    ['cleanup: abdicate bitmap0', 'cleanup: merge C bitmap0', 'cleanup: abdicate bitmap0'],
  );
  assert.deepEqual(of('write').map(([frame]) => frame), always.frames.filter((f) => f.writes.length).map((f) => f.index));
  assert.deepEqual(
    of('job').map(([, label]) => label),
    ['job full created', 'job full completed', 'job inc created', 'job inc ended with an error', 'job retry created', 'job retry completed'],
  );
});

test('cleanup: each operation with its formula, and what the other mode would have kept, from the engine state', () => {
  const expectations = [
    { run: always, headline: 'always, failed: bitmap0 := N ∪ C', operations: ['abdicate: bitmap0 := N', 'merge C: bitmap0 := N ∪ C'], kept: 12648448, otherwise: 37814272 },
    { run: onSuccess, headline: 'on-success, failed: bitmap0 := S ∪ N', operations: ['reclaim: bitmap0 := S ∪ N'], kept: 37814272, otherwise: 12648448 },
  ];
  for (const { run, headline, operations, kept, otherwise } of expectations) {
    const [failed, retry] = new RunModel(run).cleanups;
    assert.equal(failed.headline, headline);
    assert.deepEqual(failed.operations.map((op) => `${op.name}: ${op.symbols}`), operations);
    // The bytes the examples expect of bitmap0 after the failure, and the engine's count at the last operation.
    assert.equal(failed.kept.bytes, kept);
    const last = failed.operations.at(-1)!;
    const bitmap0 = [...new Timeline(run.frames).seek(last.frame).bitmaps.values()].find(({ meta }) => meta.name === 'bitmap0')!;
    assert.equal(bitmap0.meta.count, kept);
    assert.equal(failed.otherwise?.bytes, otherwise);
    assert.equal(retry.headline, `${headline.split(',')[0]}, succeeded: bitmap0 := N`);
    assert.ok(failed.from < last.frame && failed.to < retry.from);
  }
});

test('cell layout: rows of a round number of granules, cells no smaller than 4 px, lanes no taller than 100 px when possible', () => {
  assert.deepEqual(cellLayout(768, 580), { columns: 96, rows: 8, pitch: 6, size: 5, width: 575, height: 47 });
  assert.deepEqual(cellLayout(768, 1200), { columns: 96, rows: 8, pitch: 12, size: 10, width: 1150, height: 94 });
  assert.deepEqual(cellLayout(16, 580), { columns: 16, rows: 1, pitch: 14, size: 12, width: 222, height: 12 });
  assert.equal(cellLayout(4096, 580).pitch, 4);
});
