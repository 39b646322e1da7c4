/**
 * The QMP wire, byte for byte: raw bytes in, the exact lines out, for
 * malformed JSON, several values per line, values split across writes,
 * numbers at the int64/uint64/double edges, ids of every JSON type, unicode
 * and stray bytes. The expected lines were measured on QEMU 7.2; the same
 * script runs against our `bitmap-lab qmp --socket` and against QEMU.
 */
import { describe, test } from 'node:test';
import { toQemuJson } from '../../src/engine/qobject';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { RawClient, assertSameLines, normalise, startServer, type ServerKind } from './wire';

const skipQemu = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

/** Bytes to send (a latin1 string: one character per byte) and the lines that must come back. */
type Exchange = [send: string, expect: string[]];

const generic = (desc: string) => `{"error": {"class": "GenericError", "desc": ${toQemuJson(desc)}}}`;
const parseError = (what: string) => generic(`JSON parse error, ${what}`);
const notObject = generic('QMP input must be a JSON object');
const nodes = (id?: string) => `{"return": []${id === undefined ? '' : `, "id": ${id}`}}`;
const query = (id?: string) => `{"execute":"query-named-block-nodes"${id === undefined ? '' : `,"id":${id}`}}\n`;
const bitmapAdd = (args: string) => `{"execute":"block-dirty-bitmap-add","arguments":{"node":"n0","name":"g",${args}}}\n`;

