/**
 * Broken images: every corruption of the header, its extensions, the
 * tables or the bitmap directory ends in a clear error (QEMU's text where
 * QEMU has one, checked against QEMU when it is installed), never in a
 * crash, a hang or unbounded memory. Seeded random damage checks the same
 * over many images.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IoError } from '../../src/engine/io-error';
import { QmpError } from '../../src/engine/qmp-error';
import { QemuProcess } from '../support/qemu';
import { open, scratchDir } from '../support/qemu-img';
import { skipWithout } from '../support/tools';
import { random } from '../support/random';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/qcow2');
const haveQemu = QemuProcess.binary() !== undefined;
const qemuSkip = skipWithout(haveQemu, 'QEMU (qemu-system-x86_64)');

type Patch = (bytes: Buffer) => void;
const u8 = (at: number, value: number): Patch => (b) => b.writeUInt8(value, at);
const u16 = (at: number, value: number): Patch => (b) => b.writeUInt16BE(value, at);
const u32 = (at: number, value: number): Patch => (b) => b.writeUInt32BE(value >>> 0, at);
const u64 = (at: number, value: bigint): Patch => (b) => b.writeBigUInt64BE(value, at);

/** Where the extensions of a fixture start, and the bitmap directory's place. */
function bitmapDirectory(bytes: Buffer): number {
  for (let at = 112; at < 4096; ) {
    const magic = bytes.readUInt32BE(at);
    const length = bytes.readUInt32BE(at + 4);
    if (magic === 0x23852875) return Number(bytes.readBigUInt64BE(at + 8 + 16));
    if (magic === 0) break;
    at += 8 + Math.ceil(length / 8) * 8;
  }
  throw new Error('no bitmaps extension');
}

function bitmapsExtension(bytes: Buffer): number {
  for (let at = 112; at < 4096; ) {
    const magic = bytes.readUInt32BE(at);
    const length = bytes.readUInt32BE(at + 4);
    if (magic === 0x23852875) return at;
    if (magic === 0) break;
    at += 8 + Math.ceil(length / 8) * 8;
  }
  throw new Error('no bitmaps extension');
}

/** A patch relative to the bitmap directory (first entry) of a bitmaps fixture. */
const dirEntry = (field: (at: number) => Patch): Patch => (b) => field(bitmapDirectory(b))(b);
const bitmapsExt = (field: (at: number) => Patch): Patch => (b) => field(bitmapsExtension(b))(b);

interface Case {
  image: string;
  patch: Patch[];
  /** Our message; QEMU's too unless `qemu` says otherwise. */
  message: string | RegExp;
  /** What QEMU says instead (it accepts the image, or we refuse what it supports). */
  qemu?: string | null;
  readOnly?: boolean;
}

