// A tolerant PromQL tokenizer for highlighting and for finding what the cursor is completing.
// It never throws: incomplete input (an open string, a half-typed matcher) is normal while
// typing. The server's parser is the authority on validity.

export const AGGREGATIONS = [
  "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
  "quantile", "limitk", "limit_ratio",
] as const;

export const FUNCTIONS = [
  "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
  "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
  "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "exp", "floor",
  "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
  "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "irate", "label_join",
  "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time",
  "minute", "month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate",
  "resets", "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
  "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector",
  "year", ...AGGREGATIONS,
] as const;

const FUNCTION_SET = new Set<string>(FUNCTIONS);
const AGGREGATION_SET = new Set<string>(AGGREGATIONS);

export const KEYWORDS = [
  "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
  "atan2", "start", "end",
] as const;
const KEYWORD_SET = new Set<string>(KEYWORDS);
const GROUPING = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);

export type TokenKind =
  | "ws" | "comment" | "string" | "number" | "duration" | "ident" | "op" | "matchOp"
  | "lbrace" | "rbrace" | "lparen" | "rparen" | "lbracket" | "rbracket" | "comma" | "other";

export interface Token {
  readonly kind: TokenKind;
  readonly start: number;
  readonly end: number;
  readonly text: string;
  /** Inside `{…}` (label matchers). */
  readonly inBraces: boolean;
  /** For strings: the closing quote is missing. */
  readonly open?: boolean;
}

const DURATION_RE = /(\d+(ms|s|m|h|d|w|y))+/y;
const NUMBER_RE = /(0x[0-9a-fA-F]+|\d*\.?\d+(?:[eE][+-]?\d+)?)/y;
const IDENT_RE = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let braces = 0;
  const push = (kind: TokenKind, end: number, extra: { open?: boolean } = {}): void => {
    out.push({ kind, start: i, end, text: src.slice(i, end), inBraces: braces > 0, ...extra });
    i = end;
  };
  while (i < src.length) {
    const c = src[i] ?? "";
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < src.length && /\s/.test(src[j] ?? "")) j++;
      push("ws", j);
    } else if (c === "#") {
      const nl = src.indexOf("\n", i);
      push("comment", nl < 0 ? src.length : nl);
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      let closed = false;
      while (j < src.length) {
        const d = src[j];
        if (d === "\\" && c !== "`") j += 2;
        else if (d === c) { closed = true; j++; break; }
        else j++;
      }
      push("string", Math.min(j, src.length), closed ? {} : { open: true });
    } else if (c === "{") { push("lbrace", i + 1); braces++; }
    else if (c === "}") { braces = Math.max(0, braces - 1); push("rbrace", i + 1); }
    else if (c === "(") push("lparen", i + 1);
    else if (c === ")") push("rparen", i + 1);
    else if (c === "[") push("lbracket", i + 1);
    else if (c === "]") push("rbracket", i + 1);
    else if (c === ",") push("comma", i + 1);
    else if (/[0-9.]/.test(c)) {
      DURATION_RE.lastIndex = i;
      const d = DURATION_RE.exec(src);
      // "5m" is a duration, "5min" is not: the unit must not run into an identifier.
      if (d && !/[a-zA-Z_]/.test(src[i + d[0].length] ?? "")) { push("duration", i + d[0].length); continue; }
      NUMBER_RE.lastIndex = i;
      const n = NUMBER_RE.exec(src);
      push(n && n[0].length > 0 ? "number" : "other", i + (n && n[0].length > 0 ? n[0].length : 1));
    } else if (/[a-zA-Z_:]/.test(c)) {
      IDENT_RE.lastIndex = i;
      const m = IDENT_RE.exec(src);
      push("ident", i + (m?.[0].length ?? 1));
    } else {
      const two = src.slice(i, i + 2);
      if (braces > 0 && (two === "!=" || two === "=~" || two === "!~")) push("matchOp", i + 2);
      else if (braces > 0 && c === "=") push("matchOp", i + 1);
      else if (["==", "!=", ">=", "<="].includes(two)) push("op", i + 2);
      else if ("+-*/%^<>=@".includes(c)) push("op", i + 1);
      else push("other", i + 1);
    }
  }
  return out;
}

