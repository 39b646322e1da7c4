/** `bitmap-lab export FILE --html OUT`: one self-contained page to step through a scenario's timeline. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScenarioSyntaxError, parseScenario } from '../engine/scenario/parse';
import { runScenario } from '../engine/scenario/runner';
import { renderTimelineHtml } from './html-export';
import { terminalProgress } from './run';

export function exportCommand(file: string, options: { html: string }): void {
  let scenario;
  try {
    scenario = parseScenario(fs.readFileSync(file, 'utf8'), file);
  } catch (error) {
    if (!(error instanceof ScenarioSyntaxError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-export-'));
  try {
    const progress = terminalProgress(path.basename(file));
    const run = runScenario(scenario, dir, progress.step);
    progress.done();
    const page = renderTimelineHtml([{ title: scenario.title, ...(scenario.description !== undefined && { description: scenario.description }), frames: run.frames }], { title: scenario.title });
    fs.writeFileSync(options.html, page);
    process.stdout.write(`${run.frames.length} frames written to ${path.resolve(options.html)}\n`);
    for (const failure of run.failures) process.stderr.write(`${file}: ${failure}\n`);
    if (run.failures.length) process.exitCode = 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
