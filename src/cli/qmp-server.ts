/**
 * `bitmap-lab qmp --socket PATH | --stdio`: the QMP endpoint on a unix
 * socket, as `-qmp unix:PATH,server=on,wait=off` serves it, or on standard
 * input and output. Relative image file names resolve against the
 * directory the command was started in (the process's working directory).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { QmpEndpoint } from './qmp-endpoint';

export function qmpCommand(options: { socket?: string; stdio?: boolean }): void {
  if (options.socket !== undefined && !options.stdio) return serveSocket(options.socket);
  if (options.socket === undefined && options.stdio) return serveStdio();
  throw new Error('qmp: give exactly one of --socket PATH and --stdio');
}

/** SIGINT and SIGTERM shut down cleanly, as they do QEMU. */
function onSignals(endpoint: QmpEndpoint): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => endpoint.terminate(signal));
}

/**
 * One client at a time. Later clients connect, as the listening socket's
 * backlog lets them on QEMU, but are neither greeted nor read until those
 * before them have gone; then each gets its own greeting and negotiation.
 */
export function serveSocket(socketPath: string): void {
  let waiting: net.Socket[] = [];
  let current: net.Socket | undefined;
  let exiting = false;
  const server = net.createServer({ pauseOnConnect: true });
  const endpoint = new QmpEndpoint(() => {
    exiting = true;
    server.close();
    fs.rmSync(socketPath, { force: true });
    for (const socket of waiting) socket.destroy();
    waiting = [];
    // Exit once the last reply is written, or the client is gone.
    const exit = () => process.exit(0);
    if (!current || current.destroyed) return exit();
    current.once('close', exit);
    current.end(exit);
  });

  const serveNext = () => {
    if (exiting) return;
    const socket = waiting.shift();
    current = socket;
    if (!socket) return;
    endpoint.open({ write: (text) => void socket.write(text) });
    socket.on('data', (chunk: Buffer) => endpoint.receive(chunk));
    socket.resume();
  };

  server.on('connection', (socket) => {
    // A client gone while we write is simply gone; 'close' follows.
    socket.on('error', () => {});
    socket.on('close', () => {
      if (socket === current) {
        endpoint.close();
        serveNext();
      } else {
        waiting = waiting.filter((other) => other !== socket);
      }
    });
    waiting.push(socket);
    if (!current) serveNext();
  });
  // As QEMU does when it cannot bind: say why and exit 1.
  server.once('error', (error) => {
    process.stderr.write(`bitmap-lab: cannot listen on ${socketPath}: ${error.message}\n`);
    process.exit(1);
  });
  // QEMU replaces a stale socket file, and removes its own on exit.
  fs.rmSync(socketPath, { force: true });
  server.listen(socketPath);
  onSignals(endpoint);
}

/** Standard input and output as the one client. The server ends with its input. */
export function serveStdio(): void {
  const endpoint = new QmpEndpoint(() => process.exit(0));
  endpoint.open({ write: (text) => void process.stdout.write(text) });
  process.stdin.on('data', (chunk: Buffer) => endpoint.receive(chunk));
  process.stdin.on('end', () => endpoint.endOfInput());
  onSignals(endpoint);
}
