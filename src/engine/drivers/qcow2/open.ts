/**
 * Reading an image's header, extensions and tables on open
 * (qcow2_do_open()), with QEMU's checks in QEMU's order and QEMU's
 * messages, into the state the driver works with.
 */
import { SECTOR, type BlkdebugEvent, type BlockNode, type CommonNodeOptions } from '../../block-node';
import { genericError } from '../../qmp-error';
import { describeError } from './errors';
import {
  AUTOCLEAR,
  AUTOCLEAR_MASK,
  COMPAT_LAZY_REFCOUNTS,
  COMPRESSION,
  CRYPT,
  HEADER_SIZE,
  INCOMPAT,
  INCOMPAT_MASK,
  QCOW_MAX_L1_SIZE,
  QCOW_MAX_REFTABLE_SIZE,
  QCOW_MAX_SNAPSHOTS,
  SNAPSHOT_HEADER_SIZE,
  checkBackingFileName,
  checkCompressionType,
  checkHeaderStart,
  cString,
  parseExtensions,
  parseHeader,
  unsupportedFeatureMessage,
  validateTable,
  type Extensions,
} from './format';
import { createCaches, overlapTemplate, readCacheSizes, type Qcow2OpenConfig, type Qcow2Options } from './options';
import { Refcounts } from './refcounts';
import { readSnapshots } from './snapshots';
import { Qcow2State } from './state';
const INT_MAX = 2 ** 31 - 1;

/** Reads `bytes` at `offset`, zero-filling past the end of the node. */
export function readClipped(node: BlockNode, offset: number, bytes: number): Uint8Array {
  const length = node.length;
  if (offset >= length) return new Uint8Array(bytes);
  if (offset + bytes <= length) return node.read(offset, bytes);
  const buffer = new Uint8Array(bytes);
  buffer.set(node.read(offset, length - offset));
  return buffer;
}

export interface ReadImage {
  s: Qcow2State;
  options: Qcow2Options;
  /** Unknown autoclear bits or a dropped bitmaps extension: the header must be rewritten. */
  updateHeader: boolean;
}

