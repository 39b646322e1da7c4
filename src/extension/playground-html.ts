/**
 * The playground panel's page. No `vscode` import, so the webview test serves
 * the very same page, CSP included, in a plain browser.
 */
import { randomBytes } from 'node:crypto';
import { escapeHtml } from '../html';

export interface PlaygroundPageOptions {
  /** webview.cspSource: the origin our own script and stylesheet come from. */
  cspSource: string;
  /** Fresh per page; only the script carrying it may run. */
  nonce: string;
  scriptUri: string;
  styleUri: string;
}

export function playgroundHtml({ cspSource, nonce, scriptUri, styleUri }: PlaygroundPageOptions): string {
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="${escapeHtml(styleUri)}">
  <title>Playground Bitmaps</title>
</head>
<body>
  <header class="page-header">
    <h1>Playground bitmaps</h1>
    <ul class="legend" aria-label="Legend">
      <li><span class="swatch dirty" aria-hidden="true"></span>dirty granule</li>
      <li><span class="swatch clean" aria-hidden="true"></span>clean granule</li>
      <li><span class="swatch changed" aria-hidden="true"></span>changed by the last command</li>
      <li>Tab to a bitmap, then ←/→/↑/↓, Home/End</li>
    </ul>
  </header>
  <div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
  <main id="nodes" aria-label="Block nodes and their dirty bitmaps">
    <p class="waiting">Waiting for the playground…</p>
  </main>
  <div id="tooltip" role="tooltip" hidden></div>
  <script nonce="${escapeHtml(nonce)}" src="${escapeHtml(scriptUri)}"></script>
</body>
</html>
`;
}


/** A CSP nonce: 144 random bits, base64 without padding. */
export const newNonce = () => randomBytes(18).toString('base64');
