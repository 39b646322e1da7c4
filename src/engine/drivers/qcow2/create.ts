/**
 * Image creation as `qemu-img create` does it (qcow2_co_create()): a
 * minimal header and refcount table are written, the image is opened,
 * the first clusters are allocated, the full header is written, the image
 * is grown to its size and given its backing file. Running our own driver
 * through those steps gives the bytes qemu-img writes.
 */
import * as fs from 'node:fs';
import { DEFAULT_NODE_OPTIONS, SECTOR, type CommonNodeOptions } from '../../block-node';
import { ERRNO, IoError } from '../../io-error';
import { genericError } from '../../qmp-error';
import { describeError } from './errors';
import { FileNode } from '../file';
import { backingPath, openImage } from '../open-image';
import { COMPAT_LAZY_REFCOUNTS, HEADER_SIZE, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS, QCOW_MAGIC } from './format';
import { Qcow2Node } from './qcow2-node';

export interface CreateQcow2Options {
  /** Virtual size in bytes; rounded up to 512 as qemu-img does. Taken from the backing file when absent. */
  size?: number;
  clusterSize?: number;
  backingFile?: string;
  backingFormat?: string;
  refcountBits?: number;
  lazyRefcounts?: boolean;
  compat?: '0.10' | '1.1';
}

/** Writes a new qcow2 image at `path` (replacing any file there). */
export function createQcow2(path: string, options: CreateQcow2Options = {}): void {
  const compat = options.compat ?? '1.1';
  if (compat !== '0.10' && compat !== '1.1') throw genericError(`Invalid compatibility level: '${String(compat)}'`);
  const version = compat === '0.10' ? 2 : 3;
  const clusterSize = options.clusterSize ?? 65536;
  const clusterBits = Math.log2(clusterSize);
  if (!Number.isInteger(clusterBits) || clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) {
    throw genericError('Cluster size must be a power of two between 512 and 2048k');
  }
  if (options.backingFormat !== undefined && options.backingFile === undefined) {
    throw genericError('Backing format cannot be used without backing file');
  }
  if (options.backingFile !== undefined && options.backingFormat === undefined) {
    throw genericError('Backing file specified without backing format');
  }
  const lazyRefcounts = options.lazyRefcounts ?? false;
  if (version < 3 && lazyRefcounts) {
    throw genericError('Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)');
  }
  const refcountBits = options.refcountBits ?? 16;
  if (!Number.isInteger(refcountBits) || refcountBits < 1 || refcountBits > 64 || (refcountBits & (refcountBits - 1)) !== 0) {
    throw genericError('Refcount width must be a power of two and may not exceed 64 bits');
  }
  if (version < 3 && refcountBits !== 16) {
    throw genericError(
      'Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)',
    );
  }
  let size = options.size;
  if (options.backingFile !== undefined) {
    const backingSize = backingImageSize(path, options.backingFile, options.backingFormat!);
    size ??= backingSize;
  }
  if (size === undefined) throw genericError('Image creation needs a size parameter');
  if (!Number.isSafeInteger(size) || size < 0) throw genericError(`Invalid image size ${size}`);
  size = Math.ceil(size / SECTOR) * SECTOR;

  // The minimal header and a refcount table with one (empty) refcount block.
  const header = new Uint8Array(clusterSize);
  const view = new DataView(header.buffer);
  view.setUint32(0, QCOW_MAGIC);
  view.setUint32(4, version);
  view.setUint32(20, clusterBits);
  view.setBigUint64(48, BigInt(clusterSize));
  view.setUint32(56, 1);
  view.setUint32(96, Math.log2(refcountBits));
  view.setUint32(100, HEADER_SIZE);
  if (lazyRefcounts) view.setBigUint64(80, COMPAT_LAZY_REFCOUNTS);
  const refcountTable = new Uint8Array(2 * clusterSize);
  new DataView(refcountTable.buffer).setBigUint64(0, BigInt(2 * clusterSize));
  fs.writeFileSync(path, new Uint8Array(0));
  const common: CommonNodeOptions = { ...DEFAULT_NODE_OPTIONS, cache: { direct: false, noFlush: true } };
  const file = new FileNode('#create-file', path, common);
  let node: Qcow2Node | undefined;
  try {
    file.write(0, header);
    file.write(clusterSize, refcountTable);
    node = Qcow2Node.open('#create', file, common, { backing: null });
    node.initialiseNewImage(size, options.backingFile, options.backingFormat);
  } catch (error) {
    node?.close();
    file.close();
    fs.rmSync(path, { force: true });
    if ((error instanceof IoError && error.errno === ERRNO.EFBIG) || describeError(error).endsWith(': File too large')) {
      throw genericError("The image size is too large for file format 'qcow2' (try using a larger cluster size)");
    }
    throw error;
  }
  node.close();
}

/** The virtual size of the backing file, which must open (bdrv_img_create()). */
function backingImageSize(imagePath: string, backingFile: string, backingFormat: string): number {
  let names = 0;
  try {
    const backing = openImage(backingPath(imagePath, backingFile), {
      format: backingFormat,
      common: { ...DEFAULT_NODE_OPTIONS, readOnly: true },
      nameNode: () => `#create-backing${names++}`,
    });
    const size = backing.length;
    backing.close();
    return size;
  } catch (error) {
    throw genericError(`Could not open backing image: ${describeError(error)}`);
  }
}

/** `qemu-img create -f raw`: a sparse file of the given size. */
export function createRaw(path: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw genericError(`Invalid image size ${size}`);
  const fd = fs.openSync(path, 'w');
  try {
    fs.ftruncateSync(fd, size);
  } finally {
    fs.closeSync(fd);
  }
}
