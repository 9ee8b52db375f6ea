import { BadDataError } from "@strata/core";
import { node, type Expr, type MatrixSelector, type PosRange, type SubqueryExpr, type VectorSelector } from "../ast.js";

/** A duration expression that cannot be evaluated (division by zero, …), with where it is. */
export class DurationEvalError extends BadDataError {
  constructor(
    message: string,
    readonly pos: PosRange,
  ) {
    super(message, "STRATA_PARSE_ERROR");
  }
}

/**
 * Duration expressions (Prometheus 3 `[5m+1m]`, `offset min_of(step(), 1s)`). Numbers are
 * seconds, `step()` / `range()` are the query's step and end-start in seconds (0 for an instant
 * query). The parser folds constant ones; the rest are resolved per query.
 */
export interface DurationContext {
  readonly stepMs: number;
  readonly rangeMs: number;
}

export function isDurationConstant(e: Expr): boolean {
  switch (e.kind) {
    case "NumberLiteral":
      return true;
    case "Call":
      return e.func.name !== "step" && e.func.name !== "range" && e.args.every(isDurationConstant);
    case "BinaryExpr":
      return isDurationConstant(e.lhs) && isDurationConstant(e.rhs);
    case "UnaryExpr":
    case "ParenExpr":
      return isDurationConstant(e.expr);
    default:
      return false;
  }
}

/** Evaluates a duration expression to seconds. */
export function evalDuration(e: Expr, ctx: DurationContext): number {
  switch (e.kind) {
    case "NumberLiteral":
      return e.value;
    case "ParenExpr":
      return evalDuration(e.expr, ctx);
    case "UnaryExpr":
      return e.op === "-" ? -evalDuration(e.expr, ctx) : evalDuration(e.expr, ctx);
    case "BinaryExpr": {
      const a = evalDuration(e.lhs, ctx);
      const b = evalDuration(e.rhs, ctx);
      switch (e.op) {
        case "+":
          return a + b;
        case "-":
          return a - b;
        case "*":
          return a * b;
        case "/":
          if (b === 0) throw new DurationEvalError("division by zero", e.pos);
          return a / b;
        case "%":
          if (b === 0) throw new DurationEvalError("modulo by zero", e.pos);
          return a % b;
        case "^":
          return Math.pow(a, b);
        default:
          throw new BadDataError(`operator ${e.op} not allowed in duration expression`, "STRATA_PARSE_ERROR");
      }
    }
    case "Call":
      switch (e.func.name) {
        case "step":
          return ctx.stepMs / 1000;
        case "range":
          return ctx.rangeMs / 1000;
        case "min_of":
          return Math.min(evalDuration(e.args[0]!, ctx), evalDuration(e.args[1]!, ctx));
        case "max_of":
          return Math.max(evalDuration(e.args[0]!, ctx), evalDuration(e.args[1]!, ctx));
        default:
          break;
      }
      break;
    default:
      break;
  }
  throw new BadDataError(`unsupported duration expression node ${e.kind}`, "STRATA_PARSE_ERROR");
}

/**
 * Seconds → ms via whole nanoseconds, then truncated to ms like Go's time.Duration. The ns are
 * rounded, not truncated: literals like `1001ms` reach here as 1.001 s, whose float product
 * 1.001e9 is 1000999999.9999999.
 */
export function durationSecondsToMs(secs: number): number {
  if (!Number.isFinite(secs) || Math.abs(secs) > 9.2e9) return NaN;
  const ns = Math.round(secs * 1e9);
  return Math.trunc(ns / 1e6) + 0;
}

function resolveOne(e: Expr | undefined, ctx: DurationContext, what: string): number {
  if (e === undefined) return 0;
  const secs = evalDuration(e, ctx);
  const ms = durationSecondsToMs(secs);
  if (!Number.isFinite(ms)) throw new BadDataError(`${what} duration out of range`, "STRATA_PARSE_ERROR");
  return ms;
}

/**
 * Returns `expr` with every duration expression that depends on `step()` / `range()` replaced
 * by its value for a query with the given step and range (ms; both 0 for instant queries).
 * Returns the same object when nothing needed resolving.
 */
export function resolveDurations(expr: Expr, q: { readonly start: number; readonly end: number; readonly step: number }): Expr {
  const ctx: DurationContext = { stepMs: q.step, rangeMs: q.end - q.start };
  const walk = (e: Expr): Expr => {
    switch (e.kind) {
      case "NumberLiteral":
      case "StringLiteral":
        return e;
      case "VectorSelector":
        return resolveSelector(e, ctx);
      case "MatrixSelector": {
        const v = resolveSelector(e.vector, ctx);
        if (v === e.vector && e.rangeExpr === undefined) return e;
        const range = e.rangeExpr === undefined ? e.range : resolveOne(e.rangeExpr, ctx, "range");
        if (range <= 0) throw new BadDataError("duration must be greater than 0", "STRATA_PARSE_ERROR");
        return node<MatrixSelector>({ ...e, vector: v, range, rangeExpr: undefined });
      }
      case "SubqueryExpr": {
        const inner = walk(e.expr);
        if (inner === e.expr && e.rangeExpr === undefined && e.stepExpr === undefined && e.offsetExpr === undefined) return e;
        const range = e.rangeExpr === undefined ? e.range : resolveOne(e.rangeExpr, ctx, "range");
        if (range <= 0) throw new BadDataError("duration must be greater than 0", "STRATA_PARSE_ERROR");
        return node<SubqueryExpr>({
          ...e,
          expr: inner,
          range,
          rangeExpr: undefined,
          step: e.stepExpr === undefined ? e.step : resolveOne(e.stepExpr, ctx, "step"),
          stepExpr: undefined,
          offset: e.offsetExpr === undefined ? e.offset : resolveOne(e.offsetExpr, ctx, "offset"),
          offsetExpr: undefined,
        });
      }
      case "Call": {
        const args = e.args.map(walk);
        return args.every((a, i) => a === e.args[i]) ? e : node({ ...e, args: Object.freeze(args) });
      }
      case "AggregateExpr": {
        const inner = walk(e.expr);
        const param = e.param === undefined ? undefined : walk(e.param);
        return inner === e.expr && param === e.param ? e : node({ ...e, expr: inner, param });
      }
      case "BinaryExpr": {
        const lhs = walk(e.lhs);
        const rhs = walk(e.rhs);
        return lhs === e.lhs && rhs === e.rhs ? e : node({ ...e, lhs, rhs });
      }
      case "UnaryExpr":
      case "ParenExpr":
      case "StepInvariantExpr": {
        const inner = walk(e.expr);
        return inner === e.expr ? e : node({ ...e, expr: inner });
      }
    }
  };
  return walk(expr);
}

function resolveSelector(v: VectorSelector, ctx: DurationContext): VectorSelector {
  if (v.offsetExpr === undefined) return v;
  return node<VectorSelector>({ ...v, offset: resolveOne(v.offsetExpr, ctx, "offset"), offsetExpr: undefined });
}
