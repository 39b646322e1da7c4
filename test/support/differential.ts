/**
 * Runs one sequence of steps on real QEMU and on our engine and records, for
 * each side, every reply, what qemu-io printed, and the state of every node
 * afterwards, so a test can compare the two transcripts whole.
 *
 * Each side gets its own scratch directory; `@DIR@` in a step stands for it,
 * and the directory is written back as `@DIR@` in the transcript.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { crashEngine } from '../../src/engine/scenario/runner';
import { QemuProcess } from './qemu';

export type Step =
  | { execute: string; arguments?: Record<string, unknown> }
  /** A guest request through HMP's qemu-io. */
  | { io: string; node: string }
  /**
   * Wait until an event came (QEMU runs jobs in real time; we have settled
   * already). The step before it records only its reply: its events and the
   * state after it are compared here, once the job is parked.
   */
  | { waitFor: string; data?: Record<string, unknown>; advance?: true }
  /**
   * QEMU is killed (SIGKILL) and started again with no nodes; the engine
   * drops its nodes leaving the files as they were (crashEngine()).
   */
  | { crash: true };

export interface Transcript {
  step: string;
  reply: unknown;
  /** Events in the order they came, without timestamps. */
  events: unknown[];
  stdout: string;
  nodes: unknown;
  sha256: Record<string, string>;
}

/** Prepares a side's scratch directory (image files) before the steps run. */
export type Setup = (dir: string) => void;

export interface Side {
  execute(request: Record<string, unknown>): Promise<unknown>;
  /**
   * Until running jobs are parked (QEMU copies in real time; we have settled).
   * `agrees`, when given, says whether the state now is the one the engine
   * recorded: then a short calm is enough, else QEMU must hold still longer.
   */
  settle(agrees?: () => Promise<boolean>): Promise<void>;
  /** What QEMU printed on stdout since the last call. */
  takeStdout(): string;
  /** Events since the last call. */
  takeEvents(): Array<{ event: string; data?: unknown }>;
  /**
   * Resolves once an event like this one is among those not yet taken. With
   * `advance` (a scenario's advance step), the engine lets virtual time pass
   * for it; else it has settled already.
   */
  waitEvent(event: string, data: Record<string, unknown> | undefined, advance?: boolean): Promise<void>;
  /** Dies without closing anything and comes back with no nodes. */
  crash(): Promise<void>;
}

type Pending = Array<{ event: string; data?: unknown }>;

const matches = (pending: Pending, event: string, data: Record<string, unknown> | undefined) =>
  pending.some((e) => e.event === event && Object.entries(data ?? {}).every(([k, v]) => (e.data as Record<string, unknown>)?.[k] === v));

type NodeInfo = { 'node-name': string; 'dirty-bitmaps'?: Array<{ name?: string }> };

async function snapshot(side: Pick<Side, 'execute'>): Promise<Pick<Transcript, 'nodes' | 'sha256'>> {
  const reply = (await side.execute({ execute: 'query-named-block-nodes' })) as { return: NodeInfo[] };
  const sha256: Record<string, string> = {};
  for (const node of reply.return) {
    for (const { name } of node['dirty-bitmaps'] ?? []) {
      if (name === undefined) continue;
      const digest = (await side.execute({
        execute: 'x-debug-block-dirty-bitmap-sha256',
        arguments: { node: node['node-name'], name },
      })) as { return: { sha256: string } };
      sha256[`${node['node-name']}/${name}`] = digest.return.sha256;
    }
  }
  return { nodes: reply.return, sha256 };
}

/**
 * What a parked point shows of each job: its progress. QEMU sets a task's
 * dirty bits and its progress only when the task's last request completes,
 * which can be well after the command that started the job returned (its
 * read and write run on the thread pool); the nodes may already agree then
 * (a qcow2 target grew at the start of the request), so a state counts as
 * the engine's only once the jobs' progress is the engine's too (seed 286).
 */
async function jobProgress(side: Pick<Side, 'execute'>): Promise<unknown> {
  const reply = (await side.execute({ execute: 'query-block-jobs' })) as { return?: Array<Record<string, unknown>> };
  return (reply.return ?? []).map(({ device, status, offset, len }) => ({ device, status, offset, len }));
}

/** The engine's job progress at each compared step, for the other side's wait (not itself compared). */
const progressAt = new WeakMap<Transcript, unknown>();

/**
 * Whether the side's state now is the one `want` recorded: nodes, bitmaps
 * and the jobs' progress.
 */
export async function agreesWith(side: Pick<Side, 'execute'>, want: Transcript, fromSide: (value: unknown) => unknown): Promise<boolean> {
  if (!isDeepStrictEqual(fromSide(await snapshot(side)), fromSide({ nodes: want.nodes, sha256: want.sha256 }))) return false;
  return !progressAt.has(want) || isDeepStrictEqual(await jobProgress(side), progressAt.get(want));
}

