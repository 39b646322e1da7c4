/**
 * bdrv_img_create() as drive-backup calls it: the format and backing file
 * checks, the "Formatting ..." line QEMU prints on its stdout, then a new
 * qcow2 or raw image of the given size.
 */
import { genericError } from '../qmp-error';
import { strerror } from '../io-error';
import { KNOWN_FORMATS } from './open-image';
import { createQcow2, createRaw } from './qcow2/create';

export interface NewImage {
  path: string;
  format: string;
  size: number;
  backing?: { file: string; format: string };
}

/**
 * Creates the image; `print` gets what QEMU prints before it creates the
 * file, `checkLocks` runs where the file would be locked.
 */
export function imgCreate(image: NewImage, print: (text: string) => void, checkLocks: () => void): void {
  const { path, format, size, backing } = image;
  if (!KNOWN_FORMATS.has(format)) throw genericError(`Unknown file format '${format}'`);
  if (format !== 'qcow2' && format !== 'raw') {
    throw genericError(`Bitmap Lab does not implement image creation for the format '${format}'`);
  }
  if (backing && format === 'raw') throw genericError("Backing file not supported for file format 'raw'");
  if (backing?.file === path) throw genericError('Error: Trying to create an image with the same filename as the backing file');
  print(`Formatting '${path}', ${formatOptions(image)}\n`);
  checkLocks();
  try {
    if (format === 'raw') createRaw(path, size);
    else createQcow2(path, { size, backingFile: backing?.file, backingFormat: backing?.format });
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).errno;
    if (typeof errno !== 'number') throw error;
    throw genericError(`Could not create '${path}': ${strerror(Math.abs(errno))}`);
  }
}

/** qemu_opts_print() of the creation options, in the order of the driver's option list. */
function formatOptions({ format, size, backing }: NewImage): string {
  if (format === 'raw') return `fmt=raw size=${size}`;
  const backingOptions = backing ? ` backing_file=${backing.file} backing_fmt=${backing.format}` : '';
  return `fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=${size}${backingOptions} lazy_refcounts=off refcount_bits=16`;
}
