/**
 * The scenario format's parts that the examples do not exercise when they
 * hold: errors for misnamed images and malformed expectations, and what the
 * runner says when an open, a crash or an expectation cannot be met.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScenarioSyntaxError, parseScenario, type Scenario } from '../../src/engine/scenario/parse';
import { blockdevAddFor, runScenario } from '../../src/engine/scenario/runner';

const image = { name: 'drive0', format: 'qcow2', size: '4M' };

/** The error lines a scenario gives, without the file name. */
function errors(scenario: unknown): string[] {
  try {
    parseScenario(JSON.stringify(scenario, null, 2), 'f');
  } catch (error) {
    if (error instanceof ScenarioSyntaxError) return error.errors.map((e) => `${e.line}: ${e.path}: ${e.message}`);
    throw error;
  }
  return [];
}

function run(scenario: Scenario): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-scenario-'));
  try {
    return runScenario(scenario, dir).failures;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('open and backing must name images of the scenario; backing one declared before', () => {
  assert.deepEqual(
    errors({
      title: 't',
      images: [{ ...image, backing: 'base' }, { ...image, name: 'base' }],
      steps: [{ open: 'drive1' }, { crash: true }, { open: 'base' }],
    }),
    ['8: images[0].backing: must name an image declared before this one (none is)', '18: steps[0].open: must name an image of this scenario: drive0, base'],
  );
  assert.deepEqual(errors({ title: 't', images: [image], steps: [{ crash: false }] }), ['12: steps[0].crash: must be equal to constant']);
});

test('an expectation, one or a list, is told by the errors of the form it was written in', () => {
  const steps = [
    { expect: { job: { id: 'j', bogus: 1 } } },
    { expect: { job: [{ id: 'j', total: '1Q' }, { id: 'k', copy: { count: 'x' } }] } },
    { expect: { bitmap: [{ node: 'drive0' }] } },
    { expect: { bitmap: { node: 'drive0', name: 'b', successor: { granules: [[1]] } } } },
  ];
  assert.deepEqual(
    errors({ title: 't', images: [image], steps }).map((line) => line.replace(/^\d+: /, '')),
    [
      "steps[0].expect.job: unexpected member 'bogus'",
      'steps[1].expect.job[0].total: must be a byte count: a number, or a string such as "64k" or "1M"',
      'steps[1].expect.job[1].copy.count: must be a byte count: a number, or a string such as "64k" or "1M"',
      "steps[2].expect.bitmap[0]: missing member 'name'",
      'steps[3].expect.bitmap.successor.granules[0]: must NOT have fewer than 2 items',
    ],
  );
});

test('a fault on the first request compiles to blkdebug without an empty set-state, which QEMU refuses', () => {
  const add = blockdevAddFor({ name: 'd', format: 'qcow2', size: 1, faults: [{ on: 'write', nth: 1 }] }, '/x') as { file: Record<string, unknown> };
  assert.deepEqual(add.file, {
    driver: 'blkdebug',
    image: { driver: 'file', filename: '/x/d.qcow2' },
    'inject-error': [{ event: 'write_aio', state: 1, errno: 5, once: true }],
  });
});

test('a crash needs every job gone; the images are closed and can be opened again', () => {
  const backup = { 'job-id': 'j', device: 'drive0', target: 'backup0', sync: 'full', speed: 1, 'auto-dismiss': false };
  const failures = run({
    title: 't',
    images: [image as Scenario['images'][0], { ...image, name: 'backup0' } as Scenario['images'][0]],
    steps: [
      { qmp: { execute: 'blockdev-backup', arguments: backup } },
      { crash: true },
      { qmp: { execute: 'job-cancel', arguments: { id: 'j' } } },
      { qmp: { execute: 'job-dismiss', arguments: { id: 'j' } }, expect: { job: { id: 'j', absent: true } } },
      { crash: true, expect: { bitmap: { node: 'drive0', name: 'any', absent: true } } },
      { qmp: { execute: 'query-named-block-nodes' } },
      { open: 'drive0' },
      { open: 'drive0' },
    ],
  });
  assert.deepEqual(failures, [
    'steps[1]: a crash needs every job gone first; there is j',
    "steps[7]: opening drive0: Duplicate nodes with node-name='drive0'",
  ]);
});

test('successor and copy-bitmap expectations name what is missing or different', () => {
  const failures = run({
    title: 't',
    images: [image as Scenario['images'][0], { ...image, name: 'backup0' } as Scenario['images'][0]],
    steps: [
      { qmp: { execute: 'block-dirty-bitmap-add', arguments: { node: 'drive0', name: 'b' } } },
      { write: { node: 'drive0', offset: 0, length: '128k' }, expect: { bitmap: { node: 'drive0', name: 'b', successor: { count: 0 } } } },
      {
        qmp: {
          execute: 'blockdev-backup',
          arguments: { 'job-id': 'j', device: 'drive0', target: 'backup0', sync: 'bitmap', bitmap: 'b', 'bitmap-mode': 'always', speed: 1, 'auto-dismiss': false, 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 } },
        },
        expect: { bitmap: { node: 'drive0', name: 'b', successor: { count: '64k' } }, job: { id: 'j', copy: { granules: [[0, 2]] } } },
      },
      { qmp: { execute: 'block-job-set-speed', arguments: { device: 'j', speed: 0 } } },
      { wait: { event: 'BLOCK_JOB_COMPLETED' }, expect: { job: { id: 'j', copy: { count: 0 } } } },
    ],
  });
  assert.deepEqual(failures, [
    'steps[1]: bitmap drive0/b has no successor',
    'steps[2]: bitmap drive0/b: its successor: count is 0, expected 65536',
    'steps[2]: job j: the copy bitmap: granules are [[1,2]], expected [[0,2]]',
    'steps[4]: job j has no copy bitmap (no backup filter in place)',
  ]);
});

