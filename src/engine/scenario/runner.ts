/**
 * Runs a scenario on the engine: creates its images, opens them over QMP as
 * a client of QEMU would (so the same steps run on real QEMU), performs each
 * step, checks its expectations, and records the timeline.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DirtyBitmap } from '../dirty-bitmap';
import { createQcow2, createRaw } from '../drivers/qcow2/create';
import { Engine } from '../engine';
import { BackupJob } from '../jobs/backup';
import { QmpMonitor, type QmpEvent } from '../qmp/monitor';
import type { Frame } from '../timeline/frame';
import { Recorder } from '../timeline/recorder';
import { advance, describeAdvance, findEvent } from './advance';
import { bytes, type BitmapExpectation, type EventExpectation, type BitsExpectation, type ImageSpec, type JobExpectation, type RangeSpec, type Scenario, type StepSpec } from './parse';

export interface StepResult {
  index: number;
  /** What the step does, in a few words. */
  label: string;
  failures: string[];
  reply?: unknown;
  /** The last frame of the step. */
  frame: number;
}

export interface ScenarioRun {
  frames: Frame[];
  /** The last frame of the setup (the images opened), before the first step. */
  opened: number;
  steps: StepResult[];
  /** Every failed expectation, `steps[i]: what`. */
  failures: string[];
}

/** The QMP a client sends to open an image: a format node over its file, with blkdebug for a fault. */
export function blockdevAddFor(image: ImageSpec, dir: string): Record<string, unknown> {
  const file: Record<string, unknown> = { driver: 'file', filename: path.join(dir, fileName(image)) };
  const fault = image.faults?.[0];
  const event = fault?.on === 'write' ? 'write_aio' : 'read_aio';
  const child = fault
    ? {
        driver: 'blkdebug',
        image: file,
        // QEMU refuses an empty list here (an option blkdebug does not know), so the first request needs none.
        ...(fault.nth > 1 && { 'set-state': Array.from({ length: fault.nth - 1 }, (_, i) => ({ event, state: i + 1, new_state: i + 2 })) }),
        'inject-error': [{ event, state: fault.nth, errno: fault.errno ?? 5, once: true }],
      }
    : file;
  return {
    driver: image.format,
    'node-name': image.name,
    file: child,
    ...(image.backing !== undefined && { backing: image.backing }),
  };
}

export function fileName(image: ImageSpec): string {
  return `${image.name}.${image.format === 'qcow2' ? 'qcow2' : 'img'}`;
}

/**
 * Creates the image files, then writes their initial data through a private
 * engine, so that fault counting starts with the scenario's own steps.
 */
export function createImages(images: ImageSpec[], dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const image of images) {
    const file = path.join(dir, fileName(image));
    if (image.format === 'raw') createRaw(file, bytes(image.size));
    else {
      const backing = images.find((other) => other.name === image.backing);
      createQcow2(file, {
        size: bytes(image.size),
        ...(image.clusterSize !== undefined && { clusterSize: bytes(image.clusterSize) }),
        ...(backing && { backingFile: fileName(backing), backingFormat: backing.format }),
      });
    }
  }
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  for (const image of images.filter((i) => i.data?.length)) {
    const add = blockdevAddFor({ ...image, faults: undefined, backing: undefined }, dir);
    const reply = monitor.execute({ execute: 'blockdev-add', arguments: add }) as { error?: { desc: string } };
    if (reply.error) throw new Error(`opening ${image.name}: ${reply.error.desc}`);
    for (const { offset, length, pattern } of image.data!) {
      engine.backend(image.name).write(bytes(offset), new Uint8Array(bytes(length)).fill(pattern ?? 0xcd));
    }
    monitor.execute({ execute: 'blockdev-del', arguments: { 'node-name': image.name } });
  }
  monitor.execute({ execute: 'quit' });
}

