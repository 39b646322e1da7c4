/**
 * A run's lanes at one frame: a keyed join of lanes (by role, so a lane keeps
 * its elements, focus and cursor across frames), each with its header, its
 * body drawn as cells or as a density strip, and a note.
 */
import { select, type BaseType, type EnterElement, type Selection } from 'd3';
import type { BitmapMeta, WriteRecord } from '../../src/engine/timeline/frame';
import { drawBadges, type Badge } from '../badges';
import { listen, place } from '../cursor';
import { formatBytes, hex, plural } from '../format';
import type { LaneGeometry } from '../geometry';
import { drawCells } from './cells-lane';
import { differenceText, type Comparison } from './compare';
import { drawDensity } from './density-lane';
import { absentNote, deltaText, granuleDetails, laneTitle } from './describe';
import { writeStyle, type LaneContent } from './lane-content';
import { cellLayout, MAX_CELL_GRANULES } from './layout';
import { countOf } from './ranges';
import type { FrameView, LaneState, RunModel } from './run-model';

/** Every flag has a word and a glyph, so none relies on colour. */
function badges(meta: BitmapMeta | undefined): Badge[] {
  if (!meta) return [];
  const list: Badge[] = [];
  if (meta.busy) list.push({ flag: 'busy', glyph: '⊘', meaning: 'In use by a backup job; QMP commands on it fail' });
  if (meta.role === 'sync') list.push({ flag: 'frozen', glyph: '◇', meaning: 'Frozen by the job: new writes go to its successor N' });
  else if (meta.recording && !meta.disabled) list.push({ flag: 'recording', glyph: '●', meaning: 'Guest writes mark granules dirty' });
  else list.push({ flag: 'disabled', glyph: '○', meaning: 'Guest writes leave this bitmap as it is' });
  if (meta.persistent) list.push({ flag: 'persistent', glyph: '▣', meaning: 'Stored in the image when the node closes' });
  if (meta.inconsistent) list.push({ flag: 'inconsistent', glyph: '⚠', meaning: 'Not stored cleanly; it can only be removed' });
  return list;
}

/** Narrower cell lanes still get a header wide enough for name and counts on one line. */
const MIN_HEADER_WIDTH = 520;

export interface LaneCursors {
  granuleOf(key: string): number;
  moved(key: string, granule: number): void;
}

export function drawLanes(
  root: HTMLElement,
  model: RunModel,
  view: FrameView,
  showOptional: boolean,
  comparison: Comparison | undefined,
  cursors: LaneCursors,
): void {
  const lanes = view.lanes.filter((lane) => !lane.spec.optional || showOptional);
  const width = root.clientWidth;
  select(root)
    .selectAll<HTMLDivElement, LaneState>('div.lane')
    .data(lanes, (lane) => lane.spec.key)
    .join(enterLane)
    .order()
    .each(function (lane) {
      updateLane(select(this), model, view, lane, width, comparison, cursors);
    });
}

function enterLane(enter: Selection<EnterElement, LaneState, HTMLElement, unknown>) {
  const lane = enter.append('div').attr('class', 'lane');
  const header = lane.append('div').attr('class', 'lane-header');
  header.append('span').attr('class', 'lane-symbol').attr('aria-hidden', 'true');
  header.append('h4').attr('class', 'lane-name');
  header.append('span').attr('class', 'lane-role');
  header.append('ul').attr('class', 'badges').attr('aria-label', 'Flags');
  header.append('span').attr('class', 'lane-counts');
  header.append('span').attr('class', 'lane-delta');
  const body = lane.append('div').attr('class', 'lane-body').attr('tabindex', 0).attr('role', 'slider');
  body.append('div').attr('class', 'cursor').attr('aria-hidden', 'true');
  body.each(function () {
    listen(this);
  });
  lane.append('p').attr('class', 'lane-note');
  return lane;
}

