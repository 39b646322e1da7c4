// The player's model of a recording, without a browser: packing, runs of granules, data lanes, markers, cleanup.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fc from 'fast-check';
import type { Frame } from '../../src/engine/timeline/frame';
import { Timeline } from '../../src/engine/timeline/timeline';
import { frameEvent } from '../../webview/player/describe';
import { cellLayout } from '../../webview/player/layout';
import { clip, combine, countOf, differences, erase, paint, regranulate, union, valueAt, type ValueRun } from '../../webview/player/ranges';
import { RunModel, type LaneState } from '../../webview/player/run-model';
import { packRuns, unpackRuns, type RecordedRun } from '../../webview/player/runs-format';
import { exampleRun, namedExampleRun } from './page';

const always = exampleRun('always');
const onSuccess = exampleRun('on-success');
const guestWrites = namedExampleRun('guest-writes-during-backup');
const grouped = namedExampleRun('grouped-transaction-one-failure');

const GRANULE = 65536;
const isCopy = (frame: Frame) => frame.cause.kind === 'trace' && frame.cause.label === 'copy';
const hasGuestIo = (frame: Frame) => frame.writes.some((write) => write.kind === 'guest');
const failureOf = (run: RecordedRun, job: string) => run.frames.findIndex((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR' && e.data.device === job));
const byRole = (lanes: LaneState[]) => Object.fromEntries(lanes.map((lane) => [lane.spec.role, lane]));

/** Runs as one value per granule, undefined where there is none. */
const expand = (runs: readonly ValueRun[], size: number) => {
  const cells: Array<number | undefined> = new Array(size).fill(undefined);
  for (const [start, end, value] of runs) for (let g = start; g < end; g++) cells[g] = value;
  return cells;
};

/** What the write records of frames 0…`upto` put on `node`, granule by granule, the latest write winning: the obvious model. */
function dataOf(frames: readonly Frame[], upto: number, node: string, size: number): Array<number | undefined> {
  const cells: Array<number | undefined> = new Array(size).fill(undefined);
  for (const frame of frames.slice(0, upto + 1)) {
    for (const { node: on, offset, bytes, write } of frame.writes) {
      if (on !== node) continue;
      for (let g = Math.floor(offset / GRANULE); g < Math.ceil((offset + bytes) / GRANULE); g++) cells[g] = write;
    }
  }
  return cells;
}

test('packing leaves out what the player can put back, and unpacking puts back exactly what was there', () => {
  const runs = [always, onSuccess, guestWrites, grouped];
  const packed = packRuns(runs);
  const frames = packed.runs.flatMap((run) => run.frames);
  assert.ok(frames.every((frame) => frame.bitmaps.every((change) => !('before' in change))));
  // A guest write's detail is all in its write record; a copy keeps only its source, who copied, and whether it copied zeroes.
  const io = frames.filter((frame) => frame.cause.kind === 'io');
  assert.ok(io.length >= 10 && io.every((frame) => frame.derived && frame.cause.detail === undefined));
  const copies = frames.filter((frame) => frame.cause.kind === 'trace' && frame.cause.label === 'copy');
  assert.ok(copies.length >= 100 && copies.every((frame) => frame.derived && JSON.stringify(Object.keys(frame.cause.detail!).sort()) === '["by","source","zeroes"]'));
  // A job's type, source and target are said once, where the job first appears.
  for (const run of packed.runs) {
    const typed = run.frames.flatMap((frame) => frame.jobs ?? []).filter((job) => job.type !== undefined).map((job) => job.id);
    assert.deepEqual(typed, [...new Set(typed)]);
  }
  assert.ok(JSON.stringify(packed).length < 0.6 * JSON.stringify(runs).length);
  assert.deepEqual(unpackRuns(JSON.parse(JSON.stringify(packed))), runs);

  // A detail that is not what the records say stays whole.
  const odd = structuredClone(always);
  const copy = odd.frames.find(isCopy)!;
  copy.cause.detail!.bytes = Number(copy.cause.detail!.bytes) + 1;
  const oddPacked = packRuns([odd]);
  assert.deepEqual(oddPacked.runs[0].frames[copy.index].cause, copy.cause);
  assert.equal(oddPacked.runs[0].frames[copy.index].derived, undefined);
  assert.deepEqual(unpackRuns(JSON.parse(JSON.stringify(oddPacked))), [odd]);

  assert.deepEqual(unpackRuns({ version: 1, runs: [] }), { error: 'not a packed recording of version 2' });
  assert.deepEqual(unpackRuns({ version: 2, runs: [{ title: 't', frames: [] }] }), { error: 'runs[0] needs a title and at least one frame' });
  const untyped = { ...packed.runs[0].frames[0], jobs: [{ id: 'j', status: 'running', current: 0, total: 0, speed: 0 }] };
  assert.deepEqual(unpackRuns({ version: 2, runs: [{ title: 't', frames: [untyped] }] }), { error: 'runs[0].frames[0]: job j has no type and is not in the frame before' });
});

/** Runs as one value per granule: the obvious model to check against. */
const SIZE = 64;
const toArray = (runs: readonly ValueRun[]) => expand(runs, SIZE);
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
    ['source:drive0', 'named:drive0/bitmap0', 'successor:drive0', 'copy:drive0', 'cbw-done', 'cbw-access', 'target:drive0'],
  );
  const [abdicate] = model.cleanups[0].operations;
  const bitmap0 = (index: number) => model.lanesAt(index).find((lane) => lane.spec.key === 'named:drive0/bitmap0')!;
  assert.equal(bitmap0(abdicate.frame - 1).meta?.role, 'sync');
  assert.equal(bitmap0(abdicate.frame).meta?.role, 'named');
  assert.notEqual(bitmap0(abdicate.frame - 1).meta?.id, bitmap0(abdicate.frame).meta?.id);
});

