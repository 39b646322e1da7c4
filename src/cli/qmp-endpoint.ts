/**
 * One emulated QEMU behind a QMP byte stream, as `qemu-system-x86_64 -qmp`
 * serves it: the greeting, one monitor (and capabilities negotiation) per
 * client, QEMU's JSON stream parser and its errors, replies and events as
 * QEMU writes them (`\r\n` after each), jobs running in real time between
 * requests, and `quit`. Transports (qmp-server.ts) only move bytes.
 */
import { Engine } from '../engine/engine';
import { RealtimeDriver } from '../engine/realtime';
import { JsonMessageParser } from '../engine/qmp/json-streamer';
import type { JsonMessage } from '../engine/qmp/json-parser';
import { PACKAGE, QEMU_VERSION, QmpMonitor } from '../engine/qmp/monitor';
import { toQemuJson } from '../engine/qobject';

/** Where a client's bytes go. */
export interface QmpConnection {
  write(text: string): void;
}

interface Session {
  connection: QmpConnection;
  monitor: QmpMonitor;
  parser: JsonMessageParser;
}

export class QmpEndpoint {
  private readonly engine = new Engine();
  private readonly driver = new RealtimeDriver(this.engine.scheduler, {
    afterRun: () => this.sendEvents(),
    onError: (error) => reportBug(error),
  });
  private session: Session | undefined;
  private finished = false;

  /** `exit` ends the process once the last reply is on its way (quit, a signal). */
  constructor(private readonly exit: () => void) {
    // Like QEMU's, qemu-io's reports go to the process's own stdout and stderr.
    this.engine.console = (text, stream) => void (stream === 'stdout' ? process.stdout : process.stderr).write(text);
  }

  /** A client's turn begins: it is greeted and must negotiate capabilities, whoever came before. */
  open(connection: QmpConnection): void {
    const monitor = new QmpMonitor(this.engine);
    const parser = new JsonMessageParser((message) => this.handle(message));
    this.session = { connection, monitor, parser };
    this.send({ QMP: { version: { qemu: QEMU_VERSION, package: PACKAGE }, capabilities: ['oob'] } });
  }

  receive(bytes: Uint8Array): void {
    this.session?.parser.feed(bytes);
  }

  /** The client left; the engine and its jobs carry on, their events unheard until the next client. */
  close(): void {
    this.session?.monitor.close();
    this.session = undefined;
  }

  /** SIGINT or SIGTERM: QEMU announces the shutdown, closes its images (storing bitmaps) and exits. */
  terminate(signal: NodeJS.Signals): void {
    if (this.finished) return;
    process.stderr.write(`bitmap-lab: terminating on signal ${signal}\n`);
    this.engine.emit('SHUTDOWN', { guest: false, reason: 'host-signal' });
    this.shutDown();
  }

  /** The input ended for good (stdio): close the images as QEMU would on its way out, and exit. */
  endOfInput(): void {
    this.shutDown();
  }

  private shutDown(): void {
    if (this.finished) return;
    this.engine.shutdown();
    this.sendEvents();
    this.finish();
  }

  private finish(): void {
    this.finished = true;
    this.driver.stop();
    this.exit();
  }

  /**
   * One request, as QEMU's monitor takes it: timers that expired meanwhile
   * run first, then the command; its events go out before its reply.
   */
  private handle(message: JsonMessage): void {
    const session = this.session;
    // QEMU reads nothing more once quit has been accepted.
    if (!session || this.finished) return;
    try {
      this.driver.catchUp();
      this.sendEvents();
      const reply = 'error' in message ? { error: { class: 'GenericError', desc: message.error } } : session.monitor.execute(message.value);
      this.sendEvents();
      this.send(reply);
      if ('return' in reply && isQuit(message)) return this.finish();
    } catch (error) {
      reportBug(error);
    }
    this.driver.kick();
  }

  private sendEvents(): void {
    for (const event of this.session?.monitor.takeEvents() ?? []) this.send(event);
  }

  private send(message: unknown): void {
    this.session?.connection.write(`${toQemuJson(message)}\r\n`);
  }
}

/** A bug of ours (the monitor answers command errors itself) is reported, and the server carries on. */
const reportBug = (error: unknown) =>
  process.stderr.write(`bitmap-lab: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);

const isQuit = (message: JsonMessage) =>
  'value' in message && typeof message.value === 'object' && message.value !== null && (message.value as { execute?: unknown }).execute === 'quit';