const cases: Record<string, Case> = {
  'wrong magic': { image: 'plain.qcow2', patch: [u32(0, 0x12345678)], message: 'Image is not in qcow2 format' },
  'version 1': { image: 'plain.qcow2', patch: [u32(4, 1)], message: 'Unsupported qcow2 version 1' },
  'version 4': { image: 'plain.qcow2', patch: [u32(4, 4)], message: 'Unsupported qcow2 version 4' },
  'cluster bits 8': { image: 'plain.qcow2', patch: [u32(20, 8)], message: 'Unsupported cluster size: 2^8' },
  'cluster bits 22': { image: 'plain.qcow2', patch: [u32(20, 22)], message: 'Unsupported cluster size: 2^22' },
  'header length below 104': { image: 'plain.qcow2', patch: [u32(100, 100)], message: 'qcow2 header too short' },
  'header longer than a cluster': { image: 'plain.qcow2', patch: [u32(100, 65537)], message: 'qcow2 header exceeds cluster size' },
  'backing file offset past the first cluster': {
    image: 'chain-top.qcow2',
    patch: [u64(8, 65537n)],
    message: 'Invalid backing file offset',
  },
  'unknown compression type': { image: 'plain.qcow2', patch: [u8(104, 7)], message: 'qcow2: unknown compression type: 7' },
  'compression bit with zlib': {
    image: 'plain.qcow2',
    patch: [u64(72, 8n)],
    message: 'qcow2: Compression type incompatible feature bit must not be set',
  },
  'zstd without the compression bit': {
    image: 'plain.qcow2',
    patch: [u8(104, 1)],
    message: 'qcow2: Compression type incompatible feature bit must be set',
  },
  'unknown incompatible features': {
    image: 'plain.qcow2',
    patch: [u64(72, (1n << 5n) | (1n << 40n))],
    message: 'Unsupported qcow2 feature(s): Unknown incompatible feature: 10000000020',
  },
  'corrupt bit, read-write': {
    image: 'plain.qcow2',
    patch: [u64(72, 2n)],
    message: 'qcow2: Image is corrupt; cannot be opened read/write',
  },
  'refcount order 7': {
    image: 'plain.qcow2',
    patch: [u32(96, 7)],
    message: 'Reference count entry width too large; may not exceed 64 bits',
  },
  'AES encryption': {
    image: 'plain.qcow2',
    patch: [u32(32, 1)],
    message: 'Use of AES-CBC encrypted qcow2 images is no longer supported in system emulators',
  },
  'no refcount table': {
    image: 'plain.qcow2',
    patch: [u32(56, 0)],
    message: 'Image does not contain a reference count table',
  },
  'refcount table unaligned': {
    image: 'plain.qcow2',
    patch: [u64(48, 65537n)],
    message: 'Reference count table offset invalid',
  },
  'refcount table too large': {
    image: 'plain.qcow2',
    patch: [u32(56, 129)],
    message: 'Reference count table too large',
  },
  'refcount table past the end of the file': {
    image: 'plain.qcow2',
    patch: [u64(48, 1n << 40n)],
    message: 'Reference count table lies beyond the end of the image file',
    qemu: null,
  },
  'refcount table offset overflowing': {
    image: 'plain.qcow2',
    patch: [u64(48, 0xffffffffffff0000n)],
    message: 'Reference count table offset invalid',
  },
  'too many snapshots': { image: 'plain.qcow2', patch: [u32(60, 65537)], message: 'Snapshot table too large' },
  'snapshot table unaligned': {
    image: 'plain.qcow2',
    patch: [u32(60, 1), u64(64, 12345n)],
    message: 'Snapshot table offset invalid',
  },
  'L1 table too large': { image: 'plain.qcow2', patch: [u32(36, 0x400001)], message: 'Active L1 table too large' },
  'L1 table unaligned': { image: 'plain.qcow2', patch: [u64(40, 196609n)], message: 'Active L1 table offset invalid' },
  'L1 table past the end of the file': {
    image: 'plain.qcow2',
    patch: [u64(40, 1n << 40n)],
    message: 'Active L1 table lies beyond the end of the image file',
    qemu: null,
  },
  'L1 table too small for the size': { image: 'plain.qcow2', patch: [u64(24, 1n << 30n)], message: 'L1 table is too small' },
  'a size no L1 table can map': { image: 'plain.qcow2', patch: [u64(24, 1n << 62n)], message: 'Image is too big' },
  'a huge size and a huge L1 table': {
    image: 'plain.qcow2',
    patch: [u64(24, 1n << 60n), u32(36, 0x3fffff)],
    message: 'Image is too big',
  },
  'header extension longer than the cluster': {
    image: 'plain.qcow2',
    patch: [u32(116, 0x7fffffff)],
    message: 'Header extension too large',
  },
  'backing format extension too long': {
    image: 'chain-top.qcow2',
    patch: [u32(116, 16)],
    message: 'ERROR: ext_backing_format: len=16 too large (>=16)',
  },
  'backing file name too long': {
    image: 'chain-top.qcow2',
    patch: [u32(16, 1024)],
    message: 'Backing file name too long',
  },
  'external data file': {
    image: 'plain.qcow2',
    patch: [u64(72, 4n)],
    message: 'Bitmap Lab does not support qcow2 images with an external data file',
    qemu: "'data-file' is required for this image",
  },
  'extended L2 entries': {
    image: 'plain.qcow2',
    patch: [u64(72, 16n)],
    message: 'Bitmap Lab does not support qcow2 images with extended L2 entries',
    qemu: null,
  },
  'raw external data without a data file': {
    image: 'plain.qcow2',
    patch: [u64(88, 2n)],
    message: 'data-file-raw requires a data file',
  },
  'bitmaps extension of the wrong length': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 4, 16))],
    message: 'bitmaps_ext: Invalid extension length',
  },
  'bitmaps extension with a reserved field set': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 12, 1))],
    message: 'bitmaps_ext: Reserved field is not zero',
  },
  'bitmaps extension with no bitmaps': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 8, 0))],
    message: 'found bitmaps extension with zero bitmaps',
  },
  'bitmaps extension with too many bitmaps': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 8, 65536))],
    message: 'bitmaps_ext: Image has 65536 bitmaps, exceeding the QEMU supported maximum of 65535',
  },
  'bitmap directory unaligned': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u64(at + 24, 123n))],
    message: 'bitmaps_ext: invalid bitmap directory offset',
  },
  'bitmap directory too large': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u64(at + 16, 1n << 40n))],
    message: 'bitmaps_ext: bitmap directory size (1099511627776) exceeds the maximum supported size (67107840)',
  },
  'more bitmaps in the directory than in the extension': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 8, 1))],
    message: 'More bitmaps found than specified in header extension',
  },
  'fewer bitmaps in the directory than in the extension': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u32(at + 8, 3))],
    message: 'Less bitmaps found than specified in header extension',
  },
  'bitmap directory size cutting an entry': {
    image: 'bitmaps64k.qcow2',
    patch: [bitmapsExt((at) => u64(at + 16, 20n))],
    message: 'Broken bitmap directory',
  },
  'bitmap entry with extra data': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u32(at + 20, 8))],
    message: 'Bitmap extra data is not supported',
  },
  'bitmap entry with a reserved flag': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u32(at + 12, 4))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap entry of an unknown type': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u8(at + 16, 2))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap granularity below 512': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u8(at + 17, 8))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap granularity over 2 GiB': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u8(at + 17, 32))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap table unaligned': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u64(at, 12345n))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap table of no entries': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u32(at + 8, 0))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap table larger than 512 MiB of data': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u32(at + 8, 8193))],
    message: "Bitmap 'a' doesn't satisfy the constraints",
  },
  'bitmap table too small for the disk': {
    image: 'bitmaps.qcow2',
    patch: [dirEntry((at) => u8(at + 17, 9)), dirEntry((at) => u32(at + 8, 1))],
    message: "Bitmap 'b64k' doesn't satisfy the constraints",
  },
  'bitmap table with a reserved bit': {
    image: 'bitmaps64k.qcow2',
    patch: [(b) => u8(Number(b.readBigUInt64BE(bitmapDirectory(b))) + 7, 2)(b)],
    message: "Could not read bitmap_table table from image for bitmap 'a': Invalid argument",
  },
  'bitmap table the wrong size for the bitmap': {
    image: 'bitmaps64k.qcow2',
    patch: [dirEntry((at) => u32(at + 8, 2))],
    message: "Could not read bitmap 'a' from image: Invalid argument",
  },
  'two bitmaps of the same name': {
    image: 'bitmaps64k.qcow2',
    patch: [(b) => b.write('a', bitmapDirectory(b) + 32 + 24, 'latin1'), (b) => u16(bitmapDirectory(b) + 32 + 18, 1)(b)],
    message: 'Bitmap already exists: a',
  },
};

