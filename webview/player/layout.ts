/**
 * How a cell lane wraps its granules into rows. Rows hold a round number of
 * granules (a row of 96 × 64 KiB is 6 MiB), and every lane of the same size
 * gets the same layout, so a granule sits at the same place in each lane and
 * the eye can compare lanes straight down.
 */

/** Past this many granules a lane is a density canvas instead of one SVG cell per granule. */
export const MAX_CELL_GRANULES = 4096;

export interface CellLayout {
  columns: number;
  rows: number;
  /** Distance between cell origins, and the cell's own size. */
  pitch: number;
  size: number;
  width: number;
  height: number;
}

const COLUMNS = [256, 192, 128, 96, 64, 48, 32, 24, 16, 8, 4, 2, 1];
const MIN_PITCH = 4;
const MAX_PITCH = 14;
/** A lane taller than this pushes the narration and the other lanes out of view. */
const MAX_HEIGHT = 100;

export function cellLayout(granules: number, width: number): CellLayout {
  const options = COLUMNS.map((wanted) => {
    const columns = Math.max(1, Math.min(wanted, granules));
    const pitch = Math.min(MAX_PITCH, Math.floor(width / columns));
    const rows = Math.ceil(granules / columns);
    return { columns, rows, pitch, height: rows * pitch };
  }).filter((option) => option.pitch >= MIN_PITCH);
  if (!options.length) return finish({ columns: Math.max(1, Math.floor(width / MIN_PITCH)), pitch: MIN_PITCH }, granules);
  const fitting = options.filter((option) => option.height <= MAX_HEIGHT);
  const best = fitting.length
    ? fitting.reduce((a, b) => (b.pitch > a.pitch ? b : a))
    : options.reduce((a, b) => (b.height < a.height ? b : a));
  return finish(best, granules);
}

function finish({ columns, pitch }: { columns: number; pitch: number }, granules: number): CellLayout {
  const rows = Math.ceil(granules / columns);
  const gap = pitch >= 8 ? 2 : 1;
  return { columns, rows, pitch, size: pitch - gap, width: columns * pitch - gap, height: rows * pitch - gap };
}
