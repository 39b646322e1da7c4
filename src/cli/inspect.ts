/** `bitmap-lab inspect IMAGE`: what an image holds, its backing chain and its persistent bitmaps. Read-only. */
import * as path from 'node:path';
import type { BlockNode } from '../engine/block-node';
import { Qcow2Node } from '../engine/drivers/qcow2/qcow2-node';
import { Engine } from '../engine/engine';
import { probeFormat } from '../engine/qmp/block-commands';
import { QmpMonitor } from '../engine/qmp/monitor';
import { human } from './run';

interface ImageReport {
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

function print(images: ImageReport[]): void {
  const out = process.stdout;
  images.forEach((image, depth) => {
    out.write(`${depth ? `\nbacking file (depth ${depth})` : 'image'}: ${image.filename}\n`);
    out.write(`  format ${image.format}, virtual size ${human(image.virtualSize)} (${image.virtualSize} bytes)`);
    out.write(image.clusterSize ? `, cluster size ${human(image.clusterSize)}\n` : '\n');
    if (image.allocation) {
      const { allocated, zero, unallocated } = image.allocation;
      out.write(`  allocated ${human(allocated)}, zero ${human(zero)}, unallocated ${human(unallocated)}\n`);
    }
    if (image.backing) out.write(`  backing file ${image.backing}\n`);
    for (const bitmap of image.bitmaps) {
      const flags = bitmap.flags.length ? bitmap.flags.join(',') : 'none';
      out.write(`  bitmap ${bitmap.name}: granularity ${human(bitmap.granularity)}, flags ${flags}, ${bitmap.inconsistent ? 'inconsistent (in use when last closed)' : `${human(bitmap.count)} dirty`}\n`);
      for (const [start, end] of bitmap.extents.slice(0, 20)) out.write(`    ${start}..${end} (${human(end - start)})\n`);
      if (bitmap.extents.length > 20) out.write(`    ... ${bitmap.extents.length - 20} more extents (--json lists all)\n`);
    }
  });
}

export function inspectCommand(file: string, options: { json?: boolean }): void {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  const filename = path.resolve(file);
  const reply = monitor.execute({
    execute: 'blockdev-add',
    arguments: { driver: probeFormat(filename), 'node-name': 'image', 'read-only': true, file: { driver: 'file', filename } },
  }) as { error?: { desc: string } };
  if (reply.error) {
    process.stderr.write(`bitmap-lab inspect: ${reply.error.desc}\n`);
    process.exitCode = 1;
    return;
  }
  const images: ImageReport[] = [];
  for (let node: BlockNode | undefined = engine.graph.find('image'); node; node = node.children.get('backing')) images.push(report(node));
  if (options.json) process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
  else print(images);
  monitor.execute({ execute: 'quit' });
}
