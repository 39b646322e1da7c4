/** The bitmap-lab command line: a thin shell over the engine. */
import { Command } from 'commander';
import { createInterface } from 'node:readline';
import { Engine } from '../engine/engine';
import { PACKAGE, QEMU_VERSION, QmpMonitor } from '../engine/qmp/monitor';
import { toQemuJson } from '../engine/qobject';

const program = new Command()
  .name('bitmap-lab')
  .description("Step through QEMU dirty bitmaps and backup jobs on an exact engine of QEMU's semantics.")
  .version(PACKAGE);

program
  .command('qmp')
  .description('Serve QMP on standard input and output, one JSON request per line, as QEMU does.')
  .requiredOption('--stdio', 'talk QMP over stdin/stdout')
  .action(serveStdio);

function serveStdio(): Promise<void> {
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
    send(monitor.execute(request));
  });
  return new Promise((resolve) => lines.on('close', resolve));
}

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`bitmap-lab: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
