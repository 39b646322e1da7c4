/**
 * blkdebug events: a qcow2 node announces them at QEMU's points, so an
 * error injected on "the Nth event" fails the same request on our driver
 * as on qemu-io over a blkdebug node, and leaves the same image behind.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_NODE_OPTIONS, type BlkdebugEvent, type CommonNodeOptions } from '../../src/engine/block-node';
import { BlkdebugNode, type InjectErrorOptions, type SetStateOptions } from '../../src/engine/drivers/blkdebug';
import { FileNode } from '../../src/engine/drivers/file';
import { RawNode } from '../../src/engine/drivers/raw';
import { Qcow2Node } from '../../src/engine/drivers/qcow2/qcow2-node';
import { IoError } from '../../src/engine/io-error';
import { QmpError } from '../../src/engine/qmp-error';
import { hasQemuImg, qemuCheck, qemuImg, qemuIo, scratchDir } from '../support/qemu-img';
import { skipWithout } from '../support/tools';

const skip = skipWithout(hasQemuImg, 'qemu-img and qemu-io');
const KiB = 1024;
const MiB = 1024 * KiB;
const COMMON: CommonNodeOptions = { ...DEFAULT_NODE_OPTIONS, discardUnmap: true };

interface Rules {
  'inject-error': InjectErrorOptions[];
  'set-state'?: SetStateOptions[];
}

/** The n-th time `event` comes, requests start failing (state machine as in QEMU's iotests). */
function nth(event: BlkdebugEvent, n: number, once = true, iotype?: InjectErrorOptions['iotype']): Rules {
  return {
    ...(n > 1 && { 'set-state': Array.from({ length: n - 1 }, (_, i) => ({ event, state: i + 1, new_state: i + 2 })) }),
    'inject-error': [{ event, state: n, errno: 5, once, immediately: false, ...(iotype && { iotype }) }],
  };
}

