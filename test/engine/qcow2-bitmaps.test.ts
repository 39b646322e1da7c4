/**
 * Persistent bitmaps against QEMU 7.2: what we store, QEMU loads with the
 * same bits, and the same steps through a real QEMU leave the same bytes;
 * in_use on disk while open read-write; the add-time checks with QEMU's
 * messages; bitmaps dropped when the autoclear bit is missing.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BlockNode } from '../../src/engine/block-node';
import { Qcow2Node } from '../../src/engine/drivers/qcow2/qcow2-node';
import { QmpError } from '../../src/engine/qmp-error';
import { QemuProcess } from '../support/qemu';
import { hasQemuImg, open, qemuCheck, qemuCompare, qemuImg, qemuInfo, scratchDir } from '../support/qemu-img';
import { skipWithout } from '../support/tools';

const skip = skipWithout(hasQemuImg && QemuProcess.binary() !== undefined, 'QEMU (qemu-img, qemu-io, qemu-system-x86_64)');
const FIXTURES = path.resolve(__dirname, '../../../test/fixtures/qcow2');
const KiB = 1024;
const MiB = 1024 * KiB;

type BitmapInfo = Record<string, unknown> & { name?: string };

/** What a real QEMU reports of an image's bitmaps, opened read-only. */
async function qemuBitmaps(image: string): Promise<Array<BitmapInfo & { sha256: string }>> {
  const qemu = await QemuProcess.start();
  try {
    const add = await qemu.execute('blockdev-add', {
      'node-name': 'n',
      driver: 'qcow2',
      'read-only': true,
      file: { driver: 'file', filename: image },
    });
    assert.equal(add.error, undefined, JSON.stringify(add.error));
    const nodes = (await qemu.execute('query-named-block-nodes', { flat: true })).return as Array<{
      'node-name': string;
      'dirty-bitmaps'?: BitmapInfo[];
    }>;
    const bitmaps = nodes.find((node) => node['node-name'] === 'n')!['dirty-bitmaps'] ?? [];
    const result = [];
    for (const bitmap of bitmaps) {
      const reply = await qemu.execute('x-debug-block-dirty-bitmap-sha256', { node: 'n', name: bitmap.name });
      result.push({ ...bitmap, sha256: (reply.return as { sha256: string }).sha256 });
    }
    return result;
  } finally {
    await qemu.quit();
  }
}

function ourBitmaps(node: BlockNode): Array<BitmapInfo & { sha256: string }> {
  return node.bitmaps.map((bitmap) => ({ ...bitmap.info(), sha256: bitmap.sha256() }));
}

function withoutOrder(list: Array<Record<string, unknown>>): unknown[] {
  return list.map((entry) => Object.fromEntries(Object.entries(entry).sort(([a], [b]) => a.localeCompare(b))));
}

/** block-dirty-bitmap-add with persistent: true, as the QMP layer does it. */
function addPersistent(node: BlockNode, name: string, granularity: number, disabled = false): void {
  node.checkCanStoreNewBitmap(name, granularity);
  const bitmap = node.createBitmap(granularity, name);
  bitmap.persistent = true;
  bitmap.disabled = disabled;
}

type Step =
  | { add: string; granularity: number; disabled?: boolean }
  | { remove: string }
  | { write: number; bytes: number; pattern: number };

function applyOurs(node: BlockNode, steps: Step[]): void {
  for (const step of steps) {
    if ('add' in step) addPersistent(node, step.add, step.granularity, step.disabled);
    else if ('remove' in step) {
      const bitmap = node.findBitmap(step.remove)!;
      node.removePersistentBitmap(step.remove);
      node.releaseBitmap(bitmap);
    } else node.write(step.write, new Uint8Array(step.bytes).fill(step.pattern));
  }
}

