/**
 * Writing qcow2 images: the same requests through our driver and through
 * qemu-io must leave byte-identical files, issue the same file I/O in the
 * same order (compared with QEMU's own trace), pass `qemu-img check`, and
 * survive a crash at any point with nothing worse than leaked clusters.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import {
  BlockNode,
  DEFAULT_NODE_OPTIONS,
  type BlkdebugEvent,
  type BlockStatus,
  type CommonNodeOptions,
} from '../../src/engine/block-node';
import { FileNode } from '../../src/engine/drivers/file';
import { compressCluster } from '../../src/engine/drivers/qcow2/compress';
import { createQcow2 } from '../../src/engine/drivers/qcow2/create';
import { Qcow2Node } from '../../src/engine/drivers/qcow2/qcow2-node';
import { IoError } from '../../src/engine/io-error';
import { skipWithout } from '../support/tools';
import { hasQemuImg, open, qemuCheck, qemuCompare, qemuImg, qemuIo, scratchDir } from '../support/qemu-img';
import { random } from '../support/random';

const skip = skipWithout(hasQemuImg, 'qemu-img and qemu-io');
const KiB = 1024;
const MiB = 1024 * KiB;
const RW: CommonNodeOptions = { ...DEFAULT_NODE_OPTIONS, discardUnmap: true };

/** Logs every request and event that reaches the file, and can stop the world after N requests. */
class Recorder extends BlockNode {
  readonly driver = 'recorder';
  readonly io: string[] = [];
  readonly events: BlkdebugEvent[] = [];
  /** Requests left before the simulated crash; afterwards every request fails. */
  budget = Infinity;
  /** Writes since the last flush, to undo on a power loss: [offset, old bytes]. */
  private unflushed: Array<[number, Uint8Array]> = [];
  keepUndo = false;

  constructor(readonly inner: FileNode) {
    super('#recorder', inner.length, inner.common);
    this.children.set('image', inner);
  }

  override get length(): number {
    return this.inner.length;
  }

  override get growable(): boolean {
    return true;
  }

  get actualSize(): number | undefined {
    return this.inner.actualSize;
  }

  override debugEvent(event: BlkdebugEvent): void {
    this.events.push(event);
  }

  private spend(entry: string): void {
    if (this.budget <= 0) throw new IoError(5);
    this.budget--;
    this.io.push(entry);
  }

  private remember(offset: number, bytes: number): void {
    if (!this.keepUndo) return;
    const old = new Uint8Array(bytes);
    const available = Math.max(0, Math.min(bytes, this.inner.length - offset));
    if (available > 0) old.set(this.inner.read(offset, available));
    this.unflushed.push([offset, old]);
  }

  protected driverRead(offset: number, buffer: Uint8Array): void {
    this.spend(`read ${offset} ${buffer.length}`);
    buffer.set(this.inner.read(offset, buffer.length));
  }

  protected driverWrite(offset: number, data: Uint8Array): void {
    this.spend(`write ${offset} ${data.length}`);
    this.remember(offset, data.length);
    this.inner.write(offset, data);
  }

  protected override driverWriteZeroes(offset: number, bytes: number, mayUnmap: boolean): void {
    this.spend(`zeroes ${offset} ${bytes}`);
    this.remember(offset, bytes);
    this.inner.writeZeroes(offset, bytes, mayUnmap);
  }

  protected override driverDiscard(offset: number, bytes: number): boolean {
    this.spend(`discard ${offset} ${bytes}`);
    this.remember(offset, bytes);
    this.inner.discard(offset, bytes);
    return true;
  }

  protected override driverFlush(): void {
    this.spend('flush');
    this.unflushed = [];
    this.inner.flush();
  }

  blockStatus(offset: number, bytes: number): BlockStatus {
    return this.inner.blockStatus(offset, bytes);
  }

  override truncate(bytes: number): void {
    this.inner.truncate(bytes);
  }

  /** A power loss: whatever was written since the last flush is lost. */
  loseUnflushedWrites(): void {
    for (const [offset, old] of this.unflushed.reverse()) this.inner.write(offset, old);
    this.unflushed = [];
  }

  override close(): void {
    this.inner.close();
  }
}

