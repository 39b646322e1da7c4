/**
 * A lane of more than MAX_CELL_GRANULES granules: a canvas strip with one
 * pixel column per run of granules, as the playground draws big bitmaps (bar
 * as tall as the dirty share, a faint tint wherever any granule is dirty),
 * plus a band above the bar marking the columns this frame changed: solid
 * where granules were set, dotted where cleared; with a pinned frame, the
 * columns that differ from it, in the comparison's colour and a taller band.
 * Data lanes colour a column by the write that holds most of it.
 */
import { densityStrip, type LaneGeometry } from '../geometry';
import { columnCounts, columnOf, columnStart } from '../model';
import { writeStyle, type LaneContent } from './lane-content';
import type { ValueRun } from './ranges';

const BAND = 4;
/** The comparison's band covers the gap above the bar too, so it differs in shape as well as colour. */
const COMPARE_BAND = BAND + 2;
const BAR_TOP = BAND + 2;
const BAR = 30;
const DENSITY_HEIGHT = BAR_TOP + BAR;
/** Even one dirty granule in a column stays visible. */
const MIN_BAR = 2;
const TINT_ALPHA = 0.3;

/** columnCounts reads only a run's first two members, so value runs serve as they are, without a copy per extent. */
const pairs = (runs: readonly ValueRun[]) => runs as unknown as Array<[number, number]>;

/**
 * Theme colours by name, as the stylesheet resolved them: the canvas cannot
 * use CSS variables. Read once per theme, since reading computed style after
 * the step has changed the DOM forces a style pass in the middle of drawing.
 */
const colours = new Map<string, string>();

export function forgetThemeColours(): void {
  colours.clear();
}

export function drawDensity(canvas: HTMLCanvasElement, content: LaneContent, width: number): LaneGeometry {
  const { granules } = content;
  const columns = Math.max(1, Math.min(Math.floor(width), granules));
  const start = (column: number) => columnStart(column, granules, columns);
  const span = (column: number) => start(column + 1) - start(column);

  // Device pixels, so the strip stays sharp on HiDPI screens.
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(columns * scale);
  canvas.height = Math.round(DENSITY_HEIGHT * scale);
  canvas.style.width = `${columns}px`;
  canvas.style.height = `${DENSITY_HEIGHT}px`;
  canvas.setAttribute('aria-hidden', 'true');
  canvas.classList.toggle('absent', content.absent);
  const context = canvas.getContext('2d');
  if (context) {
    context.setTransform(scale, 0, 0, scale, 0, 0);
    context.clearRect(0, 0, columns, DENSITY_HEIGHT);
    // --lane-colour differs by lane, so it is cached per role.
    const colour = (name: string) => {
      const key = name === '--lane-colour' ? `${name}:${canvas.closest('.lane')?.getAttribute('data-role')}:${canvas.closest('.lane')?.getAttribute('data-state')}` : name;
      let value = colours.get(key);
      if (value === undefined) colours.set(key, (value = getComputedStyle(canvas).getPropertyValue(name).trim()));
      return value;
    };
    context.fillStyle = colour('--lab-clean');
    context.fillRect(0, BAR_TOP, columns, BAR);
    for (const { fill, counts } of layers(content, columns, colour)) paintBars(context, fill, counts, span, columns);
    if (content.compared) paintChanges(context, colour('--lab-compare'), content.compared, granules, columns, COMPARE_BAND);
    else paintChanges(context, colour('--lab-changed'), content.changed, granules, columns, BAND);
  }

  return {
    ...densityStrip(granules, columns, DENSITY_HEIGHT),
    describe: (column) => content.describe(start(column), start(column + 1)),
  };
}

/**
 * One layer per colour. A data column is drawn once, in the colour of the
 * write with most granules there, at the height of all its data.
 */
function layers(content: LaneContent, columns: number, colour: (name: string) => string): Array<{ fill: string; counts: Uint32Array }> {
  const { granules } = content;
  const all = columnCounts(pairs(content.runs), granules, columns);
  if (content.kind === 'bitmap') return [{ fill: colour('--lane-colour'), counts: all }];
  const values = [...new Set(content.runs.map(([, , value]) => value))];
  const perValue = values.map((value) => columnCounts(pairs(content.runs.filter((run) => run[2] === value)), granules, columns));
  return values.map((value, i) => {
    const counts = new Uint32Array(columns);
    for (let column = 0; column < columns; column++) {
      const top = perValue.reduce((best, candidate, j) => (candidate[column] > perValue[best][column] ? j : best), 0);
      if (top === i) counts[column] = all[column];
    }
    return { fill: colour(value === 0 ? '--lab-old-data' : `--lab-write-${writeStyle(value)}`), counts };
  });
}

function paintBars(context: CanvasRenderingContext2D, fill: string, counts: Uint32Array, span: (column: number) => number, columns: number): void {
  context.fillStyle = fill;
  for (let column = 0; column < columns; column++) {
    if (counts[column] === 0) continue;
    const bar = Math.max(MIN_BAR, Math.round((counts[column] / span(column)) * BAR));
    context.globalAlpha = TINT_ALPHA;
    context.fillRect(column, BAR_TOP, 1, BAR - bar);
    context.globalAlpha = 1;
    context.fillRect(column, BAR_TOP + BAR - bar, 1, bar);
  }
}

function paintChanges(context: CanvasRenderingContext2D, fill: string, changed: readonly ValueRun[], granules: number, columns: number, band: number): void {
  context.fillStyle = fill;
  for (const [first, end, value] of changed) {
    const from = columnOf(first, granules, columns);
    const to = columnOf(end - 1, granules, columns);
    for (let column = from; column <= to; column++) {
      // Dotted for cleared: every other pixel.
      if (value === 1 || column % 2 === 0) context.fillRect(column, 0, 1, band);
    }
  }
}
