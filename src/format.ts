import type { BitmapRole } from './engine/timeline/frame';

/** How sizes read for people, everywhere: binary units, a few significant digits (65536 → "64 KiB"). */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

export function formatBytes(bytes: number, significant = 3): string {
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toPrecision(significant))} ${UNITS[unit]}`;
}

/** Sizes where two decimals matter (the demo's 12.06 MiB against 36.06 MiB). */
export const formatSize = (bytes: number) => formatBytes(bytes, 4);

/** What each kind of bitmap is, in the words of the tree view and the debugger. */
export const ROLE_NAMES: Record<BitmapRole, string> = {
  named: 'bitmap',
  sync: 'sync bitmap S (frozen)',
  successor: 'successor N',
  copy: 'copy bitmap C',
  'cbw-done': 'copy-before-write: done',
  'cbw-access': 'copy-before-write: access',
  anonymous: 'anonymous bitmap',
};
