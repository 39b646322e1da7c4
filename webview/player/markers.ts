/**
 * The frames worth jumping to, by kind, for the scrubber's markers and the
 * "next failure / cleanup / write" keys.
 */
import type { Frame } from '../../src/engine/timeline/frame';
import { copyText, guestLabel } from './io';

export type MarkerKind = 'failure' | 'cleanup' | 'write' | 'job' | 'copy';

export interface Marker {
  frame: number;
  kind: MarkerKind;
  label: string;
  /** The job a failure or job event is about. */
  job?: string;
  /** Written beside the marker on the scrubber: the job's name where it is created. */
  tag?: string;
}

export const CLEANUP_TRACES = new Set(['abdicate', 'reclaim', 'merge-copy-bitmap']);

/** Cleanup operations as the panel names them. */
export const CLEANUP_NAMES: Record<string, string> = { abdicate: 'abdicate', reclaim: 'reclaim', 'merge-copy-bitmap': 'merge C' };

const text = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/** At most one marker of each kind per frame; the most telling first. */
export function markersOf(frames: readonly Frame[]): Marker[] {
  const markers: Marker[] = [];
  const reported = new Set<string>();
  for (const frame of frames) {
    const add = (kind: MarkerKind, label: string, about: Pick<Marker, 'job' | 'tag'> = {}) => {
      if (!markers.some((m) => m.frame === frame.index && m.kind === kind)) markers.push({ frame: frame.index, kind, label, ...about });
    };
    for (const { event, data } of frame.events) {
      const job = text(data.device ?? data.id);
      if (event === 'BLOCK_JOB_ERROR') {
        reported.add(job);
        add('failure', `job ${job}: ${text(data.operation)} error (action ${text(data.action)})`, { job });
      } else if (event === 'BLOCK_JOB_COMPLETED' && data.error !== undefined) {
        // An error the job did not report as BLOCK_JOB_ERROR (a write to the target under the filter, say).
        if (!reported.has(job)) add('failure', `job ${job} failed: ${text(data.error)}`, { job });
        add('job', `job ${job} ended with an error`, { job });
      } else if (event === 'BLOCK_JOB_COMPLETED') add('job', `job ${job} completed`, { job });
      else if (event === 'BLOCK_JOB_CANCELLED') add('job', `job ${job} cancelled`, { job });
      else if (event === 'JOB_STATUS_CHANGE' && data.status === 'created') add('job', `job ${job} created`, { job, tag: job });
    }
    if (frame.cause.kind === 'trace' && CLEANUP_TRACES.has(frame.cause.label)) {
      add('cleanup', `cleanup: ${CLEANUP_NAMES[frame.cause.label]} ${text(frame.cause.detail?.bitmap)}`);
    }
    const written = guestLabel(frame);
    if (written) add('write', written);
    const copied = copyText(frame);
    if (copied) add('copy', copied);
  }
  return markers;
}

/** The first marker of `kind` after (direction 1) or before (-1) frame `from`. */
export function nextMarker(markers: readonly Marker[], kind: MarkerKind, from: number, direction: 1 | -1): Marker | undefined {
  const matching = markers.filter((m) => m.kind === kind);
  return direction > 0 ? matching.find((m) => m.frame > from) : [...matching].reverse().find((m) => m.frame < from);
}
