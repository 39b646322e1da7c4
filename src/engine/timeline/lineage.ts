/**
 * Which guest write produced the data at each byte of a node: sorted,
 * disjoint [start, end, write] segments (0 = never written by the guest).
 */
export type Segment = [start: number, end: number, write: number];

export class Lineage {
  private segments: Segment[] = [];

  /** The segments covering [start, end), gaps filled with write 0. */
  read(start: number, end: number): Segment[] {
    const out: Segment[] = [];
    let at = start;
    for (const [s, e, write] of this.segments) {
      if (e <= at) continue;
      if (s >= end) break;
      if (s > at) out.push([at, s, 0]);
      out.push([Math.max(s, at), Math.min(e, end), write]);
      at = Math.min(e, end);
    }
    if (at < end) out.push([at, end, 0]);
    return out;
  }

  /** [start, end) now holds data of `write`. */
  set(start: number, end: number, write: number): void {
    const kept: Segment[] = [];
    for (const [s, e, w] of this.segments) {
      if (e <= start || s >= end) kept.push([s, e, w]);
      else {
        if (s < start) kept.push([s, start, w]);
        if (e > end) kept.push([end, e, w]);
      }
    }
    kept.push([start, end, write]);
    this.segments = kept.sort((a, b) => a[0] - b[0]);
  }
}
