/**
 * A lane of more than MAX_CELL_GRANULES granules: a canvas strip with one
 * pixel column per run of granules, its bar as tall as the fraction of them
 * that is dirty, over a faint tint wherever any is, since a single dirty
 * granule still costs a backup a copy. Past a truncated snapshot's last
 * extent the strip is hatched, because nothing there is known.
 */
import { formatBytes, plural } from './format';
import { byteRange, densityStrip, granuleCount, type LaneGeometry } from './geometry';
import { columnCounts, columnOf, columnStart, type LaneModel } from './model';

const HEIGHT = 40;
/** Even one dirty granule in a column stays visible. */
const MIN_BAR = 2;
const TINT_ALPHA = 0.3;
const HATCH_SPACING = 6;

export function drawDensity(canvas: HTMLCanvasElement, lane: LaneModel, width: number): LaneGeometry {
  const { granules, knownGranules } = lane;
  const columns = Math.max(1, Math.min(Math.floor(width), granules));
  const counts = columnCounts(lane.runs, granules, columns);
  const start = (column: number) => columnStart(column, granules, columns);
  const span = (column: number) => start(column + 1) - start(column);
  const unknownFrom = knownGranules < granules ? columnOf(knownGranules, granules, columns) : columns;

  // Back the canvas with device pixels so the strip stays sharp on HiDPI screens.
  const scale = window.devicePixelRatio || 1;
  canvas.width = Math.round(columns * scale);
  canvas.height = Math.round(HEIGHT * scale);
  canvas.style.width = `${columns}px`;
  canvas.style.height = `${HEIGHT}px`;
  const context = canvas.getContext('2d');
  if (context) {
    context.setTransform(scale, 0, 0, scale, 0, 0);
    paint(context, themeColours(canvas), counts, span, columns, unknownFrom);
  }
  canvas.setAttribute('aria-hidden', 'true');

  return {
    ...densityStrip(granules, columns, HEIGHT),
    describe: (column) => {
      const first = start(column);
      const end = start(column + 1);
      const range = `granules ${first.toLocaleString('en-US')}–${(end - 1).toLocaleString('en-US')} of ${granuleCount(lane)}`;
      return [`${lane.label} · ${range}`, byteRange(lane, first, end), densityText(counts[column], span(column), first, end, lane)];
    },
  };
}

function densityText(dirty: number, span: number, first: number, end: number, lane: LaneModel): string {
  if (first >= lane.knownGranules) return 'not sent: past the truncated list of dirty ranges';
  const percent = Math.round((100 * dirty) / span);
  const text = `${dirty.toLocaleString('en-US')} of ${span.toLocaleString('en-US')} dirty (${percent}%)`;
  return end > lane.knownGranules ? `at least ${text}; the rest was not sent` : text;
}

/** A note under the strip: its scale, and what a truncated snapshot left out. */
export function densityNote(lane: LaneModel, columns: number): string {
  const perColumn = Math.round(lane.granules / columns);
  const scale =
    `Too many granules for cells: ${columns.toLocaleString('en-US')} columns of about ${plural(perColumn, 'granule')} ` +
    `(${formatBytes(perColumn * lane.bitmap.granularity)}) from 0 to ${formatBytes(lane.bitmap.size)}; ` +
    'bar height is the share that is dirty, the tint marks any dirty granule.';
  if (!lane.bitmap.truncated) return scale;
  const shown = lane.bitmap.extents.length.toLocaleString('en-US');
  return `${scale} Only the first ${shown} dirty ranges were sent; the hatched part is not known.`;
}

interface Colours {
  clean: string;
  dirty: string;
  unknown: string;
}

/** The canvas cannot use CSS variables, so it reads the theme's colours as the stylesheet resolved them. */
function themeColours(canvas: HTMLCanvasElement): Colours {
  const style = getComputedStyle(canvas);
  const colour = (name: string) => style.getPropertyValue(name).trim();
  return { clean: colour('--lab-clean'), dirty: colour('--lab-dirty'), unknown: colour('--lab-unknown') };
}

function paint(
  context: CanvasRenderingContext2D,
  colours: Colours,
  counts: Uint32Array,
  span: (column: number) => number,
  columns: number,
  unknownFrom: number,
): void {
  context.clearRect(0, 0, columns, HEIGHT);
  context.fillStyle = colours.clean;
  context.fillRect(0, 0, unknownFrom, HEIGHT);
  context.fillStyle = colours.dirty;
  for (let column = 0; column < unknownFrom; column++) {
    if (counts[column] === 0) continue;
    const bar = Math.max(MIN_BAR, Math.round((counts[column] / span(column)) * HEIGHT));
    context.globalAlpha = TINT_ALPHA;
    context.fillRect(column, 0, 1, HEIGHT - bar);
    context.globalAlpha = 1;
    context.fillRect(column, HEIGHT - bar, 1, bar);
  }
  if (unknownFrom >= columns) return;
  context.save();
  context.beginPath();
  context.rect(unknownFrom, 0, columns - unknownFrom, HEIGHT);
  context.clip();
  context.strokeStyle = colours.unknown;
  context.lineWidth = 1;
  context.beginPath();
  for (let x = unknownFrom - HEIGHT; x < columns; x += HATCH_SPACING) {
    context.moveTo(x, HEIGHT);
    context.lineTo(x + HEIGHT, 0);
  }
  context.stroke();
  context.restore();
}
