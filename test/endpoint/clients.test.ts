/**
 * The endpoint as clients meet it, on our server and on QEMU 7.2 with the
 * same steps: one client at a time (later ones connect and wait, then get
 * their own greeting and negotiation), OOB negotiation, a shared engine
 * across clients, SIGTERM, quit, and QMP on stdio with qemu-io's output in
 * the same stream.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { RawClient, assertSameLines, normalise, runStdio, startServer, type ServerKind } from './wire';

const skipQemu = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');
const kinds: Array<[ServerKind, string | false]> = [['ours', false], ['qemu', skipQemu]];

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "P"}, "capabilities": ["oob"]}}';
const negotiate = '{"execute":"qmp_capabilities"}\n';
const addNode = '{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0","size":1048576}}\n';
const nodeNames = '{"execute":"query-named-block-nodes","id":"names"}\n';

/** Reads a query-named-block-nodes reply down to its node names, so the line stays short. */
const names = (line: string) => `names: ${(JSON.parse(line).return as Array<{ 'node-name': string }>).map((node) => node['node-name']).join(',')}`;

async function clientsInTurn(kind: ServerKind): Promise<string[]> {
  const server = await startServer(kind);
  const log: string[] = [];
  const record = (who: string, lines: string[]) => log.push(...lines.map((line) => `${who}: ${normalise(line)}`));
  try {
    const a = await RawClient.connect(server.socketPath);
    record('A', await a.take(1));
    a.send(negotiate + addNode);
    record('A', await a.take(2));
    // B connects while A is served: its request waits, unread, and it is not greeted.
    const b = await RawClient.connect(server.socketPath);
    b.send(nodeNames);
    const c = await RawClient.connect(server.socketPath);
    a.send(nodeNames);
    log.push(`A: ${names((await a.take(1))[0])}`);
    record('B before its turn', await b.takeQuiet());
    a.close();
    // B's turn: its greeting, then its early request, refused until it negotiates (with OOB).
    record('B', await b.take(2));
    b.send('{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}\n');
    record('B', await b.take(1));
    b.send(nodeNames);
    log.push(`B: ${names((await b.take(1))[0])}`);
    for (const request of [
      '{"exec-oob":"query-named-block-nodes","id":1}',
      '{"exec-oob":"qmp_capabilities"}',
      '{"exec-oob":"nope"}',
      '{"exec-oob":5}',
      '{"execute":"query-named-block-nodes","exec-oob":"query-named-block-nodes"}',
      '{"exec-oob":"query-named-block-nodes","arguments":5}',
    ]) {
      b.send(`${request}\n`);
      record(`B ${request}`, await b.take(1));
    }
    // C gave up while waiting; D, who came after it, is next once B leaves.
    c.close();
    const d = await RawClient.connect(server.socketPath);
    record('D before its turn', await d.takeQuiet());
    b.close();
    record('D', await d.take(1));
    d.send(negotiate + '{"execute":"quit"}\n');
    record('D', await d.take(3));
    await d.waitClosed();
    log.push(`exit code ${await server.exited}, socket file left: ${fs.existsSync(server.socketPath)}`);
    return log;
  } finally {
    await server.stop();
  }
}

const IN_TURN = [
  `A: ${GREETING}`,
  'A: {"return": {}}',
  'A: {"return": {}}',
  'A: names: n0',
  `B: ${GREETING}`,
  'B: {"id": "names", "error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with \'qmp_capabilities\'"}}',
  'B: {"return": {}}',
  'B: names: n0',
  'B {"exec-oob":"query-named-block-nodes","id":1}: {"id": 1, "error": {"class": "GenericError", "desc": "The command query-named-block-nodes does not support OOB"}}',
  'B {"exec-oob":"qmp_capabilities"}: {"error": {"class": "GenericError", "desc": "The command qmp_capabilities does not support OOB"}}',
  'B {"exec-oob":"nope"}: {"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}',
  'B {"exec-oob":5}: {"error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' must be a string"}}',
  'B {"execute":"query-named-block-nodes","exec-oob":"query-named-block-nodes"}: {"error": {"class": "GenericError", "desc": "QMP input member \'execute\' clashes with \'exec-oob\'"}}',
  'B {"exec-oob":"query-named-block-nodes","arguments":5}: {"error": {"class": "GenericError", "desc": "QMP input member \'arguments\' must be an object"}}',
  `D: ${GREETING}`,
  'D: {"return": {}}',
  'D: {"timestamp": {"seconds": S, "microseconds": U}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
  'D: {"return": {}}',
  'exit code 0, socket file left: false',
];

