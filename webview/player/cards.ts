/**
 * The panels beside the lanes: the failure banner, the jobs, the cleanup as
 * its separate operations, and the narration. Each is a d3 join on a plain
 * element, redrawn from the frame on every step.
 */
import { select, type Selection } from 'd3';
import { formatBytes, plural } from '../format';
import type { Cleanup, CleanupOperation, Outcome } from './cleanup';
import { GLYPHS } from './describe';
import { nextMarker, type Marker } from './markers';
import { markdownParagraphs } from './narration';
import type { FrameView, RunModel } from './run-model';

type Part = Selection<HTMLElement, unknown, null, undefined>;

const granules = (count: number, bytes: number) => `${plural(count, 'granule')} (${formatBytes(bytes)})`;

/** The latest failure, while its job or its cleanup is still on screen. */
function failureInForce(model: RunModel, view: FrameView): Marker | undefined {
  const failure = nextMarker(model.markers, 'failure', view.index + 1, -1);
  if (!failure) return undefined;
  const jobAlive = view.frame.jobs.some((job) => job.id === failure.job);
  const cleanup = model.cleanups.find((c) => c.from === failure.frame);
  return jobAlive || (cleanup && view.index <= cleanup.to) ? failure : undefined;
}

export function drawFailure(banner: Part, model: RunModel, view: FrameView): void {
  const failure = failureInForce(model, view);
  banner.attr('hidden', failure ? null : '');
  if (!failure) return;
  const error = view.frame.jobs.find((job) => job.id === failure.job)?.error;
  banner.selectAll('span.glyph').data([null]).join('span').attr('class', 'glyph').attr('aria-hidden', 'true').text(GLYPHS.failure);
  banner.selectAll('strong').data([null]).join('strong').text(`Failure at frame ${failure.frame}`);
  banner
    .selectAll('span.what')
    .data([null])
    .join('span')
    .attr('class', 'what')
    .text(` ${failure.label}${error ? `: ${error}` : ''}`);
}

export function drawJobs(list: Part, view: FrameView): void {
  const jobs = list
    .selectAll<HTMLDivElement, FrameView['frame']['jobs'][number]>('div.job-row')
    .data(view.frame.jobs, (job) => job.id)
    .join((enter) => {
      const job = enter.append('div').attr('class', 'job-row');
      job.append('span').attr('class', 'job-text');
      job.append('span').attr('class', 'job-bar').attr('aria-hidden', 'true').append('span').attr('class', 'job-done');
      return job;
    });
  jobs.classed('failed', (job) => job.error !== undefined);
  jobs.select('.job-text').text((job) => {
    const progress = job.total ? ` · ${formatBytes(job.current)} of ${formatBytes(job.total)}` : '';
    const nodes = job.source !== undefined && job.target !== undefined ? ` ${job.source} → ${job.target}` : '';
    return `job ${job.id} · ${job.type}${nodes} · ${job.status}${progress}${job.error ? ` · ${job.error}` : ''}`;
  });
  jobs.select<HTMLSpanElement>('.job-done').style('width', (job) => `${job.total ? (100 * job.current) / job.total : 0}%`);
  list.selectAll('p.none').data(view.frame.jobs.length ? [] : [null]).join('p').attr('class', 'none').text('No job.');
}

const STATE = (op: CleanupOperation, index: number) => (index < op.frame ? 'upcoming' : index === op.frame ? 'now' : 'done');

/** Every cleanup in force at this frame (a grouped transaction can have several), or a hint where to find one. */
export function drawCleanup(card: Part, model: RunModel, view: FrameView): void {
  const inForce = model.cleanups.filter((c) => view.index >= c.from && view.index <= c.to);
  card.classed('idle', !inForce.length);
  card.select('h3').text('Cleanup');
  card
    .selectAll('p.hint')
    .data(inForce.length ? [] : [hint(model, view.index)])
    .join('p')
    .attr('class', 'hint')
    .text((text) => text);
  card
    .selectAll<HTMLDivElement, Cleanup>('div.entry')
    .data(inForce, (c) => c.operations[0].frame)
    .join((enter) => {
      const entry = enter.append('div').attr('class', 'entry');
      entry.append('h4');
      entry.append('p').attr('class', 'headline').append('code');
      entry.append('ol').attr('class', 'operations');
      entry.append('dl').attr('class', 'outcome');
      return entry;
    })
    .each(function (cleanup) {
      drawEntry(select(this), cleanup, view.index);
    });
}