export type HighlightClass =
  | "fn" | "kw" | "metric" | "label" | "string" | "number" | "duration" | "op" | "comment" | "punct" | "plain";

/** Highlight class per token, using the neighbours to tell functions, labels and metrics apart. */
export function classify(tokens: readonly Token[]): HighlightClass[] {
  const cls: HighlightClass[] = [];
  let groupingDepth = -1;
  let parens = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k] as Token;
    switch (t.kind) {
      case "ws": cls.push("plain"); break;
      case "comment": cls.push("comment"); break;
      case "string": cls.push("string"); break;
      case "number": cls.push("number"); break;
      case "duration": cls.push("duration"); break;
      case "op": case "matchOp": cls.push("op"); break;
      case "lparen": parens++; cls.push("punct"); break;
      case "rparen": if (parens === groupingDepth) groupingDepth = -1; parens--; cls.push("punct"); break;
      case "lbrace": case "rbrace": case "lbracket": case "rbracket": case "comma": case "other": cls.push("punct"); break;
      case "ident": {
        const next = nextSignificant(tokens, k);
        if (t.inBraces || (groupingDepth >= 0 && parens >= groupingDepth)) cls.push("label");
        else if (KEYWORD_SET.has(t.text)) {
          cls.push("kw");
          if (GROUPING.has(t.text) && next?.kind === "lparen") groupingDepth = parens + 1;
        } else if (FUNCTION_SET.has(t.text) && (next?.kind === "lparen" || (AGGREGATION_SET.has(t.text) && (next?.text === "by" || next?.text === "without")))) cls.push("fn");
        else if (["inf", "nan"].includes(t.text.toLowerCase())) cls.push("number");
        else cls.push("metric");
        break;
      }
    }
  }
  return cls;
}

function nextSignificant(tokens: readonly Token[], k: number): Token | undefined {
  for (let j = k + 1; j < tokens.length; j++) {
    const t = tokens[j] as Token;
    if (t.kind !== "ws" && t.kind !== "comment") return t;
  }
  return undefined;
}

function prevSignificant(tokens: readonly Token[], k: number): { tok: Token; idx: number } | undefined {
  for (let j = k - 1; j >= 0; j--) {
    const t = tokens[j] as Token;
    if (t.kind !== "ws" && t.kind !== "comment") return { tok: t, idx: j };
  }
  return undefined;
}

export type CompletionContext =
  | { readonly kind: "none" }
  /** Metric names, functions and keywords. */
  | { readonly kind: "metric"; readonly prefix: string; readonly from: number; readonly to: number }
  /** After a complete operand such as `sum(up)`: only operators and modifiers fit, never a metric. */
  | { readonly kind: "operator"; readonly prefix: string; readonly from: number; readonly to: number }
  | { readonly kind: "labelName"; readonly prefix: string; readonly from: number; readonly to: number; readonly metric: string | undefined }
  | {
      readonly kind: "labelValue"; readonly prefix: string; readonly from: number; readonly to: number;
      readonly label: string; readonly metric: string | undefined;
      /** The value is already inside quotes (false: the completion must add them). */
      readonly quoted: boolean; readonly quote: string;
    };

/** The metric a `{` at token index `k` belongs to: `foo{` or `{__name__="foo"`. */
function metricOfBrace(tokens: readonly Token[], braceIdx: number): string | undefined {
  const p = prevSignificant(tokens, braceIdx);
  if (p && p.tok.kind === "ident" && !p.tok.inBraces && !KEYWORD_SET.has(p.tok.text)) return p.tok.text;
  for (let j = braceIdx + 1; j < tokens.length; j++) {
    const t = tokens[j] as Token;
    if (t.kind === "rbrace") break;
    if (t.kind === "ident" && t.text === "__name__") {
      const op = tokens.slice(j + 1).find((x) => x.kind !== "ws");
      const val = tokens.slice(j + 1).find((x) => x.kind === "string");
      if (op?.text === "=" && val && !val.open) return unquote(val.text);
    }
  }
  return undefined;
}