function updateLane(
  lane: Selection<HTMLDivElement, LaneState, BaseType, unknown>,
  model: RunModel,
  view: FrameView,
  state: LaneState,
  width: number,
  comparison: Comparison | undefined,
  cursors: LaneCursors,
): void {
  const { spec, meta } = state;
  const title = laneTitle(spec, meta, state);
  const isData = spec.role === 'source' || spec.role === 'target';
  const absent = !isData && !meta;
  const changed = view.changed.get(spec.key) ?? [];
  const compared = comparison?.lanes.get(spec.key);
  lane.attr('data-role', spec.role).attr('data-state', meta?.role === 'sync' ? 'sync' : null).classed('absent', absent);
  lane.select('.lane-symbol').text(title.symbol);
  lane.select('.lane-name').text(title.name);
  lane.select('.lane-role').text(title.role);
  drawBadges(lane.select('.badges'), badges(meta));
  lane.select('.lane-counts').text(countsText(state, absent));
  if (comparison) {
    const differs = compared?.differs ?? [];
    lane
      .select('.lane-delta')
      .classed('compare', true)
      .text(differs.length ? `vs ${comparison.from}: ${differenceText(differs)}` : `= ${comparison.from}`)
      .attr('title', `granules that differ from pinned frame ${comparison.from}: + now set or holding other data, − clear or without data now`);
  } else {
    lane.select('.lane-delta').classed('compare', false).text(deltaText(changed)).attr('title', changed.length ? 'granules set and cleared by this frame' : null);
  }

  const content: LaneContent = {
    granules: spec.granules,
    runs: state.runs,
    kind: isData ? 'data' : 'bitmap',
    inFlight: state.inFlight ?? [],
    changed,
    ...(compared && { compared: compared.differs }),
    absent,
    describe: (first, end) => granuleDetails(view, state, first, end, compared && { from: comparison!.from, lane: compared.pinned, differs: compared.differs }),
  };
  const body = lane.select<HTMLDivElement>('.lane-body').attr('aria-label', `${title.name}: ${title.role}`);
  const cells = spec.granules <= MAX_CELL_GRANULES;
  const svg = body
    .selectAll<SVGSVGElement, null>('svg.cells')
    .data(cells ? [null] : [])
    .join((enter) => enter.insert('svg', '.cursor').attr('class', 'cells'));
  const canvas = body
    .selectAll<HTMLCanvasElement, null>('canvas.density')
    .data(cells ? [] : [null])
    .join((enter) => enter.insert('canvas', '.cursor').attr('class', 'density'));
  const layout = cells ? cellLayout(spec.granules, width) : undefined;
  const geometry: LaneGeometry = layout ? drawCells(select(svg.node()!), content, layout) : drawDensity(canvas.node()!, content, width);
  // The header ends where the cells do, so counts sit right above the lane's last column.
  lane.style('max-width', layout ? `${Math.max(layout.width, MIN_HEADER_WIDTH)}px` : '');
  place(body.node()!, geometry, cursors.granuleOf(spec.key), (granule) => cursors.moved(spec.key, granule));
  drawNote(lane.select<HTMLParagraphElement>('.lane-note'), model, state, absent, cells, geometry);
}

function countsText(state: LaneState, absent: boolean): string {
  const { spec } = state;
  if (absent) return '';
  const count = countOf(state.runs);
  const size = formatBytes(count * spec.granularity);
  if (spec.role === 'source') return `${plural(count, 'granule')} written · ${size}`;
  if (spec.role === 'target') {
    const flight = countOf(state.inFlight ?? []);
    return `${plural(count, 'granule')} copied · ${size}${flight ? ` · ${flight} in flight` : ''}`;
  }
  return `${plural(count, 'granule')} dirty · ${formatBytes(state.meta?.count ?? 0)}`;
}

const writesOfRun = new WeakMap<RunModel, Map<string, WriteRecord[]>>();

/** Every numbered guest write on `node`, for its source lane's key to write colours. */
function guestWrites(model: RunModel, node: string): WriteRecord[] {
  let byNode = writesOfRun.get(model);
  if (!byNode) writesOfRun.set(model, (byNode = new Map()));
  let writes = byNode.get(node);
  if (!writes) {
    writes = model.frames.flatMap((frame) => frame.writes.filter((w) => w.kind === 'guest' && w.write > 0 && w.node === node));
    byNode.set(node, writes);
  }
  return writes;
}

/** Under the lane: why it is empty, which write each colour is, or the strip's scale. */
function drawNote(
  note: Selection<HTMLParagraphElement, LaneState, BaseType, unknown>,
  model: RunModel,
  state: LaneState,
  absent: boolean,
  cells: boolean,
  geometry: LaneGeometry,
): void {
  const { spec } = state;
  const writes = spec.role === 'source' ? guestWrites(model, spec.node) : [];
  // The scale is said once, under the source, which lanes of the same size line up with.
  const granule = formatBytes(spec.granularity);
  const aligned = model.lanes.every((other) => other.granules === spec.granules) ? '; every lane lines up with this one' : '';
  const scale =
    spec.role !== 'source'
      ? ''
      : cells
        ? `A cell is a granule of ${granule}, a row ${formatBytes(spec.granularity * geometry.rowLength)}${aligned}.`
        : `Each pixel column is about ${plural(Math.round(spec.granules / geometry.positions), 'granule')} of ${granule}; bar height is the share set${aligned}.`;
  const text = absent ? absentNote(spec) : spec.role === 'target' && !state.job ? `No backup job of ${spec.node} yet.` : scale;
  note.selectAll('span.text').data(text ? [text] : []).join('span').attr('class', 'text').text((t) => t);
  const items = note
    .selectAll<HTMLSpanElement, (typeof writes)[number]>('span.write')
    .data(writes, (w) => w.write)
    .join((enter) => {
      const item = enter.append('span').attr('class', 'write');
      item.append('svg').attr('class', 'swatch').attr('aria-hidden', 'true').attr('width', 12).attr('height', 12).append('rect');
      item.append('span');
      return item;
    });
  items.select('rect').attr('class', (w) => `cell on w${writeStyle(w.write)}`).attr('width', 12).attr('height', 12).attr('rx', 2);
  items.select('span').text((w) => `write #${w.write}: ${formatBytes(w.bytes)} at ${hex(w.offset)}`);
  note.classed('empty', !text && !writes.length);
}
