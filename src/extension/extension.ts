/**
 * VS Code glue: a QMP playground on an in-memory engine, so people can try
 * QEMU's bitmap commands from the command palette, read the replies and watch
 * the bitmaps in a panel.
 */
import * as vscode from 'vscode';
import { Engine } from '../engine/engine';
import { QmpMonitor, type QmpResponse } from '../engine/qmp/monitor';
import { toQemuJson } from '../engine/qobject';
import { PLAYGROUND_VIEW_TYPE, PlaygroundPanel } from './playground-panel';
import { playgroundSnapshot } from './playground-snapshot';

const newPlayground = () => new QmpMonitor(new Engine(), { negotiated: true });

export function activate(context: vscode.ExtensionContext): void {
  let playground = newPlayground();
  const output = vscode.window.createOutputChannel('Bitmap Lab QMP');
  const panel = new PlaygroundPanel(
    context.extensionUri,
    () => playgroundSnapshot(playground.engine),
    (line) => output.appendLine(line),
  );

  const run = (request: unknown): QmpResponse => {
    const reply = playground.execute(request);
    output.appendLine(`-> ${toQemuJson(request)}`);
    output.appendLine(`<- ${toQemuJson(reply)}`);
    panel.refresh();
    return reply;
  };

  context.subscriptions.push(
    output,
    vscode.window.registerWebviewPanelSerializer(PLAYGROUND_VIEW_TYPE, panel),
    vscode.commands.registerCommand('bitmapLab.showPlayground', () => panel.show()),
    vscode.commands.registerCommand('bitmapLab.runQmpCommand', async (request?: unknown) => {
      if (request !== undefined) return run(request);
      const text = await vscode.window.showInputBox({
        title: 'QMP command',
        prompt: 'A QMP request, as JSON',
        value: '{"execute": "query-named-block-nodes"}',
        validateInput: (value) => parseError(value),
      });
      if (text === undefined) return undefined;
      output.show(true);
      return run(JSON.parse(text));
    }),
    vscode.commands.registerCommand('bitmapLab.resetPlayground', () => {
      playground = newPlayground();
      output.appendLine('-- playground reset');
      panel.refresh();
    }),
  );
}

function parseError(text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function deactivate(): void {}