function damaged(dir: string, name: string, { image, patch }: Case): string {
  const bytes = fs.readFileSync(path.join(FIXTURES, image));
  for (const p of patch) p(bytes);
  const file = path.join(dir, `${name.replace(/\W+/g, '-')}.qcow2`);
  fs.writeFileSync(file, bytes);
  for (const sibling of ['chain-mid.qcow2', 'chain-base.qcow2']) {
    if (!fs.existsSync(path.join(dir, sibling))) fs.copyFileSync(path.join(FIXTURES, sibling), path.join(dir, sibling));
  }
  return file;
}

function ourError(file: string, readOnly: boolean, format: string | undefined = 'qcow2'): string {
  try {
    open(file, { readOnly, format }).close();
  } catch (error) {
    assert.ok(error instanceof QmpError, `a QMP error, not ${String(error)}`);
    return error.desc;
  }
  return 'opened';
}

async function qemuError(file: string, readOnly: boolean): Promise<string> {
  const qemu = await QemuProcess.start();
  try {
    const reply = await qemu.execute('blockdev-add', {
      'node-name': 'n',
      driver: 'qcow2',
      'read-only': readOnly,
      file: { driver: 'file', filename: file },
    });
    return reply.error?.desc ?? 'opened';
  } finally {
    await qemu.quit();
  }
}

