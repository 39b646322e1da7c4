// The Bitmap Lab panel's page in headless Chromium, as VS Code serves it: lane colours from the settings, comparing frames, and VS Code's themes.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { PROTOCOL_VERSION } from '../../src/protocol';
import { namedExampleRun } from '../player/page';
import { skipWithout } from '../support/tools';
import { CHROMIUM, launch } from './harness';
import { openPlayerPanel, type PlayerPanelPage } from './player-panel';
import type { ThemeName } from './theme';

const skip = skipWithout(existsSync(CHROMIUM), `Chromium (${CHROMIUM})`);
const run = namedExampleRun('always-failure');
const failure = run.frames.findIndex((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR'));
let browser: Browser;

before(async () => {
  if (!skip) browser = await launch();
});
after(() => browser?.close());

async function assertClean(panel: PlayerPanelPage, expected: string[] = []): Promise<void> {
  assert.deepEqual(panel.problems, expected);
  await panel.page.close();
}

/** The fill of the first dirty cell of a lane, as the browser paints it. */
const cellFill = (page: Page, role: string) => page.$eval(`.lane[data-role="${role}"] g.cells rect.on`, (rect) => getComputedStyle(rect).fill);

const colours = (colours: Record<string, unknown>) => ({ type: 'colours', version: PROTOCOL_VERSION, colours });

test('lane colours from the settings: in the page at first, then live; a lane left out goes back to the theme', { skip }, async () => {
  const panel = await openPlayerPanel(browser, run, { frame: failure, colours: { copyBitmap: '#ff00ff', syncBitmap: 'rgb(0, 128, 0)' } });
  const { page } = panel;
  assert.equal(await cellFill(page, 'copy'), 'rgb(255, 0, 255)');
  assert.equal(await page.$eval('.lane[data-state="sync"] g.cells rect.on', (rect) => getComputedStyle(rect).fill), 'rgb(0, 128, 0)');
  const themeSuccessor = await cellFill(page, 'successor');

  await panel.post(colours({ copyBitmap: 'hsl(200, 100%, 40%)', successor: 'gold', source: '#123' }));
  assert.equal(await cellFill(page, 'copy'), 'rgb(0, 136, 204)');
  assert.equal(await cellFill(page, 'successor'), 'rgb(255, 215, 0)');
  assert.equal(await page.$eval('.lane[data-role="source"] .lane-symbol', (symbol) => getComputedStyle(symbol).outlineColor), 'rgb(17, 34, 51)');
  // The sync bitmap's setting is gone: its theme colour is back.
  assert.notEqual(await page.$eval('.lane[data-state="sync"] g.cells rect.on', (rect) => getComputedStyle(rect).fill), 'rgb(0, 128, 0)');

  await panel.post(colours({}));
  assert.equal(await cellFill(page, 'successor'), themeSuccessor);
  await assertClean(panel);
});

test('a colour that is not one, or a lane that does not exist, is refused whole and changes nothing', { skip }, async () => {
  const panel = await openPlayerPanel(browser, run, { frame: failure, colours: { copyBitmap: '#ff00ff' } });
  const { page } = panel;
  const refused = [
    colours({ copyBitmap: 'red; } body { display: none' }),
    colours({ copyBitmap: 'url(https://example.invalid/x.png)' }),
    colours({ copyBitmap: 'var(--vscode-foreground)' }),
    colours({ everything: '#000000' }),
    colours({ copyBitmap: 7 }),
    { type: 'colours', version: PROTOCOL_VERSION + 1, colours: {} },
  ];
  for (const message of refused) await panel.post(message);
  assert.equal(await cellFill(page, 'copy'), 'rgb(255, 0, 255)');
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).display), 'block');
  assert.deepEqual(
    panel.problems.map((line) => line.replace(/^warning: Bitmap Lab: ignored a message: /, '')),
    [
      'colours.copyBitmap: "red; } body { display: none" is not a CSS colour',
      'colours.copyBitmap: "url(https://example.invalid/x.png)" is not a CSS colour',
      'colours.copyBitmap: "var(--vscode-foreground)" is not a CSS colour',
      'colours.everything: not a lane',
      'colours.copyBitmap: 7 is not a CSS colour',
      `version: expected ${PROTOCOL_VERSION}, got ${PROTOCOL_VERSION + 1}`,
    ],
  );
  await page.close();
});

