/**
 * A Debug Adapter Protocol session over a scenario's recorded timeline:
 * breakpoints on steps, stepping by step or by frame in both directions,
 * stops at failed expectations and job errors, "break on value change" on a
 * bitmap, and the frame's bitmaps, jobs and events as variables. It needs no
 * VS Code: the extension runs it inline, the tests drive it directly.
 */
import * as path from 'node:path';
import { Breakpoint, DebugSession, Handles, InitializedEvent, OutputEvent, Scope, Source, StackFrame, StoppedEvent, Thread } from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { Scenario } from '../engine/scenario/parse';
import type { ScenarioRun } from '../engine/scenario/runner';
import type { Frame } from '../engine/timeline/frame';
import { Timeline } from '../engine/timeline/timeline';
import { positions, stepLines, type Position } from './positions';
import { bitmapKey, scopes, type Variable } from './variables';

/** A scenario loaded for debugging: its text (for lines), parsed form and recorded run. */
export interface DebugTarget {
  file: string;
  text: string;
  scenario: Scenario;
  run: ScenarioRun;
}

export interface DebugHost {
  /** Parses and runs the scenario; throws with a readable message when it cannot. */
  load(file: string): Promise<DebugTarget>;
  /** The text of a file, for breakpoints set before the launch. */
  read(file: string): string;
  /** The debugger stopped at this frame (the panel follows). */
  show?(target: DebugTarget, frame: number): void;
}

export interface LaunchArguments extends DebugProtocol.LaunchRequestArguments {
  scenario: string;
  stopOnEntry?: boolean;
}

const THREAD = 1;
const FAILED_EXPECTATION = 'expectation';
const JOB_ERROR = 'job-error';

const jobFailed = (frame: Frame) =>
  frame.events.some((e) => e.event === 'BLOCK_JOB_ERROR' || (e.event === 'BLOCK_JOB_COMPLETED' && 'error' in e.data));

export class ScenarioDebugSession extends DebugSession {
  private target: DebugTarget | undefined;
  private timeline: Timeline | undefined;
  private stops: Position[] = [];
  /** The lines each step of the launched file spans, parsed once. */
  private lines: Array<[number, number]> = [];
  private cursor = 0;
  /** Steps with a breakpoint, per file (only the launched one is ever hit). */
  private readonly breakpoints = new Map<string, Set<number>>();
  private readonly exceptions = new Set<string>([FAILED_EXPECTATION]);
  private watched = new Set<string>();
  private readonly handles = new Handles<() => Variable[]>();
  private configured!: () => void;
  private readonly configurationDone = new Promise<void>((resolve) => (this.configured = resolve));

  constructor(private readonly host: DebugHost) {
    super();
  }

  protected override initializeRequest(response: DebugProtocol.InitializeResponse): void {
    response.body = {
      supportsConfigurationDoneRequest: true,
      supportsStepBack: true,
      supportsExceptionInfoRequest: true,
      supportsDataBreakpoints: true,
      exceptionBreakpointFilters: [
        { filter: FAILED_EXPECTATION, label: 'Failed expectations', default: true, description: "A step's expectation did not hold" },
        { filter: JOB_ERROR, label: 'Job errors', default: false, description: 'BLOCK_JOB_ERROR, or a job completed with an error' },
      ],
    };
    this.sendResponse(response);
    this.sendEvent(new InitializedEvent());
  }

