/**
 * A set of disjoint, sorted byte ranges. The file driver keeps the ranges it
 * wrote with data: the filesystem allocated them, so SEEK_DATA would report
 * them as data even where the bytes are zero.
 */
export class Extents {
  private starts: number[] = [];
  private ends: number[] = [];

  add(start: number, end: number): void {
    this.remove(start, end);
    const i = this.indexAfter(start);
    this.starts.splice(i, 0, start);
    this.ends.splice(i, 0, end);
    this.joinAround(i);
  }

  remove(start: number, end: number): void {
    const kept: Array<[number, number]> = [];
    let first = this.indexAfter(start);
    if (first > 0 && this.ends[first - 1] > start) first--;
    let last = first;
    for (; last < this.starts.length && this.starts[last] < end; last++) {
      if (this.starts[last] < start) kept.push([this.starts[last], start]);
      if (this.ends[last] > end) kept.push([end, this.ends[last]]);
    }
    this.starts.splice(first, last - first, ...kept.map(([s]) => s));
    this.ends.splice(first, last - first, ...kept.map(([, e]) => e));
  }

  /** Whether `offset` is in the set, and where that answer changes (Infinity if never). */
  at(offset: number): { inside: boolean; until: number } {
    const i = this.indexAfter(offset);
    if (i > 0 && this.ends[i - 1] > offset) return { inside: true, until: this.ends[i - 1] };
    return { inside: false, until: i < this.starts.length ? this.starts[i] : Infinity };
  }

  /** Index of the first range starting after `offset`. */
  private indexAfter(offset: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Joins range `i` with touching neighbours, so a sequential writer keeps one range. */
  private joinAround(i: number): void {
    if (i + 1 < this.starts.length && this.starts[i + 1] === this.ends[i]) {
      this.ends[i] = this.ends[i + 1];
      this.starts.splice(i + 1, 1);
      this.ends.splice(i + 1, 1);
    }
    if (i > 0 && this.ends[i - 1] === this.starts[i]) {
      this.ends[i - 1] = this.ends[i];
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    }
  }
}
