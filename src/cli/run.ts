/** `bitmap-lab run FILE`: run a scenario, print what each step did, fail on a broken expectation. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScenarioSyntaxError, parseScenario } from '../engine/scenario/parse';
import { runScenario, type ScenarioRun } from '../engine/scenario/runner';
import type { Frame } from '../engine/timeline/frame';
import { Timeline } from '../engine/timeline/timeline';
import { formatSize } from '../format';

export interface RunOptions {
  json?: boolean;
  to?: string;
  keep?: string;
}

/** Bytes as people read them in a terminal: 64 KiB, 12.06 MiB. */
export const human = formatSize;

/** The named bitmaps and jobs after a frame, in a line. */
function summary(timeline: Timeline, index: number): string {
  const state = timeline.seek(index);
  const bitmaps = [...state.bitmaps.values()]
    .filter(({ meta }) => meta.name !== undefined)
    .map(({ meta }) => `${meta.node}/${meta.name}=${human(meta.count)}${meta.busy ? ' busy' : ''}`);
  const jobs = state.jobs.map((job) => `${job.id}:${job.status} ${human(job.current)}/${human(job.total)}${job.error ? ` (${job.error})` : ''}`);
  return [...bitmaps, ...jobs].join('  ');
}

function printTable(run: ScenarioRun, out: NodeJS.WritableStream): void {
  const timeline = new Timeline(run.frames);
  const rows = run.steps.map((step) => [
    String(step.index),
    step.label,
    String(step.frame),
    step.failures.length ? `FAIL ${step.failures.join('; ')}` : 'ok',
    summary(timeline, step.frame),
  ]);
  const header = ['step', 'does', 'frame', 'result', 'bitmaps and jobs after it'];
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((row) => (i < 4 ? row[i].length : 0))));
  for (const row of [header, ...rows]) out.write(`${row.map((cell, i) => (i < 4 ? cell.padEnd(widths[i]) : cell)).join('  ')}\n`);
}

function frameState(run: ScenarioRun, to: string): unknown {
  const timeline = new Timeline(run.frames);
  const index = Number(to);
  if (!Number.isInteger(index) || index < 0 || index >= timeline.length) {
    throw new Error(`--to ${to}: the timeline has frames 0 to ${timeline.length - 1}`);
  }
  const state = timeline.seek(index);
  const frame: Frame = state.frame;
  return {
    frame: frame.index,
    cause: frame.cause,
    step: frame.step,
    narration: frame.narration,
    bitmaps: [...state.bitmaps.values()].map(({ meta, bits }) => ({ ...meta, granules: [...bits.extents()] })),
    jobs: state.jobs,
  };
}

/**
 * A progress line on a terminal's stderr while a scenario runs; nothing when
 * stderr is a pipe or a file, so scripts read only results.
 */
export function terminalProgress(what: string): { step: (step: number, of: number, label: string) => void; done: () => void } {
  if (!process.stderr.isTTY) return { step: () => {}, done: () => {} };
  return {
    step: (step, of, label) => process.stderr.write(`\r\x1b[K${what}: step ${step + 1} of ${of}, ${label}`),
    done: () => process.stderr.write('\r\x1b[K'),
  };
}

export function runCommand(file: string, options: RunOptions): void {
  let scenario;
  try {
    scenario = parseScenario(fs.readFileSync(file, 'utf8'), file);
  } catch (error) {
    if (error instanceof ScenarioSyntaxError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const dir = options.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-run-'));
  try {
    const progress = terminalProgress(path.basename(file));
    const run = runScenario(scenario, dir, progress.step);
    progress.done();
    if (options.to !== undefined) process.stdout.write(`${JSON.stringify(frameState(run, options.to), null, 2)}\n`);
    else if (options.json) process.stdout.write(`${JSON.stringify({ title: scenario.title, steps: run.steps, failures: run.failures, frames: run.frames.length }, null, 2)}\n`);
    else {
      process.stdout.write(`${scenario.title}\n\n`);
      printTable(run, process.stdout);
      process.stdout.write(`\n${run.frames.length} frames, ${run.failures.length ? `${run.failures.length} failed expectations` : 'every expectation held'}\n`);
    }
    for (const failure of run.failures) process.stderr.write(`${file}: ${failure}\n`);
    if (run.failures.length) process.exitCode = 1;
  } finally {
    if (options.keep === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}
