/**
 * One scenario file opened in Bitmap Lab: its run on the engine (images in a
 * temporary directory), its timeline, and the frame the user is looking at.
 * The tree view, the status bar and the panel all follow this.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseScenario, type Scenario } from '../engine/scenario/parse';
import { runScenario, type ScenarioRun } from '../engine/scenario/runner';
import type { Frame } from '../engine/timeline/frame';
import { Timeline, type FrameState } from '../engine/timeline/timeline';

/** Kinds of frames one can jump to. */
export type Landmark = 'failure' | 'cleanup' | 'write' | 'event';

const CLEANUP = new Set(['abdicate', 'reclaim', 'merge-copy-bitmap']);

export function isLandmark(frame: Frame, kind: Landmark): boolean {
  switch (kind) {
    case 'failure':
      return frame.events.some((e) => e.event === 'BLOCK_JOB_ERROR' || (e.event === 'BLOCK_JOB_COMPLETED' && 'error' in e.data));
    case 'cleanup':
      return frame.cause.kind === 'trace' && CLEANUP.has(frame.cause.label);
    case 'write':
      return frame.writes.some((write) => write.kind === 'guest');
    case 'event':
      return frame.events.length > 0;
  }
}

export class ScenarioSession implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  readonly timeline: Timeline;
  private current: number;

  private constructor(
    readonly uri: vscode.Uri,
    readonly scenario: Scenario,
    readonly run: ScenarioRun,
  ) {
    this.timeline = new Timeline(run.frames);
    this.current = 0;
  }

  /** Parses and runs the file; a syntax or schema error is thrown as ScenarioSyntaxError. */
  static open(uri: vscode.Uri, text: string): ScenarioSession {
    const scenario = parseScenario(text, uri.fsPath);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitmap-lab-session-'));
    try {
      return new ScenarioSession(uri, scenario, runScenario(scenario, dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  get frame(): number {
    return this.current;
  }

  get length(): number {
    return this.timeline.length;
  }

  state(): FrameState {
    return this.timeline.seek(this.current);
  }

  seek(index: number): void {
    const clamped = Math.max(0, Math.min(this.length - 1, index));
    if (clamped === this.current) return;
    this.current = clamped;
    this.changed.fire();
  }

  /** The next (or previous) frame of a kind, if there is one. */
  jump(kind: Landmark, direction: 1 | -1 = 1): boolean {
    for (let i = this.current + direction; i >= 0 && i < this.length; i += direction) {
      if (isLandmark(this.run.frames[i], kind)) {
        this.seek(i);
        return true;
      }
    }
    return false;
  }

  /** A rerun of the same file keeps the frame where it still exists. */
  keepFrameOf(previous: ScenarioSession): void {
    this.current = Math.min(previous.frame, this.length - 1);
  }

  dispose(): void {
    this.changed.dispose();
  }
}
