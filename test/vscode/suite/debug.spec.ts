import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION = vscode.extensions.getExtension('bitmap-lab.bitmap-lab')!;
const example = () => vscode.Uri.file(path.join(EXTENSION.extensionPath, 'examples', 'always-failure.bitmaplab.json'));

/**
 * The `stopped` events of bitmaplab sessions, as VS Code's adapter tracker
 * sees them. A tracker attaches when a session starts, so it is made first.
 */
class Stops implements vscode.Disposable {
  private readonly seen: Array<{ reason: string }> = [];
  private wake: (() => void) | undefined;
  private readonly registration = vscode.debug.registerDebugAdapterTrackerFactory('bitmaplab', {
    createDebugAdapterTracker: () => ({
      onDidSendMessage: (message: { type: string; event?: string; body?: { reason: string } }) => {
        if (message.type !== 'event' || message.event !== 'stopped') return;
        this.seen.push(message.body!);
        this.wake?.();
      },
    }),
  });

  /** The next stop after those already taken. */
  async next(): Promise<{ reason: string }> {
    while (!this.seen.length) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.seen.shift()!;
  }

  dispose(): void {
    this.registration.dispose();
  }
}

/** The frame the scenario session (and so the panel) shows, read by stepping back and forth. */
async function frameShown(): Promise<number> {
  await vscode.commands.executeCommand('bitmapLab.stepBack');
  return (await vscode.commands.executeCommand('bitmapLab.stepForward')) as number;
}

suite('Scenario debugger', () => {
  test('F5 on a scenario: stops on entry, at a breakpoint on a step, steps back; the panel follows', async () => {
    const document = await vscode.workspace.openTextDocument(example());
    const line = document.getText().split('\n').findIndex((text) => text.includes('"block-job-set-speed"'));
    const breakpoint = new vscode.SourceBreakpoint(new vscode.Location(example(), new vscode.Position(line, 0)));
    vscode.debug.addBreakpoints([breakpoint]);
    const stops = new Stops();
    try {
      assert.equal(await vscode.commands.executeCommand('bitmapLab.debugScenario', example()), true);
      assert.equal((await stops.next()).reason, 'entry');
      const session = vscode.debug.activeDebugSession!;
      assert.equal(session.type, 'bitmaplab');
      const where = async () => (await session.customRequest('stackTrace', { threadId: 1 })).stackFrames[0] as { name: string; line: number };
      assert.equal((await where()).name, 'steps[0] block-dirty-bitmap-add (next)');

      await session.customRequest('continue', { threadId: 1 });
      assert.equal((await stops.next()).reason, 'breakpoint');
      const stopped = await where();
      assert.equal(stopped.name, 'steps[5] block-job-set-speed (next)');
      const frame = await frameShown();

      await session.customRequest('stepBack', { threadId: 1 });
      assert.equal((await stops.next()).reason, 'step');
      assert.match((await where()).name, new RegExp(`^steps\\[4\\] .* · frame ${frame}: `));
      assert.equal(await frameShown(), frame);

      await session.customRequest('next', { threadId: 1 });
      await session.customRequest('next', { threadId: 1 });
      assert.equal((await stops.next()).reason, 'step');
      assert.equal((await stops.next()).reason, 'step');
      assert.equal((await where()).name, 'steps[6] wait BLOCK_JOB_COMPLETED (next)');
      assert.ok((await frameShown()) > frame);
      await vscode.debug.stopDebugging(session);
    } finally {
      stops.dispose();
      vscode.debug.removeBreakpoints([breakpoint]);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    }
  });

  test('quick moves of the host leave the panel on the last frame, and it stays there', async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    await vscode.commands.executeCommand('bitmapLab.openScenario', example());
    // The new page's first report may come after these; the page marks it as the host's, so it cannot pull the session back.
    await vscode.commands.executeCommand('bitmapLab.firstFrame');
    for (let i = 0; i < 4; i++) await vscode.commands.executeCommand('bitmapLab.stepForward');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(await frameShown(), 4);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await frameShown(), 4);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });
});