function openRecorded(file: string, common = RW): { node: Qcow2Node; recorder: Recorder } {
  const recorder = new Recorder(new FileNode('#file', file, { ...common, discardUnmap: true }));
  const node = Qcow2Node.open('#qcow2', recorder, common, { backing: null });
  return { node, recorder };
}

/** One guest request, applied by us and spelled for qemu-io. */
type Op =
  | { op: 'write'; offset: number; bytes: number; pattern: number }
  | { op: 'zero'; offset: number; bytes: number; unmap?: boolean }
  | { op: 'discard'; offset: number; bytes: number }
  /** A compressed write (qemu-io write -c) of a pattern, or of the bytes of a source file. */
  | { op: 'compress'; offset: number; bytes: number; pattern: number; source?: string }
  | { op: 'flush' };

function apply(node: BlockNode, ops: Op[]): void {
  for (const op of ops) {
    if (op.op === 'write') node.write(op.offset, new Uint8Array(op.bytes).fill(op.pattern));
    else if (op.op === 'zero') node.writeZeroes(op.offset, op.bytes, op.unmap ?? false);
    else if (op.op === 'discard') node.discard(op.offset, op.bytes);
    else if (op.op === 'compress') node.writeCompressed(op.offset, compressData(op));
    else node.flush();
  }
}

function compressData(op: Extract<Op, { op: 'compress' }>): Uint8Array {
  if (op.source) return new Uint8Array(fs.readFileSync(op.source).subarray(0, op.bytes));
  return new Uint8Array(op.bytes).fill(op.pattern);
}

/** `ops` on our copy of an image and through qemu-io on QEMU's: ours checks clean and both files are the same, byte for byte. */
function assertSameAsQemuIo(ours: string, theirs: string, ops: Op[]): void {
  const node = open(ours, { discardUnmap: true });
  apply(node, ops);
  node.close();
  qemuIo(theirs, qemuIoCommands(ops));
  const check = qemuCheck(ours);
  assert.equal(check['check-errors'], 0);
  assert.equal(check.corruptions ?? 0, 0, 'no corruptions');
  assert.equal(check.leaks ?? 0, 0, 'no leaks');
  assert.ok(qemuCompare(ours, theirs), 'same guest contents as qemu-io gives');
  assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
}

function qemuIoCommands(ops: Op[]): string[] {
  return ops.map((op) => {
    if (op.op === 'write') return `write -P ${op.pattern} ${op.offset} ${op.bytes}`;
    if (op.op === 'zero') return `write -z${op.unmap ? ' -u' : ''} ${op.offset} ${op.bytes}`;
    if (op.op === 'discard') return `discard ${op.offset} ${op.bytes}`;
    if (op.op === 'compress') return `write -c ${op.source ? `-s ${op.source}` : `-P ${op.pattern}`} ${op.offset} ${op.bytes}`;
    return 'flush';
  });
}

function randomOps(seed: number, count: number, size: number, kinds: Array<Op['op']> = ['write', 'write', 'write', 'zero', 'discard']): Op[] {
  const next = random(seed);
  const ops: Op[] = [];
  for (let i = 0; i < count; i++) {
    const kind = kinds[Math.floor(next() * kinds.length)];
    const offset = Math.floor((next() * size) / 512) * 512;
    const bytes = Math.min(size - offset, 512 * (1 + Math.floor(next() * 384)));
    if (kind === 'write') ops.push({ op: 'write', offset, bytes, pattern: 1 + Math.floor(next() * 254) });
    else if (kind === 'zero') ops.push({ op: 'zero', offset, bytes, unmap: next() < 0.5 });
    else if (kind === 'discard') ops.push({ op: 'discard', offset, bytes });
    else ops.push({ op: 'flush' });
  }
  return ops;
}

/** Each request cut short at the end of the guest range its L2 table maps. */
function withinL2Tables(ops: Op[], span: number): Op[] {
  return ops.map((op) => (op.op === 'flush' ? op : { ...op, bytes: Math.min(op.bytes, span - (op.offset % span)) }));
}

