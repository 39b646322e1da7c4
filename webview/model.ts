/**
 * What the view draws, derived from a snapshot: one lane per bitmap, in
 * granules rather than bytes, with what changed since the previous snapshot.
 */
import type { BitmapView, NodeView, SnapshotMessage } from '../src/protocol';

/** Past this many granules a lane is a density strip instead of one SVG cell per granule. */
export const MAX_CELL_GRANULES = 4096;

/** Dirty granules [first, end). */
export type Run = [first: number, end: number];

export interface LaneModel {
  /** Stable across snapshots, so d3 keeps each lane's elements (and focus). */
  key: string;
  nodeName: string;
  bitmap: BitmapView;
  label: string;
  granules: number;
  dirtyGranules: number;
  runs: Run[];
  /** Granules the snapshot describes: all of them unless the extents were truncated. */
  knownGranules: number;
  kind: 'cells' | 'density';
  /** Cells lanes only: 1 per dirty granule. */
  dirty: Uint8Array;
  /** Cells lanes only: 1 per granule whose state differs from the previous snapshot. */
  changed: Uint8Array;
  /** Dirty granules gained since the previous snapshot (negative when cleared), if the lane was there. */
  delta: number | undefined;
}

export interface NodeModel {
  node: NodeView;
  lanes: LaneModel[];
}

export function buildModel(snapshot: SnapshotMessage, previous: ReadonlyMap<string, LaneModel>): NodeModel[] {
  return snapshot.nodes.map((node) => {
    let anonymous = 0;
    const lanes = node.bitmaps.map((bitmap) => {
      // Anonymous bitmaps (a job's successors) are told apart by their order on the node.
      const key = JSON.stringify(bitmap.name === undefined ? [node.nodeName, null, anonymous++] : [node.nodeName, bitmap.name]);
      return laneModel(key, node, bitmap, previous.get(key));
    });
    return { node, lanes };
  });
}

function laneModel(key: string, node: NodeView, bitmap: BitmapView, previous: LaneModel | undefined): LaneModel {
  const { granularity, extents } = bitmap;
  const granules = Math.ceil(bitmap.size / granularity);
  // Extents start on a granule and end on one, or at the bitmap's end.
  const runs = extents.map(([start, end]): Run => [start / granularity, Math.ceil(end / granularity)]);
  const last = runs[runs.length - 1];
  const kind = granules <= MAX_CELL_GRANULES ? 'cells' : 'density';
  const dirty = new Uint8Array(kind === 'cells' ? granules : 0);
  for (const [first, end] of runs) dirty.fill(1, first, end);
  const comparable = previous?.kind === kind && previous.granules === granules;
  const changed = dirty.map((bit, granule) => (comparable && previous.dirty[granule] !== bit ? 1 : 0));
  const dirtyGranules = bitmap.count / granularity;
  return {
    key,
    nodeName: node.nodeName,
    bitmap,
    label: bitmap.name ?? '(anonymous)',
    granules,
    dirtyGranules,
    runs,
    knownGranules: bitmap.truncated && last ? last[1] : granules,
    kind,
    dirty,
    changed,
    delta: previous && dirtyGranules - previous.dirtyGranules,
  };
}

/** Lanes by key, to compare the next snapshot with. */
export const lanesByKey = (nodes: NodeModel[]) =>
  new Map(nodes.flatMap(({ lanes }) => lanes.map((lane) => [lane.key, lane] as const)));

/**
 * Dirty granules per column when `granules` are spread over `columns`:
 * column c holds granules [columnStart(c), columnStart(c + 1)).
 */
export function columnCounts(runs: Run[], granules: number, columns: number): Uint32Array {
  const counts = new Uint32Array(columns);
  for (const [first, end] of runs) {
    for (let granule = first; granule < end; ) {
      const column = columnOf(granule, granules, columns);
      const next = Math.min(end, columnStart(column + 1, granules, columns));
      counts[column] += next - granule;
      granule = next;
    }
  }
  return counts;
}

export const columnStart = (column: number, granules: number, columns: number) => Math.ceil((column * granules) / columns);
export const columnOf = (granule: number, granules: number, columns: number) => Math.floor((granule * columns) / granules);
