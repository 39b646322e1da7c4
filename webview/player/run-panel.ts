/**
 * One recorded run on the page: its title and description, transport and
 * jump buttons, the scrubber, what the current frame did, the lanes, and the
 * failure, job, cleanup and narration panels. The panel holds only view
 * state (frame, lane cursors); every command goes through the player, which
 * decides which runs it applies to.
 */
import { select, type Selection } from 'd3';
import { drawCleanup, drawFailure, drawJobs, drawNarration } from './cards';
import { compareFrames, comparisonText, type Comparison, type Pin } from './compare';
import { frameEvent, GLYPHS } from './describe';
import { drawLanes } from './lanes-view';
import type { MarkerKind } from './markers';
import { markdownParagraphs } from './narration';
import type { LaneState, RunModel } from './run-model';
import { scrubber, type Scrubber } from './scrubber';

export type Command =
  | { kind: 'step'; by: 1 | -1 }
  | { kind: 'edge'; to: 'first' | 'last' }
  | { kind: 'jump'; marker: MarkerKind; direction: 1 | -1 }
  | { kind: 'play' }
  | { kind: 'seek'; index: number }
  | { kind: 'pin' }
  | { kind: 'activate' };

type Part = Selection<HTMLElement, unknown, null, undefined>;

interface Button {
  id: string;
  /** An SVG path on a 16 × 16 grid: fonts do not all have ⏮ and ⏭. */
  icon: string;
  label: string;
  keys: string;
  command: Command;
}

const ICONS = {
  first: 'M3 3h2v10H3zM13 3v10L6 8z',
  back: 'M12 3v10L5 8z',
  play: 'M5 3v10l8-5z',
  pause: 'M4 3h3v10H4zM9 3h3v10H9z',
  forward: 'M4 3v10l7-5zM12 3h2v10h-2z',
  last: 'M3 3v10l7-5zM11 3h2v10h-2z',
  previous: 'M10 4v8L5 8z',
  next: 'M6 4v8l5-4z',
  pin: 'M6 2h4v1l-1 1v4l2 2v1H8.5v4h-1v-4H5v-1l2-2V4L6 3z',
};

const TRANSPORT: Button[] = [
  { id: 'first', icon: ICONS.first, label: 'First frame', keys: 'Home', command: { kind: 'edge', to: 'first' } },
  { id: 'back', icon: ICONS.back, label: 'Step back', keys: '← or ,', command: { kind: 'step', by: -1 } },
  { id: 'play', icon: ICONS.play, label: 'Play', keys: 'Space', command: { kind: 'play' } },
  { id: 'forward', icon: ICONS.forward, label: 'Step forward', keys: '→ or .', command: { kind: 'step', by: 1 } },
  { id: 'last', icon: ICONS.last, label: 'Last frame', keys: 'End', command: { kind: 'edge', to: 'last' } },
];

const JUMPS: Array<{ marker: MarkerKind; word: string; key: string }> = [
  { marker: 'failure', word: 'failure', key: 'F' },
  { marker: 'cleanup', word: 'cleanup', key: 'C' },
  { marker: 'write', word: 'write', key: 'W' },
  { marker: 'job', word: 'job event', key: 'J' },
];

/** The comparison over the lanes on screen. */
const summary = (comparison: Comparison, lanes: LaneState[], showOptional: boolean) =>
  comparisonText(comparison, lanes.filter((lane) => showOptional || !lane.spec.optional));

export class RunPanel {
  index = 0;
  readonly element: HTMLElement;
  private readonly cursors = new Map<string, number>();
  private readonly scrubber: Scrubber;
  private readonly parts: Record<'counter' | 'event' | 'compare' | 'failure' | 'jobs' | 'lanes' | 'cleanup' | 'narration', Part>;
  /** The frame the others are compared with, if the user pinned one. */
  private pin: Pin | undefined;

