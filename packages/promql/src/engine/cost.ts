import { ExecutionError, assertNever } from "@strata/core";
import type { Expr, SubqueryExpr, VectorSelector } from "../ast.js";
import { printExpr } from "../printer.js";
import type { Env } from "./env.js";
import { RANGE_FUNCTIONS } from "./range-functions.js";
import { subqueryTimes } from "./select.js";

/**
 * The cost of a query before it is evaluated: how many steps each subquery has per series and
 * about how many bytes evaluation allocates (series × steps of every node, plus the selected
 * samples). The numbers are upper bounds where the engine's shape allows (an aggregation without
 * grouping has one series, `or` at most both sides), so a query admitted here rarely outgrows
 * its estimate; evaluation still counts what it allocates (QueryMemory.charge).
 */

/** Bytes per step of an instant-vector series: a Float64 value and a presence byte. */
export const SERIES_STEP_BYTES = 9;
/** Bytes per step of an aggregation group (sum, compensation, mean, count, flags). */
const GROUP_STEP_BYTES = 33;
/** Bytes per selected sample (timestamp and value). */
export const SAMPLE_BYTES = 16;
/** Bytes per series besides its points: labels, map keys, array headers. */
export const SERIES_BYTES = 256;

interface NodeCost {
  /** Upper bound of the node's output series (1 for a scalar). */
  readonly series: number;
  /** Bytes allocated by the node and everything below it. */
  readonly bytes: number;
}

export interface CostEstimate {
  /** Estimated bytes of the whole evaluation. */
  readonly bytes: number;
  /** Upper bound of the result's series. */
  readonly series: number;
  /** Steps per series of the query. */
  readonly steps: number;
}

/**
 * Estimates `root` evaluated at `steps` times of the query. `seriesOf(sel)` gives the number of
 * series a selector selected (before selection, a lower bound such as 1 still catches queries
 * that are too big whatever the data). Fails with STRATA_LIMIT_EXCEEDED when a subquery has more
 * than `opts.maxPointsSubqueryPerSeries` steps.
 */
export function estimateCost(root: Expr, env: Env, steps: number, seriesOf: (sel: VectorSelector) => number, groupsOf?: GroupsOf): CostEstimate {
  const maxSub = env.opts.maxPointsSubqueryPerSeries;
  const subqueryCost = (e: SubqueryExpr, lo: number, hi: number): NodeCost => {
    const t = subqueryTimes(e, lo, hi, env);
    const m = t.end >= t.start ? Math.floor((t.end - t.start) / t.interval) + 1 : 0;
    if (maxSub !== undefined && maxSub > 0 && m > maxSub) {
      throw new ExecutionError(
        `cannot evaluate subquery ${printExpr(e)}: it has ${m} points per series, more than -search.maxPointsSubqueryPerTimeseries=${maxSub}; ` +
          "increase the subquery step or shorten its range",
        "STRATA_LIMIT_EXCEEDED",
      );
    }
    const inner = visit(e.expr, m, t.start, t.end, false);
    // Evaluation times, then each inner series compacted to timestamps and values.
    return { series: inner.series, bytes: inner.bytes + m * 8 + inner.series * (m * SAMPLE_BYTES + SERIES_BYTES) };
  };

  /** `reused`: the parent consumes the node series by series through one reused buffer. */
  const visit = (e: Expr, n: number, lo: number, hi: number, reused: boolean): NodeCost => {
    const out = (series: number, below: number, perStep = SERIES_STEP_BYTES): NodeCost => ({
      series,
      bytes: below + (reused ? n * perStep : series * (n * perStep + SERIES_BYTES)),
    });
    switch (e.kind) {
      case "NumberLiteral":
        return { series: 1, bytes: n * 8 };
      case "StringLiteral":
        return { series: 1, bytes: 0 };
      case "VectorSelector":
        return out(seriesOf(e), 0);
      case "MatrixSelector":
        // The selected samples themselves are counted once, by the caller.
        return { series: seriesOf(e.vector), bytes: 0 };
      case "SubqueryExpr":
        return subqueryCost(e, lo, hi);
      case "Call": {
        let series = 0;
        let below = 0;
        const range = RANGE_FUNCTIONS.has(e.func.name);
        for (const a of e.args) {
          const c = visit(a, n, lo, hi, false);
          below += c.bytes;
          const t = a.kind === "NumberLiteral" || a.kind === "StringLiteral" ? 0 : c.series;
          series = Math.max(series, t);
        }
        if (e.func.returnType === "scalar") return { series: 1, bytes: below + n * 8 };
        // vector(), time() and friends: one series without vector arguments.
        return out(range ? series : Math.max(1, series), below);
      }
      case "AggregateExpr": {
        const streams = ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"].includes(e.op);
        const input = visit(e.expr, n, lo, hi, streams && streamable(e.expr));
        const param = e.param === undefined ? 0 : visit(e.param, n, lo, hi, false).bytes;
        const grouped = e.without || e.grouping.length > 0;
        const sel = grouped ? selectorOf(e.expr) : undefined;
        const series = !grouped ? (streams ? 1 : input.series) : sel !== undefined && groupsOf !== undefined ? groupsOf(sel, e.grouping, e.without) : input.series;
        return out(series, input.bytes + param, streams ? GROUP_STEP_BYTES : SERIES_STEP_BYTES);
      }
      case "BinaryExpr": {
        const l = visit(e.lhs, n, lo, hi, false);
        const r = visit(e.rhs, n, lo, hi, false);
        const series = e.op === "or" ? l.series + r.series : Math.max(l.series, r.series);
        return out(series, l.bytes + r.bytes);
      }
      case "UnaryExpr": {
        const c = visit(e.expr, n, lo, hi, false);
        return out(c.series, c.bytes);
      }
      case "ParenExpr":
      case "StepInvariantExpr":
        return visit(e.expr, n, lo, hi, reused);
      default:
        return assertNever(e, "expression");
    }
  };
  const c = visit(root, steps, env.start, env.end, false);
  return { bytes: c.bytes, series: c.series, steps };
}

/** Groups an aggregation `by`/`without` (`grouping`) makes of a selector's series. */
export type GroupsOf = (sel: VectorSelector, grouping: readonly string[], without: boolean) => number;

/** Expressions an aggregation consumes series by series (see eval.ts streamVector). */
function streamable(e: Expr): boolean {
  let u = e;
  while (u.kind === "ParenExpr" || u.kind === "StepInvariantExpr") u = u.expr;
  if (u.kind === "VectorSelector") return true;
  return u.kind === "Call" && RANGE_FUNCTIONS.has(u.func.name) && u.func.name !== "absent_over_time";
}

/**
 * The selector whose series are the input series of `e` one to one (a selector, or a range
 * function over a matrix selector), so groups of `e` are groups of the selected labels.
 */
function selectorOf(e: Expr): VectorSelector | undefined {
  let u = e;
  while (u.kind === "ParenExpr" || u.kind === "StepInvariantExpr") u = u.expr;
  if (u.kind === "VectorSelector") return u;
  if (u.kind !== "Call" || !RANGE_FUNCTIONS.has(u.func.name) || u.func.name === "absent_over_time") return undefined;
  const m = u.args.find((a) => a.kind === "MatrixSelector");
  return m?.kind === "MatrixSelector" ? m.vector : undefined;
}
