/**
 * A backup job's bitmap cleanup, as the separate operations QEMU performs
 * (backup_cleanup_sync_bitmap), each with its formula in symbols and words,
 * and what the other mode would have kept, counted from the recorded S, N and
 * C just before the cleanup.
 */
import type { Frame } from '../../src/engine/timeline/frame';
import { CLEANUP_NAMES, CLEANUP_TRACES } from './markers';
import { countOf, union } from './ranges';
import type { LaneState } from './run-model';

export interface CleanupOperation {
  frame: number;
  /** abdicate, reclaim or merge C. */
  name: string;
  symbols: string;
  words: string;
  /** The bitmap's dirty granules and bytes after the operation. */
  granules: number;
  bytes: number;
}

export interface Cleanup {
  job: string;
  bitmap: string;
  mode: string;
  failed: boolean;
  /** "always, failed: bitmap0 := N ∪ C". */
  headline: string;
  operations: CleanupOperation[];
  /** What the bitmap keeps, and what the other choice would have kept (failed jobs only). */
  kept: Outcome;
  otherwise?: Outcome;
  /** The frames over which the panel shows this cleanup: from the failure (or the cleanup) to the next job. */
  from: number;
  to: number;
}

export interface Outcome {
  modes: string;
  symbols: string;
  granules: number;
  bytes: number;
}

interface Source {
  readonly frames: readonly Frame[];
  lanesAt(index: number): LaneState[];
}

function formula(trace: string, ret: number, mode: string, bitmap: string): Pick<CleanupOperation, 'symbols' | 'words'> {
  if (trace === 'reclaim') {
    const why = mode === 'never' ? 'With never, a backup never clears the bitmap' : 'The copy does not count';
    return { symbols: `${bitmap} := S ∪ N`, words: `${why}: the writes made during the job (N) are merged back into S, which keeps every granule it had.` };
  }
  if (trace === 'merge-copy-bitmap') {
    return { symbols: `${bitmap} := N ∪ C`, words: `What the job had not copied yet (C) is added back, so the next backup copies it.` };
  }
  return ret === 0
    ? { symbols: `${bitmap} := N`, words: `S is on the target, so it is dropped; N, the writes made during the job, becomes ${bitmap}.` }
    : { symbols: `${bitmap} := N`, words: `S is dropped although the job failed; N, the writes made during the job, becomes ${bitmap}.` };
}

interface Group {
  job: string;
  /** The job's source, which holds the bitmap. */
  node?: string;
  frames: Frame[];
}

/**
 * The backup job cleaning up in this frame: the job whose source holds the
 * bitmap the operation changed. An operation that changed nothing goes on
 * the cleanup before it.
 */
function jobOf(frame: Frame, previous: Group | undefined): Omit<Group, 'frames'> {
  const bitmap = frame.cause.detail?.bitmap;
  const node = frame.bitmaps.map((change) => change.meta ?? change.before).find((meta) => meta?.name === bitmap)?.node;
  // Jobs are listed newest first: an earlier job on the node may still be there, concluded.
  const job = frame.jobs.find((j) => node !== undefined && j.source === node);
  if (job) return { job: job.id, node: job.source };
  return previous ? { job: previous.job, ...(previous.node !== undefined && { node: previous.node }) } : { job: '?' };
}

export function cleanupsOf(source: Source): Cleanup[] {
  const { frames } = source;
  const groups: Group[] = [];
  for (const frame of frames) {
    if (frame.cause.kind !== 'trace' || !CLEANUP_TRACES.has(frame.cause.label)) continue;
    const group = groups[groups.length - 1];
    const { job, node } = jobOf(frame, group);
    if (group && group.job === job && group.frames[0].cause.detail?.bitmap === frame.cause.detail?.bitmap) group.frames.push(frame);
    else groups.push({ job, ...(node !== undefined && { node }), frames: [frame] });
  }
  return groups.map((group, i) => cleanup(source, group, groups[i + 1]?.frames[0].index ?? frames.length));
}

function cleanup(source: Source, { job, node, frames: group }: Group, nextCleanup: number): Cleanup {
  const { frames } = source;
  const first = group[0];
  const detail = first.cause.detail ?? {};
  const bitmap = String(detail.bitmap);
  const mode = String(detail.mode);
  const failed = Number(detail.ret) !== 0;

  const onNode = (lane: LaneState) => node === undefined || lane.spec.node === node;
  const namedLane = (lanes: LaneState[]) => lanes.find((lane) => lane.spec.role === 'named' && lane.meta?.name === bitmap && onNode(lane));
  const operations = group.map((frame): CleanupOperation => {
    const lane = namedLane(source.lanesAt(frame.index));
    return {
      frame: frame.index,
      name: CLEANUP_NAMES[frame.cause.label],
      ...formula(frame.cause.label, Number(frame.cause.detail?.ret), mode, bitmap),
      granules: lane ? countOf(lane.runs) : 0,
      bytes: lane?.meta?.count ?? 0,
    };
  });
  const last = operations[operations.length - 1];
  const symbols = last.symbols.slice(last.symbols.indexOf(':= ') + 3);
  const kept: Outcome = { modes: mode, symbols, granules: last.granules, bytes: last.bytes };

  const failedAt = lastBefore(frames, first.index, (frame) => frame.events.some((e) => e.event === 'BLOCK_JOB_ERROR' && e.data.device === job));
  const nextJob = frames.findIndex(
    (frame) => frame.index > first.index && frame.events.some((e) => e.event === 'JOB_STATUS_CHANGE' && e.data.status === 'created'),
  );
  const to = Math.min(nextJob < 0 ? frames.length : nextJob, nextCleanup) - 1;
  return {
    job,
    bitmap,
    mode,
    failed,
    headline: `${mode}, ${failed ? 'failed' : 'succeeded'}: ${bitmap} := ${symbols}`,
    operations,
    kept,
    ...(failed && { otherwise: otherwise(source.lanesAt(first.index - 1).filter(onNode), bitmap, mode) }),
    from: failedAt >= 0 ? failedAt : first.index,
    to: Math.max(to, last.frame),
  };
}

/** The last frame at or before `index` for which `test` holds, or -1. */
function lastBefore(frames: readonly Frame[], index: number, test: (frame: Frame) => boolean): number {
  for (let i = index; i >= 0; i--) if (test(frames[i])) return i;
  return -1;
}

/** What a failed job's other bitmap mode would have kept, from S, N and C as they were. */
function otherwise(lanes: LaneState[], bitmap: string, mode: string): Outcome | undefined {
  const sync = lanes.find((lane) => lane.meta?.role === 'sync' && lane.meta.name === bitmap);
  if (!sync) return undefined;
  const onNode = (role: string) => lanes.find((lane) => lane.spec.role === role && lane.spec.node === sync.spec.node)?.runs ?? [];
  const [s, n, c] = [sync.runs, onNode('successor'), onNode('copy')];
  const granularity = sync.spec.granularity;
  const outcome = (modes: string, symbols: string, granules: number): Outcome => ({ modes, symbols, granules, bytes: granules * granularity });
  return mode === 'always'
    ? outcome('on-success or never', 'S ∪ N', countOf(union(s, n)))
    : outcome('always', 'N ∪ C', countOf(union(n, c)));
}
