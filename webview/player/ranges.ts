/**
 * Lane contents as sorted, disjoint runs of granules carrying a value: 1 for
 * a dirty bitmap granule, the number of the guest write whose data a cluster
 * holds for the source and the target. Runs rather than arrays, so a lane of a
 * terabyte disk costs what its extents cost.
 */

/** Granules [start, end) hold `value`. */
export type ValueRun = [start: number, end: number, value: number];

export const countOf = (runs: readonly ValueRun[]) => runs.reduce((sum, [start, end]) => sum + end - start, 0);

/** Dirty extents as runs of value 1. */
export const bitRuns = (extents: Iterable<readonly [number, number]>): ValueRun[] => Array.from(extents, ([start, end]) => [start, end, 1]);

/**
 * Walks the boundaries of both lists at once and keeps the stretches where
 * `keep(a, b)` holds, valued by `value(a, b)`; undefined means "no run there".
 * Adjacent kept stretches of equal value merge.
 */
export function combine(
  a: readonly ValueRun[],
  b: readonly ValueRun[],
  keep: (a: number | undefined, b: number | undefined) => boolean,
  value: (a: number | undefined, b: number | undefined) => number = (x, y) => x ?? y ?? 1,
): ValueRun[] {
  const out: ValueRun[] = [];
  let i = 0;
  let j = 0;
  let at = Math.min(a[0]?.[0] ?? Infinity, b[0]?.[0] ?? Infinity);
  while (at < Infinity) {
    while (i < a.length && a[i][1] <= at) i++;
    while (j < b.length && b[j][1] <= at) j++;
    const inA = i < a.length && a[i][0] <= at ? a[i][2] : undefined;
    const inB = j < b.length && b[j][0] <= at ? b[j][2] : undefined;
    const next = Math.min(
      i < a.length ? (a[i][0] > at ? a[i][0] : a[i][1]) : Infinity,
      j < b.length ? (b[j][0] > at ? b[j][0] : b[j][1]) : Infinity,
    );
    if (next === Infinity) break;
    if ((inA !== undefined || inB !== undefined) && keep(inA, inB)) {
      const v = value(inA, inB);
      const last = out[out.length - 1];
      if (last && last[1] === at && last[2] === v) last[1] = next;
      else out.push([at, next, v]);
    }
    at = next;
  }
  return out;
}

export const union = (a: readonly ValueRun[], b: readonly ValueRun[]) => combine(a, b, () => true, () => 1);

/** Where the two differ, in presence or in value: what a frame changed. */
export const differences = (before: readonly ValueRun[], after: readonly ValueRun[]) =>
  combine(before, after, (x, y) => x !== y, (_x, y) => (y === undefined ? 0 : 1));

/** Paints `value` over [start, end), replacing what was there. */
export function paint(runs: readonly ValueRun[], start: number, end: number, value: number): ValueRun[] {
  if (start >= end) return [...runs];
  return combine(runs, [[start, end, value]], () => true, (x, y) => y ?? x!);
}

/** Removes [start, end) from the runs. */
export function erase(runs: readonly ValueRun[], start: number, end: number): ValueRun[] {
  if (start >= end) return [...runs];
  return combine(runs, [[start, end, 0]], (x, y) => x !== undefined && y === undefined);
}

/** The index of the first run that ends after `granule`; binary search. */
function firstEndingAfter(runs: readonly ValueRun[], granule: number): number {
  let lo = 0;
  let hi = runs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (runs[mid][1] <= granule) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The runs clipped to [first, end), found by binary search: hover details on a huge lane stay cheap. */
export function clip(runs: readonly ValueRun[], first: number, end: number): ValueRun[] {
  const out: ValueRun[] = [];
  for (let i = firstEndingAfter(runs, first); i < runs.length && runs[i][0] < end; i++) {
    const [start, stop, value] = runs[i];
    out.push([Math.max(start, first), Math.min(stop, end), value]);
  }
  return out;
}

/** The value at `granule`, or undefined. */
export const valueAt = (runs: readonly ValueRun[], granule: number): number | undefined => clip(runs, granule, granule + 1)[0]?.[2];

/** One entry per granule (for cell lanes): the value plus one, 0 where there is no run. */
export function toCells(runs: readonly ValueRun[], granules: number): Int32Array {
  const cells = new Int32Array(granules);
  for (const [start, end, value] of runs) cells.fill(value + 1, Math.max(0, start), Math.min(end, granules));
  return cells;
}

/**
 * Converts runs between granularities, rounding outwards as a byte range
 * covers whole granules. Where two runs now share a granule, the first keeps it.
 */
export function regranulate(runs: readonly ValueRun[], from: number, to: number): ValueRun[] {
  if (from === to) return [...runs];
  const out: ValueRun[] = [];
  for (const [start, end, value] of runs) {
    const last = out[out.length - 1];
    let first = Math.floor((start * from) / to);
    const stop = Math.ceil((end * from) / to);
    if (last && first <= last[1] && last[2] === value) {
      last[1] = Math.max(last[1], stop);
      continue;
    }
    if (last && first < last[1]) first = last[1];
    if (first < stop) out.push([first, stop, value]);
  }
  return out;
}
