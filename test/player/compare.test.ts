// Comparing a pinned frame with the one shown: the model against the engine's bitmaps, then the page by keyboard, button and hover, cells and density strips.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import type { Frame } from '../../src/engine/timeline/frame';
import { Timeline } from '../../src/engine/timeline/timeline';
import { compareFrames, comparisonText } from '../../webview/player/compare';
import { RunModel } from '../../webview/player/run-model';
import { skipWithout } from '../support/tools';
import { CHROMIUM, launch } from '../webview/harness';
import { bigDiskRun, framesShown, namedExampleRun, openPage, writePage, type OpenPage } from './page';

const run = namedExampleRun('always-failure');
const failure = run.frames.findIndex((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR'));
const cleanups = run.frames.filter((f) => f.cause.kind === 'trace' && ['abdicate', 'merge-copy-bitmap'].includes(f.cause.label)).map((f) => f.index);
const merged = cleanups.at(-1)!;

/** The granules each named or job bitmap holds after frame `index`, straight from the engine's timeline. */
function bitmapGranules(frames: Frame[], index: number): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const { meta, bits } of new Timeline(frames).seek(index).bitmaps.values()) {
    const key = meta.name ?? meta.role;
    const set = out.get(key) ?? new Set<number>();
    for (const [start, end] of bits.extents()) for (let g = start; g < end; g++) set.add(g);
    out.set(key, set);
  }
  return out;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** "+5 −64" as the engine counts it: granules in `now` only, then in `then` only. */
function engineDifference(then: Set<number> = new Set(), now: Set<number> = new Set()): string {
  const gained = [...now].filter((g) => !then.has(g)).length;
  const lost = [...then].filter((g) => !now.has(g)).length;
  return [gained && `+${gained}`, lost && `−${lost}`].filter(Boolean).join(' ');
}

test('the comparison of two frames counts, per bitmap, the granules set and cleared between them, as the engine has them', () => {
  assert.ok(failure > 0 && merged > failure, `failure ${failure}, cleanup ends at ${merged}`);
  const model = new RunModel(run);
  const pairs: Array<[number, number]> = [[failure, merged], [merged, failure], [0, run.frames.length - 1], [failure - 3, failure + 1]];
  for (const [from, to] of pairs) {
    const comparison = compareFrames({ index: from, lanes: model.lanesAt(from) }, to, model.lanesAt(to));
    const [then, now] = [bitmapGranules(run.frames, from), bitmapGranules(run.frames, to)];
    const shown = model.lanesAt(to).filter((lane) => !lane.spec.optional);
    const text = comparisonText(comparison, shown);
    assert.ok(text.startsWith(`frame ${from} → ${to}: `), text);
    for (const [lane, key] of [['bitmap0', 'bitmap0'], ['successor N', 'successor'], ['copy bitmap C', 'copy']]) {
      const expected = engineDifference(then.get(key), now.get(key));
      if (expected) assert.match(text, new RegExp(`${lane} ${escape(expected)} granules?(,|$)`), `${from} → ${to}: ${text}`);
      else assert.doesNotMatch(text, new RegExp(`${lane} [+−]`), `${from} → ${to}: ${text}`);
    }
  }
  const same = compareFrames({ index: failure, lanes: model.lanesAt(failure) }, failure, model.lanesAt(failure));
  assert.equal(comparisonText(same, model.lanesAt(failure)), `frame ${failure} → ${failure}: no lane differs`);
});

test('data lanes compare by cluster: what the target gained from the start to the failure', () => {
  const model = new RunModel(run);
  const comparison = compareFrames({ index: 0, lanes: model.lanesAt(0) }, failure, model.lanesAt(failure));
  const target = model.lanesAt(failure).find((lane) => lane.spec.role === 'target')!;
  const then = model.lanesAt(0).find((lane) => lane.spec.role === 'target')!;
  const cells = (runs: typeof target.runs) => new Map(runs.flatMap(([start, end, write]) => Array.from({ length: end - start }, (_, i) => [start + i, write] as const)));
  const [before, after] = [cells(then.runs), cells(target.runs)];
  const gained = [...after].filter(([g, write]) => before.get(g) !== write).length;
  assert.ok(gained > 0);
  assert.match(comparisonText(comparison, [target]), new RegExp(`: target \\S+ \\+${gained} clusters?$`));
});

const skip = skipWithout(existsSync(CHROMIUM), `Chromium (${CHROMIUM})`);
let browser: Browser;
let page: string;

before(async () => {
  if (skip) return;
  browser = await launch();
  page = writePage([run]);
});
after(() => browser?.close());

async function assertClean({ page, problems }: OpenPage): Promise<void> {
  assert.deepEqual(problems, []);
  await page.close();
}

const compareState = (p: Page) =>
  p.evaluate(() => ({
    summary: document.querySelector('.compare-summary')?.hasAttribute('hidden') ? null : document.querySelector('.compare-summary')?.textContent,
    pressed: document.querySelector('button.pin')?.getAttribute('aria-pressed'),
    pinMark: document.querySelector('.pin-mark')?.getAttribute('display') !== 'none',
    outlines: [...document.querySelectorAll('.lane g.changes rect')].map((rect) => rect.getAttribute('class')),
    deltas: [...document.querySelectorAll('.lane .lane-delta')].map((delta) => delta.textContent),
  }));

test('P pins a frame; other frames outline what differs from it, say it in words and announce it; P on the pinned frame unpins', { skip }, async () => {
  const open = await openPage(browser, page, { hash: `#frames=${failure}` });
  const { page: p } = open;
  await p.keyboard.press('p');
  assert.equal(await p.textContent('[role="status"]'), `Run 1: frame ${failure} pinned; other frames are compared with it.`);
  let state = await compareState(p);
  assert.equal(state.summary, `frame ${failure} is pinned: step to another frame to compare with it`);
  assert.equal(state.pressed, 'true');
  assert.ok(state.pinMark);
  assert.ok(state.outlines.every((name) => !name?.includes('compare')), 'no comparison at the pinned frame itself');

  await p.keyboard.press('c');
  await p.keyboard.press('c');
  assert.deepEqual(await framesShown(p), [merged]);
  const model = new RunModel(run);
  const expected = comparisonText(compareFrames({ index: failure, lanes: model.lanesAt(failure) }, merged, model.lanesAt(merged)), model.lanesAt(merged).filter((lane) => !lane.spec.optional));
  state = await compareState(p);
  assert.equal(state.summary, expected);
  assert.equal(state.pressed, 'false');
  assert.match((await p.textContent('[role="status"]')) ?? '', new RegExp(`Compared with the pinned ${escape(expected)}\\.$`));
  // Outlined by shape: solid where set since the pin, dotted where cleared, and all marked as a comparison.
  assert.ok(state.outlines.length > 0 && state.outlines.every((name) => name?.endsWith(' compare')), JSON.stringify(state.outlines));
  assert.ok(state.outlines.some((name) => name === 'change cleared compare'));
  const bitmap0 = engineDifference(bitmapGranules(run.frames, failure).get('bitmap0'), bitmapGranules(run.frames, merged).get('bitmap0'));
  assert.ok(state.deltas.includes(`vs ${failure}: ${bitmap0}`), JSON.stringify(state.deltas));
  const dash = await p.$eval('.lane g.changes rect.cleared.compare', (rect) => getComputedStyle(rect).strokeDasharray);
  assert.notEqual(dash, 'none');

  // Back on the pinned frame, P unpins: the outlines are this step's own again.
  await p.keyboard.press('Shift+F');
  assert.deepEqual(await framesShown(p), [failure]);
  await p.keyboard.press('p');
  assert.equal(await p.textContent('[role="status"]'), 'Run 1: no frame pinned.');
  await p.keyboard.press('.');
  state = await compareState(p);
  assert.equal(state.summary, null);
  assert.ok(!state.pinMark);
  assert.ok(state.outlines.every((name) => !name?.includes('compare')));
  await assertClean(open);
});

test('the pin button works as P does, and hover details say what a granule held at the pinned frame', { skip }, async () => {
  const open = await openPage(browser, page, { hash: `#frames=${failure}` });
  const { page: p } = open;
  await p.click('button.pin');
  assert.equal(await p.getAttribute('button.pin', 'aria-label'), `Unpin frame ${failure}`);
  await p.keyboard.press('End');
  // A granule S held at the failure and the cleaned-up bitmap0 no longer does at the end: the first one cleared since.
  const cleared = await p.$eval('.lane[data-role="named"] g.changes rect.cleared.compare', (rect) => ({ x: Number(rect.getAttribute('x')) + 2, y: Number(rect.getAttribute('y')) + 2 }));
  const body = (await p.locator('.lane[data-role="named"] .lane-body').boundingBox())!;
  await p.mouse.move(body.x + cleared.x + 2, body.y + cleared.y + 2);
  const lines = await p.$$eval('#tooltip div', (divs) => divs.map((div) => div.textContent));
  assert.ok(lines.includes(`at pinned frame ${failure}: dirty (differs)`), JSON.stringify(lines));
  await assertClean(open);
});

test('on a density strip the columns that differ from the pinned frame get a band in the comparison colour', { skip }, async () => {
  const big = bigDiskRun();
  const open = await openPage(browser, writePage([big]), { hash: '#frames=0' });
  const { page: p } = open;
  const bandColours = () =>
    p.$eval('.lane[data-role="source"] canvas', (canvas) => {
      const c = canvas as HTMLCanvasElement;
      const scale = c.width / c.clientWidth;
      // The comparison band covers rows 4 and 5, above the step band (0–3) and the bar (6 on).
      // Read through a copy: reading the page's own canvas twice makes Chromium warn.
      const copy = Object.assign(document.createElement('canvas'), { width: c.width, height: c.height }).getContext('2d', { willReadFrequently: true })!;
      copy.drawImage(c, 0, 0);
      const { data } = copy.getImageData(0, Math.floor(4.5 * scale), c.width, 1);
      const seen = new Set<string>();
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0) seen.add(`rgb(${data[i]}, ${data[i + 1]}, ${data[i + 2]})`);
      return [...seen];
    });
  // The stylesheet's comparison colour, painted on a canvas of our own.
  const compareColour = await p.evaluate(() => {
    const context = document.createElement('canvas').getContext('2d', { willReadFrequently: true })!;
    context.fillStyle = getComputedStyle(document.documentElement).getPropertyValue('--lab-compare');
    context.fillRect(0, 0, 1, 1);
    const [r, g, b] = context.getImageData(0, 0, 1, 1).data;
    return `rgb(${r}, ${g}, ${b})`;
  });
  assert.notEqual(compareColour, 'rgb(0, 0, 0)', 'a colour the canvas could not parse would paint black');
  await p.keyboard.press('p');
  await p.keyboard.press('End');
  assert.match((await p.textContent('.compare-summary')) ?? '', new RegExp(`^frame 0 → ${big.frames.length - 1}: `));
  assert.deepEqual(await bandColours(), [compareColour]);
  await p.keyboard.press('p');
  assert.deepEqual(await bandColours(), [], 'pinned again at the last frame: nothing to compare, no band');
  await assertClean(open);
});

test('the page address keeps the pin: a pinned page reopened from its address compares with the same frame', { skip }, async () => {
  const open = await openPage(browser, page, { hash: `#frames=${failure}` });
  await open.page.keyboard.press('p');
  await open.page.keyboard.press('c');
  await open.page.keyboard.press('c');
  await open.page.waitForFunction((hash) => location.hash === hash, `#frames=${merged}&pins=${failure}`);
  const summary = (await compareState(open.page)).summary;
  await assertClean(open);

  const reopened = await openPage(browser, page, { hash: `#frames=${merged}&pins=${failure}` });
  assert.equal((await compareState(reopened.page)).summary, summary);
  await assertClean(reopened);
  // A pin the run does not have is ignored.
  const stray = await openPage(browser, page, { hash: `#frames=${merged}&pins=999999` });
  assert.equal((await compareState(stray.page)).summary, null);
  await assertClean(stray);
});
