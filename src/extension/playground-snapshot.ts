/** What the playground panel is sent: the engine's nodes and bitmaps, as plain data. */
import type { DirtyBitmap } from '../engine/dirty-bitmap';
import type { Engine } from '../engine/engine';
import { MAX_EXTENTS_PER_BITMAP, PROTOCOL_VERSION, type BitmapView, type Extent, type SnapshotMessage } from '../protocol';

/** Nodes and bitmaps newest first, the order query-named-block-nodes prints them in. */
export function playgroundSnapshot(engine: Engine, maxExtents = MAX_EXTENTS_PER_BITMAP): SnapshotMessage {
  return {
    type: 'snapshot',
    version: PROTOCOL_VERSION,
    nodes: engine.graph.list().map((node) => ({
      nodeName: node.nodeName,
      driver: node.driver,
      length: node.length,
      bitmaps: node.bitmaps.map((bitmap) => bitmapView(bitmap, maxExtents)),
    })),
  };
}

function bitmapView(bitmap: DirtyBitmap, maxExtents: number): BitmapView {
  const { name, size, granularity, count, recording, busy, persistent, inconsistent } = bitmap;
  // dirtyExtents() is lazy, so a huge fragmented bitmap costs only what is sent.
  const extents: Extent[] = [];
  let truncated = false;
  for (const extent of bitmap.dirtyExtents()) {
    if (extents.length === maxExtents) {
      truncated = true;
      break;
    }
    extents.push(extent);
  }
  return {
    ...(name !== undefined && { name }),
    size,
    granularity,
    count,
    recording,
    busy,
    persistent,
    inconsistent,
    extents,
    ...(truncated && { truncated: true }),
  };
}
