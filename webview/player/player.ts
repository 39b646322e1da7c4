/**
 * The timeline player: one panel per recorded run, side by side when there
 * is room, driven by buttons, the scrubbers and the keyboard. Commands go to
 * the active run, or to every run when they step together (the default with
 * two runs, so `on-success` and `always` can be compared frame by frame).
 * The page address keeps each run's frame, so a reload comes back to it.
 */
import { interval, select, timeout, type Selection, type Timer } from 'd3';
import { hideTooltip } from '../cursor';
import { forgetThemeColours } from './density-lane';
import { comparison, KEYS, legend, writePatterns } from './legend';
import { nextMarker, type MarkerKind } from './markers';
import { RunModel } from './run-model';
import { RunPanel, type Command } from './run-panel';
import type { RecordedRun } from './runs-format';

/** Frames per second. */
const SPEEDS = [0.5, 1, 2, 4, 8, 16, 30];
const DEFAULT_SPEED = 8;
const SAVE_AFTER_MS = 300;

const JUMP_KEYS: Record<string, MarkerKind> = { f: 'failure', c: 'cleanup', w: 'write', j: 'job' };

export class Player {
  private readonly panels: RunPanel[];
  private active: RunPanel;
  private linked: boolean;
  private showOptional = false;
  private speed = DEFAULT_SPEED;
  private timer: Timer | undefined;
  /** The runs the timer moves. */
  private playing: RunPanel[] = [];
  private saving: Timer | undefined;
  private readonly announcer: HTMLElement;

  /** `onSeek` hears every frame shown, run by run (the VS Code host follows it); `onPin` every pin and unpin (the panel keeps it). */
  constructor(
    root: HTMLElement,
    runs: RecordedRun[],
    title: string,
    private readonly onSeek: (run: number, index: number) => void = () => {},
    private readonly onPin: (run: number, pinned: number | undefined) => void = () => {},
  ) {
    const page = select(root);
    writePatterns(page);
    const header = page.append<HTMLElement>('header').attr('class', 'page-header');
    header.append('h1').text('Bitmap Lab').append('span').attr('class', 'subtitle').text(` · ${title}`);
    const controls = header.append<HTMLElement>('div').attr('class', 'page-controls');
    this.linked = runs.length > 1;
    if (runs.length > 1) {
      this.checkbox(controls, 'Step the runs together (L)', this.linked, (on) => (this.linked = on)).attr('id', 'link-runs');
    }
    this.checkbox(controls, 'Copy-before-write bitmaps', false, (on) => {
      this.showOptional = on;
      this.drawAll();
    });
    const speed = controls.append('label').attr('class', 'speed');
    speed.append('span').text('Speed');
    speed
      .append('select')
      .attr('aria-keyshortcuts', '[ ]')
      .on('change', (event: Event) => this.setSpeed(Number((event.target as HTMLSelectElement).value)))
      .selectAll('option')
      .data(SPEEDS)
      .join('option')
      .attr('value', (s) => s)
      .property('selected', (s) => s === this.speed)
      .text((s) => `${s} frames/s`);
    const keysButton = controls.append('button').attr('type', 'button').attr('class', 'button keys').attr('aria-expanded', 'false').attr('aria-controls', 'keys-help').text('Keys');
    const help = page.append('section').attr('id', 'keys-help').attr('class', 'keys-help').attr('aria-label', 'Keyboard').attr('hidden', '');
    const list = help.append('dl');
    for (const [keys, what] of KEYS) {
      const row = list.append('div');
      row.append('dt').append('kbd').text(keys);
      row.append('dd').text(what);
    }
    keysButton.on('click', () => {
      const open = help.attr('hidden') !== null;
      help.attr('hidden', open ? null : '');
      keysButton.attr('aria-expanded', String(open));
    });

    this.announcer = page.append('div').attr('class', 'visually-hidden').attr('role', 'status').attr('aria-live', 'polite').node()!;
    const models = runs.map((run) => new RunModel(run));
    const failedCleanup = (model: RunModel) => model.cleanups.find((c) => c.failed);
    comparison(page, models.map((model, i) => ({ number: i + 1, cleanup: failedCleanup(model) })), (number) => {
      const panel = this.panels[number - 1];
      this.seek(panel, failedCleanup(panel.model)!.operations.at(-1)!.frame);
    });
    const container = page.append('main').attr('class', `runs count-${runs.length}`).node()!;
    this.panels = models.map((model, i) => new RunPanel(container, model, i + 1, (command, panel) => this.command(command, panel)));
    this.active = this.panels[0];
    this.active.setActive(true);
    legend(page);

    const saved = savedAddress();
    this.panels.forEach((panel, i) => {
      if (saved.pins[i] !== undefined) panel.pinAt(saved.pins[i]!);
      panel.show(saved.frames[i] ?? 0, this.showOptional);
    });
    document.addEventListener('keydown', (event) => this.key(event));
    this.watchLayoutAndTheme(root);
  }

