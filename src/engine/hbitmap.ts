/**
 * A hierarchical bit set in the spirit of QEMU's util/hbitmap.c.
 *
 * Level 0 holds the bits; bit j of level L+1 is set iff word j of level L is
 * non-zero, so "next set bit" walks up past empty regions instead of scanning
 * them, and the number of set bits is kept as it changes. Words are 32-bit
 * because JavaScript's bitwise operators are.
 */

const WORD_MASK = 31;
const ALL_ONES = 0xffffffff;
/** Indices are 32-bit in the word arithmetic below (`>>> 5`). */
export const MAX_BITS = 2 ** 32 - 64;

/** Bits set in each 16-bit value: two table loads beat the bit tricks in V8. */
const POPCOUNT16 = new Uint8Array(1 << 16);
for (let i = 1; i < POPCOUNT16.length; i++) POPCOUNT16[i] = (i & 1) + POPCOUNT16[i >>> 1];

export function popcount32(x: number): number {
  return POPCOUNT16[x & 0xffff] + POPCOUNT16[x >>> 16];
}

function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Mask of bits lo..hi (inclusive) within one word. */
function rangeMask(lo: number, hi: number): number {
  return ((ALL_ONES >>> (WORD_MASK - hi)) & (ALL_ONES << lo)) >>> 0;
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class HBitmap {
  private readonly levels: Uint32Array[];
  private setBits = 0;
  /** Leaf words changed since takeTouched(), for the timeline's change capture. */
  private touchedLo = Infinity;
  private touchedHi = -1;

  /** `size` is the number of bits. */
  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 0 || size > MAX_BITS) {
      throw new RangeError(`bitmap of ${size} bits is not supported`);
    }
    // Whole 64-bit words, at least one: QEMU's serialised layout.
    let words = 2 * Math.max(1, Math.ceil(size / 64));
    this.levels = [new Uint32Array(words)];
    while (words > 1) {
      words = Math.ceil(words / 32);
      this.levels.push(new Uint32Array(words));
    }
  }

  /** Number of set bits. */
  get count(): number {
    return this.setBits;
  }

  get(bit: number): boolean {
    return bit >= 0 && bit < this.size && (this.levels[0][bit >>> 5] & (1 << (bit & WORD_MASK))) !== 0;
  }

  /** Sets bits [start, start + count), clipped to the bitmap. */
  set(start: number, count: number): void {
    const end = Math.min(start + count, this.size);
    if (start < end) this.setLevel(0, start, end - 1);
  }

  /** Clears bits [start, start + count), clipped to the bitmap. */
  reset(start: number, count: number): void {
    const end = Math.min(start + count, this.size);
    if (start < end) this.resetLevel(0, start, end - 1);
  }

  resetAll(): void {
    for (const level of this.levels) level.fill(0);
    this.setBits = 0;
    this.touch(0, this.levels[0].length - 1);
  }

  /** The leaf words [lo, hi] changed since the last call, if any. */
  takeTouched(): [number, number] | undefined {
    if (this.touchedHi < 0) return undefined;
    const range: [number, number] = [this.touchedLo, this.touchedHi];
    this.touchedLo = Infinity;
    this.touchedHi = -1;
    return range;
  }

  /** The leaf words themselves, read-only by contract (for diffs and snapshots). */
  words(): Uint32Array {
    return this.levels[0];
  }

  private touch(lo: number, hi: number): void {
    if (lo < this.touchedLo) this.touchedLo = lo;
    if (hi > this.touchedHi) this.touchedHi = hi;
  }

  /** First set bit in [start, end), or -1. */
  nextDirty(start = 0, end = this.size): number {
    if (start >= end) return -1;
    const bit = this.findSet(0, start);
    return bit >= 0 && bit < end ? bit : -1;
  }

  /** First clear bit in [start, end), or -1. */
  nextClean(start = 0, end = this.size): number {
    if (start >= end) return -1;
    const leaves = this.levels[0];
    let word = start >>> 5;
    let bits = ~leaves[word] & (ALL_ONES << (start & WORD_MASK));
    while (bits === 0) {
      word++;
      if (word * 32 >= end) return -1;
      bits = ~leaves[word];
    }
    const bit = word * 32 + lowestBit(bits);
    return bit < end ? bit : -1;
  }

  /**
   * The first run of set bits in [start, end), at most `maxCount` long, as
   * [first, endExclusive], or undefined when there is none.
   */
  nextDirtyArea(start = 0, end = this.size, maxCount = Infinity): [number, number] | undefined {
    const first = this.nextDirty(start, end);
    if (first < 0) return undefined;
    const clean = this.nextClean(first, end);
    const areaEnd = clean < 0 ? end : clean;
    return [first, Math.min(areaEnd, first + maxCount)];
  }

  /** Every maximal run of set bits, as [first, endExclusive], in order. */
  *extents(): Generator<[number, number]> {
    for (let area = this.nextDirtyArea(); area; area = this.nextDirtyArea(area[1])) yield area;
  }

  /** this |= other, for bit sets of the same size. */
  merge(other: HBitmap): void {
    if (other.size !== this.size) throw new RangeError('merge of bit sets of different sizes');
    if (other.setBits === 0) return;
    this.touch(0, this.levels[0].length - 1);
    if (this.setBits === 0) {
      this.levels.forEach((level, i) => level.set(other.levels[i]));
      this.setBits = other.setBits;
      return;
    }
    const dst = this.levels[0];
    const src = other.levels[0];
    const srcWords = other.levels[1];
    let added = 0;
    // Visit only the blocks of 32 words where the source has bits, found through its level 1.
    for (let block = 0; block < srcWords.length; block++) {
      if (srcWords[block] === 0) continue;
      const end = Math.min(block * 32 + 32, dst.length);
      // Branch-free: on dense random bits, branches mispredict more than they save.
      for (let word = block * 32; word < end; word++) {
        const old = dst[word];
        const merged = old | src[word];
        dst[word] = merged;
        added += popcount32(merged ^ old);
      }
    }
    this.setBits += added;
    // A word is non-zero after the merge iff it was in either set, so the
    // upper levels merge by plain OR.
    for (let level = 1; level < this.levels.length; level++) {
      const d = this.levels[level];
      const s = other.levels[level];
      for (let i = 0; i < d.length; i++) d[i] |= s[i];
    }
  }

  /** The bits as little-endian 64-bit words, bit i = granule i (QEMU's layout). */
  bytes(): Uint8Array {
    if (!littleEndian) throw new Error('bitmap serialisation needs a little-endian host');
    const leaves = this.levels[0];
    return new Uint8Array(leaves.buffer, leaves.byteOffset, leaves.byteLength);
  }

  /**
   * hbitmap_deserialize_part(): overwrite serialised bytes of the bit array
   * (the layout of bytes()) from `byteOffset`; deserializeFinish() must
   * follow the last part.
   */
  deserializePart(byteOffset: number, data: Uint8Array): void {
    this.bytes().set(data, byteOffset);
  }

  /** hbitmap_deserialize_finish(): drop bits past the end, recount, rebuild the upper levels. */
  deserializeFinish(): void {
    const leaves = this.levels[0];
    this.touch(0, leaves.length - 1);
    const tail = this.size & WORD_MASK;
    const lastWord = this.size >>> 5;
    if (tail !== 0) leaves[lastWord] &= rangeMask(0, tail - 1);
    leaves.fill(0, tail === 0 ? lastWord : lastWord + 1);
    let count = 0;
    for (let w = 0; w < leaves.length; w++) if (leaves[w] !== 0) count += popcount32(leaves[w]);
    this.setBits = count;
    for (let level = 1; level < this.levels.length; level++) {
      const below = this.levels[level - 1];
      const words = this.levels[level];
      words.fill(0);
      for (let w = 0; w < below.length; w++) if (below[w] !== 0) words[w >>> 5] |= 1 << (w & WORD_MASK);
    }
  }

  private setLevel(level: number, first: number, last: number): void {
    const words = this.levels[level];
    const firstWord = first >>> 5;
    const lastWord = last >>> 5;
    let added = 0;
    for (let w = firstWord; w <= lastWord; w++) {
      const lo = w === firstWord ? first & WORD_MASK : 0;
      const hi = w === lastWord ? last & WORD_MASK : WORD_MASK;
      const old = words[w];
      const updated = (old | rangeMask(lo, hi)) >>> 0;
      if (updated !== old) {
        added += popcount32(updated ^ old);
        words[w] = updated;
      }
    }
    if (level === 0 && added > 0) {
      this.setBits += added;
      this.touch(firstWord, lastWord);
    }
    // Words that did not change were already non-zero, so their parents are set.
    if (added > 0 && level + 1 < this.levels.length) this.setLevel(level + 1, firstWord, lastWord);
  }

  private resetLevel(level: number, first: number, last: number): void {
    const words = this.levels[level];
    const firstWord = first >>> 5;
    const lastWord = last >>> 5;
    let removed = 0;
    for (let w = firstWord; w <= lastWord; w++) {
      const lo = w === firstWord ? first & WORD_MASK : 0;
      const hi = w === lastWord ? last & WORD_MASK : WORD_MASK;
      const old = words[w];
      const updated = (old & ~rangeMask(lo, hi)) >>> 0;
      if (updated !== old) {
        removed += popcount32(updated ^ old);
        words[w] = updated;
      }
    }
    if (level === 0 && removed > 0) {
      this.setBits -= removed;
      this.touch(firstWord, lastWord);
    }
    if (level + 1 === this.levels.length) return;
    // Inner words are now empty; the edge words may still hold bits.
    const emptyFirst = words[firstWord] === 0 ? firstWord : firstWord + 1;
    const emptyLast = words[lastWord] === 0 ? lastWord : lastWord - 1;
    if (emptyFirst <= emptyLast) this.resetLevel(level + 1, emptyFirst, emptyLast);
  }

  /** First set bit at or after `pos` on `level`, or -1. */
  private findSet(level: number, pos: number): number {
    const words = this.levels[level];
    let word = pos >>> 5;
    if (word >= words.length) return -1;
    let bits = words[word] & (ALL_ONES << (pos & WORD_MASK));
    if (bits === 0) {
      if (level + 1 === this.levels.length) return -1;
      word = this.findSet(level + 1, word + 1);
      if (word < 0) return -1;
      bits = words[word];
    }
    return word * 32 + lowestBit(bits);
  }
}