/** qemu-io with QEMU's trace of the requests each node receives; the file node's, normalised. */
function qemuFileTrace(image: string, ops: Op[], extra: string[] = []): string[] {
  const args = ['-f', 'qcow2', '-t', 'writeback', '-T', 'bdrv_co_preadv_part', '-T', 'bdrv_co_pwritev_part', '-T', 'bdrv_co_pwrite_zeroes', ...extra];
  const result = spawnSync('qemu-io', [...args, ...qemuIoCommands(ops).flatMap((c) => ['-c', c]), image], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('bdrv_co_'));
  const fileBs = / bs (\S+) /.exec(lines[0])![1];
  const trace: string[] = [];
  for (const line of lines) {
    const [, kind, bs, offset, bytes, flags] = /^(\S+) bs (\S+) offset (\d+) bytes (\d+) flags (\S+)/.exec(line)!;
    if (bs !== fileBs) continue;
    if (kind === 'bdrv_co_pwrite_zeroes') trace.push(`zeroes ${offset} ${bytes}`);
    else if (kind === 'bdrv_co_preadv_part') trace.push(`read ${offset} ${bytes}`);
    else if (!(Number(flags) & 2)) trace.push(`write ${offset} ${bytes}`);
  }
  return trace;
}

function ioOnly(entries: string[]): string[] {
  return entries.filter((entry) => !entry.startsWith('flush') && !entry.startsWith('discard'));
}

describe('writes leave the file qemu-io leaves', { skip }, () => {
  const dir = skip ? '' : scratchDir();

  const scenarios: Record<string, { create: string[]; size: number; ops: Op[]; backing?: Op[]; snapshot?: Op[] }> = {
    'clusters shared with an internal snapshot: L2 tables and data copied on write': {
      create: [],
      size: 8 * MiB,
      snapshot: [
        { op: 'write', offset: 0, bytes: 2 * MiB, pattern: 0x61 },
        { op: 'write', offset: 5 * MiB, bytes: 192 * KiB, pattern: 0x62 },
      ],
      ops: randomOps(14, 60, 8 * MiB),
    },
    'aligned and partial writes, zeroes, discard': {
      create: [],
      size: 64 * MiB,
      ops: [
        { op: 'write', offset: 0, bytes: 64 * KiB, pattern: 0x11 },
        { op: 'write', offset: 100 * KiB, bytes: 10 * KiB, pattern: 0x22 },
        { op: 'write', offset: 5 * MiB, bytes: 3 * MiB, pattern: 0x33 },
        { op: 'zero', offset: 5 * MiB, bytes: MiB },
        { op: 'zero', offset: 6 * MiB + 512, bytes: 4096, unmap: true },
        { op: 'discard', offset: 7 * MiB, bytes: 200 * KiB },
        { op: 'write', offset: 60 * MiB + 1000 * 512, bytes: 1000, pattern: 0x44 },
        { op: 'zero', offset: 30 * MiB + 512, bytes: 1024 },
      ],
    },
    'random requests': { create: [], size: 16 * MiB, ops: randomOps(1, 120, 16 * MiB) },
    'a disk that ends inside a cluster': {
      create: [],
      size: 3 * MiB + 1536,
      ops: [
        ...randomOps(15, 40, 3 * MiB + 1536),
        { op: 'write', offset: 3 * MiB + 1024, bytes: 512, pattern: 0x66 },
        { op: 'zero', offset: 3 * MiB, bytes: 1536 },
        { op: 'discard', offset: 3 * MiB, bytes: 1536 },
        { op: 'write', offset: 3 * MiB - 512, bytes: 2048, pattern: 0x67 },
      ],
    },
    'random requests, 512-byte clusters (many L2 tables, a growing refcount table)': {
      create: ['-o', 'cluster_size=512'],
      size: 8 * MiB,
      ops: randomOps(2, 80, 8 * MiB, ['write']),
    },
    'refcounts of 1 bit': { create: ['-o', 'refcount_bits=1'], size: 8 * MiB, ops: randomOps(3, 60, 8 * MiB) },
    'refcounts of 64 bits': { create: ['-o', 'refcount_bits=64'], size: 8 * MiB, ops: randomOps(4, 60, 8 * MiB) },
    'compat 0.10': { create: ['-o', 'compat=0.10'], size: 8 * MiB, ops: randomOps(5, 60, 8 * MiB) },
    'lazy refcounts': { create: ['-o', 'lazy_refcounts=on'], size: 8 * MiB, ops: randomOps(6, 60, 8 * MiB) },
    'a 2 MiB image with 2 MiB clusters': { create: ['-o', 'cluster_size=2M'], size: 8 * MiB, ops: randomOps(7, 30, 8 * MiB) },
    'partial clusters over a backing file': {
      create: [],
      size: 8 * MiB,
      backing: [
        { op: 'write', offset: 0, bytes: 4 * MiB, pattern: 0x5a },
        { op: 'write', offset: 6 * MiB, bytes: MiB, pattern: 0x5b },
      ],
      ops: randomOps(8, 80, 8 * MiB),
    },
  };

  for (const [name, scenario] of Object.entries(scenarios)) {
    test(name, () => {
      const ours = path.join(dir, `${name.replace(/\W+/g, '-')}-ours.qcow2`);
      const theirs = ours.replace('-ours', '-qemu');
      const extra: string[] = [];
      if (scenario.backing) {
        const base = ours.replace('-ours.qcow2', '-base.qcow2');
        qemuImg('create', '-q', '-f', 'qcow2', base, String(scenario.size));
        qemuIo(base, qemuIoCommands(scenario.backing));
        extra.push('-b', path.basename(base), '-F', 'qcow2');
      }
      qemuImg('create', '-q', '-f', 'qcow2', ...scenario.create, ...extra, ours, String(scenario.size));
      if (scenario.snapshot) {
        qemuIo(ours, qemuIoCommands(scenario.snapshot));
        qemuImg('snapshot', '-c', 'snap', ours);
      }
      fs.copyFileSync(ours, theirs);
      assertSameAsQemuIo(ours, theirs, scenario.ops);
    });
  }
});

