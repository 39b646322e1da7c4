/**
 * drive-backup (blockdev.c drive_backup_prepare()): the source is looked up
 * and drained, the target image is created (unless mode is `existing`) and
 * opened by file name with discard=unmap and detect-zeroes=unmap, then the
 * backup job is made as for blockdev-backup. The job holds the target and
 * closes it when it is cleaned up.
 */
import type { BlockNode } from '../block-node';
import { FileNode } from '../drivers/file';
import { imgCreate } from '../drivers/img-create';
import { openImage, realPath } from '../drivers/open-image';
import { Qcow2Node } from '../drivers/qcow2/qcow2-node';
import type { Engine } from '../engine';
import { BackupJob, checkOpBlockers, type BackupArgs } from '../jobs/backup';
import type { JobTxn } from '../jobs/job';
import { genericError } from '../qmp-error';
import type { Action } from './bitmap-commands';
import { backupCommon, backupJobAction } from './job-commands';
import { enumOf, str, struct, type QapiType } from './qapi';

/** BackupCommon, then DriveBackup's own members. */
export const driveBackupType: QapiType = struct({
  ...backupCommon,
  target: str,
  '*format': str,
  '*mode': enumOf(['existing', 'absolute-paths']),
});

export interface DriveBackupArgs extends BackupArgs {
  format?: string;
  mode?: 'existing' | 'absolute-paths';
}

/** The drive-backup transaction action (and the command, as a transaction of one). */
export function driveBackupAction(engine: Engine, args: DriveBackupArgs, txn: JobTxn): Action {
  return backupJobAction(
    engine,
    () => engine.graph.lookupDeviceOrNode(args.device, args.device),
    (source) => prepare(engine, source, args, txn),
  );
}

function prepare(engine: Engine, source: BlockNode, args: DriveBackupArgs, txn: JobTxn): BackupJob {
  const mode = args.mode ?? 'absolute-paths';
  const format = args.format ?? (mode === 'existing' ? undefined : source.driver);
  // Early check, to avoid creating the target.
  checkOpBlockers(engine, source);
  let sync = args.sync;
  let backing: BlockNode | undefined;
  if (sync === 'top') {
    backing = cowBacking(source);
    // Without a backing file, the top layer is the whole image.
    if (!backing) sync = 'full';
  }
  if (sync === 'none') backing = source;
  if (mode !== 'existing') {
    imgCreate(
      { path: args.target, format: format!, size: source.length, backing: backing && { file: backing.filename, format: backing.driver } },
      (text) => engine.console(text, 'stdout'),
      () => checkLocks(engine, args.target),
    );
  } else {
    checkLocks(engine, args.target);
  }
  const target = openTarget(engine, source, args.target, format, sync === 'none');
  try {
    if (sync === 'none') setBackingHd(target, source);
    return BackupJob.create(engine, { ...args, sync }, txn, target);
  } catch (error) {
    // bdrv_unref(): nobody else holds the target.
    engine.graph.release(target);
    throw error;
  }
}

/**
 * The image locks of an open file refuse a new writer: a qcow2 node never
 * shares writing its file. A raw node nobody uses holds no lock: QEMU
 * overwrites its file (the source's, the job then refuses). We have no file
 * locks, so we ask the graph.
 */
function checkLocks(engine: Engine, path: string): void {
  const file = realPath(path);
  for (const node of engine.graph.list()) {
    const child = node.primaryChild;
    if (node.driver === 'qcow2' && child instanceof FileNode && realPath(child.path) === file) {
      throw genericError('Failed to get "write" lock');
    }
  }
}

/** bdrv_cow_bs(bdrv_skip_filters(bs)). */
function cowBacking(node: BlockNode): BlockNode | undefined {
  let layer = node;
  while (!layer.children.has('backing') && layer.filterOrCowChild) layer = layer.filterOrCowChild;
  return layer.children.get('backing');
}

/** bdrv_open() of the target with the source's flags, read-write, discard=unmap, detect-zeroes=unmap. */
function openTarget(engine: Engine, source: BlockNode, path: string, format: string | undefined, noBacking: boolean): BlockNode {
  const { graph } = engine;
  let opened: BlockNode | undefined;
  graph.transaction(() => {
    opened = openImage(path, {
      format,
      common: { readOnly: false, discardUnmap: true, detectZeroes: 'unmap', cache: { ...source.common.cache } },
      nameNode: () => {
        const name = graph.autoNodeName();
        graph.reserve(name);
        return name;
      },
      register: (node) => graph.add(node),
      noBacking,
      warn: (message) => engine.console(`${message}\n`, 'stderr'),
    });
  });
  return opened!;
}

/** bdrv_set_backing_hd(): sync=none reads what the target lacks from the source. */
function setBackingHd(target: BlockNode, source: BlockNode): void {
  if (!(target instanceof Qcow2Node)) {
    throw genericError(`Driver '${target.driver}' of node '${target.nodeName}' does not support backing files`);
  }
  target.setBackingHd(source);
}
