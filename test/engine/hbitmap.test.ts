import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { HBitmap, MAX_BITS } from '../../src/engine/hbitmap';
import { NaiveBits } from '../support/naive-bits';

type Op =
  | { kind: 'set' | 'reset'; start: number; count: number }
  | { kind: 'resetAll' }
  | { kind: 'merge'; ranges: Array<[number, number]> };

const range = (size: number) => fc.tuple(fc.nat(size + 40), fc.nat(Math.max(1, size)));
const op = (size: number): fc.Arbitrary<Op> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constantFrom('set' as const, 'reset' as const), start: fc.nat(size + 40), count: fc.nat(Math.max(1, size)) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'resetAll' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('merge' as const), ranges: fc.array(range(size), { maxLength: 6 }) }) },
  );

/** Sizes around word and level boundaries as well as random ones. */
const sizes = fc.oneof(fc.constantFrom(0, 1, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 32768, 32769), fc.integer({ min: 1, max: 70000 }));

function apply(bitmap: HBitmap, model: NaiveBits, step: Op): void {
  switch (step.kind) {
    case 'set':
      bitmap.set(step.start, step.count);
      model.set(step.start, step.count, 1);
      break;
    case 'reset':
      bitmap.reset(step.start, step.count);
      model.set(step.start, step.count, 0);
      break;
    case 'resetAll':
      bitmap.resetAll();
      model.bits.fill(0);
      break;
    case 'merge': {
      const other = new HBitmap(bitmap.size);
      for (const [start, count] of step.ranges) {
        other.set(start, count);
        model.set(start, count, 1);
      }
      bitmap.merge(other);
    }
  }
}

function assertSame(bitmap: HBitmap, model: NaiveBits, probes: number[]): void {
  assert.equal(bitmap.count, model.count);
  assert.deepEqual([...bitmap.extents()], model.extents());
  assert.deepEqual(Buffer.from(bitmap.bytes()), Buffer.from(model.bytes()));
  for (const probe of probes) {
    const start = probe % (model.size + 1);
    assert.equal(bitmap.get(start), model.bits[start] === 1);
    assert.equal(bitmap.nextDirty(start), model.next(1, start));
    assert.equal(bitmap.nextClean(start), model.next(0, start));
    const end = Math.min(model.size, start + (probe % 97));
    assert.equal(bitmap.nextDirty(start, end), model.next(1, start, end));
    assert.equal(bitmap.nextClean(start, end), model.next(0, start, end));
  }
}

test('random operations agree with a naive bit set', () => {
  fc.assert(
    fc.property(
      sizes.chain((size) => fc.tuple(fc.constant(size), fc.array(op(size), { maxLength: 25 }), fc.array(fc.nat(), { maxLength: 20 }))),
      ([size, ops, probes]) => {
        const bitmap = new HBitmap(size);
        const model = new NaiveBits(size);
        for (const step of ops) apply(bitmap, model, step);
        assertSame(bitmap, model, probes);
      },
    ),
    { numRuns: 300 },
  );
});

test('nextDirtyArea honours its bounds and maximum length', () => {
  const bitmap = new HBitmap(1000);
  bitmap.set(10, 20);
  bitmap.set(500, 300);
  assert.deepEqual(bitmap.nextDirtyArea(), [10, 30]);
  assert.deepEqual(bitmap.nextDirtyArea(15), [15, 30]);
  assert.deepEqual(bitmap.nextDirtyArea(30), [500, 800]);
  assert.deepEqual(bitmap.nextDirtyArea(30, 600), [500, 600]);
  assert.deepEqual(bitmap.nextDirtyArea(0, 1000, 7), [10, 17]);
  assert.equal(bitmap.nextDirtyArea(800), undefined);
  assert.equal(bitmap.nextDirtyArea(30, 500), undefined);
});

test('sparse bits far apart on a huge bit set are found through the upper levels', () => {
  const bitmap = new HBitmap(2 ** 28); // 1 TiB at 4 KiB granules
  const bits = [0, 12345, 2 ** 27 + 1, 2 ** 28 - 1];
  for (const bit of bits) bitmap.set(bit, 1);
  assert.equal(bitmap.count, bits.length);
  assert.deepEqual([...bitmap.extents()], bits.map((bit) => [bit, bit + 1]));
  bitmap.reset(0, 2 ** 28);
  assert.equal(bitmap.count, 0);
  assert.equal(bitmap.nextDirty(0), -1);
});

test('set, reset and merge clip to the bit set', () => {
  const bitmap = new HBitmap(100);
  bitmap.set(90, 1000);
  assert.equal(bitmap.count, 10);
  assert.equal(bitmap.get(100), false);
  bitmap.reset(95, 1000);
  assert.equal(bitmap.count, 5);
  assert.throws(() => bitmap.merge(new HBitmap(101)), RangeError);
  assert.throws(() => new HBitmap(MAX_BITS + 1), RangeError);
  assert.throws(() => new HBitmap(-1), RangeError);
});

test('an empty bit set still serialises as one 64-bit word', () => {
  assert.equal(new HBitmap(0).bytes().length, 8);
  assert.equal(new HBitmap(64).bytes().length, 8);
  assert.equal(new HBitmap(65).bytes().length, 16);
});
