/**
 * One deterministic scheduler with a virtual clock. Everything that happens
 * in the engine outside a QMP command (a job's coroutine, a copy task, a
 * wake-up after a rate-limit sleep) is a task queued here, so the same
 * inputs always give the same order of events.
 *
 * Coroutines are generators, as QEMU's are coroutines: they yield what they
 * wait for (a sleep, a signal, or just a turn) and the scheduler resumes them.
 */

export type Wait =
  /** Give other tasks a turn (qemu_coroutine_yield via aio_co_schedule). */
  | { kind: 'yield' }
  /** Sleep on the virtual clock, unless woken early. */
  | { kind: 'sleep'; ns: number }
  /** Wait until a signal fires. */
  | { kind: 'signal'; signal: Signal };

export type CoroutineBody = Generator<Wait, void, void>;

interface Task {
  at: number;
  seq: number;
  label: string;
  run: () => void;
  cancelled: boolean;
}

export class Scheduler {
  /** Virtual time in nanoseconds. */
  now = 0;
  /** Called after every task (the timeline cuts a frame there). */
  onStep: ((label: string) => void) | undefined;
  /** The coroutine running now, if any (qemu_in_coroutine()). */
  current: Coroutine | undefined;
  private seq = 0;
  private queue: Task[] = [];

  /** Queues `run` to happen `delay` ns from now; returns a way to cancel it. */
  schedule(label: string, run: () => void, delay = 0): () => void {
    const task: Task = { at: this.now + delay, seq: this.seq++, label, run, cancelled: false };
    // Keep the queue sorted by time, then by order of scheduling.
    let i = this.queue.length;
    while (i > 0 && (this.queue[i - 1].at > task.at || (this.queue[i - 1].at === task.at && this.queue[i - 1].seq > task.seq))) i--;
    this.queue.splice(i, 0, task);
    return () => {
      task.cancelled = true;
    };
  }

  /** Starts a coroutine; it first runs on its own turn, not inside the caller. */
  spawn(label: string, body: CoroutineBody): Coroutine {
    const coroutine = new Coroutine(this, label, body);
    coroutine.wake();
    return coroutine;
  }

  /** Starts a coroutine and runs it now until it first waits (qemu_coroutine_enter()). */
  enter(label: string, body: CoroutineBody): Coroutine {
    const coroutine = new Coroutine(this, label, body);
    coroutine.resume();
    return coroutine;
  }

  /** The label of the next task to run, if any. */
  peek(): { label: string; at: number } | undefined {
    this.dropCancelled();
    const task = this.queue[0];
    return task && { label: task.label, at: task.at };
  }

  /** Runs exactly one task, advancing the clock to it; false when none is queued. */
  step(): boolean {
    this.dropCancelled();
    const task = this.queue.shift();
    if (!task) return false;
    this.now = Math.max(this.now, task.at);
    task.run();
    this.onStep?.(task.label);
    return true;
  }

  /**
   * Runs everything that is due now, without advancing the clock: what is
   * left waits for time to pass (a rate-limited job sleeping) or for input.
   */
  settle(limit = 1_000_000): void {
    for (let n = 0; n < limit; n++) {
      this.dropCancelled();
      if (!this.queue.length || this.queue[0].at > this.now) return;
      this.step();
    }
    throw new Error(`scheduler did not settle after ${limit} tasks`);
  }

  private dropCancelled(): void {
    while (this.queue.length && this.queue[0].cancelled) this.queue.shift();
  }
}

/** A one-shot or repeated notification that coroutines can wait for. */
export class Signal {
  private waiters: Coroutine[] = [];

  wait(coroutine: Coroutine): void {
    this.waiters.push(coroutine);
  }

  /** Wakes every waiting coroutine (each on its own turn). */
  fire(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const coroutine of waiters) coroutine.wake();
  }

  /**
   * aio_co_wake() from outside any coroutine: the waiters run now, up to
   * their next wait; from inside one, they are queued as fire() does.
   */
  fireNow(scheduler: Scheduler): void {
    if (scheduler.current) {
      this.fire();
      return;
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const coroutine of waiters) coroutine.resume();
  }
}

export class Coroutine {
  private cancelSleep: (() => void) | undefined;
  private scheduled = false;
  done = false;
  /** Fires when the body returns. */
  readonly finished = new Signal();

  constructor(
    private readonly scheduler: Scheduler,
    readonly label: string,
    private readonly body: CoroutineBody,
  ) {}

  /** Queues the coroutine to resume (aio_co_wake); early from a sleep too. */
  wake(): void {
    if (this.done || this.scheduled) return;
    this.cancelSleep?.();
    this.cancelSleep = undefined;
    this.scheduled = true;
    this.scheduler.schedule(this.label, () => this.resume());
  }

  /** Runs the body until it next waits. */
  resume(): void {
    this.scheduled = false;
    const outer = this.scheduler.current;
    this.scheduler.current = this;
    let next: IteratorResult<Wait, void>;
    try {
      next = this.body.next();
    } finally {
      this.scheduler.current = outer;
    }
    if (next.done) {
      this.done = true;
      this.finished.fire();
      return;
    }
    const wait = next.value;
    if (wait.kind === 'yield') {
      this.wake();
    } else if (wait.kind === 'sleep') {
      this.cancelSleep = this.scheduler.schedule(this.label, () => {
        this.cancelSleep = undefined;
        this.resume();
      }, wait.ns);
    } else {
      wait.signal.wait(this);
    }
  }
}
