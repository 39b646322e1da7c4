// Every example of examples/, exported as a page and opened in headless Chromium: it renders, steps to the end and back, and shows the engine's counts.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Timeline } from '../../src/engine/timeline/timeline';
import { skipWithout } from '../support/tools';
import { CHROMIUM, launch } from '../webview/harness';
import { framesShown, namedExampleRun, openPage, writePage } from './page';

const skip = skipWithout(existsSync(CHROMIUM), `Chromium (${CHROMIUM})`);
const names = readdirSync(resolve(__dirname, '../../../examples'))
  .filter((file) => file.endsWith('.bitmaplab.json'))
  .map((file) => file.replace(/\.bitmaplab\.json$/, ''))
  .sort();
let browser: Browser;

before(async () => {
  if (!skip) browser = await launch();
});
after(() => browser?.close());

/** The frame counter and each lane's name and counts: less to read than readRuns(), once per frame. */
const countsShown = (page: Page) =>
  page.$eval('.run', (run) => ({
    counter: run.querySelector('.counter')?.textContent,
    lanes: [...run.querySelectorAll('.lane')].map((lane) => ({ name: lane.querySelector('.lane-name')?.textContent, counts: lane.querySelector('.lane-counts')?.textContent })),
  }));

/** Granules set per lane name, at `frame`, for the lanes that one bitmap alone can be shown in. */
function engineCounts(timeline: Timeline, frame: number): Map<string, number> {
  const byLane = new Map<string, number[]>();
  for (const { meta, bits } of timeline.seek(frame).bitmaps.values()) {
    const lane = meta.role === 'successor' ? 'successor N' : meta.role === 'copy' ? 'copy bitmap C' : meta.name;
    if (lane === undefined) continue;
    let count = 0;
    for (const [start, end] of bits.extents()) count += end - start;
    byLane.set(lane, [...(byLane.get(lane) ?? []), count]);
  }
  return new Map([...byLane].filter(([, counts]) => counts.length === 1).map(([lane, [count]]) => [lane, count]));
}

for (const name of names) {
  test(`${name}: the exported page renders, steps through every frame and back, and counts as the engine`, { skip }, async () => {
    const run = namedExampleRun(name);
    const timeline = new Timeline(run.frames);
    const last = run.frames.length - 1;
    const open = await openPage(browser, writePage([run]));
    const { page } = open;
    // Without transitions: this test reads what each frame shows, not how it moves.
    await page.emulateMedia({ reducedMotion: 'reduce' });
    let compared = 0;
    for (let frame = 0; frame <= last; frame++) {
      if (frame > 0) await page.keyboard.press('.');
      const shown = await countsShown(page);
      assert.equal(shown.counter, `frame ${frame} / ${last} · step ${run.frames[frame].step}`);
      const expected = engineCounts(timeline, frame);
      for (const lane of shown.lanes) {
        const count = expected.get(lane.name ?? '');
        if (count === undefined || shown.lanes.filter((other) => other.name === lane.name).length > 1) continue;
        assert.equal(lane.counts?.match(/^([\d,]+) granules? dirty/)?.[1].replaceAll(',', ''), String(count), `frame ${frame}, lane ${lane.name}: ${lane.counts}`);
        compared++;
      }
    }
    assert.ok(compared > 0, 'no lane was compared with the engine');
    await page.keyboard.press('Home');
    assert.deepEqual(await framesShown(page), [0]);
    assert.deepEqual(open.problems, []);
    await page.close();
  });
}
