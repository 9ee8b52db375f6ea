import type { Labels, LabelMatcher } from "@strata/core";
import { node, type Expr, type SubqueryExpr, type VectorSelector, type MatrixSelector } from "../ast.js";
import type { QueryResult } from "../engine/result.js";
import { parseExpr } from "../parser/parser.js";
import { printExpr } from "../printer.js";
import {
  assertMatrixSorted,
  checkAnnotations,
  checkFailure,
  compareInstantResult,
  compareMatrix,
  compareVector,
  errMessage,
  Mismatch,
  type Vec,
} from "./compare.js";
import type { Command, EvalCommand } from "./script.js";
import { STALE_MARKER_BITS } from "./series.js";

/**
 * Runs parsed test scripts against any engine the way Prometheus' promqltest does (checks in
 * ./compare.ts). Every instant eval is also run as a range query (the middle step must agree)
 * and re-run with `@ <t>` added to every selector at other evaluation times (step invariance).
 */
export interface ScriptTarget {
  clear(): void;
  load(labels: Labels, timestamps: Float64Array, values: Float64Array): void;
  instantQuery(query: string, time: number): Promise<QueryResult>;
  rangeQuery(query: string, start: number, end: number, step: number): Promise<QueryResult>;
}

export interface EvalOutcome {
  readonly line: number;
  readonly query: string;
  readonly passed: boolean;
  /** Why it failed (undefined when passed). */
  readonly error: string | undefined;
  /** The case depends on native histograms (expected values or selected data). */
  readonly nativeHistograms: boolean;
  /** The case selects series loaded with `@st` start timestamps (not supported). */
  readonly startTimestamps: boolean;
}

const MINUTE = 60_000;
/** Functions whose result changes with evaluation time even over step-invariant arguments. */
const AT_MODIFIER_UNSAFE = new Set([
  "days_in_month",
  "day_of_month",
  "day_of_week",
  "day_of_year",
  "hour",
  "minute",
  "month",
  "year",
  "predict_linear",
  "time",
  "timestamp",
  "start",
  "end",
  "step",
  "range",
]);
/** Functions whose value depends on the query range, so range mode cannot agree with instant mode. */
const QUERY_RANGE_FUNCS = new Set(["start", "end", "step", "range"]);

/** Visits every node, including unresolved duration expressions (offset, range, step). */
function walk(e: Expr, visit: (e: Expr) => void): void {
  visit(e);
  switch (e.kind) {
    case "VectorSelector":
      if (e.offsetExpr !== undefined) walk(e.offsetExpr, visit);
      break;
    case "MatrixSelector":
      walk(e.vector, visit);
      if (e.rangeExpr !== undefined) walk(e.rangeExpr, visit);
      break;
    case "SubqueryExpr":
      for (const d of [e.rangeExpr, e.stepExpr, e.offsetExpr]) if (d !== undefined) walk(d, visit);
      walk(e.expr, visit);
      break;
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      walk(e.expr, visit);
      break;
    case "Call":
      for (const a of e.args) walk(a, visit);
      break;
    case "AggregateExpr":
      if (e.param !== undefined) walk(e.param, visit);
      walk(e.expr, visit);
      break;
    case "BinaryExpr":
      walk(e.lhs, visit);
      walk(e.rhs, visit);
      break;
    default:
      break;
  }
}

function callsAny(e: Expr, names: ReadonlySet<string>): boolean {
  let found = false;
  walk(e, (n) => {
    if (n.kind === "Call" && names.has(n.func.name)) found = true;
  });
  return found;
}

/** promqltest's atModifierTestCases: `@ t` on every selector not under an `@` subquery. */
export function addAtModifiers(e: Expr, t: number): Expr {
  const hasAt = (x: { at: number | undefined; atModifier: string | undefined }): boolean => x.at !== undefined || x.atModifier !== undefined;
  const rec = (x: Expr): Expr => {
    switch (x.kind) {
      case "VectorSelector":
        return hasAt(x) ? x : node<VectorSelector>({ ...x, at: t });
      case "MatrixSelector":
        return hasAt(x.vector) ? x : node<MatrixSelector>({ ...x, vector: node<VectorSelector>({ ...x.vector, at: t }) });
      case "SubqueryExpr":
        // Setting @ on the subquery puts its inner selectors under an @ path: leave them.
        return hasAt(x) ? x : node<SubqueryExpr>({ ...x, at: t });
      case "Call":
        return node({ ...x, args: x.args.map(rec) });
      case "AggregateExpr":
        return node({ ...x, expr: rec(x.expr), param: x.param === undefined ? undefined : rec(x.param) });
      case "BinaryExpr":
        return node({ ...x, lhs: rec(x.lhs), rhs: rec(x.rhs) });
      case "UnaryExpr":
      case "ParenExpr":
      case "StepInvariantExpr":
        return node({ ...x, expr: rec(x.expr) });
      default:
        return x;
    }
  };
  return rec(e);
}

