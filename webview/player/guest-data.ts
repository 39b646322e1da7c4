/**
 * The data lanes of a recording, read from the frames' write records: guest
 * data where it landed, and copies with the guest write whose data they carry
 * (0: zeroes, or data older than the recording). Each node's data is kept in
 * the granules of the source lane it is drawn in.
 *
 * - Source: what the guest wrote on the node.
 * - Target: what the target node of the source's backup job holds, the
 *   latest such job as its state names source and target; it keeps showing
 *   once the job has ended, until the next job on the source.
 * - In flight: granules block-copy took from the source's copy bitmap C that
 *   no copy to the target has carried yet and that did not go back into C;
 *   none once the job has ended.
 *
 * Contents build up going forwards, so seeking back restores a checkpoint and
 * replays from it.
 */
import type { Frame, JobState } from '../../src/engine/timeline/frame';
import { combine, erase, paint, regranulate, type ValueRun } from './ranges';

export interface DataLanes {
  source: ValueRun[];
  target: ValueRun[];
  inFlight: ValueRun[];
  /** The backup job whose target the target lane shows, and that node. */
  job?: string;
  targetNode?: string;
}

interface SourceState {
  job?: string;
  target?: string;
  inFlight: ValueRun[];
}

interface State {
  /** Every drawn node's data; runs are replaced, never changed in place, so a checkpoint can share them. */
  data: Map<string, ValueRun[]>;
  sources: Map<string, SourceState>;
}

const CHECKPOINT_EVERY = 64;
const ENDED = new Set(['concluded', 'null']);

const clone = (state: State): State => ({
  data: new Map(state.data),
  sources: new Map([...state.sources].map(([node, source]) => [node, { ...source }])),
});

/** The latest backup job on `node` in the frame (jobs are listed newest first, as QEMU lists them). */
const jobOn = (frame: Frame, node: string): JobState | undefined => frame.jobs.find((job) => job.source === node);

export class GuestDataTrack {
  private readonly checkpoints: State[] = [];
  private state: State;
  private cursor = -1;
  /** The granularity each drawn node is kept in: a source's own, and its targets' from it. */
  private readonly granularity = new Map<string, number>();

  constructor(
    private readonly frames: readonly Frame[],
    sources: ReadonlyArray<{ node: string; granularity: number }>,
  ) {
    for (const { node, granularity } of sources) this.granularity.set(node, granularity);
    for (const frame of frames) {
      for (const job of frame.jobs) {
        const granularity = job.source === undefined ? undefined : this.granularity.get(job.source);
        if (granularity !== undefined && job.target !== undefined && !this.granularity.has(job.target)) this.granularity.set(job.target, granularity);
      }
    }
    this.state = { data: new Map(), sources: new Map(sources.map(({ node }) => [node, { inFlight: [] }])) };
  }

  /** Each source's data lanes after frame `index`, by source node. */
  at(index: number): Map<string, DataLanes> {
    if (index < this.cursor) {
      const checkpoint = Math.floor(index / CHECKPOINT_EVERY);
      this.state = clone(this.checkpoints[checkpoint]);
      this.cursor = checkpoint * CHECKPOINT_EVERY;
    }
    while (this.cursor < index) {
      this.apply(this.frames[++this.cursor]);
      if (this.cursor % CHECKPOINT_EVERY === 0) this.checkpoints[this.cursor / CHECKPOINT_EVERY] ??= clone(this.state);
    }
    const { data, sources } = this.state;
    const lanes = new Map<string, DataLanes>();
    for (const [node, { job, target, inFlight }] of sources) {
      lanes.set(node, {
        source: data.get(node) ?? [],
        target: target === undefined ? [] : (data.get(target) ?? []),
        inFlight,
        ...(job !== undefined && { job }),
        ...(target !== undefined && { targetNode: target }),
      });
    }
    return lanes;
  }

  /** Granules [first, end) of `node` that the bytes cover. */
  private granules(node: string, offset: number, bytes: number): [number, number] | undefined {
    const g = this.granularity.get(node);
    return g === undefined ? undefined : [Math.floor(offset / g), Math.ceil((offset + bytes) / g)];
  }

  private apply(frame: Frame): void {
    const { data, sources } = this.state;
    for (const write of frame.writes) {
      const span = this.granules(write.node, write.offset, write.bytes);
      if (span) data.set(write.node, paint(data.get(write.node) ?? [], span[0], span[1], write.write));
    }
    for (const [node, source] of sources) {
      const job = jobOn(frame, node);
      if (job && job.id !== source.job) Object.assign(source, { job: job.id, target: job.target, inFlight: [] });
      const g = this.granularity.get(node)!;
      for (const change of frame.bitmaps) {
        const meta = change.meta;
        if (meta?.role !== 'copy' || meta.node !== node) continue;
        // Set again in C: the copy failed, the granules wait to be taken again.
        for (const [start, end] of regranulate(change.set.map(([s, e]) => [s, e, 1]), meta.granularity, g)) source.inFlight = erase(source.inFlight, start, end);
        if (!frame.cause.label.startsWith('block-copy')) continue;
        // Taken for copying: each granule shows the data the source holds now.
        const taken = regranulate(change.cleared.map(([s, e]) => [s, e, 0]), meta.granularity, g);
        const values = combine(taken, data.get(node) ?? [], (inTaken) => inTaken !== undefined, (_taken, write) => write ?? 0);
        source.inFlight = combine(source.inFlight, values, () => true, (held, now) => now ?? held!);
      }
      for (const write of frame.writes) {
        if (write.kind !== 'copy' || write.node !== source.target) continue;
        const [start, end] = this.granules(write.node, write.offset, write.bytes)!;
        source.inFlight = erase(source.inFlight, start, end);
      }
      if (!job || ENDED.has(job.status)) source.inFlight = [];
    }
  }
}
