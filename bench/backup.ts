/**
 * bench/backup: a full and then an incremental backup of a 1 GiB qcow2 (a
 * third of it allocated with random data) to new qcow2 images, then a
 * compressed full backup of the same image, on our engine and on QEMU 7.2,
 * with `cp` of the image file as the baseline, all in one run.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createQcow2 } from '../src/engine/drivers/qcow2/create';
import { Engine } from '../src/engine/engine';
import { QmpMonitor } from '../src/engine/qmp/monitor';
import { QemuProcess } from '../test/support/qemu';

const GiB = 1 << 30;
const CLUSTER = 65536;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-bench-backup-'));
const file = (name: string) => path.join(dir, name);

/** A deterministic choice of clusters: every third one, shuffled by a fixed step. */
function clusters(count: number, every: number, salt: number): number[] {
  const total = GiB / CLUSTER;
  return Array.from({ length: count }, (_, i) => (i * every * 7919 + salt) % total);
}

/** Writes random data to `picked` clusters of the image, through the engine. */
function fill(image: string, picked: number[]): void {
  const monitor = new QmpMonitor(new Engine(), { negotiated: true });
  const engine = monitor.engine;
  monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'qcow2', 'node-name': 'n', file: { driver: 'file', filename: image } } });
  const data = new Uint8Array(CLUSTER);
  for (const cluster of picked) engine.backend('n').write(cluster * CLUSTER, randomFillSync(data));
  monitor.execute({ execute: 'quit' });
}

interface Driver {
  execute(command: string, args?: Record<string, unknown>): Promise<unknown>;
  /** Until the job's BLOCK_JOB_COMPLETED. */
  completed(id: string): Promise<void>;
  close(): Promise<void>;
}

function engineDriver(): Driver {
  const monitor = new QmpMonitor(new Engine(), { negotiated: true });
  return {
    execute: async (execute, args) => monitor.execute(args ? { execute, arguments: args } : { execute }),
    completed: async (id) => {
      const done = monitor.takeEvents().some((e) => e.event === 'BLOCK_JOB_COMPLETED' && e.data.device === id);
      if (!done) throw new Error(`engine: ${id} did not complete`);
    },
    close: async () => void monitor.execute({ execute: 'quit' }),
  };
}

async function qemuDriver(): Promise<Driver> {
  const qemu = await QemuProcess.start();
  return {
    execute: (execute, args) => qemu.execute(execute, args),
    completed: async (id) => {
      while (!qemu.events.some((e) => e.event === 'BLOCK_JOB_COMPLETED' && (e.data as { device?: string }).device === id)) {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    },
    close: () => qemu.quit(),
  };
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/** Full backup, guest writes, incremental backup; the two backups timed. */
async function backups(driver: Driver, tag: string): Promise<{ full: number; incremental: number; compressed: number }> {
  fs.copyFileSync(file('source.qcow2'), file(`${tag}-source.qcow2`));
  for (const target of ['full', 'inc', 'comp']) createQcow2(file(`${tag}-${target}.qcow2`), { size: GiB });
  const add = (name: string, image: string) =>
    driver.execute('blockdev-add', { driver: 'qcow2', 'node-name': name, file: { driver: 'file', filename: file(image) } });
  await add('src', `${tag}-source.qcow2`);
  await add('full', `${tag}-full.qcow2`);
  await add('inc', `${tag}-inc.qcow2`);
  await add('comp', `${tag}-comp.qcow2`);
  let start = process.hrtime.bigint();
  await driver.execute('transaction', {
    actions: [
      { type: 'block-dirty-bitmap-add', data: { node: 'src', name: 'b0' } },
      { type: 'blockdev-backup', data: { 'job-id': 'full', device: 'src', target: 'full', sync: 'full' } },
    ],
  });
  await driver.completed('full');
  const full = seconds(start);
  // About 10 % of the disk rewritten between the two backups.
  for (const cluster of clusters(1638, 10, 5)) {
    await driver.execute('human-monitor-command', { 'command-line': `qemu-io src "write -P 0x5a ${cluster * CLUSTER} 64k"` });
  }
  start = process.hrtime.bigint();
  await driver.execute('blockdev-backup', { 'job-id': 'inc', device: 'src', target: 'inc', sync: 'incremental', bitmap: 'b0' });
  await driver.completed('inc');
  const incremental = seconds(start);
  // The random clusters do not shrink (written as normal clusters), the rewritten ones do.
  start = process.hrtime.bigint();
  await driver.execute('blockdev-backup', { 'job-id': 'comp', device: 'src', target: 'comp', sync: 'full', compress: true });
  await driver.completed('comp');
  const compressed = seconds(start);
  await driver.close();
  return { full, incremental, compressed };
}

async function main(): Promise<void> {
  createQcow2(file('source.qcow2'), { size: GiB });
  fill(file('source.qcow2'), clusters(GiB / CLUSTER / 3, 3, 0));
  let start = process.hrtime.bigint();
  execFileSync('cp', [file('source.qcow2'), file('copy.qcow2')]);
  const cp = seconds(start);
  const ours = await backups(engineDriver(), 'ours');
  const qemu = QemuProcess.binary() ? await backups(await qemuDriver(), 'qemu') : undefined;
  const size = fs.statSync(file('source.qcow2')).size;
  console.log(`source: 1 GiB qcow2, ${(size / 2 ** 20).toFixed(0)} MiB allocated; cp of the file: ${cp.toFixed(3)} s`);
  const row = (name: string, ours: number, qemu: number | undefined) =>
    console.log(
      `${name.padEnd(20)} ours ${ours.toFixed(3)} s   ours/cp ${(ours / cp).toFixed(2)}x` +
        (qemu === undefined ? '   (QEMU not installed)' : `   QEMU ${qemu.toFixed(3)} s   ours/QEMU ${(ours / qemu).toFixed(2)}x`),
    );
  row('full backup', ours.full, qemu?.full);
  row('incremental backup', ours.incremental, qemu?.incremental);
  row('compressed full', ours.compressed, qemu?.compressed);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error: unknown) => {
  console.error(error);
  fs.rmSync(dir, { recursive: true, force: true });
  process.exitCode = 1;
});
