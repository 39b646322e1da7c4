// The playground panel's webview in real headless Chromium, under the panel's own CSP.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { playgroundSnapshot } from '../../src/extension/playground-snapshot';
import type { SnapshotMessage } from '../../src/protocol';
import { columnCounts, columnOf, columnStart, type Run } from '../../webview/model';
import { skipWithout } from '../support/tools';
import { CHROMIUM, launch, openPanel, type PanelPage } from './harness';
import { backupInProgress } from './scenario';

const skip = skipWithout(existsSync(CHROMIUM), `Chromium (${CHROMIUM})`);
let browser: Browser;
before(async () => {
  if (!skip) browser = await launch();
});
after(() => browser?.close());

/** Nothing the CSP blocked, nothing thrown, nothing logged but what a test expects. */
async function assertClean(panel: PanelPage, expectedWarnings: RegExp[] = []): Promise<void> {
  assert.deepEqual((await panel.host()).violations, []);
  const unexpected = panel.console.filter((line) => !expectedWarnings.some((pattern) => pattern.test(line)));
  assert.deepEqual(unexpected, []);
  await panel.page.close();
}

/** The lanes as a reader sees them. */
const readLanes = (panel: PanelPage) =>
  panel.page.$$eval('.lane', (lanes) =>
    lanes.map((lane) => ({
      node: lane.closest('section')?.querySelector('.node-name')?.textContent,
      name: lane.querySelector('.lane-name')?.textContent,
      kind: (lane as HTMLElement).dataset.kind,
      badges: [...lane.querySelectorAll('.badge')].map((badge) => badge.textContent),
      cells: lane.querySelectorAll('rect.cell').length,
      dirty: lane.querySelectorAll('rect.cell.dirty').length,
      changed: lane.querySelectorAll('rect.cell.changed').length,
      canvases: lane.querySelectorAll('canvas').length,
      counts: lane.querySelector('.lane-counts')?.textContent,
    })),
  );

test('loads under the panel CSP and asks the host for a snapshot', { skip }, async () => {
  const panel = await openPanel(browser);
  assert.deepEqual((await panel.host()).posted, [{ type: 'ready', version: 1 }]);
  assert.equal(await panel.page.textContent('#nodes'), '\n    Waiting for the playground…\n  ');
  await assertClean(panel);
});

test('with no nodes it says how to add one', { skip }, async () => {
  const panel = await openPanel(browser);
  await panel.post({ type: 'snapshot', version: 1, nodes: [] });
  assert.match((await panel.page.textContent('.empty')) ?? '', /No block nodes in the playground yet.*"execute": "blockdev-add"/s);
  assert.equal(await panel.page.locator('.waiting').count(), 0);
  await assertClean(panel);
});

test('each bitmap is a labelled lane with its flags, counts and one cell per granule', { skip }, async () => {
  const panel = await openPanel(browser);
  await panel.post(playgroundSnapshot(backupInProgress().engine));
  const lane = (node: string, name: string, kind: string, badges: string[], cells: number, dirty: number, counts: string) => ({
    node, name, kind, badges, cells, dirty, changed: 0, canvases: kind === 'density' ? 1 : 0, counts,
  });
  assert.deepEqual(await readLanes(panel), [
    lane('drive0', 'stale', 'cells', ['●recording', '⚠inconsistent'], 1024, 32, '32 of 1,024 granules dirty · 2 MiB · granularity 64 KiB'),
    lane('drive0', '(anonymous)', 'cells', ['●recording'], 1024, 5, '5 of 1,024 granules dirty · 320 KiB · granularity 64 KiB'),
    lane('drive0', 'bitmap0', 'cells', ['●recording', '◆busy'], 1024, 146, '146 of 1,024 granules dirty · 9.13 MiB · granularity 64 KiB'),
    lane('drive0', 'weekly', 'cells', ['○disabled', '▣persistent'], 256, 41, '41 of 256 granules dirty · 10.3 MiB · granularity 256 KiB'),
    lane('big0', 'since-monday', 'density', ['●recording'], 0, 0, '15,634 of 262,144 granules dirty · 977 MiB · granularity 64 KiB'),
  ]);
  assert.deepEqual(await panel.page.$$eval('.node-meta', (metas) => metas.map((meta) => meta.textContent)), [
    'null-co · 64 MiB (67,108,864 bytes)',
    'null-co · 16 GiB (17,179,869,184 bytes)',
  ]);
  assert.equal(await panel.page.textContent('#announcer'), 'Playground updated: 2 nodes, 5 bitmaps.');
  await assertClean(panel);
});

