// The exported timeline page of the failed-incremental examples, in headless Chromium, opened from a file.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import type { Frame } from '../../src/engine/timeline/frame';
import { Timeline } from '../../src/engine/timeline/timeline';
import { skipWithout } from '../support/tools';
import { CHROMIUM, launch } from '../webview/harness';
import { bigDiskRun, exampleRun, framesShown, openPage, readRuns, writePage, type OpenPage } from './page';
import type { TimelineRun } from '../../src/cli/html-export';

const skip = skipWithout(existsSync(CHROMIUM), `Chromium (${CHROMIUM})`);
let browser: Browser;
let runs: Record<'on-success' | 'always', TimelineRun>;
let demo: string;

before(async () => {
  if (skip) return;
  browser = await launch();
  runs = { 'on-success': exampleRun('on-success'), always: exampleRun('always') };
  demo = writePage([runs['on-success'], runs.always], 'a failed incremental backup, on-success vs always');
});
after(() => browser?.close());

/** Nothing thrown, logged, requested or blocked. */
async function assertClean({ page, problems }: OpenPage): Promise<void> {
  assert.deepEqual(problems, []);
  await page.close();
}

// What the engine says, read straight from its Timeline, for the page to match.

const GRANULE = 65536;
const CLEANUPS = new Set(['abdicate', 'reclaim', 'merge-copy-bitmap']);
const cleanupFrames = (frames: Frame[]) => frames.filter((f) => f.cause.kind === 'trace' && CLEANUPS.has(f.cause.label)).map((f) => f.index);

/** Dirty granules of the union of the bitmaps with these roles, after frame `index`. */
function unionOf(frames: Frame[], index: number, roles: string[]): number {
  const union = new Set<number>();
  for (const { meta, bits } of new Timeline(frames).seek(index).bitmaps.values()) {
    if (!roles.includes(meta.role)) continue;
    for (const [start, end] of bits.extents()) for (let g = start; g < end; g++) union.add(g);
  }
  return union.size;
}

function bitmap0Granules(frames: Frame[], index: number): number {
  const bitmap = [...new Timeline(frames).seek(index).bitmaps.values()].find(({ meta }) => meta.name === 'bitmap0');
  return bitmap!.meta.count / bitmap!.meta.granularity;
}

const press = async (page: Page, ...keys: string[]) => {
  for (const key of keys) await page.keyboard.press(key);
};

const laneCounts = async (page: Page, run: number, name: string) =>
  (await readRuns(page))[run].lanes.find((lane) => lane.name === name)?.counts;

