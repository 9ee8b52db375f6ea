import { ExecutionError, assertNever } from "@strata/core";
import type { LabelMatcher } from "@strata/core";
import type { Call, Expr, SubqueryExpr, VectorSelector } from "../ast.js";
import type { Querier, SelectHints } from "../querier.js";
import { abortError } from "./env.js";
import type { Env, LoadedSeries } from "./env.js";
import { infoArgs, refTimeOf } from "./info.js";

interface Span {
  lo: number;
  hi: number;
}

/** Fetches every selector's series with the time range its evaluation needs. */
export async function select(querier: Querier, root: Expr, env: Env): Promise<void> {
  const jobs: { sel: VectorSelector | Call; matchers: readonly LabelMatcher[]; minT: number; maxT: number; hints: SelectHints }[] = [];
  const visit = (e: Expr, span: Span, func: string): void => {
    switch (e.kind) {
      case "NumberLiteral":
      case "StringLiteral":
        return;
      case "VectorSelector": {
        const at = atOf(e.at, e.atModifier, env);
        const lo = (at ?? span.lo) - e.offset - env.lookback;
        const hi = (at ?? span.hi) - e.offset + (e.smoothed ? env.lookback : 0);
        jobs.push({ sel: e, matchers: e.matchers, minT: lo + 1, maxT: hi, hints: hintsFor(env, 0, func) });
        return;
      }
      case "MatrixSelector": {
        const v = e.vector;
        const at = atOf(v.at, v.atModifier, env);
        const extended = v.anchored || v.smoothed;
        const lo = (at ?? span.lo) - v.offset - e.range - (extended ? env.lookback : 0);
        const hi = (at ?? span.hi) - v.offset + (v.smoothed ? env.lookback : 0);
        jobs.push({ sel: v, matchers: v.matchers, minT: lo + 1, maxT: hi, hints: hintsFor(env, e.range, func) });
        return;
      }
      case "SubqueryExpr": {
        const inner = subqueryTimes(e, span.lo, span.hi, env);
        visit(e.expr, { lo: inner.start, hi: inner.end }, "");
        return;
      }
      case "Call":
        if (e.func.name === "info") {
          // The info series are read at the base expression's reference times.
          visit(e.args[0]!, span, "info");
          const ref = refTimeOf(e.args[0]!, env);
          const lo = (ref.at ?? span.lo) - ref.offset - env.lookback;
          const hi = (ref.at ?? span.hi) - ref.offset;
          jobs.push({ sel: e, matchers: infoArgs(e).select, minT: lo + 1, maxT: hi, hints: hintsFor(env, 0, "info") });
          return;
        }
        for (const a of e.args) visit(a, span, e.func.name);
        return;
      case "AggregateExpr":
        if (e.param !== undefined) visit(e.param, span, "");
        visit(e.expr, span, "");
        return;
      case "BinaryExpr":
        visit(e.lhs, span, "");
        visit(e.rhs, span, "");
        return;
      case "UnaryExpr":
      case "ParenExpr":
      case "StepInvariantExpr":
        visit(e.expr, span, func);
        return;
      default:
        assertNever(e, "expression");
    }
  };
  visit(root, { lo: env.start, hi: env.end }, "");
  const sets = await Promise.all(
    jobs.map(async (j) => {
      try {
        return await querier.select(j.matchers, j.minT, j.maxT, j.hints, env.signal);
      } catch (err) {
        if (env.signal?.aborted) throw abortError(env.signal);
        throw err;
      }
    }),
  );
  let seriesCount = 0;
  const maxSeries = env.opts.maxSeries;
  for (let i = 0; i < jobs.length; i++) {
    const set = sets[i]!;
    const list: LoadedSeries[] = [];
    while (set.next()) {
      const s = set.at();
      seriesCount++;
      env.seriesSelected++;
      if (maxSeries !== undefined && seriesCount > maxSeries) {
        throw new ExecutionError(`query selects more than ${maxSeries} series (the -search.maxSeries limit)`, "STRATA_LIMIT_EXCEEDED");
      }
      env.checkSamples(s.timestamps.length);
      env.selectedSamples += s.timestamps.length;
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

function hintsFor(env: Env, range: number, func: string): SelectHints {
  return { start: env.start, end: env.end, step: env.step, range, func };
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
