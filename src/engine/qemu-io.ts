/**
 * The qemu-io commands that HMP's `qemu-io NODE "..."` runs (qemu-io-cmds.c):
 * write, read, discard and flush, printing what qemu-io prints on QEMU's
 * stdout and stderr. Permission errors are returned, as HMP returns them to
 * the caller.
 */
import type { BlockBackend } from './block-backend';
import { IoError, strerror } from './io-error';
import { QmpError } from './qmp-error';

/** qemu-io's default write pattern. */
const DEFAULT_PATTERN = 0xcd;
const SUFFIXES = 'BKMGTPE';

/** cvtnum(): a byte count with an optional binary suffix (`64k`, `1.5M`). */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?|0x[0-9a-f]+)([bkmgtpe])?$/i.exec(text);
  if (!match) return undefined;
  const [, number, suffix] = match;
  const scale = suffix ? 1024 ** SUFFIXES.indexOf(suffix.toUpperCase()) : 1;
  const value = number.startsWith('0x') ? parseInt(number, 16) : Number(number);
  if (!suffix && number.includes('.')) return undefined;
  const bytes = Math.floor(value * scale);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** The usage lines qemu-io prints for a bad option. */
const USAGE: Record<string, string> = {
  write: 'write [-bcCfnquz] [-P pattern | -s source_file] off len -- writes a number of bytes at a specified offset',
  read: 'read [-abCqv] [-P pattern [-s off] [-l len]] off len -- reads a number of bytes at a specified offset',
  discard: 'discard [-Cq] off len -- discards a number of bytes at a specified offset',
};

/** What qemu-io prints, on QEMU's stdout and stderr. */
class Printer {
  stdout = '';
  stderr = '';
  line(line: string): void {
    this.stdout += `${line}\n`;
  }
  error(line: string): void {
    this.stderr += `${line}\n`;
  }
}

/** cvtstr(): `64 KiB`, `1.5 MiB`. */
function humanBytes(value: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const number = unit === 0 ? String(value) : value.toFixed(3).replace(/\.?0+$/, '');
  return `${number} ${units[unit]}`;
}

function report(out: Printer, op: string, offset: number, bytes: number, seconds: number): void {
  const rate = seconds > 0 ? bytes / seconds : bytes;
  const ops = seconds > 0 ? 1 / seconds : 1;
  out.line(`${op} ${bytes}/${bytes} bytes at offset ${offset}`);
  out.line(`${humanBytes(bytes)}, 1 ops; ${seconds.toFixed(2).padStart(5, '0')} sec (${humanBytes(rate)}/sec and ${ops.toFixed(4)} ops/sec)`);
}

/** strtol(text, NULL, 0) of a pattern byte: decimal, 0x hex or 0 octal. */
function parseByte(text: string | undefined): number {
  if (text === undefined || !/^(0x[0-9a-f]+|0[0-7]*|[1-9]\d*)$/i.test(text)) return NaN;
  return /^0[0-7]/.test(text) ? parseInt(text, 8) : Number(text);
}

interface Parsed {
  flags: Set<string>;
  pattern?: number;
  args: string[];
}

/** getopt() over one command's words; undefined after printing the error. */
function parseOptions(out: Printer, command: string, words: string[], known: string, withPattern: boolean): Parsed | undefined {
  const parsed: Parsed = { flags: new Set(), args: [] };
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (!word.startsWith('-') || word.length < 2 || /^-\d/.test(word)) {
      parsed.args = words.slice(i);
      break;
    }
    for (let j = 1; j < word.length; j++) {
      const option = word[j];
      if (option === 'P' && withPattern) {
        const value = word.slice(j + 1) || words[++i];
        const pattern = parseByte(value);
        if (!Number.isInteger(pattern) || pattern < 0 || pattern > 255) {
          out.line(`${value} is not a valid pattern byte`);
          return undefined;
        }
        parsed.pattern = pattern;
        break;
      }
      if (!known.includes(option)) {
        out.error(`${command}: invalid option -- '${option}'`);
        out.line(USAGE[command]);
        return undefined;
      }
      parsed.flags.add(option);
    }
  }
  return parsed;
}