/** The same steps through QMP on a real QEMU, which stores the bitmaps at blockdev-del. */
async function applyQemu(image: string, steps: Step[]): Promise<void> {
  const qemu = await QemuProcess.start();
  try {
    const ok = async (command: string, args: Record<string, unknown>) => {
      const reply = await qemu.execute(command, args);
      assert.equal(reply.error, undefined, `${command}: ${JSON.stringify(reply.error)}`);
    };
    await ok('blockdev-add', { 'node-name': 'n', driver: 'qcow2', file: { driver: 'file', filename: image } });
    for (const step of steps) {
      if ('add' in step) {
        await ok('block-dirty-bitmap-add', {
          node: 'n',
          name: step.add,
          granularity: step.granularity,
          persistent: true,
          ...(step.disabled && { disabled: true }),
        });
      } else if ('remove' in step) {
        await ok('block-dirty-bitmap-remove', { node: 'n', name: step.remove });
      } else {
        await ok('human-monitor-command', {
          'command-line': `qemu-io n "write -P ${step.pattern} ${step.write} ${step.bytes}"`,
        });
      }
    }
    await ok('blockdev-del', { 'node-name': 'n' });
  } finally {
    await qemu.quit();
  }
}

function flagsOf(image: string): Record<string, string[]> {
  const data = (qemuInfo(image)['format-specific'] as { data: { bitmaps?: Array<{ name: string; flags: string[] }> } }).data;
  return Object.fromEntries((data.bitmaps ?? []).map((bitmap) => [bitmap.name, bitmap.flags]));
}

describe('persistent bitmaps written as QEMU writes them', { skip }, () => {
  const dir = skip ? '' : scratchDir();

  const scenarios: Record<string, { image: string | { size: number; args: string[] }; steps: Step[] }> = {
    'new bitmaps of several granularities, enabled and disabled': {
      image: { size: 64 * MiB, args: [] },
      steps: [
        { add: 'b64k', granularity: 64 * KiB },
        { write: 0, bytes: 4 * KiB, pattern: 1 },
        { add: 'b4k', granularity: 4 * KiB },
        { add: 'b512', granularity: 512 },
        { add: 'off', granularity: MiB, disabled: true },
        { write: 10 * MiB + 512, bytes: 70 * KiB, pattern: 2 },
        { write: 64 * MiB - 512, bytes: 512, pattern: 3 },
      ],
    },
    'small clusters: a bitmap over several data clusters': {
      image: { size: 64 * MiB, args: ['-o', 'cluster_size=4k'] },
      steps: [
        { add: 'fine', granularity: 512 },
        { write: 0, bytes: 4 * KiB, pattern: 1 },
        { write: 33 * MiB, bytes: 96 * KiB, pattern: 2 },
        { write: 63 * MiB, bytes: 1, pattern: 3 },
      ],
    },
    'loaded bitmaps stored again, one removed': {
      image: 'bitmaps.qcow2',
      steps: [
        { write: 30 * MiB, bytes: 8 * KiB, pattern: 9 },
        { remove: 'b4k' },
        { add: 'late', granularity: 8 * KiB },
        { write: 50 * MiB + 100, bytes: 1, pattern: 8 },
      ],
    },
    'every bitmap removed: the extension and the autoclear bit go': {
      image: 'bitmaps64k.qcow2',
      steps: [{ remove: 'a' }, { remove: 'off' }, { write: 0, bytes: 512, pattern: 1 }],
    },
    'an in_use bitmap stays on disk untouched': {
      image: 'inuse.qcow2',
      steps: [{ write: 512 * KiB, bytes: 4 * KiB, pattern: 7 }],
    },
  };

  for (const [name, { image, steps }] of Object.entries(scenarios)) {
    test(name, async () => {
      const ours = path.join(dir, `${name.replace(/\W+/g, '-')}-ours.qcow2`);
      const theirs = ours.replace('-ours', '-qemu');
      if (typeof image === 'string') {
        fs.copyFileSync(path.join(FIXTURES, image), ours);
      } else {
        qemuImg('create', '-q', '-f', 'qcow2', ...image.args, ours, String(image.size));
      }
      fs.copyFileSync(ours, theirs);

      const node = open(ours);
      // in_use is on disk as soon as the image is open read-write.
      for (const [bitmap, flags] of Object.entries(flagsOf(ours))) assert.ok(flags.includes('in-use'), `${bitmap} in-use`);
      applyOurs(node, steps);
      const before = ourBitmaps(node).filter((bitmap) => bitmap.persistent && !bitmap.inconsistent);
      node.close();

      await applyQemu(theirs, steps);
      assert.deepEqual(flagsOf(ours), flagsOf(theirs));
      const check = qemuCheck(ours);
      assert.equal(check['check-errors'], 0);
      assert.equal(check.corruptions ?? 0, 0);
      assert.equal(check.leaks ?? 0, 0);
      assert.ok(qemuCompare(ours, theirs));
      assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
      // What we held in memory is what QEMU loads from what we stored.
      const loaded = (await qemuBitmaps(ours)).filter((bitmap) => !bitmap.inconsistent);
      const summary = (list: BitmapInfo[]) =>
        withoutOrder(
          list
            .map(({ name: n, sha256, granularity }) => ({ name: n, sha256, granularity }))
            .sort((a, b) => String(a.name).localeCompare(String(b.name))),
        );
      assert.deepEqual(summary(loaded), summary(before));
    });
  }
});

