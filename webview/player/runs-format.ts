/**
 * The recorded runs a player shows, and their compact form in an exported
 * page. No DOM and no Node imports: the CLI packs, the player unpacks.
 *
 * Packing leaves out what the player can put back:
 * - each bitmap change's `before`, which the recorder always sets to the meta
 *   the same bitmap had in its previous change;
 * - a frame's narration and jobs when they equal the previous frame's (the
 *   narration stays for a whole step, jobs often do); null says "none" where
 *   the previous frame had some;
 * - a job's type, source and target where the previous frame lists the same
 *   job with the same (they do not change while a job lives);
 * - what a cause's detail repeats of the frame's write records: a guest
 *   write's node, kind and range, a copy's target and range. Left out only
 *   when they are exactly what the records give, and then the frame says so.
 */
import type { BitmapChange, BitmapMeta, Frame, FrameCause, JobState, WriteRecord } from '../../src/engine/timeline/frame';

export interface RecordedRun {
  title: string;
  /** Markdown subset, as narration. */
  description?: string;
  frames: Frame[];
}

const PACKED_RUNS_VERSION = 2;

/** Without a type, the job has the type, source and target it had in the previous frame. */
type PackedJob = Omit<JobState, 'type'> & { type?: string };

type PackedFrame = Omit<Frame, 'bitmaps' | 'narration' | 'jobs'> & {
  bitmaps: Array<Omit<BitmapChange, 'before'>>;
  narration?: string | null;
  jobs?: PackedJob[];
  /** The cause's detail lacks the fields the write records give. */
  derived?: true;
};

export interface PackedRuns {
  version: typeof PACKED_RUNS_VERSION;
  runs: Array<Omit<RecordedRun, 'frames'> & { frames: PackedFrame[] }>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The detail fields a frame's write records give: a guest write's node, kind and range; a copy's target and range. */
function fromWrites({ kind, label }: FrameCause, writes: readonly WriteRecord[]): Record<string, unknown> | undefined {
  if (kind === 'io' && writes.length === 1 && writes[0].kind === 'guest') {
    const [write] = writes;
    return { node: write.node, kind: label.split(' ')[0], offset: write.offset, bytes: write.bytes };
  }
  if (kind === 'trace' && label === 'copy' && writes.length && writes.every((write) => write.kind === 'copy' && write.node === writes[0].node)) {
    return { target: writes[0].node, offset: writes[0].offset, bytes: writes.reduce((sum, write) => sum + write.bytes, 0) };
  }
  return undefined;
}

function packCause(cause: FrameCause, writes: readonly WriteRecord[]): Pick<PackedFrame, 'cause' | 'derived'> {
  const derived = fromWrites(cause, writes);
  const { detail, ...rest } = cause;
  if (!derived || !detail || !Object.entries(derived).every(([key, value]) => detail[key] === value)) return { cause };
  const left = Object.fromEntries(Object.entries(detail).filter(([key]) => !(key in derived)));
  return { cause: { ...rest, ...(Object.keys(left).length > 0 && { detail: left }) }, derived: true };
}

function packJobs(jobs: readonly JobState[], previous: readonly JobState[] | undefined): PackedJob[] {
  return jobs.map((job) => {
    const before = previous?.find((j) => j.id === job.id);
    if (!before || before.type !== job.type || before.source !== job.source || before.target !== job.target) return job;
    const { type: _type, source: _source, target: _target, ...rest } = job;
    return rest;
  });
}

function packFrame({ narration, jobs, bitmaps, cause, ...rest }: Frame, previous: Frame | undefined): PackedFrame {
  const packed: PackedFrame = { ...rest, ...packCause(cause, rest.writes), bitmaps: bitmaps.map(({ before: _before, ...change }) => change) };
  if (narration !== previous?.narration) packed.narration = narration ?? null;
  if (!previous || !same(jobs, previous.jobs)) packed.jobs = packJobs(jobs, previous?.jobs);
  return packed;
}

export function packRuns(runs: readonly RecordedRun[]): PackedRuns {
  return {
    version: PACKED_RUNS_VERSION,
    runs: runs.map(({ title, description, frames }) => ({
      title,
      ...(description !== undefined && { description }),
      frames: frames.map((frame, i) => packFrame(frame, frames[i - 1])),
    })),
  };
}

class Malformed extends Error {}

function unpackJobs(jobs: readonly PackedJob[], previous: readonly JobState[]): JobState[] {
  return jobs.map(({ type, ...job }) => {
    if (type !== undefined) return { ...job, type };
    const before = previous.find((j) => j.id === job.id);
    if (!before) throw new Malformed(`job ${job.id} has no type and is not in the frame before`);
    return { ...job, type: before.type, ...(before.source !== undefined && { source: before.source }), ...(before.target !== undefined && { target: before.target }) };
  });
}

function unpackCause(cause: FrameCause, derived: true | undefined, writes: readonly WriteRecord[]): FrameCause {
  if (!derived) return cause;
  const fields = fromWrites(cause, writes);
  if (!fields) throw new Malformed(`the ${cause.kind} ${cause.label} frame's detail cannot be put back from its writes`);
  return { ...cause, detail: { ...cause.detail, ...fields } };
}

/** Rebuilds the frames, or says why the data is not a packed recording. */
export function unpackRuns(data: unknown): RecordedRun[] | { error: string } {
  const packed = data as Partial<PackedRuns> | null;
  if (typeof packed !== 'object' || packed === null || packed.version !== PACKED_RUNS_VERSION || !Array.isArray(packed.runs)) {
    return { error: `not a packed recording of version ${PACKED_RUNS_VERSION}` };
  }
  const runs: RecordedRun[] = [];
  for (const [i, run] of packed.runs.entries()) {
    if (typeof run?.title !== 'string' || !Array.isArray(run.frames) || run.frames.length === 0) {
      return { error: `runs[${i}] needs a title and at least one frame` };
    }
    const lastMeta = new Map<number, BitmapMeta>();
    let previous: Frame | undefined;
    let at = 0;
    try {
      const frames = run.frames.map(({ narration, jobs, bitmaps, cause, derived, ...rest }, j): Frame => {
        at = j;
        const carried = narration === undefined ? previous?.narration : (narration ?? undefined);
        const frame: Frame = {
          ...rest,
          cause: unpackCause(cause, derived, rest.writes),
          ...(carried !== undefined && { narration: carried }),
          bitmaps: bitmaps.map((change) => {
            const before = lastMeta.get(change.id);
            if (change.meta) lastMeta.set(change.id, change.meta);
            else lastMeta.delete(change.id);
            return before ? { ...change, before } : change;
          }),
          jobs: jobs ? unpackJobs(jobs, previous?.jobs ?? []) : (previous?.jobs ?? []),
        };
        previous = frame;
        return frame;
      });
      runs.push({ title: run.title, ...(run.description !== undefined && { description: run.description }), frames });
    } catch (error) {
      if (!(error instanceof Malformed)) throw error;
      return { error: `runs[${i}].frames[${at}]: ${error.message}` };
    }
  }
  return runs;
}