describe('a broken header or table: a clear error', () => {
  const dir = scratchDir();
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const file = damaged(dir, name, c);
      const message = ourError(file, c.readOnly ?? false);
      if (typeof c.message === 'string') assert.equal(message, c.message);
      else assert.match(message, c.message);
    });
  }
});

describe("QEMU's message for the same damage", { skip: qemuSkip }, () => {
  const dir = qemuSkip ? '' : scratchDir();
  for (const [name, c] of Object.entries(cases)) {
    test(name, async () => {
      const file = damaged(dir, name, c);
      const theirs = await qemuError(file, c.readOnly ?? false);
      if (c.qemu === null) assert.equal(theirs, 'opened', 'QEMU opens it');
      else if (c.qemu !== undefined) assert.equal(theirs, c.qemu);
      else if (typeof c.message === 'string') assert.equal(theirs, c.message);
      else assert.match(theirs, c.message);
    });
  }
});

/** Open, read everything, write a little, close: only QMP and I/O errors may come out. */
function exercise(file: string, readOnly: boolean): string {
  try {
    const node = open(file, { readOnly });
    try {
      const length = Math.min(node.length, 8 * 1024 * 1024);
      for (let offset = 0; offset < length; offset += 256 * 1024) {
        try {
          node.read(offset, Math.min(256 * 1024, length - offset));
        } catch (error) {
          if (!(error instanceof IoError)) throw error;
        }
      }
      if (!readOnly) {
        for (const offset of [0, 70000, Math.max(0, length - 4096)]) {
          try {
            node.write(offset, new Uint8Array(4096).fill(0x5a));
            node.writeZeroes(offset + 8192, 4096);
          } catch (error) {
            if (!(error instanceof IoError)) throw error;
          }
        }
      }
    } finally {
      node.close();
    }
    return 'ok';
  } catch (error) {
    if (error instanceof QmpError) return 'refused';
    if (error instanceof IoError) return 'io error';
    throw error;
  }
}