  constructor(
    parent: HTMLElement,
    readonly model: RunModel,
    readonly number: number,
    private readonly send: (command: Command, panel: RunPanel) => void,
  ) {
    const section = select(parent).append<HTMLElement>('section').attr('class', 'run').attr('aria-label', `Run ${number}: ${model.run.title}`);
    this.element = section.node()!;
    section.on('focusin pointerdown', () => send({ kind: 'activate' }, this));
    const add = (into: Part, tag: string, className: string) => into.append<HTMLElement>(tag).attr('class', className);

    const header = add(section, 'header', 'run-header');
    const title = header.append('h2');
    title.append('span').attr('class', 'run-number').text(`${number}`);
    title.append('span').text(model.run.title);
    const counter = add(header, 'span', 'counter');
    if (model.run.description) add(section, 'div', 'description').node()!.append(...markdownParagraphs(model.run.description));

    const toolbar = add(section, 'div', 'toolbar').attr('role', 'toolbar').attr('aria-label', `Playback of run ${number}`);
    const transport = add(toolbar, 'div', 'group transport');
    for (const button of TRANSPORT) this.button(transport, button);
    for (const jump of JUMPS) {
      const group = add(toolbar, 'div', `group jump jump-${jump.marker}`).attr('role', 'group').attr('aria-label', `Jump to a ${jump.word}`);
      group.append('span').attr('class', 'jump-label').attr('aria-hidden', 'true').text(`${GLYPHS[jump.marker]} ${jump.word}`);
      this.button(group, { id: `prev-${jump.marker}`, icon: ICONS.previous, label: `Previous ${jump.word}`, keys: `Shift+${jump.key}`, command: { kind: 'jump', marker: jump.marker, direction: -1 } });
      this.button(group, { id: `next-${jump.marker}`, icon: ICONS.next, label: `Next ${jump.word}`, keys: jump.key, command: { kind: 'jump', marker: jump.marker, direction: 1 } });
    }
    this.button(add(toolbar, 'div', 'group compare'), { id: 'pin', icon: ICONS.pin, label: 'Pin this frame to compare', keys: 'P', command: { kind: 'pin' } });

    this.scrubber = scrubber(add(section, 'div', 'scrubber'), model.length, model.markers, (index) => send({ kind: 'seek', index }, this), `Frame of run ${number}`);
    const event = add(section, 'p', 'event');
    event.append('span').attr('class', 'glyph').attr('aria-hidden', 'true');
    event.append('span').attr('class', 'text');
    const compare = add(section, 'p', 'compare-summary').attr('hidden', '');
    const failure = add(section, 'div', 'failure-banner').attr('hidden', '');

    const body = add(section, 'div', 'run-body');
    const lanes = add(body, 'div', 'lanes');
    const side = add(body, 'div', 'side');
    const jobs = add(side, 'div', 'card jobs');
    jobs.append('h3').text('Jobs');
    const cleanup = add(side, 'div', 'card cleanup').attr('role', 'region').attr('aria-label', `Cleanup, run ${number}`);
    cleanup.append('h3');
    const narration = add(side, 'div', 'card narration').attr('role', 'region').attr('aria-label', `Narration, run ${number}`);
    narration.append('h3');
    narration.append('div').attr('class', 'narration-text');
    narration.append('p').attr('class', 'cause');
    this.parts = { counter, event, compare, failure, jobs, lanes, cleanup, narration };
  }

  private button(parent: Part, { id, icon, label, keys, command }: Button): void {
    parent
      .append('button')
      .attr('type', 'button')
      .attr('class', `button ${id}`)
      .attr('aria-label', label)
      .attr('aria-keyshortcuts', keys.replace(/ or /g, ' ').replace('←', 'ArrowLeft').replace('→', 'ArrowRight'))
      .attr('title', `${label} (${keys})`)
      .on('click', () => this.send(command, this))
      .append('svg')
      .attr('viewBox', '0 0 16 16')
      .attr('width', 14)
      .attr('height', 14)
      .attr('aria-hidden', 'true')
      .append('path')
      .attr('d', icon);
  }

