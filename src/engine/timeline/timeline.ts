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

/** Bitmaps as flat [start, end, start, end, ...] runs: compact, and quick to replay. */
interface Snapshot {
  bitmaps: Array<{ meta: BitmapMeta; runs: Float64Array }>;
}


function apply(bits: HBitmap, set: Range[], cleared: Range[]): void {
  for (const [start, end] of cleared) bits.reset(start, end - start);
  for (const [start, end] of set) bits.set(start, end - start);
}

export class Timeline {
  private readonly snapshots = new Map<number, Snapshot>();
  private cursor = -1;
  private readonly live = new Map<number, BitmapState>();
  /** Bit sets of bitmaps not live at the cursor, kept to avoid reallocating big ones. */
  private readonly spare = new Map<number, HBitmap>();

  /** `snapshotEvery` frames a snapshot bounds how many deltas a jump replays. */
  constructor(
    readonly frames: readonly Frame[],
    private readonly snapshotEvery = 64,
  ) {
    if (!frames.length) throw new Error('a timeline needs at least one frame');
    for (let i = 0; i < frames.length; i++) {
      this.forward();
      if (i % snapshotEvery === 0) this.snapshots.set(i, this.snapshot());
    }
  }

  get length(): number {
    return this.frames.length;
  }

  /** The state after frame `index`. Do not keep the bit sets: the next seek changes them. */
  seek(index: number): FrameState {
    if (!Number.isInteger(index) || index < 0 || index >= this.frames.length) {
      throw new RangeError(`frame ${index} is not in this timeline of ${this.frames.length} frames`);
    }
    const distance = Math.abs(index - this.cursor);
    const base = Math.floor(index / this.snapshotEvery) * this.snapshotEvery;
    if (this.snapshots.has(base) && distance > index - base) this.restore(base);
    while (this.cursor < index) this.forward();
    while (this.cursor > index) this.backward();
    return { frame: this.frames[index], bitmaps: this.live, jobs: this.frames[index].jobs };
  }

  /** An empty bit set for `meta`, from the spares when one fits. */
  private bitsOf(meta: BitmapMeta): HBitmap {
    const size = Math.ceil(meta.size / meta.granularity);
    const spare = this.spare.get(meta.id);
    this.spare.delete(meta.id);
    if (spare?.size !== size) return new HBitmap(size);
    spare.resetAll();
    return spare;
  }

  private drop(id: number): void {
    const state = this.live.get(id);
    if (state) this.spare.set(id, state.bits);
    this.live.delete(id);
  }

  private forward(): void {
    const frame = this.frames[++this.cursor];
    for (const change of frame.bitmaps) {
      if (!change.meta) {
        this.drop(change.id);
        continue;
      }
      let state = this.live.get(change.id);
      if (!state) this.live.set(change.id, (state = { meta: change.meta, bits: this.bitsOf(change.meta) }));
      state.meta = change.meta;
      apply(state.bits, change.set, change.cleared);
    }
  }

  private backward(): void {
    const frame = this.frames[this.cursor--];
    for (const change of [...frame.bitmaps].reverse()) {
      if (!change.before) {
        this.drop(change.id);
        continue;
      }
      let state = this.live.get(change.id);
      if (!state) this.live.set(change.id, (state = { meta: change.before, bits: this.bitsOf(change.before) }));
      state.meta = change.before;
      apply(state.bits, change.cleared, change.set);
    }
  }

  /** Bytes the snapshots and the bit sets (live and spare) take. */
  footprint(): number {
    let bytes = 0;
    for (const snapshot of this.snapshots.values()) for (const { runs } of snapshot.bitmaps) bytes += runs.byteLength;
    const sets = [...[...this.live.values()].map((state) => state.bits), ...this.spare.values()];
    // Leaf words plus the upper levels (about 1/31 more).
    for (const bits of sets) bytes += bits.words().byteLength * (32 / 31);
    return Math.round(bytes);
  }

  private snapshot(): Snapshot {
    return {
      bitmaps: [...this.live.values()].map(({ meta, bits }) => ({ meta, runs: Float64Array.from([...bits.extents()].flat()) })),
    };
  }

  /** Back to a snapshot, reusing bit sets. */
  private restore(index: number): void {
    const snapshot = this.snapshots.get(index)!;
    for (const id of [...this.live.keys()]) this.drop(id);
    for (const { meta, runs } of snapshot.bitmaps) {
      const bits = this.bitsOf(meta);
      for (let i = 0; i < runs.length; i += 2) bits.set(runs[i], runs[i + 1] - runs[i]);
      this.live.set(meta.id, { meta, bits });
    }
    this.cursor = index;
  }
}
