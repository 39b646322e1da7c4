/**
 * Running qemu-img and qemu-io in tests, and scratch directories for the
 * images they make.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS, type BlockNode, type CommonNodeOptions } from '../../src/engine/block-node';
import { openImage } from '../../src/engine/drivers/open-image';

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export const hasQemuImg = onPath('qemu-img') && onPath('qemu-io');

function run(tool: string, args: string[]): string {
  const result = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${tool} ${args.join(' ')} failed (${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** Runs qemu-img; throws with its stderr when it fails. */
export function qemuImg(...args: string[]): string {
  return run('qemu-img', args);
}

/** qemu-img with its exit status, for checks that are expected to fail. */
export function qemuImgStatus(...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync('qemu-img', args, { encoding: 'utf8' });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Runs qemu-io commands on an image; qemu-io reports failed commands on stdout, so those throw too. */
export function qemuIo(image: string, commands: string[], format = 'qcow2'): string {
  const out = run('qemu-io', ['-f', format, ...commands.flatMap((command) => ['-c', command]), image]);
  if (/failed|error/i.test(out)) throw new Error(`qemu-io ${commands.join('; ')} on ${image}: ${out.trim()}`);
  return out;
}

export interface CheckReport {
  'check-errors': number;
  corruptions?: number;
  leaks?: number;
  'image-end-offset'?: number;
  'allocated-clusters'?: number;
}

/** qemu-img check --output=json (exit status 2 and 3 still print the report). */
export function qemuCheck(image: string): CheckReport {
  const result = spawnSync('qemu-img', ['check', '--output=json', image], { encoding: 'utf8' });
  if (!result.stdout.trim()) throw new Error(`qemu-img check ${image}: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as CheckReport;
}

export function qemuInfo(image: string): Record<string, unknown> {
  return JSON.parse(qemuImg('info', '--output=json', '-U', image)) as Record<string, unknown>;
}

/** qemu-img compare: true when the guest-visible contents are equal. */
export function qemuCompare(a: string, b: string): boolean {
  const result = spawnSync('qemu-img', ['compare', '-U', a, b], { encoding: 'utf8' });
  if (result.status === 0) return true;
  if (result.status === 1) return false;
  throw new Error(`qemu-img compare ${a} ${b}: ${result.stderr.trim()}`);
}

/** A fresh directory, removed when the process exits. */
export function scratchDir(prefix = 'bitmap-lab-qcow2-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let names = 0;

/** Opens an image with its chain as a test would: auto names, no graph. */
export function open(file: string, overrides: Partial<CommonNodeOptions> & { format?: string } = {}): BlockNode {
  const { format, ...common } = overrides;
  return openImage(file, {
    format,
    common: { ...DEFAULT_NODE_OPTIONS, ...common },
    nameNode: () => `#test${names++}`,
  });
}
