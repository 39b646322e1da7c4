/** A plain one-byte-per-bit model that the hierarchical bit set is held against. */
export class NaiveBits {
  readonly bits: Uint8Array;
  constructor(readonly size: number) {
    this.bits = new Uint8Array(size);
  }
  set(start: number, count: number, value = 1): void {
    for (let i = Math.max(0, start); i < Math.min(start + count, this.size); i++) this.bits[i] = value;
  }
  get count(): number {
    return this.bits.reduce((sum, bit) => sum + bit, 0);
  }
  next(value: number, start: number, end = this.size): number {
    for (let i = start; i < end; i++) if (this.bits[i] === value) return i;
    return -1;
  }
  extents(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.size; i++) {
      if (!this.bits[i]) continue;
      const start = i;
      while (i < this.size && this.bits[i]) i++;
      out.push([start, i]);
    }
    return out;
  }
  /** QEMU's layout: little-endian 64-bit words, bit i at byte i/8, bit i%8. */
  bytes(): Uint8Array {
    const out = new Uint8Array(8 * Math.max(1, Math.ceil(this.size / 64)));
    this.bits.forEach((bit, i) => (out[i >> 3] |= bit << (i & 7)));
    return out;
  }
}
