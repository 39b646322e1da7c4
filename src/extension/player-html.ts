/**
 * The Bitmap Lab panel's page. No `vscode` import, so the webview tests serve
 * the very same page, CSP included, in a plain browser.
 */
import { escapeHtml, jsonInScript } from '../html';
import { packRuns, type RecordedRun } from '../../webview/player/runs-format';
import type { PlayerColoursMessage } from '../protocol';

export interface PlayerPageOptions {
  /** webview.cspSource: the origin our own script and stylesheet come from. */
  cspSource: string;
  /** Fresh per page; only the script carrying it may run. */
  nonce: string;
  scriptUri: string;
  styleUri: string;
  run: RecordedRun;
  /** Kept with the panel's state, to reopen the scenario after a reload. */
  scenario: string;
  frame: number;
  /** The frame pinned before a reload, if any. */
  pin?: number;
  colours: PlayerColoursMessage;
  reducedMotion: boolean;
}


export function playerHtml(options: PlayerPageOptions): string {
  const { cspSource, nonce, run } = options;
  const csp = `default-src 'none'; style-src ${cspSource}; img-src ${cspSource} data:; script-src 'nonce-${nonce}';`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${escapeHtml(options.styleUri)}">
<title>Bitmap Lab</title></head>
<body class="${options.reducedMotion ? 'reduced-motion' : ''}">
<div id="player" data-title="${escapeHtml(run.title)}" data-scenario="${escapeHtml(options.scenario)}" data-frame="${options.frame}"${options.pin === undefined ? '' : ` data-pin="${options.pin}"`} data-colours="${escapeHtml(JSON.stringify(options.colours))}"></div>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="bitmap-lab-runs">${jsonInScript(packRuns([run]))}</script>
<script nonce="${escapeHtml(nonce)}" src="${escapeHtml(options.scriptUri)}"></script>
</body></html>`;
}
