import { ExecutionError, assertNever } from "@strata/core";
import type { LabelMatcher } from "@strata/core";
import type { Call, Expr, SubqueryExpr, VectorSelector } from "../ast.js";
import type { Querier, SelectHints, SelectWindows, SeriesSet } from "../querier.js";
import { RANGE_FUNCTIONS } from "./range-functions.js";
import { abortError } from "./env.js";
import type { Env, LoadedSeries } from "./env.js";
import { infoArgs, refTimeOf } from "./info.js";

interface Span {
  lo: number;
  hi: number;
}

/** Aggregations that fold their input series by series (aggregate.ts SimpleAgg). */
const FOLDING_AGGREGATIONS: ReadonlySet<string> = new Set(["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"]);

/**
 * Selectors whose series are used once each and then dropped, selected as streams: a selector
 * right under a folding aggregation (eval.ts streamVector feeds its series to the aggregation one
 * by one), and the matrix selector of every range function but absent_over_time (under a folding
 * aggregation streamed into it; anywhere else collected as step values, eval.ts
 * collectRangeFunction). Either way the querier may compute the function beside the decoding
 * (e.g. on worker threads), and the selection's samples are never all held at once.
 */
export function streamedSelectors(root: Expr): Set<VectorSelector> {
  const out = new Set<VectorSelector>();
  const visit = (e: Expr): void => {
    if (e.kind === "AggregateExpr" && FOLDING_AGGREGATIONS.has(e.op)) {
      const u = unwrapExpr(e.expr);
      if (u.kind === "VectorSelector") out.add(u);
    } else if (e.kind === "Call" && RANGE_FUNCTIONS.has(e.func.name) && e.func.name !== "absent_over_time") {
      const m = unwrapExpr(e.args[matrixArgIndex(e)]!);
      if (m.kind === "MatrixSelector") out.add(m.vector);
    }
    forEachChild(e, visit);
  };
  visit(root);
  return out;
}

/** The argument of a range function that is its range vector. */
export function matrixArgIndex(c: Call): number {
  const mi = c.func.argTypes.indexOf("matrix");
  return mi < 0 ? 0 : mi;
}

function unwrapExpr(e: Expr): Expr {
  while (e.kind === "ParenExpr" || e.kind === "StepInvariantExpr") e = e.expr;
  return e;
}

function forEachChild(e: Expr, f: (c: Expr) => void): void {
  switch (e.kind) {
    case "NumberLiteral":
    case "StringLiteral":
    case "VectorSelector":
      return;
    case "MatrixSelector":
      return f(e.vector);
    case "SubqueryExpr":
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return f(e.expr);
    case "Call":
      return e.args.forEach(f);
    case "AggregateExpr":
      if (e.param !== undefined) f(e.param);
      return f(e.expr);
    case "BinaryExpr":
      f(e.lhs);
      return f(e.rhs);
    default:
      assertNever(e, "expression");
  }
}

