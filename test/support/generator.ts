/**
 * A seeded random scenario generator for the differential conformance suite
 * (test/support/differential.ts): image and null-co nodes, bitmaps of several
 * granularities, guest I/O, transactions and backups (parked, free-running,
 * failing through blkdebug), and a shrinker that cuts a diverging scenario
 * down to a minimal reproducer.
 *
 * The generator keeps a small model of what exists (nodes, bitmaps, the one
 * job) so that most steps succeed and scenarios reach deep states; a few
 * steps are invalid on purpose. It never generates inputs that crash QEMU
 * 7.2: block-dirty-bitmap-merge with `bitmaps: []`, a transaction
 * `block-dirty-bitmap-enable` whose lookup fails or under `completion-mode:
 * grouped`, a null-co node with a negative size.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { createQcow2 } from '../../src/engine/drivers/qcow2/create';
import { onEngine, onQemu, type Setup, type Step, type Transcript } from './differential';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Every image and the null-co nodes that take part in backups have this size. */
const SIZE = 4 * MiB;

/** mulberry32: small, fast and the same everywhere. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 ^ 0x9e3779b9;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The image files a scenario starts with, in the side's scratch directory. */
export type FileSpec = { name: string; format: 'raw' | 'qcow2'; size: number };

export interface Scenario {
  seed: number;
  files: FileSpec[];
  setup: Setup;
  steps: Step[];
}

export const setupFiles = (files: FileSpec[]): Setup => (dir) => {
  for (const file of files) {
    const at = path.join(dir, file.name);
    if (file.format === 'qcow2') createQcow2(at, { size: file.size });
    else {
      fs.writeFileSync(at, '');
      fs.truncateSync(at, file.size);
    }
  }
};

const qmp = (execute: string, args?: Record<string, unknown>): Step => (args ? { execute, arguments: args } : { execute });
const io = (node: string, command: string): Step => ({ io: command, node });

interface BitmapModel {
  name: string;
  enabled: boolean;
  /**
   * Surely exists: added by a plain block-dirty-bitmap-add (which leaves it
   * there whether it created it or found it). A transaction's add may have
   * been rolled back, and a transaction's enable of a bitmap that is not
   * there crashes QEMU 7.2, so only certain bitmaps are enabled there.
   */
  certain: boolean;
}
interface NodeModel {
  name: string;
  size: number;
  /** Can be a backup source or target (the same size as the others). */
  backup: boolean;
  qcow2: boolean;
  bitmaps: BitmapModel[];
}

const GRANULARITIES = [512, 4096, 65536, 131072, MiB];
const BITMAP_NAMES = ['b0', 'b1', 'b2', 'b3'];

/** blkdebug under a raw node, failing the `nth` `event` once (a set-state chain, as QEMU's tests do). */
function failing(file: string, event: 'read_aio' | 'write_aio', nth: number) {
  return {
    driver: 'blkdebug',
    image: { driver: 'file', filename: `@DIR@/${file}` },
    // An empty list would be refused as an unknown option (nothing of it survives flattening).
    ...(nth > 1 ? { 'set-state': Array.from({ length: nth - 1 }, (_, i) => ({ event, state: i + 1, new_state: i + 2 })) } : {}),
    'inject-error': [{ event, state: nth, errno: 5, once: true }],
  };
}

