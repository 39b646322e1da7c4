/** `bitmap-lab inspect IMAGE`: what an image holds, its backing chain and its persistent bitmaps. Read-only. */
import { inspectImage, type ImageReport } from '../engine/image-report';
import { QmpError } from '../engine/qmp-error';
import { human } from './run';

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
  let images: ImageReport[];
  try {
    images = inspectImage(file);
  } catch (error) {
    if (!(error instanceof QmpError)) throw error;
    process.stderr.write(`bitmap-lab inspect: ${error.desc}\n`);
    process.exitCode = 1;
    return;
  }
  if (options.json) process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
  else print(images);
}