function request(step: Exclude<Step, { waitFor: string } | { crash: true }>): Record<string, unknown> {
  if (!('io' in step)) return step;
  return { execute: 'human-monitor-command', arguments: { 'command-line': `qemu-io ${step.node} "${step.io}"` } };
}

/**
 * `json:{...}` file names compare as parsed objects: where flattened options
 * share a QDict bucket, QEMU's member order depends on copies we do not
 * replay (docs/differences-from-qemu.md).
 */
function canonical(key: string, value: unknown): unknown {
  // Host allocation depends on hole punching, which Node cannot do (docs/differences-from-qemu.md).
  if (key === 'actual-size') return undefined;
  if (typeof value !== 'string' || !value.startsWith('json:')) return value;
  const sorted = (v: unknown): unknown =>
    typeof v === 'object' && v !== null ? Object.fromEntries(Object.entries(v).sort().map(([k, x]) => [k, sorted(x)])) : v;
  return `json:${JSON.stringify(sorted(JSON.parse(value.slice(5))))}`;
}

/** A side's answers as transcripts hold them: its directory as `@DIR@`, implicit node names alike, canonical(). */
export const normaliser = (dir: string) => (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value ?? null).replaceAll(dir, '@DIR@').replace(/#block\d+/g, '#block'), canonical);

/** qemu-io's second report line holds timings; everything else must match. */
const withoutTimings = (stdout: string) => stdout.split('\n').filter((line) => !/ ops; .* sec \(/.test(line)).join('\n');

async function record(side: Side, steps: Step[], dir: string, expected?: Transcript[]): Promise<Transcript[]> {
  const toSide = <T extends Step>(step: T) => JSON.parse(JSON.stringify(step).replaceAll('@DIR@', dir)) as T;
  const fromSide = normaliser(dir);
  const transcript: Transcript[] = [];
  // Events recorded since the last command that can create a job: a waitFor
  // for one of them is already met (the job finished sooner than the
  // generator guessed; both sides recorded the event at the same step).
  // A waitFor after a command that failed waits for nothing: the replies
  // are compared, and the event would never come.
  let seen: Pending = [];
  let failed = false;
  for (const [i, step] of steps.entries()) {
    let reply: unknown = null;
    if ('execute' in step && ['blockdev-backup', 'drive-backup', 'transaction'].includes(step.execute)) seen = [];
    if ('waitFor' in step) {
      if (!failed && !matches(seen, step.waitFor, step.data)) await side.waitEvent(step.waitFor, step.data, step.advance);
    }
    else if ('crash' in step) await side.crash();
    else reply = fromSide(await side.execute(request(toSide(step))));
    failed = typeof reply === 'object' && reply !== null && 'error' in reply;
    const next = steps[i + 1];
    const compared = !(next && 'waitFor' in next);
    const want = compared ? expected?.[i] : undefined;
    await side.settle(want && (() => agreesWith(side, want, fromSide)));
    // QEMU prints before it replies, but its stdout pipe may be read a moment later.
    if ('io' in step) await new Promise((resolve) => setTimeout(resolve, 10));
    const entry: Transcript = { step: JSON.stringify(step), reply, events: [], stdout: '', nodes: null, sha256: {} };
    if (compared) {
      // Image creation prints the file names (drive-backup).
      entry.stdout = withoutTimings(side.takeStdout()).replaceAll(dir, '@DIR@');
      entry.events = side.takeEvents().map(({ event, data }) => fromSide({ event, data }));
      seen.push(...(entry.events as Pending));
      Object.assign(entry, fromSide(await snapshot(side)));
      progressAt.set(entry, await jobProgress(side));
    }
    transcript.push(entry);
  }
  return transcript;
}

/**
 * While a job runs on QEMU, its copying goes on after the command returned:
 * poll until the running jobs' progress holds still (a rate-limited job has
 * copied its chunk and sleeps), within two seconds.
 *
 * On a loaded machine a chunk in flight can hold the progress still for
 * longer than three polls. With `agrees` (the state is the engine's) a short
 * calm of 20 ms ends the wait; a state that differs is taken only after it
 * held for 300 ms, so a difference is reported only once QEMU has parked.
 */
export async function parked(execute: (message: Record<string, unknown>) => Promise<unknown>, agrees?: () => Promise<boolean>): Promise<void> {
  let last = '';
  let same = 0;
  let since = Date.now();
  for (const deadline = Date.now() + (agrees ? 5000 : 2000); Date.now() < deadline; ) {
    const reply = (await execute({ execute: 'query-block-jobs' })) as { return?: Array<{ status: string }> };
    const jobs = reply.return ?? [];
    // A job QEMU drains right after it started is `paused` for a moment: with `agrees`, every job must hold still.
    const watched = agrees ? jobs : jobs.filter((job) => job.status === 'running');
    if (!watched.length) return;
    const now = JSON.stringify(watched);
    if (now === last) same++;
    else [same, since] = [0, Date.now()];
    last = now;
    const calm = Date.now() - since;
    if (!agrees ? same >= 3 : calm >= 300 || (calm >= 20 && (await agrees()))) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** What to do with a side's scratch directory once its images are closed, before it goes. */
export interface RunOptions {
  after?: (dir: string) => void;
}

async function inScratchDir<T>(setup: Setup | undefined, run: (dir: string) => Promise<T>, options: RunOptions = {}): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-diff-'));
  try {
    setup?.(dir);
    const result = await run(dir);
    options.after?.(dir);
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `expected`, the engine's transcript of the same steps, lets the wait for
 * parked jobs end as soon as QEMU holds the engine's state (see parked()).
 */
export function onQemu(steps: Step[], setup?: Setup, expected?: Transcript[], options?: RunOptions): Promise<Transcript[]> {
  return overQmp(QemuProcess.start, steps, setup, expected, options);
}

/**
 * Our engine through its QMP endpoint (`bitmap-lab qmp --socket`, the build
 * in dist/), driven exactly as QEMU is: the wire layer, the real-time
 * scheduler and the process's stdout are tested too. `expected` (the
 * in-process engine's transcript) lets the wait for parked jobs end early.
 */
export function onEndpoint(steps: Step[], setup?: Setup, expected?: Transcript[], options?: RunOptions): Promise<Transcript[]> {
  return overQmp(QemuProcess.endpoint, steps, setup, expected, options);
}

function overQmp(
  start: (options: { cwd: string }) => Promise<QemuProcess>,
  steps: Step[],
  setup?: Setup,
  expected?: Transcript[],
  options?: RunOptions,
): Promise<Transcript[]> {
  return inScratchDir(setup, async (dir) => {
    let qemu = await start({ cwd: dir });
    try {
      let seen = 0;
      const takeStdout = () => {
        const all = qemu.stdout();
        const fresh = all.slice(seen);
        seen = all.length;
        return fresh;
      };
      let eventsSeen = 0;
      const takeEvents = () => qemu.events.slice(eventsSeen, (eventsSeen = qemu.events.length));
      const waitEvent = async (event: string, data: Record<string, unknown> | undefined) => {
        for (const deadline = Date.now() + 10_000; !matches(qemu.events.slice(eventsSeen), event, data); ) {
          if (Date.now() > deadline) throw new Error(`QEMU: no ${event} ${JSON.stringify(data)} within 10 s`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      };
      const execute = (message: Record<string, unknown>) => qemu.sendRaw(JSON.stringify(message));
      const settle = (agrees?: () => Promise<boolean>) => parked((message) => qemu.sendRaw(JSON.stringify(message)), agrees);
      const crash = async () => {
        await qemu.crash();
        qemu = await start({ cwd: dir });
        seen = 0;
        eventsSeen = 0;
      };
      return await record({ execute, settle, takeStdout, takeEvents, waitEvent, crash }, steps, dir, expected);
    } finally {
      await qemu.quit();
    }
  }, options);
}

export function onEngine(steps: Step[], setup?: Setup, options?: RunOptions): Promise<Transcript[]> {
  return inScratchDir(setup, (dir) => {
    const engine = new Engine();
    let printed = '';
    engine.console = (text, stream) => {
      if (stream === 'stdout') printed += text;
    };
    const monitor = new QmpMonitor(engine, { negotiated: true });
    const takeStdout = () => {
      const fresh = printed;
      printed = '';
      return fresh;
    };
    const execute = async (message: Record<string, unknown>) => monitor.execute(message);
    let pending: Pending = [];
    const takeEvents = () => {
      const taken = [...pending, ...monitor.takeEvents()];
      pending = [];
      return taken;
    };
    const waitEvent = async (event: string, data: Record<string, unknown> | undefined, advance?: boolean) => {
      pending.push(...monitor.takeEvents());
      // An advance lets time pass as the scenario runner does; a wait has settled, and an event that has not come never will.
      while (advance && !matches(pending, event, data) && engine.scheduler.step()) pending.push(...monitor.takeEvents());
      if (!matches(pending, event, data)) throw new Error(`engine: no ${event} ${JSON.stringify(data)} after ${advance ? 'advancing' : 'settling'}`);
    };
    const crash = async () => {
      crashEngine(engine, dir);
      printed = '';
      pending = [];
      monitor.takeEvents();
    };
    return record({ execute, settle: async () => {}, takeStdout, takeEvents, waitEvent, crash }, steps, dir).finally(() =>
      execute({ execute: 'quit' }),
    );
  }, options);
}
