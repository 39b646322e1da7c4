/**
 * A lane of up to MAX_CELL_GRANULES granules: one SVG rect per granule,
 * wrapped into rows. The join is keyed by granule, so a cell keeps its element
 * across snapshots and a changed fill can transition.
 */
import { range, type Selection } from 'd3';
import { byteRange, cellGrid, granuleCount, type LaneGeometry } from './geometry';
import type { LaneModel } from './model';

/** Largest cells first; smaller ones only when the lane would grow taller than MAX_HEIGHT. */
const CELL_SIZES = [
  { pitch: 14, size: 12, radius: 2 },
  { pitch: 10, size: 8, radius: 1.5 },
  { pitch: 7, size: 5, radius: 1 },
];
const MAX_HEIGHT = 160;

export function drawCells(svg: Selection<SVGSVGElement, LaneModel, null, undefined>, lane: LaneModel, width: number): LaneGeometry {
  const { granules } = lane;
  const fits = ({ pitch }: { pitch: number }) => Math.ceil(granules / columnsFor(pitch, width)) * pitch <= MAX_HEIGHT;
  const { pitch, size, radius } = CELL_SIZES.find(fits) ?? CELL_SIZES[CELL_SIZES.length - 1];
  const columns = Math.min(granules, columnsFor(pitch, width));
  const rows = Math.ceil(granules / columns);
  svg
    .attr('width', Math.max(0, columns * pitch - (pitch - size)))
    .attr('height', Math.max(0, rows * pitch - (pitch - size)))
    .attr('aria-hidden', 'true');
  svg
    .selectAll<SVGRectElement, number>('rect.cell')
    .data(range(granules), (granule) => granule)
    .join((enter) => enter.append('rect').attr('class', 'cell'))
    .attr('x', (granule) => (granule % columns) * pitch)
    .attr('y', (granule) => Math.floor(granule / columns) * pitch)
    .attr('width', size)
    .attr('height', size)
    .attr('rx', radius)
    .classed('dirty', (granule) => lane.dirty[granule] === 1)
    .classed('changed', (granule) => lane.changed[granule] === 1);

  return {
    ...cellGrid(granules, columns, pitch, size),
    describe: (granule) => [
      `${lane.label} · granule ${granule.toLocaleString('en-US')} of ${granuleCount(lane)}`,
      byteRange(lane, granule, granule + 1),
      (lane.dirty[granule] ? 'dirty' : 'clean') + (lane.changed[granule] ? ', changed by the last command' : ''),
    ],
  };
}

const columnsFor = (pitch: number, width: number) => Math.max(1, Math.floor(width / pitch));
