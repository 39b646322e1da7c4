/**
 * block-copy (block/block-copy.c): copies the clusters set in the copy
 * bitmap from the source to the target in tasks of up to a chunk, on at most
 * `maxWorkers` coroutines. A task clears its clusters from the copy bitmap
 * when it is created and sets them again if it fails; progress counts whole
 * clusters. Backup's background loop and copy-before-write both use it.
 */
import type { BlockNode } from './block-node';
import type { DirtyBitmap } from './dirty-bitmap';
import { ERRNO, IoError } from './io-error';
import { Signal, type CoroutineBody, type Scheduler, type Wait } from './scheduler';

/** BLOCK_COPY_MAX_BUFFER: the chunk of a buffered copy. */
const MAX_BUFFER = 1 << 20;
/** BLOCK_COPY_SLICE_TIME: the rate limiter's accounting slice. */
const SLICE_NS = 100_000_000;
/** BLOCK_COPY_MAX_WORKERS, for copy-before-write calls. */
export const MAX_WORKERS = 64;

/** Job progress: opaque byte counts, `total = current + remaining`. */
export class Progress {
  current = 0;
  total = 0;
  setRemaining(remaining: number): void {
    this.total = this.current + remaining;
  }
  workDone(bytes: number): void {
    this.current += bytes;
    this.total = Math.max(this.total, this.current);
  }
}

/** util/ratelimit: bytes per slice, and how long to wait once over quota. */
export class RateLimit {
  private quota = 0;
  private sliceStart = 0;
  private sliceEnd = 0;
  private dispatched = 0;

  setSpeed(bytesPerSecond: number): void {
    this.quota = bytesPerSecond === 0 ? 0 : Math.max((bytesPerSecond * SLICE_NS) / 1e9, 1);
  }

  delay(now: number, bytes: number): number {
    if (this.quota === 0) return 0;
    if (this.sliceEnd < now) {
      this.sliceStart = now;
      this.sliceEnd = now + SLICE_NS;
      this.dispatched = 0;
    }
    this.dispatched += bytes;
    if (this.dispatched < this.quota) return 0;
    this.sliceEnd = this.sliceStart + Math.floor((this.dispatched / this.quota) * SLICE_NS);
    return this.sliceEnd - now;
  }
}

/** One block_copy() or block_copy_async() call. */
export class BlockCopyCall {
  finished = false;
  cancelled = false;
  /** The first failing task's error, and which side failed. */
  error: IoError | undefined;
  errorIsRead = false;
  readonly done = new Signal();
  /** Wakes the call early from a rate-limit sleep. */
  kick: () => void = () => {};

  constructor(
    readonly offset: number,
    readonly bytes: number,
    readonly maxWorkers: number,
    readonly maxChunk: number,
    readonly ignoreRatelimit: boolean,
    /** Called when the call finishes (backup_block_copy_callback). */
    readonly onFinished: () => void = () => {},
  ) {}

  get succeeded(): boolean {
    return this.finished && !this.cancelled && !this.error;
  }
}

interface Task {
  offset: number;
  bytes: number;
  zeroes: boolean;
}

export interface BlockCopyOptions {
  clusterSize: number;
  /** Compressed writes copy one cluster per task. */
  compress: boolean;
  /** Called with the copy bitmap's every change, for the timeline. */
  onChange?: () => void;
  /** Called when a task has copied [offset, offset + bytes) to the target; `beforeWrite` for copy-before-write. */
  onCopied?: (offset: number, bytes: number, zeroes: boolean, beforeWrite: boolean) => void;
}

export class BlockCopyState {
  readonly len: number;
  readonly clusterSize: number;
  private readonly chunk: number;
  private readonly tasks: Task[] = [];
  private inFlightBytes = 0;
  private readonly taskEnded = new Signal();
  readonly rateLimit = new RateLimit();
  /** Skip clusters not allocated in the source's top layer (sync=top, until the scan ends). */
  skipUnallocated = false;
  progress: Progress | undefined;

