/**
 * The generic job (job.c): the JobStatus state machine, the verb table, pause
 * and resume, cancel, and completion in a job transaction, with QEMU's events.
 * A job's work is a coroutine on the engine's scheduler; the driver (backup)
 * supplies it and the commit / abort / clean steps.
 */
import { strerror } from '../io-error';
import { genericError } from '../qmp-error';
import type { CoroutineBody, Scheduler, Wait } from '../scheduler';
import { Signal } from '../scheduler';
import { Progress } from '../block-copy';
import type { BlockNode } from '../block-node';

export type JobStatus =
  | 'undefined' | 'created' | 'running' | 'paused' | 'ready' | 'standby'
  | 'waiting' | 'pending' | 'aborting' | 'concluded' | 'null';
export type JobVerb = 'cancel' | 'pause' | 'resume' | 'set-speed' | 'complete' | 'finalize' | 'dismiss' | 'change';

const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  undefined: ['created'],
  created: ['running', 'aborting', 'null'],
  running: ['paused', 'ready', 'waiting', 'aborting'],
  paused: ['running'],
  ready: ['standby', 'waiting', 'aborting'],
  standby: ['ready'],
  waiting: ['pending', 'aborting'],
  pending: ['aborting', 'concluded'],
  aborting: ['aborting', 'concluded'],
  concluded: ['null'],
  null: [],
};

const VERBS: Record<JobVerb, readonly JobStatus[]> = {
  cancel: ['created', 'running', 'paused', 'ready', 'standby', 'waiting', 'pending'],
  pause: ['created', 'running', 'paused', 'ready', 'standby'],
  resume: ['created', 'running', 'paused', 'ready', 'standby'],
  'set-speed': ['created', 'running', 'paused', 'ready', 'standby'],
  change: ['created', 'running', 'paused', 'ready', 'standby'],
  complete: ['ready', 'standby'],
  finalize: ['pending'],
  dismiss: ['concluded'],
};

/** What a job tells the world: QMP events and its own steps, in order. */
export interface JobHost {
  scheduler: Scheduler;
  emit(event: string, data: Record<string, unknown>): void;
  addJob(job: Job): void;
  removeJob(job: Job): void;
}

/** Jobs that complete together (completion-mode grouped), or a job alone. */
export class JobTxn {
  readonly jobs: Job[] = [];
  aborting = false;
}

export abstract class Job {
  status: JobStatus = 'undefined';
  /** Jobs start paused; start() drops this to zero. */
  private pauseCount = 1;
  userPaused = false;
  /** Not sleeping or yielding: the job is doing something. */
  busy = false;
  paused = false;
  cancelled = false;
  /** 0, or a negative errno once the job failed or was cancelled. */
  ret = 0;
  errorText: string | undefined;
  readonly progress = new Progress();
  speed = 0;
  private started = false;
  /** The job's run() has returned and completion is underway (deferred_to_main_loop). */
  private deferred = false;
  /** Wakes the job from job_yield() or a sleep. */
  private readonly wakeUp = new Signal();

  constructor(
    readonly host: JobHost,
    readonly id: string,
    readonly type: string,
    readonly autoFinalize: boolean,
    readonly autoDismiss: boolean,
    public txn: JobTxn,
  ) {}

  /** job_create()'s end: the job joins its transaction and the job list, as `created`. Drivers call it once constructed. */
  protected register(): void {
    // QLIST_INSERT_HEAD: a transaction lists (and completes, finalises, aborts) its newest job first.
    this.txn.jobs.unshift(this);
    this.host.addJob(this);
    this.transition('created');
  }

  /** The nodes the job holds as its children (a drain below them pauses it). */
  abstract nodes(): BlockNode[];

