/**
 * The same bitmap command sequences on real QEMU 7.2 and on our dispatcher:
 * every reply (error class and text included), every node's record in
 * query-named-block-nodes and the sha256 of every bitmap must agree.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { onEngine, onQemu, type Step } from '../support/differential';

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');
const MiB = 1024 * 1024;

const qmp = (execute: string, args?: Record<string, unknown>): Step => (args ? { execute, arguments: args } : { execute });
const nullNode = (name: string, size = 64 * MiB) => qmp('blockdev-add', { driver: 'null-co', 'node-name': name, size });
const add = (name: string, extra: Record<string, unknown> = {}, node = 'n0') => qmp('block-dirty-bitmap-add', { node, name, ...extra });
const bitmap = (command: string, name: string, node = 'n0') => qmp(`block-dirty-bitmap-${command}`, { node, name });
const write = (offset: number, bytes: number, node = 'n0'): Step => ({ io: `write ${offset} ${bytes}`, node });
const action = (type: string, data: Record<string, unknown>) => ({ type, data });

const scenarios: Record<string, Step[]> = {
  'add: defaults, granularities, flags and every error': [
    nullNode('n0'),
    add('b0'),
    add('fine', { granularity: 512 }),
    add('huge', { granularity: 2 ** 31 }),
    add('off', { disabled: true, granularity: 4096 }),
    add('b0'),
    add(''),
    add('x', {}, 'nowhere'),
    add('', {}, 'nowhere'),
    ...[0, 256, 511, 513, 1000, 3 * 65536].map((granularity) => add('g', { granularity })),
    add('p', { persistent: true }),
    add('p', { persistent: true, granularity: 100 }),
    add('b0', { persistent: true }),
    add('n'.repeat(1023)),
    add('m'.repeat(1024)),
    add('d', { disabled: false, persistent: false }),
  ],
  'add: QAPI argument checking': [
    nullNode('n0'),
    qmp('block-dirty-bitmap-add', { node: 'n0' }),
    qmp('block-dirty-bitmap-add', { name: 'a' }),
    qmp('block-dirty-bitmap-add', {}),
    qmp('block-dirty-bitmap-add', { node: 'n0', name: 'a', bogus: 1 }),
    qmp('block-dirty-bitmap-add', { node: 'n0', bogus: 1 }),
    qmp('block-dirty-bitmap-add', { node: 5, name: 'a' }),
    qmp('block-dirty-bitmap-add', { node: 'n0', name: null }),
    qmp('block-dirty-bitmap-add', { node: 'n0', name: 'a', disabled: 'yes' }),
    ...['x', 1.5, -1, -4096, 2 ** 32, 2 ** 40, true, null, [], {}].map((granularity) => add('a', { granularity })),
    qmp('block-dirty-bitmap-add', { node: 'n0', name: 'a', granularity: 'x', persistent: 'x' }),
  ],
  'guest writes dirty enabled bitmaps, granule by granule': [
    nullNode('n0'),
    add('g64k'),
    add('g4k', { granularity: 4096 }),
    add('g1m', { granularity: MiB }),
    add('off', { disabled: true }),
    write(0, 512),
    write(0xf8000, 65536),
    write(3 * MiB + 100, 1),
    write(10 * MiB - 4096, 8192),
    { io: `write -z ${20 * MiB} 131072`, node: 'n0' },
    bitmap('enable', 'off'),
    write(63 * MiB, MiB),
    bitmap('disable', 'g64k'),
    bitmap('disable', 'g64k'),
    bitmap('enable', 'g4k'),
    write(50 * MiB, 65536),
  ],
  'a disk whose size is not a multiple of the granularity': [
    nullNode('n0', 100000),
    add('b', { granularity: 65536 }),
    add('f', { granularity: 512 }),
    write(90000, 10000),
    write(0, 100000),
    bitmap('clear', 'f'),
    write(99999, 1),
  ],
  'clear, remove, enable, disable and sha256 lookups': [
    nullNode('n0'),
    add('b'),
    write(0, MiB),
    bitmap('clear', 'b'),
    bitmap('clear', 'nope'),
    bitmap('clear', 'b', 'nowhere'),
    bitmap('remove', 'b'),
    bitmap('remove', 'b'),
    bitmap('enable', 'b'),
    bitmap('disable', 'b', 'nowhere'),
    qmp('x-debug-block-dirty-bitmap-sha256', { node: 'n0', name: 'b' }),
    qmp('x-debug-block-dirty-bitmap-sha256', { node: 'nowhere', name: 'b' }),
    qmp('block-dirty-bitmap-clear', { node: 'n0' }),
  ],
  'merge: local and external sources, granularities, sizes and failures': [
    nullNode('n0'),
    nullNode('n1'),
    nullNode('small', 32 * MiB),
    add('t'),
    add('a', { granularity: 4096 }),
    add('b', { granularity: MiB }),
    add('x', {}, 'n1'),
    add('s', {}, 'small'),
    write(4096, 4096),
    write(5 * MiB, 1),
    write(7 * MiB, 65536, 'n1'),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['a'] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 'a', bitmaps: ['b', { node: 'n1', name: 'x' }] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['t'] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['b', 'missing'] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['b', { node: 'nowhere', name: 'x' }] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['b', { node: 'n1', name: 'missing' }] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['b', { node: 'small', name: 's' }] }),
    qmp('block-dirty-bitmap-merge', { node: 'small', target: 's', bitmaps: [{ node: 'n0', name: 'b' }] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 'missing', bitmaps: ['b'] }),
    qmp('block-dirty-bitmap-merge', { node: 'nowhere', target: 't', bitmaps: ['b'] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: 'b' }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: [5] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: [null] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: [{}] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't', bitmaps: ['a', { node: 'n1', name: 'x', extra: 1 }] }),
    qmp('block-dirty-bitmap-merge', { node: 'n0', target: 't' }),
  ],
  'transaction: prepare effects are visible, failures roll everything back': [
    nullNode('n0'),
    add('keep'),
    add('off', { disabled: true }),
    write(0, 3 * 65536),
    qmp('transaction', { actions: [] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-add', { node: 'n0', name: 'new' }), action('block-dirty-bitmap-clear', { node: 'n0', name: 'new' })] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'new' }), action('block-dirty-bitmap-add', { node: 'n0', name: 'new', granularity: 4096 })] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' }), action('block-dirty-bitmap-clear', { node: 'n0', name: 'keep' })] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' }), action('block-dirty-bitmap-merge', { node: 'n0', target: 'new', bitmaps: ['keep'] })] }),
    // A busy target: a missing source is reported first (each source is looked up before the target is checked).
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' }), action('block-dirty-bitmap-merge', { node: 'n0', target: 'keep', bitmaps: ['missing'] })] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' }), action('block-dirty-bitmap-merge', { node: 'n0', target: 'keep', bitmaps: ['new'] })] }),
    // The target is checked as each found source is merged, before that source's size.
    nullNode('small', MiB),
    qmp('block-dirty-bitmap-add', { node: 'small', name: 's' }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' }), action('block-dirty-bitmap-merge', { node: 'n0', target: 'keep', bitmaps: [{ node: 'small', name: 's' }] })] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-merge', { node: 'n0', target: 'new', bitmaps: [{ node: 'small', name: 's' }, 'missing'] })] }),
    qmp('transaction', {
      actions: [
        action('block-dirty-bitmap-clear', { node: 'n0', name: 'keep' }),
        action('block-dirty-bitmap-enable', { node: 'n0', name: 'off' }),
        action('block-dirty-bitmap-disable', { node: 'n0', name: 'new' }),
        action('block-dirty-bitmap-merge', { node: 'n0', target: 'new', bitmaps: ['keep', 'off'] }),
        action('block-dirty-bitmap-add', { node: 'n0', name: 'temp' }),
        action('block-dirty-bitmap-remove', { node: 'n0', name: 'nope' }),
      ],
    }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-merge', { node: 'n0', target: 'new', bitmaps: ['keep'] }), action('abort', {})] }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-clear', { node: 'n0', name: 'keep' })], properties: { 'completion-mode': 'grouped' } }),
    qmp('transaction', { actions: [action('abort', {})], properties: { 'completion-mode': 'grouped' } }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-enable', { node: 'n0', name: 'off' })], properties: { 'completion-mode': 'individual' } }),
    qmp('transaction', { actions: [action('block-dirty-bitmap-disable', { node: 'n0', name: 'off' }), action('block-dirty-bitmap-remove', { node: 'n0', name: 'keep' })] }),
  ],
  'transaction: argument checking': [
    nullNode('n0'),
    qmp('transaction', {}),
    qmp('transaction', { actions: {} }),
    qmp('transaction', { actions: [{}] }),
    qmp('transaction', { actions: [{ type: 'nope', data: {} }] }),
    qmp('transaction', { actions: [{ type: 'block-dirty-bitmap-add' }] }),
    qmp('transaction', { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'n0' } }] }),
    qmp('transaction', { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'n0', name: 'a', x: 1 } }] }),
    qmp('transaction', { actions: [{ type: 'block-dirty-bitmap-add', data: { node: 'n0', name: 'a' }, x: 1 }] }),
    qmp('transaction', { actions: [action('abort', { x: 1 })] }),
    qmp('transaction', { actions: [], properties: { 'completion-mode': 'sometimes' } }),
    qmp('transaction', { actions: [], properties: { x: 1 } }),
  ],
  'blockdev-add and blockdev-del of null-co nodes': [
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'plain' }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'zeroes', size: MiB, 'read-zeroes': true, 'latency-ns': 5 }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'ro', 'read-only': true, 'detect-zeroes': 'on', cache: { direct: false, 'no-flush': true } }),
    qmp('blockdev-add', { driver: 'null-aio', 'node-name': 'aio', size: MiB }),
    qmp('blockdev-add', { driver: 'null-co' }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'plain' }),
    ...['1abc', 'a b', '#x', '', 'é', 'a'.repeat(31), 'b'.repeat(32)].map((name) => qmp('blockdev-add', { driver: 'null-co', 'node-name': name })),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'x', size: 'big' }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'x', bogus: true }),
    qmp('blockdev-add', { driver: 'nope', 'node-name': 'x' }),
    qmp('blockdev-add', { 'node-name': 'x' }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'x', cache: { direct: 'no' } }),
    qmp('blockdev-add', { driver: 'null-co', 'node-name': 'x', 'detect-zeroes': 'maybe' }),
    add('b', {}, 'zeroes'),
    add('c', { granularity: 4096 }, 'zeroes'),
    qmp('blockdev-del', { 'node-name': 'zeroes' }),
    qmp('blockdev-del', { 'node-name': 'zeroes' }),
    qmp('blockdev-del', {}),
    add('b', {}, 'zeroes'),
    qmp('query-named-block-nodes', { flat: true }),
    qmp('query-named-block-nodes', { flat: 1 }),
  ],
  'dispatch: request shape and unknown commands': [
    qmp('no-such-command'),
    qmp('no-such-command', { x: 1 }),
    qmp('query-named-block-nodes', { x: 1 }),
    qmp('qmp_capabilities'),
    { execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b' }, extra: 1 } as unknown as Step,
    { execute: 5 } as unknown as Step,
    { arguments: {} } as unknown as Step,
    { execute: 'query-named-block-nodes', arguments: [] } as unknown as Step,
  ],
};

describe('bitmap commands against QEMU 7.2', { skip }, () => {
  for (const [name, steps] of Object.entries(scenarios)) {
    test(name, async () => {
      const [ours, theirs] = await Promise.all([onEngine(steps), onQemu(steps)]);
      for (let i = 0; i < steps.length; i++) {
        assert.deepEqual(ours[i], theirs[i], `step ${i}: ${theirs[i].step}`);
      }
    });
  }
});