  constructor(
    readonly scheduler: Scheduler,
    readonly source: BlockNode,
    readonly target: BlockNode,
    /** Anonymous, disabled, cluster-granular: what is still to copy. */
    readonly copyBitmap: DirtyBitmap,
    private readonly options: BlockCopyOptions,
  ) {
    this.len = source.length;
    this.clusterSize = options.clusterSize;
    this.chunk = options.compress ? options.clusterSize : Math.max(options.clusterSize, MAX_BUFFER);
  }

  /** Whether any copy task is running over [offset, offset + bytes). */
  private inFlight(offset: number, bytes: number): Task | undefined {
    return this.tasks.find((task) => task.offset < offset + bytes && offset < task.offset + task.bytes);
  }

  /** block_copy_async(): runs `call` on its own coroutine, entered at once (qemu_coroutine_enter()), up to its first wait. */
  start(call: BlockCopyCall): void {
    this.scheduler.enter('block-copy call', this.runCall(call));
  }

  /**
   * block_copy(), for copy-before-write: runs a call to its end, letting the
   * scheduler run other due work meanwhile as QEMU's nested polling does.
   */
  copyNow(offset: number, bytes: number): void {
    const call = new BlockCopyCall(offset, bytes, MAX_WORKERS, 0, true);
    this.start(call);
    while (!call.finished) {
      if (!this.scheduler.step()) throw new Error('block-copy call cannot finish');
    }
    if (call.error) throw call.error;
  }

  cancel(call: BlockCopyCall): void {
    call.cancelled = true;
    call.kick();
  }

  /**
   * block_copy_common(): passes over the range until a pass finds nothing
   * dirty and no task of another call is still copying part of it (a task
   * that fails puts its clusters back).
   */
  private *runCall(call: BlockCopyCall): CoroutineBody {
    let again = true;
    while (again && !call.error && !call.cancelled) {
      again = yield* this.copyDirtyClusters(call);
      if (again || call.error || call.cancelled) continue;
      if (this.inFlight(call.offset, call.bytes)) {
        yield { kind: 'signal', signal: this.taskEnded };
        again = true;
      } else {
        again = this.copyBitmap.bits.nextDirty(call.offset / this.clusterSize, Math.ceil((call.offset + call.bytes) / this.clusterSize)) >= 0;
      }
    }
    call.finished = true;
    call.done.fire();
    call.onFinished();
  }

  /** block_copy_dirty_clusters(): returns whether it found anything to copy. */
  private *copyDirtyClusters(call: BlockCopyCall): Generator<Wait, boolean, void> {
    const end = call.offset + call.bytes;
    let offset = call.offset;
    let foundDirty = false;
    let running = 0;
    const poolDone = new Signal();
    while (offset < end && !call.error && !call.cancelled) {
      const task = this.createTask(offset, end - offset, call.maxChunk);
      if (!task) break;
      foundDirty = true;
      const status = this.blockStatus(task);
      if (this.skipUnallocated && !status.allocated) {
        this.endTask(task, undefined);
        offset = task.offset + task.bytes;
        continue;
      }
      task.zeroes = status.zero;
      if (!call.ignoreRatelimit) {
        const delay = this.rateLimit.delay(this.scheduler.now, 0);
        if (delay > 0) {
          this.endTask(task, new IoError(ERRNO.EAGAIN));
          yield* this.sleep(call, delay);
          continue;
        }
        this.rateLimit.delay(this.scheduler.now, task.bytes);
      }
      offset = task.offset + task.bytes;
      while (running >= call.maxWorkers) yield { kind: 'signal', signal: poolDone };
      // block_copy_task_run(): a task that waited for a slot in a failed pool is not run.
      if (call.error) {
        this.endTask(task, new IoError(ERRNO.ECANCELED));
        break;
      }
      running++;
      // aio_task_pool_start_task() enters the task at once: it runs up to its first I/O.
      this.scheduler.enter('block-copy task', this.runTask(call, task, () => {
        running--;
        poolDone.fire();
      }));
    }
    while (running > 0) yield { kind: 'signal', signal: poolDone };
    return foundDirty;
  }

