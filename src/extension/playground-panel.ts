/**
 * The "Playground Bitmaps" webview panel: at most one, showing snapshots the
 * host makes from the engine, and restored by VS Code after a reload.
 */
import * as vscode from 'vscode';
import { parseFromWebview, type ToWebviewMessage } from '../protocol';
import { newNonce, playgroundHtml } from './playground-html';

export const PLAYGROUND_VIEW_TYPE = 'bitmapLab.playground';

/**
 * Not a Disposable on purpose: closing the panel when the extension host stops
 * would drop it from the workbench, and then nothing is restored after a reload.
 */
export class PlaygroundPanel implements vscode.WebviewPanelSerializer {
  private panel: vscode.WebviewPanel | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly snapshot: () => ToWebviewMessage,
    private readonly log: (line: string) => void,
  ) {}

  show(): void {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      PLAYGROUND_VIEW_TYPE,
      'Playground Bitmaps',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      // The page is cheap to rebuild from a snapshot, so a hidden panel keeps no context.
      { retainContextWhenHidden: false },
    );
    this.attach(panel);
  }

  /** VS Code hands back the panel it kept across a reload; the webview asks for a snapshot when it loads. */
  async deserializeWebviewPanel(panel: vscode.WebviewPanel): Promise<void> {
    if (this.panel) {
      panel.dispose();
      return;
    }
    this.attach(panel);
  }

  /** Sends the current snapshot; a hidden panel gets one when it is shown and loads again. */
  refresh(): void {
    if (this.panel?.visible) void this.panel.webview.postMessage(this.snapshot());
  }

  private webviewOptions(): vscode.WebviewOptions {
    return {
      enableScripts: true,
      localResourceRoots: [this.resource('dist')],
    };
  }

  private resource(...path: string[]): vscode.Uri {
    return vscode.Uri.joinPath(this.extensionUri, ...path);
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    const { webview } = panel;
    // Set here for restored panels too, so they get this version's resource roots.
    webview.options = this.webviewOptions();
    webview.html = playgroundHtml({
      cspSource: webview.cspSource,
      nonce: newNonce(),
      scriptUri: webview.asWebviewUri(this.resource('dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(this.resource('dist', 'playground.css')).toString(),
    });
    const receiving = webview.onDidReceiveMessage((data: unknown) => {
      const parsed = parseFromWebview(data);
      if ('error' in parsed) {
        this.log(`playground panel: ignored a message from the webview (${parsed.error})`);
        return;
      }
      switch (parsed.message.type) {
        case 'ready':
          void webview.postMessage(this.snapshot());
          break;
      }
    });
    panel.onDidDispose(() => {
      receiving.dispose();
      if (this.panel === panel) this.panel = undefined;
    });
  }
}
