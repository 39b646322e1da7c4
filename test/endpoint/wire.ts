/**
 * Wire-level test support: a QMP server on a unix socket, either real QEMU
 * or our `bitmap-lab qmp --socket` (spawned from dist/, so the whole CLI is
 * under test), and a raw client that sends bytes and reads lines exactly as
 * they arrive, `\r\n` and all.
 */
import * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import { QemuProcess } from '../support/qemu';

const TIMEOUT_MS = 10_000;
const CLI = path.resolve(__dirname, '../../../dist/cli.js');

export type ServerKind = 'qemu' | 'ours';

export interface Server {
  kind: ServerKind;
  /** The scratch directory the server runs in (its working directory). */
  dir: string;
  socketPath: string;
  child: childProcess.ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  /** Kills the server if it still runs and removes its directory. */
  stop(): Promise<void>;
}

/** The argv that serves QMP on a socket path or on stdio: QEMU as QEMU-REFERENCE.md starts it, or our CLI. */
function command(kind: ServerKind, socket: string | 'stdio'): [string, string[]] {
  if (kind === 'ours') return [process.execPath, [CLI, 'qmp', ...(socket === 'stdio' ? ['--stdio'] : ['--socket', socket])]];
  const binary = QemuProcess.binary();
  if (!binary) throw new Error('qemu-system-x86_64 not found on PATH');
  const qmp = socket === 'stdio' ? 'stdio' : `unix:${socket},server=on,wait=off`;
  return [binary, ['-machine', 'none', '-accel', 'tcg', '-nodefaults', '-display', 'none', '-qmp', qmp]];
}

/** Serves QMP on stdio in a fresh directory, given all of `input` (which should end in quit); stdout and exit code. */
export async function runStdio(kind: ServerKind, input: string): Promise<{ stdout: string; code: number | null }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bitmap-lab-stdio-${kind}-`));
  const [file, args] = command(kind, 'stdio');
  const child = childProcess.spawn(file, args, { cwd: dir, stdio: ['pipe', 'pipe', 'ignore'] });
  let stdout = '';
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} --stdio: timed out; stdout so far: ${stdout}`)), TIMEOUT_MS);
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.once('exit', (code) => (clearTimeout(timer), resolve({ stdout, code })));
      child.stdin!.end(Buffer.from(input, 'latin1'));
    });
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts a server in a fresh directory (prepared by `setup`) and waits for its socket. */
export async function startServer(kind: ServerKind, setup?: (dir: string) => void): Promise<Server> {
  if (kind === 'ours' && !fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bitmap-lab-wire-${kind}-`));
  setup?.(dir);
  const socketPath = path.join(dir, 'qmp.sock');
  const [file, args] = command(kind, socketPath);
  const child = childProcess.spawn(file, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const server: Server = {
    kind, dir, socketPath, child, exited,
    stdout: () => out,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  for (const deadline = Date.now() + TIMEOUT_MS; !fs.existsSync(socketPath); await sleep(10)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await server.stop();
      throw new Error(`${kind}: no QMP socket after ${TIMEOUT_MS} ms: ${err}`);
    }
  }
  return server;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that sees the wire as it is: lines kept whole, each checked to end in `\r\n`. */
export class RawClient {
  /** Every complete line received, without its `\r\n`, in order. */
  readonly lines: string[] = [];
  private taken = 0;
  private partial = Buffer.alloc(0);
  private ended = false;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Connects, retrying while the server is not yet listening. */
  static async connect(socketPath: string): Promise<RawClient> {
    for (const deadline = Date.now() + TIMEOUT_MS; ; await sleep(10)) {
      const socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.createConnection(socketPath);
        s.once('connect', () => resolve(s)).once('error', () => resolve(undefined));
      });
      if (socket) return new RawClient(socket);
      if (Date.now() > deadline) throw new Error(`could not connect to ${socketPath}`);
    }
  }

  get closed(): boolean {
    return this.ended;
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next `count` lines not yet taken. */
  async take(count: number, timeoutMs = TIMEOUT_MS): Promise<string[]> {
    await this.until(() => this.lines.length - this.taken >= count, timeoutMs, `${count} line(s)`);
    return this.lines.slice(this.taken, (this.taken += count));
  }

  /** Lines up to and including the first one that matches. */
  async takeUntil(match: (line: string) => boolean, timeoutMs = TIMEOUT_MS): Promise<string[]> {
    let found = -1;
    await this.until(() => (found = this.lines.findIndex((line, i) => i >= this.taken && match(line))) >= 0, timeoutMs, 'a matching line');
    return this.lines.slice(this.taken, (this.taken = found + 1));
  }

  /** Lines that arrive until the server has been quiet for `quietMs` (where none may be due). */
  async takeQuiet(quietMs = 200): Promise<string[]> {
    for (let seen = -1; seen !== this.lines.length; ) {
      seen = this.lines.length;
      await sleep(quietMs);
    }
    return this.lines.slice(this.taken, (this.taken = this.lines.length));
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = TIMEOUT_MS): Promise<void> {
    await this.until(() => this.ended, timeoutMs, 'the connection to close');
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.partial = Buffer.concat([this.partial, chunk]);
    for (let end = this.partial.indexOf('\n'); end >= 0; end = this.partial.indexOf('\n')) {
      const line = this.partial.subarray(0, end).toString('utf8');
      // QEMU ends every line with CR LF; a bare LF shows up in the comparison.
      this.lines.push(line.endsWith('\r') ? line.slice(0, -1) : `<LF only>${line}`);
      this.partial = this.partial.subarray(end + 1);
    }
    this.wake();
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  private async until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (this.ended && !done()) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.lines.slice(this.taken))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines.slice(this.taken))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }
}

/**
 * What may differ between QEMU and us on the wire: event timestamps, and
 * the `package` string (docs/differences-from-qemu.md).
 */
export function normalise(line: string): string {
  return line
    .replace(/"timestamp": \{"seconds": \d+, "microseconds": \d+\}/g, '"timestamp": {"seconds": S, "microseconds": U}')
    .replace(/"package": "(?:[^"\\]|\\.)*"/g, '"package": "P"');
}

/** Transcripts compared line by line, the first differences named (a whole-array diff of long lines is unreadable). */
export function assertSameLines(actual: readonly string[], expected: readonly string[]): void {
  const differences: string[] = [];
  for (let i = 0; i < Math.max(actual.length, expected.length) && differences.length < 5; i++) {
    if (actual[i] !== expected[i]) differences.push(`line ${i}:\n  got      ${actual[i]}\n  expected ${expected[i]}`);
  }
  assert.ok(differences.length === 0, `${differences.join('\n')}${actual.length !== expected.length ? `\n(${actual.length} lines, expected ${expected.length})` : ''}`);
}
