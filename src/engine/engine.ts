/**
 * One emulated QEMU: its block graph, how nodes are opened, its jobs, the one
 * scheduler everything runs on, and the events it emits.
 */
import { BlockBackend } from './block-backend';
import { BlockGraph } from './block-graph';
import type { BlockNode } from './block-node';
import type { BackupHost } from './jobs/backup';
import type { Job } from './jobs/job';
import { NodeOpener } from './qmp/block-commands';
import { Scheduler } from './scheduler';

/** A QMP event, or a step the engine takes that the timeline shows (a trace). */
export interface EngineEvent {
  kind: 'qmp' | 'trace';
  name: string;
  data: Record<string, unknown>;
  /** Virtual time in nanoseconds. */
  time: number;
}

export class Engine implements BackupHost {
  readonly scheduler = new Scheduler();
  readonly graph = new BlockGraph();
  readonly opener = new NodeOpener(this.graph, (message) => this.warn(message));
  /** Newest first, as QEMU lists jobs. */
  readonly jobs: Job[] = [];
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  /** Where QEMU would print on its stdout and stderr (qemu-io's reports, warnings). */
  console: (text: string, stream: 'stdout' | 'stderr') => void = () => {};

  /** A guest's view of a node, as qemu-io gets one (bdrv_lookup_bs() by name). */
  backend(nodeName: string): BlockBackend {
    const node = this.graph.lookupDeviceOrNode('', nodeName);
    // The data of a write through a backup's filter lands on the source.
    const dataNode = node.driver === 'copy-before-write' ? node.primaryChild! : node;
    return new BlockBackend(node, this.graph, (kind, offset, bytes) =>
      this.note('guest-write', { node: dataNode.nodeName, kind, offset, bytes }),
    );
  }

  onEvent(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(name: string, data: Record<string, unknown>): void {
    this.publish({ kind: 'qmp', name, data, time: this.scheduler.now });
  }

  note(name: string, data: Record<string, unknown>): void {
    this.publish({ kind: 'trace', name, data, time: this.scheduler.now });
  }

  warn(message: string): void {
    this.console(`qemu-system-x86_64: warning: ${message}\n`, 'stderr');
  }

  /**
   * bdrv_drained_begin() + _end() on a node: every running job above it pauses
   * at its next pause point, everything in flight settles, and the jobs resume.
   * QEMU drains like this whenever a block backend is attached or detached.
   */
  drain(node: BlockNode): void {
    this.drainEnd(this.drainBegin(node));
  }

  /** bdrv_drained_begin(): the jobs above `node` pause at their next pause point; returns them for drainEnd(). */
  drainBegin(node: BlockNode): Job[] {
    const jobs = this.jobs.filter((job) => job.nodes().some((root) => this.graph.reaches(root, node)));
    for (const job of jobs) job.pause();
    this.scheduler.settle();
    return jobs;
  }

  /** bdrv_drained_end(): each job resumes at once, up to its next wait. */
  drainEnd(jobs: Job[]): void {
    for (const job of jobs) job.resume();
  }

  /** bdrv_drain_all(): every job pauses at its next pause point and resumes. */
  drainAll(): void {
    const jobs = [...this.jobs];
    for (const job of jobs) job.pause();
    this.scheduler.settle();
    this.drainEnd(jobs);
  }

  /**
   * qemu_cleanup(): drain everything (running jobs pause), cancel every job
   * and wait for it, then close every node, storing persistent bitmaps.
   */
  shutdown(): void {
    for (const job of this.jobs) job.pause();
    this.scheduler.settle();
    for (const job of [...this.jobs]) job.cancelSync();
    this.graph.closeAll();
  }

  addJob(job: Job): void {
    this.jobs.unshift(job);
  }

  findJob(id: string): Job | undefined {
    return this.jobs.find((job) => job.id === id);
  }

  removeJob(job: Job): void {
    const index = this.jobs.indexOf(job);
    if (index >= 0) this.jobs.splice(index, 1);
  }

  private publish(event: EngineEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
