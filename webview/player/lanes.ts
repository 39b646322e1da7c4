/**
 * Which lanes a recording gets, found once by scanning every frame, so the
 * layout stays still while it plays. A lane follows a role, not a bitmap id:
 * when a backup's cleanup gives the successor N the name bitmap0, the
 * bitmap0 lane shows it, as QEMU's user sees it.
 */
import type { BitmapMeta, Frame } from '../../src/engine/timeline/frame';

export type LaneRole = 'source' | 'named' | 'successor' | 'copy' | 'cbw-done' | 'cbw-access' | 'target';

export interface LaneSpec {
  key: string;
  role: LaneRole;
  /** The node the lane's granules belong to (the filter node for copy-before-write bitmaps). */
  node: string;
  name?: string;
  granularity: number;
  /** Bytes covered. */
  size: number;
  granules: number;
  /** Copy-before-write bitmaps are internal to the filter: drawn only when asked for. */
  optional: boolean;
}

const ORDER: LaneRole[] = ['source', 'named', 'successor', 'copy', 'cbw-done', 'cbw-access', 'target'];

/**
 * The lane a bitmap is drawn in, or undefined for bitmaps a user does not
 * watch (anonymous ones that are not a backup job's).
 */
export function laneKeyOf(meta: BitmapMeta): string | undefined {
  switch (meta.role) {
    case 'sync':
    case 'named':
      return meta.name === undefined ? undefined : `named:${meta.node}/${meta.name}`;
    case 'successor':
    case 'copy':
      return `${meta.role}:${meta.node}`;
    // The filter node is made per job, often with a generated name: one lane for all of them.
    case 'cbw-done':
    case 'cbw-access':
      return meta.role;
    case 'anonymous':
      return undefined;
  }
}

/** A sync bitmap is a named bitmap that a job has frozen. */
const laneRoleOf = (meta: BitmapMeta): LaneRole => (meta.role === 'sync' ? 'named' : (meta.role as LaneRole));

/** Which bitmap names the source node, best first: the node a job syncs, a job copies from, or has a named bitmap. */
const SOURCE_RANK: Partial<Record<BitmapMeta['role'], number>> = { sync: 0, copy: 1, named: 2 };
const sourceRank = (meta: BitmapMeta | undefined) => (meta && SOURCE_RANK[meta.role]) ?? Infinity;

/**
 * Every lane of a recording, in reading order: the source, its named bitmaps
 * (S among them while a job runs), N, C, the filter's bitmaps, the target
 * (when a backup job runs at all).
 */
export function scanLanes(frames: readonly Frame[]): LaneSpec[] {
  const bitmapLanes = new Map<string, LaneSpec>();
  let sourceMeta: BitmapMeta | undefined;
  let backup = false;
  for (const frame of frames) {
    for (const { meta } of frame.bitmaps) {
      if (!meta) continue;
      const key = laneKeyOf(meta);
      if (key === undefined) continue;
      if (sourceRank(meta) < sourceRank(sourceMeta)) sourceMeta = meta;
      backup ||= meta.role === 'copy';
      if (bitmapLanes.has(key)) continue;
      const { node, name, granularity, size } = meta;
      bitmapLanes.set(key, {
        key,
        role: laneRoleOf(meta),
        node,
        ...(name !== undefined && { name }),
        granularity,
        size,
        granules: Math.ceil(size / granularity),
        optional: meta.role === 'cbw-done' || meta.role === 'cbw-access',
      });
    }
  }
  const lanes = [...bitmapLanes.values()];
  if (sourceMeta) {
    const { node, granularity, size } = sourceMeta;
    const data = { node, granularity, size, granules: Math.ceil(size / granularity), optional: false };
    lanes.push({ key: 'source', role: 'source', ...data });
    if (backup) lanes.push({ key: 'target', role: 'target', ...data });
  }
  // The source's own lanes first, then other nodes' in the order they appeared.
  const nodeRank = (lane: LaneSpec) => (lane.node === sourceMeta?.node || lane.optional ? 0 : 1);
  return lanes
    .map((lane, seen) => ({ lane, seen }))
    .sort((a, b) => nodeRank(a.lane) - nodeRank(b.lane) || ORDER.indexOf(a.lane.role) - ORDER.indexOf(b.lane.role) || a.seen - b.seen)
    .map(({ lane }) => lane);
}