/** What a step does, for tables and the timeline. */
export function describeStep(step: StepSpec): string {
  if (step.qmp) return step.qmp.execute;
  for (const kind of ['write', 'zero', 'discard', 'read'] as const) {
    const range = step[kind];
    if (range) return `${kind} ${range.node} ${range.offset}+${range.length}`;
  }
  if (step.wait) return `wait ${step.wait.event}`;
  if (step.advance) return describeAdvance(step.advance);
  if (step.open !== undefined) return `open ${step.open}`;
  if (step.crash) return 'crash';
  if (step.expect) return 'expect';
  return 'narration';
}

export const QEMU_IO_LINE: Record<'write' | 'zero' | 'discard' | 'read', (r: RangeSpec) => string> = {
  write: (r) => `write -P ${r.pattern ?? 0xcd} ${bytes(r.offset)} ${bytes(r.length)}`,
  zero: (r) => `write -z ${bytes(r.offset)} ${bytes(r.length)}`,
  discard: (r) => `discard ${bytes(r.offset)} ${bytes(r.length)}`,
  read: (r) => `read ${r.pattern === undefined ? '' : `-P ${r.pattern} `}${bytes(r.offset)} ${bytes(r.length)}`,
};

/**
 * A crash (SIGKILL) as the image files see it: whatever had reached them
 * stays, and nothing the nodes would write on close (caches, persistent
 * bitmaps, in_use cleared) does. The nodes are closed as on quit, then every
 * file in `dir` gets back the bytes it had before; the engine is left with no
 * nodes, as a QEMU started afresh. Jobs must be gone first.
 */
export function crashEngine(engine: Engine, dir: string): void {
  if (engine.jobs.length) throw new Error(`a crash needs every job gone first; there is ${engine.jobs.map((job) => job.id).join(', ')}`);
  const files = fs.readdirSync(dir).map((name) => path.join(dir, name)).filter((file) => fs.statSync(file).isFile());
  const before = files.map((file) => fs.readFileSync(file));
  engine.graph.closeAll();
  files.forEach((file, i) => fs.writeFileSync(file, before[i]));
}

class Run {
  readonly engine = new Engine();
  readonly recorder = new Recorder(this.engine);
  readonly monitor = new QmpMonitor(this.engine, { negotiated: true });
  private stdout = '';
  /** Events not yet consumed by a wait or an advance. */
  private events: QmpEvent[] = [];
  /** Events of the step running now, for its expectations. */
  private stepEvents: QmpEvent[] = [];

  constructor(
    private readonly images: ImageSpec[],
    private readonly dir: string,
  ) {
    this.engine.console = (text, stream) => {
      if (stream === 'stdout') this.stdout += text;
    };
  }

  execute(execute: string, args?: Record<string, unknown>): { return?: unknown; error?: { class: string; desc: string } } {
    const reply = this.monitor.execute(args ? { execute, arguments: args } : { execute });
    this.collect();
    return reply as { return?: unknown; error?: { class: string; desc: string } };
  }

  private collect(): void {
    const events = this.monitor.takeEvents();
    this.events.push(...events);
    this.stepEvents.push(...events);
  }

  /** The step's action (one at most), then its expectations. */
  step(step: StepSpec, failures: string[]): unknown {
    this.stepEvents = [];
    const reply = this.act(step, failures);
    if (step.expect?.events) this.checkEvents(step.expect.events, failures);
    if (step.expect?.bitmap) {
      for (const expected of [step.expect.bitmap].flat()) this.checkBitmap(expected, failures);
    }
    if (step.expect?.job) {
      for (const expected of [step.expect.job].flat()) this.checkJob(expected, failures);
    }
    return reply;
  }

  private act(step: StepSpec, failures: string[]): unknown {
    if (step.qmp) return this.qmp(step, failures);
    for (const kind of ['write', 'zero', 'discard', 'read'] as const) {
      if (step[kind]) return this.io(kind, step[kind]!, failures);
    }
    if (step.wait) this.wait(step.wait, failures);
    if (step.advance) this.advance(step.advance, failures);
    if (step.open !== undefined) return this.open(step.open, failures);
    if (step.crash) this.crash(failures);
    return undefined;
  }

