/** What an image holds: size, clusters, allocation, backing chain and persistent bitmaps. Opens it read-only. */
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS, type BlockNode } from './block-node';
import { openImage } from './drivers/open-image';
import { Qcow2Node } from './drivers/qcow2/qcow2-node';
import { Engine } from './engine';

export interface ImageReport {
  filename: string;
  format: string;
  virtualSize: number;
  clusterSize?: number;
  allocation?: { allocated: number; zero: number; unallocated: number };
  backing?: string;
  bitmaps: Array<{
    name: string;
    granularity: number;
    flags: string[];
    count: number;
    recording: boolean;
    inconsistent: boolean;
    /** Dirty byte ranges [start, end). */
    extents: Array<[number, number]>;
  }>;
}

function report(node: BlockNode): ImageReport {
  const qcow2 = node instanceof Qcow2Node ? node : undefined;
  const stored = (qcow2?.formatSpecific().data.bitmaps ?? []) as Array<{ name: string; flags: string[] }>;
  return {
    filename: node.filename,
    format: node.driver,
    virtualSize: node.length,
    ...(qcow2 && { clusterSize: qcow2.driverInfo().clusterSize, allocation: qcow2.allocationSummary() }),
    ...(qcow2?.backingFile !== undefined && { backing: qcow2.backingFile }),
    bitmaps: node.bitmaps
      .filter((bitmap) => bitmap.name !== undefined)
      .map((bitmap) => ({
        name: bitmap.name!,
        granularity: bitmap.granularity,
        flags: stored.find((entry) => entry.name === bitmap.name)?.flags ?? [],
        count: bitmap.count,
        recording: bitmap.recording,
        inconsistent: bitmap.inconsistent,
        extents: [...bitmap.dirtyExtents()],
      })),
  };
}

/** The image and each image of its backing chain, top first. */
export function inspectImage(file: string): ImageReport[] {
  const engine = new Engine();
  const top = openImage(path.resolve(file), {
    common: { ...DEFAULT_NODE_OPTIONS, readOnly: true },
    nameNode: () => engine.graph.autoNodeName(),
    register: (node) => engine.graph.add(node),
    warn: () => {},
  });
  engine.graph.setMonitorOwned(top);
  try {
    const images: ImageReport[] = [];
    for (let node: BlockNode | undefined = top; node; node = node.children.get('backing')) images.push(report(node));
    return images;
  } finally {
    engine.graph.closeAll();
  }
}