test('the page is one file with a hash-pinned CSP, the player inlined and the runs as JSON', { skip }, async () => {
  const html = readFileSync(demo, 'utf8');
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
  assert.match(csp ?? '', /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'$/);
  assert.equal((html.match(/<script>/g) ?? []).length, 1);
  assert.match(html, /<script type="application\/json" id="bitmap-lab-runs">\{"version":2,"runs":\[/);
  assert.doesNotMatch(html, /src=|href=|sourceMappingURL/);
});

test('each run gets labelled lanes: source, S, N, C, target, one cell per granule', { skip }, async () => {
  const open = await openPage(browser, demo);
  const shown = await readRuns(open.page);
  assert.equal(shown.length, 2);
  for (const [i, run] of shown.entries()) {
    assert.equal(run.counter, `frame 0 / ${[runs['on-success'], runs.always][i].frames.length - 1} · step 0`);
    assert.deepEqual(
      run.lanes.map((lane) => [lane.symbol, lane.name, lane.cells]),
      [
        ['src', 'source · drive0', 768],
        ['B', 'bitmap0', 768],
        ['N', 'successor N', 768],
        ['C', 'copy bitmap C', 768],
        ['tgt', 'target', 768],
      ],
    );
  }
  // The filter's bitmaps are there on demand.
  await open.page.check('.page-controls input[type="checkbox"]:not(#link-runs)');
  assert.deepEqual((await readRuns(open.page))[1].lanes.map((lane) => lane.symbol), ['src', 'B', 'N', 'C', 'D', 'A', 'tgt']);
  assert.deepEqual(
    await open.page.$$eval('.run h2', (titles) => titles.map((t) => t.textContent)),
    ['1A failed incremental backup, bitmap-mode on-success', '2A failed incremental backup, bitmap-mode always'],
  );
  await assertClean(open);
});

test('keys step both runs forward and back, to the ends and back to the start', { skip }, async () => {
  const open = await openPage(browser, demo);
  const { page } = open;
  await press(page, '.');
  assert.deepEqual(await framesShown(page), [1, 1]);
  await press(page, 'ArrowRight', 'ArrowRight');
  assert.deepEqual(await framesShown(page), [3, 3]);
  await press(page, 'ArrowLeft', ',');
  assert.deepEqual(await framesShown(page), [1, 1]);
  await press(page, 'End');
  assert.deepEqual(await framesShown(page), [runs['on-success'].frames.length - 1, runs.always.frames.length - 1]);
  await press(page, 'Home');
  assert.deepEqual(await framesShown(page), [0, 0]);
  // Unlinked, the keys drive only the active run.
  await press(page, 'l', '2', '.', '.');
  assert.deepEqual(await framesShown(page), [0, 2]);
  assert.equal(await page.textContent('[role="status"]'), `Run 2, frame 2 of ${runs.always.frames.length - 1}: command blockdev-add`);
  await assertClean(open);
});

test('the scrubber reaches the failure, then each cleanup operation with its formula; counts match the engine', { skip }, async () => {
  const open = await openPage(browser, demo);
  const { page } = open;
  const failed = runs.always.frames.findIndex((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR'));
  await press(page, 'f');
  assert.deepEqual(await framesShown(page), [failed, failed]);
  assert.match((await page.textContent('.run:nth-of-type(2) .failure-banner')) ?? '', /Failure at frame \d+ job inc: read error \(action report\)/);

  const [reclaim] = cleanupFrames(runs['on-success'].frames);
  const [abdicate, merge] = cleanupFrames(runs.always.frames);
  await press(page, 'c');
  assert.deepEqual(await framesShown(page), [reclaim, abdicate]);
  const cleanupCard = (run: number) =>
    page.$eval(`.run:nth-of-type(${run}) .card.cleanup`, (card) => ({
      headline: card.querySelector('.headline')?.textContent,
      operations: [...card.querySelectorAll('.op')].map((op) => [op.className, op.querySelector('.op-name')?.textContent, op.querySelector('.op-symbols')?.textContent]),
      outcome: [...card.querySelectorAll('.outcome div')].map((item) => item.textContent),
    }));

  // on-success: one operation, S ∪ N, the whole dirty area again.
  const sOrN = unionOf(runs['on-success'].frames, reclaim - 1, ['sync', 'successor']);
  assert.equal(bitmap0Granules(runs['on-success'].frames, reclaim), sOrN);
  assert.equal(await laneCounts(page, 0, 'bitmap0'), `${sOrN} granules dirty · 36.1 MiB`);
  assert.deepEqual(await cleanupCard(1), {
    headline: 'on-success, failed: bitmap0 := S ∪ N',
    operations: [['op now', '1 reclaim', 'bitmap0 := S ∪ N']],
    outcome: [
      `keptS ∪ N: ${sOrN} granules (36.1 MiB), what the next incremental backup copies`,
      `instead ofN ∪ C: ${unionOf(runs['on-success'].frames, reclaim - 1, ['successor', 'copy'])} granules (12.1 MiB), what always would have kept`,
    ],
  });

  // always: abdicate (bitmap0 := N), then merge C (bitmap0 := N ∪ C), each its own frame.
  assert.equal(await laneCounts(page, 1, 'bitmap0'), `1 granule dirty · 64 KiB`);
  assert.deepEqual((await cleanupCard(2)).operations, [
    ['op now', '1 abdicate', 'bitmap0 := N'],
    ['op upcoming', '2 merge C', 'bitmap0 := N ∪ C'],
  ]);
  await press(page, 'l', '2', 'c');
  assert.deepEqual(await framesShown(page), [reclaim, merge]);
  const nOrC = unionOf(runs.always.frames, abdicate - 1, ['successor', 'copy']);
  assert.equal(bitmap0Granules(runs.always.frames, merge), nOrC);
  assert.equal(await laneCounts(page, 1, 'bitmap0'), `${nOrC} granules dirty · 12.1 MiB`);
  assert.deepEqual(await cleanupCard(2), {
    headline: 'always, failed: bitmap0 := N ∪ C',
    operations: [
      ['op done', '1 abdicate', 'bitmap0 := N'],
      ['op now', '2 merge C', 'bitmap0 := N ∪ C'],
    ],
    outcome: [
      `keptN ∪ C: ${nOrC} granules (12.1 MiB), what the next incremental backup copies`,
      `instead ofS ∪ N: ${unionOf(runs.always.frames, abdicate - 1, ['sync', 'successor'])} granules (36.1 MiB), what on-success or never would have kept`,
    ],
  });
  // What changed is outlined: bitmap0 gained C's granules in this frame.
  const always = (await readRuns(page))[1];
  assert.equal(always.lanes.find((lane) => lane.name === 'bitmap0')?.delta, `+${nOrC - 1} −0`);
  await assertClean(open);
});

test('at the last frame each retry has copied what its cleanup kept: N ∪ C against S ∪ N', { skip }, async () => {
  const open = await openPage(browser, demo);
  const { page } = open;
  await press(page, 'End');
  for (const [run, mode, kept] of [[0, 'on-success', ['sync', 'successor']], [1, 'always', ['successor', 'copy']]] as const) {
    const frames = runs[mode].frames;
    const retry = frames.flatMap((f) => f.events).find((e) => e.event === 'BLOCK_JOB_COMPLETED' && e.data.device === 'retry')!;
    const expected = unionOf(frames, cleanupFrames(frames)[0] - 1, [...kept]);
    assert.equal(Number(retry.data.len) / GRANULE, expected);
    const lanes = (await readRuns(page))[run].lanes;
    assert.match(lanes.find((lane) => lane.symbol === 'tgt')!.counts ?? '', new RegExp(`^${expected} granules copied · `));
    // The engine has released every bitmap at quit: the page shows none.
    assert.equal(new Timeline(frames).seek(frames.length - 1).bitmaps.size, 0);
    assert.deepEqual(lanes.filter((lane) => lane.symbol !== 'src' && lane.symbol !== 'tgt').map((lane) => lane.counts), ['', '', '']);
  }
  await assertClean(open);
});

test('jumps: writes, job events, and back with Shift', { skip }, async () => {
  const open = await openPage(browser, demo);
  const { page } = open;
  const writes = runs.always.frames.filter((f) => f.writes.some((w) => w.kind === 'guest')).map((f) => f.index);
  assert.equal(writes.length, 2);
  await press(page, 'w');
  assert.deepEqual(await framesShown(page), [writes[0], writes[0]]);
  await press(page, 'w');
  assert.deepEqual(await framesShown(page), [writes[1], writes[1]]);
  await press(page, 'Shift+W');
  assert.deepEqual(await framesShown(page), [writes[0], writes[0]]);
  assert.match((await page.textContent('.run:nth-of-type(1) .event')) ?? '', /guest write #1, 36 MiB at 0x0 of drive0/);
  await press(page, 'j');
  assert.match((await page.textContent('.run:nth-of-type(1) .event')) ?? '', /job inc is now created/);
  await assertClean(open);
});

test('copies: a tick under the track for each, the event line says what reached which target, the job names both nodes', { skip }, async () => {
  const frames = runs.always.frames;
  const copies = frames.filter((f) => f.cause.kind === 'trace' && f.cause.label === 'copy');
  // The first copy inc made, of write #1, with the job's state of that frame.
  const copy = copies.find((f) => f.writes[0].node === 'inc1')!;
  const [record] = copy.writes;
  const job = copy.jobs.find((j) => j.id === 'inc')!;
  const open = await openPage(browser, demo, { hash: `#frames=0,${copy.index}` });
  const { page } = open;
  const ticks = await page.$$eval('.run:nth-of-type(2) .scrubber .marker.copy', (marks) => marks.length);
  assert.equal(ticks, copies.length);
  assert.equal(
    await page.textContent('.run:nth-of-type(2) .event .text'),
    `copied ${record.bytes / 1048576} MiB at 0x${record.offset.toString(16)} of ${job.source} to ${job.target}: data of guest write #${record.write}`,
  );
  assert.match((await page.textContent('.run:nth-of-type(2) .job-row .job-text')) ?? '', new RegExp(`^job inc · backup ${job.source} → ${job.target} · running · `));
  const target = (await readRuns(page))[1].lanes.find((lane) => lane.symbol === 'tgt')!;
  assert.equal(target.name, `${job.target}, target of job inc`);
  assert.equal(target.counts, `${job.current / GRANULE} granules copied · ${job.current / 1048576} MiB`);
  await assertClean(open);
});

test('buttons and the scrubber drive the runs too; play moves on and pause stops', { skip }, async () => {
  const open = await openPage(browser, demo);
  const { page } = open;
  await page.click('.run:nth-of-type(2) button.next-failure');
  const [failure] = await framesShown(page);
  assert.ok(failure > 0);
  const box = (await page.locator('.run:nth-of-type(1) .scrubber svg').boundingBox())!;
  await page.mouse.click(box.x + 10, box.y + box.height / 2);
  assert.deepEqual(await framesShown(page), [0, failure]);
  await page.selectOption('.speed select', '30');
  await page.click('.run:nth-of-type(1) button.play');
  await page.waitForFunction(() => Number(document.querySelector('.scrubber')?.getAttribute('aria-valuenow')) > 5);
  await press(page, 'Space');
  const paused = await framesShown(page);
  await page.waitForTimeout(200);
  assert.deepEqual(await framesShown(page), paused);
  // The address keeps the frames once stepping pauses, for a reload to come back to them.
  await page.waitForFunction((hash) => location.hash === hash, `#frames=${paused.join(',')}`);
  await assertClean(open);
});

test('hover and the lane cursor say which granule, which bytes and which bitmaps hold it', { skip }, async () => {
  const [abdicate] = cleanupFrames(runs.always.frames);
  const open = await openPage(browser, demo, { hash: `#frames=0,${abdicate - 1}` });
  const { page } = open;
  await page.hover('.run:nth-of-type(2) .lane[data-role="named"] g.cells rect:nth-child(385)');
  assert.deepEqual(await page.$$eval('#tooltip div', (lines) => lines.map((line) => line.textContent)), [
    'bitmap0 · granule 384 of 768',
    'bytes [0x1800000, 0x1810000) · 64 KiB',
    'dirty',
    'dirty in: bitmap0 (S), copy bitmap C',
  ]);
  await page.focus('.run:nth-of-type(2) .lane[data-role="target"] .lane-body');
  await press(page, 'End');
  assert.deepEqual(await framesShown(page), [0, abdicate - 1], 'End in a lane moves its cursor, not the frame');
  assert.deepEqual(await page.$$eval('#tooltip div', (lines) => lines.map((line) => line.textContent)), [
    'inc1, target of job inc · granule 767 of 768',
    'bytes [0x2ff0000, 0x3000000) · 64 KiB',
    'not copied',
    'dirty in no bitmap',
  ]);
  await assertClean(open);
});

test('narration keeps paragraphs, `code` and **bold**, and shows anything else as text', { skip }, async () => {
  const frames = runs.always.frames.map((frame) => ({
    ...frame,
    narration: 'First **bold** and `code`.\n\nSecond <img src="https://example.invalid/x.png"> <script>alert(1)</script>',
  }));
  const open = await openPage(browser, writePage([{ title: '<b>title</b>', description: '**described**', frames }]));
  const { page } = open;
  assert.equal(
    await page.$eval('.narration-text', (element) => element.innerHTML),
    '<p>First <strong>bold</strong> and <code>code</code>.</p><p>Second &lt;img src="https://example.invalid/x.png"&gt; &lt;script&gt;alert(1)&lt;/script&gt;</p>',
  );
  assert.equal(await page.$eval('.run h2', (h2) => h2.textContent), '1<b>title</b>');
  assert.equal(await page.$eval('.description', (d) => d.innerHTML), '<p><strong>described</strong></p>');
  await assertClean(open);
});

test('colours follow the browser scheme outside VS Code, and VS Code variables when they are set', { skip }, async () => {
  const background = (open: OpenPage) => open.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const dark = await openPage(browser, demo, { colorScheme: 'dark' });
  const light = await openPage(browser, demo, { colorScheme: 'light' });
  assert.equal(await background(dark), 'rgb(31, 31, 31)');
  assert.equal(await background(light), 'rgb(255, 255, 255)');
  await light.page.evaluate(() => document.documentElement.style.setProperty('--vscode-editor-background', '#002b36'));
  assert.equal(await background(light), 'rgb(0, 43, 54)');
  await assertClean(dark);
  await assertClean(light);
});

test('screenshots: the always failure and its cleanup, dark and light, side by side and stacked', { skip }, async () => {
  const [abdicate, merge] = cleanupFrames(runs.always.frames);
  const [reclaim] = cleanupFrames(runs['on-success'].frames);
  const failed = runs.always.frames.findIndex((f) => f.events.some((e) => e.event === 'BLOCK_JOB_ERROR'));
  const shots: Array<[string, 'dark' | 'light', number, string]> = [
    ['failure-dark', 'dark', 1400, `#frames=${failed},${failed}`],
    ['cleanup-dark', 'dark', 1400, `#frames=${reclaim},${merge}`],
    ['cleanup-light', 'light', 1400, `#frames=${reclaim},${merge}`],
    ['abdicate-narrow-light', 'light', 820, `#frames=${reclaim},${abdicate}`],
  ];
  for (const [name, colorScheme, width, hash] of shots) {
    const open = await openPage(browser, demo, { colorScheme, width, hash });
    await open.page.screenshot({ path: `/tmp/player-${name}.png`, fullPage: true });
    await assertClean(open);
  }
});

test('a disk of more than 4096 granules is drawn as density strips, one canvas per lane', { skip }, async () => {
  const big = bigDiskRun();
  const open = await openPage(browser, writePage([big]), { hash: `#frames=${big.frames.length - 1}` });
  const { page } = open;
  const [run] = await readRuns(page);
  assert.deepEqual(
    run.lanes.map((lane) => [lane.symbol, lane.cells, lane.canvas]),
    [['src', 0, 1], ['B', 0, 1], ['N', 0, 1], ['C', 0, 1], ['tgt', 0, 1]],
  );
  assert.match((await page.textContent('.lane[data-role="source"] .lane-note')) ?? '', /Each pixel column is about \d+ granules of 64 KiB/);
  // Painted, not blank: the source strip has the colour of write #1 where the disk was written.
  const painted = await page.$eval('.lane[data-role="source"] canvas', (canvas) => {
    const { data } = (canvas as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height);
    const colours = new Set<string>();
    for (let i = 0; i < data.length; i += 4) colours.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
    return colours.size;
  });
  assert.ok(painted >= 3, `only ${painted} colours on the source strip`);
  // The guest's write through the filter, while the job copies.
  await press(page, 'Shift+W');
  assert.match((await page.textContent('.event')) ?? '', /guest write #10, 64 KiB at 0x20000000 of disk/);
  await page.screenshot({ path: '/tmp/player-density-dark.png', fullPage: true });
  await assertClean(open);
});
