/**
 * A playground in the middle of a backup, made with the real engine: what the
 * webview tests draw. Flags QEMU would only set on image formats we do not
 * have yet (persistent, inconsistent) are set directly, to see them drawn.
 */
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface Scenario {
  engine: Engine;
  /** Guest writes that happen after the first snapshot, to watch a live update. */
  writeMore(): void;
}

export function backupInProgress(): Scenario {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  const qmp = (execute: string, args: Record<string, unknown>) => {
    const reply = monitor.execute({ execute, arguments: args });
    assert.ok('return' in reply, JSON.stringify(reply));
  };
  qmp('blockdev-add', { driver: 'null-co', 'node-name': 'big0', size: 16 * GiB });
  qmp('block-dirty-bitmap-add', { node: 'big0', name: 'since-monday' });
  qmp('blockdev-add', { driver: 'null-co', 'node-name': 'drive0', size: 64 * MiB });
  qmp('block-dirty-bitmap-add', { node: 'drive0', name: 'weekly', granularity: 256 * KiB, disabled: true });
  qmp('block-dirty-bitmap-add', { node: 'drive0', name: 'bitmap0' });

  const drive0 = engine.graph.find('drive0');
  assert.ok(drive0);
  const [bitmap0, weekly] = drive0.bitmaps;
  weekly.persistent = true;
  for (const [offset, bytes] of WRITES_BEFORE_THE_JOB) engine.backend('drive0').write(offset, new Uint8Array(bytes));
  weekly.mergeInternal(bitmap0);
  // A backup job freezes bitmap0 and records new writes into an anonymous successor.
  drive0.createSuccessor(bitmap0);
  engine.backend('drive0').write(40 * MiB, new Uint8Array(300 * KiB));

  const broken = drive0.createBitmap(64 * KiB, 'stale');
  broken.inconsistent = true;
  broken.markDirty(0, 2 * MiB);

  writeDensityProfile(engine, 'big0', 16 * GiB);
  return {
    engine,
    writeMore: () => {
      engine.backend('drive0').write(8 * MiB, new Uint8Array(256 * KiB));
      engine.backend('drive0').write(60 * MiB, new Uint8Array(64 * KiB));
    },
  };
}

const WRITES_BEFORE_THE_JOB: [number, number][] = [
  [0, 192 * KiB],
  [1 * MiB, 64 * KiB],
  [3 * MiB + 5, 512 * KiB],
  [12 * MiB, 2 * MiB],
  [20 * MiB, 64 * KiB],
  [21 * MiB, 64 * KiB],
  [22 * MiB, 64 * KiB],
  [33 * MiB, 5 * MiB],
  [50 * MiB, 128 * KiB],
  [63 * MiB, MiB],
];

/** Bursts of writes whose density rises and falls along the disk; deterministic. */
function writeDensityProfile(engine: Engine, nodeName: string, length: number): void {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const granule = 64 * KiB;
  const granules = length / granule;
  for (let first = 0; first < granules; first += 8) {
    const where = first / granules;
    const heat = where < 0.08 ? 0.9 : Math.max(0, Math.sin(where * Math.PI * 5)) ** 2 * 0.9;
    if (random() >= heat) continue;
    const start = first + Math.floor(random() * 6);
    engine.backend(nodeName).write(start * granule, new Uint8Array((1 + Math.floor(random() * 2)) * granule));
  }
}