/** Fetches every selector's series with the time range its evaluation needs. */
export async function select(querier: Querier, root: Expr, env: Env): Promise<void> {
  const jobs: { sel: VectorSelector | Call; matchers: readonly LabelMatcher[]; minT: number; maxT: number; hints: SelectHints }[] = [];
  const streamed = querier.selectStream === undefined ? new Set<VectorSelector>() : streamedSelectors(root);
  const visit = (e: Expr, span: Span, func: string, top: boolean): void => {
    switch (e.kind) {
      case "NumberLiteral":
      case "StringLiteral":
        return;
      case "VectorSelector": {
        const at = atOf(e.at, e.atModifier, env);
        const lo = (at ?? span.lo) - e.offset - env.lookback;
        const hi = (at ?? span.hi) - e.offset + (e.smoothed ? env.lookback : 0);
        // The selector reads the latest sample of each lookback window only.
        const windows = top && !e.smoothed ? { ...windowsOf(env, at, e.offset, env.lookback), last: true } : undefined;
        jobs.push({ sel: e, matchers: e.matchers, minT: lo + 1, maxT: hi, hints: hintsFor(env, 0, func, windows) });
        return;
      }
      case "MatrixSelector": {
        const v = e.vector;
        const at = atOf(v.at, v.atModifier, env);
        const extended = v.anchored || v.smoothed;
        const lo = (at ?? span.lo) - v.offset - e.range - (extended ? env.lookback : 0);
        const hi = (at ?? span.hi) - v.offset + (v.smoothed ? env.lookback : 0);
        const windows = top && !extended ? windowsOf(env, at, v.offset, e.range) : undefined;
        jobs.push({ sel: v, matchers: v.matchers, minT: lo + 1, maxT: hi, hints: hintsFor(env, e.range, func, windows) });
        return;
      }
      case "SubqueryExpr": {
        const inner = subqueryTimes(e, span.lo, span.hi, env);
        visit(e.expr, { lo: inner.start, hi: inner.end }, "", false);
        return;
      }
      case "Call":
        if (e.func.name === "info") {
          // The info series are read at the base expression's reference times.
          visit(e.args[0]!, span, "info", top);
          const ref = refTimeOf(e.args[0]!, env);
          const lo = (ref.at ?? span.lo) - ref.offset - env.lookback;
          const hi = (ref.at ?? span.hi) - ref.offset;
          jobs.push({ sel: e, matchers: infoArgs(e).select, minT: lo + 1, maxT: hi, hints: hintsFor(env, 0, "info", undefined) });
          return;
        }
        for (const a of e.args) visit(a, span, e.func.name, top);
        return;
      case "AggregateExpr":
        if (e.param !== undefined) visit(e.param, span, "", top);
        visit(e.expr, span, "", top);
        return;
      case "BinaryExpr":
        visit(e.lhs, span, "", top);
        visit(e.rhs, span, "", top);
        return;
      case "UnaryExpr":
      case "ParenExpr":
      case "StepInvariantExpr":
        visit(e.expr, span, func, top);
        return;
      default:
        assertNever(e, "expression");
    }
  };
  visit(root, { lo: env.start, hi: env.end }, "", true);
  const sets = await Promise.all(
    jobs.map(async (j): Promise<SeriesSet | undefined> => {
      const sel = j.sel;
      const stream = sel.kind === "VectorSelector" && streamed.has(sel);
      const trace = env.trace.child(`${stream ? "stream" : "select"} ${matchersText(j.matchers)} on [${j.minT}..${j.maxT}]`);
      const hints = trace.enabled ? { ...j.hints, trace } : j.hints;
      try {
        if (stream) {
          const s = await querier.selectStream!(j.matchers, j.minT, j.maxT, hints, env.signal);
          env.streams.set(sel, s);
          return undefined;
        }
        return await querier.select(j.matchers, j.minT, j.maxT, hints, env.signal);
      } catch (err) {
        if (env.signal?.aborted) throw abortError(env.signal);
        throw err;
      } finally {
        trace.done();
      }
    }),
  );
  for (let i = 0; i < jobs.length; i++) {
    const set = sets[i];
    if (set === undefined) continue;
    const list: LoadedSeries[] = [];
    while (set.next()) {
      const s = set.at();
      countSeries(env);
      env.checkSamples(s.timestamps.length);
      env.selectedSamples += s.timestamps.length;
      env.heldSamples += s.timestamps.length;
      list.push({ labels: s.labels, ts: s.timestamps, vs: s.values, bits: undefined, st: s.startTimestamps, clean: undefined });
    }
    const err = set.err();
    if (err !== undefined) throw err;
    for (const w of set.warnings) env.warnings.add(w);
    const sel = jobs[i]!.sel;
    const prev = env.selections.get(sel);
    env.selections.set(sel, prev === undefined ? list : prev.concat(list));
  }
}

export function matchersText(ms: readonly LabelMatcher[]): string {
  return `{${ms.map((m) => `${m.name}${m.type}${JSON.stringify(m.value)}`).join(",")}}`;
}

/** Counts one more selected series against -search.maxSeries (all selectors of the query together). */
export function countSeries(env: Env): void {
  env.seriesSelected++;
  const maxSeries = env.opts.maxSeries;
  if (maxSeries !== undefined && env.seriesSelected > maxSeries) {
    throw new ExecutionError(`query selects more than ${maxSeries} series (the -search.maxSeries limit)`, "STRATA_LIMIT_EXCEEDED");
  }
}

function hintsFor(env: Env, range: number, func: string, windows: SelectWindows | undefined): SelectHints {
  return windows === undefined ? { start: env.start, end: env.end, step: env.step, range, func } : { start: env.start, end: env.end, step: env.step, range, func, windows };
}

/**
 * The windows a selector evaluated at the query's own steps reads: (t - offset - width, t -
 * offset] at every step t (one window with `@`). Not for selectors under a subquery (their
 * steps are the subquery's) nor for anchored/smoothed ones (they read around the windows).
 */
function windowsOf(env: Env, at: number | undefined, offset: number, width: number): SelectWindows {
  const instant = env.step === 0 || at !== undefined;
  const count = instant ? 1 : Math.floor((env.end - env.start) / env.step) + 1;
  return { first: (at ?? env.start) - offset, step: instant ? 0 : env.step, count, range: width };
}

export function atOf(at: number | undefined, mod: "start" | "end" | undefined, env: Env): number | undefined {
  if (mod === "start") return env.start;
  if (mod === "end") return env.end;
  return at;
}

/** Inner evaluation times of a subquery evaluated for outer times [lo, hi] (Prometheus' alignment). */
export function subqueryTimes(e: SubqueryExpr, lo: number, hi: number, env: Env): { start: number; end: number; interval: number } {
  const at = atOf(e.at, e.atModifier, env);
  const interval = e.step > 0 ? e.step : env.defaultSubqueryStep;
  const outerLo = at ?? lo;
  const outerHi = at ?? hi;
  const from = outerLo - e.offset - e.range;
  let start = interval * Math.trunc(from / interval);
  if (start <= from) start += interval;
  return { start, end: outerHi - e.offset, interval };
}