export function generate(seed: number): Scenario {
  const rng = new Rng(seed);
  const files: FileSpec[] = [
    { name: 's.raw', format: 'raw', size: SIZE },
    { name: 't.raw', format: 'raw', size: SIZE },
    { name: 'q.qcow2', format: 'qcow2', size: SIZE },
    { name: 'tq.qcow2', format: 'qcow2', size: SIZE },
  ];
  const steps: Step[] = [];
  const nodes: NodeModel[] = [];
  const node = (name: string, size: number, backup: boolean, qcow2 = false) => nodes.push({ name, size, backup, qcow2, bitmaps: [] });

  // Nodes: a raw source (maybe failing a read), a raw target (maybe failing a write), a qcow2 pair, null-co nodes.
  const srcFails = rng.chance(0.25);
  const tgtFails = !srcFails && rng.chance(0.2);
  const rawNode = (name: string, file: string, image?: Record<string, unknown>) =>
    qmp('blockdev-add', { driver: 'raw', 'node-name': name, file: image ?? { driver: 'file', filename: `@DIR@/${file}` } });
  steps.push(rawNode('src', 's.raw', srcFails ? failing('s.raw', 'read_aio', rng.int(1, 4)) : undefined));
  node('src', SIZE, true);
  steps.push(rawNode('tgt', 't.raw', tgtFails ? failing('t.raw', 'write_aio', rng.int(1, 3)) : undefined));
  node('tgt', SIZE, true);
  if (rng.chance(0.6)) {
    steps.push(qmp('blockdev-add', { driver: 'qcow2', 'node-name': 'qc', file: { driver: 'file', filename: '@DIR@/q.qcow2' } }));
    node('qc', SIZE, true, true);
    steps.push(qmp('blockdev-add', { driver: 'qcow2', 'node-name': 'tq', file: { driver: 'file', filename: '@DIR@/tq.qcow2' } }));
    node('tq', SIZE, true, true);
  }
  if (rng.chance(0.7)) {
    const size = rng.pick([SIZE, SIZE, MiB, 3 * MiB + 512]);
    steps.push(qmp('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size }));
    node('n0', size, size === SIZE);
  }
  // Guest writes and reads on raw nodes must stay within their files; a null-co node is sparse anyway.
  const failures = srcFails || tgtFails;

  type JobModel = {
    id: string;
    state: 'parked' | 'pending' | 'concluded';
    bitmap?: string;
    device: string;
    /** sync=none: runs until cancelled. */
    endless?: boolean;
    /**
     * Compressed: a compressed write over an allocated cluster fails (EIO),
     * so the job may end on its own, as with an injected failure.
     */
    mayFail?: boolean;
    /**
     * Still copying when set free (sync=full, or top on a raw or null-co
     * node): then its BLOCK_JOB_PENDING comes after block-job-set-speed 0,
     * not already with blockdev-backup as when a bitmap has little dirty.
     */
    copying?: boolean;
  };
  let job = null as JobModel | null;
  const created: Array<{ name: string; format: 'qcow2' | 'raw'; backed: boolean }> = [];
  /** Nodes that may hold bytes QEMU read from null-co: undefined (see startBackup). */
  const undefinedBytes = new Set(['n0']);
  let jobs = 0;
  const target = rng.int(10, 40);

  const anyNode = () => rng.pick(nodes);
  const withBitmaps = () => nodes.filter((n) => n.bitmaps.length);
  const bitmapName = (n: NodeModel, valid = 0.9) =>
    n.bitmaps.length && rng.chance(valid) ? rng.pick(n.bitmaps).name : rng.pick(BITMAP_NAMES);
  // A concluded job has let go of its bitmap. One the model calls busy may be free all the same (a job that failed
  // has concluded): a remove of it leaves the bitmap, but no longer certain.
  const busy = (n: NodeModel, name: string) => job !== null && job.state !== 'concluded' && job.device === n.name && job.bitmap === name;
  const removed = (n: NodeModel, name: string) => {
    for (const b of n.bitmaps.filter((x) => x.name === name)) {
      if (busy(n, name)) b.certain = false;
      else n.bitmaps.splice(n.bitmaps.indexOf(b), 1);
    }
  };

  const granularity = () => (rng.chance(0.2) ? {} : { granularity: rng.pick(GRANULARITIES) });
  const addArgs = (n: NodeModel) => {
    const free = BITMAP_NAMES.filter((b) => !n.bitmaps.some((x) => x.name === b));
    const name = free.length && rng.chance(0.9) ? rng.pick(free) : rng.pick(BITMAP_NAMES);
    const disabled = rng.chance(0.2);
    const args: Record<string, unknown> = { node: n.name, name, ...granularity() };
    if (disabled) args.disabled = true;
    if (n.qcow2 && rng.chance(0.3)) args.persistent = true;
    return { args, name, disabled };
  };
  const applyAdd = (n: NodeModel, name: string, disabled: boolean, certain: boolean) => {
    const known = n.bitmaps.find((b) => b.name === name);
    if (known) known.certain ||= certain;
    else n.bitmaps.push({ name, enabled: !disabled, certain });
  };
  /** Sources for a merge: names on the node, or {node, name} anywhere (never an empty list). */
  const mergeSources = (n: NodeModel) => {
    const count = rng.int(1, 3);
    return Array.from({ length: count }, () => {
      if (rng.chance(0.5)) return bitmapName(n);
      const other = withBitmaps().length && rng.chance(0.9) ? rng.pick(withBitmaps()) : anyNode();
      return { node: other.name, name: bitmapName(other) };
    });
  };

  const guestWrite = (n: string, sizeOf: number) => {
    const kind = rng.int(0, 9);
    const aligned = rng.chance(0.5);
    const len = aligned ? rng.pick([4 * KiB, 64 * KiB, 128 * KiB, 512 * KiB]) : rng.int(1, 200 * KiB);
    const max = Math.max(0, sizeOf - len);
    const off = aligned ? Math.floor(rng.int(0, max) / 4096) * 4096 : rng.int(0, max);
    const pattern = `-P 0x${rng.int(1, 255).toString(16)}`;
    if (kind < 6) return io(n, `write ${pattern} ${off} ${len}`);
    if (kind < 8) return io(n, `write -z ${off} ${len}`);
    return io(n, `discard ${off} ${len}`);
  };

  /**
   * Raw files that may hold blocks FALLOC_FL_ZERO_RANGE left unwritten and
   * out of the page cache (a `write -z` reached them, or a backup wrote
   * zeroes to them as its target). When a backup reads such a file, QEMU
   * 7.2 races with itself: the block status of a task's next cluster
   * (SEEK_DATA, on the main thread) and the previous task's read with the
   * kernel's readahead (on the thread pool) come in either order, so the
   * next cluster is a hole or data, and a qcow2 target allocates it or not,
   * from one run to the next (random seeds 1231, 1476; QEMU against QEMU
   * gives different transcripts). Before a job may read a cold file, a guest
   * read of the whole node puts it in the page cache: unwritten blocks are
   * then data on QEMU whatever the timing (and in our model); true holes stay
   * holes. A source failing its reads through blkdebug is never read ahead
   * (that would move its failure): its zero writes punch holes instead (`-u`).
   */
  const cold = new Set<string>();
  const raw = (name: string | undefined) => name === 'src' || name === 'tgt';
  const warm = (name: string | undefined) => {
    if (!name || !cold.has(name)) return;
    steps.push(io(name, `read 0 ${SIZE}`));
    cold.delete(name);
  };
  const pushWrite = (name: string, size: number) => {
    // The node whose file the request reaches: through the filter, the job's source.
    const reaches = name === 'cbw' ? job?.device : name;
    // Copy-before-write reads the old data of the clusters written.
    if (name === 'cbw') warm(reaches);
    const step = guestWrite(name, size) as { io: string; node: string };
    if (raw(reaches) && step.io.startsWith('write -z')) {
      if (reaches === 'src' && srcFails) step.io = step.io.replace('write -z', 'write -z -u');
      else cold.add(reaches!);
    }
    steps.push(step);
  };

  const bitmapCommand = () => {
    const n = rng.chance(0.95) ? anyNode() : { name: 'nowhere', size: SIZE, backup: false, qcow2: false, bitmaps: [] };
    const what = rng.int(0, 9);
    if (what < 3 || !n.bitmaps.length) {
      const { args, name, disabled } = addArgs(n);
      steps.push(qmp('block-dirty-bitmap-add', args));
      if (nodes.includes(n)) applyAdd(n, name, disabled, true);
      return;
    }
    const name = bitmapName(n);
    const b = n.bitmaps.find((x) => x.name === name);
    if (what < 4) {
      steps.push(qmp('block-dirty-bitmap-remove', { node: n.name, name }));
      removed(n, name);
    } else if (what < 5) steps.push(qmp('block-dirty-bitmap-clear', { node: n.name, name }));
    else if (what < 6) {
      steps.push(qmp('block-dirty-bitmap-enable', { node: n.name, name }));
      if (b && !busy(n, name)) b.enabled = true;
    } else if (what < 7) {
      steps.push(qmp('block-dirty-bitmap-disable', { node: n.name, name }));
      if (b && !busy(n, name)) b.enabled = false;
    } else steps.push(qmp('block-dirty-bitmap-merge', { node: n.name, target: name, bitmaps: mergeSources(n) }));
  };

  const transaction = () => {
    const actions: Array<{ type: string; data: Record<string, unknown> }> = [];
    // What existed before and is not removed earlier in this transaction: the only bitmaps a transaction may enable.
    const enableable = new Set(nodes.flatMap((n) => n.bitmaps.filter((b) => b.certain && !busy(n, b.name)).map((b) => `${n.name}/${b.name}`)));
    const grouped = rng.chance(0.15);
    for (let i = rng.int(1, 4); i > 0; i--) {
      const n = anyNode();
      const what = rng.int(0, 5);
      if (what === 0 || !n.bitmaps.length) actions.push({ type: 'block-dirty-bitmap-add', data: addArgs(n).args });
      else {
        const name = bitmapName(n);
        if (what === 1) actions.push({ type: 'block-dirty-bitmap-clear', data: { node: n.name, name } });
        else if (what === 2) actions.push({ type: 'block-dirty-bitmap-disable', data: { node: n.name, name } });
        else if (what === 3) actions.push({ type: 'block-dirty-bitmap-merge', data: { node: n.name, target: name, bitmaps: mergeSources(n) } });
        else if (what === 4) {
          actions.push({ type: 'block-dirty-bitmap-remove', data: { node: n.name, name } });
          enableable.delete(`${n.name}/${name}`);
        } else if (!grouped && enableable.has(`${n.name}/${name}`)) actions.push({ type: 'block-dirty-bitmap-enable', data: { node: n.name, name } });
      }
    }
    if (!actions.length) return;
    steps.push(qmp('transaction', grouped ? { actions, properties: { 'completion-mode': 'grouped' } } : { actions }));
    // The model cannot tell whether it committed: adds may exist now, removed bitmaps may be gone.
    for (const a of actions) {
      const n = nodes.find((x) => x.name === a.data.node);
      if (!n) continue;
      if (a.type === 'block-dirty-bitmap-add') applyAdd(n, a.data.name as string, a.data.disabled === true, false);
      if (a.type === 'block-dirty-bitmap-remove') removed(n, a.data.name as string);
    }
  };

  /**
   * drive-backup's target: a new image (qcow2, raw, or the source's format),
   * or, with mode=existing, one an earlier drive-backup created whose job is
   * gone (never one backed by its source, nor a file a node holds). Its
   * format when known: compress needs qcow2.
   */
  const driveTarget = (device: NodeModel, sync: string, args: Record<string, unknown>): 'qcow2' | 'raw' => {
    const reusable = created.filter((f) => !f.backed);
    if (reusable.length && rng.chance(0.3)) {
      const file = rng.pick(reusable);
      Object.assign(args, { target: `@DIR@/${file.name}`, mode: 'existing' });
      if (file.format === 'raw' || rng.chance(0.5)) args.format = file.format;
      return file.format;
    }
    const given = rng.chance(0.6) ? rng.pick(['qcow2', 'raw'] as const) : undefined;
    const format = given ?? (device.qcow2 ? 'qcow2' : 'raw');
    const name = `d${jobs - 1}.${format}`;
    created.push({ name, format, backed: sync === 'none' });
    args.target = `@DIR@/${name}`;
    if (given) args.format = given;
    return format;
  };

  const startBackup = () => {
    const sources = nodes.filter((n) => n.backup);
    const device = rng.pick(sources);
    // null-co reads leave QEMU's buffer as it was (no read-zeroes): its bytes are undefined, and so are those of
    // any target a job from it wrote. Nothing may depend on them: not a drive-backup target (compared whole at the
    // end, opened with detect-zeroes=unmap), nor compressed clusters (their size depends on the bytes).
    const definedData = !undefinedBytes.has(device.name);
    const drive = definedData && rng.chance(0.25);
    const targets = sources.filter((n) => n !== device && (n.name === 'tgt' || n.name === 'tq'));
    if (!drive && !targets.length) return;
    const tgt = drive ? undefined : rng.pick(targets);
    let sync = rng.pick(['full', 'full', 'top', 'none', 'incremental', 'bitmap', 'bitmap']);
    // A new image backed by the source names it: not a blkdebug file (json: names).
    const blkdebug = (device.name === 'src' && srcFails) || (device.name === 'tgt' && tgtFails);
    if (drive && sync === 'none' && blkdebug) sync = 'full';
    const command = drive ? 'drive-backup' : 'blockdev-backup';
    const args: Record<string, unknown> = { 'job-id': `j${jobs++}`, device: device.name, sync, 'auto-dismiss': false, 'filter-node-name': 'cbw' };
    const format = drive ? driveTarget(device, sync, args) : tgt!.qcow2 ? 'qcow2' : 'raw';
    if (tgt) args.target = tgt.name;
    let bitmap: string | undefined;
    if (rng.chance(0.05)) {
      // Refused on purpose: no job comes of it.
      steps.push(qmp(command, { ...args, 'job-id': 'bad', sync: rng.pick(['incremental', 'bitmap']), bitmap: 'nope', 'bitmap-mode': rng.pick(['always', 'never']) }));
      return;
    }
    // Compressed writes only to qcow2; a raw target is refused.
    const compress = definedData && (format === 'qcow2' ? rng.chance(0.3) : rng.chance(0.03));
    if (compress) args.compress = true;
    if (compress && format === 'raw') {
      steps.push(qmp(command, args));
      return;
    }
    if (sync === 'incremental' || sync === 'bitmap' || (sync !== 'none' && rng.chance(0.3))) {
      const certain = device.bitmaps.filter((b) => b.certain);
      if (certain.length) bitmap = rng.pick(certain).name;
      else {
        const { args: add, name, disabled } = addArgs(device);
        steps.push(qmp('block-dirty-bitmap-add', add));
        applyAdd(device, name, disabled, true);
        bitmap = name;
      }
      args.bitmap = bitmap;
      if (sync === 'bitmap' || (sync !== 'incremental' && sync !== 'none')) {
        args['bitmap-mode'] = sync === 'bitmap' ? rng.pick(['always', 'on-success', 'never']) : rng.pick(['always', 'on-success']);
      } else if (rng.chance(0.3)) args['bitmap-mode'] = 'on-success';
    }
    const mayFail = failures || compress;
    if (!definedData && tgt) undefinedBytes.add(tgt.name);
    const free = mayFail ? rng.chance(0.7) : rng.chance(0.3);
    warm(device.name);
    // Its zero writes leave the target's blocks unwritten.
    if (raw(tgt?.name)) cold.add(tgt!.name);
    if (free && sync !== 'none') {
      // Runs until it ends: one worker, so a failure comes at the same request on QEMU and here.
      // With a failure injected the job may end without passing pending: only COMPLETED comes either way.
      const autoFinalize = mayFail || rng.chance(0.5);
      Object.assign(args, { 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 } });
      if (!autoFinalize) args['auto-finalize'] = false;
      steps.push(qmp(command, args));
      // BLOCK_JOB_COMPLETED names the job `device`, BLOCK_JOB_PENDING `id`.
      const id = args['job-id'] as string;
      steps.push(autoFinalize ? { waitFor: 'BLOCK_JOB_COMPLETED', data: { device: id } } : { waitFor: 'BLOCK_JOB_PENDING', data: { id } });
      job = { id: args['job-id'] as string, state: autoFinalize ? 'concluded' : 'pending', bitmap, device: device.name };
      steps.push(qmp('query-block-jobs'));
      return;
    }
    Object.assign(args, { speed: 1, 'x-perf': { 'max-workers': 1, 'max-chunk': 65536 }, 'auto-finalize': false });
    steps.push(qmp(command, args));
    const copying = sync === 'full' || (sync === 'top' && !device.qcow2);
    job = { id: args['job-id'] as string, state: 'parked', bitmap, device: device.name, endless: sync === 'none', copying, mayFail };
  };

  const jobStep = () => {
    if (!job) return startBackup();
    const id = job.id;
    if (job.state === 'parked') {
      const what = rng.int(0, 9);
      if (what < 4) pushWrite(rng.chance(0.7) ? 'cbw' : job.device, SIZE);
      else if (what < 5) steps.push(qmp('query-jobs'));
      else if (what < 7 || job.endless) {
        steps.push(qmp('job-cancel', { id }));
        // A job that failed already has concluded: no event would come; the differential settle waits instead.
        if (!failures && !job.mayFail) steps.push({ waitFor: 'BLOCK_JOB_CANCELLED', data: { device: id } });
        job.state = 'concluded';
      } else {
        warm(job.device);
        steps.push(qmp('block-job-set-speed', { device: id, speed: 0 }));
        // A failing node may end the job instead of parking it at pending: then the settle waits, not an event.
        if (!failures && !job.mayFail && job.copying) steps.push({ waitFor: 'BLOCK_JOB_PENDING', data: { id } });
        job.state = 'pending';
      }
    } else if (job.state === 'pending') {
      steps.push(qmp('job-finalize', { id }));
      job.state = 'concluded';
    } else {
      if (rng.chance(0.2)) steps.push(qmp('query-jobs'));
      steps.push(qmp('job-dismiss', { id }));
      job = null;
    }
  };

  while (steps.length < target) {
    const r = rng.next();
    if (r < 0.3) {
      const n = (job as JobModel | null)?.state === 'parked' && rng.chance(0.5) ? { name: 'cbw', size: SIZE } : anyNode();
      pushWrite(n.name, n.size);
    } else if (r < 0.55) bitmapCommand();
    else if (r < 0.65) transaction();
    else jobStep();
  }
  // Leave nothing running: QEMU's quit would race a parked job.
  while ((job as JobModel | null) !== null) jobStep();
  return { seed, files, setup: setupFiles(files), steps };
}

// ---------------------------------------------------------------------------
// Running and shrinking

export interface Outcome {
  /** Index of the first step whose transcripts differ, or -1. */
  differs: number;
  ours?: Transcript[];
  theirs?: Transcript[];
  /** A side threw (e.g. an awaited event never came on it). */
  error?: string;
  /** How the images drive-backup created, or the files blockdev-backup wrote, differ once both sides closed them. */
  images?: string;
  compared: number;
}

/** The files drive-backup steps name as targets (`@DIR@/NAME`). */
function driveTargets(steps: Step[]): string[] {
  const names = steps.flatMap((step) =>
    'execute' in step && step.execute === 'drive-backup' ? [String(step.arguments?.target).replace('@DIR@/', '')] : [],
  );
  return [...new Set(names)];
}

const qemuImg = (...args: string[]) => spawnSync('qemu-img', args, { encoding: 'utf8' });

/**
 * The images drive-backup created, as test/conformance/backup.test.ts
 * compares them: the same guest data (`qemu-img compare`, each top layer
 * alone), and for qcow2 a clean `qemu-img check` of ours and the same
 * `qemu-img map` but for where normal clusters lie. Undefined when alike.
 */
function compareImages(kept: string, names: string[]): string | undefined {
  for (const name of names) {
    const [ours, theirs] = [path.join(kept, 'ours', name), path.join(kept, 'qemu', name)];
    if (fs.existsSync(ours) !== fs.existsSync(theirs)) return `${name}: ${fs.existsSync(ours) ? 'only the engine' : 'only QEMU'} created it`;
    if (!fs.existsSync(ours)) continue;
    const format = name.endsWith('.qcow2') ? 'qcow2' : 'raw';
    // The backing files named inside went with the scratch directories.
    if (format === 'qcow2') for (const image of [ours, theirs]) qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', '', image);
    const compared = qemuImg('compare', '-f', format, '-F', format, ours, theirs);
    if (compared.status !== 0) return `${name}: qemu-img compare: ${compared.stdout}${compared.stderr}`.trim();
    if (format !== 'qcow2') continue;
    const check = qemuImg('check', '--output=json', ours);
    if (check.status !== 0) return `${name}: qemu-img check of ours: ${check.stdout}${check.stderr}`.trim();
    const map = (image: string) => JSON.stringify(layout(qemuImg('map', '--output=json', '-f', 'qcow2', image).stdout));
    if (map(ours) !== map(theirs)) return `${name}: qemu-img map\n    engine: ${map(ours)}\n    qemu:   ${map(theirs)}`;
  }
  return undefined;
}

/**
 * `qemu-img map --output=json` without where clusters lie: which ranges are
 * present, zero, data, and whether they have a host offset at all (a
 * compressed cluster has none), merged wherever neighbours agree. QEMU's map
 * also splits where host offsets stop being contiguous, which depends on the
 * order its parallel copy tasks allocated clusters (random seed 993: one data
 * extent, or the same split in two, from run to run).
 */
export function layout(mapJson: string): Array<Record<string, unknown>> {
  const merged: Array<Record<string, unknown>> = [];
  for (const { offset, ...rest } of JSON.parse(mapJson) as Array<Record<string, unknown>>) {
    const extent = offset === undefined ? rest : { ...rest, offset: 'host' };
    const last = merged.at(-1);
    const same = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      isDeepStrictEqual({ ...a, start: 0, length: 0 }, { ...b, start: 0, length: 0 });
    if (last && same(last, extent) && (last.start as number) + (last.length as number) === extent.start) {
      last.length = (last.length as number) + (extent.length as number);
    } else merged.push({ ...extent });
  }
  return merged;
}

/** A node's image file in the scratch directory (`@DIR@/NAME`), through raw, qcow2 and blkdebug layers. */
function fileOf(spec: unknown): string | undefined {
  if (typeof spec !== 'object' || spec === null) return undefined;
  const o = spec as Record<string, unknown>;
  if (o.driver === 'file' && typeof o.filename === 'string') return o.filename.startsWith('@DIR@/') ? o.filename.slice('@DIR@/'.length) : undefined;
  return fileOf(o.file) ?? fileOf(o.image);
}

/**
 * The image files blockdev-backup steps wrote as targets (plain or in a
 * transaction), compared at the end as drive-backup images are, and those
 * left out because their bytes are undefined: null-co without read-zeroes
 * leaves QEMU's buffer as it was, so a target a job from a null-co node
 * wrote, or from a node such a job wrote, may hold anything
 * (docs/differences-from-qemu.md). Over-approximated from the steps alone,
 * so a shrunk scenario never compares what the whole one could not: every
 * backup of a node that may hold undefined bytes counts, refused or not.
 * Not the drive-backup targets, which compareImages() compares anyway.
 */
export function backupTargetFiles(steps: Step[]): { compared: Array<{ name: string; format: 'raw' | 'qcow2' }>; undefined: string[] } {
  const nodes = new Map<string, { name: string; format: 'raw' | 'qcow2' } | undefined>();
  const undefinedNodes = new Set<string>();
  const written = new Map<string, { name: string; format: 'raw' | 'qcow2' }>();
  const undefinedFiles = new Set<string>();
  const backup = (args: Record<string, unknown>) => {
    const [device, target] = [String(args.device), String(args.target)];
    if (undefinedNodes.has(device)) undefinedNodes.add(target);
    const file = nodes.get(target);
    if (!file) return;
    written.set(file.name, file);
    if (undefinedNodes.has(target)) undefinedFiles.add(file.name);
  };
  for (const step of steps) {
    if (!('execute' in step)) continue;
    const args = (step.arguments ?? {}) as Record<string, unknown>;
    if (step.execute === 'blockdev-add' && typeof args['node-name'] === 'string') {
      const name = fileOf(args);
      nodes.set(args['node-name'], name === undefined ? undefined : { name, format: args.driver === 'qcow2' ? 'qcow2' : 'raw' });
      if (JSON.stringify(args).includes('"null-co"') && !JSON.stringify(args).includes('"read-zeroes":true')) undefinedNodes.add(args['node-name']);
    }
    if (step.execute === 'blockdev-backup') backup(args);
    if (step.execute === 'transaction') {
      for (const action of (args.actions ?? []) as Array<{ type: string; data: Record<string, unknown> }>) if (action.type === 'blockdev-backup') backup(action.data);
    }
  }
  const drive = new Set(driveTargets(steps));
  return {
    compared: [...written.values()].filter((f) => !undefinedFiles.has(f.name) && !drive.has(f.name)),
    undefined: [...undefinedFiles],
  };
}

/**
 * The guest data of blockdev-backup targets (backupTargetFiles()): the same
 * on both sides (`qemu-img compare`, a qcow2 image's top layer alone).
 * Not their allocation, which QEMU's races decide (docs/differences-from-qemu.md).
 */
function compareTargets(kept: string, files: Array<{ name: string; format: 'raw' | 'qcow2' }>): string | undefined {
  for (const { name, format } of files) {
    const [ours, theirs] = [path.join(kept, 'ours', name), path.join(kept, 'qemu', name)];
    if (fs.existsSync(ours) !== fs.existsSync(theirs)) return `${name}: only ${fs.existsSync(ours) ? 'the engine' : 'QEMU'} has it`;
    if (!fs.existsSync(ours)) continue;
    if (format === 'qcow2') for (const image of [ours, theirs]) qemuImg('rebase', '-q', '-u', '-f', 'qcow2', '-b', '', image);
    const compared = qemuImg('compare', '-f', format, '-F', format, ours, theirs);
    if (compared.status !== 0) return `${name} (backup target): qemu-img compare: ${compared.stdout}${compared.stderr}`.trim();
  }
  return undefined;
}

/** Keeps a side's drive-backup images once it has closed them. */
const keep = (into: string, names: string[]) => ({
  after: (dir: string) => {
    fs.mkdirSync(into, { recursive: true });
    for (const name of names) if (fs.existsSync(path.join(dir, name))) fs.copyFileSync(path.join(dir, name), path.join(into, name));
  },
});

/**
 * Runs the steps on the engine, then on QEMU (waiting for the engine's
 * parked states); when the transcripts agree, compares the images
 * drive-backup created and the guest data of the files blockdev-backup
 * wrote as targets where it is defined (backupTargetFiles()).
 */
export async function compare(steps: Step[], setup: Setup): Promise<Outcome> {
  const targets = backupTargetFiles(steps).compared;
  const names = [...driveTargets(steps), ...targets.map((f) => f.name)];
  const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-generated-images-'));
  try {
    let ours: Transcript[];
    try {
      ours = await onEngine(steps, setup, keep(path.join(kept, 'ours'), names));
    } catch (error) {
      return { differs: -1, error: `engine: ${(error as Error).message}`, compared: 0 };
    }
    let theirs: Transcript[];
    try {
      theirs = await onQemu(steps, setup, ours, keep(path.join(kept, 'qemu'), names));
    } catch (error) {
      return { differs: -1, ours, error: `qemu: ${(error as Error).message}`, compared: 0 };
    }
    const differs = steps.findIndex((_, i) => !isDeepStrictEqual(ours[i], theirs[i]));
    const images = differs < 0 ? compareImages(kept, driveTargets(steps)) ?? compareTargets(kept, targets) : undefined;
    return { differs, ours, theirs, compared: steps.length, ...(images ? { images } : {}) };
  } finally {
    fs.rmSync(kept, { recursive: true, force: true });
  }
}

/** Both sides ran through, with the same transcripts and images. */
export const agree = (outcome: Outcome) => outcome.differs < 0 && !outcome.error && !outcome.images;

/** A divergence: transcripts or images differ, or QEMU failed where the engine ran through. */
const diverges = (outcome: Outcome) => outcome.differs >= 0 || outcome.images !== undefined || (outcome.error?.startsWith('qemu:') ?? false);

/**
 * Delta debugging over the steps: remove chunks (halves, quarters, ...),
 * then single steps, keeping any candidate that still diverges at any step.
 * A candidate on which the engine itself throws (a waitFor whose event
 * cannot come any more) is not a reproducer, nor one that fails on QEMU
 * (cut steps can leave inputs that crash QEMU 7.2) when the scenario
 * diverged in its transcripts.
 */
export async function shrink(steps: Step[], setup: Setup, log: (line: string) => void = () => {}): Promise<{ steps: Step[]; outcome: Outcome }> {
  let current = steps;
  let outcome = await compare(current, setup);
  if (!diverges(outcome)) return { steps: current, outcome };
  const reproduces = (tried: Outcome) => (outcome.differs >= 0 ? tried.differs >= 0 : outcome.images ? tried.images !== undefined : diverges(tried));
  for (let chunk = Math.ceil(current.length / 2); chunk >= 1; chunk = chunk === 1 ? 0 : Math.ceil(chunk / 2)) {
    let removed = true;
    while (removed) {
      removed = false;
      for (let at = current.length - chunk; at >= 0; at -= chunk) {
        const candidate = [...current.slice(0, at), ...current.slice(at + chunk)];
        if (!candidate.length) continue;
        const tried = await compare(candidate, setup);
        if (reproduces(tried)) {
          current = candidate;
          outcome = tried;
          removed = true;
          log(`  shrunk to ${current.length} steps`);
          at = Math.min(at, current.length - chunk + chunk);
        }
      }
    }
  }
  return { steps: current, outcome };
}

const sortKeys = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(sortKeys)
    : typeof value === 'object' && value !== null
      ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]))
      : value;

