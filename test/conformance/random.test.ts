/**
 * A fixed sample of the random scenarios (test/support/generator.ts) on real
 * QEMU 7.2 and on our engine; `npm run conformance -- --seeds N` runs more.
 * A failure prints the scenario shrunk to a minimal reproducer.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { agree, compare, describeDivergence, generate, setupFiles, shrink } from '../support/generator';
import { onEndpoint, onEngine, type Setup, type Step } from '../support/differential';

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

/** About half a second each; seeds chosen to cover failing sources and targets, qcow2 and every job path. */
const SEEDS = [1, 2, 3, 4, 5, 8, 9, 11, 12, 13, 21, 29];
/** The same scenarios through our QMP endpoint, against the in-process engine. */
const ENDPOINT_SEEDS = SEEDS;

describe('random scenarios against QEMU 7.2', { skip }, () => {
  test('the generator is deterministic and never generates what crashes QEMU 7.2', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const { steps } = generate(seed);
      assert.deepEqual(generate(seed).steps, steps);
      assert.ok(steps.length >= 10 && steps.length <= 60, `seed ${seed}: ${steps.length} steps`);
      for (const step of steps) {
        if (!('execute' in step)) continue;
        const args = step.arguments as Record<string, unknown> | undefined;
        if (step.execute === 'block-dirty-bitmap-merge') assert.ok((args!.bitmaps as unknown[]).length > 0);
        if (step.execute === 'blockdev-add' && args!.driver === 'null-co') assert.ok((args!.size as number) >= 0);
        if (step.execute === 'transaction') {
          const actions = args!.actions as Array<{ type: string; data: Record<string, unknown> }>;
          const grouped = (args!.properties as Record<string, unknown> | undefined)?.['completion-mode'] === 'grouped';
          for (const action of actions) {
            if (action.type === 'block-dirty-bitmap-merge') assert.ok((action.data.bitmaps as unknown[]).length > 0);
            if (action.type === 'block-dirty-bitmap-enable') assert.ok(!grouped, `seed ${seed}: enable under grouped`);
          }
        }
      }
    }
  });

  test('a transaction enables only a bitmap no earlier step may have removed (seed 1464 crashed QEMU 7.2)', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      // node/name of every bitmap a remove (plain or in a transaction) may have taken away, until a plain add puts it back.
      const mayBeGone = new Set<string>();
      for (const [i, step] of generate(seed).steps.entries()) {
        if (!('execute' in step)) continue;
        const args = step.arguments as Record<string, unknown> | undefined;
        const key = (data: Record<string, unknown>) => `${data.node}/${data.name}`;
        if (step.execute === 'block-dirty-bitmap-add') mayBeGone.delete(key(args!));
        if (step.execute === 'block-dirty-bitmap-remove') mayBeGone.add(key(args!));
        if (step.execute !== 'transaction') continue;
        const actions = args!.actions as Array<{ type: string; data: Record<string, unknown> }>;
        for (const action of actions) {
          if (action.type === 'block-dirty-bitmap-enable') assert.ok(!mayBeGone.has(key(action.data)), `seed ${seed} step ${i}: enables ${key(action.data)}`);
          if (action.type === 'block-dirty-bitmap-remove') mayBeGone.add(key(action.data));
        }
      }
    }
  });

  test('no job reads a raw file that may hold unwritten blocks out of the page cache (QEMU 7.2 races with itself there: seeds 1231, 1476)', () => {
    const raw = (name: unknown) => name === 'src' || name === 'tgt';
    for (let seed = 1; seed <= 2000; seed++) {
      const cold = new Set<unknown>();
      let device: unknown;
      const fresh = (name: unknown, what: string) => assert.ok(!cold.has(name), `seed ${seed}: ${what} reads ${String(name)}, which may be cold`);
      for (const [i, step] of generate(seed).steps.entries()) {
        if ('io' in step) {
          const reaches = step.node === 'cbw' ? device : step.node;
          // Copy-before-write reads the old data first.
          if (step.node === 'cbw') fresh(device, `step ${i} (copy-before-write)`);
          if (/^read 0 4194304$/.test(step.io) && raw(step.node)) cold.delete(step.node);
          if (/^write -z /.test(step.io) && !/^write -z -u /.test(step.io) && raw(reaches)) cold.add(reaches);
        }
        if (!('execute' in step)) continue;
        const args = step.arguments as Record<string, unknown> | undefined;
        // Refused on purpose, before any job: a bitmap that is not there, compress to raw.
        const refused = args?.['job-id'] === 'bad' || (args?.compress === true && /^tgt$|\.raw$/.test(String(args.target)));
        if ((step.execute === 'blockdev-backup' || step.execute === 'drive-backup') && !refused) {
          device = args!.device;
          fresh(device, `step ${i} (blockdev-backup)`);
          if (raw(args!.target)) cold.add(args!.target);
        }
        if (step.execute === 'block-job-set-speed') fresh(device, `step ${i} (set-speed)`);
      }
    }
  });

  test('no drive-backup nor compressed backup reads bytes that came from null-co, which QEMU leaves undefined (seeds 445, 1763)', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const undefinedBytes = new Set<unknown>(['n0']);
      for (const [i, step] of generate(seed).steps.entries()) {
        if (!('execute' in step) || (step.execute !== 'blockdev-backup' && step.execute !== 'drive-backup')) continue;
        const args = step.arguments as Record<string, unknown>;
        // Refused on purpose: no job reads anything.
        if (args['job-id'] === 'bad' || !undefinedBytes.has(args.device)) continue;
        assert.ok(step.execute === 'blockdev-backup' && args.compress === undefined, `seed ${seed} step ${i}: ${step.execute} of ${String(args.device)}`);
        undefinedBytes.add(args.target);
      }
    }
  });

  test('the blockdev-backup targets are compared at the end (qemu-img compare), but not one written from null-co', async () => {
    const MiB = 1 << 20;
    // QEMU's side (set up second) starts with other bytes at 1 MiB in t.raw; a backup of an empty bitmap copies nothing
    // over them, and no step reads them: only the final comparison of the target can tell the sides apart.
    const differing = (): Setup => {
      let calls = 0;
      const files = setupFiles([
        { name: 's.raw', format: 'raw', size: 4 * MiB },
        { name: 't.raw', format: 'raw', size: 4 * MiB },
      ]);
      return (dir) => {
        files(dir);
        if (calls++ === 1) {
          const fd = fs.openSync(path.join(dir, 't.raw'), 'r+');
          fs.writeSync(fd, Buffer.alloc(4096, 0x55), 0, 4096, MiB);
          fs.closeSync(fd);
        }
      };
    };
    const steps = (source: Record<string, unknown>): Step[] => [
      { execute: 'blockdev-add', arguments: { 'node-name': 'src', ...source } },
      { execute: 'blockdev-add', arguments: { driver: 'raw', 'node-name': 'tgt', file: { driver: 'file', filename: '@DIR@/t.raw' } } },
      { execute: 'block-dirty-bitmap-add', arguments: { node: 'src', name: 'b0' } },
      {
        execute: 'blockdev-backup',
        arguments: { 'job-id': 'j0', device: 'src', target: 'tgt', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', 'auto-dismiss': false },
      },
      { waitFor: 'BLOCK_JOB_COMPLETED', data: { device: 'j0' } },
      { execute: 'job-dismiss', arguments: { id: 'j0' } },
    ];
    const fromRaw = await compare(steps({ driver: 'raw', file: { driver: 'file', filename: '@DIR@/s.raw' } }), differing());
    assert.equal(fromRaw.error, undefined);
    assert.equal(fromRaw.differs, -1, 'the transcripts agree');
    assert.match(fromRaw.images ?? '', /^t\.raw \(backup target\): qemu-img compare: Content mismatch at offset 1048576/);
    // The same with equal files agrees: only the bytes differed.
    const same = await compare(steps({ driver: 'raw', file: { driver: 'file', filename: '@DIR@/s.raw' } }), (dir) => {
      differing()(dir);
    });
    assert.ok(agree(same), describeDivergence(0, [], steps({}), same));
    // From null-co the target's bytes are undefined on QEMU: left out, so the different bytes go unnoticed.
    const fromNull = await compare(steps({ driver: 'null-co', size: 4 * MiB }), differing());
    assert.ok(agree(fromNull), describeDivergence(0, [], steps({}), fromNull));
  });

  for (const seed of ENDPOINT_SEEDS) {
    test(`seed ${seed} through the QMP endpoint (bitmap-lab qmp --socket)`, async () => {
      const scenario = generate(seed);
      const ours = await onEngine(scenario.steps, scenario.setup);
      const wire = await onEndpoint(scenario.steps, scenario.setup, ours);
      for (let i = 0; i < scenario.steps.length; i++) assert.deepEqual(wire[i], ours[i], `step ${i}: ${ours[i].step}`);
    });
  }

  for (const seed of SEEDS) {
    test(`seed ${seed}`, async () => {
      const scenario = generate(seed);
      const outcome = await compare(scenario.steps, scenario.setup);
      if (agree(outcome)) return;
      const shrunk = outcome.error?.startsWith('engine:') ? { steps: scenario.steps, outcome } : await shrink(scenario.steps, scenario.setup);
      assert.fail(describeDivergence(seed, scenario.files, shrunk.steps, shrunk.outcome));
    });
  }
});
