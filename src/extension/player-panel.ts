/**
 * The Bitmap Lab panel: the d3 timeline player over the open scenario's
 * recording. The panel and the session follow each other: a frame the user
 * reaches in the panel moves the tree and the status bar, and commands move
 * the panel. Restored after a reload by running the scenario again. Lane
 * colours follow the settings live.
 */
import * as vscode from 'vscode';
import { parsePlayerFrame, PROTOCOL_VERSION, type PlayerColoursMessage, type PlayerSeekMessage } from '../protocol';
import { LANE_COLOURS_SECTION, readLaneColours } from './lane-colours';
import { playerHtml } from './player-html';
import { newNonce } from './playground-html';
import type { ScenarioSession } from './scenario-session';

export const PLAYER_VIEW_TYPE = 'bitmapLab.player';

export class PlayerPanel implements vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;
  private session: ScenarioSession | undefined;
  private following: vscode.Disposable | undefined;
  private readonly shown = new vscode.EventEmitter<{ run: number; index: number }>();
  /** Fires when the page reports a frame drawn, whether the user or the host moved it. */
  readonly onDidShowFrame = this.shown.event;

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
    const saved = state as { scenario?: unknown; frame?: unknown; pin?: unknown } | undefined;
    const session = typeof saved?.scenario === 'string' ? await this.reopen(vscode.Uri.parse(saved.scenario)) : undefined;
    if (!session) {
      panel.dispose();
      return;
    }
    session.seek(typeof saved?.frame === 'number' ? saved.frame : 0);
    this.follow(session, Number.isSafeInteger(saved?.pin) ? (saved!.pin as number) : undefined);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')] };
    panel.webview.onDidReceiveMessage((data: unknown) => {
      const parsed = parsePlayerFrame(data);
      if ('error' in parsed) return this.log(`Bitmap Lab panel: ignored a message: ${parsed.error}`);
      const { run, index, by } = parsed.message;
      if (run === 0 && by === 'user') this.session?.seek(index);
      this.shown.fire({ run, index });
    });
    const settings = vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(LANE_COLOURS_SECTION)) void panel.webview.postMessage(this.colours());
    });
    panel.onDidDispose(() => {
      settings.dispose();
      this.following?.dispose();
      this.panel = undefined;
    });
  }

  /** The settings' lane colours as a message; a setting that is not a colour is reported and left out. */
  private colours(): PlayerColoursMessage {
    const { colours, warnings } = readLaneColours(vscode.workspace.getConfiguration(LANE_COLOURS_SECTION));
    for (const warning of warnings) {
      this.log(`Bitmap Lab: ${warning}`);
      void vscode.window.showWarningMessage(`Bitmap Lab: ${warning}`);
    }
    return { type: 'colours', version: PROTOCOL_VERSION, colours };
  }

  /** Shows `session`, with frame `pin` pinned (kept across a reload). */
  private follow(session: ScenarioSession, pin?: number): void {
    this.following?.dispose();
    this.session = session;
    this.panel!.title = `Bitmap Lab: ${session.scenario.title}`;
    this.panel!.webview.html = this.html(session, pin);
    this.following = session.onDidChange(() => this.seek(session.frame));
  }

  private seek(index: number): void {
    const message: PlayerSeekMessage = { type: 'seek', version: PROTOCOL_VERSION, run: 0, index };
    void this.panel?.webview.postMessage(message);
  }

  private html(session: ScenarioSession, pin: number | undefined): string {
    const webview = this.panel!.webview;
    const asset = (file: string) => webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, 'dist', file)).toString();
    const { title, description } = session.scenario;
    return playerHtml({
      cspSource: webview.cspSource,
      nonce: newNonce(),
      scriptUri: asset('player.js'),
      styleUri: asset('player.css'),
      run: { title, ...(description !== undefined && { description }), frames: session.run.frames },
      scenario: session.uri.toString(),
      frame: session.frame,
      ...(pin !== undefined && { pin }),
      colours: this.colours(),
      reducedMotion: vscode.workspace.getConfiguration('bitmapLab').get<boolean>('reducedMotion', false),
    });
  }
}
