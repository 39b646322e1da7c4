/**
 * The scenario's `advance` step: lets virtual time pass, one engine step at a
 * time, until a condition holds. Between steps the engine's clock stands
 * still (a rate-limited job sleeps), so this is how a scenario paces a job.
 */
import type { Engine } from '../engine';
import type { QmpEvent } from '../qmp/monitor';
import type { Frame } from '../timeline/frame';
import { bytes, type AdvanceSpec } from './parse';

/** More engine steps than any scenario needs; a condition not met by then never will be. */
export const ADVANCE_LIMIT = 1_000_000;

export interface AdvanceContext {
  engine: Engine;
  /** The timeline so far (frames are cut as the engine steps). */
  frames: Frame[];
  /** QMP events not yet consumed by a `wait` or an `advance` to an event; the runner keeps it current. */
  events: () => QmpEvent[];
  /** Consumes the events up to and including this index. */
  consume: (index: number) => void;
}

/** What the step waits for, in words (tables, timeline, failures). */
export function describeAdvance(spec: AdvanceSpec): string {
  if (spec.frames !== undefined) return `advance ${spec.frames} frame${spec.frames === 1 ? '' : 's'}`;
  if (spec.status !== undefined) return `advance until ${spec.job} is ${spec.status}`;
  if (spec.progress !== undefined) return `advance until ${spec.job} has copied ${spec.progress}`;
  if (spec.event !== undefined) return `advance until ${spec.event}`;
  return `advance until ${spec.bitmap!.node}/${spec.bitmap!.name} changes`;
}

/** The index of the first unconsumed event like `event` with these data members, or -1. */
export function findEvent(events: QmpEvent[], event: string, data: Record<string, unknown> | undefined): number {
  return events.findIndex((e) => e.event === event && Object.entries(data ?? {}).every(([k, v]) => JSON.stringify(e.data[k]) === JSON.stringify(v)));
}

/** A test of the engine's state after each step; true once the step is done. */
function condition(spec: AdvanceSpec, context: AdvanceContext): () => boolean {
  const { engine, frames } = context;
  const start = frames.length;
  if (spec.frames !== undefined) return () => frames.length - start >= spec.frames!;
  if (spec.status !== undefined) return () => engine.findJob(spec.job!)?.status === spec.status;
  if (spec.progress !== undefined) {
    const goal = bytes(spec.progress);
    return () => (engine.findJob(spec.job!)?.progress.current ?? -1) >= goal;
  }
  if (spec.event !== undefined) {
    return () => {
      const index = findEvent(context.events(), spec.event!, spec.data);
      if (index >= 0) context.consume(index);
      return index >= 0;
    };
  }
  const { node, name } = spec.bitmap!;
  // Each frame is looked at once, however long the advance.
  let seen = start;
  return () => {
    for (; seen < frames.length; seen++) {
      const changed = frames[seen].bitmaps.some((change) => {
        const meta = change.meta ?? change.before;
        return meta?.node === node && meta.name === name;
      });
      if (changed) return true;
    }
    return false;
  };
}

/** Why the engine stopped short, with what it holds then. */
function idle(engine: Engine): string {
  const jobs = engine.jobs.map((job) => `${job.id} ${job.status}`).join(', ');
  return `the engine has nothing left to run (${jobs ? `jobs: ${jobs}` : 'no jobs'})`;
}

/**
 * Steps the engine until `spec` holds; returns the failure, if any. A
 * condition that already holds takes no step (except `frames`, which counts
 * from now).
 */
export function advance(spec: AdvanceSpec, context: AdvanceContext): string | undefined {
  const done = condition(spec, context);
  const scheduler = context.engine.scheduler;
  for (let n = 0; n < ADVANCE_LIMIT; n++) {
    if (done()) return undefined;
    if (!scheduler.step()) return `${describeAdvance(spec)}: ${idle(context.engine)}`;
  }
  return done() ? undefined : `${describeAdvance(spec)}: not reached after ${ADVANCE_LIMIT} engine steps`;
}
