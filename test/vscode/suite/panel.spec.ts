import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BitmapLabApi } from '../../../src/extension/extension';

const EXTENSION = vscode.extensions.getExtension<BitmapLabApi>('bitmap-lab.bitmap-lab')!;
const example = (name: string) => vscode.Uri.file(path.join(EXTENSION.extensionPath, 'examples', `${name}.bitmaplab.json`));

/** Resolves once `check` holds, checking every 20 ms; fails after `ms`. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    if (waited >= ms) assert.fail(`waited ${ms} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

suite('The Bitmap Lab panel', () => {
  test('draws the frame each command moves to, and reports it back', async () => {
    const api = await EXTENSION.activate();
    const drawn: number[] = [];
    const listening = api.onDidShowFrame(({ run, index }) => run === 0 && drawn.push(index));
    try {
      const opened = (await vscode.commands.executeCommand('bitmapLab.openScenario', example('always-failure'))) as { frames: number };
      await until(() => drawn.length > 0, 'the panel to draw its first frame');
      for (const command of ['bitmapLab.stepForward', 'bitmapLab.stepForward', 'bitmapLab.stepBack', 'bitmapLab.nextFailure', 'bitmapLab.nextCleanup', 'bitmapLab.lastFrame']) {
        const frame = (await vscode.commands.executeCommand(command)) as number;
        await until(() => drawn.at(-1) === frame, `frame ${frame} after ${command} (drawn: ${drawn.slice(-3).join(', ')})`);
      }
      assert.equal(drawn.at(-1), opened.frames - 1);
    } finally {
      listening.dispose();
      // The next suites open their own panel and read its title.
      const panels = vscode.window.tabGroups.all.flatMap((group) => group.tabs).filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('bitmapLab.player'));
      await vscode.window.tabGroups.close(panels);
    }
  });
});
