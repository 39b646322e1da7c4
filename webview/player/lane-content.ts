/**
 * What a lane body draws, whichever way it draws it: cells or density.
 */
import type { ValueRun } from './ranges';

export interface LaneContent {
  granules: number;
  /** A bitmap's dirty granules (value 1), or data by the number of the write that produced it (0: older than the recording). */
  runs: ValueRun[];
  kind: 'bitmap' | 'data';
  /** The target's granules still in flight. */
  inFlight: ValueRun[];
  /** What this frame changed: value 1 where set or rewritten, 0 where cleared. */
  changed: ValueRun[];
  /** With a pinned frame: where this frame differs from it, valued as `changed`; outlined instead of `changed`. */
  compared?: ValueRun[];
  /** No such bitmap at this frame (N and C outside a job): drawn faint. */
  absent: boolean;
  /** Tooltip lines for granules [first, end). */
  describe(first: number, end: number): string[];
}

/** Write colours and patterns repeat after this many writes; the tooltip still names each write. */
export const WRITE_STYLES = 8;

export const writeStyle = (write: number) => ((write - 1) % WRITE_STYLES) + 1;
