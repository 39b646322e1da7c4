/**
 * The endpoint's parts without a process: QEMU's JSON stream parser (how a
 * stream splits into values, its limits, how numbers keep their kind) and
 * the realtime driver. The wire tests cover the same ground end to end.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { QFloat } from '../../src/engine/qfloat';
import { JsonMessageParser } from '../../src/engine/qmp/json-streamer';
import type { JsonMessage } from '../../src/engine/qmp/json-parser';
import { RealtimeDriver } from '../../src/engine/realtime';
import { Scheduler } from '../../src/engine/scheduler';

function parse(...chunks: string[]): JsonMessage[] {
  const messages: JsonMessage[] = [];
  const parser = new JsonMessageParser((message) => messages.push(message));
  for (const chunk of chunks) parser.feed(Buffer.from(chunk, 'latin1'));
  return messages;
}

describe("QEMU's JSON stream parser", () => {
  test('a value is out as soon as its last byte is in, however the bytes are split', () => {
    const stream = '{"a": [1, {"b": "c}"}]} \'x\'  [] 7 ';
    const whole = parse(stream);
    assert.deepEqual(whole, [{ value: { a: [1, { b: 'c}' }] } }, { value: 'x' }, { value: [] }, { value: 7 }]);
    assert.deepEqual(parse(...stream), whole);
    // A number or keyword needs the byte after it to end.
    assert.deepEqual(parse('42'), []);
  });

  test('numbers keep their kind: integers exact to 2^64, floats boxed', () => {
    const [message] = parse('[1, -0, 1.0, 1e2, 9007199254740993, -9223372036854775808, 18446744073709551615, 18446744073709551616]');
    assert.deepEqual(message, {
      value: [1, 0, new QFloat(1), new QFloat(100), 9007199254740993n, -9223372036854775808n, 18446744073709551615n, new QFloat(2 ** 64)],
    });
  });

  test('a member named __proto__ is a member', () => {
    const [message] = parse('{"__proto__": {"x": 1}}');
    assert.ok('value' in message);
    assert.deepEqual(Object.keys(message.value as object), ['__proto__']);
    assert.equal(Object.getPrototypeOf(message.value), Object.prototype);
  });

  test('at most 2^21 tokens per value, as measured on QEMU; the stream goes on after', () => {
    // '[' + n times '1,' + '1]': 2n + 3 tokens.
    const array = (n: number) => `[${'1,'.repeat(n)}1]`;
    assert.deepEqual(parse(array(1048574)), [{ value: new Array(1048575).fill(1) }]);
    assert.deepEqual(parse(array(1048575), '{}'), [{ error: 'JSON token count limit exceeded' }, { value: {} }]);
  });

  test('a single token may not grow past 64 MiB', () => {
    const messages = parse(`"${'x'.repeat(64 * 1024 * 1024)}`);
    assert.deepEqual(messages, [{ error: 'JSON token size limit exceeded' }]);
  });
});

describe('the realtime driver', () => {
  test('a task sleeping 50 ms runs 50 ms later on the wall clock, not at once and not long after', async () => {
    const scheduler = new Scheduler();
    let ranAt: number | undefined;
    const started = performance.now();
    scheduler.schedule('sleeper', () => (ranAt = performance.now()), 50e6);
    const ran = new Promise<void>((resolve) => {
      const driver = new RealtimeDriver(scheduler, {
        afterRun: () => ranAt !== undefined && (driver.stop(), resolve()),
        onError: (error) => assert.fail(String(error)),
      });
      driver.catchUp();
      assert.equal(ranAt, undefined);
      driver.kick();
    });
    await ran;
    const elapsed = ranAt! - started;
    assert.ok(elapsed >= 50 && elapsed < 150, `ran after ${elapsed} ms`);
    assert.ok(scheduler.now >= 50e6, 'the task saw its time come');
  });

  test('what a task throws is reported, and later tasks still run', async () => {
    const scheduler = new Scheduler();
    const errors: unknown[] = [];
    let later = false;
    scheduler.schedule('bad', () => {
      throw new Error('boom');
    });
    scheduler.schedule('good', () => (later = true), 1e6);
    await new Promise<void>((resolve) => {
      const driver = new RealtimeDriver(scheduler, {
        afterRun: () => later && (driver.stop(), resolve()),
        onError: (error) => errors.push(error),
      });
      driver.kick();
    });
    assert.deepEqual(errors.map(String), ['Error: boom']);
  });
});
