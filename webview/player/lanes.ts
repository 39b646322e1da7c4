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
  /**
   * The node the lane's granules belong to: the filter node for
   * copy-before-write bitmaps, the source for a target lane (which shows the
   * target of that source's backup job).
   */
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

/**
 * Every lane of a recording, in reading order, node by node: a node whose
 * data is drawn (every backup job's source, and any node with a watched
 * bitmap that the guest writes to) gets its source lane, its named bitmaps (S
 * among them while a job runs), N, C, the filter's bitmaps (with the first
 * such node) and, when it is backed up, its target lane. Other nodes' bitmap
 * lanes follow, in the order they appeared.
 */
export function scanLanes(frames: readonly Frame[]): LaneSpec[] {
  const bitmapLanes = new Map<string, LaneSpec>();
  const backupSources: string[] = [];
  const written = new Set<string>();
  for (const frame of frames) {
    for (const job of frame.jobs) if (job.source !== undefined && !backupSources.includes(job.source)) backupSources.push(job.source);
    for (const write of frame.writes) if (write.kind === 'guest') written.add(write.node);
    for (const { meta } of frame.bitmaps) {
      if (!meta) continue;
      const key = laneKeyOf(meta);
      if (key === undefined || bitmapLanes.has(key)) continue;
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
  const watched = lanes.filter((lane) => !lane.optional);
  const dataNodes = [...new Set([...backupSources, ...watched.map((lane) => lane.node).filter((node) => written.has(node))])];
  for (const node of dataNodes) {
    // In the granules of a named bitmap of the node, so the data lines up with the bitmap a user watches.
    const model = watched.find((lane) => lane.node === node && lane.role === 'named') ?? watched.find((lane) => lane.node === node);
    if (!model) continue;
    const { granularity, size, granules } = model;
    const data = { node, granularity, size, granules, optional: false };
    lanes.push({ key: `source:${node}`, role: 'source', ...data });
    if (backupSources.includes(node)) lanes.push({ key: `target:${node}`, role: 'target', ...data });
  }
  const group = (lane: LaneSpec) => {
    if (lane.optional) return 0;
    const at = dataNodes.indexOf(lane.node);
    return at < 0 ? dataNodes.length : at;
  };
  return lanes
    .map((lane, seen) => ({ lane, seen }))
    .sort((a, b) => group(a.lane) - group(b.lane) || ORDER.indexOf(a.lane.role) - ORDER.indexOf(b.lane.role) || a.seen - b.seen)
    .map(({ lane }) => lane);
}
