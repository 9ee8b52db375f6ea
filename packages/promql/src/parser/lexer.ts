import { ParseError } from "./errors.js";
import { goQuote, goRuneQuote, goRuneU } from "./strings.js";

/**
 * The PromQL lexer. Like Prometheus' it is context sensitive: inside `{…}` identifiers are
 * label names (no `:`), inside `[…]` a `:` separates a subquery range from its step. Keywords
 * are not distinguished here: the parser looks at identifier text (case-insensitively where
 * Prometheus does), because many keywords are also valid metric or label names.
 */
export type TokenType =
  | "NUMBER"
  | "DURATION"
  | "STRING"
  | "IDENT"
  | "METRIC_IDENT"
  | "LPAREN"
  | "RPAREN"
  | "LBRACE"
  | "RBRACE"
  | "LBRACKET"
  | "RBRACKET"
  | "COMMA"
  | "COLON"
  | "EQL"
  | "NEQ"
  | "EQL_REGEX"
  | "NEQ_REGEX"
  | "ADD"
  | "SUB"
  | "MUL"
  | "DIV"
  | "MOD"
  | "POW"
  | "EQLC"
  | "GTR"
  | "LSS"
  | "GTE"
  | "LTE"
  | "TRIM_UPPER"
  | "TRIM_LOWER"
  | "AT"
  | "EOF";

export interface Token {
  readonly type: TokenType;
  /** Start and end as UTF-16 indexes into the query. */
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const PUNCT: Record<string, TokenType> = {
  "(": "LPAREN",
  ")": "RPAREN",
  ",": "COMMA",
  "+": "ADD",
  "-": "SUB",
  "*": "MUL",
  "/": "DIV",
  "%": "MOD",
  "^": "POW",
  "@": "AT",
};

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}
function isAlpha(c: string): boolean {
  return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_";
}
export function isAlphaNumeric(c: string): boolean {
  return isAlpha(c) || isDigit(c);
}
function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r";
}
const HEX = "0123456789abcdefABCDEF";

/** Tokenizes a whole query; throws ParseError at the first lexical error. */
export function tokenize(input: string): Token[] {
  const r = tokenizeUntilError(input);
  if (r.error !== undefined) throw r.error;
  return r.tokens;
}

/**
 * The tokens before the first lexical error, and that error. Prometheus' parser pulls tokens
 * one at a time, so a grammar error before the bad spot wins over it (`sum by (job (up)`:
 * `unexpected "(" in grouping opts` at 1:13, not `unclosed left parenthesis` at the end).
 */
export function tokenizeUntilError(input: string): { tokens: Token[]; error: ParseError | undefined } {
  const out: Token[] = [];
  try {
    lexInto(input, out);
    return { tokens: out, error: undefined };
  } catch (e) {
    if (e instanceof ParseError) return { tokens: out, error: e };
    throw e;
  }
}

