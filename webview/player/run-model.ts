/**
 * One recorded run, ready to draw at any frame: its lanes' contents there and
 * what that frame changed in each. Bitmaps come from the engine's Timeline
 * (deltas and snapshots), data from GuestDataTrack.
 */
import type { BitmapMeta, Frame } from '../../src/engine/timeline/frame';
import { Timeline } from '../../src/engine/timeline/timeline';
import { cleanupsOf, type Cleanup } from './cleanup';
import { GuestDataTrack } from './guest-data';
import { laneKeyOf, scanLanes, type LaneSpec } from './lanes';
import { markersOf, type Marker } from './markers';
import { bitRuns, differences, regranulate, union, type ValueRun } from './ranges';
import type { RecordedRun } from './runs-format';

export interface LaneState {
  spec: LaneSpec;
  /** The bitmap the lane shows; absent when there is none (N and C outside a job). */
  meta?: BitmapMeta;
  runs: ValueRun[];
  /** Target only: granules taken from C and not yet copied. */
  inFlight?: ValueRun[];
  /** Target only: the backup job whose target the lane shows, and that node. */
  job?: string;
  targetNode?: string;
  /** More than one bitmap is drawn in the lane (several jobs at once). */
  merged?: true;
}

export interface FrameView {
  index: number;
  frame: Frame;
  lanes: LaneState[];
  /** Per lane key: granules this frame changed, valued 1 where set and 0 where cleared. */
  changed: Map<string, ValueRun[]>;
}

/** Enough for a step in either direction to reuse the frame it comes from. */
const CACHED_FRAMES = 3;

export class RunModel {
  readonly frames: readonly Frame[];
  readonly lanes: LaneSpec[];
  readonly markers: Marker[];
  readonly cleanups: Cleanup[];
  private readonly timeline: Timeline;
  private readonly guestData: GuestDataTrack;
  private readonly cache = new Map<number, LaneState[]>();

  constructor(readonly run: RecordedRun) {
    this.frames = run.frames;
    this.timeline = new Timeline(run.frames);
    this.lanes = scanLanes(run.frames);
    this.guestData = new GuestDataTrack(run.frames, this.lanes.filter((lane) => lane.role === 'source'));
    this.markers = markersOf(run.frames);
    this.cleanups = cleanupsOf(this);
  }

  get length(): number {
    return this.frames.length;
  }

  view(index: number): FrameView {
    const lanes = this.lanesAt(index);
    const before = index > 0 ? this.lanesAt(index - 1) : undefined;
    const changed = new Map<string, ValueRun[]>();
    const frame = this.frames[index];
    lanes.forEach((lane, i) => {
      const previous = before?.[i];
      const runs = this.recordedChange(frame, lane, previous) ?? differences(previous?.runs ?? [], lane.runs);
      const inFlight = differences(previous?.inFlight ?? [], lane.inFlight ?? []);
      changed.set(lane.spec.key, inFlight.length ? union(runs, inFlight) : runs);
    });
    return { index, frame, lanes, changed };
  }

  /**
   * When a lane shows the same single bitmap as in the previous frame, the
   * frame's own record of flipped granules is what changed, and it costs what
   * the change costs instead of a pass over every extent.
   */
  private recordedChange(frame: Frame, lane: LaneState, previous: LaneState | undefined): ValueRun[] | undefined {
    if (!lane.meta || lane.merged || previous?.meta?.id !== lane.meta.id || previous.merged) return undefined;
    const change = frame.bitmaps.find((c) => c.id === lane.meta!.id);
    if (!change) return [];
    const { granularity } = lane.meta;
    const flipped: ValueRun[] = [
      ...change.set.map(([start, end]): ValueRun => [start, end, 1]),
      ...change.cleared.map(([start, end]): ValueRun => [start, end, 0]),
    ].sort((a, b) => a[0] - b[0]);
    return regranulate(flipped, granularity, lane.spec.granularity);
  }

  /** Every lane's contents after frame `index`. */
  lanesAt(index: number): LaneState[] {
    const cached = this.cache.get(index);
    if (cached) return cached;
    const { bitmaps } = this.timeline.seek(index);
    const byKey = new Map<string, LaneState>(this.lanes.map((spec) => [spec.key, { spec, runs: [] }]));
    for (const { meta, bits } of bitmaps.values()) {
      const key = laneKeyOf(meta);
      const lane = key === undefined ? undefined : byKey.get(key);
      if (!lane) continue;
      const runs = regranulate(bitRuns(bits.extents()), meta.granularity, lane.spec.granularity);
      // Two bitmaps in one lane happen only with several jobs at once; the lane shows both.
      if (lane.meta) Object.assign(lane, { runs: union(lane.runs, runs), merged: true });
      else Object.assign(lane, { runs, meta });
    }
    for (const [node, { source, target, inFlight, job, targetNode }] of this.guestData.at(index)) {
      byKey.get(`source:${node}`)!.runs = source;
      const lane = byKey.get(`target:${node}`);
      if (lane) Object.assign(lane, { runs: target, inFlight, ...(job !== undefined && { job }), ...(targetNode !== undefined && { targetNode }) });
    }
    const lanes = [...byKey.values()];
    this.cache.set(index, lanes);
    if (this.cache.size > CACHED_FRAMES) this.cache.delete(this.cache.keys().next().value!);
    return lanes;
  }
}