test('in the panel, P and a step compare two frames; the host hears each frame shown; hover details work', { skip }, async () => {
  const panel = await openPlayerPanel(browser, run, { frame: failure });
  const { page } = panel;
  await page.keyboard.press('p');
  await page.keyboard.press('c');
  const shown = Number(await page.getAttribute('.scrubber', 'aria-valuenow'));
  assert.ok(shown > failure);
  assert.match((await page.textContent('.compare-summary')) ?? '', new RegExp(`^frame ${failure} → ${shown}: bitmap0 `));
  assert.deepEqual((await panel.posted()).at(-1), { type: 'frame', version: PROTOCOL_VERSION, run: 0, index: shown, by: 'user' });
  await page.hover('.lane[data-role="named"] g.cells rect:nth-child(1)');
  assert.ok((await page.$$eval('#tooltip div', (lines) => lines.map((line) => line.textContent))).includes(`at pinned frame ${failure}: dirty (differs)`));
  // A frame the host asked for is acknowledged as the host's, so the host does not follow it back.
  await panel.post({ type: 'seek', version: PROTOCOL_VERSION, run: 0, index: failure });
  assert.deepEqual((await panel.posted()).at(-1), { type: 'frame', version: PROTOCOL_VERSION, run: 0, index: failure, by: 'host' });
  await assertClean(panel);
});

test('the panel keeps its pin with its state, and a reloaded page pinned from it compares again', { skip }, async () => {
  const scenario = 'file:///examples/test.bitmaplab.json';
  const panel = await openPlayerPanel(browser, run, { frame: failure });
  await panel.page.keyboard.press('p');
  assert.deepEqual((await panel.states()).at(-1), { scenario, frame: failure, pin: failure });
  await panel.page.keyboard.press('.');
  assert.deepEqual((await panel.states()).at(-1), { scenario, frame: failure + 1, pin: failure });
  await panel.page.keyboard.press(',');
  await panel.page.keyboard.press('p');
  assert.deepEqual((await panel.states()).at(-1), { scenario, frame: failure });
  await assertClean(panel);

  // As after a reload: the host passes the kept pin into the new page.
  const reloaded = await openPlayerPanel(browser, run, { frame: failure + 2, pin: failure });
  assert.match((await reloaded.page.textContent('.compare-summary')) ?? '', new RegExp(`^frame ${failure} → ${failure + 2}: `));
  assert.deepEqual((await reloaded.states()).at(-1), { scenario, frame: failure + 2, pin: failure });
  await assertClean(reloaded);
});

// Theme switching: what a reader sees must follow the theme and stay readable.

/** [r, g, b, alpha] of a computed colour: rgb(), rgba(), or color(srgb …) as color-mix() computes. */
function parseColour(text: string): number[] {
  const srgb = text.startsWith('color(srgb ');
  const numbers = text.match(/[\d.]+/g)!.map(Number);
  const [r, g, b, a = 1] = numbers;
  return srgb ? [r * 255, g * 255, b * 255, a] : [r, g, b, a];
}

const luminance = ([r, g, b]: number[]) => {
  const channel = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
};