function drawEntry(entry: Selection<HTMLDivElement, Cleanup, null, undefined>, cleanup: Cleanup, index: number): void {
  entry.select('h4').text(`job ${cleanup.job} ${cleanup.failed ? 'failed' : 'succeeded'} · bitmap-mode ${cleanup.mode}`);
  entry.select('.headline code').text(cleanup.headline);
  const rows = entry
    .select('ol.operations')
    .selectAll<HTMLLIElement, CleanupOperation>('li')
    .data(cleanup.operations, (op) => op.frame)
    .join((enter) => {
      const li = enter.append('li');
      li.append('span').attr('class', 'op-glyph').attr('aria-hidden', 'true').text(GLYPHS.cleanup);
      li.append('span').attr('class', 'op-name');
      li.append('code').attr('class', 'op-symbols');
      li.append('span').attr('class', 'op-state');
      li.append('span').attr('class', 'op-words');
      return li;
    });
  rows.attr('class', (op) => `op ${STATE(op, index)}`).attr('aria-current', (op) => (op.frame === index ? 'step' : null));
  rows.select('.op-name').text((op, i) => `${i + 1} ${op.name}`);
  rows.select('.op-symbols').text((op) => op.symbols);
  rows.select('.op-state').text((op) => (index < op.frame ? `at frame ${op.frame}` : `→ ${granules(op.granules, op.bytes)}`));
  rows.select('.op-words').text((op) => op.words);

  const done = index >= cleanup.operations[cleanup.operations.length - 1].frame;
  const outcomes: Array<{ term: string; outcome: Outcome; note: string }> = [];
  if (done) {
    outcomes.push({ term: 'kept', outcome: cleanup.kept, note: 'what the next incremental backup copies' });
    if (cleanup.otherwise) outcomes.push({ term: 'instead of', outcome: cleanup.otherwise, note: `what ${cleanup.otherwise.modes} would have kept` });
  }
  const items = entry
    .select('dl.outcome')
    .selectAll<HTMLDivElement, (typeof outcomes)[number]>('div')
    .data(outcomes, (item) => item.term)
    .join((enter) => {
      const item = enter.append('div');
      item.append('dt');
      item.append('dd');
      return item;
    })
    .attr('class', (item) => (item.term === 'kept' ? 'kept' : 'otherwise'));
  items.select('dt').text((item) => item.term);
  items.select('dd').text(({ outcome, note }) => `${outcome.symbols}: ${granules(outcome.granules, outcome.bytes)}, ${note}`);
}

function hint(model: RunModel, index: number): string {
  if (!model.cleanups.length) return 'No backup job with a bitmap ends in this recording, so there is no bitmap cleanup.';
  const next = model.cleanups.find((c) => c.from > index);
  if (next) return `When a backup job with a bitmap ends, QEMU cleans up its bitmaps. Next: job ${next.job} at frame ${next.from} (press c).`;
  return 'The cleanups of this recording are behind this frame (Shift+C goes back to them).';
}

export function drawNarration(card: Part, run: RunModel, view: FrameView): void {
  const { frame } = view;
  card.select('h3').text(`Narration · step ${frame.step}`);
  const body = card.select<HTMLDivElement>('.narration-text');
  // Rebuilt only when the text changes, so a screen reader is not sent the same paragraphs again.
  if (body.attr('data-text') !== (frame.narration ?? '')) {
    body.attr('data-text', frame.narration ?? '');
    const paragraphs = frame.narration ? markdownParagraphs(frame.narration) : [];
    body.node()!.replaceChildren(...paragraphs);
    if (!paragraphs.length) body.append('p').attr('class', 'none').text('No narration for this step.');
  }
  card.select('.cause').text(`frame ${frame.index} of ${run.length - 1} · ${frame.cause.kind} ${frame.cause.label}`);
}