describe('bitmaps a running QEMU stored load with its bits', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  test('QMP adds, guest writes, merge, disable, quit', async () => {
    const image = path.join(dir, 'qemu-made.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', image, String(32 * MiB));
    const qemu = await QemuProcess.start();
    const shas: Record<string, string> = {};
    try {
      const ok = async (command: string, args: Record<string, unknown>) => {
        const reply = await qemu.execute(command, args);
        assert.equal(reply.error, undefined, `${command}: ${JSON.stringify(reply.error)}`);
        return reply.return;
      };
      await ok('blockdev-add', { 'node-name': 'n', driver: 'qcow2', file: { driver: 'file', filename: image } });
      await ok('block-dirty-bitmap-add', { node: 'n', name: 'all', persistent: true });
      await ok('block-dirty-bitmap-add', { node: 'n', name: 'fine', granularity: 512, persistent: true });
      const io = (command: string) => ok('human-monitor-command', { 'command-line': `qemu-io n "${command}"` });
      await io('write -P 1 0 4k');
      await io('write -P 2 1000000 70000');
      await ok('block-dirty-bitmap-add', { node: 'n', name: 'copy', granularity: 131072, persistent: true, disabled: true });
      await ok('block-dirty-bitmap-merge', { node: 'n', target: 'copy', bitmaps: ['fine'] });
      await ok('block-dirty-bitmap-disable', { node: 'n', name: 'fine' });
      await io('write -z 20M 1M');
      await io('discard 8M 64k');
      for (const name of ['all', 'fine', 'copy']) {
        shas[name] = ((await ok('x-debug-block-dirty-bitmap-sha256', { node: 'n', name })) as { sha256: string }).sha256;
      }
    } finally {
      await qemu.quit();
    }
    const node = open(image, { readOnly: true });
    try {
      assert.deepEqual(
        Object.fromEntries(node.bitmaps.map((bitmap) => [bitmap.name, bitmap.sha256()])),
        shas,
      );
      assert.deepEqual(
        node.bitmaps.map((bitmap) => [bitmap.name, bitmap.disabled]),
        // Stored newest first, loaded each at the head: the order flips, as in QEMU.
        [['all', false], ['fine', true], ['copy', true]],
      );
    } finally {
      node.close();
    }
  });
});