/** First metric name in the whole query: scope for `by (…)` label names. */
function firstMetric(tokens: readonly Token[]): string | undefined {
  const cls = classify(tokens);
  for (let k = 0; k < tokens.length; k++) if (cls[k] === "metric") return (tokens[k] as Token).text;
  return undefined;
}

export function unquote(s: string): string {
  const q = s[0];
  const body = s.slice(1, s.endsWith(q ?? "") && s.length > 1 ? -1 : undefined);
  if (q === "`") return body;
  return body.replace(/\\(.)/g, (_m, c: string) => ({ n: "\n", t: "\t", r: "\r" })[c] ?? c);
}

/** What should be offered for completion with the cursor at `pos`. */
export function completionContext(src: string, pos: number): CompletionContext {
  const full = tokenize(src);
  const tokens = tokenize(src.slice(0, pos));
  const last = tokens[tokens.length - 1];
  if (!last) return { kind: "metric", prefix: "", from: pos, to: pos };
  // The token the cursor is in may extend to the right of the cursor in the full text.
  const fullTok = full.find((t) => t.start === last.start);
  const tokEnd = fullTok && fullTok.kind === last.kind ? fullTok.end : last.end;

  // Find the innermost open `{` before the cursor.
  let braceIdx = -1;
  for (let k = tokens.length - 1; k >= 0; k--) {
    const t = tokens[k] as Token;
    if (t.kind === "rbrace") break;
    if (t.kind === "lbrace") { braceIdx = k; break; }
  }
  const inBraces = braceIdx >= 0 && last.kind !== "rbrace";
  if (inBraces) {
    const metric = metricOfBrace(full, braceIdx);
    if (last.kind === "string" && last.open) {
      const m = matcherBefore(tokens, tokens.length - 1);
      if (!m) return { kind: "none" };
      const quote = last.text[0] ?? '"';
      const endQuote = fullTok && !fullTok.open ? fullTok.end - 1 : (fullTok?.end ?? pos);
      return { kind: "labelValue", prefix: unquote(last.text), from: last.start + 1, to: Math.max(pos, endQuote), label: m, metric, quoted: true, quote };
    }
    if (last.kind === "matchOp" || (last.kind === "ws" && prevSignificant(tokens, tokens.length)?.tok.kind === "matchOp")) {
      const m = matcherBefore(tokens, tokens.length);
      if (!m) return { kind: "none" };
      return { kind: "labelValue", prefix: "", from: pos, to: pos, label: m, metric, quoted: false, quote: '"' };
    }
    if (last.kind === "ident") {
      const p = prevSignificant(tokens, tokens.length - 1);
      if (p && (p.tok.kind === "lbrace" || p.tok.kind === "comma")) {
        return { kind: "labelName", prefix: last.text, from: last.start, to: tokEnd, metric };
      }
      return { kind: "none" };
    }
    if (last.kind === "lbrace" || last.kind === "comma" || (last.kind === "ws" && ["lbrace", "comma"].includes(prevSignificant(tokens, tokens.length)?.tok.kind ?? ""))) {
      return { kind: "labelName", prefix: "", from: pos, to: pos, metric };
    }
    return { kind: "none" };
  }

  // Inside `by (…)`, `on (…)` etc.
  const grouping = groupingOpen(tokens);
  if (grouping) {
    const metric = firstMetric(full);
    if (last.kind === "ident") return { kind: "labelName", prefix: last.text, from: last.start, to: tokEnd, metric };
    if (last.kind === "lparen" || last.kind === "comma" || last.kind === "ws") return { kind: "labelName", prefix: "", from: pos, to: pos, metric };
    return { kind: "none" };
  }
  if (last.kind === "ident") {
    const p = prevSignificant(tokens, tokens.length - 1);
    if (p && CLOSERS.has(p.tok.kind)) return { kind: "operator", prefix: last.text, from: last.start, to: tokEnd };
    return { kind: "metric", prefix: last.text, from: last.start, to: tokEnd };
  }
  if (last.kind === "string" || last.kind === "number" || last.kind === "duration" || last.kind === "comment") return { kind: "none" };
  // Right after `)`, `]` or `}` a name would run into the operand (`sum(up)go_gc…`).
  if (CLOSERS.has(last.kind)) return { kind: "none" };
  if (tokens.some((t) => t.kind === "lbracket") && isInBrackets(tokens)) return { kind: "none" };
  const p = prevSignificant(tokens, tokens.length);
  if (last.kind === "ws" && p && CLOSERS.has(p.tok.kind)) return { kind: "operator", prefix: "", from: pos, to: pos };
  return { kind: "metric", prefix: "", from: pos, to: pos };
}