function atModifierCases(query: string, evalTime: number): { query: string; time: number }[] {
  let expr: Expr;
  try {
    expr = parseExpr(query);
  } catch {
    return [];
  }
  if (callsAny(expr, AT_MODIFIER_UNSAFE)) return [];
  const newQuery = printExpr(addAtModifiers(expr, evalTime));
  const times = evalTime === 0 ? [-1000, 0, 1000] : [-10 * evalTime, 0, Math.trunc(evalTime / 5), evalTime, 10 * evalTime];
  return times.map((time) => ({ query: newQuery, time }));
}

async function runInstant(target: ScriptTarget, cmd: EvalCommand, query: string, time: number, checkRangeMode: boolean): Promise<void> {
  let res: QueryResult;
  try {
    res = await target.instantQuery(query, time);
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    if (cmd.fail) {
      checkFailure(cmd, e);
      return;
    }
    throw new Mismatch(`error evaluating query ${JSON.stringify(query)}: ${errMessage(e)}`);
  }
  if (cmd.fail) throw new Mismatch(`expected error evaluating query ${JSON.stringify(query)} but got none`);
  checkAnnotations(cmd, res);
  try {
    compareInstantResult(cmd, res);
  } catch (e) {
    throw new Mismatch(`${query} at ${time}: ${errMessage(e)}`);
  }
  if (!checkRangeMode || res.type === "matrix" || res.type === "string") return;
  let rr: QueryResult;
  try {
    rr = await target.rangeQuery(query, time - MINUTE, time + MINUTE, MINUTE);
  } catch (e) {
    throw new Mismatch(`error evaluating query ${JSON.stringify(query)} in range mode: ${errMessage(e)}`);
  }
  if (cmd.ordered) return;
  let vec: Vec;
  if (rr.type === "matrix") {
    try {
      assertMatrixSorted(rr.series);
    } catch (e) {
      throw new Mismatch(`${query} range mode: ${errMessage(e)}`);
    }
    const labels: Labels[] = [];
    const values: number[] = [];
    for (const s of rr.series) {
      for (let i = 0; i < s.timestamps.length; i++) {
        if (s.timestamps[i] === time) {
          labels.push(s.labels);
          values.push(s.values[i]!);
          break;
        }
      }
    }
    vec = { labels, values };
  } else if (rr.type === "scalar") {
    vec = { labels: [[]], values: [rr.value] };
  } else if (rr.type === "vector") {
    vec = rr;
  } else {
    throw new Mismatch(`range mode returned a ${rr.type}`);
  }
  try {
    if (res.type === "scalar") {
      if (vec.values.length === 0) throw new Mismatch("range mode returned no value for a scalar");
      compareInstantResult(cmd, { type: "scalar", timestamp: time, value: vec.values[0]!, warnings: [], infos: [] });
    } else {
      compareVector(cmd, vec, false);
    }
  } catch (e) {
    throw new Mismatch(`${query} (range mode, middle step ${time}): ${errMessage(e)}`);
  }
}

/** Runs one eval command; resolves to undefined on success or the failure message. */
export async function runEval(target: ScriptTarget, cmd: EvalCommand): Promise<string | undefined> {
  try {
    if (cmd.instant) {
      let parsed: Expr | undefined;
      try {
        parsed = parseExpr(cmd.query);
      } catch {
        parsed = undefined;
      }
      const rangeOk = parsed === undefined || !callsAny(parsed, QUERY_RANGE_FUNCS);
      await runInstant(target, cmd, cmd.query, cmd.at, rangeOk);
      for (const c of atModifierCases(cmd.query, cmd.at)) await runInstant(target, cmd, c.query, c.time, rangeOk);
    } else {
      let res: QueryResult;
      try {
        res = await target.rangeQuery(cmd.query, cmd.start, cmd.end, cmd.step);
      } catch (e) {
        if (cmd.fail) {
          checkFailure(cmd, e);
          return undefined;
        }
        throw new Mismatch(`error evaluating query ${JSON.stringify(cmd.query)}: ${errMessage(e)}`);
      }
      if (cmd.fail) throw new Mismatch(`expected error evaluating query ${JSON.stringify(cmd.query)} but got none`);
      checkAnnotations(cmd, res);
      if (res.type !== "matrix") throw new Mismatch(`range query returned a ${res.type}`);
      compareMatrix(cmd, res, cmd.start, cmd.end, cmd.step);
    }
    return undefined;
  } catch (e) {
    return errMessage(e);
  }
}