describe("the add-time checks, with QEMU's messages", { skip }, () => {
  const dir = skip ? '' : scratchDir();

  async function qemuAddError(image: string, name: string, granularity: number, readOnly = false): Promise<string> {
    const qemu = await QemuProcess.start();
    try {
      await qemu.execute('blockdev-add', {
        'node-name': 'n',
        driver: 'qcow2',
        'read-only': readOnly,
        file: { driver: 'file', filename: image },
      });
      await qemu.execute('block-dirty-bitmap-add', { node: 'n', name: 'taken', persistent: true });
      const reply = await qemu.execute('block-dirty-bitmap-add', { node: 'n', name, granularity, persistent: true });
      return reply.error?.desc ?? 'ok';
    } finally {
      await qemu.quit();
    }
  }

  function ourAddError(image: string, name: string, granularity: number): string {
    const node = open(image) as Qcow2Node;
    try {
      try {
        addPersistent(node, 'taken', 65536);
      } catch {
        // As on QEMU's side, where this add's error is not looked at.
      }
      node.checkCanStoreNewBitmap(name, granularity);
      return 'ok';
    } catch (error) {
      assert.ok(error instanceof QmpError);
      return error.desc;
    } finally {
      // Leave the image as it was: the test bitmaps are not stored.
      for (const bitmap of [...node.bitmaps]) if (bitmap.name === 'taken') node.releaseBitmap(bitmap);
      node.close();
    }
  }

  const cases: Array<[string, string[], number, string, number]> = [
    ['a v2 image', ['-o', 'compat=0.10'], 64 * MiB, 'b', 65536],
    ['granularity over 2 GiB is refused by QAPI first; 2 GiB is fine', [], 64 * MiB, 'b', 2 ** 31],
    ['a bitmap too large for the image format', [], 8 * 2 ** 40, 'b', 512],
    ['a name over 1023 bytes', [], 64 * MiB, 'n'.repeat(1024), 65536],
    ['a name of 1023 bytes', [], 64 * MiB, 'n'.repeat(1023), 65536],
    ['a name already in use', [], 64 * MiB, 'taken', 65536],
  ];
  for (const [title, args, size, name, granularity] of cases) {
    test(title, async () => {
      const image = path.join(dir, `${title.replace(/\W+/g, '-')}.qcow2`);
      qemuImg('create', '-q', '-f', 'qcow2', ...args, image, String(size));
      fs.copyFileSync(image, `${image}.qemu`);
      const theirs = await qemuAddError(`${image}.qemu`, name, granularity);
      // QEMU said it on node 'n'; ours are named after their node.
      const ours = ourAddError(image, name, granularity).replaceAll("'#test", "'n").replace(/'n\d+'/g, "'n'");
      assert.equal(ours, theirs);
    });
  }
});

describe('bitmaps in images a program without bitmap support touched', { skip }, () => {
  const dir = skip ? '' : scratchDir();

  test('autoclear bit clear: every bitmap dropped, the extension removed on the next header update', async () => {
    const ours = path.join(dir, 'noautoclear-ours.qcow2');
    const theirs = path.join(dir, 'noautoclear-qemu.qcow2');
    const bytes = fs.readFileSync(path.join(FIXTURES, 'bitmaps64k.qcow2'));
    bytes[95] &= ~1;
    fs.writeFileSync(ours, bytes);
    fs.writeFileSync(theirs, bytes);
    const node = open(ours) as Qcow2Node;
    assert.equal(node.bitmaps.length, 0);
    assert.deepEqual(node.warnings, [
      'a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent',
      "Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.",
    ]);
    node.close();
    await applyQemu(theirs, []);
    assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
    assert.deepEqual(flagsOf(ours), {});
    assert.ok((qemuCheck(ours).leaks ?? 0) > 0, 'the bitmap clusters leak');
  });

  test('read-only, the extension stays and nothing is written', () => {
    const image = path.join(dir, 'noautoclear-ro.qcow2');
    const bytes = fs.readFileSync(path.join(FIXTURES, 'bitmaps64k.qcow2'));
    bytes[95] &= ~1;
    fs.writeFileSync(image, bytes);
    const node = open(image, { readOnly: true });
    assert.equal(node.bitmaps.length, 0);
    node.close();
    assert.ok(fs.readFileSync(image).equals(bytes));
  });
});