  /** The driver's work; returns 0 or a negative errno. */
  protected abstract run(): Generator<Wait, number, void>;
  /** Success: the driver's commit (bitmap cleanup with ret 0). */
  protected commit(): void {}
  /** Failure or cancel: the driver's abort. */
  protected abort(): void {}
  /** Always, after commit or abort. */
  protected clean(): void {}
  /** The driver's part of a cancel (backup stops its copy call). */
  protected onCancel(): void {}
  /** The driver's part of a pause. */
  protected onPause(): void {}
  /** A new speed takes effect at once. */
  protected onSetSpeed(): void {}

  /** job_apply_verb(). */
  applyVerb(verb: JobVerb): void {
    if (VERBS[verb].includes(this.status)) return;
    throw genericError(`Job '${this.id}' in state '${this.status}' cannot accept command verb '${verb}'`);
  }

  protected transition(status: JobStatus): void {
    if (!TRANSITIONS[this.status].includes(status)) {
      throw new Error(`job ${this.id}: illegal transition ${this.status} -> ${status}`);
    }
    const changed = status !== this.status;
    this.status = status;
    if (changed) this.host.emit('JOB_STATUS_CHANGE', { id: this.id, status });
  }

  /** job_early_fail(): a job that could not be set up goes straight to null. */
  earlyFail(): void {
    this.txn.jobs.splice(this.txn.jobs.indexOf(this), 1);
    this.dismiss();
  }

  /** job_start(): a transaction commit or a plain command starts the job. */
  start(): void {
    this.started = true;
    this.pauseCount--;
    this.busy = true;
    this.paused = false;
    this.transition('running');
    this.host.scheduler.enter(`job ${this.id}`, this.entry());
  }

  /** job_co_entry(): a pause point first, then the driver's work. */
  private *entry(): CoroutineBody {
    yield* this.pausePoint();
    const ret = yield* this.run();
    this.busy = false;
    this.ret = ret;
    this.deferred = true;
    // job_exit() runs in the main loop.
    this.host.scheduler.schedule(`job ${this.id} exit`, () => this.completed());
  }

  get shouldPause(): boolean {
    return this.pauseCount > 0;
  }

  /** job_pause_point(): a pending pause takes effect here. */
  protected *pausePoint(): CoroutineBody {
    if (!this.shouldPause || this.cancelled) return;
    this.onPause();
    const resumeTo: JobStatus = this.status === 'ready' ? 'ready' : 'running';
    this.transition(this.status === 'ready' ? 'standby' : 'paused');
    this.paused = true;
    this.busy = false;
    while (this.shouldPause && !this.cancelled) yield { kind: 'signal', signal: this.wakeUp };
    this.paused = false;
    this.busy = true;
    this.transition(resumeTo);
  }

  /** job_yield(): wait to be entered again (by a callback, cancel or resume). */
  protected *yieldJob(): CoroutineBody {
    this.busy = false;
    if (!this.shouldPause) yield { kind: 'signal', signal: this.wakeUp };
    this.busy = true;
    yield* this.pausePoint();
  }

  /** job_enter(): wake a job that is not busy; outside a coroutine it runs at once. */
  enter(): void {
    if (!this.busy) this.wakeUp.fireNow(this.host.scheduler);
  }

  pause(): void {
    this.pauseCount++;
    if (!this.paused) this.enter();
  }

  resume(): void {
    if (this.pauseCount === 0) return;
    this.pauseCount--;
    if (this.pauseCount === 0) this.enter();
  }

  /** job_user_pause(). */
  userPause(): void {
    this.applyVerb('pause');
    if (this.userPaused) throw genericError('Job is already paused');
    this.userPaused = true;
    this.pause();
  }

  /** job_user_resume(). */
  userResume(): void {
    if (!this.userPaused || this.pauseCount <= 0) throw genericError("Can't resume a job that was not paused");
    this.applyVerb('resume');
    this.userPaused = false;
    this.resume();
  }

  setSpeed(speed: number): void {
    this.applyVerb('set-speed');
    this.speed = speed;
    this.onSetSpeed();
  }