  /** blockdev-add of a declared image, as at the start. */
  open(name: string, failures: string[]): unknown {
    const image = this.images.find((candidate) => candidate.name === name)!;
    const reply = this.execute('blockdev-add', blockdevAddFor(image, this.dir));
    if (reply.error) failures.push(`opening ${name}: ${reply.error.desc}`);
    return reply;
  }

  private crash(failures: string[]): void {
    try {
      crashEngine(this.engine, this.dir);
    } catch (error) {
      failures.push(error instanceof Error ? error.message : String(error));
    }
    // A new QEMU has no events to tell.
    this.events = [];
    this.monitor.takeEvents();
  }

  private qmp(step: StepSpec, failures: string[]): unknown {
    const reply = this.execute(step.qmp!.execute, step.qmp!.arguments);
    if (step.error !== undefined && reply.error?.desc !== step.error) {
      failures.push(`expected the error "${step.error}", got ${JSON.stringify(reply)}`);
    } else if (step.error === undefined && reply.error) {
      failures.push(`${step.qmp!.execute} failed: ${reply.error.desc}`);
    }
    return reply;
  }

  private io(kind: keyof typeof QEMU_IO_LINE, range: RangeSpec, failures: string[]): unknown {
    this.stdout = '';
    const line = `qemu-io ${range.node} "${QEMU_IO_LINE[kind](range)}"`;
    const reply = this.execute('human-monitor-command', { 'command-line': line });
    const failed = /^(?:write|read|discard) failed: (.*)$/m.exec(this.stdout)?.[1];
    if (reply.return !== '') failures.push(`${line}: ${String(reply.return ?? reply.error?.desc).trim()}`);
    else if (range.fails !== undefined && failed !== range.fails) failures.push(`expected ${kind} to fail with "${range.fails}", got ${failed ? `"${failed}"` : 'success'}`);
    else if (range.fails === undefined && failed) failures.push(`${kind} failed: ${failed}`);
    else if (/Pattern verification failed/.test(this.stdout)) failures.push(`read: the data is not ${range.pattern}`);
    return reply;
  }

  private wait(wait: NonNullable<StepSpec['wait']>, failures: string[]): void {
    const index = findEvent(this.events, wait.event, wait.data);
    if (index < 0) failures.push(`no ${wait.event} event came`);
    else this.events.splice(0, index + 1);
  }

  private advance(spec: NonNullable<StepSpec['advance']>, failures: string[]): void {
    const failure = advance(spec, {
      engine: this.engine,
      frames: this.recorder.frames,
      events: () => {
        this.collect();
        return this.events;
      },
      consume: (index) => this.events.splice(0, index + 1),
    });
    this.collect();
    if (failure) failures.push(failure);
  }

  /** The step's events include these, in this order (others may come between). */
  private checkEvents(expected: EventExpectation[], failures: string[]): void {
    let from = 0;
    for (const want of expected) {
      const index = findEvent(this.stepEvents.slice(from), want.event, want.data);
      if (index < 0) {
        const got = this.stepEvents.slice(from).map((e) => e.event).join(', ') || 'none';
        failures.push(`expected the event ${want.event}${want.data ? ` ${JSON.stringify(want.data)}` : ''}${from ? ' after the ones before it' : ''}; this step's events: ${got}`);
        return;
      }
      from += index + 1;
    }
  }

  private checkBitmap(expected: BitmapExpectation, failures: string[]): void {
    const bitmap = this.engine.graph.find(expected.node)?.findBitmap(expected.name);
    const what = `bitmap ${expected.node}/${expected.name}`;
    if (expected.absent) {
      if (bitmap) failures.push(`${what} exists`);
      return;
    }
    if (!bitmap) {
      failures.push(`${what} does not exist`);
      return;
    }
    const actual: Record<string, unknown> = { ...bitmap.info(), inconsistent: bitmap.inconsistent };
    for (const key of ['recording', 'busy', 'persistent', 'inconsistent'] as const) {
      if (expected[key] !== undefined && actual[key] !== expected[key]) failures.push(`${what}: ${key} is ${actual[key]}, expected ${expected[key]}`);
    }
    checkBits(what, bitmap, expected, failures);
    if (expected.successor) {
      if (!bitmap.successor) failures.push(`${what} has no successor`);
      else checkBits(`${what}: its successor`, bitmap.successor, expected.successor, failures);
    }
  }

