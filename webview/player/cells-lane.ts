/**
 * A lane of at most MAX_CELL_GRANULES granules: one SVG rect per granule,
 * joined by granule, so cells keep their elements from frame to frame. The
 * join runs when the layout changes; a step only rewrites the class of the
 * cells whose state changed, since setting every cell's attributes at every
 * step costs more than the rest of the frame. Fills transition only on steps
 * that change few cells: thousands of simultaneous CSS transitions take
 * Chromium hundreds of milliseconds per frame (bench/webview).
 *
 * What the frame changed is outlined on top, row segment by row segment: a
 * solid outline where granules were set, a dashed one where they were
 * cleared, so the change reads without colour. With a pinned frame the
 * outlines show where this frame differs from it instead, thicker and
 * dotted where cleared, so the two readings are not mistaken for each other.
 */
import { range, type Selection } from 'd3';
import { cellGrid, type LaneGeometry } from '../geometry';
import type { CellLayout } from './layout';
import { writeStyle, type LaneContent } from './lane-content';
import { countOf, toCells, type ValueRun } from './ranges';

/** Steps changing more cells than this swap fills at once. */
const MAX_TRANSITIONS = 256;

/** What a lane's SVG shows, so the next step touches only what differs. */
interface Drawn {
  layout: string;
  rects: SVGRectElement[];
  classes: string[];
}

const drawn = new WeakMap<SVGSVGElement, Drawn>();

interface Segment {
  key: string;
  x: number;
  y: number;
  width: number;
  set: boolean;
}

export function drawCells(svg: Selection<SVGSVGElement, unknown, null, undefined>, content: LaneContent, layout: CellLayout): LaneGeometry {
  const { granules } = content;
  const { columns, pitch, size } = layout;
  const cells = toCells(content.runs, granules);
  const flight = toCells(content.inFlight, granules);
  const cellClass = (granule: number) => {
    const data = (value: number) => (value === 0 ? 'old' : `w${writeStyle(value)}`);
    const inFlight = flight[granule] - 1;
    if (inFlight >= 0) return `cell flight ${data(inFlight)}`;
    const value = cells[granule] - 1;
    if (value < 0) return 'cell';
    return content.kind === 'bitmap' ? 'cell on' : `cell on ${data(value)}`;
  };

  svg
    .attr('width', layout.width)
    .attr('height', layout.height)
    .attr('aria-hidden', 'true')
    .classed('absent', content.absent)
    .classed('animate', countOf(content.changed) <= MAX_TRANSITIONS);
  const node = svg.node()!;
  const key = `${granules}/${columns}/${pitch}`;
  let state = drawn.get(node);
  if (state?.layout !== key) {
    const rects = svg
      .selectAll<SVGGElement, null>('g.cells')
      .data([null])
      .join('g')
      .attr('class', 'cells')
      .selectAll<SVGRectElement, number>('rect')
      .data(range(granules), (granule) => granule)
      .join('rect')
      .attr('x', (granule) => (granule % columns) * pitch)
      .attr('y', (granule) => Math.floor(granule / columns) * pitch)
      .attr('width', size)
      .attr('height', size);
    state = { layout: key, rects: rects.nodes(), classes: [] };
    drawn.set(node, state);
  }
  for (let granule = 0; granule < granules; granule++) {
    const name = cellClass(granule);
    if (state.classes[granule] === name) continue;
    state.classes[granule] = name;
    state.rects[granule].setAttribute('class', name);
  }

  const compare = content.compared ? ' compare' : '';
  svg
    .selectAll<SVGGElement, null>('g.changes')
    .data([null])
    .join('g')
    .attr('class', 'changes')
    .selectAll<SVGRectElement, Segment>('rect')
    .data(segments(content.compared ?? content.changed, layout), (segment) => segment.key)
    .join('rect')
    .attr('class', (segment) => `change ${segment.set ? 'set' : 'cleared'}${compare}`)
    .attr('x', (segment) => segment.x - 1)
    .attr('y', (segment) => segment.y - 1)
    .attr('width', (segment) => segment.width + 2)
    .attr('height', size + 2)
    .attr('rx', 1.5);

  return {
    ...cellGrid(granules, columns, pitch, size),
    describe: (granule) => content.describe(granule, granule + 1),
  };
}

/** Changed runs cut at row ends, as outline boxes. */
function segments(changed: readonly ValueRun[], { columns, pitch, size }: CellLayout): Segment[] {
  const out: Segment[] = [];
  for (const [start, end, value] of changed) {
    for (let first = start; first < end; ) {
      const row = Math.floor(first / columns);
      const last = Math.min(end, (row + 1) * columns);
      const x = (first % columns) * pitch;
      out.push({ key: `${first}-${last}-${value}`, x, y: row * pitch, width: (last - first - 1) * pitch + size, set: value === 1 });
      first = last;
    }
  }
  return out;
}
