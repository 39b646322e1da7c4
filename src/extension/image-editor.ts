/**
 * A read-only custom editor for image files (.qcow2, .img, .raw): header
 * facts, the backing chain, allocation, and each persistent bitmap with a
 * strip of its dirty extents; and "new scenario from this image".
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { formatSize } from '../format';
import { escapeHtml } from '../html';
import { inspectImage, type ImageReport } from '../engine/image-report';
import { QmpError } from '../engine/qmp-error';

export const IMAGE_VIEW_TYPE = 'bitmapLab.image';


const human = formatSize;

/** Dirty extents as a strip: one rectangle per extent, scaled to the disk. */
function strip(extents: Array<[number, number]>, size: number): string {
  const rects = extents
    .slice(0, 2000)
    .map(([start, end]) => `<rect x="${((start / size) * 1000).toFixed(2)}" width="${Math.max(0.5, ((end - start) / size) * 1000).toFixed(2)}" height="16"></rect>`)
    .join('');
  return `<svg class="strip" viewBox="0 0 1000 16" preserveAspectRatio="none" role="img" aria-label="${extents.length} dirty extents">${rects}</svg>`;
}

function imageSection(image: ImageReport, depth: number): string {
  const rows: Array<[string, string]> = [
    ['format', image.format],
    ['virtual size', `${human(image.virtualSize)} (${image.virtualSize} bytes)`],
    ...(image.clusterSize ? [['cluster size', human(image.clusterSize)] as [string, string]] : []),
    ...(image.allocation
      ? [['allocation', `data ${human(image.allocation.allocated)}, zero ${human(image.allocation.zero)}, unallocated ${human(image.allocation.unallocated)}`] as [string, string]]
      : []),
    ...(image.backing ? [['backing file', image.backing] as [string, string]] : []),
  ];
  const bitmaps = image.bitmaps
    .map(
      (b) => `<tr><th scope="row">${escapeHtml(b.name)}</th><td>${human(b.granularity)}</td><td>${escapeHtml(b.flags.join(', ') || 'none')}</td>` +
        `<td>${b.inconsistent ? 'inconsistent' : human(b.count)}</td><td>${strip(b.extents, image.virtualSize)}</td></tr>`,
    )
    .join('');
  return `<section><h2>${depth ? `Backing file, depth ${depth}` : 'Image'}: ${escapeHtml(path.basename(image.filename))}</h2>
<table class="facts">${rows.map(([k, v]) => `<tr><th scope="row">${k}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
${image.bitmaps.length ? `<table class="bitmaps"><thead><tr><th>persistent bitmap</th><th>granularity</th><th>flags</th><th>dirty</th><th>dirty extents</th></tr></thead><tbody>${bitmaps}</tbody></table>` : '<p>No persistent bitmaps.</p>'}</section>`;
}

function html(images: ImageReport[] | string): string {
  const nonce = crypto.randomBytes(16).toString('base64');
  const body = typeof images === 'string'
    ? `<p class="error">${escapeHtml(images)}</p>`
    : `${images.map(imageSection).join('')}<button id="scenario" type="button">New scenario from this image</button>`;
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { text-align: left; padding: 3px 12px 3px 0; vertical-align: middle; }
th { font-weight: 600; color: var(--vscode-descriptionForeground); }
.strip { width: 320px; height: 16px; background: var(--vscode-editorWidget-background); border: 1px solid var(--vscode-panel-border); }
.strip rect { fill: var(--vscode-charts-blue); }
.error { color: var(--vscode-errorForeground); }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 6px 12px; cursor: pointer; }
button:focus-visible { outline: 1px solid var(--vscode-focusBorder); }
</style></head><body>${body}
<script nonce="${nonce}">const vscode = acquireVsCodeApi();
document.getElementById('scenario')?.addEventListener('click', () => vscode.postMessage({ type: 'new-scenario' }));</script>
</body></html>`;
}

/** A starting point: a scenario with an image like this one, a bitmap, a write and an incremental backup. */
function scenarioFor(image: ImageReport): string {
  const name = 'drive0';
  const format = image.format === 'qcow2' ? 'qcow2' : 'raw';
  return JSON.stringify(
    {
      $schema: 'https://bitmap-lab.dev/schema/bitmaplab.schema.json',
      title: `Like ${path.basename(image.filename)}`,
      images: [
        { name, format, size: image.virtualSize, ...(image.clusterSize && { clusterSize: image.clusterSize }) },
        { name: 'backup0', format: 'qcow2', size: image.virtualSize },
      ],
      steps: [
        { qmp: { execute: 'block-dirty-bitmap-add', arguments: { node: name, name: 'bitmap0' } } },
        { write: { node: name, offset: 0, length: '1M', pattern: 17 } },
        { qmp: { execute: 'blockdev-backup', arguments: { 'job-id': 'j0', device: name, target: 'backup0', sync: 'incremental', bitmap: 'bitmap0' } } },
        { wait: { event: 'BLOCK_JOB_COMPLETED' } },
        { expect: { bitmap: { node: name, name: 'bitmap0', count: 0 } } },
      ],
    },
    null,
    2,
  );
}

export class ImageEditor implements vscode.CustomReadonlyEditorProvider {
  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose() {} };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    panel.webview.options = { enableScripts: true, localResourceRoots: [] };
    let images: ImageReport[] | string;
    try {
      images = inspectImage(document.uri.fsPath);
    } catch (error) {
      images = error instanceof QmpError ? error.desc : String(error);
    }
    panel.webview.html = html(images);
    panel.webview.onDidReceiveMessage(async (message: unknown) => {
      // Only one message exists; anything else is ignored.
      if (typeof images === 'string' || (message as { type?: unknown })?.type !== 'new-scenario') return;
      const scenario = await vscode.workspace.openTextDocument({ language: 'json', content: scenarioFor(images[0]) });
      await vscode.window.showTextDocument(scenario);
    });
  }
}
