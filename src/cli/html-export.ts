/**
 * A timeline as one self-contained HTML page: the player bundle and its
 * stylesheet inlined, the recorded runs as JSON, and a CSP that lets only
 * those two inline blocks (pinned by hash) run or apply. The page makes no
 * request, so it works from a file, an attachment or a slide deck.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { escapeHtml, jsonInScript } from '../html';
import { packRuns, type RecordedRun } from '../../webview/player/runs-format';

export type TimelineRun = RecordedRun;

export interface TimelineHtmlOptions {
  /** The page's title; by default the run's own, or a summary for several. */
  title?: string;
}

/**
 * dist/ holds the player: next to this module once it is bundled into
 * dist/cli.js, three levels up when tsc compiles it to out/src/cli for tests.
 */
function playerAsset(name: string): string {
  for (const dir of [__dirname, resolve(__dirname, '../../../dist')]) {
    const file = join(dir, name);
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  throw new Error(`dist/${name} is missing: run \`npm run build\` first`);
}

/**
 * Inline code may not close its element early nor open an HTML comment; both
 * sequences can only occur inside string or regex literals, where a backslash
 * before the slash or the bang keeps their meaning.
 */
const inlineSafe = (code: string, tag: 'script' | 'style') =>
  code.replace(new RegExp(`</(${tag})`, 'gi'), '<\\/$1').replace(/<!--/g, '<\\!--');

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** For text and double-quoted attributes; the CSP's own quotes stay readable. */

export function renderTimelineHtml(runs: TimelineRun[], options: TimelineHtmlOptions = {}): string {
  if (!runs.length) throw new Error('an exported timeline needs at least one run');
  runs.forEach((run, i) => {
    if (!run.frames.length) throw new Error(`run ${i + 1} (${run.title}) has no frames`);
  });
  const title = options.title ?? (runs.length === 1 ? runs[0].title : `${runs.length} runs side by side`);
  const script = inlineSafe(playerAsset('player.js'), 'script');
  const style = inlineSafe(playerAsset('player.css'), 'style');
  const data = jsonInScript(packRuns(runs));
  const csp = ["default-src 'none'", `script-src ${sha256(script)}`, `style-src ${sha256(style)}`, "base-uri 'none'", "form-action 'none'"].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Bitmap Lab">
<title>Bitmap Lab · ${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<div id="player" data-title="${escapeHtml(title)}"><noscript>This page plays a Bitmap Lab timeline; it needs JavaScript.</noscript></div>
<div id="tooltip" role="tooltip" hidden></div>
<script type="application/json" id="bitmap-lab-runs">${data}</script>
<script>${script}</script>
</body>
</html>
`;
}
