/**
 * Words for what the panel shows: the current frame's event (the event line
 * and the live region), lane titles, and hover details of a granule.
 */
import type { BitmapMeta, Frame } from '../../src/engine/timeline/frame';
import { formatBytes, hex, plural } from '../format';
import { copyText, dataName, guestText } from './io';
import type { LaneSpec } from './lanes';
import type { MarkerKind } from './markers';
import { clip, countOf, type ValueRun } from './ranges';
import type { FrameView, LaneState, RunModel } from './run-model';

export interface FrameEvent {
  kind: MarkerKind | 'other';
  text: string;
}

/** The glyph each kind of event carries, in the scrubber, the event line and the legend. */
export const GLYPHS: Record<FrameEvent['kind'], string> = { failure: '✕', cleanup: '◆', write: '■', job: '▲', copy: '●', other: '·' };

const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
const granulesText = (count: number, granularity: number) => `${plural(count, 'granule')} (${formatBytes(count * granularity)})`;

export function frameEvent(model: RunModel, view: FrameView): FrameEvent {
  const { frame } = view;
  const op = model.cleanups.flatMap((cleanup) => cleanup.operations).find((o) => o.frame === frame.index);
  if (op) return { kind: 'cleanup', text: `cleanup, ${op.name}: ${op.symbols}. ${op.words} Now ${plural(op.granules, 'granule')} dirty.` };
  const failure = model.markers.find((m) => m.frame === frame.index && m.kind === 'failure');
  if (failure) return { kind: 'failure', text: `failure: ${failure.label}` };
  const written = guestText(frame);
  if (written) return { kind: 'write', text: written };
  const jobEvent = jobEventText(frame);
  if (jobEvent) return { kind: 'job', text: jobEvent };
  const copied = copyText(frame);
  if (copied) return { kind: 'copy', text: copied };
  const taken = copyBitmapText(view);
  if (taken) return taken;
  const progress = progressText(model, frame);
  if (progress) return { kind: 'other', text: progress };
  if (frame.cause.kind === 'start') return { kind: 'other', text: 'the recording starts' };
  return { kind: 'other', text: `${frame.cause.kind} ${frame.cause.label}` };
}

function jobEventText(frame: Frame): string | undefined {
  for (const { event, data } of frame.events) {
    const job = text(data.device ?? data.id);
    if (event === 'JOB_STATUS_CHANGE') return `job ${job} is now ${text(data.status)}`;
    if (event === 'BLOCK_JOB_COMPLETED') {
      const copied = `${formatBytes(Number(data.offset))} of ${formatBytes(Number(data.len))} copied`;
      return data.error === undefined ? `job ${job} completed: ${copied}` : `job ${job} ended with an error (${text(data.error)}): ${copied}`;
    }
    if (event === 'BLOCK_JOB_CANCELLED') return `job ${job} cancelled`;
    return `event ${event}`;
  }
  return undefined;
}

/** Granules block-copy takes from C to copy, or that come back to it. */
function copyBitmapText(view: FrameView): FrameEvent | undefined {
  const lane = view.lanes.find((l) => l.spec.role === 'copy' && l.meta);
  const changed = lane && view.changed.get(lane.spec.key);
  if (!lane || !changed?.length || !view.frame.cause.label.startsWith('block-copy')) return undefined;
  const taken = countOf(changed.filter(([, , set]) => set === 0));
  const back = countOf(changed.filter(([, , set]) => set === 1));
  const where = hex(changed[0][0] * lane.spec.granularity);
  if (back) return { kind: 'failure', text: `${granulesText(back, lane.spec.granularity)} go back into C at ${where}: their copy failed` };
  return { kind: 'other', text: `block-copy takes ${granulesText(taken, lane.spec.granularity)} at ${where} from C to copy them` };
}

function progressText(model: RunModel, frame: Frame): string | undefined {
  const before = model.frames[frame.index - 1]?.jobs ?? [];
  const job = frame.jobs.find((j) => before.find((b) => b.id === j.id)?.current !== j.current);
  return job && `job ${job.id} has copied ${formatBytes(job.current)} of ${formatBytes(job.total)}`;
}

