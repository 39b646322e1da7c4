/**
 * Timeline frames: plain, serialisable records of what one engine step
 * changed. The same frames feed the webview, the debugger, the CLI and the
 * exported page.
 */

/** A run of granules [start, end). */
export type Range = [number, number];

/** What a bitmap is to the backup job that the user is watching. */
export type BitmapRole = 'named' | 'sync' | 'successor' | 'copy' | 'cbw-done' | 'cbw-access' | 'anonymous';

export interface BitmapMeta {
  id: number;
  node: string;
  name?: string;
  role: BitmapRole;
  granularity: number;
  /** Bytes covered. */
  size: number;
  disabled: boolean;
  recording: boolean;
  busy: boolean;
  persistent: boolean;
  inconsistent: boolean;
  /** Dirty bytes, as QEMU counts them. */
  count: number;
}

/** A bitmap's change in one frame; `set`/`cleared` are the granules that flipped. */
export interface BitmapChange {
  id: number;
  /** After the frame; absent when the bitmap was released. */
  meta?: BitmapMeta;
  /** Before the frame; absent when the bitmap was created. */
  before?: BitmapMeta;
  set: Range[];
  cleared: Range[];
}

export interface JobState {
  id: string;
  type: string;
  /** A backup's source and target nodes. */
  source?: string;
  target?: string;
  status: string;
  current: number;
  total: number;
  speed: number;
  error?: string;
}

/** Guest data landing on a node: `write` numbers the guest write that produced it. */
export interface WriteRecord {
  node: string;
  offset: number;
  bytes: number;
  write: number;
  /** A guest write, or a copy of older data (the write it copies). */
  kind: 'guest' | 'copy';
}

export interface FrameCause {
  kind: 'start' | 'command' | 'io' | 'task' | 'event' | 'trace';
  label: string;
  detail?: Record<string, unknown>;
}

export interface Frame {
  index: number;
  /** Virtual time, nanoseconds. */
  time: number;
  cause: FrameCause;
  /** The scenario step in force, and its narration. */
  step: number;
  narration?: string;
  bitmaps: BitmapChange[];
  writes: WriteRecord[];
  /** Every job after the frame (few, small). */
  jobs: JobState[];
  events: Array<{ event: string; data: Record<string, unknown> }>;
}
