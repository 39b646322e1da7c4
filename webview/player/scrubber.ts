/**
 * The timeline of one run: a track with the current frame, and the markers a
 * person jumps between, each kind with its own shape: jobs (named where they
 * start) on the top row, writes, failures and cleanups below them, copies as
 * ticks under the track. A pinned frame gets a dashed line across the track
 * and a pin head.
 * One tab stop, an ARIA slider; dragging or clicking seeks.
 */
import { symbol, symbolDiamond, symbolSquare, symbolTimes, symbolTriangle, type Selection } from 'd3';
import { GLYPHS } from './describe';
import type { Marker, MarkerKind } from './markers';

const HEIGHT = 58;
const PAD = 10;
const TRACK_Y = 40;
const ROW_Y: Record<MarkerKind, number> = { job: 9, write: 25, failure: 25, cleanup: 25, copy: 50 };
const SHAPES = { job: symbolTriangle, write: symbolSquare, failure: symbolTimes, cleanup: symbolDiamond };
const SIZE: Record<Exclude<MarkerKind, 'copy'>, number> = { job: 50, write: 40, failure: 70, cleanup: 70 };

export interface Scrubber {
  draw(index: number, width: number, pinned: number | undefined): void;
}

export function scrubber(
  container: Selection<HTMLElement, unknown, null, undefined>,
  frames: number,
  markers: readonly Marker[],
  seek: (index: number) => void,
  label: string,
): Scrubber {
  container
    .attr('role', 'slider')
    .attr('tabindex', 0)
    .attr('aria-label', label)
    .attr('aria-valuemin', 0)
    .attr('aria-valuemax', frames - 1);
  const svg = container.append('svg').attr('height', HEIGHT).attr('aria-hidden', 'true');
  svg.append('rect').attr('class', 'track').attr('y', TRACK_Y - 2).attr('height', 4).attr('rx', 2);
  svg.append('rect').attr('class', 'played').attr('y', TRACK_Y - 2).attr('height', 4).attr('rx', 2);
  const marks = svg.append('g').attr('class', 'marks');
  const pin = svg.append('g').attr('class', 'pin-mark');
  pin.append('title');
  pin.append('line').attr('y1', 2).attr('y2', HEIGHT - 2);
  pin.append('circle').attr('cy', 4).attr('r', 3.5);
  const handle = svg.append('g').attr('class', 'handle');
  handle.append('line').attr('y1', 2).attr('y2', HEIGHT - 2);
  handle.append('circle').attr('cy', TRACK_Y).attr('r', 6);

  let width = 0;
  const x = (frame: number) => PAD + (frames > 1 ? (frame / (frames - 1)) * (width - 2 * PAD) : 0);
  const frameAt = (clientX: number) => {
    const left = (svg.node() as SVGSVGElement).getBoundingClientRect().left;
    const ratio = (clientX - left - PAD) / Math.max(1, width - 2 * PAD);
    return Math.round(Math.min(1, Math.max(0, ratio)) * (frames - 1));
  };
  container.on('pointerdown', (event: PointerEvent) => {
    container.node()!.setPointerCapture(event.pointerId);
    seek(frameAt(event.clientX));
  });
  container.on('pointermove', (event: PointerEvent) => {
    if (container.node()!.hasPointerCapture(event.pointerId)) seek(frameAt(event.clientX));
  });

  return {
    draw(index, newWidth, pinned) {
      width = Math.max(2 * PAD + 1, newWidth);
      svg.attr('width', width);
      svg.select('.track').attr('x', PAD).attr('width', width - 2 * PAD);
      svg.select('.played').attr('x', PAD).attr('width', x(index) - PAD);
      const items = marks
        .selectAll<SVGGElement, Marker>('g.marker')
        .data(markers, (m) => `${m.kind}@${m.frame}`)
        .join((enter) => {
          const g = enter.append('g').attr('class', (m) => `marker ${m.kind}`);
          g.append('title').text((m) => `frame ${m.frame}: ${GLYPHS[m.kind]} ${m.label}`);
          g.filter((m) => m.kind === 'copy').append('line').attr('y1', -3).attr('y2', 3);
          g.filter((m) => m.kind !== 'copy')
            .append('path')
            .attr('d', (m) => symbol(SHAPES[m.kind as keyof typeof SHAPES], SIZE[m.kind as keyof typeof SIZE])()!);
          g.filter((m) => m.tag !== undefined).append('text').attr('x', 6).attr('dy', '0.35em').text((m) => m.tag!);
          return g;
        })
        .attr('transform', (m) => `translate(${x(m.frame)},${ROW_Y[m.kind]})`)
        .classed('past', (m) => m.frame <= index)
        .classed('current', (m) => m.frame === index);
      items.order();
      pin.attr('display', pinned === undefined ? 'none' : null);
      if (pinned !== undefined) pin.attr('transform', `translate(${x(pinned)},0)`).select('title').text(`frame ${pinned}, pinned to compare`);
      handle.attr('transform', `translate(${x(index)},0)`);
      container.attr('aria-valuenow', index);
    },
  };
}