/** The reproducer as JSON steps, and the first differing step's two transcripts (only the fields that differ). */
export function describeDivergence(seed: number, files: FileSpec[], steps: Step[], outcome: Outcome): string {
  return [`seed ${seed}: ${steps.length} steps`, `files: ${JSON.stringify(files)}`, describeSteps(steps), describeDifference(outcome)].join('\n');
}

/** The steps, numbered as the transcripts number them. */
export function describeSteps(steps: Step[]): string {
  return ['steps:', ...steps.map((step, i) => `  ${String(i).padStart(2)} ${JSON.stringify(step)}`)].join('\n');
}

/** What differed: a side's error, the images, or the first differing step's fields. */
export function describeDifference(outcome: Outcome): string {
  const lines: string[] = [];
  if (outcome.error) lines.push(outcome.error);
  if (outcome.images) lines.push(`images differ: ${outcome.images}`);
  if (outcome.differs >= 0 && outcome.ours && outcome.theirs) {
    const ours = outcome.ours[outcome.differs] as unknown as Record<string, unknown>;
    const theirs = outcome.theirs[outcome.differs] as unknown as Record<string, unknown>;
    lines.push(`first difference at step ${outcome.differs}: ${ours.step}`);
    for (const key of Object.keys(ours).sort()) {
      if (isDeepStrictEqual(ours[key], theirs[key])) continue;
      lines.push(`  ${key}`, `    engine: ${JSON.stringify(sortKeys(ours[key]))}`, `    qemu:   ${JSON.stringify(sortKeys(theirs[key]))}`);
    }
  }
  return lines.join('\n');
}