  private checkbox(parent: Selection<HTMLElement, unknown, null, undefined>, text: string, checked: boolean, change: (on: boolean) => void) {
    const label = parent.append('label').attr('class', 'toggle');
    const input = label
      .append('input')
      .attr('type', 'checkbox')
      .property('checked', checked)
      .on('change', (event: Event) => change((event.target as HTMLInputElement).checked));
    label.append('span').text(text);
    return input;
  }

  /** The runs a command drives. */
  private targets(panel: RunPanel): RunPanel[] {
    return this.linked ? this.panels : [panel];
  }

  command(command: Command, panel: RunPanel): void {
    if (command.kind === 'activate') return this.activate(panel);
    this.activate(panel);
    if (command.kind === 'play') return this.togglePlay();
    if (command.kind === 'pin') return this.togglePins(panel);
    this.stop();
    if (command.kind === 'seek') return this.seek(panel, command.index);
    for (const target of this.targets(panel)) {
      const { index, length, model } = target;
      if (command.kind === 'step') this.seek(target, index + command.by);
      else if (command.kind === 'edge') this.seek(target, command.to === 'first' ? 0 : length - 1);
      else {
        const marker = nextMarker(model.markers, command.marker, index, command.direction);
        if (marker) this.seek(target, marker.frame);
      }
    }
  }

  /** Pins (or unpins) the frame each run the command drives shows, and redraws it compared. */
  private togglePins(panel: RunPanel): void {
    const targets = this.targets(panel);
    for (const target of targets) {
      target.togglePin();
      target.draw(this.showOptional);
    }
    this.announcer.textContent = targets.map((target) => target.pinAnnouncement()).join(' ');
    for (const target of targets) this.onPin(this.panels.indexOf(target), target.pinned);
    this.saveFrames();
  }

  /** Pins frame `index` of run `run` (0-based), as kept from before a reload. */
  pinAt(run: number, index: number): void {
    const panel = this.panels[run];
    if (!panel) return;
    panel.pinAt(index);
    panel.draw(this.showOptional);
  }

  /** The frame run `run` (0-based) shows. */
  frameOf(run: number): number | undefined {
    return this.panels[run]?.index;
  }

  /** Shows frame `index` of run `run` (0-based), as asked from outside the page. */
  seekTo(run: number, index: number): void {
    const panel = this.panels[run];
    if (panel && Number.isInteger(index) && index >= 0 && index < panel.length) this.seek(panel, index);
  }

  private seek(panel: RunPanel, index: number): void {
    if (index === panel.index && panel.element.querySelector('.lane')) return;
    panel.show(index, this.showOptional);
    this.onSeek(this.panels.indexOf(panel), panel.index);
    // Announce every manual step, but only marked frames while playing, or a screen reader would never catch up.
    if (!this.timer || panel.model.markers.some((m) => m.frame === panel.index && m.kind !== 'copy')) {
      this.announcer.textContent = panel.announcement(this.showOptional);
    }
    if (!this.timer) this.saveFrames();
  }

  /**
   * Into the page address, once stepping pauses: browsers throttle a page
   * that rewrites its address dozens of times a second.
   */
  private saveFrames(): void {
    this.saving?.stop();
    const pins = this.panels.some((p) => p.pinned !== undefined) ? `&pins=${this.panels.map((p) => p.pinned ?? '-').join(',')}` : '';
    this.saving = timeout(() => history.replaceState(null, '', `#frames=${this.panels.map((p) => p.index).join(',')}${pins}`), SAVE_AFTER_MS);
  }

