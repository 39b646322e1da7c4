/**
 * Where the scenario debugger can stop. The run is recorded whole before the
 * session starts, so stepping travels its timeline both ways. Each step of
 * the scenario gives a stop before it runs (the state after the step before,
 * as a debugger stops before a line) and one after each frame it made.
 */
import { findNodeAtLocation, parseTree } from 'jsonc-parser';
import type { ScenarioRun } from '../engine/scenario/runner';

export interface Position {
  /** The frame whose state is shown. */
  frame: number;
  /** The scenario step highlighted. */
  step: number;
  /** Before the step runs, or after one of its frames. */
  before: boolean;
}

/** The lines (1-based, first and last) each step spans in the file. */
export function stepLines(text: string): Array<[number, number]> {
  const tree = parseTree(text);
  const steps = tree && findNodeAtLocation(tree, ['steps']);
  const lineOf = lineIndex(text);
  return (steps?.children ?? []).map((node) => [lineOf(node.offset), lineOf(node.offset + node.length - 1)]);
}

function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** Every stop, in order, from the images opened. Frames after the last step (the final quit) belong to it. */
export function positions(run: ScenarioRun): Position[] {
  const all: Position[] = [];
  let previous = run.opened;
  run.steps.forEach((step, s) => {
    all.push({ frame: previous, step: s, before: true });
    const end = s === run.steps.length - 1 ? run.frames.length - 1 : step.frame;
    for (let frame = previous + 1; frame <= end; frame++) all.push({ frame, step: s, before: false });
    previous = Math.max(previous, step.frame);
  });
  return all;
}
