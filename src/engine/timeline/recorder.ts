/**
 * Records an engine as frames: after each command, scheduler task, event and
 * cleanup step, the bitmap granules that flipped (found by diffing only the
 * words each bitmap reports as touched), bitmaps made and released, the guest
 * data written, jobs and events.
 */
import type { DirtyBitmap } from '../dirty-bitmap';
import type { Engine } from '../engine';
import { BackupJob } from '../jobs/backup';
import type { BitmapChange, BitmapMeta, BitmapRole, Frame, FrameCause, JobState, Range, WriteRecord } from './frame';
import { Lineage } from './lineage';

interface Tracked {
  id: number;
  meta: BitmapMeta;
  /** The leaf words as of the last frame. */
  shadow: Uint32Array;
}

/** Appends the runs of set bits of `pick(w)` over words [lo, hi], as granule ranges. */
function runsOf(lo: number, hi: number, pick: (w: number) => number, out: Range[]): void {
  let start = -1;
  for (let w = lo; w <= hi; w++) {
    const bits = pick(w);
    // Whole words extend or skip a run without looking at their bits.
    if (bits === 0xffffffff) {
      if (start < 0) start = w * 32;
      continue;
    }
    if (bits === 0 && start < 0) continue;
    for (let b = 0; b < 32; b++) {
      const on = (bits >>> b) & 1;
      if (on && start < 0) start = w * 32 + b;
      else if (!on && start >= 0) {
        out.push([start, w * 32 + b]);
        start = -1;
      }
    }
  }
  if (start >= 0) out.push([start, (hi + 1) * 32]);
}

export class Recorder {
  readonly frames: Frame[] = [];
  private readonly tracked = new Map<DirtyBitmap, Tracked>();
  private nextId = 1;
  private pendingEvents: Frame['events'] = [];
  private pendingWrites: WriteRecord[] = [];
  private writeCount = 0;
  private readonly lineages = new Map<string, Lineage>();
  step = 0;
  narration: string | undefined;
  /** Called with each frame as it is recorded. */
  onFrame: ((frame: Frame) => void) | undefined;

  constructor(private readonly engine: Engine) {
    engine.onEvent((event) => {
      if (event.kind === 'qmp') {
        this.pendingEvents.push({ event: event.name, data: event.data });
        this.cut({ kind: 'event', label: event.name, detail: event.data });
      } else if (event.name === 'command') {
        this.cut({ kind: 'command', label: String(event.data.execute) });
      } else if (event.name === 'guest-write') {
        this.guestWrote(event.data as { node: string; kind: string; offset: number; bytes: number });
        this.cut({ kind: 'io', label: `${event.data.kind} ${event.data.node}`, detail: event.data });
      } else if (event.name === 'copy') {
        this.copied(event.data as { source: string; target: string; offset: number; bytes: number; zeroes: boolean });
        this.cut({ kind: 'trace', label: 'copy', detail: event.data });
      } else {
        this.cut({ kind: 'trace', label: event.name, detail: event.data });
      }
    });
    engine.scheduler.onStep = (label) => this.cut({ kind: 'task', label }, true);
    this.cut({ kind: 'start', label: 'start' });
  }

  /** A guest write, numbered so the UI can colour the clusters it produced; zeroes and discards number 0. */
  private guestWrote({ node, kind, offset, bytes }: { node: string; kind: string; offset: number; bytes: number }): void {
    const write = kind === 'write' ? ++this.writeCount : 0;
    this.lineageOf(node).set(offset, offset + bytes, write);
    this.pendingWrites.push({ node, offset, bytes, write, kind: 'guest' });
  }

  /** A chunk copied to the target carries the source's data: the writes that produced it. */
  private copied({ source, target, offset, bytes, zeroes }: { source: string; target: string; offset: number; bytes: number; zeroes: boolean }): void {
    const from = zeroes ? [[offset, offset + bytes, 0] as const] : this.lineageOf(source).read(offset, offset + bytes);
    for (const [start, end, write] of from) {
      this.lineageOf(target).set(start, end, write);
      this.pendingWrites.push({ node: target, offset: start, bytes: end - start, write, kind: 'copy' });
    }
  }

  private lineageOf(node: string): Lineage {
    let lineage = this.lineages.get(node);
    if (!lineage) this.lineages.set(node, (lineage = new Lineage()));
    return lineage;
  }