describe('file I/O in the order QEMU issues it', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  const cases: Record<string, { create: string[]; ops: Op[] }> = {
    'first write: L2 table, refcounts, data, L2 entry at close': {
      create: [],
      ops: [{ op: 'write', offset: 0, bytes: 4096, pattern: 1 }],
    },
    'writes and flushes': {
      create: [],
      ops: [
        { op: 'write', offset: 0, bytes: 4096, pattern: 1 },
        { op: 'flush' },
        { op: 'write', offset: 3 * MiB, bytes: 200 * KiB, pattern: 2 },
        { op: 'write', offset: 3 * MiB + 100 * KiB, bytes: 4096, pattern: 3 },
        { op: 'flush' },
        { op: 'write', offset: 9 * MiB + 512, bytes: 1024, pattern: 4 },
      ],
    },
    'zeroes and discards': {
      create: [],
      ops: [
        { op: 'write', offset: 0, bytes: MiB, pattern: 1 },
        { op: 'zero', offset: 64 * KiB, bytes: 128 * KiB },
        { op: 'zero', offset: 300 * KiB, bytes: 128 * KiB, unmap: true },
        { op: 'discard', offset: 512 * KiB, bytes: 256 * KiB },
        { op: 'zero', offset: 2 * MiB + 512, bytes: 512 },
      ],
    },
    // QEMU runs the parts of a request that maps to several host ranges
    // concurrently; these stay within one L2 table each, so they are one part.
    'small clusters: L2 tables and refcount blocks evicted from the caches': {
      create: ['-o', 'cluster_size=512'],
      ops: withinL2Tables(randomOps(9, 60, 16 * MiB, ['write', 'write', 'flush']), 32 * KiB),
    },
    'random requests': { create: [], ops: randomOps(10, 60, 16 * MiB, ['write', 'write', 'zero', 'discard', 'flush']) },
  };
  for (const [name, { create, ops }] of Object.entries(cases)) {
    test(name, () => {
      const ours = path.join(dir, `${name.replace(/\W+/g, '-')}-ours.qcow2`);
      const theirs = ours.replace('-ours', '-qemu');
      qemuImg('create', '-q', '-f', 'qcow2', ...create, ours, String(16 * MiB));
      fs.copyFileSync(ours, theirs);
      const { node, recorder } = openRecorded(ours);
      apply(node, ops);
      node.close();
      assert.deepEqual(ioOnly(recorder.io), qemuFileTrace(theirs, ops));
    });
  }
});

