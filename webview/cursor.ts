/**
 * Reading a lane granule by granule, by keyboard or pointer. Each lane body is
 * one tab stop (an ARIA slider over its positions) with a cursor; the shared
 * tooltip says what the cursor, or the pointer, is on.
 */
import type { LaneGeometry } from './geometry';

interface LaneCursor {
  geometry: LaneGeometry;
  granule: number;
  onMove(granule: number): void;
}

const cursors = new WeakMap<HTMLElement, LaneCursor>();
const tooltip = document.getElementById('tooltip') as HTMLElement;

/** ↑/↓ move by a row; Home/End go to the ends. */
const STEPS: Record<string, (geometry: LaneGeometry) => number> = {
  ArrowLeft: () => -1,
  ArrowRight: () => 1,
  ArrowUp: (geometry) => -geometry.rowLength,
  ArrowDown: (geometry) => geometry.rowLength,
  Home: () => -Infinity,
  End: () => Infinity,
};

/** Once, when the lane body is made. */
export function listen(body: HTMLElement): void {
  body.addEventListener('keydown', (event) => {
    const lane = cursors.get(body);
    if (!lane) return;
    if (event.key === 'Escape') {
      hideTooltip();
      return;
    }
    const step = STEPS[event.key];
    if (!step) return;
    event.preventDefault();
    const { geometry } = lane;
    const position = Math.min(Math.max(geometry.positionOf(lane.granule) + step(geometry), 0), geometry.positions - 1);
    moveTo(body, lane, geometry.granuleAt(position));
  });
  body.addEventListener('pointermove', (event) => {
    const position = positionUnder(body, event);
    if (position !== undefined) showTooltip(body, position);
    else if (document.activeElement !== body) hideTooltip();
  });
  body.addEventListener('pointerleave', () => (document.activeElement === body ? showCursorTooltip(body) : hideTooltip()));
  body.addEventListener('click', (event) => {
    const lane = cursors.get(body);
    const position = positionUnder(body, event);
    if (!lane || position === undefined) return;
    body.focus();
    moveTo(body, lane, lane.geometry.granuleAt(position));
  });
  body.addEventListener('focus', () => showCursorTooltip(body));
  body.addEventListener('blur', hideTooltip);
}

/** After every draw: the lane's new geometry, and the granule its cursor is on. */
export function place(body: HTMLElement, geometry: LaneGeometry, granule: number, onMove: (granule: number) => void): void {
  const lane = { geometry, granule: geometry.granuleAt(geometry.positionOf(granule)), onMove };
  cursors.set(body, lane);
  body.setAttribute('aria-valuemin', '0');
  body.setAttribute('aria-valuemax', String(geometry.positions - 1));
  show(body, lane);
}

function moveTo(body: HTMLElement, lane: LaneCursor, granule: number): void {
  lane.granule = granule;
  show(body, lane);
  lane.onMove(granule);
}

function show(body: HTMLElement, lane: LaneCursor): void {
  const position = lane.geometry.positionOf(lane.granule);
  const box = lane.geometry.box(position);
  const mark = body.querySelector<HTMLElement>('.cursor');
  if (mark) {
    mark.style.left = `${box.x}px`;
    mark.style.top = `${box.y}px`;
    mark.style.width = `${box.width}px`;
    mark.style.height = `${box.height}px`;
  }
  body.setAttribute('aria-valuenow', String(position));
  body.setAttribute('aria-valuetext', lane.geometry.describe(position).join('; '));
  if (document.activeElement === body) showTooltip(body, position);
}

function showCursorTooltip(body: HTMLElement): void {
  const lane = cursors.get(body);
  if (lane) showTooltip(body, lane.geometry.positionOf(lane.granule));
}

function positionUnder(body: HTMLElement, event: MouseEvent): number | undefined {
  const bounds = body.getBoundingClientRect();
  return cursors.get(body)?.geometry.positionAt(event.clientX - bounds.left, event.clientY - bounds.top);
}

const GAP = 6;

function showTooltip(body: HTMLElement, position: number): void {
  const lane = cursors.get(body);
  if (!lane) return;
  tooltip.replaceChildren(
    ...lane.geometry.describe(position).map((line) => Object.assign(document.createElement('div'), { textContent: line })),
  );
  tooltip.hidden = false;
  const box = lane.geometry.box(position);
  const bounds = body.getBoundingClientRect();
  const { width, height } = tooltip.getBoundingClientRect();
  const below = bounds.top + box.y + box.height + GAP;
  const top = below + height <= window.innerHeight ? below : bounds.top + box.y - height - GAP;
  const left = bounds.left + box.x + box.width / 2 - width / 2;
  tooltip.style.left = `${Math.max(GAP, Math.min(left, window.innerWidth - width - GAP))}px`;
  tooltip.style.top = `${Math.max(GAP, top)}px`;
}

export function hideTooltip(): void {
  tooltip.hidden = true;
}