test('a bitmap of more than 4096 granules is a canvas strip of dirty fraction per column, hatched past a truncation', { skip }, async () => {
  const panel = await openPanel(browser);
  const snapshot = playgroundSnapshot(backupInProgress().engine);
  const bitmap = snapshot.nodes[1].bitmaps[0];
  assert.equal(bitmap.truncated, true, 'the scenario has more extents than a snapshot carries');
  await panel.post(snapshot);
  // Per pixel column, how many pixels from the bottom up have the dirty colour.
  const strip = await panel.page.$eval('.lane[data-kind=density] canvas', (canvas) => {
    const { width, height } = canvas as HTMLCanvasElement;
    const pixels = (canvas as HTMLCanvasElement).getContext('2d')?.getImageData(0, 0, width, height).data ?? [];
    const dirty = (x: number, y: number) => {
      const i = (y * width + x) * 4;
      return pixels[i] === 0x37 && pixels[i + 1] === 0x94 && pixels[i + 2] === 0xff;
    };
    const bars = Array.from({ length: width }, (_, x) => {
      let bar = 0;
      while (bar < height && dirty(x, height - 1 - bar)) bar++;
      return bar;
    });
    return { width, height, bars };
  });
  const granules = bitmap.size / bitmap.granularity;
  const runs = bitmap.extents.map(([start, end]): Run => [start / bitmap.granularity, Math.ceil(end / bitmap.granularity)]);
  const counts = columnCounts(runs, granules, strip.width);
  const unknownFrom = columnOf(runs[runs.length - 1][1], granules, strip.width);
  assert.ok(strip.width > 1000 && unknownFrom > strip.width / 2 && unknownFrom < strip.width, `${unknownFrom} of ${strip.width}`);
  const expected = Array.from({ length: strip.width }, (_, column) => {
    if (column >= unknownFrom || counts[column] === 0) return 0;
    const span = columnStart(column + 1, granules, strip.width) - columnStart(column, granules, strip.width);
    return Math.max(2, Math.round((counts[column] / span) * strip.height));
  });
  assert.ok(expected.filter((bar) => bar > 2).length > 100, 'the scenario fills many columns, some beyond the minimum bar');
  assert.deepEqual(strip.bars, expected);
  assert.match(
    (await panel.page.textContent('.lane[data-kind=density] .lane-note')) ?? '',
    /^Too many granules for cells: 1,214 columns of about 216 granules \(13\.5 MiB\) from 0 to 16 GiB; .* Only the first 8,192 dirty ranges were sent; the hatched part is not known\.$/,
  );
  await assertClean(panel);
});

test('hover and keyboard tell the granule and its bytes; the cursor survives a reload', { skip }, async () => {
  const panel = await openPanel(browser);
  const { page } = panel;
  const snapshot = playgroundSnapshot(backupInProgress().engine);
  await panel.post(snapshot);
  const bitmap0 = page.locator('.lane', { has: page.locator('.lane-name', { hasText: 'bitmap0' }) });
  await bitmap0.locator('rect.cell').nth(16).hover();
  assert.deepEqual(await page.$$eval('#tooltip:not([hidden]) div', (lines) => lines.map((line) => line.textContent)), [
    'bitmap0 · granule 16 of 1,024 granules',
    'bytes [0x100000, 0x110000) · 64 KiB',
    'dirty',
  ]);

  for (let stop = 0; stop < 3; stop++) await page.keyboard.press('Tab');
  const body = bitmap0.locator('.lane-body');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'bitmap0 on drive0');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal(await body.getAttribute('aria-valuenow'), '2');
  assert.equal(await body.getAttribute('aria-valuetext'), 'bitmap0 · granule 2 of 1,024 granules; bytes [0x20000, 0x30000) · 64 KiB; dirty');
  await page.keyboard.press('ArrowDown');
  const rowLength = Number(await body.getAttribute('aria-valuenow')) - 2;
  assert.ok(rowLength > 10, `a row holds ${rowLength} cells`);
  await page.keyboard.press('End');
  assert.equal(await body.getAttribute('aria-valuemax'), '1023');
  assert.equal(await body.getAttribute('aria-valuenow'), '1023');
  assert.equal(await page.textContent('#tooltip:not([hidden]) div:nth-child(2)'), 'bytes [0x3ff0000, 0x4000000) · 64 KiB');
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#tooltip').isHidden(), true);

  const { state } = await panel.host();
  assert.deepEqual(state, { cursors: { [JSON.stringify(['drive0', 'bitmap0'])]: 1023 } });
  await assertClean(panel);

  const reloaded = await openPanel(browser, { state });
  await reloaded.post(snapshot);
  assert.equal(await reloaded.page.locator('.lane-body[aria-label="bitmap0 on drive0"]').getAttribute('aria-valuenow'), '1023');
  await assertClean(reloaded);
});