/** WCAG contrast of `front` (composited over `back` when translucent) against `back`. */
function contrast(front: string, back: string): number {
  const [r, g, b, a] = parseColour(front);
  const under = parseColour(back);
  const over = [r, g, b].map((c, i) => a * c + (1 - a) * under[i]);
  const [light, dark] = [luminance(over), luminance(under)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

interface Seen {
  colour: string;
  background: string;
}

/** Computed colours of text, lanes and marks at the failure, compared with the first frame. */
function readColours(page: Page): Promise<Record<string, Seen>> {
  return page.evaluate(() => {
    const card = getComputedStyle(document.querySelector('.run')!).backgroundColor;
    const style = (selector: string) => getComputedStyle(document.querySelector(selector)!);
    const text = (selector: string) => ({ colour: style(selector).color, background: card });
    const fill = (selector: string) => ({ colour: style(selector).fill, background: card });
    const stroke = (selector: string) => ({ colour: style(selector).stroke, background: card });
    return {
      'lane name': text('.lane .lane-name'),
      'lane role (muted)': text('.lane .lane-role'),
      'event text': text('.event .text'),
      'comparison summary': text('.compare-summary'),
      'narration': text('.narration-text'),
      'failure banner title': text('.failure-banner strong'),
      'failure banner glyph': text('.failure-banner .glyph'),
      // A transparent button shows the card.
      'transport button icon': { colour: style('.button.back').color, background: style('.button.back').backgroundColor.replace(/^rgba\(0, 0, 0, 0\)$/, card) },
      'sync bitmap S cell': stroke('.lane[data-state="sync"] g.cells rect.on'),
      'successor N cell': stroke('.lane[data-role="successor"] g.cells rect.on'),
      'copy bitmap C cell': stroke('.lane[data-role="copy"] g.cells rect.on'),
      'source data cell': stroke('.lane[data-role="source"] g.cells rect.on'),
      'clean cell': stroke('.lane[data-role="copy"] g.cells rect:not(.on)'),
      'compared outline': stroke('.lane g.changes rect.compare'),
      'failure marker': fill('.scrubber .marker.failure path'),
      'cleanup marker': fill('.scrubber .marker.cleanup path'),
      'pin mark': stroke('.scrubber .pin-mark line'),
    };
  });
}

/** Normal text needs 4.5:1 (WCAG 1.4.3); lanes, marks and button icons, graphics that carry meaning, 3:1 (1.4.11). */
const NEEDS: Record<string, number> = {
  'lane name': 4.5,
  'lane role (muted)': 4.5,
  'event text': 4.5,
  'comparison summary': 4.5,
  narration: 4.5,
  'failure banner title': 4.5,
};

/** What must be exactly the theme's own colour: [selector, CSS property, VS Code variable]. */
const FROM_THE_THEME: Array<[string, 'color' | 'fill' | 'stroke' | 'backgroundColor', string]> = [
  ['.run', 'backgroundColor', '--vscode-editorWidget-background'],
  ['.lane .lane-name', 'color', '--vscode-foreground'],
  ['.lane .lane-role', 'color', '--vscode-descriptionForeground'],
  ['.lane[data-state="sync"] g.cells rect.on', 'fill', '--vscode-charts-purple'],
  ['.lane[data-role="successor"] g.cells rect.on', 'fill', '--vscode-charts-green'],
  ['.lane[data-role="copy"] g.cells rect.on', 'fill', '--vscode-symbolIcon-classForeground'],
  ['.lane[data-role="source"] g.cells rect.on.w1', 'stroke', '--vscode-terminal-ansiCyan'],
  ['.legend rect.change.set', 'stroke', '--vscode-foreground'],
  ['.scrubber .marker.failure path', 'fill', '--vscode-errorForeground'],
  ['.scrubber .marker.cleanup path', 'fill', '--vscode-charts-blue'],
];

/** For each of FROM_THE_THEME, what the page shows and what the theme's variable is, both as the browser computes them. */
const themeColours = (page: Page) =>
  page.evaluate((checks) => {
    const probe = document.body.appendChild(document.createElement('span'));
    const resolved = (variable: string) => {
      probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(variable);
      return getComputedStyle(probe).color;
    };
    const out = checks.map(([selector, property, variable]) => [`${selector} ${property}`, getComputedStyle(document.querySelector(selector)!)[property], resolved(variable)]);
    probe.remove();
    return out;
  }, FROM_THE_THEME);

test('switching between light, dark and high contrast themes changes the colours of lanes, marks and text, and keeps them readable', { skip }, async () => {
  const panel = await openPlayerPanel(browser, run);
  const { page } = panel;
  await page.keyboard.press('p');
  await page.keyboard.press('f');
  const seen = {} as Record<ThemeName, Record<string, Seen>>;
  const shown = {} as Record<ThemeName, string[]>;
  for (const theme of ['light', 'dark', 'high-contrast'] as const) {
    await panel.theme(theme);
    seen[theme] = await readColours(page);
    const colours = await themeColours(page);
    for (const [what, actual, expected] of colours) assert.equal(actual, expected, `${theme}: ${what}`);
    shown[theme] = colours.map(([, actual]) => actual);
    await page.screenshot({ path: `/tmp/bitmap-lab-panel-${theme}.png`, fullPage: true });
  }
  const low: string[] = [];
  for (const [theme, colours] of Object.entries(seen)) {
    for (const [what, { colour, background }] of Object.entries(colours)) {
      const ratio = contrast(colour, background);
      if (ratio < (NEEDS[what] ?? 3)) low.push(`${theme}: ${what} ${colour} on ${background}: ${ratio.toFixed(2)}:1`);
    }
  }
  assert.deepEqual(low, []);
  // The themes differ, and so does the page.
  assert.notDeepEqual(shown.light, shown.dark);
  assert.notDeepEqual(shown.dark, shown['high-contrast']);
  assert.notDeepEqual(shown.light, shown['high-contrast']);
  // Back to light: the same colours as the first time.
  await panel.theme('light');
  assert.deepEqual(await readColours(page), seen.light);
  await assertClean(panel);
});
