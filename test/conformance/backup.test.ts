/**
 * The backup job on real QEMU 7.2 and on our engine, compared at the points
 * where QEMU parks the job: replies, events, node records with every bitmap
 * (successor and copy-before-write bitmaps included), sha256, job queries.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { onEngine, onQemu, type Setup, type Step } from '../support/differential';
import { layout } from '../support/generator';

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');
const MiB = 1024 * 1024;

const qmp = (execute: string, args?: Record<string, unknown>): Step => (args ? { execute, arguments: args } : { execute });
const io = (node: string, command: string): Step => ({ io: command, node });

const images: Setup = (dir) => {
  for (const name of ['s.raw', 't.raw']) {
    fs.writeFileSync(path.join(dir, name), '');
    fs.truncateSync(path.join(dir, name), 4 * MiB);
  }
};

const raw = (name: string, file: string, image?: Record<string, unknown>) =>
  qmp('blockdev-add', { driver: 'raw', 'node-name': name, file: image ?? { driver: 'file', filename: `@DIR@/${file}` } });

/** A job that copies one cluster and waits (QEMU-REFERENCE.md), held at pending and concluded. */
const parked = (extra: Record<string, unknown>) =>
  qmp('blockdev-backup', {
    'job-id': 'j0',
    device: 'src',
    target: 'tgt',
    speed: 1,
    'x-perf': { 'max-workers': 1, 'max-chunk': 65536 },
    'auto-finalize': false,
    'auto-dismiss': false,
    'filter-node-name': 'cbw',
    ...extra,
  });

const queries = [qmp('query-jobs'), qmp('query-block-jobs')];
const setup = [
  raw('src', 's.raw'),
  raw('tgt', 't.raw'),
  qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }),
  io('src', 'write -P 0x11 0 128k'),
  io('src', 'write -P 0x22 1M 64k'),
];
const finish = [qmp('block-job-set-speed', { device: 'j0', speed: 0 }), { waitFor: 'BLOCK_JOB_PENDING' } as Step, ...queries, qmp('job-finalize', { id: 'j0' }), ...queries, qmp('job-dismiss', { id: 'j0' }), ...queries];

const scenarios: Array<[string, Step[]]> = [
  ['sync=bitmap, always, success', [...setup, parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }), ...queries, ...finish]],
  ['sync=full, on-success, success', [...setup, parked({ sync: 'full', bitmap: 'b0', 'bitmap-mode': 'on-success' }), ...queries, ...finish]],
  ['sync=incremental, cancel while running', [...setup, parked({ sync: 'incremental', bitmap: 'b0' }), ...queries, qmp('job-cancel', { id: 'j0' }), { waitFor: 'BLOCK_JOB_CANCELLED' }, ...queries, qmp('job-dismiss', { id: 'j0' })]],
  [
    'guest writes through the filter while parked, then cancel under always',
    [
      ...setup,
      parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }),
      io('cbw', 'write -P 0x33 1M 4k'),
      io('cbw', 'write -P 0x33 2M 4k'),
      io('src', 'write 2M 4k'),
      ...queries,
      qmp('job-cancel', { id: 'j0' }),
      { waitFor: 'BLOCK_JOB_CANCELLED' },
      ...queries,
      qmp('job-dismiss', { id: 'j0' }),
      io('tgt', 'read -P 0x22 1M 64k'),
      io('tgt', 'read -P 0 2M 64k'),
    ],
  ],
  [
    'sync=none: copy-before-write only, until cancelled',
    [...setup, parked({ sync: 'none' }), io('cbw', 'write -P 0x33 1M 4k'), ...queries, qmp('job-cancel', { id: 'j0' }), { waitFor: 'BLOCK_JOB_CANCELLED' }, ...queries, qmp('job-dismiss', { id: 'j0' }), io('tgt', 'read -P 0x22 1M 64k')],
  ],
];

/** A source whose Nth read_aio fails with `errno` (a set-state chain, as QEMU's tests do). */
function failingSource(nth: number, errno = 5, event = 'read_aio'): Step {
  const setState = Array.from({ length: nth - 1 }, (_, i) => ({ event, state: i + 1, new_state: i + 2 }));
  return raw('src', 's.raw', {
    driver: 'blkdebug',
    image: { driver: 'file', filename: '@DIR@/s.raw' },
    'set-state': setState,
    'inject-error': [{ event, state: nth, errno, once: true }],
  });
}

