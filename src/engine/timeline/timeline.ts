/**
 * Any frame of a recording, reached quickly in either direction: a cursor
 * state that applies or reverts frame deltas, and snapshots every few frames
 * so a far jump replays a bounded number of deltas.
 */
import { HBitmap } from '../hbitmap';
import type { BitmapMeta, Frame, JobState, Range } from './frame';

export interface BitmapState {
  meta: BitmapMeta;
  bits: HBitmap;
}

/** The state after a frame: every live bitmap and every job. */
export interface FrameState {
  frame: Frame;
  bitmaps: Map<number, BitmapState>;
  jobs: JobState[];
}

interface Snapshot {
  bitmaps: Array<{ meta: BitmapMeta; runs: Range[] }>;
}

const SNAPSHOT_EVERY = 64;

function bitsOf(meta: BitmapMeta): HBitmap {
  return new HBitmap(Math.ceil(meta.size / meta.granularity));
}

function apply(bits: HBitmap, set: Range[], cleared: Range[]): void {
  for (const [start, end] of cleared) bits.reset(start, end - start);
  for (const [start, end] of set) bits.set(start, end - start);
}

export class Timeline {
  private readonly snapshots = new Map<number, Snapshot>();
  private cursor = -1;
  private readonly live = new Map<number, BitmapState>();

  constructor(readonly frames: readonly Frame[]) {
    if (!frames.length) throw new Error('a timeline needs at least one frame');
    for (let i = 0; i < frames.length; i++) {
      this.forward();
      if (i % SNAPSHOT_EVERY === 0) this.snapshots.set(i, this.snapshot());
    }
  }

  get length(): number {
    return this.frames.length;
  }

  get position(): number {
    return this.cursor;
  }

  /** The state after frame `index`. Do not keep the bit sets: the next seek changes them. */
  seek(index: number): FrameState {
    if (!Number.isInteger(index) || index < 0 || index >= this.frames.length) {
      throw new RangeError(`frame ${index} is not in this timeline of ${this.frames.length} frames`);
    }
    const distance = Math.abs(index - this.cursor);
    const base = Math.floor(index / SNAPSHOT_EVERY) * SNAPSHOT_EVERY;
    if (distance > index - base) this.restore(base);
    while (this.cursor < index) this.forward();
    while (this.cursor > index) this.backward();
    return { frame: this.frames[index], bitmaps: this.live, jobs: this.frames[index].jobs };
  }

  private forward(): void {
    const frame = this.frames[++this.cursor];
    for (const change of frame.bitmaps) {
      if (!change.meta) {
        this.live.delete(change.id);
        continue;
      }
      let state = this.live.get(change.id);
      if (!state) this.live.set(change.id, (state = { meta: change.meta, bits: bitsOf(change.meta) }));
      state.meta = change.meta;
      apply(state.bits, change.set, change.cleared);
    }
  }

  private backward(): void {
    const frame = this.frames[this.cursor--];
    for (const change of [...frame.bitmaps].reverse()) {
      if (!change.before) {
        this.live.delete(change.id);
        continue;
      }
      let state = this.live.get(change.id);
      if (!state) this.live.set(change.id, (state = { meta: change.before, bits: bitsOf(change.before) }));
      state.meta = change.before;
      apply(state.bits, change.cleared, change.set);
    }
  }

  private snapshot(): Snapshot {
    return { bitmaps: [...this.live.values()].map(({ meta, bits }) => ({ meta, runs: [...bits.extents()] })) };
  }

  private restore(index: number): void {
    const snapshot = this.snapshots.get(index)!;
    this.live.clear();
    for (const { meta, runs } of snapshot.bitmaps) {
      const bits = bitsOf(meta);
      apply(bits, runs, []);
      this.live.set(meta.id, { meta, bits });
    }
    this.cursor = index;
  }
}
