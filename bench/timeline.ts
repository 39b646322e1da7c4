/**
 * bench/timeline: a backup recorded on a 1 TiB disk at 64 KiB granularity,
 * about 10,000 frames; jumps to random frames, timed, against replaying the
 * deltas from the first frame (no snapshots) for the same targets; memory.
 */
import { Engine } from '../src/engine/engine';
import { QmpMonitor } from '../src/engine/qmp/monitor';
import { Recorder } from '../src/engine/timeline/recorder';
import { Timeline } from '../src/engine/timeline/timeline';

const TiB = 2 ** 40;
const MiB = 2 ** 20;

function record(): Recorder {
  const engine = new Engine();
  const recorder = new Recorder(engine);
  const monitor = new QmpMonitor(engine, { negotiated: true });
  const run = (execute: string, args: Record<string, unknown>) => monitor.execute({ execute, arguments: args });
  run('blockdev-add', { driver: 'null-co', 'node-name': 'src', size: TiB });
  run('blockdev-add', { driver: 'null-co', 'node-name': 'tgt', size: TiB });
  run('block-dirty-bitmap-add', { node: 'src', name: 'b0', granularity: 65536 });
  // Scattered 1 MiB writes: each becomes a copy task, and so a few frames.
  let seed = 1;
  for (let i = 0; i < 4000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const offset = (seed % (TiB / MiB)) * MiB;
    run('human-monitor-command', { 'command-line': `qemu-io src "write ${offset} 1M"` });
  }
  run('blockdev-backup', { 'job-id': 'j0', device: 'src', target: 'tgt', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'x-perf': { 'max-workers': 1 } });
  return recorder;
}

function time(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

let recorder: Recorder | undefined;
const recording = time(() => (recorder = record()));
const frames = recorder!.frames;
let timeline: Timeline | undefined;
const building = time(() => (timeline = new Timeline(frames)));
const memory = timeline!.footprint();

let seed = 42;
const targets = Array.from({ length: 500 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % frames.length);
// The first jumps also compile the code; time the rest.
for (const target of targets.slice(0, 20)) timeline!.seek(target);
const jumps = targets.slice(20).map((target) => time(() => timeline!.seek(target)));
const replays = targets.slice(0, 50).map((target) => time(() => new Timeline(frames.slice(0, target + 1), Infinity)));
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const max = (values: number[]) => Math.max(...values);
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * p)];

console.log(`1 TiB disk, 64 KiB granularity (16,777,216 granules); ${frames.length} frames recorded in ${(recording / 1000).toFixed(2)} s`);
console.log(`timeline built in ${building.toFixed(0)} ms; its snapshots and cursor take ${(memory / 2 ** 20).toFixed(1)} MiB (frames themselves: ${(JSON.stringify(frames).length / 2 ** 20).toFixed(1)} MiB as JSON)`);
console.log(
  `jump to a random frame (${jumps.length} jumps after 20 to warm up): mean ${mean(jumps).toFixed(2)} ms, ` +
    `99th percentile ${percentile(jumps, 0.99).toFixed(2)} ms, max ${max(jumps).toFixed(2)} ms (goal < 16 ms)`,
);
console.log(`replaying from the first frame instead: mean ${mean(replays).toFixed(1)} ms; jumps take ${(mean(jumps) / mean(replays)).toFixed(4)}x of that`);
