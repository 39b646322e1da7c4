/**
 * QEMU's modified UTF-8 (util/unicode.c): how its JSON parser decodes the
 * bytes of a string and how its JSON writer reads the bytes of an error
 * message. Modified UTF-8 writes U+0000 as C0 80 so C strings can hold it.
 */

/** is_valid_codepoint(): no surrogates, no noncharacters, nothing past U+10FFFF. */
export function isValidCodepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return !(cp >= 0xd800 && cp <= 0xdfff);
}

const MIN_CODEPOINT = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * mod_utf8_codepoint(): the character at `at`, or -1 for an invalid
 * sequence, and where the next one starts. Bytes past the end read as NUL,
 * as they would in the C string.
 */
export function modUtf8Codepoint(bytes: Uint8Array, at: number): { cp: number; end: number } {
  const byteAt = (i: number) => (i < bytes.length ? bytes[i] : 0);
  let p = at;
  const lead = byteAt(p++);
  if (lead < 0x80) return { cp: lead, end: p };
  // 0xFE and 0xFF never occur in UTF-8; 10xxxxxx is a continuation byte without a lead.
  if (lead >= 0xfe || (lead & 0x40) === 0) return { cp: -1, end: p };
  let len = 0;
  let mask = 0x80;
  for (; lead & mask; mask >>= 1) len++;
  let cp = lead & (mask - 1);
  for (let i = 1; i < len; i++) {
    const byte = byteAt(p);
    if ((byte & 0xc0) !== 0x80) return { cp: -1, end: p };
    p++;
    cp = cp * 64 + (byte & 0x3f);
  }
  if (!isValidCodepoint(cp)) return { cp: -1, end: p };
  // Overlong forms are invalid, except C0 80 for U+0000.
  if (cp < MIN_CODEPOINT[len - 2] && !(cp === 0 && len === 2)) return { cp: -1, end: p };
  return { cp, end: p };
}

/**
 * A C string's bytes as QEMU's JSON writer reads them: up to the first NUL,
 * each invalid sequence one U+FFFD. Used for texts QEMU quotes back verbatim
 * (the stray bytes in a JSON parse error).
 */
export function decodeCString(bytes: Uint8Array): string {
  let text = '';
  for (let at = 0; at < bytes.length && bytes[at] !== 0; ) {
    const { cp, end } = modUtf8Codepoint(bytes, at);
    text += String.fromCodePoint(cp < 0 ? 0xfffd : cp);
    at = end;
  }
  return text;
}
