/**
 * What a frame's write records say, in words: guest I/O where its data
 * landed, and the copies a backup made to its target.
 */
import type { Frame, WriteRecord } from '../../src/engine/timeline/frame';
import { formatBytes, hex } from '../format';

/** The data a write number stands for. */
export const dataName = (write: number) => (write === 0 ? 'zeroes or data older than the recording' : `data of guest write #${write}`);

export const guestRecords = (frame: Frame) => frame.writes.filter((write) => write.kind === 'guest');
export const copyRecords = (frame: Frame) => frame.writes.filter((write) => write.kind === 'copy');

/** "write #3"; write-zeroes and discards carry no write number, and the frame's cause tells which they were. */
function guestOperation(frame: Frame, record: WriteRecord): string {
  if (record.write > 0) return `write #${record.write}`;
  const kind = frame.cause.kind === 'io' ? frame.cause.detail?.kind : undefined;
  return kind === 'discard' ? 'discard' : kind === 'zero' ? 'write-zeroes' : 'write-zeroes or discard';
}

/** "guest write #1, guest discard", for a marker; undefined without guest I/O. */
export function guestLabel(frame: Frame): string | undefined {
  const records = guestRecords(frame);
  return records.length ? `guest ${records.map((record) => guestOperation(frame, record)).join(', ')}` : undefined;
}

/** "guest write #1, 36 MiB at 0x0 of drive0", for the event line. */
export function guestText(frame: Frame): string | undefined {
  const records = guestRecords(frame);
  if (!records.length) return undefined;
  return `guest ${records.map((record) => `${guestOperation(frame, record)}, ${formatBytes(record.bytes)} at ${hex(record.offset)} of ${record.node}`).join('; ')}`;
}

/** "copied 1 MiB at 0x100000 of drive0 to inc1: data of guest write #1"; undefined without copies. */
export function copyText(frame: Frame): string | undefined {
  const records = copyRecords(frame);
  if (!records.length) return undefined;
  const start = Math.min(...records.map((record) => record.offset));
  const end = Math.max(...records.map((record) => record.offset + record.bytes));
  const targets = [...new Set(records.map((record) => record.node))].join(', ');
  const detail = frame.cause.label === 'copy' ? frame.cause.detail : undefined;
  const source = typeof detail?.source === 'string' ? ` of ${detail.source}` : '';
  const what = detail?.zeroes === true ? 'zeroes' : [...new Set(records.map((record) => record.write))].sort((a, b) => a - b).map(dataName).join(', ');
  return `copied ${formatBytes(end - start)} at ${hex(start)}${source} to ${targets}: ${what}`;
}