test('data lanes: guest writes on the source, the recorded copies on the target of the job the state names', () => {
  const model = new RunModel(always);
  const granules = model.lanes[0].granules;
  const failed = failureOf(always, 'inc');
  const state = (index: number) => byRole(model.lanesAt(index));
  const atFailure = state(failed);
  assert.deepEqual(atFailure.source.runs, [[0, 576, 1], [704, 705, 2]]);
  assert.deepEqual(expand(atFailure.source.runs, granules), dataOf(always.frames, failed, 'drive0', granules));
  // The target lane is the node the job's state names, holding what the copies to it carried.
  const job = always.frames[failed].jobs.find((j) => j.id === 'inc')!;
  assert.deepEqual([job.source, job.target], ['drive0', 'inc1']);
  assert.deepEqual([atFailure.target.job, atFailure.target.targetNode], ['inc', 'inc1']);
  assert.deepEqual(expand(atFailure.target.runs, granules), dataOf(always.frames, failed, 'inc1', granules));
  // The copies agree with the job's progress: two thirds of write #1, nothing in flight.
  assert.deepEqual(atFailure.target.runs, [[0, job.current / GRANULE, 1]]);
  assert.deepEqual(atFailure.target.inFlight, []);

  // In flight: what a block-copy call takes from C, until the copy that carries it is recorded.
  const copyBitmapCleared = (frame: Frame) => frame.bitmaps.find((c) => c.meta?.role === 'copy')?.cleared ?? [];
  const taking = always.frames.find((f) => f.index < failed && f.cause.label === 'block-copy call' && f.jobs[0]?.id === 'inc' && copyBitmapCleared(f).length)!;
  const taken = copyBitmapCleared(taking).map(([start, end]): ValueRun => [start, end, 1]);
  assert.deepEqual(state(taking.index).target.inFlight, taken);
  assert.deepEqual(state(taking.index).target.runs, state(taking.index - 1).target.runs);
  const copied = always.frames.find((f) => f.index > taking.index && isCopy(f))!;
  const [first, end] = [copied.writes[0].offset / GRANULE, (copied.writes[0].offset + copied.writes[0].bytes) / GRANULE];
  assert.deepEqual(state(copied.index).target.inFlight, erase(taken, first, end));
  assert.deepEqual(state(copied.index).target.runs, paint(state(taking.index).target.runs, first, end, 1));

  // The retry copies N ∪ C to inc2: the rest of write #1, and write #2.
  const lastIndex = always.frames.length - 1;
  const last = state(lastIndex);
  assert.deepEqual([last.target.job, last.target.targetNode], ['retry', 'inc2']);
  assert.deepEqual(last.target.runs, [[384, 576, 1], [704, 705, 2]]);
  assert.deepEqual(expand(last.target.runs, granules), dataOf(always.frames, lastIndex, 'inc2', granules));
  // Seeking back and forth gives the same state as going straight there.
  const fresh = new RunModel(always);
  for (const index of [failed, 10, taking.index, 0, lastIndex, copied.index]) assert.deepEqual(model.lanesAt(index), fresh.lanesAt(index), `frame ${index}`);
});

