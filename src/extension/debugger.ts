/**
 * The scenario debugger in VS Code: a `bitmaplab` debug type whose adapter
 * runs inline (src/debug/session.ts), on the same scenario session as the
 * panel and the tree, so both follow every stop.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ScenarioDebugSession, type DebugHost } from '../debug/session';
import type { Scenarios } from './scenarios';

export const DEBUG_TYPE = 'bitmaplab';
const SCENARIO = /\.bitmaplab\.json$/;

/** The recordings debug sessions travel; a new run of the same file is not one of them. */
const debugged = new WeakSet<object>();

function host(scenarios: Scenarios): DebugHost {
  return {
    async load(file) {
      if (!SCENARIO.test(file)) throw new Error('only *.bitmaplab.json scenario files can be debugged');
      const session = await scenarios.open(vscode.Uri.file(file));
      if (!session) throw new Error('it has problems; see the Problems view');
      debugged.add(session.run);
      const text = (await vscode.workspace.openTextDocument(session.uri)).getText();
      return { file, text, scenario: session.scenario, run: session.run };
    },
    read: (file) => vscode.workspace.textDocuments.find((document) => document.uri.fsPath === file)?.getText() ?? fs.readFileSync(file, 'utf8'),
    show(target, frame) {
      if (scenarios.current?.uri.fsPath === target.file && scenarios.current.run === target.run) scenarios.current.seek(frame);
    },
  };
}

/** F5 on a scenario file with no launch.json debugs that file; a relative `scenario` is in the workspace folder. */
const configurations: vscode.DebugConfigurationProvider = {
  resolveDebugConfiguration(folder, config) {
    if (typeof config.scenario === 'string' && folder && !path.isAbsolute(config.scenario)) config.scenario = path.join(folder.uri.fsPath, config.scenario);
    if (config.type || config.request || config.name) return config;
    const file = vscode.window.activeTextEditor?.document.uri;
    if (!file || !SCENARIO.test(file.path)) return config;
    return { type: DEBUG_TYPE, request: 'launch', name: 'Debug scenario', scenario: file.fsPath, stopOnEntry: true };
  },
};

/** The file ran again (it was saved): a debug session on it still travels the old run. */
function warnWhenRerun(scenarios: Scenarios): vscode.Disposable {
  return scenarios.onDidChangeSession((session) => {
    const debug = vscode.debug.activeDebugSession;
    if (!session || debugged.has(session.run) || debug?.type !== DEBUG_TYPE || debug.configuration.scenario !== session.uri.fsPath) return;
    vscode.debug.activeDebugConsole.appendLine('The scenario ran again after a change; this debug session still steps through the run it started with. Restart it to debug the new run.');
  });
}

export function registerDebugger(scenarios: Scenarios): vscode.Disposable[] {
  return [
    warnWhenRerun(scenarios),
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, {
      createDebugAdapterDescriptor: () => new vscode.DebugAdapterInlineImplementation(new ScenarioDebugSession(host(scenarios))),
    }),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, configurations),
    vscode.commands.registerCommand('bitmapLab.debugScenario', (uri?: vscode.Uri) => {
      const file = uri ?? vscode.window.activeTextEditor?.document.uri;
      if (!file || !SCENARIO.test(file.path)) {
        void vscode.window.showErrorMessage('Bitmap Lab: open a *.bitmaplab.json scenario file first.');
        return false;
      }
      return vscode.debug.startDebugging(vscode.workspace.getWorkspaceFolder(file), {
        type: DEBUG_TYPE,
        request: 'launch',
        name: `Debug ${file.path.split('/').pop()}`,
        scenario: file.fsPath,
        stopOnEntry: true,
      });
    }),
  ];
}