test('an update keeps every element, rings the cells that changed and announces it', { skip }, async () => {
  const panel = await openPanel(browser);
  const { page } = panel;
  const scenario = backupInProgress();
  await panel.post(playgroundSnapshot(scenario.engine));
  await page.$$eval('.lane, rect.cell', (elements) => elements.forEach((element) => element.classList.add('from-first-frame')));
  scenario.writeMore();
  await panel.post(playgroundSnapshot(scenario.engine));
  assert.equal(await page.locator('.lane:not(.from-first-frame), rect.cell:not(.from-first-frame)').count(), 0);
  const lanes = await readLanes(panel);
  assert.deepEqual(
    lanes.map(({ name, dirty, changed, counts }) => ({ name, dirty, changed, counts: counts?.split(' · ')[0] })),
    [
      { name: 'stale', dirty: 37, changed: 5, counts: '37 (+5) of 1,024 granules dirty' },
      { name: '(anonymous)', dirty: 10, changed: 5, counts: '10 (+5) of 1,024 granules dirty' },
      { name: 'bitmap0', dirty: 146, changed: 0, counts: '146 of 1,024 granules dirty' },
      { name: 'weekly', dirty: 41, changed: 0, counts: '41 of 256 granules dirty' },
      { name: 'since-monday', dirty: 0, changed: 0, counts: '15,634 of 262,144 granules dirty' },
    ],
  );
  assert.equal(
    await page.textContent('#announcer'),
    'Playground updated: 2 nodes, 5 bitmaps. stale on drive0 now has 37 dirty granules. ' +
      '(anonymous) on drive0 now has 10 dirty granules.',
  );
  if (process.env.BITMAP_LAB_SCREENSHOT) await screenshot(panel, process.env.BITMAP_LAB_SCREENSHOT);
  await assertClean(panel);
});

/** The whole panel, with the keyboard cursor and its tooltip on the successor's newest write. */
async function screenshot(panel: PanelPage, path: string): Promise<void> {
  const { page } = panel;
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  for (let step = 0; step < 128; step++) await page.keyboard.press('ArrowRight');
  await page.screenshot({ path, fullPage: true });
}

test('malformed messages are ignored, logged, and change nothing', { skip }, async () => {
  const panel = await openPanel(browser);
  const snapshot: SnapshotMessage = playgroundSnapshot(backupInProgress().engine);
  await panel.post(snapshot);
  const before = await panel.page.innerHTML('#nodes');
  const node = snapshot.nodes[0];
  const bad = [
    'snapshot',
    { type: 'snapshot', version: 2, nodes: [] },
    { type: 'reset', version: 1 },
    { type: 'snapshot', version: 1, nodes: [{ ...node, nodeName: 5 }] },
    { type: 'snapshot', version: 1, nodes: [{ ...node, bitmaps: [{ ...node.bitmaps[0], extents: [[0, 2 ** 40]] }] }] },
  ];
  for (const message of bad) await panel.post(message);
  assert.equal(await panel.page.innerHTML('#nodes'), before);
  assert.deepEqual(panel.console, [
    'warning: Bitmap Lab: ignored a message from the extension (message: not an object)',
    'warning: Bitmap Lab: ignored a message from the extension (version: expected 1, got 2)',
    'warning: Bitmap Lab: ignored a message from the extension (type: unknown message type "reset")',
    'warning: Bitmap Lab: ignored a message from the extension (nodes[0].nodeName: not a string)',
    'warning: Bitmap Lab: ignored a message from the extension (nodes[0].bitmaps[0].extents[0]: not an ordered, disjoint, non-empty range inside the bitmap)',
  ]);
  await assertClean(panel, [/ignored a message from the extension/]);
});

test('cells transition their fill unless the user asks for reduced motion', { skip }, async () => {
  const panel = await openPanel(browser);
  await panel.post(playgroundSnapshot(backupInProgress().engine));
  const duration = () => panel.page.$eval('rect.cell', (cell) => getComputedStyle(cell).transitionDuration);
  assert.equal(await duration(), '0.3s, 0.3s');
  await panel.page.emulateMedia({ reducedMotion: 'reduce' });
  assert.equal(await duration(), '0s');
  await assertClean(panel);
});
