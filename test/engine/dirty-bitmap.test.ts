import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DirtyBitmap, checkBitmap, mergeBitmaps, BUSY, RO, DEFAULT_CHECKS, ALLOW_RO } from '../../src/engine/dirty-bitmap';
import { NullNode } from '../../src/engine/drivers/null-co';
import { DEFAULT_NODE_OPTIONS } from '../../src/engine/block-node';

const MiB = 1024 * 1024;
const nullNode = (size = 64 * MiB) => new NullNode('n0', 'null-co', { size }, DEFAULT_NODE_OPTIONS);

test('a write dirties every granule it overlaps', () => {
  const bitmap = new DirtyBitmap('b', 65536, 64 * MiB);
  bitmap.markDirty(0xf8000, 65536);
  assert.deepEqual([...bitmap.bits.extents()], [[15, 17]]);
  bitmap.markDirty(5 * 65536 + 100, 1);
  assert.equal(bitmap.bits.get(5), true);
  assert.equal(bitmap.count, 3 * 65536);
  bitmap.markDirty(0, 0);
  assert.equal(bitmap.count, 3 * 65536);
});

test('count is whole granules, not clipped to the disk end', () => {
  const bitmap = new DirtyBitmap('b', 65536, 100000);
  bitmap.markDirty(0, 100000);
  assert.equal(bitmap.count, 131072);
  assert.deepEqual([...bitmap.dirtyExtents()], [[0, 100000]]);
});

test('sha256 matches the SPEC vectors for a 64 MiB disk at 64 KiB', () => {
  const bitmap = new DirtyBitmap('b', 65536, 64 * MiB);
  assert.equal(bitmap.sha256(), '38723a2e5e8a17aa7950dc008209944e898f69a7bd10a23c839d341e935fd5ca');
  for (const granule of [0, 15, 16, 512, 513, 1022]) bitmap.markDirty(granule * 65536, 1);
  assert.equal(bitmap.sha256(), '0fe44ee8099aee1ec60ac068ecd0b1f16452fd202ae8c9d96cf640ca6ce1b918');
  bitmap.markDirty(0, 64 * MiB);
  assert.equal(bitmap.sha256(), 'e9175db65a9789096ca9cb5524d3abc2107df03e3c9ba3af1aca628f9c5d3bd2');
});

test('merging across granularities re-quantises to the destination', () => {
  const fine = new DirtyBitmap('fine', 4096, MiB);
  const coarse = new DirtyBitmap('coarse', 65536, MiB);
  fine.markDirty(65536 + 4096, 4096);
  coarse.mergeInternal(fine);
  assert.deepEqual([...coarse.bits.extents()], [[1, 2]]);
  const back = new DirtyBitmap('back', 4096, MiB);
  back.mergeInternal(coarse);
  assert.deepEqual([...back.bits.extents()], [[16, 32]]);
});

test('a coarse source on a disk with a partial last granule only marks bytes inside the disk', () => {
  const coarse = new DirtyBitmap('coarse', 65536, 100000);
  coarse.markDirty(0, 100000);
  const fine = new DirtyBitmap('fine', 4096, 100000);
  fine.mergeInternal(coarse);
  assert.equal(fine.count, Math.ceil(100000 / 4096) * 4096);
});

test('checks run busy, then readonly, then inconsistent', () => {
  const bitmap = new DirtyBitmap('b', 65536, MiB);
  bitmap.busy = bitmap.readonly = bitmap.inconsistent = true;
  assert.throws(() => checkBitmap(bitmap, DEFAULT_CHECKS), { desc: "Bitmap 'b' is currently in use by another operation and cannot be used" });
  assert.throws(() => checkBitmap(bitmap, RO | 4), { desc: "Bitmap 'b' is readonly and cannot be modified" });
  assert.throws(() => checkBitmap(bitmap, 4), { desc: "Bitmap 'b' is inconsistent and cannot be used" });
  bitmap.busy = false;
  assert.throws(() => checkBitmap(bitmap, ALLOW_RO), { desc: "Bitmap 'b' is inconsistent and cannot be used" });
  bitmap.inconsistent = false;
  assert.doesNotThrow(() => checkBitmap(bitmap, ALLOW_RO | BUSY));
});

test('merge refuses different sizes and leaves the target alone', () => {
  const dest = new DirtyBitmap('d', 65536, MiB);
  const source = new DirtyBitmap('s', 65536, 2 * MiB);
  source.markDirty(0, 1);
  assert.throws(() => mergeBitmaps(dest, source), {
    desc: "Bitmaps are of different sizes (destination size is 1048576, source size is 2097152) and can't be merged",
  });
  assert.equal(dest.count, 0);
});

test('the successor records while its parent is frozen; abdicate keeps N', () => {
  const node = nullNode();
  const sync = node.createBitmap(65536, 'sync');
  sync.persistent = true;
  sync.markDirty(0, 1);
  const successor = node.createSuccessor(sync);
  assert.deepEqual(node.bitmaps, [successor, sync]);
  assert.equal(sync.busy, true);
  assert.equal(sync.recording, true);
  assert.equal(successor.busy, false);
  node.markDirty(65536, 1);
  assert.equal(sync.count, 65536);
  assert.equal(successor.count, 65536);
  assert.throws(() => node.createSuccessor(sync), { desc: "Bitmap 'sync' is currently in use by another operation and cannot be used" });

  const result = node.abdicate(sync);
  assert.equal(result, successor);
  assert.equal(result.name, 'sync');
  assert.equal(result.persistent, true);
  assert.equal(result.busy, false);
  assert.deepEqual([...result.bits.extents()], [[1, 2]]);
  assert.deepEqual(node.bitmaps, [result]);
});

test('reclaim folds the successor back: S ∪ N, recording as the successor', () => {
  const node = nullNode();
  const sync = node.createBitmap(65536, 'sync');
  sync.disabled = true;
  sync.markDirty(0, 1);
  const successor = node.createSuccessor(sync);
  assert.equal(successor.disabled, true);
  assert.equal(sync.recording, false);
  successor.markDirty(3 * 65536, 1);
  assert.equal(node.reclaim(sync), sync);
  assert.deepEqual([...sync.bits.extents()], [[0, 1], [3, 4]]);
  assert.equal(sync.disabled, true);
  assert.equal(sync.busy, false);
  assert.deepEqual(node.bitmaps, [sync]);
  assert.throws(() => node.reclaim(sync), { desc: 'Cannot reclaim a successor when none is present' });
  assert.throws(() => node.abdicate(sync), { desc: "Cannot relinquish control if there's no successor present" });
});

test('a node dirties only its enabled bitmaps', () => {
  const node = nullNode();
  const enabled = node.createBitmap(65536, 'on');
  const disabled = node.createBitmap(4096, 'off');
  disabled.disabled = true;
  node.markDirty(4096, 8192);
  assert.equal(enabled.count, 65536);
  assert.equal(disabled.count, 0);
});

test('bitmap names: unique per node and at most 1023 bytes', () => {
  const node = nullNode();
  node.createBitmap(65536, 'x'.repeat(1023));
  assert.throws(() => node.createBitmap(65536, 'x'.repeat(1023)), { desc: `Bitmap already exists: ${'x'.repeat(1023)}` });
  assert.throws(() => node.createBitmap(65536, 'é'.repeat(512)), { desc: `Bitmap name too long: ${'é'.repeat(512)}` });
  assert.equal(node.defaultGranularity(), 65536);
});
