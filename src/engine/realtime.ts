/**
 * Runs a scheduler against the wall clock, as QEMU's main loop runs its
 * timers and coroutines: virtual time follows real elapsed time, so a job
 * limited to `speed` bytes per second copies at that rate in real seconds,
 * and whatever falls due runs on the event loop in short slices.
 *
 * Only a live QMP endpoint uses this; the in-process monitor and the tests
 * step the scheduler themselves and stay deterministic.
 */
import type { Scheduler } from './scheduler';

/** The longest the driver runs tasks before it lets the event loop take input. */
const SLICE_MS = 10;

export class RealtimeDriver {
  private readonly started = process.hrtime.bigint();
  /** How far virtual time runs ahead of real time, after a task made the scheduler jump. */
  private lead = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;

  /**
   * `afterRun` hears about every slice of tasks run in the background (to
   * send their events); `onError` gets what a task threw, which would
   * otherwise end the process from a timer.
   */
  constructor(
    private readonly scheduler: Scheduler,
    private readonly hooks: { afterRun(): void; onError(error: unknown): void },
  ) {}

  /**
   * Runs everything due by now and moves the scheduler's clock to now, as
   * QEMU runs expired timers before it reads the next request.
   */
  catchUp(): void {
    this.runUntil(Infinity);
  }

  /** Call after anything that may have queued work (a command): arms the wake-up for the next task. */
  kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.immediate) return;
    const next = this.scheduler.peek();
    if (!next) return;
    const waitMs = (next.at - this.virtualNow()) / 1e6;
    if (waitMs <= 0) this.immediate = setImmediate(() => this.tick());
    else this.timer = setTimeout(() => this.tick(), Math.ceil(waitMs));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
  }

  private tick(): void {
    this.immediate = undefined;
    this.timer = undefined;
    try {
      this.runUntil(performance.now() + SLICE_MS);
    } catch (error) {
      this.hooks.onError(error);
    }
    this.hooks.afterRun();
    this.kick();
  }

  /** Runs due tasks in order until none is due or the deadline (performance.now() ms) passes. */
  private runUntil(deadline: number): void {
    const now = this.virtualNow();
    // Tasks run at the present, as QEMU's timers fire: never before their time, a little after it.
    // (A rate limit reading the clock at the very end of its slice would not start a new one.)
    this.scheduler.now = Math.max(this.scheduler.now, now);
    for (let next = this.scheduler.peek(); next && next.at <= now; next = this.scheduler.peek()) {
      this.scheduler.step();
      if (performance.now() > deadline) return;
    }
  }

  /** Real time elapsed in ns, never behind the scheduler (which may have jumped ahead to finish a job). */
  private virtualNow(): number {
    const elapsed = Number(process.hrtime.bigint() - this.started);
    if (this.scheduler.now > elapsed + this.lead) this.lead = this.scheduler.now - elapsed;
    return elapsed + this.lead;
  }
}