/** qemu-io commands, each with whether it failed. */
function qemuRun(image: string, rules: Rules, commands: string[]): string[] {
  const spec = {
    driver: 'qcow2',
    file: { driver: 'blkdebug', ...rules, image: { driver: 'file', filename: image } },
  };
  const result = spawnSync(
    'qemu-io',
    ['-t', 'writeback', '-d', 'unmap', ...commands.flatMap((c) => ['-c', c]), `json:${JSON.stringify(spec)}`],
    { encoding: 'utf8' },
  );
  if (/can't open/.test(result.stderr + result.stdout)) return ['open failed'];
  const outcomes: string[] = [];
  for (const line of result.stdout.split('\n')) {
    if (/^(wrote|read) \d+\/\d+ bytes|^discard \d+\/\d+ bytes/.test(line)) outcomes.push('ok');
    else if (/failed: /.test(line)) outcomes.push(line.replace(/^.* failed: /, 'failed: '));
  }
  return outcomes;
}

function ourRun(image: string, rules: Rules, commands: string[], rawBacking?: string): string[] {
  const file = new FileNode('#file', image, COMMON);
  const blkdebug = new BlkdebugNode('#blkdebug', file, rules['inject-error'], rules['set-state'] ?? [], COMMON);
  const readOnly = { ...COMMON, readOnly: true };
  const backing = rawBacking ? new RawNode('#backing', new FileNode('#backing-file', rawBacking, readOnly), 0, undefined, readOnly) : null;
  let node: Qcow2Node;
  try {
    node = Qcow2Node.open('#qcow2', blkdebug, COMMON, { backing });
  } catch (error) {
    assert.ok(error instanceof QmpError);
    blkdebug.close();
    return ['open failed'];
  }
  const outcomes: string[] = [];
  for (const command of commands) {
    const [verb, ...args] = command.split(' ');
    try {
      if (verb === 'write' && args[0] === '-z') node.writeZeroes(Number(args[1]), Number(args[2]));
      else if (verb === 'write') node.write(Number(args[2]), new Uint8Array(Number(args[3])).fill(Number(args[1])));
      else if (verb === 'read') node.read(Number(args[0]), Number(args[1]));
      else if (verb === 'discard') node.discard(Number(args[0]), Number(args[1]));
      else if (verb === 'flush') node.flush();
      if (verb !== 'flush') outcomes.push('ok');
    } catch (error) {
      assert.ok(error instanceof IoError, String(error));
      // qemu-io says nothing when a flush fails.
      if (verb !== 'flush') outcomes.push(`failed: ${error.message}`);
    }
  }
  node.close();
  return outcomes;
}

const WORKLOAD = [
  `write -P 1 0 ${4 * KiB}`,
  `write -P 2 ${64 * KiB} ${64 * KiB}`,
  `write -P 3 ${5 * MiB + 512} ${1 * KiB}`,
  'flush',
  `read 0 ${128 * KiB}`,
  `write -z ${64 * KiB} ${64 * KiB}`,
  `write -P 4 ${200 * KiB} ${8 * KiB}`,
  `discard 0 ${64 * KiB}`,
  `write -P 5 ${3 * MiB} ${64 * KiB}`,
  'flush',
  `read ${3 * MiB} ${4 * KiB}`,
];

/** Events a workload on a fresh image announces, each with how often it comes. */
const EVENTS: Array<[BlkdebugEvent, number]> = [
  ['write_aio', 5],
  ['read_aio', 2],
  ['l1_update', 2],
  ['l2_load', 1],
  ['l2_update', 2],
  ['l2_alloc_write', 2],
  ['refblock_alloc', 4],
  ['refblock_load', 3],
  ['refblock_update_part', 2],
  ['cluster_alloc', 4],
  ['cluster_alloc_space', 2],
  ['cluster_free', 1],
  ['cow_read', 1],
  ['cow_write', 1],
  ['flush_to_os', 2],
  ['flush_to_disk', 2],
  ['reftable_load', 1],
];

/** Over compressed clusters and over a backing file: the reads and copy-on-write those need. */
const SOURCED_WORKLOAD = [
  `read 0 ${128 * KiB}`,
  `write -P 1 ${4 * KiB} ${4 * KiB}`,
  `write -P 2 ${200 * KiB} ${64 * KiB}`,
  `read ${192 * KiB} ${128 * KiB}`,
  'flush',
  `write -z ${300 * KiB} 512`,
  `read ${256 * KiB} ${64 * KiB}`,
];
const SOURCED_EVENTS: Array<[BlkdebugEvent, number]> = [
  ['read_compressed', 3],
  ['read_backing_aio', 3],
  ['cow_read', 2],
  ['cow_write', 2],
  ['write_aio', 2],
];

describe('events of reads from compressed clusters and backing files', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  for (const source of ['compressed', 'backing'] as const) {
    for (const [event, count] of SOURCED_EVENTS) {
      if (source === 'compressed' && event === 'read_backing_aio') continue;
      if (source === 'backing' && event === 'read_compressed') continue;
      for (let n = 1; n <= count; n++) {
        test(`${source}: ${event} #${n}`, () => {
          const ours = path.join(dir, `${source}-${event}-${n}-ours.qcow2`);
          const theirs = ours.replace('-ours', '-qemu');
          const raw = path.join(dir, `${source}-${event}-${n}.raw`);
          qemuImg('create', '-q', '-f', 'raw', raw, String(MiB));
          qemuIo(raw, [`write -P 7 0 ${512 * KiB}`], 'raw');
          if (source === 'compressed') {
            qemuImg('convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, ours);
          } else {
            qemuImg('create', '-q', '-f', 'qcow2', '-b', path.basename(raw), '-F', 'raw', ours);
          }
          fs.copyFileSync(ours, theirs);
          const rules = nth(event, n, true);
          assert.deepEqual(ourRun(ours, rules, SOURCED_WORKLOAD, source === 'backing' ? raw : undefined), qemuRun(theirs, rules, SOURCED_WORKLOAD));
          assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
        });
      }
    }
  }
});

describe('an error injected at the Nth event fails what it fails on QEMU', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  for (const [event, count] of EVENTS) {
    for (let n = 1; n <= count; n++) {
      for (const once of [true, false]) {
        test(`${event} #${n}${once ? ', once' : ''}`, () => {
          const ours = path.join(dir, `${event}-${n}-${once}-ours.qcow2`);
          const theirs = ours.replace('-ours', '-qemu');
          qemuImg('create', '-q', '-f', 'qcow2', ours, String(8 * MiB));
          // A partial write over the second cluster exercises copy-on-write from the first write.
          qemuIo(ours, [`write -P 9 ${256 * KiB} ${64 * KiB}`]);
          fs.copyFileSync(ours, theirs);
          const workload = [...WORKLOAD, `write -P 6 ${256 * KiB + 512} 512`];
          const rules = nth(event, n, once);
          assert.deepEqual(ourRun(ours, rules, workload), qemuRun(theirs, rules, workload));
          const ourCheck = qemuCheck(ours);
          const theirCheck = qemuCheck(theirs);
          assert.equal(ourCheck.corruptions ?? 0, theirCheck.corruptions ?? 0);
          assert.equal(ourCheck.leaks ?? 0, theirCheck.leaks ?? 0);
          assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
        });
      }
    }
  }
});
