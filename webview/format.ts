/** How sizes and offsets read in the panel: binary units, hex offsets as QEMU prints them. */

export { formatBytes } from '../src/format';

export const hex = (offset: number) => `0x${offset.toString(16)}`;

export const plural = (count: number, one: string, many = `${one}s`) =>
  `${count.toLocaleString('en-US')} ${count === 1 ? one : many}`;
