import * as assert from 'node:assert/strict';
import { setup, suite, test } from 'mocha';
import * as vscode from 'vscode';

type QmpReply = { return: unknown } | { error: { class: string; desc: string } };

function qmp(execute: string, args?: Record<string, unknown>): Thenable<QmpReply> {
  return vscode.commands.executeCommand<QmpReply>('bitmapLab.runQmpCommand', {
    execute,
    ...(args && { arguments: args }),
  });
}

const addNode = () => qmp('blockdev-add', { driver: 'null-co', 'node-name': 'n0', size: 64 * 1024 * 1024 });
const addBitmap = () => qmp('block-dirty-bitmap-add', { node: 'n0', name: 'b0' });

suite('QMP playground', () => {
  setup(() => vscode.commands.executeCommand('bitmapLab.resetPlayground'));

  test('query-version answers as QEMU 7.2', async () => {
    const reply = await qmp('query-version');
    assert.ok('return' in reply, JSON.stringify(reply));
    const version = reply.return as { qemu: { major: number; minor: number; micro: number }; package: string };
    assert.equal(version.qemu.major, 7);
    assert.equal(version.qemu.minor, 2);
    assert.equal(typeof version.qemu.micro, 'number');
    assert.equal(typeof version.package, 'string');
  });

  test('adds a dirty bitmap to a new node', async () => {
    assert.deepEqual(await addNode(), { return: {} });
    assert.deepEqual(await addBitmap(), { return: {} });
  });

  test('refuses a second bitmap of the same name as QEMU does', async () => {
    await addNode();
    await addBitmap();
    assert.deepEqual(await addBitmap(), { error: { class: 'GenericError', desc: 'Bitmap already exists: b0' } });
  });

  test('reset empties the playground', async () => {
    await addNode();
    await addBitmap();
    await vscode.commands.executeCommand('bitmapLab.resetPlayground');
    assert.deepEqual(await addNode(), { return: {} });
    assert.deepEqual(await addBitmap(), { return: {} });
  });
});
