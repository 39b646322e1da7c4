/** The bitmap-lab command line: a thin shell over the engine. */
import { Command } from 'commander';
import { PACKAGE } from '../engine/qmp/monitor';
import { demoCommand } from './demo';
import { exportCommand } from './export';
import { inspectCommand } from './inspect';
import { qmpCommand } from './qmp-server';
import { runCommand } from './run';

const program = new Command()
  .name('bitmap-lab')
  .description("Step through QEMU dirty bitmaps and backup jobs on an exact engine of QEMU's semantics.")
  .version(PACKAGE);

program
  .command('qmp')
  .description('Serve QMP as QEMU 7.2 does, byte for byte: on a unix socket (one client at a time) or on stdin/stdout.')
  .option('--socket <path>', 'listen on a unix socket, like -qmp unix:PATH,server=on,wait=off')
  .option('--stdio', 'talk QMP over stdin/stdout, like -qmp stdio')
  .addHelpText('after', '\nJobs run in real time. End with {"execute": "quit"}: images are closed and persistent bitmaps stored.\n'
    + 'Examples:\n  bitmap-lab qmp --socket /tmp/qmp.sock\n  bitmap-lab qmp --stdio')
  .action(qmpCommand);

program
  .command('run')
  .description('Run a scenario file: print what each step did; exit 1 when an expectation fails.')
  .argument('<file>', 'a *.bitmaplab.json scenario')
  .option('--json', 'print the results as JSON')
  .option('--to <frame>', 'print the state after one frame of the timeline, as JSON')
  .option('--keep <dir>', 'make the images in DIR and keep them')
  .addHelpText('after', '\nExamples:\n  bitmap-lab run examples/failed-incremental-always.bitmaplab.json\n  bitmap-lab run my.bitmaplab.json --to 40')
  .action(runCommand);

program
  .command('demo')
  .description("Why QEMU's `always` bitmap mode exists: a failed incremental backup and its retry, under on-success and always.")
  .option('--out <file>', 'where to write the HTML page of both timelines', 'bitmap-lab-demo.html')
  .action(demoCommand);

program
  .command('export')
  .description('Run a scenario and write its timeline as one self-contained HTML page (no network), to step through in any browser.')
  .argument('<file>', 'a *.bitmaplab.json scenario')
  .requiredOption('--html <out>', 'the page to write')
  .addHelpText('after', '\nExample:\n  bitmap-lab export examples/always-failure.bitmaplab.json --html always-failure.html')
  .action(exportCommand);

program
  .command('inspect')
  .description('Show an image (raw or qcow2): size, clusters, allocation, backing chain and persistent bitmaps. Opens it read-only.')
  .argument('<image>', 'an image file')
  .option('--json', 'print it as JSON')
  .addHelpText('after', '\nExample:\n  bitmap-lab inspect disk.qcow2 --json')
  .action(inspectCommand);

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`bitmap-lab: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
