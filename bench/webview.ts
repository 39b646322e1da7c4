/**
 * bench/webview: the timeline player's frame time in headless Chromium, on an
 * exported page, stepping once per animation frame:
 * - a 4,096-granule bitmap drawn as SVG cells, every granule flipping at
 *   every step (the worst case), and a 16-granule chunk changing at every
 *   step with its fill transitions (a block-copy step);
 * - a 16,777,216-granule bitmap (1 TiB at 64 KiB) drawn as a density canvas,
 *   a few hundred of its 50,000 extents changing at every step.
 * Each figure is a ratio against an empty requestAnimationFrame loop timed on
 * the same page in the same run; at 60 frames per second both are 16.7 ms.
 *
 * Run: npm run build && npx tsc -p . && node out/bench/webview.js
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderTimelineHtml } from '../src/cli/html-export';
import { HBitmap } from '../src/engine/hbitmap';
import type { BitmapMeta, Frame, Range } from '../src/engine/timeline/frame';
import { launch } from '../test/webview/harness';
import { random } from '../test/support/random';

const GRANULE = 65536;
const SAMPLES = 120;

/**
 * A recording of one named bitmap: frame 0 creates it, then each frame sets
 * and clears the ranges `change(i)` gives, as the recorder would write them.
 */
function recording(granules: number, frames: number, change: (index: number, bits: HBitmap) => { set: Range[]; cleared: Range[] }): Frame[] {
  const bits = new HBitmap(granules);
  const meta = (): BitmapMeta => ({
    id: 1, node: 'disk', name: 'b0', role: 'named', granularity: GRANULE, size: granules * GRANULE,
    disabled: false, recording: true, busy: false, persistent: false, inconsistent: false, count: bits.count * GRANULE,
  });
  const frame = (index: number, bitmaps: Frame['bitmaps']): Frame => ({
    index, time: index, cause: { kind: 'command', label: 'bench' }, step: index, bitmaps, writes: [], jobs: [], events: [],
  });
  const out = [frame(0, [{ id: 1, meta: meta(), set: [], cleared: [] }])];
  for (let i = 1; i < frames; i++) {
    const before = meta();
    const { set, cleared } = change(i, bits);
    for (const [start, end] of cleared) bits.reset(start, end - start);
    for (const [start, end] of set) bits.set(start, end - start);
    out.push(frame(i, [{ id: 1, meta: meta(), before, set, cleared }]));
  }
  return out;
}

/** Every granule flips at every frame: the worst case for cells. */
const flippingRecording = () => recording(4096, SAMPLES + 2, (i) => (i % 2 ? { set: [[0, 4096]], cleared: [] } : { set: [], cleared: [[0, 4096]] }));

/** A full bitmap that loses a 16-granule chunk per frame, as a copy bitmap does while a job copies: fills transition. */
const chunkRecording = () => recording(4096, SAMPLES + 2, (i) => (i === 1 ? { set: [[0, 4096]], cleared: [] } : { set: [], cleared: [[(i - 2) * 16, (i - 1) * 16]] }));

/** 50,000 extents, then 250 set and 250 cleared at every frame. */
function densityRecording(): Frame[] {
  const granules = 2 ** 24;
  const next = random(7);
  const pick = (bits: HBitmap, dirty: boolean): Range[] => {
    const ranges: Range[] = [];
    while (ranges.length < 250) {
      const start = Math.floor(next() * (granules - 64));
      const length = 1 + Math.floor(next() * 32);
      if (bits.get(start) === dirty && bits.get(start + length - 1) === dirty) ranges.push([start, start + length]);
    }
    return ranges.sort((a, b) => a[0] - b[0]).filter((range, j, all) => j === 0 || all[j - 1][1] < range[0]);
  };
  return recording(granules, SAMPLES + 2, (i, bits) => {
    if (i === 1) {
      const set: Range[] = [];
      for (let start = 0; set.length < 50_000; start += 2 + Math.floor(next() * 650)) set.push([start, start + 1 + Math.floor(next() * 16)]);
      return { set, cleared: [] };
    }
    return { set: pick(bits, false), cleared: pick(bits, true) };
  });
}

interface Timing {
  /** Mean and 95th percentile of the intervals between animation frames, ms. */
  mean: number;
  p95: number;
  /** Mean time the step's own handler took (seek, join, paint commands), ms. */
  step: number;
}

/** In the page: `samples` animation frames, each stepping the player when `step` is set. */
function measureInPage([samples, step]: [number, boolean]): Promise<Timing> {
  return new Promise((resolve) => {
    const intervals: number[] = [];
    const work: number[] = [];
    let last = 0;
    const tick = (now: number) => {
      if (last) intervals.push(now - last);
      last = now;
      if (intervals.length >= samples) {
        intervals.sort((a, b) => a - b);
        const mean = (list: number[]) => (list.length ? list.reduce((a, b) => a + b, 0) / list.length : 0);
        resolve({ mean: mean(intervals), p95: intervals[Math.floor(0.95 * (intervals.length - 1))], step: mean(work) });
        return;
      }
      if (step) {
        const start = performance.now();
        document.body.dispatchEvent(new KeyboardEvent('keydown', { key: '.', bubbles: true }));
        work.push(performance.now() - start);
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}

async function main(): Promise<void> {
  const browser = await launch();
  const dir = mkdtempSync(join(tmpdir(), 'bitmap-lab-bench-'));
  const cases: Array<[string, Frame[]]> = [
    ['4,096-granule SVG lane, every granule flipping', flippingRecording()],
    ['4,096-granule SVG lane, a 16-granule chunk changing (fills transition)', chunkRecording()],
    ['16,777,216-granule density canvas, 500 extents changing', densityRecording()],
  ];
  console.log('bench/webview: player frame time in headless Chromium, stepping once per animation frame\n');
  for (const [name, frames] of cases) {
    const file = join(dir, 'page.html');
    writeFileSync(file, renderTimelineHtml([{ title: name, frames }]));
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const loaded = Date.now();
    await page.goto(`${pathToFileURL(file).href}#frames=1`);
    await page.waitForSelector('.lane');
    const load = Date.now() - loaded;
    const problems: string[] = [];
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    page.on('pageerror', (error) => problems.push(error.message));
    const baseline = await page.evaluate(measureInPage, [SAMPLES, false] as [number, boolean]);
    const stepping = await page.evaluate(measureInPage, [SAMPLES, true] as [number, boolean]);
    // Every sample stepped once: the frame moved from 1 by as many steps as the loop took.
    const shown = Number(await page.getAttribute('.scrubber', 'aria-valuenow'));
    if (shown !== 1 + SAMPLES || problems.length) throw new Error(`the player did not step as asked: frame ${shown}; ${problems.join('; ')}`);
    const fps = 1000 / stepping.mean;
    console.log(name);
    console.log(`  page load and first draw      ${load} ms (${frames.length} frames)`);
    console.log(`  empty rAF loop (baseline)     mean ${baseline.mean.toFixed(1)} ms, p95 ${baseline.p95.toFixed(1)} ms`);
    console.log(`  stepping every frame          mean ${stepping.mean.toFixed(1)} ms, p95 ${stepping.p95.toFixed(1)} ms, ${fps.toFixed(0)} frames/s`);
    console.log(`  ratio to baseline             ${(stepping.mean / baseline.mean).toFixed(2)}× mean, ${(stepping.p95 / baseline.p95).toFixed(2)}× p95`);
    console.log(`  step handler alone            ${stepping.step.toFixed(2)} ms (seek, joins, canvas commands)\n`);
    await page.close();
  }
  await browser.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
