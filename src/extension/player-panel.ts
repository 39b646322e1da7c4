/**
 * The Bitmap Lab panel: the d3 timeline player over the open scenario's
 * recording. The panel and the session follow each other: a frame the user
 * reaches in the panel moves the tree and the status bar, and commands move
 * the panel. Restored after a reload by running the scenario again.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import { packRuns } from '../../webview/player/runs-format';
import { parsePlayerFrame, PROTOCOL_VERSION, type PlayerSeekMessage } from '../protocol';
import type { ScenarioSession } from './scenario-session';

export const PLAYER_VIEW_TYPE = 'bitmapLab.player';

/** JSON inside a <script> element must not close it. */
const scriptSafe = (json: string) => json.replace(/</g, '\\u003c');

export class PlayerPanel implements vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;
  private session: ScenarioSession | undefined;
  private following: vscode.Disposable | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    /** Reopens a scenario after a reload. */
    private readonly reopen: (uri: vscode.Uri) => Promise<ScenarioSession | undefined>,
    private readonly log: (line: string) => void,
  ) {}

  /** Shows `session` in the panel (creating it beside the editor if needed). */
  show(session: ScenarioSession): void {
    if (!this.panel) {
      const retain = vscode.workspace.getConfiguration('bitmapLab').get<boolean>('retainContextWhenHidden', false);
      this.attach(
        vscode.window.createWebviewPanel(PLAYER_VIEW_TYPE, 'Bitmap Lab', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
          enableScripts: true,
          retainContextWhenHidden: retain,
          localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')],
        }),
      );
    }
    this.follow(session);
    this.panel!.reveal(undefined, true);
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    this.attach(panel);
    // The page keeps {scenario, frame} with setState (webview/player/main.ts).
    const saved = state as { scenario?: unknown; frame?: unknown } | undefined;
    const session = typeof saved?.scenario === 'string' ? await this.reopen(vscode.Uri.parse(saved.scenario)) : undefined;
    if (!session) {
      panel.dispose();
      return;
    }
    session.seek(typeof saved?.frame === 'number' ? saved.frame : 0);
    this.follow(session);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')] };
    panel.webview.onDidReceiveMessage((data: unknown) => {
      const parsed = parsePlayerFrame(data);
      if ('error' in parsed) this.log(`Bitmap Lab panel: ignored a message: ${parsed.error}`);
      else if (parsed.message.run === 0) this.session?.seek(parsed.message.index);
    });
    panel.onDidDispose(() => {
      this.following?.dispose();
      this.panel = undefined;
    });
  }

  private follow(session: ScenarioSession): void {
    this.following?.dispose();
    this.session = session;
    this.panel!.title = `Bitmap Lab: ${session.scenario.title}`;
    this.panel!.webview.html = this.html(session);
    this.following = session.onDidChange(() => this.seek(session.frame));
  }

  private seek(index: number): void {
    const message: PlayerSeekMessage = { type: 'seek', version: PROTOCOL_VERSION, run: 0, index };
    void this.panel?.webview.postMessage(message);
  }

  private html(session: ScenarioSession): string {
    const webview = this.panel!.webview;
    const nonce = crypto.randomBytes(16).toString('base64');
    const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', file));
    const attribute = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const { title, description } = session.scenario;
    const runs = packRuns([{ title, ...(description !== undefined && { description }), frames: session.run.frames }]);
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}; img-src ${webview.cspSource} data:; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${asset('player.css')}">
<title>Bitmap Lab</title></head>
<body class="${vscode.workspace.getConfiguration('bitmapLab').get<boolean>('reducedMotion', false) ? 'reduced-motion' : ''}">
<div id="player" data-title="${attribute(title)}" data-scenario="${attribute(session.uri.toString())}" data-frame="${session.frame}"></div>
<script type="application/json" id="bitmap-lab-runs">${scriptSafe(JSON.stringify(runs))}</script>
<script nonce="${nonce}" src="${asset('player.js')}"></script>
</body></html>`;
  }
}