describe('header fields and extensions QEMU does not know', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  test('unknown extensions kept (in QEMU\'s order), unknown compatible bits kept, unknown autoclear bits cleared', async () => {
    const bytes = fs.readFileSync(path.join(FIXTURES, 'plain.qcow2'));
    // plain.qcow2's feature table ends at 504, where the end marker is.
    assert.equal(bytes.readUInt32BE(504), 0);
    const extension = (magic: number, data: string) => {
      const ext = Buffer.alloc(8 + Math.ceil(data.length / 8) * 8);
      ext.writeUInt32BE(magic, 0);
      ext.writeUInt32BE(data.length, 4);
      ext.write(data, 8, 'latin1');
      return ext;
    };
    Buffer.concat([extension(0x12345678, 'hello'), extension(0x0badf00d, 'abcdefghijk'), Buffer.alloc(8)]).copy(bytes, 504);
    bytes.writeBigUInt64BE(1n << 3n, 80);
    bytes.writeBigUInt64BE(1n << 7n, 88);
    const ours = path.join(dir, 'unknown-ours.qcow2');
    const theirs = path.join(dir, 'unknown-qemu.qcow2');
    fs.writeFileSync(ours, bytes);
    fs.writeFileSync(theirs, bytes);
    const node = open(ours);
    applyOurs(node, [{ add: 'b', granularity: 65536 }]);
    node.close();
    await applyQemu(theirs, [{ add: 'b', granularity: 65536 }]);
    assert.ok(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), 'byte-identical files');
    const header = fs.readFileSync(ours);
    assert.equal(header.readBigUInt64BE(80), 1n << 3n);
    assert.equal(header.readBigUInt64BE(88), 1n, 'only the bitmaps bit is left');
  });
});

describe('a dirty image (lazy refcounts) is repaired when opened read-write', { skip }, () => {
  const dir = skip ? '' : scratchDir();
  test('lazy refcounts: dirty on disk from the first allocation until close', () => {
    const image = path.join(dir, 'lazy-session.qcow2');
    qemuImg('create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', image, String(8 * MiB));
    const node = open(image);
    assert.equal(qemuInfo(image)['dirty-flag'], false, 'not dirty before a write');
    node.write(0, new Uint8Array(4096).fill(1));
    assert.equal(qemuInfo(image)['dirty-flag'], true, 'dirty once a cluster is allocated');
    node.close();
    assert.equal(qemuInfo(image)['dirty-flag'], false, 'clean after close');
    assert.equal(qemuCheck(image).corruptions ?? 0, 0);
  });

  test('refcounts rebuilt, dirty bit cleared, contents kept', async () => {
    const ours = path.join(dir, 'lazy-ours.qcow2');
    const theirs = path.join(dir, 'lazy-qemu.qcow2');
    fs.copyFileSync(path.join(FIXTURES, 'lazy.qcow2'), ours);
    fs.copyFileSync(ours, theirs);
    assert.ok((qemuCheck(ours).corruptions ?? 0) > 0, 'the fixture needs repair');
    const node = open(ours);
    assert.equal(node.driverInfo()!.dirty, false);
    node.write(900 * KiB, new Uint8Array(4096).fill(0x33));
    node.close();
    await applyQemu(theirs, [{ write: 900 * KiB, bytes: 4096, pattern: 0x33 }]);
    const check = qemuCheck(ours);
    assert.equal(check.corruptions ?? 0, 0);
    assert.equal(check['check-errors'], 0);
    assert.equal(qemuInfo(ours)['dirty-flag'], false);
    assert.ok(qemuCompare(ours, theirs));
  });
});