describe('crash safety: stopped after any request, the image checks clean but for leaks', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  const workloads: Record<string, { create: string[]; ops: Op[] }> = {
    'allocating writes': { create: [], ops: randomOps(11, 25, 8 * MiB, ['write', 'write', 'flush']) },
    'zeroes and discards': { create: [], ops: randomOps(12, 25, 8 * MiB, ['write', 'zero', 'discard', 'flush']) },
    'small clusters, growing refcount structures': {
      create: ['-o', 'cluster_size=512'],
      ops: randomOps(13, 25, 8 * MiB, ['write', 'flush']),
    },
  };
  for (const [name, { create, ops }] of Object.entries(workloads)) {
    for (const powerLoss of [false, true]) {
      test(`${name}${powerLoss ? ', unflushed writes lost' : ''}`, () => {
        const template = path.join(dir, `${name.replace(/\W+/g, '-')}.qcow2`);
        qemuImg('create', '-q', '-f', 'qcow2', ...create, template, String(8 * MiB));
        const total = (() => {
          const copy = `${template}.full`;
          fs.copyFileSync(template, copy);
          const { node, recorder } = openRecorded(copy);
          apply(node, ops);
          node.close();
          return recorder.io.length;
        })();
        const step = Math.max(1, Math.floor(total / 60));
        for (let budget = 0; budget < total; budget += step) {
          const copy = `${template}.${budget}`;
          fs.copyFileSync(template, copy);
          const { node, recorder } = openRecorded(copy);
          recorder.keepUndo = powerLoss;
          recorder.budget = budget;
          try {
            apply(node, ops);
            node.close();
          } catch (error) {
            assert.ok(error instanceof IoError, String(error));
            if (powerLoss) recorder.loseUnflushedWrites();
          }
          recorder.inner.close();
          const check = qemuCheck(copy);
          assert.equal(check.corruptions ?? 0, 0, `no corruption after ${budget} of ${total} requests`);
          assert.equal(check['check-errors'], 0, `no check errors after ${budget} of ${total} requests`);
          fs.rmSync(copy);
        }
      });
    }
  }
});

describe('growing an image', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  for (const [name, args, from, to] of [
    ['a larger L1 table', [], 8 * MiB, 3 * 1024 * MiB],
    ['512-byte clusters: new refcount structures', ['-o', 'cluster_size=512'], 8 * MiB, 64 * MiB],
  ] as Array<[string, string[], number, number]>) {
    test(`${name}: as qemu-img resize does it`, () => {
      const ours = path.join(dir, `grow-${name.replace(/\W+/g, '-')}-ours.qcow2`);
      const theirs = ours.replace('-ours', '-qemu');
      qemuImg('create', '-q', '-f', 'qcow2', ...args, ours, String(from));
      qemuIo(ours, ['write -P 1 0 64k', `write -P 2 ${from - 4096} 4096`]);
      fs.copyFileSync(ours, theirs);
      const node = open(ours);
      node.truncate(to);
      assert.equal(node.length, to);
      node.write(to - 512, new Uint8Array(512).fill(3));
      node.close();
      qemuImg('resize', '-q', theirs, String(to));
      qemuIo(theirs, [`write -P 3 ${to - 512} 512`]);
      assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
      assert.equal(qemuCheck(ours).leaks ?? 0, 0);
    });
  }
});

