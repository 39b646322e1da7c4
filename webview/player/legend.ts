/**
 * The page's fixed parts: the SVG patterns that tell writes apart without
 * colour, the legend, the key list, and the comparison of the runs' cleanups.
 */
import type { Selection } from 'd3';
import { formatBytes, plural } from '../format';
import type { Cleanup } from './cleanup';
import { GLYPHS } from './describe';
import { WRITE_STYLES } from './lane-content';

type Part = Selection<HTMLElement, unknown, null, undefined>;

/**
 * Writes 1, 5 are solid; the others carry stripes, dots or bars, so two
 * writes differ in pattern as well as in colour. Cells use them as fills.
 */
export function writePatterns(root: Part): void {
  const defs = root.append('svg').attr('class', 'patterns').attr('aria-hidden', 'true').attr('width', 0).attr('height', 0).append('defs');
  for (let style = 1; style <= WRITE_STYLES; style++) {
    const pattern = defs
      .append('pattern')
      .attr('id', `lab-w${style}`)
      .attr('class', `w${style}`)
      .attr('width', 4)
      .attr('height', 4)
      .attr('patternUnits', 'userSpaceOnUse');
    pattern.append('rect').attr('class', 'pattern-fill').attr('width', 4).attr('height', 4);
    const mark = style % 4;
    if (mark === 2) pattern.append('path').attr('class', 'pattern-mark').attr('d', 'M-1,1 l2,-2 M0,4 l4,-4 M3,5 l2,-2');
    if (mark === 3) pattern.append('circle').attr('class', 'pattern-dot').attr('cx', 2).attr('cy', 2).attr('r', 0.9);
    if (mark === 0) pattern.append('path').attr('class', 'pattern-mark').attr('d', 'M0,2 h4');
  }
}

interface Entry {
  swatch: string;
  text: string;
}

const LEGEND: Array<{ title: string; entries: Entry[] }> = [
  {
    title: 'Bitmap lanes',
    entries: [
      { swatch: 'cell on lane-sync', text: 'S: the sync bitmap, frozen (busy) while its job runs' },
      { swatch: 'cell on lane-successor', text: 'N: the successor, guest writes during the job' },
      { swatch: 'cell on lane-copy', text: 'C: the copy bitmap, what the job has left to copy' },
      { swatch: 'cell on lane-named', text: 'a named bitmap outside a job' },
      { swatch: 'cell', text: 'clean granule (hollow)' },
    ],
  },
  {
    title: 'Data lanes',
    entries: [
      { swatch: 'cell on w1', text: 'data of guest write #1; each write has its own colour and pattern' },
      { swatch: 'cell on w2', text: 'data of guest write #2' },
      { swatch: 'cell on old', text: 'zeroes, or data older than the recording' },
      { swatch: 'cell flight w1', text: 'in flight: taken from C, not yet copied' },
    ],
  },
  {
    title: 'This frame',
    entries: [
      { swatch: 'change set', text: 'solid outline: granules set or written' },
      { swatch: 'change cleared', text: 'dashed outline: granules cleared' },
    ],
  },
  {
    title: 'Compared with a pinned frame (P)',
    entries: [
      { swatch: 'change set compare', text: 'thick solid outline: set, written or rewritten since the pinned frame' },
      { swatch: 'change cleared compare', text: 'thick dotted outline: clear or without data now, set or holding data then' },
    ],
  },
];

const MARKERS: Array<[keyof typeof GLYPHS, string]> = [
  ['failure', 'failure'],
  ['cleanup', 'cleanup operation'],
  ['job', 'job created or ended'],
  ['write', 'guest write'],
  ['copy', 'a copy to the backup target (ticks under the track)'],
];

export function legend(root: Part): void {
  const section = root.append('section').attr('class', 'legend').attr('aria-label', 'Legend');
  section.append('h2').text('Legend');
  const groups = section.append('div').attr('class', 'legend-groups');
  for (const group of LEGEND) {
    const list = groups.append('div').attr('class', 'legend-group');
    list.append('h3').text(group.title);
    const items = list.append('ul');
    for (const entry of group.entries) {
      const item = items.append('li');
      const svg = item.append('svg').attr('class', 'swatch').attr('aria-hidden', 'true').attr('width', 16).attr('height', 16);
      svg.append('rect').attr('class', entry.swatch).attr('x', 2).attr('y', 2).attr('width', 12).attr('height', 12).attr('rx', 2);
      item.append('span').text(entry.text);
    }
  }
  const markers = groups.append('div').attr('class', 'legend-group');
  markers.append('h3').text('Timeline markers');
  const items = markers.append('ul');
  for (const [kind, text] of MARKERS) {
    const item = items.append('li');
    item.append('span').attr('class', `marker-glyph ${kind}`).attr('aria-hidden', 'true').text(GLYPHS[kind]);
    item.append('span').text(text);
  }
}

export const KEYS: Array<[string, string]> = [
  ['← → or , .', 'step back / forward (in a lane, ← → move its cursor)'],
  ['Home End', 'first / last frame'],
  ['Space', 'play / pause'],
  ['[ ]', 'slower / faster'],
  ['F, Shift+F', 'next / previous failure'],
  ['C, Shift+C', 'next / previous cleanup operation'],
  ['W, Shift+W', 'next / previous guest write'],
  ['J, Shift+J', 'next / previous job event'],
  ['1 2 …', 'make run 1, 2 … the one the keys drive'],
  ['L', 'step the runs together, or one at a time'],
  ['P', 'pin this frame; other frames then show what differs from it (P again on it unpins)'],
  ['Tab', 'to a lane, then ← → ↑ ↓ for granule details'],
];

/** One line per run whose job failed: what its cleanup kept, against what the other mode would have. */
export function comparison(root: Part, runs: Array<{ number: number; cleanup: Cleanup | undefined }>, jump: (number: number) => void): void {
  const failed = runs.filter((run) => run.cleanup?.failed);
  if (failed.length < 2) return;
  const section = root.append('section').attr('class', 'comparison').attr('aria-label', 'What each run keeps after the failure');
  section.append('h2').text('After the failure, the bitmap keeps');
  const list = section.append('ul');
  for (const { number, cleanup } of failed) {
    const { kept, mode, bitmap } = cleanup!;
    const item = list.append('li');
    item
      .append('button')
      .attr('type', 'button')
      .attr('class', 'link')
      .attr('title', `Show run ${number} at its cleanup`)
      .text(`${number} · ${mode}`)
      .on('click', () => jump(number));
    item.append('code').text(`${bitmap} := ${kept.symbols}`);
    item.append('span').attr('class', 'amount').text(`${plural(kept.granules, 'granule')} · ${formatBytes(kept.bytes)}`);
    item.append('span').attr('class', 'bar').attr('aria-hidden', 'true').append('span').style('width', `${(100 * kept.granules) / Math.max(...failed.map((r) => r.cleanup!.kept.granules))}%`);
  }
  section.append('p').attr('class', 'note').text('That is what the retry has to copy.');
}
