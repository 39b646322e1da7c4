/**
 * QEMU's orders and formats, as measured in QEMU 7.2 (the QEMU notes,
 * Appendix A and sections 1 and 2): QDict member order, which unexpected
 * member the QAPI visitor names (glib GHashTable slot order), the order the
 * QMP envelope is checked in, string escapes and number formats. Then the
 * same random requests on real QEMU and on our monitor, where QEMU is here.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine';
import { qdictOrder, toQemuJson } from '../../src/engine/qobject';
import { firstUnexpected } from '../../src/engine/qmp/ghash-order';
import { QmpMonitor } from '../../src/engine/qmp/monitor';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { random } from '../support/random';

const negotiated = () => new QmpMonitor(new Engine(), { negotiated: true });
const generic = (desc: string) => ({ error: { class: 'GenericError', desc } });

test('a QDict iterates by tdb_hash bucket, the later of two keys in one bucket first', () => {
  assert.deepEqual(qdictOrder(['major', 'minor', 'micro']), ['micro', 'minor', 'major']);
  assert.deepEqual(qdictOrder(['name', 'count', 'granularity', 'recording', 'busy', 'persistent']),
    ['name', 'recording', 'persistent', 'busy', 'granularity', 'count']);
  assert.deepEqual(qdictOrder(['execute', 'arguments', 'id', 'foo', 'bar', 'control', 'exec-oob']),
    ['exec-oob', 'bar', 'control', 'execute', 'arguments', 'id', 'foo']);
});

test('the GHashTable model names the member QEMU names', () => {
  assert.equal(firstUnexpected(qdictOrder(['node', 'name', 'Granularity', 'NAME']), ['node', 'name']), 'NAME');
  assert.equal(firstUnexpected(qdictOrder(['node', 'name']), ['node', 'name']), undefined);
});

describe('with several unexpected arguments, QEMU names the first one left in its hash table', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ node: 'n0', name: 'x1', foo: 1 }, 'foo'],
    [{ node: 'n0', name: 'x1', zzz: 1, aaa: 2 }, 'zzz'],
    [{ node: 'n0', name: 'x1', aaa: 2, zzz: 1 }, 'zzz'],
    [{ node: 'n0', name: 'x1', a: 1, b: 2 }, 'b'],
    [{ node: 'n0', name: 'x1', b: 1, a: 2 }, 'b'],
    [{ node: 'n0', name: 'x1', foo: 1, bar: 2 }, 'bar'],
    [{ node: 'n0', name: 'x1', bar: 1, foo: 2 }, 'bar'],
    [{ z: 1, y: 2, x: 3, node: 'n0', name: 'x1' }, 'z'],
    [{ node: 'n0', name: 'x1', x: 3, y: 2, z: 1 }, 'z'],
    [{ node: 'n0', name: 'x1', Granularity: 1, NAME: 2 }, 'NAME'],
  ];
  for (const [args, named] of cases) {
    test(`${JSON.stringify(args)} names ${named}`, () => {
      assert.deepEqual(negotiated().execute({ execute: 'block-dirty-bitmap-add', arguments: args }),
        generic(`Parameter '${named}' is unexpected`));
    });
  }
});

describe('the QMP envelope is checked member by member in QDict order', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ execute: 5, bar: 1 }, "QMP input member 'bar' is unexpected"],
    [{ arguments: 5, bar: 1 }, "QMP input member 'bar' is unexpected"],
    [{ execute: 5, 'exec-oob': 'x' }, "QMP input member 'exec-oob' is unexpected"],
    [{ execute: 'no-such-command', arguments: { a: 1 }, bar: 1 }, "QMP input member 'bar' is unexpected"],
    [{ execute: 'query-version', control: {} }, "QMP input member 'control' is unexpected"],
    [{ foo: 1, execute: 'query-version' }, "QMP input member 'foo' is unexpected"],
    [{ execute: 5, foo: 1 }, "QMP input member 'execute' must be a string"],
    [{ execute: 5, arguments: 5 }, "QMP input member 'execute' must be a string"],
    [{ arguments: 5, foo: 1 }, "QMP input member 'arguments' must be an object"],
    [{ execute: 'query-version', arguments: 5, foo: 1 }, "QMP input member 'arguments' must be an object"],
    [{ execute: 'no-such-command', arguments: 5 }, "QMP input member 'arguments' must be an object"],
    [{ execute: 'query-version', 'exec-oob': 'query-version' }, "QMP input member 'exec-oob' is unexpected"],
    [{ id: 7 }, "QMP input lacks member 'execute'"],
  ];
  for (const [request, desc] of cases) {
    test(`${JSON.stringify(request)}: ${desc}`, () => {
      const reply = negotiated().execute(request);
      assert.deepEqual(reply, 'id' in request ? { ...generic(desc), id: request.id } : generic(desc));
    });
  }

  test('the reply line is QEMU\'s, byte for byte', () => {
    assert.equal(toQemuJson(negotiated().execute({ execute: 'query-version', id: 'e3', foo: 1 })),
      '{"id": "e3", "error": {"class": "GenericError", "desc": "QMP input member \'foo\' is unexpected"}}');
  });
});

describe('toQemuJson writes strings and numbers as QEMU does', () => {
  test('escapes: the short ones, \\u with uppercase hex for the rest, surrogate pairs, no escaped /', () => {
    assert.equal(toQemuJson('q"b\\t\t/\u007f\u0001\u00e9\u2028\ud83d\ude00<>&\''),
      String.raw`"q\"b\\t\t/\u007F\u0001\u00E9\u2028\uD83D\uDE00<>&'"`);
    assert.equal(toQemuJson('c\n\r\b\f\u001f'), String.raw`"c\n\r\b\f\u001F"`);
    assert.equal(toQemuJson('nul\u0000x'), String.raw`"nul\u0000x"`);
    assert.equal(toQemuJson('raw\u00e9\ud83d\ude00'), String.raw`"raw\u00E9\uD83D\uDE00"`);
    assert.equal(toQemuJson(' spaced name/with:odd,chars '), '" spaced name/with:odd,chars "');
    assert.equal(toQemuJson({ 'k\u00e9': 'v' }), String.raw`{"k\u00E9": "v"}`);
  });

  test('what is no character comes out as U+FFFD, as mod_utf8_codepoint() makes it', () => {
    // Not measured (QEMU's parser refuses such input); this follows to_json_str().
    assert.equal(toQemuJson('a\ud800b\ufffe'), String.raw`"a\uFFFDb\uFFFD"`);
  });

  test('an id with floats and escapes comes back as QEMU prints it', () => {
    const request = JSON.parse('{"execute":"query-version","id":[1.5e300,0.1,-0,1e2,100000000000000000000,3.0,-7,"\\u00e9\\n"]}');
    const reply = { return: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian 1:7.2+dfsg-7+deb12u18+b3' }, id: request.id };
    assert.equal(toQemuJson(reply), '{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": '
      + '"Debian 1:7.2+dfsg-7+deb12u18+b3"}, "id": [1.5000000000000001e+300, 0.10000000000000001, 0, 100, 1e+20, 3, -7, "\\u00E9\\n"]}');
    assert.equal(toQemuJson({ a: [1, 2.5, null, true] }), '{"a": [1, 2.5, null, true]}');
  });

  test('%.17g: exponent forms, small numbers, and ties rounded to even', () => {
    const cases: Array<[number, string]> = [
      [0.1, '0.10000000000000001'], [2.5, '2.5'], [-0.5, '-0.5'], [1e-5, '1.0000000000000001e-05'],
      [0.0001, '0.0001'], [1e20, '1e+20'], [-(2 ** 64), '-1.8446744073709552e+19'], [5e-324, '4.9406564584124654e-324'],
      [1125899906842624.25, '1125899906842624.2'], [1125899906842624.75, '1125899906842624.8'],
    ];
    for (const [value, text] of cases) assert.equal(toQemuJson(value), text, String(value));
  });

  test('integers print with all their digits', () => {
    assert.equal(toQemuJson(2 ** 62), '4611686018427387904');
    assert.equal(toQemuJson(2 ** 64 - 2048), '18446744073709549568');
    assert.equal(toQemuJson(-(2 ** 63)), '-9223372036854775808');
    assert.equal(toQemuJson(-0), '0');
  });
});

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_\u00e9';

/**
 * Arguments with `count` unexpected members among `members`, in a random
 * order. Names that are no schema member (letters, `-`, `_`, `é`: never an
 * integer-like key, which JavaScript would move to the front).
 */
