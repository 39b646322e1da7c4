/**
 * QEMU's JSON message splitter (qobject/json-streamer.c): counts brackets
 * over the lexer's tokens and hands each complete top-level value to the
 * parser, so a stream may carry several values per line or one value over
 * several lines. A lexical error or a limit drops what was collected.
 */
import { JsonLexer, MAX_TOKEN_SIZE, Token, type TokenType } from './json-lexer';
import { parseJson, type JsonMessage, type JsonToken } from './json-parser';
import { decodeCString } from '../mod-utf8';

const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
const MAX_NESTING = 1024;

export class JsonMessageParser {
  private readonly lexer = new JsonLexer((type, bytes) => this.processToken(type, bytes));
  private tokens: JsonToken[] = [];
  private braces = 0;
  private brackets = 0;
  private tokenSize = 0;

  /** `emit` gets each value or error as soon as its last byte is fed. */
  constructor(private readonly emit: (message: JsonMessage) => void) {}

  feed(bytes: Uint8Array): void {
    this.lexer.feed(bytes);
  }

  /** json_message_process_token(). */
  private processToken(type: TokenType | undefined, bytes: Uint8Array): void {
    const error = this.check(type, bytes);
    if (error) return this.flush({ error });
    this.tokens.push({ type: type!, bytes });
    this.tokenSize += bytes.length;
    if ((this.braces > 0 || this.brackets > 0) && this.braces >= 0 && this.brackets >= 0) return;
    this.flush(parseJson(this.tokens));
  }

  /** What stops collecting: a lexical error or one of QEMU's limits on a single value. */
  private check(type: TokenType | undefined, bytes: Uint8Array): string | undefined {
    if (type === Token.LCurly) this.braces++;
    else if (type === Token.RCurly) this.braces--;
    else if (type === Token.LSquare) this.brackets++;
    else if (type === Token.RSquare) this.brackets--;
    else if (type === Token.Error) return `JSON parse error, stray '${decodeCString(bytes)}'`;
    if (this.tokenSize + bytes.length + 1 > MAX_TOKEN_SIZE) return 'JSON token size limit exceeded';
    if (this.tokens.length + 1 > MAX_TOKEN_COUNT) return 'JSON token count limit exceeded';
    if (this.braces + this.brackets > MAX_NESTING) return 'JSON nesting depth limit exceeded';
    return undefined;
  }

  private flush(message: JsonMessage): void {
    this.braces = 0;
    this.brackets = 0;
    this.tokens = [];
    this.tokenSize = 0;
    this.emit(message);
  }
}
