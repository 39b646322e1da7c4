/**
 * The backup job (block/backup.c): validation as blockdev-backup does it,
 * the copy-before-write filter and block-copy state it sets up, the
 * background copy loop with its error policies, and the cleanup of the sync
 * bitmap that decides what a retry will have to copy.
 */
import { BlockCopyCall } from '../block-copy';
import type { BlockGraph } from '../block-graph';
import type { BlockNode } from '../block-node';
import { ALLOW_RO, DEFAULT_CHECKS, checkBitmap, type DirtyBitmap } from '../dirty-bitmap';
import { CopyBeforeWriteNode } from '../drivers/copy-before-write';
import { FileNode } from '../drivers/file';
import { realPath } from '../drivers/open-image';
import { ERRNO } from '../io-error';
import { QmpError, genericError } from '../qmp-error';
import type { Wait } from '../scheduler';
import { Job, type JobHost, type JobTxn } from './job';

export type SyncMode = 'top' | 'full' | 'none' | 'incremental' | 'bitmap';
export type BitmapMode = 'on-success' | 'never' | 'always';
export type OnError = 'report' | 'ignore' | 'enospc' | 'stop' | 'auto';

/** BlockdevBackup as QMP hands it over. */
export interface BackupArgs {
  'job-id'?: string;
  device: string;
  target: string;
  sync: SyncMode;
  speed?: number;
  bitmap?: string;
  'bitmap-mode'?: BitmapMode;
  compress?: boolean;
  'on-source-error'?: OnError;
  'on-target-error'?: OnError;
  'auto-finalize'?: boolean;
  'auto-dismiss'?: boolean;
  'filter-node-name'?: string;
  'x-perf'?: { 'use-copy-range'?: boolean; 'max-workers'?: number; 'max-chunk'?: number };
}

/** BLOCK_COPY_CLUSTER_SIZE_DEFAULT. */
const DEFAULT_CLUSTER = 65536;
const INT_MAX = 2 ** 31 - 1;

/** What the engine gives a backup job besides the JobHost basics. */
export interface BackupHost extends JobHost {
  graph: BlockGraph;
  jobs: readonly Job[];
  findJob(id: string): Job | undefined;
  warn(message: string): void;
  /** Steps of the bitmap cleanup, one by one, for the timeline. */
  note(step: string, detail: Record<string, unknown>): void;
}

interface Settings {
  sync: Exclude<SyncMode, 'incremental'>;
  bitmap: DirtyBitmap | undefined;
  bitmapMode: BitmapMode | undefined;
}

/** do_backup_common(): the checks that do not need the job, in QEMU's order. */
function checkArguments(source: BlockNode, args: BackupArgs): Settings {
  let sync = args.sync;
  let bitmapMode = args['bitmap-mode'];
  if ((sync === 'bitmap' || sync === 'incremental') && args.bitmap === undefined) {
    throw genericError(`must provide a valid bitmap name for '${sync}' sync mode`);
  }
  if (sync === 'incremental') {
    if (bitmapMode !== undefined && bitmapMode !== 'on-success') {
      throw genericError("Bitmap sync mode must be 'on-success' when using sync mode 'incremental'");
    }
    sync = 'bitmap';
    bitmapMode = 'on-success';
  }
  let bitmap: DirtyBitmap | undefined;
  if (args.bitmap !== undefined) {
    bitmap = source.findBitmap(args.bitmap);
    if (!bitmap) throw genericError(`Bitmap '${args.bitmap}' could not be found`);
    if (bitmapMode === undefined) throw genericError('Bitmap sync mode must be given when providing a bitmap');
    checkBitmap(bitmap, ALLOW_RO);
    if (sync === 'none') throw genericError("sync mode 'none' does not produce meaningful bitmap outputs");
    if (bitmapMode === 'never' && sync !== 'bitmap') {
      throw genericError(`Bitmap sync mode 'never' has no meaningful effect when combined with sync mode '${sync}'`);
    }
  }
  if (args.bitmap === undefined && bitmapMode !== undefined) {
    throw genericError('Cannot specify bitmap sync mode without a bitmap');
  }
  return { sync, bitmap, bitmapMode };
}

/** backup_calculate_cluster_size(): the target's cluster, at least 64 KiB. */
function clusterSizeFor(target: BlockNode, host: BackupHost): number {
  const info = target.driverInfo();
  if (!info) {
    if (!target.children.has('backing')) {
      host.warn(
        `The target block device doesn't provide information about the block size and it doesn't have a backing file. The default block size of ${DEFAULT_CLUSTER} bytes is used. If the actual block size of the target exceeds this default, the backup may be unusable`,
      );
    }
    return DEFAULT_CLUSTER;
  }
  return Math.max(DEFAULT_CLUSTER, info.clusterSize ?? 0);
}

