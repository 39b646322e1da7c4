/**
 * qmp_transaction(): every action prepares in order; the first failure aborts
 * all prepared actions (the failing one included) in reverse order; otherwise
 * all commit in order.
 */
import type { Engine } from '../engine';
import type { BackupArgs } from '../jobs/backup';
import { JobTxn } from '../jobs/job';
import { genericError } from '../qmp-error';
import {
  addAction, blockDirtyBitmapAddType, blockDirtyBitmapMergeType, blockDirtyBitmapType, clearAction, mergeAction,
  removeAction, setEnabledAction, type Action, type BlockDirtyBitmap, type BlockDirtyBitmapAdd,
  type BlockDirtyBitmapMerge,
} from './bitmap-commands';
import { driveBackupAction, driveBackupType, type DriveBackupArgs } from './drive-backup';
import { backupAction, blockdevBackupType } from './job-commands';
import { arrayOf, enumOf, struct, type QapiType } from './qapi';

const ACTION_KINDS = [
  'abort', 'block-dirty-bitmap-add', 'block-dirty-bitmap-remove', 'block-dirty-bitmap-clear',
  'block-dirty-bitmap-enable', 'block-dirty-bitmap-disable', 'block-dirty-bitmap-merge', 'blockdev-backup',
  'blockdev-snapshot', 'blockdev-snapshot-internal-sync', 'blockdev-snapshot-sync', 'drive-backup',
];

const wrap = (data: QapiType) => ({ data });

export const transactionType: QapiType = struct({
  actions: arrayOf({
    kind: 'union',
    discriminator: 'type',
    base: { type: enumOf(ACTION_KINDS) },
    variants: {
      abort: wrap(struct({})),
      'block-dirty-bitmap-add': wrap(blockDirtyBitmapAddType),
      'block-dirty-bitmap-remove': wrap(blockDirtyBitmapType),
      'block-dirty-bitmap-clear': wrap(blockDirtyBitmapType),
      'block-dirty-bitmap-enable': wrap(blockDirtyBitmapType),
      'block-dirty-bitmap-disable': wrap(blockDirtyBitmapType),
      'block-dirty-bitmap-merge': wrap(blockDirtyBitmapMergeType),
      'blockdev-backup': wrap(blockdevBackupType),
      'drive-backup': wrap(driveBackupType),
    },
  }),
  '*properties': struct({ '*completion-mode': enumOf(['individual', 'grouped']) }),
});

export interface TransactionArgs {
  actions: Array<{ type: string; data?: unknown }>;
  properties?: { 'completion-mode'?: 'individual' | 'grouped' };
}

function makeAction(engine: Engine, type: string, data: unknown, grouped: JobTxn | undefined): Action {
  const { graph } = engine;
  switch (type) {
    case 'abort':
      return { prepare: () => { throw genericError('Transaction aborted using Abort action'); }, commit() {}, abort() {} };
    case 'block-dirty-bitmap-add':
      return addAction(graph, data as BlockDirtyBitmapAdd);
    case 'block-dirty-bitmap-remove':
      return removeAction(graph, data as BlockDirtyBitmap);
    case 'block-dirty-bitmap-clear':
      return clearAction(graph, data as BlockDirtyBitmap);
    case 'block-dirty-bitmap-enable':
      return setEnabledAction(graph, data as BlockDirtyBitmap, true);
    case 'block-dirty-bitmap-disable':
      return setEnabledAction(graph, data as BlockDirtyBitmap, false);
    case 'block-dirty-bitmap-merge':
      return mergeAction(graph, data as BlockDirtyBitmapMerge);
    case 'blockdev-backup':
      return backupAction(engine, data as BackupArgs, grouped ?? new JobTxn());
    case 'drive-backup':
      return driveBackupAction(engine, data as DriveBackupArgs, grouped ?? new JobTxn());
    default:
      throw genericError(`Bitmap Lab does not implement the transaction action '${type}' yet`);
  }
}

/** Only backups may join a grouped transaction (action_check_completion_mode). */
function checkCompletionMode(type: string, mode: string): void {
  if (type !== 'abort' && type !== 'blockdev-backup' && type !== 'drive-backup' && mode !== 'individual') {
    throw genericError(`Action '${type}' does not support Transaction property completion-mode = ${mode}`);
  }
}

export function transaction(engine: Engine, args: TransactionArgs): Record<string, never> {
  // "Drain all I/O before any operations": every running job pauses and resumes.
  engine.drainAll();
  const mode = args.properties?.['completion-mode'] ?? 'individual';
  // Grouped backups share one job transaction: they finish or fail together.
  const grouped = mode === 'grouped' ? new JobTxn() : undefined;
  const started: Action[] = [];
  try {
    for (const { type, data } of args.actions) {
      const action = makeAction(engine, type, data, grouped);
      started.push(action);
      checkCompletionMode(type, mode);
      action.prepare();
    }
  } catch (error) {
    for (const action of [...started].reverse()) action.abort();
    for (const action of started) action.clean?.();
    throw error;
  }
  for (const action of started) action.commit();
  for (const action of started) action.clean?.();
  return {};
}