function lexInto(input: string, out: Token[]): void {
  let pos = 0;
  let braceOpen = false;
  let bracketOpen = false;
  let parenDepth = 0;
  const n = input.length;
  const err = (at: number, msg: string): ParseError => new ParseError(input, at, at, msg);
  const emit = (type: TokenType, start: number, end: number): void => {
    out.push({ type, start, end, text: input.slice(start, end) });
  };

  while (pos < n) {
    const c = input[pos]!;
    if (isSpace(c)) {
      pos++;
      continue;
    }
    if (c === "#") {
      while (pos < n && input[pos] !== "\n") pos++;
      continue;
    }
    const start = pos;
    if (braceOpen) {
      if (c === ",") {
        emit("COMMA", pos, ++pos);
      } else if (c === "=") {
        if (input[pos + 1] === "~") {
          pos += 2;
          emit("EQL_REGEX", start, pos);
        } else {
          emit("EQL", start, ++pos);
        }
      } else if (c === "!") {
        const d = input[pos + 1];
        if (d === "=") {
          pos += 2;
          emit("NEQ", start, pos);
        } else if (d === "~") {
          pos += 2;
          emit("NEQ_REGEX", start, pos);
        } else {
          throw err(pos, `unexpected character after '!' inside braces: ${goRuneQuote(d)}`);
        }
      } else if (c === '"' || c === "'" || c === "`") {
        pos = lexString(input, pos, err);
        emit("STRING", start, pos);
      } else if (isAlpha(c)) {
        while (pos < n && isAlphaNumeric(input[pos]!)) pos++;
        emit("IDENT", start, pos);
      } else if (c === "}") {
        braceOpen = false;
        emit("RBRACE", pos, ++pos);
      } else if (c === "{") {
        throw err(pos, "unexpected left brace '{'");
      } else {
        throw err(pos, `unexpected character inside braces: ${goRuneQuote(c)}`);
      }
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      if (bracketOpen) throw err(pos, `unexpected character in duration expression: ${goRuneQuote(c)}`);
      pos = lexString(input, pos, err);
      emit("STRING", start, pos);
      continue;
    }
    if (isDigit(c) || (c === "." && pos + 1 < n && isDigit(input[pos + 1]!))) {
      const r = lexNumberOrDuration(input, pos);
      if ("bad" in r) throw err(pos, `bad number or duration syntax: ${goQuote(input.slice(pos, r.bad))}`);
      pos = r.end;
      emit(r.type, start, pos);
      continue;
    }
    if (isAlpha(c) || (c === ":" && !bracketOpen)) {
      let colon = false;
      while (pos < n) {
        const d = input[pos]!;
        if (isAlphaNumeric(d)) pos++;
        else if (d === ":" && !bracketOpen) {
          colon = true;
          pos++;
        } else break;
      }
      emit(colon ? "METRIC_IDENT" : "IDENT", start, pos);
      continue;
    }
    const p = PUNCT[c];
    if (p !== undefined) {
      if (c === "(") parenDepth++;
      if (c === ")") {
        if (parenDepth === 0) throw err(pos + 1, "unexpected right parenthesis ')'");
        parenDepth--;
      }
      emit(p, pos, ++pos);
      continue;
    }
    switch (c) {
      case "=":
        // Outside braces `=~` is not an operator (Prometheus' lexer rejects it here).
        if (input[pos + 1] === "=") {
          pos += 2;
          emit("EQLC", start, pos);
        } else if (input[pos + 1] === "~") {
          throw err(pos, "unexpected character after '=': '~'");
        } else {
          emit("EQL", start, ++pos);
        }
        break;
      case "!":
        if (input[pos + 1] === "=") {
          pos += 2;
          emit("NEQ", start, pos);
        } else {
          throw err(pos, `unexpected character after '!': ${goRuneQuote(input[pos + 1])}`);
        }
        break;
      case "<":
      case ">":
        if (input[pos + 1] === "=") {
          pos += 2;
          emit(c === "<" ? "LTE" : "GTE", start, pos);
        } else if (input[pos + 1] === "/") {
          pos += 2;
          emit(c === "<" ? "TRIM_UPPER" : "TRIM_LOWER", start, pos);
        } else {
          emit(c === "<" ? "LSS" : "GTR", start, ++pos);
        }
        break;
      case "{":
        braceOpen = true;
        emit("LBRACE", pos, ++pos);
        break;
      case "}":
        throw err(pos, "unexpected character: '}'");
      case "[":
        if (bracketOpen) throw err(pos, "unexpected left bracket '['");
        bracketOpen = true;
        emit("LBRACKET", pos, ++pos);
        break;
      case "]":
        if (!bracketOpen) throw err(pos, "unexpected right bracket ']'");
        bracketOpen = false;
        emit("RBRACKET", pos, ++pos);
        break;
      case ":":
        emit("COLON", pos, ++pos);
        break;
      default:
        throw err(pos, `unexpected character: ${goRuneQuote(c)}`);
    }
  }
  if (braceOpen) throw err(n, "unexpected end of input inside braces");
  if (bracketOpen) throw err(n, "unexpected end of input in duration expression");
  if (parenDepth > 0) throw err(n, "unclosed left parenthesis");
  out.push({ type: "EOF", start: n, end: n, text: "" });
}

/** Scans a quoted string starting at `pos` (the quote); returns the index after the closing quote. */
function lexString(input: string, pos: number, err: (at: number, msg: string) => ParseError): number {
  const q = input[pos]!;
  const start = pos;
  pos++;
  if (q === "`") {
    const end = input.indexOf("`", pos);
    if (end < 0) throw err(start, "unterminated raw string");
    return end + 1;
  }
  for (;;) {
    if (pos >= input.length) throw err(start, "unterminated quoted string");
    const c = input[pos]!;
    if (c === "\n") throw err(start, "unterminated quoted string");
    if (c === "\\") {
      pos = checkEscape(input, pos + 1, q, err);
      continue;
    }
    pos++;
    if (c === q) return pos;
  }
}

