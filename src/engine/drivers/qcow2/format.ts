/**
 * The qcow2 on-disk header (docs/interop/qcow2.txt): its fixed fields, the
 * header extensions that follow them, and the checks QEMU's qcow2_do_open()
 * makes of them, in QEMU's order and with QEMU's messages. All integers are
 * big-endian. Nothing here does I/O.
 */
import { genericError } from '../../qmp-error';

export const QCOW_MAGIC = 0x514649fb;
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;
/** sizeof(QCowHeader): the v3 header with the compression type and padding. */
export const HEADER_SIZE = 112;
export const V2_HEADER_SIZE = 72;
export const V3_MIN_HEADER_LENGTH = 104;
const COMPRESSION_TYPE_OFFSET = 104;

export const MiB = 1024 * 1024;
export const QCOW_MAX_REFTABLE_SIZE = 8 * MiB;
export const QCOW_MAX_L1_SIZE = 32 * MiB;
export const QCOW_MAX_SNAPSHOTS = 65536;
export const SNAPSHOT_HEADER_SIZE = 40;
export const QCOW2_MAX_BITMAPS = 65535;
export const QCOW2_MAX_BITMAP_DIRECTORY_SIZE = 1024 * QCOW2_MAX_BITMAPS;

export const INCOMPAT = { dirty: 1n, corrupt: 2n, dataFile: 4n, compression: 8n, extendedL2: 16n } as const;
export const INCOMPAT_MASK = 0x1fn;
export const COMPAT_LAZY_REFCOUNTS = 1n;
export const AUTOCLEAR = { bitmaps: 1n, dataFileRaw: 2n } as const;
export const AUTOCLEAR_MASK = 0x3n;

export const CRYPT = { none: 0, aes: 1, luks: 2 } as const;
export const COMPRESSION = { zlib: 0, zstd: 1 } as const;

export const EXT = {
  end: 0,
  backingFormat: 0xe2792aca,
  featureTable: 0x6803f857,
  cryptoHeader: 0x0537be77,
  bitmaps: 0x23852875,
  dataFile: 0x44415441,
} as const;

/** bs->backing_format is a 16-byte buffer; bs->backing_file 4096. */
const BACKING_FORMAT_BUF = 16;
const BACKING_FILE_BUF = 4096;

