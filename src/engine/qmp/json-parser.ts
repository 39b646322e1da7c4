/**
 * QEMU's JSON parser (qobject/json-parser.c): one complete value's tokens
 * into a value, with QEMU's messages. The first error found is the one
 * reported, even when an outer rule fails too, as parse_error() keeps it.
 */
import { Token, type TokenType } from './json-lexer';
import { QFloat } from '../qfloat';
import { decodeCString, isValidCodepoint, modUtf8Codepoint } from '../mod-utf8';

export type JsonValue = null | boolean | number | bigint | QFloat | string | JsonValue[] | { [key: string]: JsonValue };

/** What the wire brings: a value, or the text of a JSON parse error. */
export type JsonMessage = { value: JsonValue } | { error: string };

export interface JsonToken {
  type: TokenType;
  bytes: Uint8Array;
}

const INT64_MIN = -(2n ** 63n);
const UINT64_LIMIT = 2n ** 64n;
const utf8 = new TextDecoder();
/** parse_error() formats into a 1024-byte buffer. */
const MAX_MESSAGE = 1023;

/** json_parser_parse(). */
export function parseJson(tokens: readonly JsonToken[]): JsonMessage {
  const parser = new Parser(tokens);
  const value = parser.parseValue();
  return parser.error !== undefined || value === undefined ? { error: `JSON parse error, ${parser.error}` } : { value };
}

class Parser {
  error: string | undefined;
  private next = 0;

  constructor(private readonly tokens: readonly JsonToken[]) {}

  /** parse_error(): the first error stays. */
  private fail(message: string): undefined {
    this.error ??= message.slice(0, MAX_MESSAGE);
    return undefined;
  }

  private peek(): JsonToken | undefined {
    return this.tokens[this.next];
  }

  private pop(): JsonToken | undefined {
    return this.tokens[this.next++];
  }

  parseValue(): JsonValue | undefined {
    const token = this.peek();
    if (!token) return this.fail('premature EOI');
    switch (token.type) {
      case Token.LCurly:
        return this.parseObject();
      case Token.LSquare:
        return this.parseArray();
      case Token.Integer:
      case Token.Float:
      case Token.String:
        return this.parseLiteral();
      case Token.Keyword:
        return this.parseKeyword();
      default:
        return this.fail('expecting value');
    }
  }

  private parseObject(): JsonValue | undefined {
    this.pop();
    const dict: { [key: string]: JsonValue } = {};
    const peek = this.peek();
    if (!peek) return this.fail('premature EOI');
    if (peek.type === Token.RCurly) {
      this.pop();
      return dict;
    }
    if (!this.parsePair(dict)) return undefined;
    for (let token = this.pop(); token?.type !== Token.RCurly; token = this.pop()) {
      if (!token) return this.fail('premature EOI');
      if (token.type !== Token.Comma) return this.fail('expected separator in dict');
      if (!this.parsePair(dict)) return undefined;
    }
    return dict;
  }

  private parsePair(dict: { [key: string]: JsonValue }): boolean {
    if (!this.peek()) return !!this.fail('premature EOI');
    const key = this.parseValue();
    if (typeof key !== 'string') return !!this.fail('key is not a string in object');
    const colon = this.pop();
    if (!colon) return !!this.fail('premature EOI');
    if (colon.type !== Token.Colon) return !!this.fail('missing : in object pair');
    const value = this.parseValue();
    if (value === undefined) return !!this.fail('Missing value in dict');
    if (Object.hasOwn(dict, key)) return !!this.fail('duplicate key');
    // defineProperty, so that a key such as "__proto__" is a member like any other.
    Object.defineProperty(dict, key, { value, enumerable: true, writable: true, configurable: true });
    return true;
  }

  private parseArray(): JsonValue | undefined {
    this.pop();
    const list: JsonValue[] = [];
    const peek = this.peek();
    if (!peek) return this.fail('premature EOI');
    if (peek.type === Token.RSquare) {
      this.pop();
      return list;
    }
    const first = this.parseValue();
    if (first === undefined) return this.fail('expecting value');
    list.push(first);
    for (let token = this.pop(); token?.type !== Token.RSquare; token = this.pop()) {
      if (!token) return this.fail('premature EOI');
      if (token.type !== Token.Comma) return this.fail('expected separator in list');
      const element = this.parseValue();
      if (element === undefined) return this.fail('expecting value');
      list.push(element);
    }
    return list;
  }

  private parseKeyword(): JsonValue | undefined {
    const word = utf8.decode(this.pop()!.bytes);
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (word === 'null') return null;
    return this.fail(`invalid keyword '${word}'`);
  }

  private parseLiteral(): JsonValue | undefined {
    const token = this.pop()!;
    if (token.type === Token.String) return this.parseString(token.bytes);
    const text = utf8.decode(token.bytes);
    if (token.type === Token.Integer) {
      // An int64, else a uint64, else (too large either way) a double.
      const integer = BigInt(text);
      if (integer >= INT64_MIN && integer < UINT64_LIMIT) {
        const number = Number(integer);
        return Number.isSafeInteger(number) ? number : integer;
      }
    }
    // strtod() and Number() both round correctly; overflow is infinity either way.
    return new QFloat(Number(text));
  }

  /** parse_string(): escapes, surrogate pairs and UTF-8 checked; the token still has its quotes. */
  private parseString(token: Uint8Array): string | undefined {
    // The parser reads a NUL-terminated copy; reading past the end sees the NUL.
    const bytes = new Uint8Array(token.length + 1);
    bytes.set(token);
    const quote = bytes[0];
    let text = '';
    let at = 1;
    while (bytes[at] !== quote) {
      if (bytes[at] !== 0x5c) {
        const { cp, end } = modUtf8Codepoint(bytes, at);
        if (cp < 0) return this.fail('invalid UTF-8 sequence in string');
        text += String.fromCodePoint(cp);
        at = end;
        continue;
      }
      const begin = at;
      const escape = String.fromCharCode(bytes[at + 1]);
      at += 2;
      const simple = SIMPLE_ESCAPES[escape];
      if (simple !== undefined) {
        text += simple;
        continue;
      }
      if (escape !== 'u') return this.fail('invalid escape sequence in string');
      let cp = hex4(bytes, at);
      at += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && bytes[at] === 0x5c && bytes[at + 1] === 0x75) {
        const trailing = hex4(bytes, at + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          cp = 0x10000 + ((cp & 0x3ff) << 10) + (trailing & 0x3ff);
          at += 6;
        } else {
          cp = -1;
        }
      }
      if (!isValidCodepoint(cp)) {
        return this.fail(`${decodeCString(bytes.subarray(begin, at))} is not a valid Unicode character`);
      }
      text += String.fromCodePoint(cp);
    }
    return text;
  }
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t',
};

/** cvt4hex(): four hex digits, or -1 (it stops at the first other byte, the NUL included). */
function hex4(bytes: Uint8Array, at: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const digit = parseInt(String.fromCharCode(bytes[at + i] ?? 0), 16);
    if (Number.isNaN(digit)) return -1;
    cp = cp * 16 + digit;
  }
  return cp;
}