const CLOSERS: ReadonlySet<TokenKind> = new Set(["rparen", "rbracket", "rbrace"]);

function isInBrackets(tokens: readonly Token[]): boolean {
  for (let k = tokens.length - 1; k >= 0; k--) {
    const t = tokens[k] as Token;
    if (t.kind === "rbracket") return false;
    if (t.kind === "lbracket") return true;
  }
  return false;
}

/** Label name of the matcher whose operator precedes token index `k`. */
function matcherBefore(tokens: readonly Token[], k: number): string | undefined {
  const op = prevSignificant(tokens, k);
  if (!op || op.tok.kind !== "matchOp") return undefined;
  const name = prevSignificant(tokens, op.idx);
  if (!name) return undefined;
  if (name.tok.kind === "ident") return name.tok.text;
  if (name.tok.kind === "string") return unquote(name.tok.text);
  return undefined;
}

function groupingOpen(tokens: readonly Token[]): boolean {
  let depth = 0;
  for (let k = tokens.length - 1; k >= 0; k--) {
    const t = tokens[k] as Token;
    if (t.kind === "rparen") depth++;
    else if (t.kind === "lparen") {
      if (depth === 0) {
        const p = prevSignificant(tokens, k);
        return p !== undefined && p.tok.kind === "ident" && GROUPING.has(p.tok.text);
      }
      depth--;
    }
  }
  return false;
}

export interface Suggestion {
  readonly label: string;
  readonly kind: "function" | "metric" | "keyword" | "label" | "value";
}

export interface Edit {
  readonly text: string;
  readonly cursor: number;
}

/** Applies a chosen suggestion at a completion context. */
export function applySuggestion(src: string, ctx: CompletionContext, s: Suggestion): Edit {
  if (ctx.kind === "none") return { text: src, cursor: src.length };
  let insert = s.label;
  let to = ctx.to;
  let cursorShift = 0;
  if (ctx.kind === "labelValue") {
    const q = ctx.quote;
    const escaped = q === "`" ? s.label : s.label.replace(/\\/g, "\\\\").replace(new RegExp(q, "g"), "\\" + q);
    if (ctx.quoted) {
      const hasClose = src[to] === q;
      insert = escaped + q;
      if (hasClose) to += 1;
    } else {
      insert = q + escaped + q;
    }
  } else if (s.kind === "function") {
    const hasParen = src[to] === "(";
    insert = hasParen ? s.label : s.label + "()";
    cursorShift = hasParen ? 1 : -1;
  }
  const text = src.slice(0, ctx.from) + insert + src.slice(to);
  return { text, cursor: ctx.from + insert.length + cursorShift };
}

/**
 * The exact match first, then matches by prefix, then by substring; case-insensitive; at most
 * `limit`. The exact match stays in the list so that the list never hides what was typed.
 */
export function rankSuggestions(prefix: string, items: readonly Suggestion[], limit = 50): Suggestion[] {
  const p = prefix.toLowerCase();
  const exact: Suggestion[] = [];
  const starts: Suggestion[] = [];
  const contains: Suggestion[] = [];
  const seen = new Set<string>();
  for (const it of items) {
    const key = it.kind + "\0" + it.label;
    if (seen.has(key)) continue;
    const l = it.label.toLowerCase();
    if (p !== "" && l === p) { exact.push(it); seen.add(key); }
    else if (l.startsWith(p)) { if (starts.length < limit) starts.push(it); seen.add(key); }
    else if (p !== "" && l.includes(p)) { if (contains.length < limit) contains.push(it); seen.add(key); }
  }
  return [...exact, ...starts, ...contains].slice(0, limit);
}
