/**
 * The guest data on the source and on the current backup's target, derived
 * from what frames record, in the source lane's granules.
 *
 * - Source: each guest write paints its granules with its number.
 * - Target: frames do not record copies, so they are read off the copy
 *   bitmap C on the source node. Its job is the backup job created with it;
 *   when several start together, the only one whose total equals what C
 *   holds when the jobs start, since frames do not name a job's node. Without
 *   one, the target stays empty and says so. Granules a block-copy call clears from C are taken for copying
 *   (in flight); they count as copied once the job's progress has grown by
 *   their size, oldest first; granules set in C again failed and go back.
 *   Clearing C outside block-copy (the job's initial C := S) skips granules
 *   that need no copy, so those are not on the target. A copied granule holds
 *   the data the source had when it was taken, or 0 for data older than the
 *   recording.
 *
 * Deriving goes forwards only, so seeking back restores a checkpoint and
 * replays from it.
 */
import type { Frame, JobState } from '../../src/engine/timeline/frame';
import { combine, erase, paint, regranulate, type ValueRun } from './ranges';

export interface GuestData {
  source: ValueRun[];
  target: ValueRun[];
  /** Taken from C, not yet counted in the job's progress. */
  inFlight: ValueRun[];
  /** The backup job whose target the lane shows. */
  job?: string;
  /** Several jobs started with C and none can be told to be its own. */
  jobUnknown?: true;
}

interface Tracked {
  source: ValueRun[];
  target: ValueRun[];
  /** In flight, in the order block-copy took them: progress confirms the oldest first. */
  queue: ValueRun[];
  job?: string;
  /** Jobs created with C, while it is not known which of them is C's. */
  candidates: string[];
  /** C's dirty bytes as last recorded. */
  copyBytes: number;
  /** Granules of the job's progress already moved to the target. */
  confirmed: number;
}

const CHECKPOINT_EVERY = 64;
const ENDED = new Set(['concluded', 'null']);

const clone = (state: Tracked): Tracked => ({ ...state, source: [...state.source], target: [...state.target], queue: [...state.queue], candidates: [...state.candidates] });

export class GuestDataTrack {
  private readonly checkpoints: Tracked[] = [];
  private state: Tracked = { source: [], target: [], queue: [], candidates: [], copyBytes: 0, confirmed: 0 };
  private cursor = -1;

  constructor(
    private readonly frames: readonly Frame[],
    private readonly node: string,
    private readonly granularity: number,
  ) {}

  at(index: number): GuestData {
    if (index < this.cursor) {
      const checkpoint = Math.floor(index / CHECKPOINT_EVERY);
      this.state = clone(this.checkpoints[checkpoint]);
      this.cursor = checkpoint * CHECKPOINT_EVERY;
    }
    while (this.cursor < index) {
      this.apply(this.frames[++this.cursor]);
      if (this.cursor % CHECKPOINT_EVERY === 0) this.checkpoints[this.cursor / CHECKPOINT_EVERY] ??= clone(this.state);
    }
    const { source, target, queue, job, candidates } = this.state;
    const inFlight = queue.reduce((runs, [start, end, value]) => paint(runs, start, end, value), [] as ValueRun[]);
    return { source, target, inFlight, ...(job !== undefined && { job }), ...(candidates.length > 0 && { jobUnknown: true }) };
  }

  private apply(frame: Frame): void {
    const state = this.state;
    const g = this.granularity;
    for (const write of frame.writes) {
      if (write.kind !== 'guest' || write.node !== this.node) continue;
      state.source = paint(state.source, Math.floor(write.offset / g), Math.ceil((write.offset + write.bytes) / g), write.write);
    }
    for (const change of frame.bitmaps) {
      const meta = change.meta;
      if (meta?.role !== 'copy' || meta.node !== this.node) continue;
      state.copyBytes = meta.count;
      if (!change.before) this.newCopyBitmap(frame);
      for (const [start, end] of regranulate(change.set.map(([s, e]) => [s, e, 1]), meta.granularity, g)) {
        state.queue = state.queue.flatMap((run) => erase([run], start, end));
      }
      if (!frame.cause.label.startsWith('block-copy')) continue;
      const taken = regranulate(change.cleared.map(([s, e]) => [s, e, 0]), meta.granularity, g);
      // Each taken granule carries the number of the write whose data the source had then.
      state.queue.push(...combine(taken, state.source, (inTaken) => inTaken !== undefined, (_taken, write) => write ?? 0));
    }
    if (state.job === undefined && state.candidates.length) {
      // Only a single match tells; with equal totals the lane says it does not know.
      const started = frame.jobs.filter((j) => state.candidates.includes(j.id) && j.total > 0 && j.total === state.copyBytes);
      if (started.length === 1) Object.assign(state, { job: started[0].id, candidates: [] });
    }
    const current = frame.jobs.find((j) => j.id === state.job);
    if (current) this.progress(current);
    else state.queue = [];
  }

  /** A backup job starts on the source: the target lane begins again, for that job. */
  private newCopyBitmap(frame: Frame): void {
    const before = new Set(this.frames[frame.index - 1]?.jobs.map((j) => j.id));
    const created = frame.jobs.filter((j) => j.type === 'backup' && !before.has(j.id)).map((j) => j.id);
    Object.assign(this.state, { target: [], queue: [], confirmed: 0, candidates: created.length > 1 ? created : [] });
    if (created.length === 1) this.state.job = created[0];
    else delete this.state.job;
  }

  private progress(job: JobState): void {
    const state = this.state;
    const done = Math.ceil(job.current / this.granularity);
    let granules = done - state.confirmed;
    state.confirmed = done;
    // A job that ended well copied everything it took; a failed one put back what it did not.
    if (ENDED.has(job.status)) granules = job.error === undefined ? Infinity : 0;
    while (granules > 0 && state.queue.length) {
      const [start, end, value] = state.queue[0];
      const stop = Math.min(end, start + granules);
      state.target = paint(state.target, start, stop, value);
      if (stop === end) state.queue.shift();
      else state.queue[0] = [stop, end, value];
      granules -= stop - start;
    }
    if (ENDED.has(job.status)) state.queue = [];
  }
}
