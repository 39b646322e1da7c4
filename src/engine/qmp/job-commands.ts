/**
 * blockdev-backup and the job-* / block-job-* commands (blockdev.c,
 * job-qmp.c): lookups with QEMU's messages and classes, then the job verbs.
 */
import type { BlockNode } from '../block-node';
import type { Engine } from '../engine';
import { BackupJob, type BackupArgs } from '../jobs/backup';
import { JobTxn, type Job } from '../jobs/job';
import { QmpError, genericError } from '../qmp-error';
import type { Action } from './bitmap-commands';
import { bool, enumOf, int, str, struct, type Members, type QapiType } from './qapi';

const onError = enumOf(['report', 'ignore', 'enospc', 'stop', 'auto']);

/** BackupCommon: what blockdev-backup and drive-backup share. */
export const backupCommon: Members = {
  '*job-id': str,
  device: str,
  sync: enumOf(['top', 'full', 'none', 'incremental', 'bitmap']),
  '*speed': int,
  '*bitmap': str,
  '*bitmap-mode': enumOf(['on-success', 'never', 'always']),
  '*compress': bool,
  '*on-source-error': onError,
  '*on-target-error': onError,
  '*auto-finalize': bool,
  '*auto-dismiss': bool,
  '*filter-node-name': str,
  '*x-perf': struct({ '*use-copy-range': bool, '*max-workers': int, '*max-chunk': int }),
};

/** BackupCommon, then BlockdevBackup's own `target`. */
export const blockdevBackupType: QapiType = struct({ ...backupCommon, target: str });

/**
 * A backup transaction action (blockdev-backup, drive-backup): `lookUp`
 * finds the source (and checks the rest), which stays drained from prepare to
 * clean; `create` makes the job (its bitmap frozen) in prepare, held paused
 * by the drain; it starts at commit, is cancelled on abort.
 */
export function backupJobAction(engine: Engine, lookUp: () => BlockNode, create: (source: BlockNode) => BackupJob): Action {
  let job: BackupJob | undefined;
  let drained: Job[] = [];
  return {
    prepare() {
      const source = lookUp();
      drained = engine.drainBegin(source);
      job = create(source);
      job.pause();
    },
    commit() {
      job?.start();
    },
    abort() {
      job?.cancel();
    },
    clean() {
      job?.resume();
      engine.drainEnd(drained);
    },
  };
}

/** blockdev_backup_prepare(): the lookups, then the job as BackupJob.create() makes it. */
export function backupAction(engine: Engine, args: BackupArgs, txn: JobTxn): Action {
  return backupJobAction(
    engine,
    () => {
      const source = engine.graph.lookupDeviceOrNode(args.device, args.device);
      engine.graph.lookupDeviceOrNode(args.target, args.target);
      return source;
    },
    () => BackupJob.create(engine, args, txn),
  );
}

function findJob(engine: Engine, id: string): Job {
  const job = engine.findJob(id);
  if (!job) throw genericError('Job not found');
  return job;
}

function findBlockJob(engine: Engine, id: string): BackupJob {
  const job = engine.findJob(id);
  if (!(job instanceof BackupJob)) throw new QmpError('DeviceNotActive', `Block job '${id}' not found`);
  return job;
}

interface JobCommand {
  args: QapiType;
  run(engine: Engine, args: any): unknown;
}

const byId = (members: Members = {}) => struct({ id: str, ...members });
const byDevice = (members: Members = {}) => struct({ device: str, ...members });
const done = (action: () => void) => {
  action();
  return {};
};

export const JOB_COMMANDS: Record<string, JobCommand> = {
  'query-jobs': { args: struct({}), run: (e) => e.jobs.map((job) => job.info()) },
  'query-block-jobs': {
    args: struct({}),
    run: (e) => e.jobs.filter((job): job is BackupJob => job instanceof BackupJob).map((job) => job.blockJobInfo()),
  },
  'job-pause': { args: byId(), run: (e, a) => done(() => findJob(e, a.id).userPause()) },
  'job-resume': { args: byId(), run: (e, a) => done(() => findJob(e, a.id).userResume()) },
  'job-cancel': { args: byId(), run: (e, a) => done(() => findJob(e, a.id).userCancel()) },
  'job-complete': { args: byId(), run: (e, a) => done(() => complete(findJob(e, a.id))) },
  'job-finalize': { args: byId(), run: (e, a) => done(() => findJob(e, a.id).userFinalize()) },
  'job-dismiss': { args: byId(), run: (e, a) => done(() => findJob(e, a.id).userDismiss()) },
  'block-job-pause': { args: byDevice(), run: (e, a) => done(() => findBlockJob(e, a.device).userPause()) },
  'block-job-resume': { args: byDevice(), run: (e, a) => done(() => findBlockJob(e, a.device).userResume()) },
  'block-job-cancel': {
    args: byDevice({ '*force': bool }),
    run: (e, a) =>
      done(() => {
        const job = findBlockJob(e, a.device);
        if (job.userPaused && !a.force) throw genericError(`The block job for device '${a.device}' is currently paused`);
        job.userCancel();
      }),
  },
  'block-job-complete': { args: byDevice(), run: (e, a) => done(() => complete(findBlockJob(e, a.device))) },
  'block-job-finalize': { args: byId(), run: (e, a) => done(() => findBlockJob(e, a.id).userFinalize()) },
  'block-job-dismiss': { args: byId(), run: (e, a) => done(() => findBlockJob(e, a.id).userDismiss()) },
  'block-job-set-speed': {
    args: byDevice({ speed: int }),
    run: (e, a) =>
      done(() => {
        const job = findBlockJob(e, a.device);
        job.applyVerb('set-speed');
        if (a.speed < 0) throw genericError("Parameter 'speed' expects a non-negative value");
        job.setSpeed(a.speed);
      }),
  },
};

/** job_complete(): backup never becomes ready, so the verb table refuses first. */
function complete(job: Job): void {
  job.applyVerb('complete');
  throw genericError(`The active block job '${job.id}' cannot be completed`);
}
