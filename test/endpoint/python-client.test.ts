/**
 * A third-party client, a plain Python script (qmp_client.py), drives QEMU
 * 7.2 and our endpoint and must print the very same answers.
 */
import { describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as childProcess from 'node:child_process';
import * as path from 'node:path';
import { QemuProcess } from '../support/qemu';
import { skipWithout } from '../support/tools';
import { startServer, type ServerKind } from './wire';

const SCRIPT = path.resolve(__dirname, '../../../test/endpoint/qmp_client.py');
const hasPython = childProcess.spawnSync('python3', ['--version']).status === 0;
const skipPython = skipWithout(hasPython, 'python3');
const skipQemu = skipWithout(QemuProcess.binary() !== undefined, 'QEMU (qemu-system-x86_64)');

async function clientOutput(kind: ServerKind): Promise<string> {
  const server = await startServer(kind);
  try {
    const python = childProcess.spawn('python3', [SCRIPT, server.socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    python.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    python.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const code = await new Promise((resolve) => python.once('exit', resolve));
    assert.equal(code, 0, `qmp_client.py against ${kind} failed: ${err}`);
    assert.equal(await server.exited, 0, `${kind} did not exit 0 after quit`);
    return out;
  } finally {
    await server.stop();
  }
}

describe('a Python QMP client', () => {
  test('gets the same answers from our endpoint as from QEMU 7.2', { skip: skipPython || skipQemu }, async () => {
    const [ours, qemu] = [await clientOutput('ours'), await clientOutput('qemu')];
    assert.ok(qemu.includes('sha256 b3') && qemu.includes('"SHUTDOWN"'), `the script ran to its end on QEMU:\n${qemu}`);
    assert.equal(ours, qemu);
  });
});