describe('creating images', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  const cases: Array<[Parameters<typeof createQcow2>[1], string[]]> = [
    [{ size: 64 * MiB }, []],
    [{ size: 1000 }, []],
    [{ size: 64 * MiB, clusterSize: 512 }, ['-o', 'cluster_size=512']],
    [{ size: 64 * MiB, clusterSize: 2 * MiB }, ['-o', 'cluster_size=2M']],
    [{ size: 64 * MiB, compat: '0.10' }, ['-o', 'compat=0.10']],
    [{ size: 64 * MiB, lazyRefcounts: true }, ['-o', 'lazy_refcounts=on']],
    ...[1, 2, 4, 8, 32, 64].map((bits): [Parameters<typeof createQcow2>[1], string[]] => [
      { size: 64 * MiB, refcountBits: bits },
      ['-o', `refcount_bits=${bits}`],
    ]),
    [{ size: 100 * 2 ** 40 }, []],
    [{ size: 10 * 2 ** 30, clusterSize: 512 }, ['-o', 'cluster_size=512']],
  ];
  for (const [options, args] of cases) {
    test(`qemu-img create ${args.join(' ')} ${options!.size}: the same bytes`, () => {
      const ours = path.join(dir, 'created-ours.qcow2');
      const theirs = path.join(dir, 'created-qemu.qcow2');
      createQcow2(ours, options);
      qemuImg('create', '-q', '-f', 'qcow2', ...args, theirs, String(options!.size));
      assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)));
      assert.equal(qemuCheck(ours)['check-errors'], 0);
    });
  }

  test('with a backing file, relative and absolute, the size taken from it', () => {
    const base = path.join(dir, 'base.qcow2');
    createQcow2(base, { size: 32 * MiB });
    for (const [name, backing] of [['rel', 'base.qcow2'], ['abs', base]]) {
      const ours = path.join(dir, `${name}-ours.qcow2`);
      const theirs = path.join(dir, `${name}-qemu.qcow2`);
      createQcow2(ours, { backingFile: backing, backingFormat: 'qcow2' });
      qemuImg('create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', theirs);
      assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)));
    }
  });

  test("qemu-img's messages for bad options", () => {
    const file = path.join(dir, 'bad.qcow2');
    const message = (options: Parameters<typeof createQcow2>[1]): string => {
      try {
        createQcow2(file, options);
      } catch (error) {
        return (error as Error).message;
      }
      return 'created';
    };
    assert.equal(message({ size: MiB, clusterSize: 1000 }), 'Cluster size must be a power of two between 512 and 2048k');
    assert.equal(message({ size: MiB, refcountBits: 3 }), 'Refcount width must be a power of two and may not exceed 64 bits');
    assert.equal(
      message({ size: MiB, compat: '0.10', lazyRefcounts: true }),
      'Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)',
    );
    assert.equal(message({ size: MiB, backingFile: 'x.qcow2' }), 'Backing file specified without backing format');
    assert.equal(
      message({ size: 100 * 2 ** 40, clusterSize: 512 }),
      "The image size is too large for file format 'qcow2' (try using a larger cluster size)",
    );
    assert.match(message({ backingFile: 'missing.qcow2', backingFormat: 'qcow2' }), /^Could not open backing image: Could not open '.*missing.qcow2': No such file or directory$/);
  });
});