  /**
   * Closes the current frame. Task steps that changed nothing are dropped, so
   * the timeline holds only steps a person can see.
   */
  cut(cause: FrameCause, dropIfEmpty = false): void {
    const bitmaps = this.bitmapChanges();
    const jobs = this.jobStates();
    const previous = this.frames.at(-1);
    const jobsChanged = !previous || JSON.stringify(previous.jobs) !== JSON.stringify(jobs);
    const narrationChanged = previous?.narration !== this.narration;
    const empty = !bitmaps.length && !this.pendingWrites.length && !this.pendingEvents.length && !jobsChanged && !narrationChanged;
    if (dropIfEmpty && empty) return;
    this.frames.push({
      index: this.frames.length,
      time: this.engine.scheduler.now,
      cause,
      step: this.step,
      ...(this.narration !== undefined && { narration: this.narration }),
      bitmaps,
      writes: this.pendingWrites,
      jobs,
      events: this.pendingEvents,
    });
    this.pendingWrites = [];
    this.pendingEvents = [];
    this.onFrame?.(this.frames[this.frames.length - 1]);
  }

  /** The id frames use for a live bitmap. */
  idOf(bitmap: DirtyBitmap): number | undefined {
    return this.tracked.get(bitmap)?.id;
  }

  private jobStates(): JobState[] {
    return this.engine.jobs.map((job) => ({
      id: job.id,
      type: job.type,
      ...(job instanceof BackupJob && { source: job.source.nodeName, target: job.target.nodeName }),
      status: job.status,
      current: job.progress.current,
      total: job.progress.total,
      speed: job.speed,
      ...(job.errorText !== undefined && job.ret !== 0 && { error: job.errorText }),
    }));
  }

  /** Roles of the bitmaps a backup job uses, as the UI labels its lanes. */
  private roles(): Map<DirtyBitmap, BitmapRole> {
    const roles = new Map<DirtyBitmap, BitmapRole>();
    for (const job of this.engine.jobs) {
      if (!(job instanceof BackupJob) || job.status === 'null') continue;
      if (job.bitmap) roles.set(job.bitmap, 'sync');
      if (job.bitmap?.successor) roles.set(job.bitmap.successor, 'successor');
      roles.set(job.cbw.bcs.copyBitmap, 'copy');
      roles.set(job.cbw.doneBitmap, 'cbw-done');
      roles.set(job.cbw.accessBitmap, 'cbw-access');
    }
    return roles;
  }

  private bitmapChanges(): BitmapChange[] {
    const changes: BitmapChange[] = [];
    const roles = this.roles();
    const alive = new Set<DirtyBitmap>();
    for (const node of this.engine.graph.list()) {
      for (const bitmap of node.bitmaps) {
        alive.add(bitmap);
        const meta = this.metaOf(bitmap, node.nodeName, roles.get(bitmap) ?? (bitmap.name === undefined ? 'anonymous' : 'named'));
        const change = this.track(bitmap, meta);
        if (change) changes.push(change);
      }
    }
    for (const [bitmap, tracked] of this.tracked) {
      if (alive.has(bitmap)) continue;
      const cleared: Range[] = [];
      runsOf(0, tracked.shadow.length - 1, (w) => tracked.shadow[w], cleared);
      changes.push({ id: tracked.id, before: tracked.meta, set: [], cleared });
      this.tracked.delete(bitmap);
    }
    return changes;
  }

  private metaOf(bitmap: DirtyBitmap, node: string, role: BitmapRole): BitmapMeta {
    return {
      id: this.tracked.get(bitmap)?.id ?? this.nextId,
      node,
      ...(bitmap.name !== undefined && { name: bitmap.name }),
      role,
      granularity: bitmap.granularity,
      size: bitmap.size,
      disabled: bitmap.disabled,
      recording: bitmap.recording,
      busy: bitmap.busy,
      persistent: bitmap.persistent,
      inconsistent: bitmap.inconsistent,
      count: bitmap.count,
    };
  }

  /** The granules that flipped since the last frame, from the words the bitmap touched. */
  private track(bitmap: DirtyBitmap, meta: BitmapMeta): BitmapChange | undefined {
    let tracked = this.tracked.get(bitmap);
    const words = bitmap.bits.words();
    const isNew = !tracked;
    if (!tracked) {
      tracked = { id: this.nextId++, meta, shadow: new Uint32Array(words.length) };
      this.tracked.set(bitmap, tracked);
      bitmap.bits.takeTouched();
    }
    const set: Range[] = [];
    const cleared: Range[] = [];
    const touched = isNew ? [0, words.length - 1] : bitmap.bits.takeTouched();
    if (touched) {
      const [lo, hi] = touched;
      const shadow = tracked.shadow;
      runsOf(lo, hi, (w) => (words[w] & ~shadow[w]) >>> 0, set);
      runsOf(lo, hi, (w) => (shadow[w] & ~words[w]) >>> 0, cleared);
      shadow.set(words.subarray(lo, hi + 1), lo);
    }
    const before = tracked.meta;
    const metaChanged = isNew || JSON.stringify(before) !== JSON.stringify(meta);
    tracked.meta = meta;
    if (!metaChanged && !set.length && !cleared.length) return undefined;
    return { id: tracked.id, meta, ...(!isNew && { before }), set, cleared };
  }
}
