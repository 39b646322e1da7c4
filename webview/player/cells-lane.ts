/**
 * A lane of at most MAX_CELL_GRANULES granules: one SVG rect per granule,
 * joined by granule so cells keep their elements and a change of fill can
 * transition. What the frame changed is outlined on top, row segment by row
 * segment: a solid outline where granules were set, a dashed one where they
 * were cleared, so the change reads without colour.
 */
import { range, type Selection } from 'd3';
import type { LaneGeometry } from '../geometry';
import type { CellLayout } from './layout';
import { writeStyle, type LaneContent } from './lane-content';
import { toCells, type ValueRun } from './ranges';

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

  svg.attr('width', layout.width).attr('height', layout.height).attr('aria-hidden', 'true').classed('absent', content.absent);
  svg
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
    .attr('height', size)
    .attr('class', cellClass);

  svg
    .selectAll<SVGGElement, null>('g.changes')
    .data([null])
    .join('g')
    .attr('class', 'changes')
    .selectAll<SVGRectElement, Segment>('rect')
    .data(segments(content.changed, layout), (segment) => segment.key)
    .join('rect')
    .attr('class', (segment) => `change ${segment.set ? 'set' : 'cleared'}`)
    .attr('x', (segment) => segment.x - 1)
    .attr('y', (segment) => segment.y - 1)
    .attr('width', (segment) => segment.width + 2)
    .attr('height', size + 2)
    .attr('rx', 1.5);

  const inside = (granule: number) => Math.min(Math.max(granule, 0), granules - 1);
  return {
    positions: granules,
    rowLength: columns,
    box: (granule) => ({ x: (granule % columns) * pitch, y: Math.floor(granule / columns) * pitch, width: size, height: size }),
    positionAt: (x, y) => {
      const column = Math.floor(x / pitch);
      const granule = Math.floor(y / pitch) * columns + column;
      return x >= 0 && y >= 0 && column < columns && granule < granules ? granule : undefined;
    },
    positionOf: inside,
    granuleAt: inside,
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