describe('compressed writes leave the file qemu-io write -c leaves', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  /** Bytes deflate cannot shrink (QEMU then writes a normal cluster). */
  const noise = path.join(dir, 'noise');
  if (!skip) {
    const next = random(99);
    fs.writeFileSync(noise, Uint8Array.from({ length: 128 * KiB }, () => Math.floor(next() * 256)));
  }
  const clusters = (count: number, size: number, first = 0): Op[] =>
    Array.from({ length: count }, (_, i) => ({ op: 'compress', offset: (first + i) * size, bytes: size, pattern: 1 + (i % 200) }));

  const cases: Record<string, { create: string[]; size: number; ops: Op[] }> = {
    'packed by bytes after each other, with normal writes between': {
      create: [],
      size: 8 * MiB,
      ops: [
        ...clusters(4, 64 * KiB),
        { op: 'write', offset: 2 * MiB, bytes: 4096, pattern: 0x55 },
        ...clusters(3, 64 * KiB, 40),
      ],
    },
    'incompressible data falls back to a normal cluster; the compressed area goes on where it was': {
      create: [],
      size: 8 * MiB,
      ops: [
        ...clusters(2, 64 * KiB),
        { op: 'compress', offset: MiB, bytes: 64 * KiB, pattern: 0, source: noise },
        ...clusters(2, 64 * KiB, 20),
      ],
    },
    'over zero clusters': {
      create: [],
      size: 8 * MiB,
      ops: [{ op: 'zero', offset: 0, bytes: MiB }, ...clusters(4, 64 * KiB)],
    },
    'the partial last cluster is padded with zeroes': {
      create: [],
      size: 3 * MiB + 1536,
      ops: [...clusters(2, 64 * KiB), { op: 'compress', offset: 3 * MiB, bytes: 1536, pattern: 0x77 }],
    },
    '512-byte clusters: the bytes spill into the next host cluster': {
      create: ['-o', 'cluster_size=512'],
      size: 4 * MiB,
      ops: clusters(300, 512),
    },
    'refcounts of 1 bit: a full cluster is not shared': {
      create: ['-o', 'cluster_size=512,refcount_bits=1'],
      size: 4 * MiB,
      ops: clusters(20, 512),
    },
    'compat 0.10': { create: ['-o', 'compat=0.10'], size: 8 * MiB, ops: clusters(6, 64 * KiB, 3) },
  };

  for (const [name, { create, size, ops }] of Object.entries(cases)) {
    test(name, () => {
      const ours = path.join(dir, `${name.replace(/\W+/g, '-')}-ours.qcow2`);
      const theirs = ours.replace('-ours', '-qemu');
      qemuImg('create', '-q', '-f', 'qcow2', ...create, ours, String(size));
      fs.copyFileSync(ours, theirs);
      assertSameAsQemuIo(ours, theirs, ops);
    });
  }

  test("Node's zlib (docs/differences-from-qemu.md): varied data deflates to raw deflate that inflates back", () => {
    const next = random(7);
    const cluster = Uint8Array.from({ length: 64 * KiB }, (_, i) => (i % 300 < 200 ? Math.floor(next() * 16) : 0));
    const compressed = compressCluster(cluster);
    assert.ok(compressed && compressed.length < cluster.length);
    assert.ok(inflateRawSync(compressed).equals(cluster));
    assert.equal(compressCluster(fs.readFileSync(noise).subarray(0, 64 * KiB)), undefined, 'noise does not shrink');
  });

  test('file I/O and blkdebug events in the order QEMU issues them', () => {
    const ours = path.join(dir, 'trace-ours.qcow2');
    const theirs = path.join(dir, 'trace-qemu.qcow2');
    const ops = clusters(3, 64 * KiB);
    qemuImg('create', '-q', '-f', 'qcow2', ours, String(8 * MiB));
    fs.copyFileSync(ours, theirs);
    const { node, recorder } = openRecorded(ours);
    apply(node, ops);
    node.close();
    assert.deepEqual(ioOnly(recorder.io), qemuFileTrace(theirs, ops));
    const events = recorder.events.filter((event) => /compressed|alloc_bytes/.test(event));
    assert.deepEqual(events.slice(0, 3), ['cluster_alloc_bytes', 'l2_update_compressed', 'write_compressed']);
  });

  test('refused: an allocated cluster (EIO), an unaligned offset or a short cluster before the end (EINVAL), raw', () => {
    const image = path.join(dir, 'refused.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, String(MiB));
    const node = open(image);
    const errno = (write: () => void): number | undefined => {
      try {
        write();
      } catch (error) {
        assert.ok(error instanceof IoError, String(error));
        return error.errno;
      }
      return undefined;
    };
    const pattern = new Uint8Array(64 * KiB).fill(1);
    assert.equal(node.supportsCompressedWrites, true);
    node.writeCompressed(0, pattern);
    assert.equal(errno(() => node.writeCompressed(0, pattern)), 5, 'a compressed cluster');
    node.write(64 * KiB, pattern);
    assert.equal(errno(() => node.writeCompressed(64 * KiB, pattern)), 5, 'a normal cluster');
    assert.equal(errno(() => node.writeCompressed(128 * KiB + 512, pattern)), 22);
    assert.equal(errno(() => node.writeCompressed(128 * KiB, pattern.subarray(0, 4096))), 22);
    node.close();
    // qemu-io's answer to the same requests.
    const qemu = qemuIoStatus(image, ['write -c -P 1 0 64k', 'write -c -P 1 192k 4k', 'write -c -P 1 129k 64k']);
    assert.match(qemu, /write failed: Input\/output error\n.*write failed: Invalid argument\n.*write failed: Invalid argument/s);
    assert.equal(qemuCheck(image)['check-errors'], 0);
    const raw = path.join(dir, 'refused.raw');
    fs.writeFileSync(raw, new Uint8Array(MiB));
    const rawNode = open(raw, { format: 'raw' });
    assert.equal(rawNode.supportsCompressedWrites, false);
    assert.equal(errno(() => rawNode.writeCompressed(0, pattern)), 95);
    rawNode.close();
  });
});

/** qemu-io's output, failures included (it exits 0 after a failed request). */
function qemuIoStatus(image: string, commands: string[]): string {
  const result = spawnSync('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), image], { encoding: 'utf8' });
  return result.stdout + result.stderr;
}
