import * as assert from 'node:assert/strict';
import { suite, test } from 'mocha';
import * as vscode from 'vscode';

const EXTENSION_ID = 'bitmap-lab.bitmap-lab';
const COMMANDS = [
  'bitmapLab.runQmpCommand', 'bitmapLab.resetPlayground', 'bitmapLab.showPlayground',
  'bitmapLab.openScenario', 'bitmapLab.rerunScenario', 'bitmapLab.newScenario', 'bitmapLab.stepForward', 'bitmapLab.stepBack',
  'bitmapLab.firstFrame', 'bitmapLab.lastFrame', 'bitmapLab.togglePlay', 'bitmapLab.nextFailure', 'bitmapLab.nextCleanup',
  'bitmapLab.nextWrite', 'bitmapLab.nextEvent', 'bitmapLab.previousEvent', 'bitmapLab.debugScenario',
];

suite('Bitmap Lab extension', () => {
  test('is present and activates', async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is not loaded`);
    await extension.activate();
    assert.equal(extension.isActive, true);
  });

  test('registers every command it contributes', async () => {
    const contributed: { command: string }[] =
      vscode.extensions.getExtension(EXTENSION_ID)?.packageJSON.contributes.commands ?? [];
    assert.deepEqual(contributed.map((c) => c.command).sort(), [...COMMANDS].sort());
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const command of COMMANDS) assert.ok(registered.has(command), `${command} is not registered`);
  });
});