export class BackupJob extends Job {
  readonly cbw: CopyBeforeWriteNode;
  private background: BlockCopyCall | undefined;
  readonly len: number;
  /** The block-job side: io-status after a stop. */
  ioStatus: 'ok' | 'failed' | 'nospace' = 'ok';

  private constructor(
    private readonly backupHost: BackupHost,
    id: string,
    private readonly args: BackupArgs,
    txn: JobTxn,
    readonly source: BlockNode,
    readonly target: BlockNode,
    readonly settings: Settings,
    cbw: CopyBeforeWriteNode,
    private readonly maxWorkers: number,
    private readonly maxChunk: number,
    /** drive-backup opened the target: the job holds the only reference and lets it go in clean. */
    private readonly ownsTarget: boolean,
  ) {
    super(backupHost, id, 'backup', args['auto-finalize'] ?? true, args['auto-dismiss'] ?? true, txn);
    this.cbw = cbw;
    this.len = source.length;
    this.cbw.bcs.progress = this.progress;
    this.speed = args.speed ?? 0;
    this.cbw.bcs.rateLimit.setSpeed(this.speed);
    this.register();
  }

  /** The job's backend sits on the filter; the target is its other child. */
  nodes(): BlockNode[] {
    return [this.cbw, this.target];
  }

  get bitmap(): DirtyBitmap | undefined {
    return this.settings.bitmap;
  }

  /**
   * blockdev-backup up to the job's creation (it starts at commit); drive-backup
   * passes the target it opened.
   */
  static create(host: BackupHost, args: BackupArgs, txn: JobTxn, opened?: BlockNode): BackupJob {
    const { graph } = host;
    const source = graph.lookupDeviceOrNode(args.device, args.device);
    const target = opened ?? graph.lookupDeviceOrNode(args.target, args.target);
    const settings = checkArguments(source, args);
    const maxWorkers = args['x-perf']?.['max-workers'] ?? 64;
    const maxChunk = args['x-perf']?.['max-chunk'] ?? 0;
    // backup_job_create()
    if (source === target) throw genericError('Source and target cannot be the same');
    // QEMU prints the device name, which nodes made by blockdev-add do not have.
    if (args.compress && !target.supportsCompressedWrites) throw genericError('Compression is not supported for this drive ');
    checkOpBlockers(host, source, target);
    if (maxWorkers < 1 || maxWorkers > INT_MAX) throw genericError(`max-workers must be between 1 and ${INT_MAX}`);
    if (maxChunk < 0) throw genericError('max-chunk must be zero (which means no limit) or positive');
    const { bitmap, bitmapMode } = settings;
    if (bitmap) {
      if (bitmapMode !== 'never') checkBitmap(bitmap, DEFAULT_CHECKS);
      source.createSuccessor(bitmap);
    }
    let cbw: CopyBeforeWriteNode | undefined;
    try {
      if (target.length !== source.length) throw genericError('Source and target image have different sizes');
      cbw = insertFilter(host, args, source, target);
      const clusterSize = cbw.bcs.clusterSize;
      if (maxChunk && maxChunk < clusterSize) {
        throw genericError(`Required max-chunk (${maxChunk}) is less than backup cluster size (${clusterSize})`);
      }
      const id = jobId(host, args['job-id']);
      const job = new BackupJob(host, id, args, txn, source, target, settings, cbw, maxWorkers, maxChunk, opened !== undefined);
      // block_job_create() takes the permissions after job_create(): the file locks refuse a target on the source's file.
      if (sameFile(source, target)) {
        job.earlyFail();
        throw genericError('Failed to get shared "write" lock');
      }
      if (job.speed < 0) {
        // block_job_create() sets the speed after job_create(): the job was created, and goes.
        job.earlyFail();
        throw genericError("Parameter 'speed' expects a non-negative value");
      }
      return job;
    } catch (error) {
      if (bitmap) source.reclaim(bitmap);
      if (cbw) removeFilter(host, cbw);
      throw error;
    }
  }

  protected *run(): Generator<Wait, number, void> {
    this.initCopyBitmap();
    if (this.settings.sync === 'top') {
      const ret = yield* this.scanUnallocated();
      if (ret < 0) return ret;
    }
    if (this.settings.sync === 'none') {
      // Copy-before-write does all the work, until the job is cancelled.
      while (!this.cancelled) yield* this.yieldJob();
      return 0;
    }
    return yield* this.copyLoop();
  }

