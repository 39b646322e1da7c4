/** `bitmap-lab qmp --stdio`: QMP on standard input and output, one JSON request per line. */
import { createInterface } from 'node:readline';
import { Engine } from '../engine/engine';
import { PACKAGE, QEMU_VERSION, QmpMonitor } from '../engine/qmp/monitor';
import { toQemuJson } from '../engine/qobject';

export function serveStdio(): Promise<void> {
  const monitor = new QmpMonitor(new Engine());
  const send = (message: unknown) => process.stdout.write(`${toQemuJson(message)}\n`);
  send({ QMP: { version: { qemu: QEMU_VERSION, package: PACKAGE }, capabilities: [] } });
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      send({ error: { class: 'GenericError', desc: 'JSON parse error' } });
      return;
    }
    const reply = monitor.execute(request);
    for (const event of monitor.takeEvents()) send(event);
    send(reply);
  });
  return new Promise((resolve) => lines.on('close', resolve));
}
