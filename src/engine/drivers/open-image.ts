/**
 * Opening an image file the way QEMU opens one by file name: the `file`
 * protocol node, the format probed (or given), the format node, and the
 * backing chain the header names, each backing node read-only, with a depth
 * limit and a loop check QEMU does not have (it relies on file locks).
 */
import * as fs from 'node:fs';
import { type BlockNode, type CommonNodeOptions } from '../block-node';
import { genericError } from '../qmp-error';
import { FileNode } from './file';
import { Qcow2Node, type Qcow2Options } from './qcow2/qcow2-node';
import type { CorruptionReport } from './qcow2/state';
import { RawNode } from './raw';

/** BLOCK_PROBE_BUF_SIZE. */
const PROBE_BYTES = 2048;
export const MAX_BACKING_DEPTH = 256;

/** Formats QEMU would recognise by their magic, which Bitmap Lab cannot open. */
const FOREIGN_MAGIC: Array<[format: string, test: (bytes: Uint8Array) => boolean]> = [
  ['qed', (b) => ascii(b, 0, 4) === 'QED\0'],
  ['vmdk', (b) => ascii(b, 0, 4) === 'KDMV' || ascii(b, 0, 4) === 'COWD' || ascii(b, 0, 21) === '# Disk DescriptorFile'],
  ['vdi', (b) => b.length >= 0x44 && new DataView(b.buffer, b.byteOffset).getUint32(0x40, true) === 0xbeda107f],
  ['vpc', (b) => ascii(b, 0, 8) === 'conectix' || ascii(b, 0, 8) === 'vhdxfile'],
  ['vhdx', (b) => ascii(b, 0, 8) === 'vhdxfile'],
  ['luks', (b) => ascii(b, 0, 6) === 'LUKS\xba\xbe'],
  ['parallels', (b) => ascii(b, 0, 16) === 'WithoutFreeSpace' || ascii(b, 0, 16) === 'WithouFreSpacExt'],
  ['bochs', (b) => ascii(b, 0, 22) === 'Bochs Virtual HD Image'],
];

function ascii(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}

/** Every driver name QEMU 7.2 knows (for "not implemented" versus "unknown"). */
export const KNOWN_FORMATS = new Set([
  'blkdebug', 'blklogwrites', 'blkreplay', 'blkverify', 'bochs', 'cloop', 'compress', 'copy-before-write',
  'copy-on-read', 'dmg', 'file', 'snapshot-access', 'ftp', 'ftps', 'gluster', 'host_cdrom', 'host_device', 'http',
  'https', 'iscsi', 'luks', 'nbd', 'nfs', 'null-aio', 'null-co', 'nvme', 'parallels', 'preallocate', 'qcow',
  'qcow2', 'qed', 'quorum', 'raw', 'rbd', 'replication', 'ssh', 'throttle', 'vdi', 'vhdx', 'vmdk', 'vpc', 'vvfat',
]);

/**
 * find_image_format(): an empty file is raw; otherwise the driver whose
 * probe scores highest on the first 2 KiB (zero-padded), raw scoring least.
 */
export function probeFormat(file: BlockNode): string {
  if (file.length === 0) return 'raw';
  const bytes = new Uint8Array(PROBE_BYTES);
  bytes.set(file.read(0, Math.min(PROBE_BYTES, file.length)));
  const view = new DataView(bytes.buffer);
  if (view.getUint32(0) === 0x514649fb) return view.getUint32(4) >= 2 ? 'qcow2' : 'qcow';
  for (const [format, test] of FOREIGN_MAGIC) if (test(bytes)) return format;
  return 'raw';
}

/** QEMU's path_combine() for a backing file named relative to its image (no normalisation). */
export function backingPath(imagePath: string, backing: string): string {
  if (backing.startsWith('/') || hasProtocol(backing)) return backing;
  const slash = imagePath.lastIndexOf('/');
  return slash < 0 ? backing : imagePath.slice(0, slash + 1) + backing;
}

/** path_has_protocol(): a colon before any slash. */
function hasProtocol(name: string): boolean {
  const colon = name.indexOf(':');
  const slash = name.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash);
}

export interface OpenImageOptions {
  /** The format; probed when absent. */
  format?: string;
  common: CommonNodeOptions;
  /** Name of the format node; auto-named when absent. */
  nodeName?: string;
  /** A name for each implicit node, taken (reserved) as QEMU names it. */
  nameNode: () => string;
  /** Called with each node once it is open, children first. */
  register?: (node: BlockNode) => void;
  qcow2?: Qcow2Options;
  /** BDRV_O_NO_BACKING: the image's backing file is not opened (a backing node is set later). */
  noBacking?: boolean;
  warn?: (message: string) => void;
  onCorruption?: (node: BlockNode, report: CorruptionReport) => void;
}

