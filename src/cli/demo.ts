/**
 * `bitmap-lab demo`: the story behind QEMU's `always` bitmap mode, on real
 * temporary qcow2 files. A full backup; three quarters of the disk written;
 * an incremental backup that fails after copying two thirds of that; then the
 * retry, once under `on-success` and once under `always`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScenario } from '../engine/scenario/parse';
import { runScenario, type ScenarioRun } from '../engine/scenario/runner';
import { Timeline } from '../engine/timeline/timeline';
import { renderTimelineHtml } from './html-export';
import { human, terminalProgress } from './run';

const MODES = ['on-success', 'always'] as const;
const FORMULA = { 'on-success': 'S ∪ N', always: 'N ∪ C' };

/** The examples ship next to dist/. */
export function examplesDir(): string {
  return path.join(__dirname, '..', 'examples');
}

interface Outcome {
  mode: (typeof MODES)[number];
  run: ScenarioRun;
  title: string;
  description?: string;
  /** bitmap0 once the failed job is gone. */
  bitmapAfterFailure: number;
  /** What the retry had to copy. */
  retryCopies: number;
}

function outcome(mode: Outcome['mode'], dir: string): Outcome {
  const file = path.join(examplesDir(), `failed-incremental-${mode}.bitmaplab.json`);
  const scenario = parseScenario(fs.readFileSync(file, 'utf8'), file);
  const progress = terminalProgress(`demo, ${mode}`);
  const run = runScenario(scenario, path.join(dir, mode), progress.step);
  progress.done();
  if (run.failures.length) throw new Error(`${file}: ${run.failures.join('; ')}`);
  const timeline = new Timeline(run.frames);
  const failed = run.frames.findIndex((frame) => frame.events.some((e) => e.event === 'BLOCK_JOB_COMPLETED' && e.data.device === 'inc'));
  const bitmap = [...timeline.seek(failed).bitmaps.values()].find(({ meta }) => meta.name === 'bitmap0')!;
  const retry = run.frames.flatMap((frame) => frame.events).find((e) => e.event === 'BLOCK_JOB_COMPLETED' && e.data.device === 'retry')!;
  return { mode, run, title: scenario.title, description: scenario.description, bitmapAfterFailure: bitmap.meta.count, retryCopies: Number(retry.data.len) };
}

export function demoCommand(options: { out?: string }): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-demo-'));
  try {
    const outcomes = MODES.map((mode) => outcome(mode, dir));
    const out = process.stdout;
    out.write('Bitmap Lab demo: a failed incremental backup, and its retry\n\n');
    out.write('A 48 MiB qcow2 disk gets a full backup; then the guest writes 36 MiB (three quarters).\n');
    out.write('The incremental backup fails after copying 24 MiB (two thirds); 64 KiB were written meanwhile.\n\n');
    out.write(`  ${'bitmap-mode'.padEnd(12)}${'bitmap0 after the failure'.padEnd(30)}the retry copies\n`);
    for (const o of outcomes) {
      out.write(`  ${o.mode.padEnd(12)}${`${human(o.bitmapAfterFailure)}  (${FORMULA[o.mode]})`.padEnd(30)}${human(o.retryCopies)}\n`);
    }
    const [onSuccess, always] = outcomes;
    const saved = onSuccess.retryCopies - always.retryCopies;
    out.write(`\nWith always, the retry copies ${human(saved)} less (${Math.round((100 * saved) / onSuccess.retryCopies)} % less).\n`);
    const page = path.resolve(options.out ?? 'bitmap-lab-demo.html');
    const runs = outcomes.map((o) => ({ title: o.title, ...(o.description !== undefined && { description: o.description }), frames: o.run.frames }));
    fs.writeFileSync(page, renderTimelineHtml(runs, { title: 'A failed incremental backup: on-success vs always' }));
    out.write(`Both timelines, to step through in a browser: ${page}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