interface HistogramSeries {
  readonly labels: Labels;
}

function selectsAny(e: Expr | undefined, series: readonly HistogramSeries[]): boolean {
  if (e === undefined || series.length === 0) return false;
  let hit = false;
  walk(e, (n) => {
    if (n.kind !== "VectorSelector" || hit) return;
    const ms: readonly LabelMatcher[] = n.matchers;
    for (const s of series) {
      if (ms.every((m) => m.matches(s.labels.find((l) => l.name === m.name)?.value ?? ""))) {
        hit = true;
        return;
      }
    }
  });
  return hit;
}

/** The native-histogram-with-custom-buckets series a classic `x_bucket{le=…}` series feeds. */
function nhcbLabels(labels: Labels): Labels {
  return labels
    .filter((l) => l.name !== "le")
    .map((l) => (l.name === "__name__" ? { name: l.name, value: l.value.replace(/_(bucket|count|sum)$/, "") } : l));
}

function lastDefinitions<T extends { readonly labels: Labels; readonly startTimestamps: boolean }>(series: readonly T[]): T[] {
  const byKey = new Map<string, T>();
  for (const s of series) {
    // `x@st` lines describe the start timestamps of the `x` line, not another definition of it.
    const key = (s.startTimestamps ? "@st\u0002" : "") + s.labels.map((l) => `${l.name}\u0000${l.value}`).join("\u0001");
    byKey.delete(key);
    byKey.set(key, s);
  }
  return [...byKey.values()];
}

/**
 * Runs every command of a script in order and returns one outcome per eval. Native histogram
 * points and `@st` start-timestamp lines are not loaded (floats of the same series are); evals
 * that expect histograms or select series that had histogram points are flagged.
 */
export async function runScript(target: ScriptTarget, cmds: readonly Command[], onEval?: (o: EvalOutcome) => void): Promise<EvalOutcome[]> {
  const out: EvalOutcome[] = [];
  let histSeries: HistogramSeries[] = [];
  let stSeries: HistogramSeries[] = [];
  target.clear();
  for (const cmd of cmds) {
    switch (cmd.kind) {
      case "clear":
        target.clear();
        histSeries = [];
        stSeries = [];
        break;
      case "load":
        // promqltest keeps one definition per label set and load command (the last one wins);
        // only separate load commands add to each other.
        for (const s of lastDefinitions(cmd.series)) {
          if (s.startTimestamps) {
            stSeries.push({ labels: s.labels });
            continue;
          }
          const n = s.values.filter((v) => !v.omitted && v.histogram === undefined).length;
          const ts = new Float64Array(n);
          const vs = new Float64Array(n);
          let k = 0;
          s.values.forEach((v, i) => {
            if (v.omitted || v.histogram !== undefined) return;
            ts[k] = i * cmd.intervalMs;
            // Typed-array copy keeps the stale marker's NaN payload; a plain store may not.
            if (v.stale) vs.set(STALE_MARKER_BITS, k);
            else vs[k] = v.value;
            k++;
          });
          if (s.hasHistogram) histSeries.push({ labels: s.labels });
          if (cmd.withNhcb) histSeries.push({ labels: nhcbLabels(s.labels) });
          if (n > 0) target.load(s.labels, ts, vs);
        }
        break;
      case "eval": {
        let parsed: Expr | undefined;
        try {
          parsed = parseExpr(cmd.query);
        } catch {
          parsed = undefined;
        }
        const error = await runEval(target, cmd);
        const o: EvalOutcome = {
          line: cmd.line,
          query: cmd.query,
          passed: error === undefined,
          error,
          nativeHistograms: cmd.expectsHistogram || selectsAny(parsed, histSeries),
          startTimestamps: selectsAny(parsed, stSeries),
        };
        out.push(o);
        onEval?.(o);
        break;
      }
    }
  }
  return out;
}