/** Backing and file children default to discard=unmap and keep the parent's cache mode. */
function childOptions(parent: CommonNodeOptions, readOnly: boolean): CommonNodeOptions {
  return { readOnly, discardUnmap: true, detectZeroes: 'off', cache: { ...parent.cache } };
}

/** Opens `path` and, for qcow2, its backing chain; returns the format node. */
export function openImage(path: string, options: OpenImageOptions): BlockNode {
  return new ChainOpener(options).open(path, options.format, options.common, options.nodeName, []);
}

/**
 * What the blockdev-add layer calls for a qcow2 node over an opened file
 * child: `backing` undefined opens the chain the header names.
 */
export function openQcow2(
  name: string,
  file: BlockNode,
  backing: BlockNode | null | undefined,
  qcow2: Qcow2Options,
  common: CommonNodeOptions,
  context: Omit<OpenImageOptions, 'common' | 'format' | 'nodeName' | 'qcow2'>,
): Qcow2Node {
  const opener = new ChainOpener({ ...context, common, qcow2 });
  return opener.qcow2(name, file, backing, common, filePath(file), []);
}

function filePath(file: BlockNode): string | undefined {
  for (let node: BlockNode | undefined = file; node; node = node.primaryChild) {
    if (node instanceof FileNode) return node.path;
  }
  return undefined;
}

export function realPath(path: string): string {
  try {
    return fs.realpathSync(path);
  } catch {
    return path;
  }
}

class ChainOpener {
  constructor(private readonly options: OpenImageOptions) {}

  open(path: string, format: string | undefined, common: CommonNodeOptions, nodeName: string | undefined, chain: string[]): BlockNode {
    if (chain.length > MAX_BACKING_DEPTH) {
      throw genericError(`Backing chain of '${chain[0]}' is longer than ${MAX_BACKING_DEPTH} images`);
    }
    const file = new FileNode(this.options.nameNode(), path, childOptions(common, common.readOnly));
    // bdrv_fill_options(): a file name opened becomes the protocol node's `filename` option (json: names show it).
    file.options = { filename: path };
    try {
      this.options.register?.(file);
      const probed = format ?? probeFormat(file);
      if (format === undefined && probed === 'raw' && chain.length === 0) {
        this.options.warn?.(
          `WARNING: Image format was not specified for '${path}' and probing guessed raw.\n` +
            '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n' +
            '         Specify the \'raw\' format explicitly to remove the restrictions.',
        );
      }
      const name = nodeName ?? this.options.nameNode();
      let node: BlockNode;
      if (probed === 'qcow2') {
        const backing = this.options.noBacking && chain.length === 0 ? null : undefined;
        node = this.qcow2(name, file, backing, common, path, [...chain, realPath(path)]);
      } else if (probed === 'raw') {
        node = new RawNode(name, file, 0, undefined, common);
      } else if (KNOWN_FORMATS.has(probed)) {
        throw genericError(`Bitmap Lab does not implement the block driver '${probed}' yet`);
      } else {
        throw genericError(`Unknown driver '${probed}'`);
      }
      this.options.register?.(node);
      return node;
    } catch (error) {
      file.close();
      throw error;
    }
  }

  qcow2(
    name: string,
    file: BlockNode,
    backing: BlockNode | null | undefined,
    common: CommonNodeOptions,
    path: string | undefined,
    chain: string[],
  ): Qcow2Node {
    const node: Qcow2Node = Qcow2Node.open(name, file, common, {
      backing,
      options: this.options.qcow2,
      warn: this.options.warn,
      onCorruption: (report) => this.options.onCorruption?.(node, report),
      openBacking: (backingFile, backingFormat) => {
        if (path === undefined) throw genericError(`Cannot open the backing file '${backingFile}' of a node that is no file`);
        if (hasProtocol(backingFile) && !backingFile.startsWith('file:')) {
          throw genericError(`Bitmap Lab opens only files as backing files, not '${backingFile}'`);
        }
        const target = backingPath(path, backingFile.replace(/^file:/, ''));
        const loop = chain.includes(realPath(target)) || realPath(target) === realPath(path);
        if (loop) throw genericError(`Backing file '${backingFile}' creates an infinite loop.`);
        const readOnly = childOptions(common, true);
        return this.open(target, backingFormat || undefined, readOnly, undefined, chain.length ? chain : [realPath(path)]);
      },
    });
    return node;
  }
}