  /** backup_init_bcs_bitmap(). */
  private initCopyBitmap(): void {
    const copyBitmap = this.cbw.bcs.copyBitmap;
    if (this.settings.sync === 'bitmap') {
      copyBitmap.clear();
      copyBitmap.mergeInternal(this.settings.bitmap!);
    } else if (this.settings.sync === 'top') {
      this.cbw.bcs.skipUnallocated = true;
    }
    this.progress.setRemaining(copyBitmap.count);
  }

  /** sync=top: clear what the top layer does not allocate, a region per step. */
  private *scanUnallocated(): Generator<Wait, number, void> {
    const bcs = this.cbw.bcs;
    for (let offset = 0; offset < this.len; ) {
      if (this.cancelled) return -ERRNO.ECANCELED;
      yield* this.pausePoint();
      if (this.cancelled) return -ERRNO.ECANCELED;
      const status = this.source.blockStatus(offset, this.len - offset);
      const cluster = bcs.clusterSize;
      if (!status.allocated) {
        // Only whole clusters that are entirely unallocated are dropped.
        const start = Math.ceil(offset / cluster) * cluster;
        const end = offset + status.length >= this.len ? this.len : Math.floor((offset + status.length) / cluster) * cluster;
        if (end > start) bcs.copyBitmap.markClean(start, end - start);
        this.progress.setRemaining(bcs.copyBitmap.count);
      }
      offset += status.length;
      yield { kind: 'yield' };
    }
    bcs.skipUnallocated = false;
    return 0;
  }

  /** backup_loop(): one block-copy call over the disk, again after a pause or an error we retry. */
  private *copyLoop(): Generator<Wait, number, void> {
    const bcs = this.cbw.bcs;
    const end = Math.ceil(this.len / bcs.clusterSize) * bcs.clusterSize;
    for (;;) {
      const call = new BlockCopyCall(0, end, this.maxWorkers, this.maxChunk, false, () => this.enter());
      this.background = call;
      bcs.start(call);
      while (!call.finished && !this.cancelled) yield* this.yieldJob();
      if (!call.finished) {
        bcs.cancel(call);
        while (!call.finished) yield { kind: 'signal', signal: call.done };
      }
      this.background = undefined;
      if (call.succeeded || this.cancelled) return 0;
      // A call cancelled by a pause: the pause is over, copy what is left. Its
      // tasks' errors are dropped with it, as QEMU does; their clusters stay dirty.
      if (call.cancelled || !call.error) continue;
      const errno = call.error.errno;
      const action = this.errorAction(call.errorIsRead, errno);
      if (action === 'report') return -errno;
      if (action === 'stop') yield* this.pausePoint();
    }
  }

  /** block_job_error_action(): what the policy says, the event, and a user pause on stop. */
  private errorAction(isRead: boolean, errno: number): 'report' | 'ignore' | 'stop' {
    const policy = (isRead ? this.args['on-source-error'] : this.args['on-target-error']) ?? 'report';
    const action =
      policy === 'enospc' || policy === 'auto' ? (errno === ERRNO.ENOSPC ? 'stop' : 'report') : policy;
    this.host.emit('BLOCK_JOB_ERROR', { device: this.id, operation: isRead ? 'read' : 'write', action });
    if (action === 'stop') {
      if (!this.userPaused) {
        this.pause();
        this.userPaused = true;
      }
      this.ioStatus = errno === ERRNO.ENOSPC ? 'nospace' : 'failed';
    }
    return action;
  }

  override userResume(): void {
    super.userResume();
    this.ioStatus = 'ok';
  }

  protected override onCancel(): void {
    if (this.background) this.cbw.bcs.cancel(this.background);
  }

  protected override onPause(): void {
    if (this.background && !this.background.finished) this.cbw.bcs.cancel(this.background);
  }

  protected override onSetSpeed(): void {
    this.cbw.bcs.rateLimit.setSpeed(this.speed);
    this.background?.kick();
  }

  protected override commit(): void {
    this.cleanupSyncBitmap(0);
  }

  protected override abort(): void {
    this.cleanupSyncBitmap(-1);
  }

  protected override clean(): void {
    removeFilter(this.backupHost, this.cbw);
    if (this.ownsTarget) this.backupHost.graph.release(this.target);
  }

