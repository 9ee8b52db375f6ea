import { AGGREGATE_OPS, type AggregateOp, type BinaryOp, type PosRange } from "../ast.js";
import { ParseError } from "./errors.js";
import { parseNumberLiteral, tokenizeUntilError, type Token, type TokenType } from "./lexer.js";
import { goQuote } from "./strings.js";

/**
 * The token cursor shared by the expression and duration grammars: lookahead, positions
 * (UTF-16 indexes in tokens, UTF-8 byte offsets in the AST) and errors in Prometheus' words.
 */

export const PREC: Record<BinaryOp, number> = {
  or: 1,
  and: 2,
  unless: 2,
  "==": 3,
  "!=": 3,
  ">": 3,
  "<": 3,
  ">=": 3,
  "<=": 3,
  "+": 4,
  "-": 4,
  "*": 5,
  "/": 5,
  "%": 5,
  atan2: 5,
  "</": 5,
  ">/": 5,
  "^": 6,
};
export const POW_PREC = 6;
export const MAX_DEPTH = 1000;
export const TOKEN_OPS: Partial<Record<TokenType, BinaryOp>> = {
  ADD: "+",
  SUB: "-",
  MUL: "*",
  DIV: "/",
  MOD: "%",
  POW: "^",
  EQLC: "==",
  NEQ: "!=",
  GTR: ">",
  LSS: "<",
  GTE: ">=",
  LTE: "<=",
  TRIM_UPPER: "</",
  TRIM_LOWER: ">/",
};
export const WORD_OPS: Record<string, BinaryOp> = { and: "and", or: "or", unless: "unless", atan2: "atan2" };

export const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "start", "end", "anchored", "smoothed"]);

const OPERATOR_TOKENS = new Set<TokenType>(["AT", "ADD", "SUB", "MUL", "DIV", "MOD", "POW", "EQLC", "NEQ", "GTR", "LSS", "GTE", "LTE", "EQL_REGEX", "NEQ_REGEX", "TRIM_UPPER", "TRIM_LOWER"]);

/** Prometheus' Item.desc(): `<by>`, `<op:+>`, `<aggr:sum>`, `"("`, `identifier "x"`, `number "1"`. */
export function describe(t: Token): string {
  const truncated = (s: string): string => (s.length > 10 ? `${goQuote(s.slice(0, 10))}...` : goQuote(s));
  switch (t.type) {
    case "EOF":
      return "end of input";
    case "IDENT": {
      const lower = t.text.toLowerCase();
      if (AGGREGATE_OPS.includes(lower as AggregateOp)) return `<aggr:${t.text}>`;
      if (WORD_OPS[lower] !== undefined) return `<op:${t.text}>`;
      if (KEYWORDS.has(lower)) return `<${t.text}>`;
      if (lower === "inf" || lower === "nan") return `number ${goQuote(t.text)}`;
      return `identifier ${goQuote(t.text)}`;
    }
    case "METRIC_IDENT":
      return `metric identifier ${goQuote(t.text)}`;
    case "NUMBER":
      return `number ${truncated(t.text)}`;
    case "DURATION":
      return `duration ${truncated(t.text)}`;
    case "STRING":
      return `string ${truncated(t.text)}`;
    default:
      return OPERATOR_TOKENS.has(t.type) ? `<op:${t.text}>` : goQuote(t.text);
  }
}

export class TokenStream {
  private readonly toks: Token[];
  private i = 0;
  /** Nesting depth of the recursive descent, bounded by MAX_DEPTH. */
  depth = 0;
  private readonly byteAt: ((i: number) => number) | undefined;

  /** The lexical error in place of the last token, thrown when the parser reaches it. */
  private readonly lexError: ParseError | undefined;

  constructor(readonly input: string) {
    const lexed = tokenizeUntilError(input);
    this.toks = lexed.tokens;
    this.lexError = lexed.error;
    if (lexed.error !== undefined) this.toks.push({ type: "EOF", start: input.length, end: input.length, text: "" });
    // eslint-disable-next-line no-control-regex
    if (/[^\x00-\x7f]/.test(input)) {
      const map = new Uint32Array(input.length + 1);
      let b = 0;
      for (let k = 0; k < input.length; k++) {
        map[k] = b;
        const c = input.charCodeAt(k);
        if (c < 0x80) b += 1;
        else if (c < 0x800) b += 2;
        else if (c >= 0xd800 && c <= 0xdbff) {
          b += 4;
          map[++k] = b;
        } else b += 3;
      }
      map[input.length] = b;
      this.byteAt = (i) => map[i]!;
    }
  }

  /** Enters one nesting level; Go grows its stack, ours is fixed, so depth is bounded. */
  enter(): void {
    if (++this.depth > MAX_DEPTH) throw this.errAt(this.peek(), `expression nesting exceeds ${MAX_DEPTH} levels`);
  }
  leave(): void {
    this.depth--;
  }

  peek(k = 0): Token {
    const j = Math.min(this.i + k, this.toks.length - 1);
    if (this.lexError !== undefined && j === this.toks.length - 1) throw this.lexError;
    return this.toks[j]!;
  }
  next(): Token {
    if (this.lexError !== undefined && this.i === this.toks.length - 1) throw this.lexError;
    const t = this.toks[this.i]!;
    if (this.i < this.toks.length - 1) this.i++;
    return t;
  }
  isWord(t: Token, word: string): boolean {
    return t.type === "IDENT" && t.text.toLowerCase() === word;
  }
  expect(type: TokenType, context: string, what: string): Token {
    const t = this.peek();
    if (t.type !== type) throw this.errAt(t, `unexpected ${describe(t)} in ${context}, expected ${what}`);
    return this.next();
  }
  b(i: number): number {
    return this.byteAt === undefined ? i : this.byteAt(i);
  }
  pos(start: number, end: number): PosRange {
    return { start: this.b(start), end: this.b(end) };
  }
  errAt(t: Token, msg: string): ParseError {
    return new ParseError(this.input, t.start, t.end, msg);
  }
  /** Error at a byte PosRange (node positions are bytes; ParseError wants UTF-16 indexes). */
  errPos(p: PosRange, msg: string): ParseError {
    return new ParseError(this.input, this.charIndex(p.start), this.charIndex(p.end), msg);
  }
  charIndex(byte: number): number {
    if (this.byteAt === undefined) return byte;
    let lo = 0;
    let hi = this.input.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.byteAt(mid) < byte) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  /** UTF-16 index of the end of the previous token. */
  lastEnd(): number {
    return this.toks[this.i - 1]?.end ?? 0;
  }

  /** A NUMBER token's value; like Go's ParseFloat, a finite literal that overflows is an error. */
  number(t: Token): number {
    const v = parseNumberLiteral(t.text);
    if (!Number.isFinite(v)) {
      throw this.errAt(t, `error parsing number: strconv.ParseFloat: parsing ${goQuote(t.text)}: value out of range`);
    }
    return v;
  }

}