function checkEscape(input: string, pos: number, q: string, err: (at: number, msg: string) => ParseError): number {
  const c = input[pos];
  if (c === undefined) throw err(pos, "escape sequence not terminated");
  if ("abfnrtv\\".includes(c) || c === q) return pos + 1;
  let digits: number;
  let base: number;
  let max: number;
  let p = pos;
  if (c >= "0" && c <= "7") {
    digits = 3;
    base = 8;
    max = 255;
  } else if (c === "x") {
    digits = 2;
    base = 16;
    max = 255;
    p++;
  } else if (c === "u") {
    digits = 4;
    base = 16;
    max = 0x10ffff;
    p++;
  } else if (c === "U") {
    digits = 8;
    base = 16;
    max = 0x10ffff;
    p++;
  } else {
    throw err(pos, `unknown escape sequence ${goRuneU(c)}`);
  }
  let x = 0;
  for (let i = 0; i < digits; i++) {
    const d = input[p];
    if (d === undefined) throw err(p, "escape sequence not terminated");
    const v = HEX.indexOf(d);
    const dv = v >= 16 ? v - 6 : v;
    if (v < 0 || dv >= base) throw err(p, `illegal character ${goRuneU(d)} in escape sequence`);
    x = x * base + dv;
    p++;
  }
  if (x > max || (x >= 0xd800 && x < 0xe000)) throw err(pos, "escape sequence is an invalid Unicode code point");
  return p;
}

/**
 * Prometheus' scanNumber with the duration fallback. Returns the token type and end index, or
 * `bad`: the end of the malformed text, up to and including the offending character (what
 * Prometheus quotes in "bad number or duration syntax").
 */
export function lexNumberOrDuration(input: string, pos: number): { type: "NUMBER" | "DURATION"; end: number } | { bad: number } {
  const n = input.length;
  const start = pos;
  let digits = "0123456789";
  let hex = false;
  if (input[pos] === "0" && (input[pos + 1] === "x" || input[pos + 1] === "X")) {
    pos += 2;
    hex = true;
    digits = HEX;
    if (input[pos] === "_") pos++;
  }
  const inSet = (c: string | undefined, s: string): boolean => c !== undefined && s.includes(c);
  let dot = false;
  let exp = false;
  let sawDigit = false;
  for (;;) {
    const c = input[pos];
    if (inSet(c, digits)) {
      sawDigit = true;
      pos++;
    } else if (c === "_") {
      // An underscore must sit between two digits.
      if (!sawDigit || !inSet(input[pos - 1], digits) || !inSet(input[pos + 1], digits)) return { bad: Math.min(n, pos + 2) };
      pos++;
    } else if (c === "." && !hex) {
      if (dot || exp) return { bad: pos + 1 };
      dot = true;
      pos++;
    } else if ((c === "e" || c === "E") && !hex) {
      if (exp || !sawDigit) break;
      const d = input[pos + 1];
      const e = input[pos + 2];
      if (isDigit(d ?? "") || ((d === "+" || d === "-") && isDigit(e ?? ""))) {
        exp = true;
        pos += d === "+" || d === "-" ? 2 : 1;
      } else {
        break;
      }
    } else {
      break;
    }
  }
  if (hex && !sawDigit) return { bad: Math.min(n, pos + 1) };
  if (pos >= n || !isAlphaNumeric(input[pos]!)) return { type: "NUMBER", end: pos };
  if (hex || exp) return { bad: pos + 1 };
  // A duration: the number so far followed by units, e.g. 1h30m, 5m, 100ms. Like Prometheus'
  // lexer this also takes `1.5h`; parseDurationMs then rejects it.
  if (!inSet(input[pos], "smhdwy")) return { bad: pos + 1 };
  pos++;
  if (input[pos] === "s") pos++;
  while (pos < n && isDigit(input[pos]!)) {
    while (pos < n && isDigit(input[pos]!)) pos++;
    if (!inSet(input[pos], "smhdw")) return { bad: pos };
    pos++;
    if (input[pos] === "s") pos++;
  }
  if (pos < n && isAlphaNumeric(input[pos]!)) return { bad: pos + 1 };
  void start;
  return { type: "DURATION", end: pos };
}

const UNITS: Record<string, number> = {
  y: 365 * 24 * 3600_000,
  w: 7 * 24 * 3600_000,
  d: 24 * 3600_000,
  h: 3600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};
const UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"];

/** model.ParseDuration: `1h30m`, `5m`, `0`, units y w d h m s ms in that order; → ms. */
export function parseDurationMs(s: string): number | undefined {
  if (s === "0") return 0;
  const re = /(\d+)(ms|[ywdhms])/gy;
  let total = 0;
  let last = -1;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    const idx = UNIT_ORDER.indexOf(m[2]!);
    if (idx <= last) return undefined;
    last = idx;
    total += Number(m[1]) * UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== s.length || last < 0) return undefined;
  if (!Number.isSafeInteger(total)) return undefined;
  return total;
}

/** Value of a NUMBER token like Go's ParseInt(s, 0, 64) falling back to ParseFloat. */
export function parseNumberLiteral(text: string): number {
  const s = text.replaceAll("_", "");
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return Number(BigInt(s));
  if (/^0[0-7]+$/.test(s)) return Number(BigInt("0o" + s.slice(1)));
  return Number(s);
}