  get length(): number {
    return this.model.length;
  }

  /** Moves to `index` (clamped) and draws it. */
  show(index: number, showOptional: boolean): void {
    this.index = Math.min(Math.max(index, 0), this.length - 1);
    this.draw(showOptional);
  }

  /** Pins the frame shown, or unpins it when it is the pinned one. */
  togglePin(): void {
    if (this.pin?.index === this.index) this.pin = undefined;
    else this.pinAt(this.index);
  }

  /** Pins frame `index` (a page address may name one that is not shown). */
  pinAt(index: number): void {
    if (Number.isInteger(index) && index >= 0 && index < this.length) this.pin = { index, lanes: this.model.lanesAt(index) };
  }

  get pinned(): number | undefined {
    return this.pin?.index;
  }

  draw(showOptional: boolean): void {
    const { model, index, parts } = this;
    const view = model.view(index);
    const event = frameEvent(model, view);
    const comparison = this.comparison(view.lanes);
    parts.counter.text(`frame ${index} / ${this.length - 1} · step ${view.frame.step}`);
    parts.event.attr('class', `event kind-${event.kind}`);
    parts.event.select('.glyph').text(GLYPHS[event.kind]);
    parts.event.select('.text').text(event.text);
    this.drawPin(comparison, view.lanes, showOptional);
    this.scrubber.draw(index, parts.lanes.node()!.parentElement!.clientWidth, this.pin?.index);
    select(this.element).select('.scrubber').attr('aria-valuetext', `frame ${index} of ${this.length - 1}: ${event.text}`);
    drawFailure(parts.failure, model, view);
    drawJobs(parts.jobs, view);
    drawLanes(parts.lanes.node()!, model, view, showOptional, comparison, {
      granuleOf: (key) => this.cursors.get(key) ?? 0,
      moved: (key, granule) => this.cursors.set(key, granule),
    });
    drawCleanup(parts.cleanup, model, view);
    drawNarration(parts.narration, model, view);
  }

  private comparison(lanes: LaneState[]): Comparison | undefined {
    return this.pin && this.pin.index !== this.index ? compareFrames(this.pin, this.index, lanes) : undefined;
  }

  /** The pin button's state, and the comparison in words under the event line. */
  private drawPin(comparison: Comparison | undefined, lanes: LaneState[], showOptional: boolean): void {
    const pinnedHere = this.pin?.index === this.index;
    select(this.element)
      .select('button.pin')
      .attr('aria-pressed', String(pinnedHere))
      .attr('aria-label', pinnedHere ? `Unpin frame ${this.index}` : `Pin frame ${this.index} to compare`);
    const { compare } = this.parts;
    compare.attr('hidden', this.pin ? null : '');
    if (!this.pin) return;
    compare.text(comparison ? summary(comparison, lanes, showOptional) : `frame ${this.index} is pinned: step to another frame to compare with it`);
  }

  /** What the live region says about this run's frame, with the comparison when a frame is pinned. */
  announcement(showOptional: boolean): string {
    const view = this.model.view(this.index);
    const comparison = this.comparison(view.lanes);
    const compared = comparison ? ` Compared with the pinned ${summary(comparison, view.lanes, showOptional)}.` : '';
    return `Run ${this.number}, frame ${this.index} of ${this.length - 1}: ${frameEvent(this.model, view).text}${compared}`;
  }

  /** What the live region says when the pin moves. */
  pinAnnouncement(): string {
    return this.pin
      ? `Run ${this.number}: frame ${this.pin.index} pinned; other frames are compared with it.`
      : `Run ${this.number}: no frame pinned.`;
  }

  setPlaying(playing: boolean): void {
    const button = select(this.element).select('button.play').attr('aria-label', playing ? 'Pause' : 'Play').attr('aria-pressed', String(playing));
    button.select('path').attr('d', playing ? ICONS.pause : ICONS.play);
  }

  setActive(active: boolean): void {
    select(this.element).classed('active', active);
  }
}
