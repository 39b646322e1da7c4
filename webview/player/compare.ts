/**
 * Comparing two frames of a run: a pinned frame against the one shown. Per
 * lane, the granules whose state differs, valued 1 where the shown frame has
 * (other) contents there and 0 where it lost them, and the same in words.
 * The pinned frame's lanes are kept with the pin, so stepping does not seek
 * back to it at every frame.
 */
import { countOf, differences, type ValueRun } from './ranges';
import type { LaneState } from './run-model';

export interface Pin {
  index: number;
  lanes: LaneState[];
}

export interface Comparison {
  from: number;
  to: number;
  /** Per lane key: the pinned frame's lane, and where the shown frame differs from it. */
  lanes: Map<string, { pinned: LaneState; differs: ValueRun[] }>;
}

export function compareFrames(pin: Pin, index: number, lanes: readonly LaneState[]): Comparison {
  const pinned = new Map(pin.lanes.map((lane) => [lane.spec.key, lane]));
  const compared = new Map<string, { pinned: LaneState; differs: ValueRun[] }>();
  for (const lane of lanes) {
    const before = pinned.get(lane.spec.key);
    if (before) compared.set(lane.spec.key, { pinned: before, differs: differences(before.runs, lane.runs) });
  }
  return { from: pin.index, to: index, lanes: compared };
}

const isData = (lane: LaneState) => lane.spec.role === 'source' || lane.spec.role === 'target';

/** The lane as the summary names it: short, since every differing lane is listed. */
function shortName({ spec, targetNode }: LaneState): string {
  switch (spec.role) {
    case 'source':
      return `source ${spec.node}`;
    case 'target':
      return targetNode === undefined ? 'target' : `target ${targetNode}`;
    case 'named':
      return spec.name!;
    case 'successor':
      return 'successor N';
    case 'copy':
      return 'copy bitmap C';
    case 'cbw-done':
      return 'copy-before-write done';
    case 'cbw-access':
      return 'copy-before-write access';
  }
}

interface Difference {
  gained: number;
  lost: number;
}

const differenceOf = (differs: readonly ValueRun[]): Difference => ({
  gained: countOf(differs.filter(([, , value]) => value === 1)),
  lost: countOf(differs.filter(([, , value]) => value === 0)),
});

/** "+5 −64": granules gained (or rewritten) and lost since the pinned frame; empty when none differ. */
export function differenceText(differs: readonly ValueRun[]): string {
  const { gained, lost } = differenceOf(differs);
  return [gained && `+${gained.toLocaleString('en-US')}`, lost && `−${lost.toLocaleString('en-US')}`].filter(Boolean).join(' ');
}

/** "frame 12 → 31: bitmap0 +5 −64 granules, copy bitmap C −59 granules, target inc1 +59 clusters", over the lanes shown. */
export function comparisonText(comparison: Comparison, shown: readonly LaneState[]): string {
  const parts = shown.flatMap((lane) => {
    const differs = comparison.lanes.get(lane.spec.key)?.differs ?? [];
    if (!differs.length) return [];
    const { gained, lost } = differenceOf(differs);
    const unit = isData(lane) ? 'cluster' : 'granule';
    return [`${shortName(lane)} ${differenceText(differs)} ${Math.max(gained, lost) === 1 ? unit : `${unit}s`}`];
  });
  return `frame ${comparison.from} → ${comparison.to}: ${parts.length ? parts.join(', ') : 'no lane differs'}`;
}