test('advance names exactly one goal, and a job with status or progress', () => {
  const steps = [{ advance: { frames: 1, event: 'X' } }, { advance: {} }, { advance: { status: 'pending' } }, { advance: { frames: 0 } }];
  assert.deepEqual(
    errors({ title: 't', images: [image], steps }).map((line) => line.replace(/^\d+: /, '')),
    [
      "steps[2].advance: must have property job when property status is present",
      'steps[3].advance.frames: must be >= 1',
    ],
  );
  assert.deepEqual(
    errors({ title: 't', images: [image], steps: steps.slice(0, 2) }).map((line) => line.replace(/^\d+: /, '')),
    ['steps[0].advance: must name exactly one of frames, status, progress, event, bitmap, not frames and event', 'steps[1].advance: must name exactly one of frames, status, progress, event, bitmap'],
  );
});

test('advance lets a rate-limited job run on virtual time, to a progress, a frame count, a bitmap change, a status, an event', () => {
  const backup = {
    'job-id': 'j', device: 'drive0', target: 'backup0', sync: 'bitmap', bitmap: 'b', 'bitmap-mode': 'always',
    speed: 1, 'auto-dismiss': false, 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 },
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-scenario-'));
  try {
    const result = runScenario({
      title: 't',
      images: [image as Scenario['images'][0], { ...image, name: 'backup0' } as Scenario['images'][0]],
      steps: [
        { qmp: { execute: 'block-dirty-bitmap-add', arguments: { node: 'drive0', name: 'b' } } },
        { write: { node: 'drive0', offset: 0, length: '512k' } },
        { qmp: { execute: 'blockdev-backup', arguments: backup }, expect: { job: { id: 'j', current: '64k', copy: { granules: [[1, 8]] } } } },
        { advance: { job: 'j', progress: '192k' }, expect: { job: { id: 'j', status: 'running', current: '192k', copy: { granules: [[3, 8]] } } } },
        { advance: { job: 'j', progress: '100k' } },
        { advance: { frames: 1 } },
        { advance: { bitmap: { node: 'drive0', name: 'b' } }, expect: { bitmap: { node: 'drive0', name: 'b', busy: false, count: 0 } } },
        { advance: { job: 'j', status: 'concluded' }, expect: { job: { id: 'j', status: 'concluded', current: '512k' } } },
        { advance: { event: 'BLOCK_JOB_COMPLETED', data: { device: 'j' } } },
        { advance: { job: 'j', status: 'pending' } },
        { advance: { event: 'BLOCK_JOB_COMPLETED' } },
      ],
    }, dir);
    assert.deepEqual(result.failures, [
      'steps[9]: advance until j is pending: the engine has nothing left to run (jobs: j concluded)',
      'steps[10]: advance until BLOCK_JOB_COMPLETED: the engine has nothing left to run (jobs: j concluded)',
    ]);
    const [, , started, progressed, already, oneFrame, changed, concluded, event] = result.steps;
    // The progress goal held already: no step taken; one frame is exactly one more.
    assert.equal(already.frame, progressed.frame);
    assert.equal(oneFrame.frame, progressed.frame + 1);
    // The bitmap changes at the cleanup (abdicate), in the engine step that completes the job: goals are
    // checked between engine steps, so that step runs whole and the job is concluded after it.
    const causes = result.frames.slice(oneFrame.frame + 1, changed.frame + 1).map((frame) => frame.cause.label);
    assert.ok(causes.includes('abdicate') && causes.at(-1) === 'JOB_STATUS_CHANGE', causes.join());
    assert.equal(concluded.frame, changed.frame);
    // The event came on the way: consumed without a step.
    assert.equal(event.frame, concluded.frame);
    // Time passed on the virtual clock: QEMU's rate limit lets at least 1 byte per 100 ms slice, so two more 64 KiB chunks take 2 x 6553.6 s.
    const elapsed = result.frames[progressed.frame].time - result.frames[started.frame].time;
    assert.ok(elapsed >= 2 * 65536 * 100e6 && elapsed < 2 * 65536 * 100e6 + 1e6, String(elapsed));
    assert.deepEqual(result.steps.map((step) => step.label).slice(3, 6), ['advance until j has copied 192k', 'advance until j has copied 100k', 'advance 1 frame']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("expected events are looked for among the step's own events, in order", () => {
  const backup = { 'job-id': 'j', device: 'drive0', target: 'backup0', sync: 'full', speed: 1, 'auto-dismiss': false };
  const failures = run({
    title: 't',
    images: [image as Scenario['images'][0], { ...image, name: 'backup0' } as Scenario['images'][0]],
    steps: [
      {
        qmp: { execute: 'blockdev-backup', arguments: backup },
        expect: { events: [{ event: 'JOB_STATUS_CHANGE', data: { status: 'created' } }, { event: 'JOB_STATUS_CHANGE', data: { id: 'j', status: 'running' } }] },
      },
      { qmp: { execute: 'block-job-set-speed', arguments: { device: 'j', speed: 0 } }, expect: { events: [{ event: 'BLOCK_JOB_COMPLETED' }, { event: 'JOB_STATUS_CHANGE', data: { status: 'running' } }] } },
      { qmp: { execute: 'query-jobs' }, expect: { events: [{ event: 'BLOCK_JOB_COMPLETED' }] } },
    ],
  });
  assert.deepEqual(failures, [
    "steps[1]: expected the event JOB_STATUS_CHANGE {\"status\":\"running\"} after the ones before it; this step's events: JOB_STATUS_CHANGE",
    "steps[2]: expected the event BLOCK_JOB_COMPLETED; this step's events: none",
  ]);
});
