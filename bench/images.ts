/**
 * bench/images: a 1 GiB qcow2 image written and read sequentially (1 MiB
 * requests) and at random 64 KiB offsets through our driver, each figure as
 * a ratio against `cp` of a same-size file and `qemu-img convert`, timed in
 * the same run on the same disk. Each figure is the best of three runs, each
 * started with no dirty data left from the last. Our image is flushed to disk
 * when it is closed, as qemu-img's is with `-t writeback` (its default,
 * `unsafe`, never flushes); cp leaves its data in the page cache.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS, type BlockNode } from '../src/engine/block-node';
import { openImage } from '../src/engine/drivers/open-image';
import { createQcow2 } from '../src/engine/drivers/qcow2/create';
import { random } from '../test/support/random';

const MiB = 2 ** 20;
const SIZE = 1024 * MiB;
const CHUNK = MiB;
const RANDOM_IO = 64 * 1024;
const RUNS = 3;

/** Best wall-clock seconds of `work` over RUNS runs; `prepare` (untimed) runs before each. */
function best(prepare: () => void, work: () => unknown): number {
  let fastest = Infinity;
  for (let i = 0; i < RUNS; i++) {
    prepare();
    spawnSync('sync');
    const start = process.hrtime.bigint();
    work();
    fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return fastest;
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-bench-'));
process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string) => path.join(dir, name);
const remove = (...names: string[]) => () => names.forEach((name) => fs.rmSync(file(name), { force: true }));

// Data that neither compresses nor reads as zeroes: a random MiB, varied per MiB.
const next = random(1);
const block = new Uint8Array(CHUNK);
const blockView = new DataView(block.buffer);
for (let i = 0; i < block.length; i += 4) blockView.setUint32(i, (next() * 2 ** 32) >>> 0);
{
  const fd = fs.openSync(file('source.raw'), 'w');
  for (let i = 0; i < SIZE / CHUNK; i++) {
    blockView.setUint32(0, i);
    fs.writeSync(fd, block, 0, CHUNK, i * CHUNK);
  }
  fs.closeSync(fd);
}

let names = 0;
const openQcow2 = (name: string): BlockNode =>
  openImage(file(name), { format: 'qcow2', common: { ...DEFAULT_NODE_OPTIONS }, nameNode: () => `#bench${names++}` });
const haveQemuImg = spawnSync('qemu-img', ['--version'], { stdio: 'ignore' }).status === 0;

const cpTime = best(remove('copy.raw'), () => run('cp', [file('source.raw'), file('copy.raw')]));
remove('copy.raw')();
const convertWrite = haveQemuImg
  ? best(remove('converted.qcow2'), () => run('qemu-img', ['convert', '-t', 'writeback', '-f', 'raw', '-O', 'qcow2', file('source.raw'), file('converted.qcow2')]))
  : NaN;
const convertRead = haveQemuImg
  ? best(remove('back.raw'), () => run('qemu-img', ['convert', '-t', 'writeback', '-f', 'qcow2', '-O', 'raw', file('converted.qcow2'), file('back.raw')]))
  : NaN;
remove('converted.qcow2', 'back.raw')();

// Sequential write: the raw file read and written into a new image, as qemu-img convert does.
const seqWrite = best(
  () => {
    remove('ours.qcow2')();
    createQcow2(file('ours.qcow2'), { size: SIZE });
  },
  () => {
    const node = openQcow2('ours.qcow2');
    const fd = fs.openSync(file('source.raw'), 'r');
    const buffer = new Uint8Array(CHUNK);
    for (let offset = 0; offset < SIZE; offset += CHUNK) {
      fs.readSync(fd, buffer, 0, CHUNK, offset);
      node.write(offset, buffer);
    }
    fs.closeSync(fd);
    node.close();
  },
);

// Sequential read: the image read and written out to a raw file.
const seqRead = best(remove('ours-back.raw'), () => {
  const node = openQcow2('ours.qcow2');
  const fd = fs.openSync(file('ours-back.raw'), 'w');
  for (let offset = 0; offset < SIZE; offset += CHUNK) fs.writeSync(fd, node.read(offset, CHUNK), 0, CHUNK, offset);
  fs.closeSync(fd);
  node.close();
});
remove('ours-back.raw')();

// Random 64 KiB writes into a fresh image, every cluster once in a shuffled order, then reads.
const offsets = Array.from({ length: SIZE / RANDOM_IO }, (_, i) => i * RANDOM_IO);
const shuffle = random(2);
for (let i = offsets.length - 1; i > 0; i--) {
  const j = Math.floor(shuffle() * (i + 1));
  [offsets[i], offsets[j]] = [offsets[j], offsets[i]];
}
const data = block.subarray(0, RANDOM_IO);
const randomWrite = best(
  () => {
    remove('random.qcow2')();
    createQcow2(file('random.qcow2'), { size: SIZE });
  },
  () => {
    const node = openQcow2('random.qcow2');
    for (const offset of offsets) node.write(offset, data);
    node.close();
  },
);
const randomRead = best(
  () => {},
  () => {
    const node = openQcow2('random.qcow2');
    for (const offset of offsets) node.read(offset, RANDOM_IO);
    node.close();
  },
);

const rows: string[][] = [];
const rate = (time: number) => `${(SIZE / MiB / time).toFixed(0)} MiB/s`;
const ratio = (ours: number, baseline: number) => (Number.isNaN(baseline) ? 'n/a' : `${(ours / baseline).toFixed(2)}x`);
const row = (operation: string, ours: number, convert: number) =>
  rows.push([operation, `${ours.toFixed(2)} s`, rate(ours), ratio(ours, cpTime), ratio(ours, convert)]);
row('sequential write (raw file -> qcow2), 1 MiB requests', seqWrite, convertWrite);
row('sequential read (qcow2 -> raw file), 1 MiB requests', seqRead, convertRead);
row('random 64 KiB writes, allocating', randomWrite, convertWrite);
row('random 64 KiB reads', randomRead, convertRead);
rows.push(['baseline: cp of the 1 GiB raw file', `${cpTime.toFixed(2)} s`, rate(cpTime), '1.00x', '']);
if (haveQemuImg) {
  rows.push(['baseline: qemu-img convert -t writeback raw -> qcow2', `${convertWrite.toFixed(2)} s`, rate(convertWrite), ratio(convertWrite, cpTime), '']);
  rows.push(['baseline: qemu-img convert -t writeback qcow2 -> raw', `${convertRead.toFixed(2)} s`, rate(convertRead), ratio(convertRead, cpTime), '']);
} else {
  rows.push(['baseline: qemu-img convert', 'qemu-img is not installed', '', '', '']);
}

const header = ['1 GiB qcow2 image, 64 KiB clusters (best of 3)', 'time', 'rate', 'ours / cp', 'ours / qemu-img convert'];
const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
for (const r of [header, ...rows]) console.log(r.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