/** The offset and length arguments, or undefined after printing the error. */
function parseRange(out: Printer, command: string, args: string[]): [number, number] | undefined {
  if (args.length !== 2) {
    out.line(USAGE[command]);
    return undefined;
  }
  const values = args.map(parseSize);
  const bad = values.findIndex((value) => value === undefined);
  if (bad >= 0) {
    out.line(`Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- ${args[bad]}`);
    return undefined;
  }
  return values as [number, number];
}

/** Runs a request, printing qemu-io's failure line for an I/O error. */
function attempt(out: Printer, command: string, request: () => void): boolean {
  try {
    request();
    return true;
  } catch (error) {
    if (!(error instanceof IoError)) throw error;
    out.line(`${command} failed: ${strerror(error.errno)}`);
    return false;
  }
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * Runs one qemu-io command line on a backend. Returns what qemu-io printed
 * (QEMU's stdout) and what HMP returns (permission errors).
 */
export function runQemuIo(backend: BlockBackend, line: string): { stdout: string; stderr: string; hmp: string } {
  const out = new Printer();
  const [name = '', ...words] = line.trim().split(/\s+/);
  const command = COMMANDS[name];
  try {
    if (!command) {
      out.error(`command "${name}" not found`);
    } else if (words.length < command.argmin) {
      out.error(`bad argument count ${words.length} to ${name}, expected at least ${command.argmin} arguments`);
    } else {
      if (command.needsWrite) backend.checkWritable();
      command.run(out, backend, words);
    }
  } catch (error) {
    if (!(error instanceof QmpError)) throw error;
    return { stdout: out.stdout, stderr: out.stderr, hmp: `${error.desc}\r\n` };
  }
  return { stdout: out.stdout, stderr: out.stderr, hmp: '' };
}

interface QemuIoCommand {
  argmin: number;
  /** The command asks for the write permission before it runs. */
  needsWrite: boolean;
  run(out: Printer, backend: BlockBackend, words: string[]): void;
}

const COMMANDS: Record<string, QemuIoCommand> = {
  write: { argmin: 2, needsWrite: true, run: write },
  read: { argmin: 2, needsWrite: false, run: read },
  discard: { argmin: 2, needsWrite: true, run: discard },
  flush: { argmin: 0, needsWrite: false, run: (out, backend) => attempt(out, 'flush', () => backend.flush()) },
};

function write(out: Printer, backend: BlockBackend, words: string[]): void {
  const parsed = parseOptions(out, 'write', words, 'bcCfnquz', true);
  const range = parsed && parseRange(out, 'write', parsed.args);
  if (!parsed || !range) return;
  const [offset, bytes] = range;
  const start = process.hrtime.bigint();
  const done = parsed.flags.has('z')
    ? attempt(out, 'write', () => backend.writeZeroes(offset, bytes, parsed.flags.has('u')))
    : attempt(out, 'write', () => backend.write(offset, new Uint8Array(bytes).fill(parsed.pattern ?? DEFAULT_PATTERN)));
  if (done && !parsed.flags.has('q')) report(out, 'wrote', offset, bytes, seconds(start));
}

function read(out: Printer, backend: BlockBackend, words: string[]): void {
  const parsed = parseOptions(out, 'read', words, 'abCqv', true);
  const range = parsed && parseRange(out, 'read', parsed.args);
  if (!parsed || !range) return;
  const [offset, bytes] = range;
  const start = process.hrtime.bigint();
  let data: Uint8Array = new Uint8Array(0);
  if (!attempt(out, 'read', () => (data = backend.read(offset, bytes)))) return;
  if (parsed.pattern !== undefined && data.some((byte) => byte !== parsed.pattern)) {
    out.line(`Pattern verification failed at offset ${offset}, ${bytes} bytes`);
  }
  if (!parsed.flags.has('q')) report(out, 'read', offset, bytes, seconds(start));
}

function discard(out: Printer, backend: BlockBackend, words: string[]): void {
  const parsed = parseOptions(out, 'discard', words, 'Cq', false);
  const range = parsed && parseRange(out, 'discard', parsed.args);
  if (!parsed || !range) return;
  const [offset, bytes] = range;
  const start = process.hrtime.bigint();
  if (attempt(out, 'discard', () => backend.discard(offset, bytes)) && !parsed.flags.has('q')) {
    report(out, 'discard', offset, bytes, seconds(start));
  }
}