  private checkJob(expected: JobExpectation, failures: string[]): void {
    const job = this.engine.findJob(expected.id);
    if (expected.absent) {
      if (job) failures.push(`job ${expected.id} exists`);
      return;
    }
    if (!job) {
      failures.push(`job ${expected.id} does not exist`);
      return;
    }
    const info = job.info() as { status: string; error?: string; 'current-progress': number; 'total-progress': number };
    if (expected.status !== undefined && info.status !== expected.status) failures.push(`job ${expected.id}: status is ${info.status}, expected ${expected.status}`);
    if (expected.error !== undefined && info.error !== expected.error) failures.push(`job ${expected.id}: error is ${info.error}, expected ${expected.error}`);
    if (expected.current !== undefined && info['current-progress'] !== bytes(expected.current)) failures.push(`job ${expected.id}: progress is ${info['current-progress']}, expected ${bytes(expected.current)}`);
    if (expected.total !== undefined && info['total-progress'] !== bytes(expected.total)) failures.push(`job ${expected.id}: total is ${info['total-progress']}, expected ${bytes(expected.total)}`);
    if (expected.copy) {
      const filter = job instanceof BackupJob && this.engine.graph.find(job.cbw.nodeName) === job.cbw ? job.cbw : undefined;
      if (!filter) failures.push(`job ${expected.id} has no copy bitmap (no backup filter in place)`);
      else checkBits(`job ${expected.id}: the copy bitmap`, filter.bcs.copyBitmap, expected.copy, failures);
    }
  }
}

function checkBits(what: string, bitmap: DirtyBitmap, expected: BitsExpectation, failures: string[]): void {
  if (expected.count !== undefined && bitmap.count !== bytes(expected.count)) {
    failures.push(`${what}: count is ${bitmap.count}, expected ${bytes(expected.count)}`);
  }
  if (expected.granules) {
    const granules = [...bitmap.bits.extents()];
    if (JSON.stringify(granules) !== JSON.stringify(expected.granules)) {
      failures.push(`${what}: granules are ${JSON.stringify(granules)}, expected ${JSON.stringify(expected.granules)}`);
    }
  }
}

/** Runs `scenario` with its images in `dir` (created there). */
/** Runs `scenario` with its images in `dir`; `progress` hears each step as it starts (for long runs). */
export function runScenario(scenario: Scenario, dir: string, progress?: (step: number, of: number, label: string) => void): ScenarioRun {
  createImages(scenario.images, dir);
  const run = new Run(scenario.images, dir);
  const steps: StepResult[] = [];
  const setupFailures: string[] = [];
  for (const image of scenario.images) {
    const failures: string[] = [];
    run.open(image.name, failures);
    setupFailures.push(...failures.map((failure) => `images: ${failure}`));
  }
  const opened = run.recorder.frames.length - 1;
  if (setupFailures.length) return { frames: run.recorder.frames, opened, steps, failures: setupFailures };
  scenario.steps.forEach((step, index) => {
    progress?.(index, scenario.steps.length, describeStep(step));
    run.recorder.step = index;
    if (step.narration !== undefined) run.recorder.narration = step.narration;
    const failures: string[] = [];
    const reply = run.step(step, failures);
    run.recorder.cut({ kind: 'command', label: describeStep(step) }, true);
    steps.push({ index, label: describeStep(step), failures, ...(reply !== undefined && { reply }), frame: run.recorder.frames.length - 1 });
  });
  run.execute('quit');
  return {
    frames: run.recorder.frames,
    opened,
    steps,
    failures: steps.flatMap((step) => step.failures.map((failure) => `steps[${step.index}]: ${failure}`)),
  };
}