  private activate(panel: RunPanel): void {
    if (panel === this.active) return;
    this.active.setActive(false);
    this.active = panel;
    panel.setActive(true);
  }

  private togglePlay(): void {
    if (this.timer) return this.stop();
    const targets = this.targets(this.active);
    // Playing from the end starts again from the beginning.
    if (targets.every((panel) => panel.index === panel.length - 1)) targets.forEach((panel) => this.seek(panel, 0));
    this.start(targets);
  }

  private start(targets: RunPanel[]): void {
    for (const panel of targets) panel.setPlaying(true);
    this.timer = interval(() => {
      const moving = targets.filter((panel) => panel.index < panel.length - 1);
      for (const panel of moving) this.seek(panel, panel.index + 1);
      if (moving.every((panel) => panel.index === panel.length - 1)) this.stop();
    }, 1000 / this.speed);
    this.playing = targets;
  }

  private stop(): void {
    if (!this.timer) return;
    this.timer.stop();
    this.timer = undefined;
    for (const panel of this.playing) panel.setPlaying(false);
    this.saveFrames();
  }

  private setSpeed(speed: number): void {
    this.speed = speed;
    select('.speed select').property('value', speed);
    if (this.timer) {
      const targets = this.playing;
      this.stop();
      this.start(targets);
    }
  }

  private key(event: KeyboardEvent): void {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target : document.body;
    if (target.closest('input, select, textarea')) return;
    const key = event.key;
    const panel = this.active;
    const run = (command: Command) => {
      event.preventDefault();
      this.command(command, panel);
    };
    const lower = key.toLowerCase();
    if (key === 'ArrowLeft' || key === ',') run({ kind: 'step', by: -1 });
    else if (key === 'ArrowRight' || key === '.') run({ kind: 'step', by: 1 });
    else if (key === 'Home') run({ kind: 'edge', to: 'first' });
    else if (key === 'End') run({ kind: 'edge', to: 'last' });
    else if (key === ' ' && !target.closest('button')) run({ kind: 'play' });
    else if (lower === 'p') run({ kind: 'pin' });
    else if (key === '[' || key === ']') {
      event.preventDefault();
      const at = SPEEDS.indexOf(this.speed) + (key === ']' ? 1 : -1);
      this.setSpeed(SPEEDS[Math.min(Math.max(at, 0), SPEEDS.length - 1)]);
    } else if (JUMP_KEYS[lower]) run({ kind: 'jump', marker: JUMP_KEYS[lower], direction: event.shiftKey ? -1 : 1 });
    else if (lower === 'l' && this.panels.length > 1) {
      event.preventDefault();
      this.linked = !this.linked;
      select('#link-runs').property('checked', this.linked);
    } else if (/^[1-9]$/.test(key) && this.panels[Number(key) - 1]) {
      event.preventDefault();
      this.activate(this.panels[Number(key) - 1]);
    }
  }

  private drawAll(): void {
    hideTooltip();
    forgetThemeColours();
    for (const panel of this.panels) panel.draw(this.showOptional);
  }

  /** Rows rewrap and strips resample with the width; canvases repaint with the theme. */
  private watchLayoutAndTheme(root: HTMLElement): void {
    let width = root.clientWidth;
    let pending = false;
    const redraw = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        this.drawAll();
      });
    };
    new ResizeObserver(() => {
      if (root.clientWidth === width) return;
      width = root.clientWidth;
      redraw();
    }).observe(root);
    new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
    new MutationObserver(redraw).observe(document.body, { attributes: true, attributeFilter: ['class'] });
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', redraw);
    window.addEventListener('scroll', hideTooltip, { passive: true });
  }
}

/** Each run's frame and pinned frame, from an address like `#frames=181,180&pins=174,-`. */
function savedAddress(): { frames: number[]; pins: Array<number | undefined> } {
  const frames = /frames=([\d,]+)/.exec(location.hash);
  const pins = /pins=([\d,-]+)/.exec(location.hash);
  return {
    frames: frames ? frames[1].split(',').map(Number) : [],
    pins: pins ? pins[1].split(',').map((pin) => (pin === '-' ? undefined : Number(pin))) : [],
  };
}
