/**
 * The panel from the view model: a section per node, a lane per bitmap. Every
 * level is a keyed d3 join, so elements, focus and cursors survive updates.
 */
import { select, type BaseType, type EnterElement, type Selection } from 'd3';
import type { BitmapView } from '../src/protocol';
import { drawBadges, type Badge } from './badges';
import { drawCells } from './cells';
import { listen, place } from './cursor';
import { densityNote, drawDensity } from './density';
import { formatBytes, plural } from './format';
import type { LaneGeometry } from './geometry';
import type { LaneModel, NodeModel } from './model';

export interface Cursors {
  granuleOf(laneKey: string): number;
  moved(laneKey: string, granule: number): void;
}

export function render(root: HTMLElement, nodes: NodeModel[], cursors: Cursors): void {
  const page = select(root);
  page.select('p.waiting').remove();
  page
    .selectAll('div.empty')
    .data(nodes.length === 0 ? [null] : [])
    .join((enter) => {
      const empty = enter.append('div').attr('class', 'empty');
      empty.append('p').text('No block nodes in the playground yet. Add one with “Bitmap Lab: Run QMP Command in the Playground”, for example:');
      empty.append('pre').append('code').text(EXAMPLE);
      return empty;
    });

  const sections = page
    .selectAll<HTMLElement, NodeModel>('section.node')
    .data(nodes, (node) => node.node.nodeName)
    .join((enter) => {
      const section = enter.append('section').attr('class', 'node');
      const header = section.append('header').attr('class', 'node-header');
      header.append('h2').attr('class', 'node-name');
      header.append('span').attr('class', 'node-meta');
      section.append('div').attr('class', 'lanes');
      return section;
    })
    .order()
    .attr('aria-label', ({ node }) => `Block node ${node.nodeName}`);
  sections.select('.node-name').text(({ node }) => node.nodeName);
  sections
    .select('.node-meta')
    .text(({ node }) => `${node.driver} · ${formatBytes(node.length)} (${plural(node.length, 'byte')})`);

  const lanes = sections.select('.lanes');
  lanes
    .selectAll('p.no-bitmaps')
    .data(({ lanes }) => (lanes.length === 0 ? [null] : []))
    .join('p')
    .attr('class', 'no-bitmaps')
    .text('No dirty bitmaps on this node yet (block-dirty-bitmap-add makes one).');
  lanes
    .selectAll<HTMLDivElement, LaneModel>('div.lane')
    .data(({ lanes }) => lanes, (lane) => lane.key)
    .join(enterLane)
    .order()
    .each(function (lane) {
      updateLane(select(this), lane, cursors);
    });
}

const EXAMPLE = '{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n0", "size": 67108864}}';

function enterLane(enter: Selection<EnterElement, LaneModel, BaseType, unknown>) {
  const lane = enter.append('div').attr('class', 'lane');
  const header = lane.append('div').attr('class', 'lane-header');
  header.append('h3').attr('class', 'lane-name');
  header.append('ul').attr('class', 'badges').attr('aria-label', 'Flags');
  header.append('span').attr('class', 'lane-counts');
  const body = lane.append('div').attr('class', 'lane-body').attr('tabindex', 0).attr('role', 'slider');
  body.append('div').attr('class', 'cursor').attr('aria-hidden', 'true');
  body.each(function () {
    listen(this);
  });
  lane.append('p').attr('class', 'lane-note');
  return lane;
}

function updateLane(lane: Selection<HTMLDivElement, LaneModel, null, undefined>, model: LaneModel, cursors: Cursors): void {
  const { bitmap } = model;
  lane.attr('data-kind', model.kind);
  lane.select('.lane-name').text(model.label).classed('anonymous', bitmap.name === undefined);
  drawBadges(lane.select('.badges'), badges(bitmap));
  lane.select('.lane-counts').text(counts(model));

  const body = lane.select<HTMLDivElement>('.lane-body').attr('aria-label', `${model.label} on ${model.nodeName}`);
  const width = body.node()?.clientWidth ?? 0;
  const svg = body
    .selectAll<SVGSVGElement, LaneModel>('svg.cells')
    .data(model.kind === 'cells' ? [model] : [])
    .join((enter) => enter.insert('svg', '.cursor').attr('class', 'cells'));
  const canvas = body
    .selectAll<HTMLCanvasElement, LaneModel>('canvas.density')
    .data(model.kind === 'density' ? [model] : [])
    .join((enter) => enter.insert('canvas', '.cursor').attr('class', 'density'));
  const geometry: LaneGeometry =
    svg.size() > 0
      ? drawCells(select(svg.node() as SVGSVGElement), model, width)
      : drawDensity(canvas.node() as HTMLCanvasElement, model, width);
  place(body.node() as HTMLElement, geometry, cursors.granuleOf(model.key), (granule) => cursors.moved(model.key, granule));
  lane.select('.lane-note').text(model.kind === 'density' ? densityNote(model, geometry.positions) : '');
}

/** Every flag has a word and a glyph, so none relies on colour. */
function badges(bitmap: BitmapView): Badge[] {
  const list: Badge[] = [
    bitmap.recording
      ? { flag: 'recording', glyph: '●', meaning: 'Guest writes mark granules dirty' }
      : { flag: 'disabled', glyph: '○', meaning: 'Guest writes leave this bitmap as it is' },
  ];
  if (bitmap.busy) list.push({ flag: 'busy', glyph: '◆', meaning: 'In use by an operation such as a backup job; QMP commands on it fail' });
  if (bitmap.persistent) list.push({ flag: 'persistent', glyph: '▣', meaning: 'Stored in the image when the node closes' });
  if (bitmap.inconsistent) {
    list.push({ flag: 'inconsistent', glyph: '⚠', meaning: 'Not stored cleanly last time; it cannot be used, only removed' });
  }
  return list;
}

/** Dirty granules and bytes, what changed since the last snapshot, and the granularity. */
function counts(lane: LaneModel): string {
  const { bitmap, dirtyGranules, delta } = lane;
  const change = delta ? ` (${delta > 0 ? '+' : '−'}${Math.abs(delta).toLocaleString('en-US')})` : '';
  return (
    `${dirtyGranules.toLocaleString('en-US')}${change} of ${plural(lane.granules, 'granule')} dirty` +
    ` · ${formatBytes(bitmap.count)} · granularity ${formatBytes(bitmap.granularity)}`
  );
}

/** What the live region says after an update. */
export function summary(nodes: NodeModel[]): string {
  const lanes = nodes.flatMap((node) => node.lanes);
  const changed = lanes
    .filter((lane) => lane.delta)
    .map((lane) => `${lane.label} on ${lane.nodeName} now has ${plural(lane.dirtyGranules, 'dirty granule')}.`);
  return [`Playground updated: ${plural(nodes.length, 'node')}, ${plural(lanes.length, 'bitmap')}.`, ...changed].join(' ');
}
