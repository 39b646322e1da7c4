/**
 * A scenario file as the differential runner takes it: its images opened as
 * at the start, then each step that sends QEMU something or waits for it.
 * Expectations and narration have no QMP of their own.
 */
import type { AdvanceSpec, ImageSpec, Scenario, StepSpec } from '../../src/engine/scenario/parse';
import { QEMU_IO_LINE, blockdevAddFor } from '../../src/engine/scenario/runner';
import type { Step } from './differential';

const openStep = (image: ImageSpec): Step => ({ execute: 'blockdev-add', arguments: blockdevAddFor(image, '@DIR@') });

/**
 * QEMU runs jobs in real time: an advance to an event or a job status is a
 * wait for that event there. The other goals (frames, progress, a bitmap's
 * change) name points QEMU cannot be stopped at.
 */
function advanceStep(advance: AdvanceSpec, index: number): Step {
  if (advance.event !== undefined) return { waitFor: advance.event, ...(advance.data && { data: advance.data }), advance: true };
  if (advance.status !== undefined) return { waitFor: 'JOB_STATUS_CHANGE', data: { id: advance.job, status: advance.status }, advance: true };
  throw new Error(`steps[${index}]: an advance by frames, progress or a bitmap's change runs only on the engine; QEMU cannot stop there`);
}

function toStep(step: StepSpec, index: number, images: ImageSpec[]): Step | undefined {
  if (step.qmp) return step.qmp.arguments ? { execute: step.qmp.execute, arguments: step.qmp.arguments } : { execute: step.qmp.execute };
  if (step.wait) return { waitFor: step.wait.event, ...(step.wait.data && { data: step.wait.data }) };
  if (step.advance) return advanceStep(step.advance, index);
  for (const kind of ['write', 'zero', 'discard', 'read'] as const) {
    const range = step[kind];
    if (range) return { io: QEMU_IO_LINE[kind](range), node: range.node };
  }
  if (step.open !== undefined) return openStep(images.find((image) => image.name === step.open)!);
  if (step.crash) return { crash: true };
  return undefined;
}

export function scenarioSteps(scenario: Scenario): Step[] {
  return [
    ...scenario.images.map(openStep),
    ...scenario.steps.map((step, index) => toStep(step, index, scenario.images)).filter((step): step is Step => step !== undefined),
  ];
}
