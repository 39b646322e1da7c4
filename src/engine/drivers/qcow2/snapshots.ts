/**
 * The internal snapshot table, read (qcow2_read_snapshots()) so that the
 * snapshots' metadata is known to the overlap checks, the refcount repair
 * and the info; Bitmap Lab neither creates nor applies internal snapshots.
 */
import { genericError } from '../../qmp-error';
import { MiB, SNAPSHOT_HEADER_SIZE, cString } from './format';
import { safeOffset } from './refcounts';

const MAX_SNAPSHOTS_SIZE = 64 * MiB;
const MAX_SNAPSHOT_EXTRA_DATA = 1024;

export interface Snapshot {
  l1TableOffset: number;
  l1Size: number;
  id: string;
  name: string;
  /** Bytes the entry takes in the table, padding to 8 included. */
  entrySize: number;
}

/** Reads the table entry by entry with QEMU's limits and messages. */
export function readSnapshots(
  read: (offset: number, bytes: number) => Uint8Array,
  tableOffset: number,
  count: number,
): Snapshot[] {
  const snapshots: Snapshot[] = [];
  let offset = tableOffset;
  for (let i = 0; i < count; i++) {
    if (offset - tableOffset > MAX_SNAPSHOTS_SIZE) throw genericError('Snapshot table exceeds the maximum size');
    const start = Math.ceil(offset / 8) * 8;
    const header = read(start, SNAPSHOT_HEADER_SIZE);
    const view = new DataView(header.buffer, header.byteOffset, SNAPSHOT_HEADER_SIZE);
    const l1TableOffset = safeOffset(view.getBigUint64(0));
    const l1Size = view.getUint32(8);
    const idSize = view.getUint16(12);
    const nameSize = view.getUint16(14);
    const extraSize = view.getUint32(36);
    if (extraSize > MAX_SNAPSHOT_EXTRA_DATA) {
      throw genericError(`Too much extra metadata in snapshot table entry ${i}`);
    }
    let at = start + SNAPSHOT_HEADER_SIZE + extraSize;
    const id = cString(read(at, idSize));
    at += idSize;
    const name = cString(read(at, nameSize));
    at += nameSize;
    if (at - tableOffset > MAX_SNAPSHOTS_SIZE) throw genericError('Snapshot table exceeds the maximum size');
    if (l1TableOffset < 0) throw genericError(`Snapshot L1 table offset invalid (snapshot ${i})`);
    snapshots.push({ l1TableOffset, l1Size, id, name, entrySize: at - offset });
    offset = at;
  }
  return snapshots;
}