async function terminated(kind: ServerKind): Promise<string[]> {
  const server = await startServer(kind);
  try {
    const client = await RawClient.connect(server.socketPath);
    await client.take(1);
    client.send(negotiate);
    await client.take(1);
    server.child.kill('SIGTERM');
    const lines = (await client.take(1)).map(normalise);
    await client.waitClosed();
    return [...lines, `exit code ${await server.exited}, socket file left: ${fs.existsSync(server.socketPath)}`];
  } finally {
    await server.stop();
  }
}

describe('clients of the endpoint, as QEMU 7.2 treats them', () => {
  for (const [kind, skip] of kinds) {
    test(`${kind}: one client at a time; the next is greeted when the last leaves, and negotiates afresh (OOB too)`, { skip }, async () => {
      assertSameLines(await clientsInTurn(kind), IN_TURN);
    });

    test(`${kind}: SIGTERM announces the shutdown, closes the connection and exits 0`, { skip }, async () => {
      assertSameLines(await terminated(kind), [
        '{"timestamp": {"seconds": S, "microseconds": U}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}',
        'exit code 0, socket file left: false',
      ]);
    });
  }

  test('query-commands lists ours in the order QEMU lists its own', { skip: skipQemu }, async () => {
    const listed = async (kind: ServerKind) => {
      const server = await startServer(kind);
      try {
        const client = await RawClient.connect(server.socketPath);
        client.send(`${negotiate}{"execute":"query-commands"}\n`);
        const [, , reply] = await client.take(3);
        return (JSON.parse(reply).return as Array<{ name: string }>).map((command) => command.name);
      } finally {
        await server.stop();
      }
    };
    const [ours, qemus] = [await listed('ours'), await listed('qemu')];
    assert.ok(ours.includes('query-commands') && ours.includes('blockdev-backup'));
    assert.deepEqual(ours, qemus.filter((name) => ours.includes(name)));
  });
});

describe('QMP on stdio', () => {
  const input = [
    '{"execute":"qmp_capabilities"}',
    '{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"n0"}}',
    // qemu-io prints on the process's stdout: with -qmp stdio that is the QMP stream itself.
    '{"execute":"human-monitor-command","arguments":{"command-line":"qemu-io n0 \\"write 0 64k\\""}}',
    '{"execute":"x-debug-block-dirty-bitmap-sha256","arguments":{"node":"n0","name":"x"}}{"a": @}',
    '{"execute":"quit"}',
    '{"execute":"query-named-block-nodes"}',
  ].join('\n');
  /** qemu-io's second line times the request. */
  const normaliseOutput = (stdout: string) =>
    normalise(stdout).replace(/\d\d\.\d\d sec \([^)]*\)/, 'T sec (R)');
  const EXPECTED = [
    `${GREETING}\r\n`,
    '{"return": {}}\r\n',
    '{"return": {}}\r\n',
    'wrote 65536/65536 bytes at offset 0\n64 KiB, 1 ops; T sec (R)\n',
    '{"return": ""}\r\n',
    '{"error": {"class": "GenericError", "desc": "Dirty bitmap \'x\' not found"}}\r\n',
    '{"error": {"class": "GenericError", "desc": "JSON parse error, stray \'@\'"}}\r\n',
    '{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}\r\n',
    '{"timestamp": {"seconds": S, "microseconds": U}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}\r\n',
    '{"return": {}}\r\n',
  ].join('');

  for (const [kind, skip] of kinds) {
    test(`${kind}: the same bytes out, and nothing read after quit`, { skip }, async () => {
      const { stdout, code } = await runStdio(kind, `${input}\n`);
      assert.equal(normaliseOutput(stdout), EXPECTED);
      assert.equal(code, 0);
    });
  }

  test('ours: the end of input ends the server, images closed, exit 0', async () => {
    const { stdout, code } = await runStdio('ours', '{"execute":"qmp_capabilities"}\n');
    assert.equal(normaliseOutput(stdout), `${GREETING}\r\n{"return": {}}\r\n`);
    assert.equal(code, 0);
  });
});
