/**
 * bench/bitmap: the hierarchical bit set on a 1 TiB disk at 64 KiB and 4 KiB
 * granularity, each figure as a ratio against a baseline timed in the same run.
 */
import { createHash } from 'node:crypto';
import { HBitmap, popcount32 } from '../src/engine/hbitmap';
import { random } from '../test/support/random';

const TiB = 2 ** 40;
const RANGES = 1_000_000;

/** Best of `runs` wall-clock times, in milliseconds. */
function time(runs: number, work: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    work();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return best;
}

/** Fills about `fraction` of the bits in runs of a few bits. */
function fill(bits: number, fraction: number, seed: number): HBitmap {
  const bitmap = new HBitmap(bits);
  const next = random(seed);
  const meanRun = 8;
  const gap = meanRun * (1 / fraction - 1);
  for (let pos = Math.floor(next() * gap * 2); pos < bits; ) {
    const run = 1 + Math.floor(next() * (2 * meanRun - 1));
    bitmap.set(pos, run);
    pos += run + 1 + Math.floor(next() * gap * 2);
  }
  return bitmap;
}

/** The baseline for iteration: test every bit, one at a time. */
function naiveExtents(bitmap: HBitmap): number {
  const words = new Uint32Array(bitmap.bytes().buffer);
  let extents = 0;
  let inside = false;
  for (let i = 0; i < bitmap.size; i++) {
    const dirty = ((words[i >>> 5] >>> (i & 31)) & 1) === 1;
    if (dirty && !inside) extents++;
    inside = dirty;
  }
  return extents;
}

function countExtents(bitmap: HBitmap): number {
  let extents = 0;
  for (const _ of bitmap.extents()) extents++;
  return extents;
}

/** An empty bit set whose pages are already mapped, as a long-lived bitmap's are. */
function touchedEmpty(bits: number): HBitmap {
  const bitmap = new HBitmap(bits);
  bitmap.set(0, bits);
  bitmap.resetAll();
  return bitmap;
}

/** Best time of merging `source` into fresh destinations made outside the timing. */
function timeMerge(source: HBitmap, destination: () => HBitmap): number {
  const runs = 3;
  const targets = Array.from({ length: runs }, destination);
  return time(runs, () => targets.pop()!.merge(source));
}

const rows: string[][] = [];
const row = (name: string, ours: number, baselineName: string, baseline: number, note = '') =>
  rows.push([name, `${ours.toFixed(2)} ms`, baselineName, `${baseline.toFixed(2)} ms`, `${(ours / baseline).toFixed(3)}x`, note]);

function benchGranularity(granularity: number): void {
  const bits = TiB / granularity;
  const label = `${granularity / 1024} KiB`;
  const next = random(1);
  const ranges = Array.from({ length: RANGES }, () => [Math.floor(next() * bits), 1 + Math.floor(next() * 64)]);

  const bitmap = new HBitmap(bits);
  const oursSet = time(1, () => ranges.forEach(([start, count]) => bitmap.set(start, count)));
  const flat = new Uint32Array(Math.ceil(bits / 32));
  const naiveSet = time(1, () =>
    ranges.forEach(([start, count]) => {
      for (let i = start; i < Math.min(start + count, bits); i++) flat[i >>> 5] |= 1 << (i & 31);
    }),
  );
  row(`${label}: set ${RANGES} random ranges`, oursSet, 'bit-by-bit set', naiveSet);

  const oursCount = time(5, () => bitmap.count);
  const naiveCount = time(1, () => flat.reduce((sum, word) => sum + popcount32(word), 0));
  row(`${label}: count`, oursCount, 'popcount of every word', naiveCount, `${bitmap.count} bits`);

  for (const fraction of [0.001, 0.5]) {
    const sample = fill(bits, fraction, 7);
    const note = `${(100 * sample.count / bits).toFixed(2)} % dirty, ${countExtents(sample)} extents`;
    row(`${label}: iterate extents at ${fraction * 100} %`, time(3, () => countExtents(sample)), 'bit-by-bit scan', time(1, () => naiveExtents(sample)), note);
    const bytes = sample.bytes();
    const copy = Buffer.alloc(bytes.length);
    const copyTime = time(5, () => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).copy(copy));
    row(`${label}: merge into empty at ${fraction * 100} %`, timeMerge(sample, () => touchedEmpty(bits)), 'Buffer.copy, same bytes', copyTime, `${bytes.length} bytes`);
    row(`${label}: merge into 50 % at ${fraction * 100} %`, timeMerge(sample, () => fill(bits, 0.5, 11)), 'Buffer.copy, same bytes', copyTime);
  }
  const bytes = bitmap.bytes();
  const plain = Buffer.from(bytes);
  row(`${label}: sha256`, time(3, () => createHash('sha256').update(bitmap.bytes()).digest()), 'sha256 of a Buffer', time(3, () => createHash('sha256').update(plain).digest()));
}

benchGranularity(65536);
benchGranularity(4096);

const header = ['operation', 'ours', 'baseline', 'baseline time', 'ours / baseline', ''];
const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
for (const r of [header, ...rows]) console.log(r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
