/**
 * Scenario files in VS Code: open one (run it, show its timeline), step
 * through it with commands, see its problems as diagnostics, re-run it when
 * the file changes, and start new ones from the example library.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ScenarioSyntaxError } from '../engine/scenario/parse';
import { FrameTree } from './frame-tree';
import { runDiagnostics, syntaxDiagnostics } from './scenario-diagnostics';
import { ScenarioSession, type Landmark } from './scenario-session';

const SCENARIO = /\.bitmaplab\.json$/;

export class Scenarios implements vscode.Disposable, vscode.CodeLensProvider {
  private session: ScenarioSession | undefined;
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('bitmap-lab');
  private readonly status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
  readonly tree = new FrameTree();
  private player: ReturnType<typeof setInterval> | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly sessionChanged = new vscode.EventEmitter<ScenarioSession | undefined>();
  /** The panel follows the session. */
  readonly onDidChangeSession = this.sessionChanged.event;

  constructor(private readonly extensionUri: vscode.Uri) {
    this.status.command = 'bitmapLab.stepForward';
    this.disposables.push(
      vscode.workspace.onDidSaveTextDocument((document) => {
        if (this.session && document.uri.toString() === this.session.uri.toString()) void this.open(document.uri);
      }),
    );
  }

  get current(): ScenarioSession | undefined {
    return this.session;
  }

  /** Runs the file and makes it the session; problems become diagnostics. */
  async open(uri?: vscode.Uri): Promise<ScenarioSession | undefined> {
    uri ??= vscode.window.activeTextEditor?.document.uri;
    if (!uri || !SCENARIO.test(uri.path)) {
      void vscode.window.showErrorMessage('Bitmap Lab: open a *.bitmaplab.json scenario file first.');
      return undefined;
    }
    const document = await vscode.workspace.openTextDocument(uri);
    let session: ScenarioSession;
    try {
      session = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Bitmap Lab: running ${path.basename(uri.fsPath)}` },
        async () => ScenarioSession.open(uri, document.getText()),
      );
    } catch (error) {
      if (!(error instanceof ScenarioSyntaxError)) throw error;
      this.diagnostics.set(uri, syntaxDiagnostics(error.errors));
      void vscode.window.showErrorMessage(`Bitmap Lab: ${path.basename(uri.fsPath)} has ${error.errors.length} problem(s); see the Problems view.`);
      return undefined;
    }
    this.diagnostics.set(uri, runDiagnostics(document, session.run));
    if (this.session?.uri.toString() === uri.toString()) session.keepFrameOf(this.session);
    this.session?.dispose();
    this.session = session;
    session.onDidChange(() => this.update());
    this.tree.show(session);
    void vscode.commands.executeCommand('setContext', 'bitmapLab.sessionActive', true);
    this.update();
    this.sessionChanged.fire(session);
    return session;
  }

  step(delta: number): void {
    this.session?.seek(this.session.frame + delta);
  }

  seek(index: number): void {
    this.session?.seek(index);
  }

  jump(kind: Landmark, direction: 1 | -1 = 1): void {
    if (this.session && !this.session.jump(kind, direction)) void vscode.window.setStatusBarMessage(`Bitmap Lab: no ${kind} ${direction > 0 ? 'after' : 'before'} this frame`, 2000);
  }

  togglePlay(): void {
    if (this.player) {
      clearInterval(this.player);
      this.player = undefined;
      return;
    }
    const fps = vscode.workspace.getConfiguration('bitmapLab').get<number>('playSpeed', 8);
    this.player = setInterval(() => {
      const session = this.session;
      if (!session || session.frame >= session.length - 1) this.togglePlay();
      else session.seek(session.frame + 1);
    }, 1000 / Math.max(1, fps));
  }

  /** A new untitled scenario from one of the shipped examples. */
  async newScenario(): Promise<void> {
    const dir = vscode.Uri.joinPath(this.extensionUri, 'examples').fsPath;
    const picks = fs
      .readdirSync(dir)
      .filter((file) => SCENARIO.test(file))
      .map((file) => ({ label: JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')).title as string, description: file, file }));
    const pick = await vscode.window.showQuickPick(picks, { title: 'New scenario from an example' });
    if (!pick) return;
    const document = await vscode.workspace.openTextDocument({ language: 'json', content: fs.readFileSync(path.join(dir, pick.file), 'utf8') });
    await vscode.window.showTextDocument(document);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    if (!SCENARIO.test(document.uri.path)) return [];
    const top = new vscode.Range(0, 0, 0, 0);
    return [new vscode.CodeLens(top, { title: '▶ Open in Bitmap Lab', command: 'bitmapLab.openScenario', arguments: [document.uri] })];
  }

  private update(): void {
    const session = this.session;
    if (!session) {
      this.status.hide();
      return;
    }
    const frame = session.state().frame;
    // As the panel counts them: frame index / last index.
    this.status.text = `$(debug-step-over) Bitmap Lab frame ${session.frame} / ${session.length - 1}`;
    this.status.tooltip = `${frame.cause.kind}: ${frame.cause.label}${frame.narration ? `\n\n${frame.narration}` : ''}`;
    this.status.show();
  }

  dispose(): void {
    if (this.player) clearInterval(this.player);
    this.session?.dispose();
    this.sessionChanged.dispose();
    for (const disposable of [this.diagnostics, this.status, this.tree, ...this.disposables]) disposable.dispose();
  }
}
