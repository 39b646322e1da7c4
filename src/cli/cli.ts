/** The bitmap-lab command line: a thin shell over the engine. */
import { Command } from 'commander';
import { PACKAGE } from '../engine/qmp/monitor';
import { serveStdio } from './qmp-stdio';

const program = new Command()
  .name('bitmap-lab')
  .description("Step through QEMU dirty bitmaps and backup jobs on an exact engine of QEMU's semantics.")
  .version(PACKAGE);

program
  .command('qmp')
  .description('Serve QMP on standard input and output, one JSON request per line, as QEMU does.')
  .requiredOption('--stdio', 'talk QMP over stdin/stdout')
  .action(serveStdio);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`bitmap-lab: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
