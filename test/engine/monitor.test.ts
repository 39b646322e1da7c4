import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { QmpMonitor, QEMU_VERSION } from '../../src/engine/qmp/monitor';
import { IoError } from '../../src/engine/io-error';

const negotiated = () => new QmpMonitor(new Engine(), { negotiated: true });

test('commands are refused until capabilities are negotiated, then qmp_capabilities is', () => {
  const monitor = new QmpMonitor(new Engine());
  const refused = { error: { class: 'CommandNotFound', desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } };
  assert.deepEqual(monitor.execute({ execute: 'query-version' }), refused);
  assert.deepEqual(monitor.execute({ execute: 'no-such-command' }), refused);
  assert.deepEqual(monitor.execute({ execute: 'qmp_capabilities', arguments: { enable: ['oob'] } }), { return: {} });
  assert.deepEqual(monitor.execute({ execute: 'qmp_capabilities' }), {
    error: { class: 'CommandNotFound', desc: 'Capabilities negotiation is already complete, command ignored' },
  });
});

test('a bad qmp_capabilities argument leaves negotiation open', () => {
  const monitor = new QmpMonitor(new Engine());
  assert.deepEqual(monitor.execute({ execute: 'qmp_capabilities', arguments: { enable: ['x'] } }), {
    error: { class: 'GenericError', desc: "Parameter 'null' does not accept value 'x'" },
  });
  assert.deepEqual(monitor.execute({ execute: 'qmp_capabilities' }), { return: {} });
});

test('the id of a request comes back with its reply, success or error', () => {
  const monitor = negotiated();
  assert.deepEqual(monitor.execute({ execute: 'query-named-block-nodes', id: 'a' }), { return: [], id: 'a' });
  assert.deepEqual(monitor.execute({ execute: 'nope', id: { n: 1 } }), {
    error: { class: 'CommandNotFound', desc: 'The command nope has not been found' },
    id: { n: 1 },
  });
});

test('query-version reports the QEMU version we follow and says what we are', () => {
  assert.deepEqual(negotiated().execute({ execute: 'query-version' }), {
    return: { qemu: QEMU_VERSION, package: 'Bitmap Lab 0.1.0' },
  });
});

test('a request that is not an object gets QEMU error', () => {
  for (const request of [null, 5, 'x', []]) {
    assert.deepEqual(negotiated().execute(request), { error: { class: 'GenericError', desc: 'QMP input must be a JSON object' } });
  }
});

test('guest writes through a backend dirty bitmaps made over QMP; writes past the end fail and dirty nothing', () => {
  const engine = new Engine();
  const monitor = new QmpMonitor(engine, { negotiated: true });
  monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0', size: 1 << 20 } });
  monitor.execute({ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 'b', granularity: 4096 } });
  const count = () => (monitor.execute({ execute: 'query-named-block-nodes' }) as { return: Array<Record<string, any>> }).return[0]['dirty-bitmaps'][0].count;
  engine.backend('n0').write(4095, new Uint8Array(2));
  assert.equal(count(), 8192);
  assert.throws(() => engine.backend('n0').write((1 << 20) - 1, new Uint8Array(2)), IoError);
  assert.equal(count(), 8192);
  assert.throws(() => engine.backend('nowhere'), { desc: "Cannot find device='' nor node-name='nowhere'" });
});

test('merging an empty list of sources changes nothing (QEMU 7.2 crashes here)', () => {
  const monitor = negotiated();
  monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0' } });
  monitor.execute({ execute: 'block-dirty-bitmap-add', arguments: { node: 'n0', name: 't' } });
  assert.deepEqual(monitor.execute({ execute: 'block-dirty-bitmap-merge', arguments: { node: 'n0', target: 't', bitmaps: [] } }), { return: {} });
});

test('a transaction enabling a bitmap that is not there fails as disable does (QEMU 7.2 crashes here)', () => {
  const monitor = negotiated();
  const actions = (type: string) => [{ type, data: { node: 'nowhere', name: 'b0' } }];
  const disabled = monitor.execute({ execute: 'transaction', arguments: { actions: actions('block-dirty-bitmap-disable') } });
  assert.deepEqual(disabled, { error: { class: 'GenericError', desc: "Node 'nowhere' not found" } });
  assert.deepEqual(monitor.execute({ execute: 'transaction', arguments: { actions: actions('block-dirty-bitmap-enable') } }), disabled);
});

test('drivers we do not have yet are refused by name, and nothing is added', () => {
  const monitor = negotiated();
  const reply = monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'vvfat', 'node-name': 'v' } });
  assert.deepEqual(reply, { error: { class: 'GenericError', desc: "Bitmap Lab does not implement the block driver 'vvfat' yet" } });
  assert.deepEqual(monitor.execute({ execute: 'query-named-block-nodes' }), { return: [] });
});

test('a negative null-co size is an error, where QEMU 7.2 aborts', () => {
  const reply = negotiated().execute({ execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n', size: -1 } });
  assert.deepEqual(reply, { error: { class: 'GenericError', desc: "Parameter 'size' expects a non-negative number below 2^64" } });
});

test('null-co without read-zeroes reads zeroes here (QEMU leaves the buffer as it was: docs/differences-from-qemu.md)', () => {
  const engine = new Engine();
  let printed = '';
  engine.console = (text) => void (printed += text);
  const monitor = new QmpMonitor(engine, { negotiated: true });
  assert.deepEqual(monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0', size: 1 << 20 } }), { return: {} });
  const reply = monitor.execute({ execute: 'human-monitor-command', arguments: { 'command-line': 'qemu-io n0 "read -P 0 0 65536"' } });
  assert.deepEqual(reply, { return: '' });
  assert.match(printed, /^read 65536\/65536 bytes at offset 0\n/);
});