const SCRIPT: Exchange[] = [
  // Before negotiation every command is refused, and a second negotiation is too.
  [query(), ['{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}']],
  ['{"execute":"qmp_capabilities"}\r\n', ['{"return": {}}']],
  ['{"execute":"qmp_capabilities"}\n', ['{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}']],

  // Several values on one line, one value over several writes, a value after a stray control byte.
  [`${query()}${query('1')}`.replaceAll('\n', ''), [nodes(), nodes('1')]],
  ['{"execute":', []],
  ['\n  "query-named-block-nodes"', []],
  ['}', [nodes()]],
  ['{"a":1}\x01{"execute":"query-named-block-nodes"}\n', [generic("QMP input member 'a' is unexpected"), parseError("stray '\x01'"), nodes()]],
  ["{'execute':'query-named-block-nodes','id':'single \"quoted\"'}\n", [nodes(String.raw`"single \"quoted\""`)]],
  ['1 2\n', [notObject, notObject]],
  [`${'['.repeat(1024)}${']'.repeat(1024)}\n`, [notObject]],
  [`${'['.repeat(1025)}\n`, [generic('JSON nesting depth limit exceeded')]],

  // Malformed JSON: the lexer's stray bytes (then recovery to the next structural or control byte) and the parser's errors.
  ['{"a": @}\n', [parseError("stray '@'"), parseError('expecting value')]],
  ['True\n', [parseError("stray 'T'")]],
  ['nul\n', [parseError("invalid keyword 'nul'")]],
  ['{execute:"query-named-block-nodes"}\n', [parseError("invalid keyword 'execute'")]],
  ['-x\n', [parseError("stray '-x'")]],
  ['01\n', [parseError("stray '01'")]],
  ['[1.}\n', [parseError("stray '1.}'")]],
  ['[1.5e]\n', [parseError("stray '1.5e]'")]],
  ['%d\n', [parseError("stray '%'")]],
  ['[}\n', [parseError('expecting value')]],
  ['{]\n', [parseError('expecting value')]],
  [']\n', [parseError('expecting value')]],
  ['{"a" 1}\n', [parseError('missing : in object pair')]],
  ['{"a":1 "b":2}\n', [parseError('expected separator in dict')]],
  ['[1 2]\n', [parseError('expected separator in list')]],
  ['{1:2}\n', [parseError('key is not a string in object')]],
  ['[1,]\n', [parseError('expecting value')]],
  ['{"a":}\n', [parseError('expecting value')]],
  ['{"execute":"query-named-block-nodes",}\n', [parseError('expecting value')]],
  ['{"execute":"query-named-block-nodes","execute":"x"}\n', [parseError('duplicate key')]],
  [`${query()}  }\n`, [nodes(), parseError('expecting value')]],
  ['"\\u12"\n', [parseError('\\u12" is not a valid Unicode character')]],
  ['"\\uD800"\n', [parseError('\\uD800 is not a valid Unicode character')]],
  ['"\\uFFFF"\n', [parseError('\\uFFFF is not a valid Unicode character')]],
  ['"\\x"\n', [parseError('invalid escape sequence in string')]],
  ['"a\tb" "c"\n', [parseError('stray \'"a\t\'')]],
  ['"a\nb"\n', [parseError('stray \'"a\n\'')]],
  // Bytes that are no UTF-8: QEMU quotes them back as U+FFFD, and a NUL ends its C string.
  ['\xff\n', [parseError("stray '\uFFFD'")]],
  ['\x00\n', [parseError("stray ''")]],
  ['\xc3\xa9\n', [parseError("stray '\uFFFD'")]],
  ['"a\xffb"\n', [parseError('stray \'"a\uFFFD\'')]],
  ['"\xed\xa0\x80"\n', [parseError('invalid UTF-8 sequence in string')]],
  ['"\xef\xbf\xbf"\n', [parseError('invalid UTF-8 sequence in string')]],
  ['"\xc3"\n', [parseError('invalid UTF-8 sequence in string')]],
  ['"\xc0\x80"\n', [notObject]],
  // An unfinished value is dropped by the next lexical error.
  ['{"a":[1,2}\n', []],
  ['"abc\xfe\n', [parseError('stray \'"abc\uFFFD\'')]],

  // The request envelope, member by member in QDict order.
  ['{"execute":5,"bar":1}\n', [generic("QMP input member 'bar' is unexpected")]],
  ['{"execute":5,"id":"e2"}\n', ['{"id": "e2", "error": {"class": "GenericError", "desc": "QMP input member \'execute\' must be a string"}}']],
  ['{"execute":"query-named-block-nodes","arguments":[]}\n', [generic("QMP input member 'arguments' must be an object")]],
  ['{"execute":"query-named-block-nodes","arguments":1.5}\n', [generic("QMP input member 'arguments' must be an object")]],
  ['{"exec-oob":"query-named-block-nodes"}\n', [generic("QMP input member 'exec-oob' is unexpected")]],
  ['{"exec-oob":5,"execute":"x"}\n', [generic("QMP input member 'exec-oob' is unexpected")]],
  ['{"id":null}\n', ['{"id": null, "error": {"class": "GenericError", "desc": "QMP input lacks member \'execute\'"}}']],
  ['2.5\n', [notObject]],
  ['{"execute":""}\n', ['{"error": {"class": "CommandNotFound", "desc": "The command  has not been found"}}']],

  // ids of every JSON type come back as QEMU prints them.
  [query('"abc"'), [nodes('"abc"')]],
  [query('42'), [nodes('42')]],
  [query('null'), [nodes('null')]],
  [query('true'), [nodes('true')]],
  [query('false'), [nodes('false')]],
  [query('{"a":[1,2.5,null,true],"b":{}}'), [nodes('{"a": [1, 2.5, null, true], "b": {}}')]],
  [
    query('[18446744073709551615,-9223372036854775808,18446744073709551616,-9223372036854775809,9223372036854775808,9007199254740993,1e18,1.0,-0.0,-0,1E400,-1e400,1e-400,5e-324,0.1,123456789012345678901234567890,1.7976931348623157e308]'),
    [nodes('[18446744073709551615, -9223372036854775808, 1.8446744073709552e+19, -9.2233720368547758e+18, 9223372036854775808, 9007199254740993, 1e+18, 1, -0, 0, inf, -inf, 0, 4.9406564584124654e-324, 0.10000000000000001, 1.2345678901234568e+29, 1.7976931348623157e+308]')],
  ],
  [query('"\xf0\x9f\x98\x80\x7f\xc2\x80\\u00e9\\t\\b\\f\\r\\n\\\\\\"\\/<>&\\u0000\'"'), [nodes(String.raw`"\uD83D\uDE00\u007F\u0080\u00E9\t\b\f\r\n\\\"/<>&\u0000'"`)]],

  // Numbers reach QAPI exactly: integers to 2^64, floats refused where an integer is due.
  ['{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0","size":1.0}}\n', [generic("Invalid parameter type for 'size', expected: integer")]],
  ['{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0","size":9223372036854775808}}\n', [generic("Invalid parameter type for 'size', expected: integer")]],
  ['{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0","size":4194304}}\n', ['{"return": {}}']],
  [bitmapAdd('"granularity":65536.0'), [generic("Parameter 'granularity' expects uint64")]],
  [bitmapAdd('"granularity":1e3'), [generic("Parameter 'granularity' expects uint64")]],
  [bitmapAdd('"granularity":18446744073709551615'), [generic("Parameter 'granularity' expects uint32_t")]],
  [bitmapAdd('"granularity":18446744073709551616'), [generic("Parameter 'granularity' expects uint64")]],
  [bitmapAdd('"granularity":-9223372036854775808'), [generic("Parameter 'granularity' expects uint32_t")]],
  [bitmapAdd('"granularity":-9223372036854775809'), [generic("Parameter 'granularity' expects uint64")]],
  [bitmapAdd('"granularity":4294967295'), [generic('Granularity must be power of 2 and at least 512')]],
  [bitmapAdd('"granularity":-0'), [generic('Granularity must be power of 2 and at least 512')]],
  ['{"execute":"block-job-set-speed","arguments":{"device":"j","speed":1.5}}\n', [generic("Invalid parameter type for 'speed', expected: integer")]],
  ['{"execute":"block-job-set-speed","arguments":{"device":"j","speed":9223372036854775807}}\n', ['{"error": {"class": "DeviceNotActive", "desc": "Block job \'j\' not found"}}']],

  // Unicode in names, raw and escaped, comes back escaped.
  [
    '{"execute":"block-dirty-bitmap-add","arguments":{"node":"n0","name":"\xc3\xa9\\ud83d\\ude00\\u0000\'\\"\x7f","granularity":512}}\n',
    ['{"return": {}}'],
  ],
  [
    '{"execute":"x-debug-block-dirty-bitmap-sha256","arguments":{"node":"n0","name":"\\u00e9\xf0\x9f\x98\x80\\u0000\'\\"\\u007f"},"id":"sha"}\n',
    ['{"return": {"sha256": "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"}, "id": "sha"}'],
  ],
  [
    query('"end"'),
    [
      '{"return": [{"iops_rd": 0, "detect_zeroes": "off", "image": {"virtual-size": 4194304, "filename": "json:{\\"driver\\": \\"null-co\\", \\"size\\": 4194304}", "format": "null-co", "actual-size": 0}, "iops_wr": 0, "ro": false, "node-name": "n0", "backing_file_depth": 0, "drv": "null-co", "iops": 0, "bps_wr": 0, "write_threshold": 0, "dirty-bitmaps": [{"name": "\\u00E9\\uD83D\\uDE00\\u0000\'\\"\\u007F", "recording": true, "persistent": false, "busy": false, "granularity": 512, "count": 0}], "encrypted": false, "bps": 0, "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "json:{\\"driver\\": \\"null-co\\", \\"size\\": 4194304}"}], "id": "end"}',
    ],
  ],
];

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "P"}, "capabilities": ["oob"]}}';