/** Everything qcow2_do_open() does before the persistent bitmaps are loaded. */
export function readImage(
  file: BlockNode,
  common: CommonNodeOptions,
  config: Qcow2OpenConfig,
  warn: (message: string) => void,
): ReadImage {
  let headerBytes: Uint8Array;
  try {
    headerBytes = readClipped(file, 0, HEADER_SIZE);
  } catch (error) {
    throw genericError(`Could not read qcow2 header: ${describeError(error)}`);
  }
  const magic = new DataView(headerBytes.buffer, headerBytes.byteOffset).getUint32(0);
  const header = parseHeader(headerBytes);
  checkHeaderStart(magic, header);
  const cs = 2 ** header.clusterBits;
  let unknownHeaderFields: Uint8Array = new Uint8Array(0);
  if (header.headerLength > HEADER_SIZE) {
    try {
      unknownHeaderFields = readClipped(file, HEADER_SIZE, header.headerLength - HEADER_SIZE);
    } catch (error) {
      throw genericError(`Could not read unknown qcow2 header fields: ${describeError(error)}`);
    }
  }
  const extEnd = header.backingFileOffset ? Number(header.backingFileOffset) : cs;
  checkCompressionType(header);
  const readExtension = (offset: number, bytes: number): Uint8Array => {
    try {
      return readClipped(file, offset, bytes);
    } catch (error) {
      throw genericError(`qcow2_read_extension: ERROR: pread fail from offset ${offset}: ${describeError(error)}`);
    }
  };
  const unsupported = header.incompatibleFeatures & ~INCOMPAT_MASK;
  if (unsupported) {
    const partial: Extensions = { bitmapsDropped: false, unknown: [] };
    try {
      parseExtensions(readExtension, header.headerLength, extEnd, header.cryptMethod, header.autoclearFeatures, cs, true, partial);
    } catch {
      // QEMU reads the feature table with errors ignored.
    }
    throw genericError(unsupportedFeatureMessage(partial.featureTable, unsupported));
  }
  if (header.incompatibleFeatures & INCOMPAT.corrupt && !common.readOnly) {
    throw genericError('qcow2: Image is corrupt; cannot be opened read/write');
  }
  if (header.incompatibleFeatures & INCOMPAT.extendedL2) {
    if (cs / 32 < 512) throw genericError(`Unsupported subcluster size: ${cs / 32}`);
    throw genericError('Bitmap Lab does not support qcow2 images with extended L2 entries');
  }
  if (header.refcountOrder > 6) throw genericError('Reference count entry width too large; may not exceed 64 bits');
  if (header.cryptMethod === CRYPT.aes) {
    throw genericError('Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators');
  }
  if (header.refcountTableClusters === 0) throw genericError('Image does not contain a reference count table');
  validateTable(header.refcountTableOffset, header.refcountTableClusters, cs, QCOW_MAX_REFTABLE_SIZE, cs, 'Reference count table');
  validateTable(
    header.snapshotsOffset,
    header.nbSnapshots,
    SNAPSHOT_HEADER_SIZE,
    SNAPSHOT_HEADER_SIZE * QCOW_MAX_SNAPSHOTS,
    cs,
    'Snapshot table',
  );
  validateTable(header.l1TableOffset, header.l1Size, 8, QCOW_MAX_L1_SIZE, cs, 'Active L1 table');
  const l2Bits = header.clusterBits - 3;
  const l1Shift = BigInt(header.clusterBits + l2Bits);
  const l1VmStateIndex = (header.size + (1n << l1Shift) - 1n) >> l1Shift;
  if (l1VmStateIndex > BigInt(INT_MAX)) throw genericError('Image is too big');
  if (BigInt(header.l1Size) < l1VmStateIndex) throw genericError('L1 table is too small');
  if (header.size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw genericError(`Bitmap Lab supports virtual sizes up to ${Number.MAX_SAFE_INTEGER} bytes, not ${header.size}`);
  }
  // Beyond QEMU (which reads zeroes there): tables past the end of the file mean a broken image.
  const l1Offset = Number(header.l1TableOffset);
  if (header.l1Size > 0 && l1Offset + header.l1Size * 8 > file.length) {
    throw genericError('Active L1 table lies beyond the end of the image file');
  }
  const refcountTableOffset = Number(header.refcountTableOffset);
  const refcountTableBytes = header.refcountTableClusters * cs;
  if (refcountTableOffset + refcountTableBytes > file.length) {
    throw genericError('Reference count table lies beyond the end of the image file');
  }
  let l1Bytes: Uint8Array;
  try {
    l1Bytes = readClipped(file, l1Offset, header.l1Size * 8);
  } catch (error) {
    throw genericError(`Could not read L1 table: ${describeError(error)}`);
  }

  const options = config.options ?? {};
  const lazyRefcounts = options['lazy-refcounts'] ?? (header.compatibleFeatures & COMPAT_LAZY_REFCOUNTS) !== 0n;
  const diskSize = Number(header.size);
  const caches = readCacheSizes(options, cs, Math.floor(diskSize / SECTOR) * SECTOR);
  if (lazyRefcounts && header.version < 3) {
    throw genericError('Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility level');
  }
  const overlapCheck = overlapTemplate(options['overlap-check']);
  if (header.cryptMethod === CRYPT.luks) throw genericError('Bitmap Lab does not open encrypted qcow2 images');
  if (header.cryptMethod !== CRYPT.none) throw genericError(`Unsupported encryption method ${header.cryptMethod}`);
  if (header.compressionType === COMPRESSION.zstd) {
    throw genericError('Bitmap Lab does not support zstd-compressed qcow2 images');
  }

  const writable = !common.readOnly;
  const s = new Qcow2State(
    file,
    header.version,
    header.clusterBits,
    header.refcountOrder,
    header.cryptMethod,
    header.compressionType,
    diskSize,
    { incompatible: header.incompatibleFeatures, compatible: header.compatibleFeatures, autoclear: header.autoclearFeatures },
    writable,
    (event: BlkdebugEvent) => file.debugEvent(event),
    (report) => {
      const verb = report.fatal ? 'Marking image as corrupt' : 'Image is corrupt';
      const tail = report.fatal ? 'further corruption events will be suppressed' : 'further non-fatal corruption events will be suppressed';
      warn(`qcow2: ${verb}: ${report.message}; ${tail}`);
      config.onCorruption?.(report);
    },
  );
  s.unknownHeaderFields = unknownHeaderFields;
  s.l1TableOffset = l1Offset;
  s.l1VmStateIndex = Number(l1VmStateIndex);
  const l1View = new DataView(l1Bytes.buffer, l1Bytes.byteOffset, l1Bytes.byteLength);
  s.l1Table = new BigUint64Array(header.l1Size);
  for (let i = 0; i < header.l1Size; i++) s.l1Table[i] = l1View.getBigUint64(i * 8);
  s.useLazyRefcounts = lazyRefcounts;
  s.overlapCheck = overlapCheck;
  s.discardPassthrough.request = options['pass-discard-request'] ?? common.discardUnmap;
  s.discardPassthrough.snapshot = options['pass-discard-snapshot'] ?? true;
  s.discardPassthrough.other = options['pass-discard-other'] ?? false;
  createCaches(s, caches);

  let refcountTable: Uint8Array;
  try {
    s.event('reftable_load');
    refcountTable = readClipped(file, refcountTableOffset, refcountTableBytes);
  } catch (error) {
    throw genericError(`Could not initialize refcount handling: ${describeError(error)}`);
  }
  s.refcounts = new Refcounts(s, refcountTableOffset, refcountTable);

  const ext = parseExtensions(readExtension, header.headerLength, extEnd, header.cryptMethod, header.autoclearFeatures, cs);
  if (ext.bitmapsDropped) {
    warn(
      header.version < 3
        ? 'This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent'
        : 'a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent',
    );
    warn("Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.");
  }
  if (header.incompatibleFeatures & INCOMPAT.dataFile) {
    throw genericError('Bitmap Lab does not support qcow2 images with an external data file');
  }
  if (header.autoclearFeatures & AUTOCLEAR.dataFileRaw) throw genericError('data-file-raw requires a data file');
  s.backingFormat = ext.backingFormat;
  s.unknownExtensions = ext.unknown;
  s.bitmapsExt = ext.bitmaps;

  if (header.backingFileOffset !== 0n) {
    checkBackingFileName(header, cs);
    const offset = Number(header.backingFileOffset);
    try {
      s.backingFile = cString(readClipped(file, offset, header.backingFileSize));
    } catch (error) {
      throw genericError(`Could not read backing file name: ${describeError(error)}`);
    }
  }
  s.snapshotsOffset = Number(header.snapshotsOffset);
  s.snapshots = readSnapshots((offset, bytes) => s.readFile(offset, bytes), s.snapshotsOffset, header.nbSnapshots);

  let updateHeader = ext.bitmapsDropped || (s.autoclearFeatures & ~AUTOCLEAR_MASK) !== 0n;
  updateHeader = updateHeader && writable;
  if (updateHeader) s.autoclearFeatures &= AUTOCLEAR_MASK;

  return { s, options, updateHeader };
}
