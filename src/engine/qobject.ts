/**
 * QEMU's QObject JSON rendering. A QDict iterates its 512 hash buckets in
 * order (tdb_hash of the key), newest entry first within a bucket, so this
 * reproduces the member order QEMU prints, byte for byte.
 */

import { QFloat } from './qfloat';

const BUCKETS = 512;
const utf8 = new TextEncoder();

function tdbHash(key: string): number {
  const bytes = utf8.encode(key);
  let value = Math.imul(0x238f13af, bytes.length) >>> 0;
  for (let i = 0; i < bytes.length; i++) value = (value + ((bytes[i] << ((i * 5) % 24)) >>> 0)) >>> 0;
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

/** The keys of a dict built by inserting `keys` in order, as QEMU iterates them. */
export function qdictOrder(keys: readonly string[]): string[] {
  return keys
    .map((key, inserted) => ({ key, inserted, bucket: tdbHash(key) % BUCKETS }))
    .sort((a, b) => a.bucket - b.bucket || b.inserted - a.inserted)
    .map((entry) => entry.key);
}

/**
 * qobject_to_json(): `{"a": 1, "b": [2, 3]}` with QEMU's member order, string
 * escapes and number formats.
 */
export function toQemuJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(toQemuJson).join(', ')}]`;
  if (value instanceof QFloat) return printfG17(value.value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const keys = qdictOrder(Object.keys(record).filter((key) => record[key] !== undefined));
    return `{${keys.map((key) => `${quote(key)}: ${toQemuJson(record[key])}`).join(', ')}}`;
  }
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') return formatNumber(value);
  return JSON.stringify(value);
}

const ESCAPES: Readonly<Record<string, string>> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const u4 = (unit: number) => `\\u${unit.toString(16).toUpperCase().padStart(4, '0')}`;

/** QEMU's to_json_str(): ASCII out, `\uXXXX` in uppercase hex for the rest, U+FFFD for what is no valid character. */
function quote(text: string): string {
  let out = '"';
  for (const char of text) {
    let cp = char.codePointAt(0)!;
    // mod_utf8_codepoint() refuses surrogates and noncharacters.
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) cp = 0xfffd;
    if (ESCAPES[char] !== undefined) out += ESCAPES[char];
    else if (cp > 0xffff) out += u4(0xd800 + ((cp - 0x10000) >> 10)) + u4(0xdc00 + ((cp - 0x10000) & 0x3ff));
    else if (cp < 0x20 || cp >= 0x7f) out += u4(cp);
    else out += char;
  }
  return `${out}"`;
}

/**
 * An integer in int64 or uint64 range prints as an integer, all its digits
 * (QEMU parses such a literal as one; String(2 ** 62) would round); any other
 * number is a double, printed with `%.17g`.
 */
function formatNumber(value: number): string {
  if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 64) return BigInt(value).toString();
  return printfG17(value);
}

/** C's `printf("%.17g")`, exact: the double's full decimal value, rounded half to even at 17 digits. */
function printfG17(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (!Number.isFinite(value)) return value < 0 ? '-inf' : 'inf';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (value === 0) return `${sign}0`;
  // |value| = mantissa * 2^exponent, exactly; then as digits * 10^scale.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(value));
  const bits = view.getBigUint64(0);
  const biased = Number(bits >> 52n);
  const mantissa = (bits & ((1n << 52n) - 1n)) | (biased ? 1n << 52n : 0n);
  const exponent = (biased || 1) - 1075;
  let digits = exponent >= 0 ? mantissa << BigInt(exponent) : mantissa * 5n ** BigInt(-exponent);
  let scale = Math.min(exponent, 0);
  const excess = digits.toString().length - 17;
  if (excess > 0) {
    const unit = 10n ** BigInt(excess);
    const rest = digits % unit;
    digits /= unit;
    scale += excess;
    if (rest * 2n > unit || (rest * 2n === unit && digits % 2n === 1n)) digits++;
  }
  let text = digits.toString();
  const point = scale + text.length - 1; // decimal exponent of the first digit
  text = text.replace(/0+$/, '');
  if (point < -4 || point >= 17) {
    const fraction = text.length > 1 ? `.${text.slice(1)}` : '';
    return `${sign}${text[0]}${fraction}e${point < 0 ? '-' : '+'}${String(Math.abs(point)).padStart(2, '0')}`;
  }
  if (point < 0) return `${sign}0.${'0'.repeat(-point - 1)}${text}`;
  const whole = text.slice(0, point + 1).padEnd(point + 1, '0');
  const fraction = text.slice(point + 1);
  return `${sign}${whole}${fraction ? `.${fraction}` : ''}`;
}