function withExtras(next: () => number, members: Record<string, unknown>, count: number, schema: readonly string[]) {
  const pick = (n: number) => Math.floor(next() * n);
  const entries = Object.entries(members);
  const names = new Set([...schema, ...Object.keys(members)]);
  for (let added = 0; added < count;) {
    const name = Array.from({ length: 1 + pick(8) }, () => ALPHABET[pick(ALPHABET.length)]).join('');
    if (names.has(name)) continue;
    names.add(name);
    entries.push([name, pick(2) ? added : `v${added}`]);
    added++;
  }
  for (let i = entries.length - 1; i > 0; i--) {
    const j = pick(i + 1);
    [entries[i], entries[j]] = [entries[j], entries[i]];
  }
  return Object.fromEntries(entries);
}

const BITMAP_ADD = ['node', 'name', 'granularity', 'persistent', 'disabled'];
const BLOCKDEV_NULL_CO = ['driver', 'node-name', 'discard', 'cache', 'read-only', 'auto-read-only', 'force-share',
  'detect-zeroes', 'size', 'latency-ns', 'read-zeroes'];

/**
 * Requests that fail before any command runs (none of the inputs that crash
 * QEMU 7.2, notes section 8: no merge, no enable, no negative size).
 */
function requests(): Array<Record<string, unknown>> {
  const next = random(0x5eed);
  const pick = (n: number) => Math.floor(next() * n);
  const extras = () => 3 + pick(10);
  const out: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 100; i++) {
    const members: Record<string, unknown> = { node: 'n0', name: `b${i}` };
    if (pick(2)) members.granularity = 65536;
    if (pick(2)) members.persistent = false;
    if (pick(2)) members.disabled = true;
    out.push({ execute: 'block-dirty-bitmap-add', arguments: withExtras(next, members, extras(), BITMAP_ADD) });
  }
  // A flat union: base and variant members are both visited.
  for (let i = 0; i < 30; i++) {
    const members: Record<string, unknown> = { driver: 'null-co', 'node-name': `u${i}` };
    if (pick(2)) members.size = 1 << 20;
    if (pick(2)) members['read-zeroes'] = true;
    if (pick(2)) members['read-only'] = false;
    out.push({ execute: 'blockdev-add', arguments: withExtras(next, members, extras(), BLOCKDEV_NULL_CO) });
  }
  // Envelopes with several problems at once.
  const envelope: Record<string, unknown> = { execute: 5, arguments: 5, id: 1, foo: 1, bar: 1, control: {}, 'exec-oob': 'x' };
  for (let i = 0; i < 30; i++) {
    const keys = Object.keys(envelope).filter(() => pick(2));
    out.push(Object.fromEntries(keys.map((key) => [key, key === 'execute' && pick(2) ? 'no-such-command' : envelope[key]])));
  }
  return out;
}

const skip = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

test('random requests with several problems get the replies QEMU 7.2 gives', { skip }, async () => {
  const qemu = await QemuProcess.start();
  try {
    const ready = await qemu.execute('blockdev-add', { driver: 'null-co', 'node-name': 'n0' });
    assert.deepEqual(ready, { return: {} });
    const monitor = negotiated();
    monitor.execute({ execute: 'blockdev-add', arguments: { driver: 'null-co', 'node-name': 'n0' } });
    for (const request of requests()) {
      const theirs = await qemu.sendRaw(JSON.stringify(request));
      const { id: _id, ...ours } = monitor.execute(request) as Record<string, unknown>;
      assert.deepEqual(ours, theirs, JSON.stringify(request));
    }
  } finally {
    await qemu.quit();
  }
});