/** Runs the script on one server: what was sent with what came back, normalised. */
async function converse(kind: ServerKind): Promise<string[]> {
  const server = await startServer(kind);
  try {
    const client = await RawClient.connect(server.socketPath);
    const transcript = [`greeting: ${normalise((await client.take(1))[0])}`];
    for (const [send, expect] of SCRIPT) {
      client.send(send);
      for (const line of await client.take(expect.length)) transcript.push(`${JSON.stringify(send)} -> ${normalise(line)}`);
    }
    client.send('{"execute":"quit"}\n');
    transcript.push(...(await client.take(2)).map(normalise));
    await client.waitClosed();
    transcript.push(`exit code ${await server.exited}`);
    return transcript;
  } finally {
    await server.stop();
  }
}

const EXPECTED = [
  `greeting: ${GREETING}`,
  ...SCRIPT.flatMap(([send, expect]) => expect.map((line) => `${JSON.stringify(send)} -> ${line}`)),
  '{"timestamp": {"seconds": S, "microseconds": U}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
  '{"return": {}}',
  'exit code 0',
];

describe('the QMP wire, byte for byte, as QEMU 7.2 measured', () => {
  test('bitmap-lab qmp --socket', async () => {
    assertSameLines(await converse('ours'), EXPECTED);
  });

  test('QEMU 7.2 itself gives these very lines', { skip: skipQemu }, async () => {
    assertSameLines(await converse('qemu'), EXPECTED);
  });
});