/** The source writes before a backup that runs free until it parks at pending or ends. */
const failingSetup = (source: Step) => [
  source,
  raw('tgt', 't.raw'),
  qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0', granularity: 4096 }),
  io('src', 'write -P 0x11 0 128k'),
  io('src', 'write -P 0x22 1M 64k'),
  io('src', 'write -P 0x33 3M 300k'),
];

const freeRun = (extra: Record<string, unknown>, waitFor: string): Step[] => [
  qmp('blockdev-backup', { 'job-id': 'j0', device: 'src', target: 'tgt', 'auto-dismiss': false, 'filter-node-name': 'cbw', ...extra }),
  { waitFor },
  ...queries,
];

for (const mode of ['always', 'on-success', 'never'] as const) {
  for (const workers of [1, 64]) {
    scenarios.push([
      `sync=bitmap, ${mode}, the 2nd source read fails, max-workers ${workers}`,
      [...failingSetup(failingSource(2)), ...freeRun({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': mode, 'x-perf': { 'max-workers': workers, 'max-chunk': 65536 } }, 'BLOCK_JOB_COMPLETED'), qmp('job-dismiss', { id: 'j0' })],
    ]);
  }
  scenarios.push([
    `sync=full, ${mode === 'never' ? 'on-success' : mode}, the 3rd source read fails`,
    [...failingSetup(failingSource(3)), ...freeRun({ sync: 'full', bitmap: 'b0', 'bitmap-mode': mode === 'never' ? 'on-success' : mode }, 'BLOCK_JOB_COMPLETED'), qmp('job-dismiss', { id: 'j0' })],
  ]);
}

scenarios.push(
  ['on-source-error ignore retries the failed clusters', [...failingSetup(failingSource(2)), ...freeRun({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'on-source-error': 'ignore', 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'), qmp('job-dismiss', { id: 'j0' })]],
  ['on-source-error enospc with EIO reports', [...failingSetup(failingSource(2)), ...freeRun({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'on-source-error': 'enospc' }, 'BLOCK_JOB_COMPLETED'), qmp('job-dismiss', { id: 'j0' })]],
  [
    'on-source-error stop pauses for the user; resume finishes',
    [
      ...failingSetup(failingSource(2, 28)),
      ...freeRun({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'on-source-error': 'enospc', 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_ERROR'),
      qmp('job-resume', { id: 'j0' }),
      { waitFor: 'BLOCK_JOB_COMPLETED' },
      ...queries,
      qmp('job-dismiss', { id: 'j0' }),
    ],
  ],
  [
    'a read fails while a drain has cancelled the copy call: the error is dropped and the retry copies',
    [
      raw('src', 's.raw', { driver: 'blkdebug', image: { driver: 'file', filename: '@DIR@/s.raw' }, 'inject-error': [{ event: 'read_aio', errno: 5, once: true }] }),
      raw('tgt', 't.raw'),
      qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }),
      // Two clusters: the first read fails, and the call sleeps before the second.
      io('src', 'write -P 0x22 1M 128k'),
      parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'never' }),
      io('cbw', 'discard 3M 128k'),
      ...queries,
      ...finish,
    ],
  ],
  [
    'the target fails its 2nd write',
    [
      raw('src', 's.raw'),
      raw('tgt', 't.raw', { driver: 'blkdebug', image: { driver: 'file', filename: '@DIR@/t.raw' }, 'set-state': [{ event: 'write_aio', state: 1, new_state: 2 }], 'inject-error': [{ event: 'write_aio', state: 2, once: true }] }),
      qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }),
      io('src', 'write -P 0x11 0 128k'),
      io('src', 'write -P 0x22 1M 64k'),
      ...freeRun({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
    ],
  ],
);

const backup = (extra: Record<string, unknown>) =>
  qmp('blockdev-backup', { 'job-id': 'j9', device: 'src', target: 'tgt', sync: 'full', ...extra });

scenarios.push(
  [
    'blockdev-backup: every check, in QEMU order, and nothing left behind',
    [
      ...setup,
      raw('other', 's.raw', { driver: 'null-co', size: MiB }),
      qmp('blockdev-backup', { device: 'src', target: 'tgt' }),
      backup({ sync: 'foo' }),
      backup({ device: 'nope', target: 'nope2' }),
      backup({ target: 'nope' }),
      backup({ sync: 'bitmap' }),
      backup({ sync: 'incremental', 'bitmap-mode': 'on-success' }),
      backup({ sync: 'incremental', bitmap: 'nope', 'bitmap-mode': 'always' }),
      backup({ sync: 'bitmap', bitmap: 'nope' }),
      backup({ sync: 'bitmap', bitmap: 'b0' }),
      backup({ sync: 'none', bitmap: 'b0', 'bitmap-mode': 'always' }),
      backup({ sync: 'full', bitmap: 'b0', 'bitmap-mode': 'never' }),
      backup({ 'bitmap-mode': 'always' }),
      backup({ target: 'src' }),
      backup({ compress: true }),
      backup({ 'x-perf': { 'max-workers': 0 } }),
      backup({ 'x-perf': { 'max-chunk': -1 } }),
      backup({ target: 'other' }),
      backup({ 'filter-node-name': '1f' }),
      backup({ 'filter-node-name': 'tgt' }),
      backup({ 'x-perf': { 'max-chunk': 4096 } }),
      backup({ 'job-id': undefined }),
      backup({ 'job-id': '1x' }),
      backup({ speed: -1, sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }),
      parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }),
      backup({ 'job-id': 'j0' }),
      backup({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always' }),
      backup({ device: 'cbw' }),
      qmp('block-job-set-speed', { device: 'j0', speed: -1 }),
      qmp('transaction', { actions: [] }),
      qmp('transaction', { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'src', name: 'b1' } }], properties: { 'completion-mode': 'grouped' } }),
      ...queries,
    ],
  ],
  [
    'verbs in each state',
    [
      ...setup,
      parked({ sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'on-success' }),
      ...['job-resume', 'job-complete', 'job-finalize', 'job-dismiss'].map((verb) => qmp(verb, { id: 'j0' })),
      qmp('job-pause', { id: 'j0' }),
      qmp('job-pause', { id: 'j0' }),
      qmp('block-job-cancel', { device: 'j0' }),
      qmp('block-job-set-speed', { device: 'j0', speed: 0 }),
      ...queries,
      qmp('block-job-resume', { device: 'j0' }),
      { waitFor: 'BLOCK_JOB_PENDING' },
      ...['job-pause', 'job-resume', 'job-complete', 'job-dismiss'].map((verb) => qmp(verb, { id: 'j0' })),
      qmp('block-job-set-speed', { device: 'j0', speed: 5 }),
      qmp('block-job-finalize', { id: 'j0' }),
      ...['job-cancel', 'job-pause', 'job-resume', 'job-finalize'].map((verb) => qmp(verb, { id: 'j0' })),
      qmp('block-job-cancel', { device: 'j0', force: true }),
      qmp('job-dismiss', { id: 'j0' }),
      qmp('job-pause', { id: 'j0' }),
      qmp('block-job-pause', { device: 'src' }),
      ...queries,
    ],
  ],
);

/** What a scenario needs besides the raw images: qcow2 files, and whether its images can be read back. */
interface Extra {
  /** 4 MiB qcow2 images made with qemu-img before the steps, compared afterwards too. */
  qcow2?: string[];
  /** A failed compressed write leaves an L2 entry QEMU cannot read back: compare the layout only. */
  unreadable?: string[];
  /** Images the steps create (drive-backup targets), compared afterwards. */
  created?: string[];
  /** b.qcow2 with data, and top.qcow2 backed by it. */
  chain?: boolean;
}
const extras = new Map<string, Extra>();

const qcow2 = (name: string, file: string, image?: Record<string, unknown>) =>
  qmp('blockdev-add', { driver: 'qcow2', 'node-name': name, file: image ?? { driver: 'file', filename: `@DIR@/${file}` } });

/** Compressed backups to a qcow2 target (tq on t.qcow2); pattern data deflates alike with any zlib. */
const compressed: Array<[string, Step[], Extra]> = [
  [
    'compress to qcow2: full backup, then a second one over the allocated clusters fails with EIO',
    [
      ...failingSetup(raw('src', 's.raw')),
      qcow2('tq', 't.qcow2'),
      ...freeRun({ target: 'tq', sync: 'full', compress: true, 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
      ...freeRun({ target: 'tq', sync: 'full', compress: true, 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
      io('tq', 'read -P 0x33 3M 300k'),
    ],
    { qcow2: ['t.qcow2'] },
  ],
  [
    'compress, sync=bitmap always: the 2nd source read fails part-way, a retry completes',
    [
      ...failingSetup(failingSource(2)),
      qcow2('tq', 't.qcow2'),
      ...freeRun({ target: 'tq', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', compress: true, 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
      ...freeRun({ target: 'tq', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', compress: true, 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
    ],
    { qcow2: ['t.qcow2'] },
  ],
  [
    'compress with guest writes through the filter while parked',
    [
      ...setup,
      qcow2('tq', 't.qcow2'),
      parked({ target: 'tq', sync: 'full', compress: true }),
      io('cbw', 'write -P 0x44 1M 4k'),
      io('cbw', 'write -P 0x45 2M 64k'),
      ...queries,
      ...finish,
      io('tq', 'read -P 0x22 1M 64k'),
    ],
    { qcow2: ['t.qcow2'] },
  ],
  [
    'compress: the target fails its 2nd compressed write',
    [
      raw('src', 's.raw'),
      qcow2('tq', 't.qcow2', { driver: 'blkdebug', image: { driver: 'file', filename: '@DIR@/t.qcow2' }, 'set-state': [{ event: 'write_compressed', state: 1, new_state: 2 }], 'inject-error': [{ event: 'write_compressed', state: 2, once: true }] }),
      qmp('block-dirty-bitmap-add', { node: 'src', name: 'b0' }),
      io('src', 'write -P 0x11 0 128k'),
      io('src', 'write -P 0x22 1M 64k'),
      ...freeRun({ target: 'tq', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', compress: true, 'x-perf': { 'max-workers': 1 } }, 'BLOCK_JOB_COMPLETED'),
      qmp('job-dismiss', { id: 'j0' }),
    ],
    { qcow2: ['t.qcow2'], unreadable: ['t.qcow2'] },
  ],
  [
    'compress in a transaction, and refused for a raw target',
    [
      ...setup,
      qcow2('tq', 't.qcow2'),
      qmp('transaction', {
        actions: [
          { type: 'block-dirty-bitmap-add', data: { node: 'src', name: 'b1' } },
          { type: 'blockdev-backup', data: { 'job-id': 'j1', device: 'src', target: 'tgt', sync: 'full', compress: true } },
        ],
      }),
      qmp('transaction', {
        actions: [
          { type: 'block-dirty-bitmap-add', data: { node: 'src', name: 'b1' } },
          { type: 'blockdev-backup', data: { 'job-id': 'j1', device: 'src', target: 'tq', sync: 'full', compress: true, 'auto-dismiss': false } },
        ],
      }),
      { waitFor: 'BLOCK_JOB_COMPLETED' },
      ...queries,
      qmp('job-dismiss', { id: 'j1' }),
    ],
    { qcow2: ['t.qcow2'] },
  ],
];
const drive = (target: string, extra: Record<string, unknown>) =>
  qmp('drive-backup', { 'job-id': 'j0', device: 'src', target: `@DIR@/${target}`, ...extra });
/** drive-backup held like parked(): one cluster copied, then pending until finalized. */
const driveParked = (target: string, extra: Record<string, unknown>) =>
  drive(target, { speed: 1, 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 }, 'auto-finalize': false, 'auto-dismiss': false, 'filter-node-name': 'cbw', ...extra });
const driveFree = (target: string, extra: Record<string, unknown>): Step[] => [
  drive(target, { 'auto-dismiss': false, ...extra }),
  { waitFor: 'BLOCK_JOB_COMPLETED' },
  ...queries,
  qmp('job-dismiss', { id: 'j0' }),
];

const driveBackups: Array<[string, Step[], Extra]> = [
  [
    'drive-backup to a new qcow2, held at pending: the target nodes come and go with the job',
    [...setup, driveParked('n.qcow2', { sync: 'full', format: 'qcow2' }), ...queries, ...finish],
    { created: ['n.qcow2'] },
  ],
  [
    'drive-backup to a new raw image, the format taken from the source; sync=top without a backing file copies everything',
    [...setup, ...driveFree('n.raw', { sync: 'top' })],
    { created: ['n.raw'] },
  ],
  [
    'drive-backup mode=existing, with and without a format',
    [...setup, ...driveFree('t.raw', { sync: 'full', mode: 'existing', format: 'raw' }), io('src', 'write -P 0x44 2M 64k'), ...driveFree('t.raw', { sync: 'incremental', bitmap: 'b0', mode: 'existing' })],
    {},
  ],
  [
    'drive-backup sync=none: the new qcow2 is backed by the source; guest writes copy before they land',
    [
      ...setup,
      driveParked('n.qcow2', { sync: 'none', format: 'qcow2' }),
      io('cbw', 'write -P 0x33 1M 4k'),
      io('cbw', 'write -P 0x34 3M 4k'),
      ...queries,
      qmp('job-cancel', { id: 'j0' }),
      { waitFor: 'BLOCK_JOB_CANCELLED' },
      ...queries,
      qmp('job-dismiss', { id: 'j0' }),
    ],
    { created: ['n.qcow2'] },
  ],
  [
    'drive-backup sync=top of a qcow2 over a backing file: the new image gets the same backing file',
    [
      qmp('blockdev-add', { driver: 'qcow2', 'node-name': 'src', file: { driver: 'file', filename: '@DIR@/top.qcow2' } }),
      io('src', 'write -P 0x62 512k 1M'),
      driveParked('n.qcow2', { sync: 'top', format: 'qcow2' }),
      ...queries,
      ...finish,
    ],
    { chain: true, created: ['n.qcow2'] },
  ],
  [
    'drive-backup with compress to a new qcow2',
    [...setup, ...driveFree('n.qcow2', { sync: 'full', format: 'qcow2', compress: true, 'x-perf': { 'max-workers': 1 } })],
    { created: ['n.qcow2'] },
  ],
  [
    'drive-backup in grouped transactions: aborted by a later action, then alone',
    [
      ...setup,
      qcow2('tq', 't.qcow2'),
      qmp('transaction', {
        actions: [
          { type: 'drive-backup', data: { 'job-id': 'j0', device: 'src', target: '@DIR@/n.qcow2', format: 'qcow2', sync: 'incremental', bitmap: 'b0' } },
          { type: 'blockdev-backup', data: { 'job-id': 'j1', device: 'src', target: 'tq', sync: 'bitmap', bitmap: 'nope', 'bitmap-mode': 'always' } },
        ],
        properties: { 'completion-mode': 'grouped' },
      }),
      ...queries,
      qmp('transaction', {
        actions: [{ type: 'drive-backup', data: { 'job-id': 'j0', device: 'src', target: '@DIR@/n.qcow2', format: 'qcow2', sync: 'incremental', bitmap: 'b0', 'auto-dismiss': false } }],
        properties: { 'completion-mode': 'grouped' },
      }),
      { waitFor: 'BLOCK_JOB_COMPLETED' },
      ...queries,
      qmp('job-dismiss', { id: 'j0' }),
    ],
    { qcow2: ['t.qcow2'], created: ['n.qcow2'] },
  ],
  [
    'drive-backup: errors, in QEMU order, and what each leaves behind',
    [
      ...setup,
      drive('n1.qcow2', { sync: 'full', format: 'qcow2', device: 'nope' }),
      drive('missing.raw', { sync: 'full', mode: 'existing' }),
      drive('missing.raw', { sync: 'full', mode: 'existing', format: 'raw' }),
      drive('t.raw', { sync: 'full', mode: 'existing', format: 'qcow2' }),
      drive('n2.foo', { sync: 'full', format: 'foo' }),
      drive('n3.raw', { sync: 'none', format: 'raw' }),
      drive('t.raw', { sync: 'none', mode: 'existing', format: 'raw' }),
      drive('nodir/n4.qcow2', { sync: 'full', format: 'qcow2' }),
      drive('n5.qcow2', { sync: 'incremental', format: 'qcow2' }),
      drive('n6.raw', { sync: 'full', compress: true }),
      drive('n7.qcow2', { sync: 'full', format: 'qcow2', 'job-id': '1x' }),
      drive('n8.qcow2', { sync: 'full', format: 'qcow2', speed: -1 }),
      drive('n9.qcow2', { sync: 'full', format: 'qcow2', 'x-perf': { 'max-chunk': 4096 } }),
      // The source's own file: the image locks refuse, and nothing is overwritten.
      drive('s.raw', { sync: 'full', format: 'raw' }),
      drive('s.raw', { sync: 'full', mode: 'existing' }),
      raw('alias', 's.raw'),
      qmp('blockdev-backup', { 'job-id': 'j9', device: 'src', target: 'alias', sync: 'full' }),
      qmp('transaction', { actions: [{ type: 'drive-backup', data: { 'job-id': 'j0', device: 'src', target: '@DIR@/n10.qcow2', format: 'qcow2', sync: 'full' } }, { type: 'abort', data: {} }] }),
      ...queries,
    ],
    { created: ['n5.qcow2', 'n6.raw', 'n10.qcow2'] },
  ],
];

for (const [name, steps, extra] of [...compressed, ...driveBackups]) {
  scenarios.push([name, steps]);
  extras.set(name, extra);
}

const qcow2Images = ({ qcow2 = [], chain }: Extra): Setup => (dir) => {
  images(dir);
  for (const name of qcow2) spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, name), String(4 * MiB)]);
  if (!chain) return;
  spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(dir, 'b.qcow2'), String(4 * MiB)]);
  spawnSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x61 0 1M', path.join(dir, 'b.qcow2')]);
  spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.join(dir, 'b.qcow2'), '-F', 'qcow2', path.join(dir, 'top.qcow2')]);
};

/** Keeps each side's images once they are closed, for qemu-img compare. */
const keepImages = (into: string, names: string[]) => ({
  after: (dir: string) => {
    fs.mkdirSync(into, { recursive: true });
    for (const name of names) fs.copyFileSync(path.join(dir, name), path.join(into, name));
  },
});

const qemuImg = (...args: string[]) => spawnSync('qemu-img', args, { encoding: 'utf8' });

/** The same guest data on both sides; a qcow2 image of ours checks clean and maps as QEMU's does. */
function compareImages(kept: string, name: string, unreadable: boolean): void {
  const [ours, theirs] = [path.join(kept, 'ours', name), path.join(kept, 'qemu', name)];
  const format = name.endsWith('.qcow2') ? 'qcow2' : 'raw';
  // The backing files named inside went with the scratch directories: compare each top layer alone.
  if (format === 'qcow2') for (const image of [ours, theirs]) qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', '', image);
  if (!unreadable) {
    const compare = qemuImg('compare', '-f', format, '-F', format, ours, theirs);
    assert.equal(compare.status, 0, `${name}: ${compare.stdout}${compare.stderr}`);
  }
  if (format !== 'qcow2') return;
  const check = qemuImg('check', '--output=json', ours);
  assert.equal(check.status, 0, `${name}: ${check.stdout}${check.stderr}`);
  // Which ranges are present, zero, data, compressed (no host offset) or normal, as the random scenarios compare
  // them (layout()): where normal clusters lie, and so where QEMU's map splits an extent, depends on the order its
  // parallel copy tasks allocated them (random seed 993).
  const map = (image: string) => layout(qemuImg('map', '--output=json', '-f', 'qcow2', image).stdout);
  assert.deepEqual(map(ours), map(theirs), `${name}: qemu-img map`);
}

describe('backup against QEMU 7.2', { skip }, () => {
  for (const [name, steps] of scenarios) {
    test(name, async () => {
      const extra = extras.get(name) ?? {};
      const names = ['s.raw', 't.raw', ...(extra.qcow2 ?? []), ...(extra.created ?? [])];
      const setup = qcow2Images(extra);
      const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-backup-images-'));
      try {
        const [ours, theirs] = await Promise.all([
          onEngine(steps, setup, keepImages(path.join(kept, 'ours'), names)),
          onQemu(steps, setup, undefined, keepImages(path.join(kept, 'qemu'), names)),
        ]);
        for (let i = 0; i < steps.length; i++) {
          assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
        }
        // The backup targets (and sources) hold the same data on both sides.
        for (const image of names) compareImages(kept, image, extra.unreadable?.includes(image) ?? false);
      } finally {
        fs.rmSync(kept, { recursive: true, force: true });
      }
    });
  }
});