  protected override configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.configured();
    this.sendResponse(response);
  }

  protected override async launchRequest(response: DebugProtocol.LaunchResponse, args: LaunchArguments): Promise<void> {
    if (typeof args.scenario !== 'string' || !args.scenario) {
      this.sendErrorResponse(response, 1, 'The launch configuration needs "scenario": the path of a *.bitmaplab.json file.');
      return;
    }
    try {
      this.target = await this.host.load(path.resolve(args.scenario));
    } catch (error) {
      this.sendErrorResponse(response, 2, `Cannot debug ${args.scenario}: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.timeline = new Timeline(this.target.run.frames);
    this.stops = positions(this.target.run);
    this.lines = stepLines(this.target.text);
    if (!this.stops.length) {
      this.sendErrorResponse(response, 3, `Cannot debug ${args.scenario}: ${this.target.run.failures.join('; ')}`);
      return;
    }
    this.sendResponse(response);
    await this.configurationDone;
    if (args.stopOnEntry ?? true) this.stopAt(0, 'entry');
    else this.forward(0);
  }

  protected override setBreakPointsRequest(response: DebugProtocol.SetBreakpointsResponse, args: DebugProtocol.SetBreakpointsArguments): void {
    const file = path.resolve(args.source.path ?? '');
    let lines: Array<[number, number]> = [];
    try {
      lines = this.target?.file === file ? this.lines : stepLines(this.host.read(file));
    } catch {
      // An unreadable file: every breakpoint stays unverified.
    }
    const steps = new Set<number>();
    response.body = {
      breakpoints: (args.breakpoints ?? []).map(({ line }) => {
        const step = lines.findIndex(([first, last]) => line >= first && line <= last);
        if (step < 0) return { verified: false, line, message: 'A breakpoint goes on a step of "steps".' };
        steps.add(step);
        return new Breakpoint(true, lines[step][0]);
      }),
    };
    this.breakpoints.set(file, steps);
    this.sendResponse(response);
  }

  protected override setExceptionBreakPointsRequest(response: DebugProtocol.SetExceptionBreakpointsResponse, args: DebugProtocol.SetExceptionBreakpointsArguments): void {
    this.exceptions.clear();
    for (const filter of args.filters) this.exceptions.add(filter);
    this.sendResponse(response);
  }

  protected override dataBreakpointInfoRequest(response: DebugProtocol.DataBreakpointInfoResponse, args: DebugProtocol.DataBreakpointInfoArguments): void {
    const bitmap = this.timeline && [...this.state().bitmaps.values()].find(({ meta }) => bitmapKey(meta) === args.name);
    response.body = bitmap
      ? { dataId: args.name, description: `${args.name} changes`, accessTypes: ['write'] }
      : { dataId: null, description: 'Only a bitmap can be watched' };
    this.sendResponse(response);
  }

  protected override setDataBreakpointsRequest(response: DebugProtocol.SetDataBreakpointsResponse, args: DebugProtocol.SetDataBreakpointsArguments): void {
    this.watched = new Set(args.breakpoints.map((breakpoint) => breakpoint.dataId));
    response.body = { breakpoints: args.breakpoints.map(() => ({ verified: true })) };
    this.sendResponse(response);
  }

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    response.body = { threads: [new Thread(THREAD, this.target?.scenario.title ?? 'scenario')] };
    this.sendResponse(response);
  }

  protected override stackTraceRequest(response: DebugProtocol.StackTraceResponse): void {
    const target = this.target!;
    const stop = this.stops[this.cursor];
    const step = target.run.steps[stop.step];
    const frame = target.run.frames[stop.frame];
    const name = stop.before ? `steps[${stop.step}] ${step.label} (next)` : `steps[${stop.step}] ${step.label} · frame ${frame.index}: ${frame.cause.label}`;
    const line = this.lines[stop.step]?.[0] ?? 1;
    response.body = { stackFrames: [new StackFrame(1, name, new Source(path.basename(target.file), target.file), line, 1)], totalFrames: 1 };
    this.sendResponse(response);
  }

  protected override scopesRequest(response: DebugProtocol.ScopesResponse): void {
    response.body = { scopes: scopes(this.state()).map(({ name, variables }) => new Scope(name, this.handles.create(variables), false)) };
    this.sendResponse(response);
  }

  protected override variablesRequest(response: DebugProtocol.VariablesResponse, args: DebugProtocol.VariablesArguments): void {
    const list = this.handles.get(args.variablesReference)?.() ?? [];
    response.body = {
      variables: list.map((v) => ({ name: v.name, value: v.value, variablesReference: v.children ? this.handles.create(v.children) : 0 })),
    };
    this.sendResponse(response);
  }

  protected override exceptionInfoRequest(response: DebugProtocol.ExceptionInfoResponse): void {
    const stop = this.stops[this.cursor];
    const failures = this.target!.run.steps[stop.step].failures;
    const frame = this.target!.run.frames[stop.frame];
    response.body = failures.length && this.lastOfStep(this.cursor)
      ? { exceptionId: FAILED_EXPECTATION, description: failures.join('\n'), breakMode: 'always' }
      : { exceptionId: JOB_ERROR, description: frame.events.map((e) => `${e.event} ${JSON.stringify(e.data)}`).join('\n'), breakMode: 'always' };
    this.sendResponse(response);
  }

  protected override continueRequest(response: DebugProtocol.ContinueResponse): void {
    this.sendResponse(response);
    this.forward(this.cursor);
  }

  protected override reverseContinueRequest(response: DebugProtocol.ReverseContinueResponse): void {
    this.sendResponse(response);
    for (let i = this.cursor - 1; i > 0; i--) {
      const reason = this.stopReason(i);
      if (reason) return this.stopAt(i, reason);
    }
    this.stopAt(0, 'entry');
  }

  /** The next step (the current one runs whole), as a debugger steps over a line. */
  protected override nextRequest(response: DebugProtocol.NextResponse): void {
    this.sendResponse(response);
    const next = this.stops.findIndex((stop, i) => i > this.cursor && stop.before);
    this.stopAt(next < 0 ? this.stops.length - 1 : next, 'step');
  }

  /** One frame on. */
  protected override stepInRequest(response: DebugProtocol.StepInResponse): void {
    this.sendResponse(response);
    this.stopAt(Math.min(this.cursor + 1, this.stops.length - 1), 'step');
  }

  /** To the end of the current step (its expectations checked), or over the next one from there. */
  protected override stepOutRequest(response: DebugProtocol.StepOutResponse): void {
    this.sendResponse(response);
    let i = this.cursor;
    if (this.lastOfStep(i)) i++;
    while (i < this.stops.length - 1 && !this.lastOfStep(i)) i++;
    this.stopAt(Math.min(i, this.stops.length - 1), 'step');
  }

  /** One frame back. */
  protected override stepBackRequest(response: DebugProtocol.StepBackResponse): void {
    this.sendResponse(response);
    this.stopAt(Math.max(this.cursor - 1, 0), 'step');
  }

  /** The timeline is recorded: it is always stopped somewhere. */
  protected override pauseRequest(response: DebugProtocol.PauseResponse): void {
    this.sendResponse(response);
    this.stopAt(this.cursor, 'pause');
  }

  protected override disconnectRequest(response: DebugProtocol.DisconnectResponse): void {
    this.sendResponse(response);
  }

  /** Runs on from `from` to the next breakpoint, exception or watched change; else to the end. */
  private forward(from: number): void {
    for (let i = from + 1; i < this.stops.length; i++) {
      const reason = this.stopReason(i);
      if (reason) return this.stopAt(i, reason);
    }
    const last = this.stops.length - 1;
    this.stopAt(last, 'end', 'End of the timeline: step back, reverse-continue, or restart');
  }

  /** Why a run forwards or backwards stops at stop `i`, if it does. */
  private stopReason(i: number): string | undefined {
    const stop = this.stops[i];
    const target = this.target!;
    if (stop.before) return this.breakpoints.get(target.file)?.has(stop.step) ? 'breakpoint' : undefined;
    const frame = target.run.frames[stop.frame];
    if (this.exceptions.has(FAILED_EXPECTATION) && this.lastOfStep(i) && target.run.steps[stop.step].failures.length) return 'exception';
    if (this.exceptions.has(JOB_ERROR) && jobFailed(frame)) return 'exception';
    if (this.watched.size && frame.bitmaps.some((change) => this.watched.has(bitmapKey((change.meta ?? change.before)!)))) return 'data breakpoint';
    return undefined;
  }

  private lastOfStep(i: number): boolean {
    const next = this.stops[i + 1];
    return !next || next.step !== this.stops[i].step;
  }

  private stopAt(i: number, reason: string, text?: string): void {
    const entering = this.stops[i].step !== this.stops[this.cursor]?.step || reason === 'entry';
    this.cursor = i;
    this.handles.reset();
    const stop = this.stops[i];
    const narration = this.target!.scenario.steps[stop.step]?.narration;
    if (entering && narration) this.sendEvent(new OutputEvent(`steps[${stop.step}]: ${narration}\n`, 'console'));
    this.host.show?.(this.target!, stop.frame);
    const event = new StoppedEvent(reason, THREAD, text) as DebugProtocol.StoppedEvent;
    if (reason === 'exception') event.body.text = this.target!.run.steps[stop.step].failures.join('; ') || 'job error';
    this.sendEvent(event);
  }

  private state() {
    return this.timeline!.seek(this.stops[this.cursor].frame);
  }
}