  private *sleep(call: BlockCopyCall, ns: number): CoroutineBody {
    const woken = new Signal();
    // A timer fires once its deadline has passed: on the virtual clock, 1 ns after it,
    // so that the rate limiter sees its slice as over (slice_end < now), as QEMU does.
    const cancel = this.scheduler.schedule('rate limit', () => woken.fire(), ns + 1);
    call.kick = () => {
      cancel();
      woken.fire();
    };
    yield { kind: 'signal', signal: woken };
    call.kick = () => {};
  }

  /** block_copy_task_create(): the next dirty area, cleared from the copy bitmap now. */
  private createTask(offset: number, bytes: number, maxChunk: number): Task | undefined {
    const chunk = maxChunk > 0 ? Math.min(this.chunk, maxChunk) : this.chunk;
    const granule = this.clusterSize;
    const area = this.copyBitmap.bits.nextDirtyArea(offset / granule, Math.ceil((offset + bytes) / granule), chunk / granule);
    if (!area) return undefined;
    const task = { offset: area[0] * granule, bytes: (area[1] - area[0]) * granule, zeroes: false };
    this.copyBitmap.markClean(task.offset, task.bytes);
    this.inFlightBytes += task.bytes;
    this.tasks.push(task);
    this.options.onChange?.();
    return task;
  }

  /**
   * block_copy_block_status(): shrinks the task to its first homogeneous
   * extent, whole clusters; on a short extent, copy one cluster as data.
   */
  private blockStatus(task: Task): { zero: boolean; allocated: boolean } {
    const status = this.source.blockStatus(task.offset, Math.min(task.bytes, this.len - task.offset));
    let bytes = status.length;
    let result = { zero: status.zero, allocated: status.allocated };
    if (bytes < this.clusterSize) {
      bytes = this.clusterSize;
      result = { zero: false, allocated: true };
    } else if (task.offset + bytes >= this.len) {
      bytes = Math.ceil(bytes / this.clusterSize) * this.clusterSize;
    } else {
      bytes = Math.floor(bytes / this.clusterSize) * this.clusterSize;
    }
    if (bytes < task.bytes) this.shrinkTask(task, bytes);
    return result;
  }

  private shrinkTask(task: Task, bytes: number): void {
    this.copyBitmap.markDirty(task.offset + bytes, task.bytes - bytes);
    this.inFlightBytes -= task.bytes - bytes;
    task.bytes = bytes;
    this.options.onChange?.();
  }

  /**
   * block_copy_task_entry(): read, then write. Each request is submitted at
   * once and completes on a later turn, failures too (blkdebug reports an
   * injected error after a yield), so other tasks run in between as they do
   * on QEMU's thread pool.
   */
  private *runTask(call: BlockCopyCall, task: Task, release: () => void): CoroutineBody {
    const bytes = Math.min(task.offset + task.bytes, this.len) - task.offset;
    let reading = !task.zeroes;
    let error: IoError | undefined;
    try {
      if (task.zeroes) {
        this.target.writeZeroes(task.offset, bytes);
      } else {
        // The read runs on the thread pool: the caller sizes its next task before it happens.
        yield { kind: 'yield' };
        const data = this.source.read(task.offset, bytes);
        reading = false;
        if (this.options.compress) this.target.writeCompressed(task.offset, data);
        else this.target.write(task.offset, data);
      }
    } catch (failure) {
      if (!(failure instanceof IoError)) throw failure;
      error = failure;
    }
    yield { kind: 'yield' };
    if (error && !call.error) {
      call.error = error;
      call.errorIsRead = reading;
    }
    if (!error) {
      this.progress?.workDone(task.bytes);
      // Only copy-before-write calls ignore the rate limit.
      this.options.onCopied?.(task.offset, bytes, task.zeroes, call.ignoreRatelimit);
    }
    this.endTask(task, error);
    release();
  }

  /** block_copy_task_end(): a failed task's clusters are to be copied again. */
  private endTask(task: Task, error: IoError | undefined): void {
    if (error) this.copyBitmap.markDirty(task.offset, task.bytes);
    this.tasks.splice(this.tasks.indexOf(task), 1);
    this.inFlightBytes -= task.bytes;
    this.progress?.setRemaining(this.copyBitmap.count + this.inFlightBytes);
    this.options.onChange?.();
    this.taskEnded.fire();
  }

}
