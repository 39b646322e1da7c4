/**
 * human-monitor-command: the one HMP command tests drive guests with,
 * `qemu-io [-d] DEVICE "COMMAND"`, parsed as HMP parses its arguments.
 */
import { BlockBackend } from '../block-backend';
import type { Engine } from '../engine';
import { runQemuIo } from '../qemu-io';
import { QmpError } from '../qmp-error';

/** HMP's get_str(): a double-quoted string with escapes, or one bare word. */
function takeString(text: string): [string, string] | undefined {
  text = text.trimStart();
  if (text === '') return undefined;
  if (!text.startsWith('"')) {
    const word = /^\S+/.exec(text)![0];
    return [word, text.slice(word.length)];
  }
  let value = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i];
    if (c === '"') return [value, text.slice(i + 1)];
    if (c === '\\' && i + 1 < text.length) {
      const escaped = text[++i];
      value += escaped === 'n' ? '\n' : escaped === 'r' ? '\r' : escaped;
    } else {
      value += c;
    }
  }
  return undefined;
}

const usageError = (message: string) => `qemu-io: ${message}\r\nTry "help qemu-io" for more information\r\n`;

export function humanMonitorCommand(engine: Engine, commandLine: string): string {
  const [name = '', ...rest] = commandLine.trim().split(/(?<=^\S+)\s/);
  if (name !== 'qemu-io') return `unknown command: '${name}'\r\n`;
  let args = rest.join(' ').trimStart();
  const deviceOnly = /^-d(\s|$)/.test(args);
  if (deviceOnly) args = args.slice(2);
  const device = takeString(args);
  if (!device) return usageError('block device name expected');
  const command = takeString(device[1]);
  if (!command) return usageError('string expected');
  if (command[1].trim() !== '') return usageError('extraneous characters at the end of line');
  // We have no guest devices, so a -d lookup never finds one.
  if (deviceOnly) return `Error: Device '${device[0]}' not found\r\n`;
  let backend: BlockBackend;
  try {
    backend = engine.backend(device[0]);
  } catch (error) {
    if (error instanceof QmpError) return `Error: ${error.desc}\r\n`;
    throw error;
  }
  // Attaching qemu-io's backend does not pause jobs; detaching it (blk_unref()) drains the node twice, after the
  // request: a job whose last clusters copy-before-write copied completes in the first drain (seeds 1377, 1454).
  const { stdout, stderr, hmp } = runQemuIo(backend, command[0]);
  engine.drain(backend.node);
  engine.drain(backend.node);
  engine.console(stdout, 'stdout');
  engine.console(stderr, 'stderr');
  return hmp;
}
