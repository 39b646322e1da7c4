/**
 * Runs inside a VS Code extension host (bench/vscode-step.ts starts one):
 * the time from the step command to the Bitmap Lab panel reporting that it
 * has drawn the frame, against a command that does nothing, timed in the
 * same host in the same run; and how much of it the command itself takes
 * (seek, tree and status bar) before the panel gets its message.
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import type { BitmapLabApi } from '../../src/extension/extension';

const SAMPLES = 200;
const EXTENSION = vscode.extensions.getExtension<BitmapLabApi>('bitmap-lab.bitmap-lab')!;

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const summary = (times: number[]) => {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95) };
};
const ms = (value: number) => `${value.toFixed(value < 1 ? 3 : 1)} ms`;

export async function run(): Promise<void> {
  const api = await EXTENSION.activate();
  /** When the panel reported each frame drawn since the last command. */
  const drawnAt = new Map<number, number>();
  let firstDraw = false;
  let arrived: (() => void) | undefined;
  const listening = api.onDidShowFrame(({ run, index }) => {
    firstDraw = true;
    if (run !== 0) return;
    drawnAt.set(index, performance.now());
    arrived?.();
  });
  const noop = vscode.commands.registerCommand('bitmapLab.bench.noop', () => undefined);
  try {
    const file = vscode.Uri.file(path.join(EXTENSION.extensionPath, 'examples', 'always-failure.bitmaplab.json'));
    const { frames } = (await vscode.commands.executeCommand('bitmapLab.openScenario', file)) as { frames: number };
    for (let waited = 0; !firstDraw; waited += 50) {
      if (waited > 30_000) throw new Error('the panel never reported a frame');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const baseline: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const start = performance.now();
      await vscode.commands.executeCommand('bitmapLab.bench.noop');
      baseline.push(performance.now() - start);
    }

    const steps: number[] = [];
    const commands: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      // Forward through the recording, back to the start at its end (not timed).
      if (i > 0 && i % (frames - 1) === 0) await stepAndWait('bitmapLab.firstFrame');
      const { command, drawn } = await stepAndWait('bitmapLab.stepForward');
      commands.push(command);
      steps.push(drawn);
    }

    const [noopTime, commandTime, stepTime] = [summary(baseline), summary(commands), summary(steps)];
    console.log(`bench/vscode-step: ${SAMPLES} steps through always-failure (${frames} frames) in ${vscode.env.appName} ${vscode.version}`);
    console.log(`  no-op command round trip (baseline)       median ${ms(noopTime.median)}, p95 ${ms(noopTime.p95)}`);
    console.log(`  step command alone (host side)            median ${ms(commandTime.median)}, p95 ${ms(commandTime.p95)}`);
    console.log(`  step command → panel reports frame drawn  median ${ms(stepTime.median)}, p95 ${ms(stepTime.p95)}`);
    console.log(`  ratio to baseline                         ${(stepTime.median / noopTime.median).toFixed(0)}× median, ${(stepTime.p95 / noopTime.p95).toFixed(0)}× p95`);
  } finally {
    listening.dispose();
    noop.dispose();
  }

  /** Runs a frame command: milliseconds until it returned, and until the panel reported that frame drawn. */
  async function stepAndWait(name: string): Promise<{ command: number; drawn: number }> {
    drawnAt.clear();
    const start = performance.now();
    const target = (await vscode.commands.executeCommand(name)) as number;
    const command = performance.now() - start;
    for (const deadline = start + 10_000; !drawnAt.has(target); ) {
      if (performance.now() > deadline) throw new Error(`no report of frame ${target} after ${name}`);
      await new Promise<void>((resolve) => {
        arrived = resolve;
        setTimeout(resolve, 100);
      });
    }
    return { command, drawn: drawnAt.get(target)! - start };
  }
}