describe('random damage: errors, never crashes or hangs', () => {
  const dir = scratchDir();
  const images = ['plain.qcow2', 'chain-top.qcow2', 'compressed.qcow2', 'bitmaps.qcow2', 'small-cluster.qcow2', 'refcount1.qcow2', 'v2.qcow2'];
  for (const image of images) {
    test(`${image}: bytes flipped in the metadata`, () => {
      const next = random(image.length * 7919);
      const source = fs.readFileSync(path.join(FIXTURES, image));
      const clusterSize = 2 ** source.readUInt32BE(20);
      // The header cluster and the metadata clusters up to the first data.
      const metadataEnd = Math.min(source.length, 6 * clusterSize);
      const outcomes = new Map<string, number>();
      const started = Date.now();
      for (let round = 0; round < 40; round++) {
        const bytes = Buffer.from(source);
        const flips = 1 + Math.floor(next() * 4);
        for (let i = 0; i < flips; i++) {
          const inHeader = next() < 0.5;
          const at = inHeader ? Math.floor(next() * 128) : Math.floor(next() * metadataEnd);
          bytes[at] ^= 1 << Math.floor(next() * 8);
        }
        const file = path.join(dir, `fuzz-${image}-${round}.qcow2`);
        fs.writeFileSync(file, bytes);
        for (const sibling of ['chain-mid.qcow2', 'chain-base.qcow2']) {
          if (!fs.existsSync(path.join(dir, sibling))) fs.copyFileSync(path.join(FIXTURES, sibling), path.join(dir, sibling));
        }
        for (const readOnly of [true, false]) {
          const outcome = exercise(file, readOnly);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
        fs.rmSync(file);
      }
      assert.ok(Date.now() - started < 60_000, 'no hang');
      assert.ok(outcomes.size > 0);
      if (process.env.QCOW2_FUZZ_REPORT) console.log(image, Object.fromEntries(outcomes));
    });
  }

  test('truncated files', () => {
    for (const image of ['plain.qcow2', 'bitmaps.qcow2', 'chain-top.qcow2']) {
      const source = fs.readFileSync(path.join(FIXTURES, image));
      for (const length of [0, 3, 50, 104, 111, 4096, 65536, 65536 * 2 + 100, 65536 * 3, source.length - 65536, source.length - 1]) {
        if (length < 0) continue;
        const file = path.join(dir, `cut-${length}-${image}`);
        fs.writeFileSync(file, source.subarray(0, length));
        for (const readOnly of [true, false]) exercise(file, readOnly);
        fs.rmSync(file);
      }
    }
  });

  test('huge counts and sizes cost no memory up front', () => {
    const source = fs.readFileSync(path.join(FIXTURES, 'plain.qcow2'));
    const patches: Patch[][] = [
      [u32(36, 0x3fffff)],
      [u32(56, 128)],
      [u32(60, 65536), u64(64, 0x10000n)],
      [u64(24, 1n << 52n), u32(36, 0x3fffff)],
      [u32(16, 1023), u64(8, 65536n - 1023n)],
    ];
    const before = process.memoryUsage().rss;
    for (const [i, patch] of patches.entries()) {
      const bytes = Buffer.from(source);
      for (const p of patch) p(bytes);
      const file = path.join(dir, `huge-${i}.qcow2`);
      fs.writeFileSync(file, bytes);
      exercise(file, true);
      fs.rmSync(file);
    }
    assert.ok(process.memoryUsage().rss - before < 512 * 1024 * 1024, 'bounded memory');
  });
});

describe('backing chains that never end', () => {
  const dir = scratchDir();

  test('an image that is its own backing file', () => {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'chain-top.qcow2'));
    const file = path.join(dir, 'self.qcow2');
    // The backing file name "chain-mid.qcow2" becomes "self.qcow2\0...".
    const at = Number(bytes.readBigUInt64BE(8));
    bytes.write('self.qcow2', at, 'latin1');
    bytes.writeUInt32BE('self.qcow2'.length, 16);
    fs.writeFileSync(file, bytes);
    assert.equal(ourError(file, true), "Could not open backing file: Backing file 'self.qcow2' creates an infinite loop.");
  });

  test('two images that back each other', () => {
    const a = fs.readFileSync(path.join(FIXTURES, 'chain-top.qcow2'));
    const at = Number(a.readBigUInt64BE(8));
    const b = Buffer.from(a);
    a.write('loop-b.qcow2\0\0\0', at, 'latin1');
    a.writeUInt32BE('loop-b.qcow2'.length, 16);
    b.write('loop-a.qcow2\0\0\0', at, 'latin1');
    b.writeUInt32BE('loop-a.qcow2'.length, 16);
    fs.writeFileSync(path.join(dir, 'loop-a.qcow2'), a);
    fs.writeFileSync(path.join(dir, 'loop-b.qcow2'), b);
    assert.equal(
      ourError(path.join(dir, 'loop-a.qcow2'), true),
      "Could not open backing file: Could not open backing file: Backing file 'loop-a.qcow2' creates an infinite loop.",
    );
  });

  test('a missing backing file', () => {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'chain-top.qcow2'));
    const file = path.join(dir, 'orphan.qcow2');
    fs.writeFileSync(file, bytes);
    assert.equal(
      ourError(file, true),
      `Could not open backing file: Could not open '${path.join(dir, 'chain-mid.qcow2')}': No such file or directory`.replace(
        path.join(dir, 'chain-mid.qcow2'),
        fs.existsSync(path.join(dir, 'chain-mid.qcow2')) ? '' : path.join(dir, 'chain-mid.qcow2'),
      ),
    );
  });
});
