import { DURATION_FUNCTIONS, node, type BinaryExpr, type Call, type Expr, type NumberLiteral, type PosRange } from "../ast.js";
import { DurationEvalError, durationSecondsToMs, evalDuration, isDurationConstant } from "./durations.js";
import { parseDurationMs } from "./lexer.js";
import { describe, POW_PREC, PREC, TOKEN_OPS, type TokenStream } from "./stream.js";
import { goQuote } from "./strings.js";

/**
 * The duration-expression grammar of Prometheus 3 (`x[5m+1m]`, `x[min_of(step(), 1h)]`,
 * `offset -(1h*2)`): numbers are seconds, + - * / % ^ with the usual precedence, parentheses,
 * step(), range(), min_of/max_of (also spelled min/max). Constant expressions are folded to ms.
 */

export interface DurationValue {
  readonly ms: number;
  /** Set (and `ms` 0) when the value depends on step()/range(); see resolveDurations. */
  readonly expr: Expr | undefined;
}

/** A duration expression inside `[…]`. */
export function parseDurationExpr(ts: TokenStream): DurationValue {
  return fold(ts, binary(ts, 0, "subquery or range selector"));
}

/** The argument of `offset`: a signed literal, a parenthesized expression or a duration function. */
export function parseOffsetDuration(ts: TokenStream): DurationValue {
  const ctx = "offset";
  const s = ts.peek();
  if (s.type === "SUB" || s.type === "ADD") {
    ts.next();
    const a = atom(ts, ctx);
    const e: Expr =
      a.kind === "NumberLiteral"
        ? node<NumberLiteral>({ ...a, value: s.type === "SUB" ? -a.value : a.value })
        : node({ kind: "UnaryExpr", op: s.type === "SUB" ? "-" : "+", expr: a, pos: { start: ts.b(s.start), end: a.pos.end } });
    return fold(ts, e);
  }
  return fold(ts, atom(ts, ctx));
}

function evalChecked(ts: TokenStream, e: Expr, stepMs: number, rangeMs: number): number {
  try {
    return evalDuration(e, { stepMs, rangeMs });
  } catch (err) {
    if (err instanceof DurationEvalError) throw ts.errPos(err.pos, err.message);
    throw err;
  }
}

function fold(ts: TokenStream, e: Expr): DurationValue {
  if (isDurationConstant(e)) {
    const ms = durationSecondsToMs(evalChecked(ts, e, 0, 0));
    if (!Number.isFinite(ms)) throw ts.errPos(e.pos, "duration out of range");
    return { ms, expr: undefined };
  }
  // Division by a constant zero is an error even when the rest depends on step()/range().
  evalChecked(ts, e, 1000, 1000);
  return { ms: 0, expr: e };
}

function binary(ts: TokenStream, minPrec: number, ctx: string): Expr {
  ts.enter();
  try {
    let lhs = unary(ts, ctx);
    for (;;) {
      const t = ts.peek();
      const op = TOKEN_OPS[t.type];
      if (op === undefined || !["+", "-", "*", "/", "%", "^"].includes(op)) break;
      const prec = PREC[op];
      if (prec < minPrec) break;
      ts.next();
      const rhs = binary(ts, op === "^" ? prec : prec + 1, ctx);
      const pos: PosRange = { start: lhs.pos.start, end: rhs.pos.end };
      lhs = node<BinaryExpr>({ kind: "BinaryExpr", op, lhs, rhs, returnBool: false, matching: undefined, pos });
    }
    return lhs;
  } finally {
    ts.leave();
  }
}

function unary(ts: TokenStream, ctx: string): Expr {
  const t = ts.peek();
  if (t.type === "ADD" || t.type === "SUB") {
    ts.next();
    const e = binary(ts, POW_PREC, ctx);
    const pos: PosRange = { start: ts.b(t.start), end: e.pos.end };
    if (e.kind === "NumberLiteral") return node<NumberLiteral>({ ...e, value: t.type === "SUB" ? -e.value : e.value, pos });
    return node({ kind: "UnaryExpr", op: t.type === "SUB" ? "-" : "+", expr: e, pos });
  }
  return atom(ts, ctx);
}

function atom(ts: TokenStream, ctx: string): Expr {
  const t = ts.peek();
  switch (t.type) {
    case "NUMBER":
      ts.next();
      return node<NumberLiteral>({ kind: "NumberLiteral", value: ts.number(t), duration: false, pos: ts.pos(t.start, t.end) });
    case "DURATION": {
      ts.next();
      const ms = parseDurationMs(t.text);
      if (ms === undefined) throw ts.errAt(t, `not a valid duration string: ${goQuote(t.text)}`);
      return node<NumberLiteral>({ kind: "NumberLiteral", value: ms / 1000, duration: true, pos: ts.pos(t.start, t.end) });
    }
    case "LPAREN": {
      ts.next();
      const e = binary(ts, 0, ctx);
      const r = ts.expect("RPAREN", "duration expression", '")"');
      return node({ kind: "ParenExpr", expr: e, pos: ts.pos(t.start, r.end) });
    }
    case "IDENT": {
      const lower = t.text.toLowerCase();
      // min/max are the older spellings of min_of/max_of in duration expressions.
      const def = DURATION_FUNCTIONS[lower === "min" ? "min_of" : lower === "max" ? "max_of" : lower];
      if (def !== undefined && ts.peek(1).type === "LPAREN") {
        ts.next();
        ts.next();
        const args: Expr[] = [];
        while (ts.peek().type !== "RPAREN") {
          args.push(binary(ts, 0, ctx));
          if (ts.peek().type === "COMMA") ts.next();
          else if (ts.peek().type !== "RPAREN") {
            const s = ts.peek();
            throw ts.errAt(s, `unexpected ${describe(s)} in duration expression, expected "," or ")"`);
          }
        }
        const r = ts.next();
        const pos = ts.pos(t.start, r.end);
        if (args.length !== def.argTypes.length) {
          throw ts.errPos(pos, `expected ${def.argTypes.length} argument(s) in call to ${goQuote(def.name)}, got ${args.length}`);
        }
        return node<Call>({ kind: "Call", func: def, args: Object.freeze(args), pos });
      }
      break;
    }
    default:
      break;
  }
  throw ts.errAt(t, `unexpected ${describe(t)} in ${ctx}, expected number, duration, step(), or range()`);
}
