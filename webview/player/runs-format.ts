/**
 * The recorded runs a player shows, and their compact form in an exported
 * page. No DOM and no Node imports: the CLI packs, the player unpacks.
 *
 * Packing leaves out what the player can put back:
 * - each bitmap change's `before`, which the recorder always sets to the meta
 *   the same bitmap had in its previous change;
 * - a frame's narration and jobs when they equal the previous frame's (the
 *   narration stays for a whole step, jobs often do); null says "none" where
 *   the previous frame had some.
 */
import type { BitmapChange, BitmapMeta, Frame, JobState } from '../../src/engine/timeline/frame';

export interface RecordedRun {
  title: string;
  /** Markdown subset, as narration. */
  description?: string;
  frames: Frame[];
}

const PACKED_RUNS_VERSION = 1;

type PackedFrame = Omit<Frame, 'bitmaps' | 'narration' | 'jobs'> & {
  bitmaps: Array<Omit<BitmapChange, 'before'>>;
  narration?: string | null;
  jobs?: JobState[];
};

export interface PackedRuns {
  version: typeof PACKED_RUNS_VERSION;
  runs: Array<Omit<RecordedRun, 'frames'> & { frames: PackedFrame[] }>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function packFrame({ narration, jobs, bitmaps, ...rest }: Frame, previous: Frame | undefined): PackedFrame {
  const packed: PackedFrame = { ...rest, bitmaps: bitmaps.map(({ before: _before, ...change }) => change) };
  if (narration !== previous?.narration) packed.narration = narration ?? null;
  if (!previous || !same(jobs, previous.jobs)) packed.jobs = jobs;
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
    const frames = run.frames.map(({ narration, jobs, bitmaps, ...rest }): Frame => {
      const carried = narration === undefined ? previous?.narration : (narration ?? undefined);
      const frame: Frame = {
        ...rest,
        ...(carried !== undefined && { narration: carried }),
        bitmaps: bitmaps.map((change) => {
          const before = lastMeta.get(change.id);
          if (change.meta) lastMeta.set(change.id, change.meta);
          else lastMeta.delete(change.id);
          return before ? { ...change, before } : change;
        }),
        jobs: jobs ?? previous?.jobs ?? [],
      };
      previous = frame;
      return frame;
    });
    runs.push({ title: run.title, ...(run.description !== undefined && { description: run.description }), frames });
  }
  return runs;
}
