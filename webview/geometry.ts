/**
 * Where a lane's granules are on screen, for the cursor and the tooltip. A
 * cells lane has one position per granule; a density strip one per pixel
 * column, each standing for a run of granules.
 */
import { formatBytes, hex, plural } from './format';
import { columnOf, columnStart, type LaneModel } from './model';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LaneGeometry {
  positions: number;
  /** Positions per row: what ↑ and ↓ move by. */
  rowLength: number;
  /** In the lane body's own coordinates. */
  box(position: number): Box;
  positionAt(x: number, y: number): number | undefined;
  /** The cursor remembers a granule, which survives a resize; positions do not. */
  positionOf(granule: number): number;
  granuleAt(position: number): number;
  /** Tooltip lines; joined, they are also the screen reader's value text. */
  describe(position: number): string[];
}

/** A grid of square cells, one granule each, `columns` to a row, `pitch` apart. */
export function cellGrid(granules: number, columns: number, pitch: number, size: number): Omit<LaneGeometry, 'describe'> {
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
  };
}

/** ↑/↓ on a density strip move this many columns. */
const STRIP_ROW_LENGTH = 10;

/** A density strip `height` pixels high: one position per pixel column, each a run of the lane's granules. */
export function densityStrip(granules: number, columns: number, height: number): Omit<LaneGeometry, 'describe'> {
  const inside = (column: number) => Math.min(Math.max(column, 0), columns - 1);
  return {
    positions: columns,
    rowLength: STRIP_ROW_LENGTH,
    box: (column) => ({ x: column, y: 0, width: 1, height }),
    positionAt: (x, y) => (x >= 0 && x < columns && y >= 0 && y < height ? Math.floor(x) : undefined),
    positionOf: (granule) => inside(columnOf(granule, granules, columns)),
    granuleAt: (column) => columnStart(inside(column), granules, columns),
  };
}

/** The bytes that granules [first, end) cover, clipped to the bitmap's size as QEMU clips extents. */
export function byteRange(lane: LaneModel, first: number, end: number): string {
  const start = first * lane.bitmap.granularity;
  const stop = Math.min(end * lane.bitmap.granularity, lane.bitmap.size);
  return `bytes [${hex(start)}, ${hex(stop)}) · ${formatBytes(stop - start)}`;
}

export const granuleCount = (lane: LaneModel) => plural(lane.granules, 'granule');
