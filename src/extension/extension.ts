/**
 * VS Code glue: scenario files run and stepped through (tree view, status
 * bar, diagnostics), and a QMP playground on an in-memory engine, so people
 * can try QEMU's bitmap commands from the command palette and watch the
 * bitmaps in a panel.
 */
import * as vscode from 'vscode';
import { Engine } from '../engine/engine';
import { QmpMonitor, type QmpResponse } from '../engine/qmp/monitor';
import { toQemuJson } from '../engine/qobject';
import { PLAYGROUND_VIEW_TYPE, PlaygroundPanel } from './playground-panel';
import { playgroundSnapshot } from './playground-snapshot';
import { registerDebugger } from './debugger';
import { IMAGE_VIEW_TYPE, ImageEditor } from './image-editor';
import { PLAYER_VIEW_TYPE, PlayerPanel } from './player-panel';
import type { ScenarioSession } from './scenario-session';
import { Scenarios } from './scenarios';

const newPlayground = () => new QmpMonitor(new Engine(), { negotiated: true });

/** What activate() gives other extensions and the tests: each frame the Bitmap Lab panel reports it has drawn. */
export interface BitmapLabApi {
  onDidShowFrame: vscode.Event<{ run: number; index: number }>;
}

export function activate(context: vscode.ExtensionContext): BitmapLabApi {
  let playground = newPlayground();
  const output = vscode.window.createOutputChannel('Bitmap Lab QMP');
  const panel = new PlaygroundPanel(
    context.extensionUri,
    () => playgroundSnapshot(playground.engine),
    (line) => output.appendLine(line),
  );

  const run = (request: unknown): QmpResponse => {
    // In Restricted Mode the playground opens no file: it could write to one.
    if (!vscode.workspace.isTrusted && JSON.stringify(request).includes('"filename"')) {
      return { error: { class: 'GenericError', desc: 'Bitmap Lab: opening files is disabled in Restricted Mode' } };
    }
    const reply = playground.execute(request);
    output.appendLine(`-> ${toQemuJson(request)}`);
    output.appendLine(`<- ${toQemuJson(reply)}`);
    panel.refresh();
    return reply;
  };

  const scenarios = new Scenarios(context.extensionUri);
  const player = new PlayerPanel(context.extensionUri, (uri) => scenarios.open(uri), (line) => output.appendLine(line));
  scenarios.onDidChangeSession((session) => session && player.show(session));
  const scenarioCommands: Array<[string, (...args: never[]) => unknown]> = [
    ['bitmapLab.openScenario', async (uri?: vscode.Uri) => summary(await scenarios.open(uri))],
    ['bitmapLab.rerunScenario', async () => summary(await scenarios.open(scenarios.current?.uri))],
    ['bitmapLab.newScenario', () => scenarios.newScenario()],
    ['bitmapLab.stepForward', () => frameAfter(() => scenarios.step(1))],
    ['bitmapLab.stepBack', () => frameAfter(() => scenarios.step(-1))],
    ['bitmapLab.firstFrame', () => frameAfter(() => scenarios.seek(0))],
    ['bitmapLab.lastFrame', () => frameAfter(() => scenarios.seek(Number.MAX_SAFE_INTEGER))],
    ['bitmapLab.togglePlay', () => scenarios.togglePlay()],
    ['bitmapLab.nextFailure', () => frameAfter(() => scenarios.jump('failure'))],
    ['bitmapLab.nextCleanup', () => frameAfter(() => scenarios.jump('cleanup'))],
    ['bitmapLab.nextWrite', () => frameAfter(() => scenarios.jump('write'))],
    ['bitmapLab.previousEvent', () => frameAfter(() => scenarios.jump('event', -1))],
    ['bitmapLab.nextEvent', () => frameAfter(() => scenarios.jump('event'))],
  ];
  /** Commands answer with plain data, so tests and other extensions can drive them. */
  const frameAfter = (move: () => void) => {
    move();
    return scenarios.current?.frame;
  };
  const summary = (session: ScenarioSession | undefined) =>
    session && { frames: session.length, frame: session.frame, failures: session.run.failures, title: session.scenario.title };

  context.subscriptions.push(
    scenarios,
    vscode.window.registerCustomEditorProvider(IMAGE_VIEW_TYPE, new ImageEditor()),
    vscode.window.registerWebviewPanelSerializer(PLAYER_VIEW_TYPE, player),
    vscode.window.registerTreeDataProvider('bitmapLab.frame', scenarios.tree),
    vscode.languages.registerCodeLensProvider({ pattern: '**/*.bitmaplab.json' }, scenarios),
    ...scenarioCommands.map(([id, handler]) => vscode.commands.registerCommand(id, handler)),
    ...registerDebugger(scenarios),
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
  return { onDidShowFrame: player.onDidShowFrame };
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