test('copy-before-write: the old data reaches the target before the guest write lands; write-zeroes and discards carry no write number', () => {
  const model = new RunModel(guestWrites);
  const state = (index: number) => byRole(model.lanesAt(index));
  // Write #2 goes through the filter onto clusters still in C: their old data is copied first.
  const write2 = guestWrites.frames.find((f) => f.writes.some((w) => w.kind === 'guest' && w.write === 2))!;
  const [record] = write2.writes;
  const [first, end] = [record.offset / GRANULE, (record.offset + record.bytes) / GRANULE];
  const copy = guestWrites.frames[write2.index - 1];
  assert.ok(isCopy(copy));
  assert.deepEqual(copy.writes.map((w) => [w.node, w.offset, w.bytes, w.write]), [['backup0', record.offset, record.bytes, 0]]);
  assert.deepEqual(clip(state(copy.index).target.runs, first, end), [[first, end, 0]]);
  assert.equal(valueAt(state(copy.index).source.runs, first), undefined);
  assert.equal(valueAt(state(write2.index).source.runs, first), 2);
  assert.deepEqual(state(write2.index).target.runs, state(copy.index).target.runs);
  assert.equal(frameEvent(model, model.view(copy.index)).text, `copied 128 KiB at 0x400000 of drive0 to backup0: zeroes or data older than the recording`);

  const io = guestWrites.frames.filter(hasGuestIo);
  assert.deepEqual(
    io.map((f) => frameEvent(model, model.view(f.index)).text),
    [
      'guest write #1, 64 KiB at 0x80000 of drive0',
      'guest write #2, 128 KiB at 0x400000 of drive0',
      'guest write #3, 64 KiB at 0x410000 of drive0',
      'guest write #4, 4 KiB at 0x608000 of drive0',
      'guest write-zeroes, 64 KiB at 0x700000 of drive0',
    ],
  );
  assert.deepEqual(
    model.markers.filter((m) => m.kind === 'write').map((m) => [m.frame, m.label]),
    io.map((f, i) => [f.index, i < 4 ? `guest write #${i + 1}` : i === 4 ? 'guest write-zeroes' : 'guest discard']),
  );
});

test('several backup sources: each gets its data lanes, its target the job whose state names it, its cleanup its own job', () => {
  const model = new RunModel(grouped);
  assert.deepEqual(model.lanes.map((lane) => lane.key), [
    'source:drive0', 'named:drive0/bitmap0', 'successor:drive0', 'copy:drive0', 'cbw-done', 'cbw-access', 'target:drive0',
    'source:drive1', 'named:drive1/bitmap1', 'successor:drive1', 'copy:drive1', 'target:drive1',
  ]);
  // One transaction starts both jobs.
  const both = grouped.frames.find((f) => f.jobs.length === 2)!;
  const targets = (index: number) => model.lanesAt(index).filter((lane) => lane.spec.role === 'target').map((lane) => [lane.spec.node, lane.job, lane.targetNode]);
  const expected = both.jobs.map((job) => [job.source, job.id, job.target]).sort();
  assert.deepEqual(targets(both.index), expected);
  const lastIndex = grouped.frames.length - 1;
  assert.deepEqual(targets(lastIndex), expected);
  for (const lane of model.lanesAt(lastIndex).filter((l) => l.spec.role === 'target' || l.spec.role === 'source')) {
    const node = lane.spec.role === 'target' ? lane.targetNode! : lane.spec.node;
    assert.deepEqual(expand(lane.runs, lane.spec.granules), dataOf(grouped.frames, lastIndex, node, lane.spec.granules), lane.spec.key);
  }
  // j1 fails and merges C into bitmap1; j0 is cancelled with it and reclaims bitmap0.
  assert.deepEqual(
    model.cleanups.map((c) => [c.job, c.headline, c.operations.map((op) => op.name)]),
    [
      ['j1', 'always, failed: bitmap1 := N ∪ C', ['abdicate', 'merge C']],
      ['j0', 'on-success, failed: bitmap0 := S ∪ N', ['reclaim']],
    ],
  );
  assert.equal(model.cleanups[0].from, failureOf(grouped, 'j1'));
});

test('markers: the failure, the cleanup operations, guest writes, copies and job events, at the frames that have them', () => {
  const model = new RunModel(always);
  const of = (kind: string) => model.markers.filter((m) => m.kind === kind).map((m) => [m.frame, m.label]);
  assert.deepEqual(of('failure'), [[failureOf(always, 'inc'), 'job inc: read error (action report)']]);
  assert.deepEqual(
    of('cleanup').map(([, label]) => label),
    ['cleanup: abdicate bitmap0', 'cleanup: merge C bitmap0', 'cleanup: abdicate bitmap0'],
  );
  assert.deepEqual(of('write'), always.frames.filter(hasGuestIo).map((f, i) => [f.index, `guest write #${i + 1}`]));
  assert.equal(of('write').length, 2);
  // A marker for every copy, in chunks of 1 MiB: the full backup's 48 MiB of zeroes, the 24 MiB inc copied
  // before it failed, and the retry's N ∪ C: the 12 MiB inc did not copy and the 64 KiB of write #2.
  const copies = of('copy');
  assert.deepEqual(copies.map(([frame]) => frame), always.frames.filter(isCopy).map((f) => f.index));
  const to = (target: string) => copies.filter(([, label]) => String(label).includes(` to ${target}: `)).length;
  assert.deepEqual([to('full0'), to('inc1'), to('inc2')], [48, 24, 12 + 1]);
  assert.equal(copies[0][1], 'copied 1 MiB at 0x0 of drive0 to full0: zeroes');
  assert.equal(copies.at(-1)![1], 'copied 64 KiB at 0x2c00000 of drive0 to inc2: data of guest write #2');
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
