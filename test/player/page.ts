/**
 * Exported timeline pages in headless Chromium: the examples run on the
 * engine, exported with renderTimelineHtml, written to a file and opened from
 * it as a person would open an attachment. Everything the page logs, throws,
 * requests or has blocked by its CSP is collected, so a test can require none.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { renderTimelineHtml, type TimelineRun } from '../../src/cli/html-export';
import { parseScenario } from '../../src/engine/scenario/parse';
import { runScenario } from '../../src/engine/scenario/runner';

const EXAMPLES = resolve(__dirname, '../../../examples');

export type Mode = 'on-success' | 'always';

function run(text: string, file: string): TimelineRun {
  const scenario = parseScenario(text, file);
  const result = runScenario(scenario, mkdtempSync(join(tmpdir(), 'bitmap-lab-player-')));
  if (result.failures.length) throw new Error(`${file}: ${result.failures.join('; ')}`);
  return { title: scenario.title, ...(scenario.description !== undefined && { description: scenario.description }), frames: result.frames };
}

/** An example of examples/, by the name before .bitmaplab.json, run on the engine. */
export function namedExampleRun(name: string): TimelineRun {
  const file = join(EXAMPLES, `${name}.bitmaplab.json`);
  return run(readFileSync(file, 'utf8'), file);
}

/** One of the failed-incremental examples, run on the engine. */
export const exampleRun = (mode: Mode): TimelineRun => namedExampleRun(`failed-incremental-${mode}`);

/**
 * A 1 GiB raw disk (16,384 granules, too many for cells) with writes spread
 * over it, backed up incrementally while the guest writes through the filter.
 */
export function bigDiskRun(): TimelineRun {
  const writes = [0, 5, 97, 300, 301, 302, 640, 900, 1000].map((mib) => ({ write: { node: 'disk', offset: `${mib}M`, length: '2M', pattern: 7 } }));
  const scenario = {
    title: 'A 1 GiB disk',
    images: [
      { name: 'disk', format: 'raw', size: '1G' },
      { name: 'copy', format: 'raw', size: '1G' },
    ],
    steps: [
      { qmp: { execute: 'block-dirty-bitmap-add', arguments: { node: 'disk', name: 'b0' } } },
      ...writes,
      {
        qmp: {
          execute: 'blockdev-backup',
          arguments: { 'job-id': 'j', device: 'disk', target: 'copy', sync: 'bitmap', bitmap: 'b0', 'bitmap-mode': 'always', speed: 1, 'filter-node-name': 'cbw' },
        },
      },
      { write: { node: 'cbw', offset: '512M', length: '64k', pattern: 9 } },
      { qmp: { execute: 'block-job-set-speed', arguments: { device: 'j', speed: 0 } } },
      { wait: { event: 'BLOCK_JOB_COMPLETED' } },
    ],
  };
  return run(JSON.stringify(scenario), 'big-disk.bitmaplab.json');
}

export function writePage(runs: TimelineRun[], title?: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'bitmap-lab-export-')), 'timeline.html');
  writeFileSync(file, renderTimelineHtml(runs, title === undefined ? {} : { title }));
  return file;
}

export interface OpenPage {
  page: Page;
  /** Console errors and warnings, page errors, requests and CSP violations, in order. */
  problems: string[];
}

export async function openPage(browser: Browser, file: string, options: { colorScheme?: 'light' | 'dark'; width?: number; hash?: string } = {}): Promise<OpenPage> {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1400, height: 900 }, colorScheme: options.colorScheme ?? 'dark' });
  const url = pathToFileURL(file).href;
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (request.url().split('#')[0] !== url) problems.push(`request: ${request.url()}`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP blocked ${event.violatedDirective} ${event.blockedURI}`));
  });
  await page.goto(url + (options.hash ?? ''));
  await page.waitForSelector('.run .lane');
  return { page, problems };
}

/** What a reader sees of each run: the frame counter and every lane's name and counts. */
export function readRuns(page: Page) {
  return page.$$eval('.run', (runs) =>
    runs.map((run) => ({
      counter: run.querySelector('.counter')?.textContent,
      event: run.querySelector('.event .text')?.textContent,
      lanes: [...run.querySelectorAll('.lane')].map((lane) => ({
        name: lane.querySelector('.lane-name')?.textContent,
        symbol: lane.querySelector('.lane-symbol')?.textContent,
        counts: lane.querySelector('.lane-counts')?.textContent,
        delta: lane.querySelector('.lane-delta')?.textContent,
        cells: lane.querySelectorAll('g.cells rect').length,
        on: lane.querySelectorAll('g.cells rect.on').length,
        changes: lane.querySelectorAll('g.changes rect').length,
        canvas: lane.querySelectorAll('canvas').length,
      })),
    })),
  );
}

/** The frame each run shows, from its scrubber. */
export const framesShown = (page: Page) => page.$$eval('.scrubber', (scrubbers) => scrubbers.map((s) => Number(s.getAttribute('aria-valuenow'))));