  /** job_user_cancel() / job_cancel(): backup treats every cancel as forced. */
  userCancel(): void {
    this.applyVerb('cancel');
    this.cancel();
  }

  /** job_cancel_sync(): cancel, and run the scheduler until the job has concluded. */
  cancelSync(): void {
    const concluded = () => this.status === 'concluded' || this.status === 'null';
    if (concluded()) return;
    this.cancel();
    while (!concluded()) {
      if (!this.host.scheduler.step()) throw new Error(`job ${this.id} cannot conclude`);
    }
  }

  cancel(): void {
    if (this.status === 'concluded') {
      this.dismiss();
      return;
    }
    this.cancelAsync();
    if (!this.started) this.completed();
    else if (this.deferred) this.completedTxnAbort();
    else this.enter();
  }

  private cancelAsync(): void {
    this.onCancel();
    if (this.userPaused) {
      this.userPaused = false;
      this.pauseCount--;
    }
    this.cancelled = true;
    // A cancelled job leaves its pause at once.
    this.wakeUp.fire();
  }

  /** job_update_rc(). */
  private updateRc(): number {
    if (this.ret === 0 && this.cancelled) this.ret = -125;
    if (this.ret !== 0) {
      this.errorText ??= strerror(-this.ret);
      this.transition('aborting');
    }
    return this.ret;
  }

  /** job_completed(). */
  private completed(): void {
    if (this.updateRc() !== 0) this.completedTxnAbort();
    else this.completedTxnSuccess();
  }

  get isCompleted(): boolean {
    return ['waiting', 'pending', 'aborting', 'concluded', 'null'].includes(this.status);
  }

  private completedTxnSuccess(): void {
    this.transition('waiting');
    if (this.txn.jobs.some((job) => !job.isCompleted)) return;
    for (const job of this.txn.jobs) {
      job.transition('pending');
      if (!job.autoFinalize) job.host.emit('BLOCK_JOB_PENDING', { type: job.type, id: job.id });
    }
    if (this.txn.jobs.every((job) => job.autoFinalize)) this.doFinalize();
  }

  /** job_completed_txn_abort(): one failure takes the whole transaction down. */
  private completedTxnAbort(): void {
    const txn = this.txn;
    if (txn.aborting) return;
    txn.aborting = true;
    for (const other of txn.jobs) if (other !== this) other.cancelAsync();
    while (txn.jobs.length) {
      const other = txn.jobs[0];
      if (!other.isCompleted) other.finishSync();
      other.finalizeSingle();
    }
  }

  /** job_finish_sync(): run the scheduler until a cancelled job has completed. */
  private finishSync(): void {
    this.enter();
    while (!this.isCompleted) {
      if (!this.host.scheduler.step()) throw new Error(`job ${this.id} cannot finish`);
    }
  }

  /** job_finalize_single(). */
  private finalizeSingle(): void {
    if (this.updateRc() === 0) this.commit();
    else this.abort();
    this.clean();
    if (this.started) this.emitTerminalEvent();
    this.txn.jobs.splice(this.txn.jobs.indexOf(this), 1);
    this.transition('concluded');
    if (this.autoDismiss || !this.started) this.dismiss();
  }

  protected abstract emitTerminalEvent(): void;

  /** job_finalize() (QMP). */
  userFinalize(): void {
    this.applyVerb('finalize');
    this.doFinalize();
  }

  private doFinalize(): void {
    for (const job of [...this.txn.jobs]) job.finalizeSingle();
  }

  userDismiss(): void {
    this.applyVerb('dismiss');
    this.dismiss();
  }

  private dismiss(): void {
    this.transition('null');
    this.host.removeJob(this);
  }

  /** JobInfo of query-jobs. */
  info(): Record<string, unknown> {
    return {
      id: this.id,
      type: this.type,
      status: this.status,
      'current-progress': this.progress.current,
      'total-progress': this.progress.total,
      ...(this.ret !== 0 && this.errorText !== undefined && { error: this.errorText }),
    };
  }
}
