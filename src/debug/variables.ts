/**
 * The state of one frame as debugger variables: a tree of names and values,
 * built lazily (a 1 TiB bitmap's granules are listed only when expanded).
 */
import type { BitmapMeta } from '../engine/timeline/frame';
import type { BitmapState, FrameState } from '../engine/timeline/timeline';
import { ROLE_NAMES, formatSize } from '../format';

export interface Variable {
  name: string;
  value: string;
  children?: () => Variable[];
}

/** How many dirty runs a bitmap's `granules` lists before it says how many more there are. */
const RUNS_SHOWN = 100;


/** A bitmap's name in the variables, which is also what a data breakpoint on it watches. */
export const bitmapKey = (meta: BitmapMeta) => `${meta.node}/${meta.name ?? ROLE_NAMES[meta.role]}`;

const leaf = (name: string, value: unknown): Variable => ({ name, value: typeof value === 'string' ? value : JSON.stringify(value) });

function granules(bitmap: BitmapState): Variable {
  const runs: Variable[] = [];
  let total = 0;
  for (const [start, end] of bitmap.bits.extents()) {
    if (runs.length < RUNS_SHOWN) runs.push(leaf(`[${runs.length}]`, end - start === 1 ? `${start}` : `${start}–${end - 1}`));
    total++;
  }
  if (total > RUNS_SHOWN) runs.push(leaf('…', `${total - RUNS_SHOWN} more runs`));
  return { name: 'granules', value: `${total} run${total === 1 ? '' : 's'}`, children: () => runs };
}

function bitmaps(state: FrameState): Variable[] {
  return [...state.bitmaps.values()].map((bitmap) => {
    const { meta } = bitmap;
    const flags = [meta.recording ? 'recording' : 'disabled', meta.busy && 'busy', meta.persistent && 'persistent', meta.inconsistent && 'inconsistent'].filter(Boolean);
    return {
      name: bitmapKey(meta),
      value: `${formatSize(meta.count)} dirty · ${flags.join(', ')}`,
      children: () => [
        leaf('role', ROLE_NAMES[meta.role]),
        leaf('count', meta.count),
        leaf('granularity', meta.granularity),
        leaf('recording', meta.recording),
        leaf('busy', meta.busy),
        leaf('disabled', meta.disabled),
        leaf('persistent', meta.persistent),
        leaf('inconsistent', meta.inconsistent),
        granules(bitmap),
      ],
    };
  });
}

function jobs(state: FrameState): Variable[] {
  return state.jobs.map((job) => ({
    name: job.id,
    value: `${job.status} · ${formatSize(job.current)} of ${formatSize(job.total)}${job.error ? ` · ${job.error}` : ''}`,
    children: () => Object.entries(job).map(([key, value]) => leaf(key, value)),
  }));
}

function frame(state: FrameState): Variable[] {
  const { frame } = state;
  return [
    leaf('index', frame.index),
    leaf('time', `${frame.time / 1e9} s (virtual)`),
    leaf('cause', `${frame.cause.kind}: ${frame.cause.label}`),
    { name: 'events', value: `${frame.events.length}`, children: () => frame.events.map((e, i) => leaf(`[${i}] ${e.event}`, e.data)) },
    ...(frame.narration === undefined ? [] : [leaf('narration', frame.narration)]),
  ];
}

/** The scopes of a frame, each a lazily built list. */
export function scopes(state: FrameState): Array<{ name: string; variables: () => Variable[] }> {
  return [
    { name: 'Bitmaps', variables: () => bitmaps(state) },
    { name: 'Jobs', variables: () => jobs(state) },
    { name: 'Frame', variables: () => frame(state) },
  ];
}