  /**
   * backup_cleanup_sync_bitmap(): keep N when the job succeeded or always
   * syncs (abdicate), else S ∪ N (reclaim); a failed `always` adds what was
   * left to copy, C.
   */
  private cleanupSyncBitmap(ret: number): void {
    const { bitmap, bitmapMode } = this.settings;
    if (!bitmap) return;
    const sync = (ret === 0 || bitmapMode === 'always') && bitmapMode !== 'never';
    const name = bitmap.name;
    const result = sync ? this.source.abdicate(bitmap) : this.source.reclaim(bitmap);
    const about = { bitmap: name, node: this.source.nodeName, job: this.id, mode: bitmapMode, ret };
    this.backupHost.note(sync ? 'abdicate' : 'reclaim', about);
    if (ret < 0 && bitmapMode === 'always') {
      result.mergeInternal(this.cbw.bcs.copyBitmap);
      this.backupHost.note('merge-copy-bitmap', about);
    }
  }

  protected emitTerminalEvent(): void {
    const data = { type: this.type, device: this.id, len: this.progress.total, offset: this.progress.current, speed: this.speed };
    if (this.cancelled) this.host.emit('BLOCK_JOB_CANCELLED', data);
    else this.host.emit('BLOCK_JOB_COMPLETED', this.ret ? { ...data, error: this.errorText } : data);
  }

  /** BlockJobInfo of query-block-jobs. */
  blockJobInfo(): Record<string, unknown> {
    return {
      type: this.type,
      device: this.id,
      len: this.progress.total,
      offset: this.progress.current,
      busy: this.busy,
      paused: this.shouldPause,
      speed: this.speed,
      'io-status': this.ioStatus,
      ready: false,
      status: this.status,
      'auto-finalize': this.autoFinalize,
      'auto-dismiss': this.autoDismiss,
      ...(this.ret !== 0 && this.errorText !== undefined && { error: this.errorText }),
    };
  }
}

/**
 * job_create(): the job ID must be well formed and unused. Without one, QEMU
 * takes the device name of the filter, which is empty.
 */
function jobId(host: BackupHost, id = ''): string {
  if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) throw genericError(`Invalid job ID '${id}'`);
  if (host.findJob(id)) throw genericError(`Job ID '${id}' already in use`);
  return id;
}

/**
 * A running backup blocks operations on the nodes it holds, its filter and its
 * target; not its source, which a second backup may take (its filter goes
 * between the first filter and the source).
 */
export function checkOpBlockers(host: BackupHost, ...nodes: BlockNode[]): void {
  for (const node of nodes) {
    // A concluded job has let go of its nodes (block_job_remove_all_bdrv() in clean).
    const user = host.jobs.find((job) => job instanceof BackupJob && job.status !== 'concluded' && job.nodes().includes(node));
    if (user) throw genericError(`Node '${node.nodeName}' is busy: block device is in use by block job: ${user.type}`);
  }
}

/** Whether two nodes store their data in the same host file (through file/image children). */
function sameFile(a: BlockNode, b: BlockNode): boolean {
  const files = (node: BlockNode | undefined): string[] => {
    const paths: string[] = [];
    for (; node; node = node.primaryChild) if (node instanceof FileNode) paths.push(realPath(node.path));
    return paths;
  };
  const ours = files(a);
  return files(b).some((path) => ours.includes(path));
}

/**
 * bdrv_cbw_append(): the filter takes the source's place under its parents.
 * It is opened read-write without discard=unmap, so it drops discards.
 */
function insertFilter(host: BackupHost, args: BackupArgs, source: BlockNode, target: BlockNode): CopyBeforeWriteNode {
  const { graph } = host;
  const given = args['filter-node-name'];
  if (given !== undefined) {
    try {
      graph.checkNewNodeName(given);
    } catch (error) {
      throw error instanceof QmpError ? genericError(`Could not create node: ${error.desc}`) : error;
    }
  }
  const name = given ?? graph.autoNodeName();
  const parents = graph.parentsOf(source);
  const cbw = new CopyBeforeWriteNode(name, host.scheduler, source, target, clusterSizeFor(target, host), args.compress ?? false, { ...source.common, discardUnmap: false }, (offset, bytes, zeroes, beforeWrite) =>
    host.note('copy', { source: source.nodeName, target: target.nodeName, offset, bytes, zeroes, by: beforeWrite ? 'copy-before-write' : 'backup' }),
  );
  graph.add(cbw);
  // should_update_child(): an edge the filter reaches stays (a target backed by the source keeps it).
  for (const parent of parents) if (!graph.reaches(cbw, parent)) parent.replaceChild(source, cbw);
  return cbw;
}

/** bdrv_cbw_drop(): parents go back to the source; the filter and its bitmaps go. */
function removeFilter(host: BackupHost, cbw: CopyBeforeWriteNode): void {
  const source = cbw.children.get('file')!;
  for (const parent of host.graph.parentsOf(cbw)) parent.replaceChild(cbw, source);
  host.graph.remove(cbw);
}
