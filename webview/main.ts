/**
 * The playground panel's webview: draws each snapshot the host sends, and asks
 * for one whenever it loads (VS Code reloads a hidden panel when shown again).
 */
import { parseToWebview, PROTOCOL_VERSION } from '../src/protocol';
import { hideTooltip } from './cursor';
import { buildModel, lanesByKey, type NodeModel } from './model';
import { render, summary, type Cursors } from './render';
import { loadViewState, vscode } from './vscode-api';

const root = document.getElementById('nodes') as HTMLElement;
const announcer = document.getElementById('announcer') as HTMLElement;
const viewState = loadViewState();
let nodes: NodeModel[] | undefined;

const cursors: Cursors = {
  granuleOf: (laneKey) => viewState.cursors[laneKey] ?? 0,
  moved: (laneKey, granule) => {
    viewState.cursors[laneKey] = granule;
    vscode.setState(viewState);
  },
};

function draw(): void {
  if (nodes) render(root, nodes, cursors);
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const parsed = parseToWebview(event.data);
  if ('error' in parsed) {
    console.warn(`Bitmap Lab: ignored a message from the extension (${parsed.error})`);
    return;
  }
  const previous = lanesByKey(nodes ?? []);
  nodes = buildModel(parsed.message, previous);
  forgetCursorsOfGoneLanes(new Set(lanesByKey(nodes).keys()));
  draw();
  announcer.textContent = summary(nodes);
});

function forgetCursorsOfGoneLanes(laneKeys: Set<string>): void {
  for (const key of Object.keys(viewState.cursors)) {
    if (!laneKeys.has(key)) delete viewState.cursors[key];
  }
  vscode.setState(viewState);
}

// Rows rewrap and strips resample when the panel's width changes.
let width = root.clientWidth;
new ResizeObserver(() => {
  if (root.clientWidth === width) return;
  width = root.clientWidth;
  draw();
}).observe(root);

// A theme change swaps VS Code's variables on <html> and the theme class on <body>;
// SVG follows through CSS, but canvases must repaint.
new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
new MutationObserver(draw).observe(document.body, { attributes: true, attributeFilter: ['class'] });

// The tooltip is placed in viewport coordinates, so a scroll would leave it behind.
window.addEventListener('scroll', hideTooltip, { passive: true });

vscode.postMessage({ type: 'ready', version: PROTOCOL_VERSION });
