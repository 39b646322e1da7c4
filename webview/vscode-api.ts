/**
 * The part of VS Code's webview API the panel uses. VS Code defines
 * acquireVsCodeApi before our script runs, and it may be called only once.
 */
import type { FromWebviewMessage } from '../src/protocol';

/** View state only, since the host owns the data: the granule each lane's cursor is on, by lane key. */
export interface ViewState {
  cursors: Record<string, number>;
}

interface VsCodeApi {
  postMessage(message: FromWebviewMessage): void;
  getState(): unknown;
  setState(state: ViewState): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

export const vscode = acquireVsCodeApi();

/** The saved state, or a fresh one when there is none or it is not ours. */
export function loadViewState(): ViewState {
  const saved = vscode.getState() as { cursors?: unknown } | undefined;
  const cursors: Record<string, number> = {};
  if (typeof saved?.cursors === 'object' && saved.cursors !== null) {
    for (const [key, granule] of Object.entries(saved.cursors)) {
      if (Number.isSafeInteger(granule) && granule >= 0) cursors[key] = granule;
    }
  }
  return { cursors };
}