export interface Qcow2Header {
  version: number;
  backingFileOffset: bigint;
  backingFileSize: number;
  clusterBits: number;
  size: bigint;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: bigint;
  refcountTableOffset: bigint;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: bigint;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

/** A header extension QEMU does not know: kept and written back. */
export interface UnknownExtension {
  magic: number;
  data: Uint8Array;
}

export interface BitmapsExtension {
  nbBitmaps: number;
  directorySize: number;
  directoryOffset: number;
}

/** What the header extensions say (qcow2_read_extensions()). */
export interface Extensions {
  backingFormat?: string;
  bitmaps?: BitmapsExtension;
  /** The bitmaps extension was there but the autoclear bit was not: drop it. */
  bitmapsDropped: boolean;
  /** QEMU inserts unknown extensions at the head of its list: newest first. */
  unknown: UnknownExtension[];
  featureTable?: Uint8Array;
}

const decoder = new TextDecoder('latin1');
const encoder = new TextEncoder();

/** Bytes up to the first NUL, as C string functions see them. */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

export function encodeString(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The fixed header fields; v2 images get QEMU's defaults for the v3 ones. */
export function parseHeader(bytes: Uint8Array): Qcow2Header {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4);
  const v3 = version !== 2;
  const header: Qcow2Header = {
    version,
    backingFileOffset: view.getBigUint64(8),
    backingFileSize: view.getUint32(16),
    clusterBits: view.getUint32(20),
    size: view.getBigUint64(24),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: view.getBigUint64(40),
    refcountTableOffset: view.getBigUint64(48),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    snapshotsOffset: view.getBigUint64(64),
    incompatibleFeatures: v3 ? view.getBigUint64(72) : 0n,
    compatibleFeatures: v3 ? view.getBigUint64(80) : 0n,
    autoclearFeatures: v3 ? view.getBigUint64(88) : 0n,
    refcountOrder: v3 ? view.getUint32(96) : 4,
    headerLength: v3 ? view.getUint32(100) : V2_HEADER_SIZE,
    compressionType: 0,
  };
  header.compressionType = header.headerLength > COMPRESSION_TYPE_OFFSET ? bytes[COMPRESSION_TYPE_OFFSET] : COMPRESSION.zlib;
  return header;
}

/** The first checks of qcow2_do_open(), up to the feature bits. */
export function checkHeaderStart(magic: number, header: Qcow2Header): void {
  if (magic !== QCOW_MAGIC) throw genericError('Image is not in qcow2 format');
  if (header.version < 2 || header.version > 3) throw genericError(`Unsupported qcow2 version ${header.version}`);
  if (header.clusterBits < MIN_CLUSTER_BITS || header.clusterBits > MAX_CLUSTER_BITS) {
    throw genericError(`Unsupported cluster size: 2^${header.clusterBits}`);
  }
  const clusterSize = 2 ** header.clusterBits;
  if (header.version === 3 && header.headerLength < V3_MIN_HEADER_LENGTH) throw genericError('qcow2 header too short');
  if (header.headerLength > clusterSize) throw genericError('qcow2 header exceeds cluster size');
  if (header.backingFileOffset > BigInt(clusterSize)) throw genericError('Invalid backing file offset');
}

/** validate_compression_type(). */
export function checkCompressionType(header: Qcow2Header): void {
  const type = header.compressionType;
  if (type !== COMPRESSION.zlib && type !== COMPRESSION.zstd) {
    throw genericError(`qcow2: unknown compression type: ${type}`);
  }
  const flagged = (header.incompatibleFeatures & INCOMPAT.compression) !== 0n;
  if (type === COMPRESSION.zlib && flagged) {
    throw genericError('qcow2: Compression type incompatible feature bit must not be set');
  }
  if (type !== COMPRESSION.zlib && !flagged) {
    throw genericError('qcow2: Compression type incompatible feature bit must be set');
  }
}

/** report_unsupported_feature(): names from the image's feature table, then the rest. */
export function unsupportedFeatureMessage(featureTable: Uint8Array | undefined, mask: bigint): string {
  const names: string[] = [];
  if (featureTable) {
    // Entries of 48 bytes: type, bit number, 46-byte name; a NUL name ends the table.
    for (let at = 0; at + 48 <= featureTable.length; at += 48) {
      if (featureTable[at + 2] === 0) break;
      const bit = 1n << BigInt(featureTable[at + 1]);
      if (featureTable[at] === 0 && featureTable[at + 1] < 64 && (mask & bit) !== 0n) {
        names.push(cString(featureTable.subarray(at + 2, at + 48)));
        mask &= ~bit;
      }
    }
  }
  if (mask !== 0n) names.push(`Unknown incompatible feature: ${mask.toString(16)}`);
  return `Unsupported qcow2 feature(s): ${names.join(', ')}`;
}

/** qcow2_validate_table(). */
export function validateTable(
  offset: bigint,
  entries: number | bigint,
  entryLength: number,
  maxBytes: number,
  clusterSize: number,
  name: string,
): void {
  const count = BigInt(entries);
  if (count > BigInt(Math.floor(maxBytes / entryLength))) throw genericError(`${name} too large`);
  const INT64_MAX = (1n << 63n) - 1n;
  if (INT64_MAX - count * BigInt(entryLength) < offset || offset % BigInt(clusterSize) !== 0n) {
    throw genericError(`${name} offset invalid`);
  }
}

/**
 * qcow2_read_extensions() between the header and `end`, reading as QEMU
 * does: each extension's 8-byte header, then the data it keeps. The feature
 * table is read only when `wantFeatureTable` (QEMU reads it only to name
 * unsupported features).
 */
export function parseExtensions(
  read: (offset: number, bytes: number) => Uint8Array,
  start: number,
  end: number,
  cryptMethod: number,
  autoclear: bigint,
  clusterSize: number,
  wantFeatureTable = false,
  /** Filled as the extensions are read, so a caller keeps what came before an error. */
  result: Extensions = { bitmapsDropped: false, unknown: [] },
): Extensions {
  let offset = start;
  while (offset < end) {
    const head = read(offset, 8);
    const headView = new DataView(head.buffer, head.byteOffset, 8);
    const magic = headView.getUint32(0);
    const length = headView.getUint32(4);
    offset += 8;
    if (offset > end || length > end - offset) throw genericError('Header extension too large');
    switch (magic) {
      case EXT.end:
        return result;
      case EXT.backingFormat:
        if (length >= BACKING_FORMAT_BUF) {
          throw genericError(`ERROR: ext_backing_format: len=${length} too large (>=${BACKING_FORMAT_BUF})`);
        }
        result.backingFormat = cString(read(offset, length));
        break;
      case EXT.featureTable:
        if (wantFeatureTable) result.featureTable = read(offset, length);
        break;
      case EXT.cryptoHeader: {
        if (cryptMethod !== CRYPT.luks) {
          throw genericError('CRYPTO header extension only expected with LUKS encryption method');
        }
        if (length !== 16) throw genericError(`CRYPTO header extension size ${length}, but expected size 16`);
        const data = read(offset, 16);
        const ext = new DataView(data.buffer, data.byteOffset, 16);
        const cryptoOffset = ext.getBigUint64(0);
        if (cryptoOffset % BigInt(clusterSize) !== 0n) {
          throw genericError(`Encryption header offset '${cryptoOffset}' is not a multiple of cluster size '${clusterSize}'`);
        }
        break;
      }
      case EXT.bitmaps:
        if (length !== 24) throw genericError('bitmaps_ext: Invalid extension length');
        if ((autoclear & AUTOCLEAR.bitmaps) === 0n) {
          // QEMU warns (v2: a longer text) and drops the extension at the next header update.
          result.bitmapsDropped = true;
          break;
        }
        result.bitmaps = parseBitmapsExtension(read(offset, 24), clusterSize);
        break;
      case EXT.dataFile:
        // Read as QEMU reads it; an image that needs it is refused later.
        read(offset, length);
        break;
      default:
        result.unknown.unshift({ magic, data: read(offset, length) });
    }
    offset += (length + 7) & ~7;
  }
  return result;
}

function parseBitmapsExtension(data: Uint8Array, clusterSize: number): BitmapsExtension {
  const view = new DataView(data.buffer, data.byteOffset, 24);
  if (view.getUint32(4) !== 0) throw genericError('bitmaps_ext: Reserved field is not zero');
  const nbBitmaps = view.getUint32(0);
  const directorySize = view.getBigUint64(8);
  const directoryOffset = view.getBigUint64(16);
  if (nbBitmaps > QCOW2_MAX_BITMAPS) {
    throw genericError(
      `bitmaps_ext: Image has ${nbBitmaps} bitmaps, exceeding the QEMU supported maximum of ${QCOW2_MAX_BITMAPS}`,
    );
  }
  if (nbBitmaps === 0) throw genericError('found bitmaps extension with zero bitmaps');
  if (directoryOffset % BigInt(clusterSize) !== 0n) throw genericError('bitmaps_ext: invalid bitmap directory offset');
  if (directorySize > BigInt(QCOW2_MAX_BITMAP_DIRECTORY_SIZE)) {
    throw genericError(
      `bitmaps_ext: bitmap directory size (${directorySize}) exceeds the maximum supported size (${QCOW2_MAX_BITMAP_DIRECTORY_SIZE})`,
    );
  }
  // Offsets past 2^53 cannot be held exactly in a JavaScript number.
  if (directoryOffset > BigInt(Number.MAX_SAFE_INTEGER)) throw genericError('bitmaps_ext: invalid bitmap directory offset');
  return { nbBitmaps, directorySize: Number(directorySize), directoryOffset: Number(directoryOffset) };
}

/** The backing file name checks of qcow2_do_open(). */
export function checkBackingFileName(header: Qcow2Header, clusterSize: number): void {
  const length = header.backingFileSize;
  const room = Math.min(1023, clusterSize - Number(header.backingFileOffset));
  if (length > room || length >= BACKING_FILE_BUF) throw genericError('Backing file name too long');
}

/** The feature table QEMU writes into v3 images with clusters over 4 KiB. */
const FEATURES: Array<[type: number, bit: number, name: string]> = [
  [0, 0, 'dirty bit'],
  [0, 1, 'corrupt bit'],
  [0, 2, 'external data file'],
  [0, 3, 'compression type'],
  [0, 4, 'extended L2 entries'],
  [1, 0, 'lazy refcounts'],
  [2, 0, 'bitmaps'],
  [2, 1, 'raw external data'],
];

function featureTable(): Uint8Array {
  const table = new Uint8Array(FEATURES.length * 48);
  FEATURES.forEach(([type, bit, name], i) => {
    table[i * 48] = type;
    table[i * 48 + 1] = bit;
    table.set(encodeString(name), i * 48 + 2);
  });
  return table;
}

/** What qcow2_update_header() needs to rebuild the first cluster. */
export interface HeaderImage {
  version: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  compressionType: number;
  unknownHeaderFields: Uint8Array;
  backingFormat?: string;
  backingFile?: string;
  bitmaps?: BitmapsExtension;
  unknownExtensions: UnknownExtension[];
}

/** qcow2_update_header(): the whole first cluster, as QEMU writes it. */
export function encodeHeader(image: HeaderImage): Uint8Array {
  const clusterSize = 2 ** image.clusterBits;
  const buf = new Uint8Array(clusterSize);
  const view = new DataView(buf.buffer);
  view.setUint32(0, QCOW_MAGIC);
  view.setUint32(4, image.version);
  view.setUint32(20, image.clusterBits);
  view.setBigUint64(24, BigInt(image.size));
  view.setUint32(32, image.cryptMethod);
  view.setUint32(36, image.l1Size);
  view.setBigUint64(40, BigInt(image.l1TableOffset));
  view.setBigUint64(48, BigInt(image.refcountTableOffset));
  view.setUint32(56, image.refcountTableClusters);
  view.setUint32(60, image.nbSnapshots);
  view.setBigUint64(64, BigInt(image.snapshotsOffset));
  let at: number;
  if (image.version === 2) {
    at = V2_HEADER_SIZE;
  } else {
    view.setBigUint64(72, image.incompatibleFeatures);
    view.setBigUint64(80, image.compatibleFeatures);
    view.setBigUint64(88, image.autoclearFeatures);
    view.setUint32(96, image.refcountOrder);
    view.setUint32(100, HEADER_SIZE + image.unknownHeaderFields.length);
    buf[COMPRESSION_TYPE_OFFSET] = image.compressionType;
    at = HEADER_SIZE;
  }
  const room = (bytes: number): void => {
    if (at + bytes > clusterSize) throw new RangeError('qcow2 header does not fit into the first cluster');
  };
  room(image.unknownHeaderFields.length);
  buf.set(image.unknownHeaderFields, at);
  at += image.unknownHeaderFields.length;
  const extension = (magic: number, data: Uint8Array): void => {
    const padded = (data.length + 7) & ~7;
    room(8 + padded);
    view.setUint32(at, magic);
    view.setUint32(at + 4, data.length);
    buf.set(data, at + 8);
    at += 8 + padded;
  };
  if (image.backingFormat !== undefined) extension(EXT.backingFormat, encodeString(image.backingFormat));
  if (image.version >= 3 && clusterSize > 4096) extension(EXT.featureTable, featureTable());
  if (image.bitmaps && image.bitmaps.nbBitmaps > 0) {
    const data = new Uint8Array(24);
    const ext = new DataView(data.buffer);
    ext.setUint32(0, image.bitmaps.nbBitmaps);
    ext.setBigUint64(8, BigInt(image.bitmaps.directorySize));
    ext.setBigUint64(16, BigInt(image.bitmaps.directoryOffset));
    extension(EXT.bitmaps, data);
  }
  for (const unknown of image.unknownExtensions) extension(unknown.magic, unknown.data);
  extension(EXT.end, new Uint8Array(0));
  if (image.backingFile !== undefined) {
    const name = encodeString(image.backingFile);
    room(name.length);
    buf.set(name, at);
    view.setBigUint64(8, BigInt(at));
    view.setUint32(16, name.length);
  }
  return buf;
}
