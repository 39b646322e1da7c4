/**
 * QEMU's JSON lexer (qobject/json-lexer.c), byte for byte: the same state
 * table, so the same bytes become the same tokens, the same errors, and the
 * same recovery. It accepts QEMU's extensions (single-quoted strings, `\'`)
 * and leaves checking escapes, UTF-8 and keywords to the parser.
 */

/** Token types; numbered above the lexer states, JSON_ERROR being 0, as in QEMU. */
export const Token = {
  Error: 0,
  LCurly: 100,
  RCurly: 101,
  LSquare: 102,
  RSquare: 103,
  Colon: 104,
  Comma: 105,
  Integer: 106,
  Float: 107,
  Keyword: 108,
  String: 109,
} as const;
export type TokenType = (typeof Token)[keyof typeof Token];

const IN_RECOVERY = 1;
const IN_DQ_STRING_ESCAPE = 2;
const IN_DQ_STRING = 3;
const IN_SQ_STRING_ESCAPE = 4;
const IN_SQ_STRING = 5;
const IN_ZERO = 6;
const IN_EXP_DIGITS = 7;
const IN_EXP_SIGN = 8;
const IN_EXP_E = 9;
const IN_MANTISSA = 10;
const IN_MANTISSA_DIGITS = 11;
const IN_DIGITS = 12;
const IN_SIGN = 13;
const IN_KEYWORD = 14;
const IN_START = 15;

/** The transition does not consume the byte: it is looked at again from the new state. */
const LOOKAHEAD = 0x80;

const ch = (c: string) => c.charCodeAt(0);
const range = (from: string | number, to: string | number): number[] => {
  const [a, b] = [typeof from === 'string' ? ch(from) : from, typeof to === 'string' ? ch(to) : to];
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
};

/** json_lexer[][]: every entry not set is JSON_ERROR (0). */
const TABLE: Uint8Array[] = Array.from({ length: IN_START + 1 }, () => new Uint8Array(256));
function set(state: number, bytes: number[] | string, next: number): void {
  for (const byte of typeof bytes === 'string' ? [...bytes].map(ch) : bytes) TABLE[state][byte] = next;
}
/** TERMINAL(): any byte ends the token and is looked at again. */
const terminal = (state: number, token: number) => set(state, range(0, 0xff), token | LOOKAHEAD);

// Error recovery: skip to a structural character, a control character other than tab, or 0xFE/0xFF.
set(IN_RECOVERY, range(0, 0x1f), IN_START | LOOKAHEAD);
set(IN_RECOVERY, range(0x20, 0xfd), IN_RECOVERY);
set(IN_RECOVERY, [0xfe, 0xff], IN_START | LOOKAHEAD);
set(IN_RECOVERY, '\t', IN_RECOVERY);
set(IN_RECOVERY, '[]{}:,', IN_START | LOOKAHEAD);

for (const [escape, string, quote] of [[IN_DQ_STRING_ESCAPE, IN_DQ_STRING, '"'], [IN_SQ_STRING_ESCAPE, IN_SQ_STRING, "'"]] as const) {
  set(escape, range(0x20, 0xfd), string);
  set(string, range(0x20, 0xfd), string);
  set(string, '\\', escape);
  set(string, quote, Token.String);
}

terminal(IN_ZERO, Token.Integer);
set(IN_ZERO, range('0', '9'), Token.Error);
set(IN_ZERO, '.', IN_MANTISSA);

terminal(IN_EXP_DIGITS, Token.Float);
set(IN_EXP_DIGITS, range('0', '9'), IN_EXP_DIGITS);
set(IN_EXP_SIGN, range('0', '9'), IN_EXP_DIGITS);
set(IN_EXP_E, '-+', IN_EXP_SIGN);
set(IN_EXP_E, range('0', '9'), IN_EXP_DIGITS);

terminal(IN_MANTISSA_DIGITS, Token.Float);
set(IN_MANTISSA_DIGITS, range('0', '9'), IN_MANTISSA_DIGITS);
set(IN_MANTISSA_DIGITS, 'eE', IN_EXP_E);
set(IN_MANTISSA, range('0', '9'), IN_MANTISSA_DIGITS);

terminal(IN_DIGITS, Token.Integer);
set(IN_DIGITS, range('0', '9'), IN_DIGITS);
set(IN_DIGITS, 'eE', IN_EXP_E);
set(IN_DIGITS, '.', IN_MANTISSA);
set(IN_SIGN, '0', IN_ZERO);
set(IN_SIGN, range('1', '9'), IN_DIGITS);

terminal(IN_KEYWORD, Token.Keyword);
set(IN_KEYWORD, range('a', 'z'), IN_KEYWORD);

set(IN_START, '"', IN_DQ_STRING);
set(IN_START, "'", IN_SQ_STRING);
set(IN_START, '0', IN_ZERO);
set(IN_START, range('1', '9'), IN_DIGITS);
set(IN_START, '-', IN_SIGN);
set(IN_START, '{', Token.LCurly);
set(IN_START, '}', Token.RCurly);
set(IN_START, '[', Token.LSquare);
set(IN_START, ']', Token.RSquare);
set(IN_START, ',', Token.Comma);
set(IN_START, ':', Token.Colon);
set(IN_START, range('a', 'z'), IN_KEYWORD);
set(IN_START, ' \t\r\n', IN_START);

/** QEMU caps a single token at 64 MiB. */
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

/** Receives each token (or lexical error) with its bytes; `undefined` type: a token grown too large. */
export type TokenSink = (type: TokenType | undefined, bytes: Uint8Array) => void;

export class JsonLexer {
  private state = IN_START;
  private token = new Uint8Array(64);
  private length = 0;

  constructor(private readonly sink: TokenSink) {}

  feed(bytes: Uint8Array): void {
    for (const byte of bytes) this.feedByte(byte);
  }

  /** json_lexer_feed_char(). */
  private feedByte(byte: number): void {
    let consumed = false;
    while (!consumed) {
      const next = TABLE[this.state][byte];
      consumed = !(next & LOOKAHEAD);
      let state = next & ~LOOKAHEAD;
      if (consumed) this.append(byte);
      if (state >= Token.LCurly) {
        this.sink(state as TokenType, this.take());
        state = IN_START;
      } else if (state === IN_START) {
        this.length = 0;
      } else if (state === Token.Error) {
        this.sink(Token.Error, this.take());
        state = IN_RECOVERY;
      } else if (state === IN_RECOVERY) {
        this.length = 0;
      }
      this.state = state;
    }
    // A token may not grow without bound; the streamer reports it, and lexing starts afresh.
    if (this.length > MAX_TOKEN_SIZE) {
      this.sink(undefined, this.take());
      this.state = IN_START;
    }
  }

  private append(byte: number): void {
    if (this.length === this.token.length) {
      const grown = new Uint8Array(this.token.length * 2);
      grown.set(this.token);
      this.token = grown;
    }
    this.token[this.length++] = byte;
  }

  private take(): Uint8Array {
    const bytes = this.token.slice(0, this.length);
    this.length = 0;
    return bytes;
  }
}
