// Minimal QMP client that drives a real QEMU (no guest) as the reference for tests.
import * as childProcess from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

export interface QmpError { class: string; desc: string }
export interface QmpReply { return?: unknown; error?: QmpError }
export interface QmpEvent { event: string; data?: unknown }

const TIMEOUT_MS = 10_000;

function findOnPath(name: string): string | undefined {
  return (process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, name)).find((file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`QEMU: timed out after ${TIMEOUT_MS} ms waiting for ${what}`)), TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A test run that dies mid-way must not leave QEMU processes behind.
const live = new Set<QemuProcess>();
process.once('exit', () => live.forEach((qemu) => qemu.kill()));

interface Waiter { resolve(message: Record<string, unknown>): void; reject(error: Error): void }

export class QemuProcess {
  readonly events: QmpEvent[] = [];
  private greetingMessage: unknown;
  private readonly waiters: Waiter[] = [];
  private out = '';
  private err = '';
  private failure: Error | undefined;
  private readonly exited: Promise<void>;
  private socket: net.Socket | undefined;

  private constructor(private readonly child: childProcess.ChildProcess, private readonly dir: string) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { this.out += chunk; });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.err += chunk; });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.fail(`QEMU exited (code ${code}, signal ${signal})${this.err ? `: ${this.err.trim()}` : ''}`);
      resolve();
    }));
  }

  get greeting(): unknown {
    return this.greetingMessage;
  }

  static binary(): string | undefined {
    return findOnPath('qemu-system-x86_64');
  }

  static async start(options: { cwd?: string } = {}): Promise<QemuProcess> {
    const binary = QemuProcess.binary();
    if (!binary) throw new Error('QEMU: qemu-system-x86_64 not found on PATH');
    const args = ['-machine', 'none', '-accel', 'tcg', '-nodefaults', '-display', 'none'];
    // Line-buffered stdout so qemu-io output is readable as soon as the command returns.
    const stdbuf = findOnPath('stdbuf');
    return QemuProcess.spawn((sock) => {
      const qmp = [...args, '-qmp', `unix:${sock},server=on,wait=off`];
      return stdbuf ? [stdbuf, ['-oL', binary, ...qmp]] : [binary, qmp];
    }, options);
  }

  /** Bitmap Lab's endpoint (`bitmap-lab qmp --socket`, from the build in dist/) in place of QEMU, driven the same way. */
  static endpoint(options: { cwd?: string } = {}): Promise<QemuProcess> {
    const cli = path.join(__dirname, '..', '..', '..', 'dist', 'cli.js');
    if (!fs.existsSync(cli)) throw new Error(`endpoint: ${cli} not found (npm run build)`);
    return QemuProcess.spawn((sock) => [process.execPath, [cli, 'qmp', '--socket', sock]], options);
  }

  private static async spawn(commandFor: (sock: string) => [string, string[]], options: { cwd?: string }): Promise<QemuProcess> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-qemu-'));
    const sock = path.join(dir, 'qmp.sock');
    const [command, argv] = commandFor(sock);
    const child = childProcess.spawn(command, argv, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const qemu = new QemuProcess(child, dir);
    live.add(qemu);
    try {
      qemu.socket = await qemu.connect(sock);
      qemu.greetingMessage = await qemu.next('the QMP greeting');
      const reply = await qemu.execute('qmp_capabilities');
      if (reply.error) throw new Error(`QEMU: qmp_capabilities failed: ${reply.error.desc}`);
    } catch (error) {
      qemu.kill();
      throw error;
    }
    return qemu;
  }

  execute(command: string, args?: Record<string, unknown>): Promise<QmpReply> {
    return this.sendRaw(JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args }));
  }

  async sendRaw(text: string): Promise<QmpReply> {
    if (!this.socket) throw new Error('QEMU: not connected');
    const reply = this.next(`the reply to ${text}`);
    this.socket.write(text.endsWith('\n') ? text : `${text}\n`);
    const { id: _id, ...rest } = await reply;
    return rest as QmpReply;
  }

  stdout(): string {
    return this.out;
  }

  async quit(): Promise<void> {
    try {
      await this.execute('quit');
      await withTimeout(this.exited, 'QEMU to exit');
    } finally {
      this.kill();
    }
  }

  /** SIGKILL, as a crash: nothing is flushed or closed; resolves once the process is gone (and its image locks with it). */
  async crash(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await withTimeout(this.exited, 'QEMU to die');
    this.kill();
  }

  kill(): void {
    live.delete(this);
    this.socket?.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async connect(sock: string): Promise<net.Socket> {
    // QEMU creates the socket shortly after start; poll until it accepts a connection.
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      if (this.failure) throw this.failure;
      if (Date.now() > deadline) throw new Error(`QEMU: timed out after ${TIMEOUT_MS} ms waiting for the QMP socket ${sock}`);
      const socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.createConnection(sock);
        s.once('connect', () => resolve(s)).once('error', () => resolve(undefined));
      });
      if (socket) {
        // QEMU may reset the connection as it exits; readline re-emits that on
        // the interface, where it must not become an uncaught error.
        readline.createInterface({ input: socket })
          .on('line', (line) => this.receive(line))
          .on('error', (error) => this.fail(`QEMU: QMP connection error: ${error.message}`));
        socket.on('close', () => this.fail('QEMU: QMP connection closed'));
        return socket;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  // Replies come back in request order (no OOB), so a FIFO of waiters is enough.
  private next(what: string): Promise<Record<string, unknown>> {
    if (this.failure) return Promise.reject(this.failure);
    return withTimeout(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })), what);
  }

  private receive(line: string): void {
    if (!line.trim()) return;
    const message = JSON.parse(line) as Record<string, unknown>;
    const { event, data } = message;
    if (typeof event === 'string') {
      this.events.push(data === undefined ? { event } : { event, data });
    } else {
      // A waiter that already timed out still consumes its late reply, keeping the queue aligned.
      this.waiters.shift()?.resolve(message);
    }
  }

  private fail(reason: string): void {
    this.failure ??= new Error(reason);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }
}