/** A lane's title and what it is, for headers and hover details; a target lane names its job's target. */
export function laneTitle(spec: LaneSpec, meta: BitmapMeta | undefined, target: Pick<LaneState, 'job' | 'targetNode'> = {}): { name: string; symbol: string; role: string } {
  switch (spec.role) {
    case 'source':
      return { name: `source · ${spec.node}`, symbol: 'src', role: 'guest data, by the write that produced it' };
    case 'target':
      return target.job
        ? { name: `${target.targetNode}, target of job ${target.job}`, symbol: 'tgt', role: `data copied from ${spec.node}, by the write that produced it` }
        : { name: 'target', symbol: 'tgt', role: `where a backup of ${spec.node} copies to` };
    case 'named':
      return meta?.role === 'sync'
        ? { name: spec.name!, symbol: 'S', role: 'sync bitmap S: frozen while the job runs' }
        : { name: spec.name!, symbol: 'B', role: `dirty bitmap on ${spec.node}` };
    case 'successor':
      return { name: 'successor N', symbol: 'N', role: 'records guest writes while the job runs' };
    case 'copy':
      return { name: 'copy bitmap C', symbol: 'C', role: 'what the job still has to copy' };
    case 'cbw-done':
      return { name: 'copy-before-write: done', symbol: 'D', role: 'clusters the filter has already copied' };
    case 'cbw-access':
      return { name: 'copy-before-write: access', symbol: 'A', role: 'clusters a snapshot reader may access' };
  }
}

/** Why a lane is empty when it has no bitmap. */
export function absentNote(spec: LaneSpec): string {
  if (spec.role === 'named') return `${spec.name} does not exist at this frame`;
  return 'exists only while a backup job runs';
}

/** Hover lines for granules [first, end) of `lane`; with a pinned frame, what they held there. */
export function granuleDetails(view: FrameView, lane: LaneState, first: number, end: number, pinned?: { from: number; lane: LaneState; differs: ValueRun[] }): string[] {
  const { spec } = lane;
  const title = laneTitle(spec, lane.meta, lane).name;
  const where =
    end - first === 1
      ? `granule ${first.toLocaleString('en-US')} of ${spec.granules.toLocaleString('en-US')}`
      : `granules ${first.toLocaleString('en-US')}–${(end - 1).toLocaleString('en-US')} of ${spec.granules.toLocaleString('en-US')}`;
  const startByte = first * spec.granularity;
  const endByte = Math.min(end * spec.granularity, spec.size);
  const lines = [`${title} · ${where}`, `bytes [${hex(startByte)}, ${hex(endByte)}) · ${formatBytes(endByte - startByte)}`];
  lines.push(contents(lane, first, end));
  const changed = clip(view.changed.get(spec.key) ?? [], first, end);
  if (changed.length) lines.push(`changed in this frame: ${changed.some(([, , v]) => v === 1) ? 'set' : 'cleared'}`);
  if (pinned) {
    const differs = clip(pinned.differs, first, end).length > 0;
    lines.push(`at pinned frame ${pinned.from}: ${contents(pinned.lane, first, end)} (${differs ? 'differs' : 'the same'})`);
  }
  // The filter's own bitmaps are its bookkeeping, not dirty data a backup would copy.
  const holders = view.lanes
    .filter((other) => other.meta && isBitmapLane(other.spec) && !other.spec.optional)
    .filter((other) => clip(other.runs, Math.floor(startByte / other.spec.granularity), Math.ceil(endByte / other.spec.granularity)).length)
    .map((other) => laneTitle(other.spec, other.meta))
    .map(({ name, symbol }) => (name.endsWith(symbol) ? name : `${name} (${symbol})`));
  lines.push(holders.length ? `dirty in: ${holders.join(', ')}` : 'dirty in no bitmap');
  return lines;
}

const isBitmapLane = (spec: LaneSpec) => spec.role !== 'source' && spec.role !== 'target';


function contents(lane: LaneState, first: number, end: number): string {
  const runs = clip(lane.runs, first, end);
  const span = end - first;
  if (!lane.meta && isBitmapLane(lane.spec)) return absentNote(lane.spec);
  if (isBitmapLane(lane.spec)) {
    const dirty = countOf(runs);
    return span === 1 ? (dirty ? 'dirty' : 'clean') : `${dirty.toLocaleString('en-US')} of ${span.toLocaleString('en-US')} dirty`;
  }
  const flight = clip(lane.inFlight ?? [], first, end);
  if (flight.length) return `in flight: taken from C, ${dataText(flight)}`;
  if (!runs.length) return lane.spec.role === 'source' ? 'not written during the recording' : lane.job ? 'not copied' : 'no backup job yet';
  const verb = lane.spec.role === 'source' ? 'holds' : 'copied:';
  return `${verb} ${dataText(runs)}${countOf(runs) < span ? ` (${countOf(runs)} of ${span} granules)` : ''}`;
}

function dataText(runs: readonly ValueRun[]): string {
  return [...new Set(runs.map(([, , value]) => value))].sort((a, b) => a - b).map(dataName).join(', ');
}

/** "+16 −0" for a lane's header: granules set and cleared by this frame. */
export function deltaText(changed: readonly ValueRun[]): string {
  const set = countOf(changed.filter(([, , v]) => v === 1));
  const cleared = countOf(changed.filter(([, , v]) => v === 0));
  return changed.length ? `+${set.toLocaleString('en-US')} −${cleared.toLocaleString('en-US')}` : '';
}

