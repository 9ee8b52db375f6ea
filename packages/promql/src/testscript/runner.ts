import { compareLabels, normalizeLabels, RE2JS, type Label, type Labels, type LabelMatcher } from "@strata/core";
import { node, type Expr, type SubqueryExpr, type VectorSelector, type MatrixSelector } from "../ast.js";
import type { QueryResult } from "../engine/result.js";
import { parseExpr } from "../parser/parser.js";
import { formatFloat, printExpr } from "../printer.js";
import type { Command, EvalCommand, Expectation, ExpectedSeries } from "./script.js";
import { STALE_MARKER_BITS } from "./series.js";

/**
 * Runs parsed test scripts against any engine, checking results the way Prometheus'
 * promqltest does: float tolerance (relative 1e-6), NaN equals NaN, label sets compared
 * exactly (metric name included), order only with `expect ordered`, annotations per `expect`
 * lines. Every instant eval is also run as a range query (the middle step must agree) and
 * re-run with `@ <t>` added to every selector at other evaluation times (step invariance).
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
const DEFAULT_EPSILON = 0.000001;
const MIN_NORMAL = 2.2250738585072014e-308;

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

export function almostEqual(a: number, b: number, epsilon = DEFAULT_EPSILON): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  if (a === b) return true;
  const absSum = Math.abs(a) + Math.abs(b);
  const diff = Math.abs(a - b);
  if (a === 0 || b === 0 || absSum < MIN_NORMAL) return diff < epsilon * MIN_NORMAL;
  return diff / Math.min(absSum, Number.MAX_VALUE) < epsilon;
}

function labelsKey(labels: readonly Label[]): string {
  const sorted = normalizeLabels(labels);
  let s = "";
  for (const l of sorted) s += `${l.name}\u0000${l.value}\u0001`;
  return s;
}

export function formatLabelSet(labels: readonly Label[]): string {
  const name = labels.find((l) => l.name === "__name__")?.value ?? "";
  const rest = labels.filter((l) => l.name !== "__name__").map((l) => `${l.name}=${JSON.stringify(l.value)}`);
  return `${name}{${rest.join(", ")}}`;
}

class Mismatch extends Error {}

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

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function matches(exp: Expectation, s: string): boolean {
  if (exp.match === undefined) return true;
  if (exp.match.type === "msg") return exp.match.text === s;
  return RE2JS.compile(exp.match.text).matcher(s).find();
}

/** promqltest's checkExpectedFailure: legacy fail messages all match, then the first `expect fail`. */
function checkFailure(cmd: EvalCommand, err: unknown): void {
  const msg = errMessage(err);
  const fails = cmd.expectations.filter((e) => e.kind === "fail");
  const check = [...fails.filter((e) => e.source === "legacy"), ...fails.filter((e) => e.source === "expect").slice(0, 1)];
  for (const f of check) {
    if (f.match !== undefined && !matches(f, msg)) {
      throw new Mismatch(`expected error ${f.match.type === "msg" ? "" : "matching "}${JSON.stringify(f.match.text)}, but got: ${msg}`);
    }
  }
}

function checkAnnotations(cmd: EvalCommand, res: QueryResult): void {
  for (const [kind, none, list] of [
    ["warn", "no_warn", res.warnings],
    ["info", "no_info", res.infos],
  ] as const) {
    const exps = cmd.expectations.filter((e) => e.kind === kind);
    if (cmd.expectations.some((e) => e.kind === none) && list.length > 0) {
      throw new Mismatch(`unexpected ${kind} annotations: ${JSON.stringify(list)}`);
    }
    if (exps.length === 0) continue;
    if (list.length === 0) throw new Mismatch(`expected ${kind} annotations but got none`);
    for (const a of list) {
      if (!exps.some((e) => matches(e, a))) throw new Mismatch(`unexpected ${kind} annotation ${JSON.stringify(a)}`);
    }
    for (const e of exps) {
      if (!list.some((a) => matches(e, a))) {
        throw new Mismatch(`expected ${kind} annotation ${JSON.stringify(e.match?.text ?? "")} but got ${JSON.stringify(list)}`);
      }
    }
  }
}

function assertMatrixSorted(series: readonly { labels: Labels }[]): void {
  for (let i = 1; i < series.length; i++) {
    if (compareLabels(normalizeLabels(series[i - 1]!.labels), normalizeLabels(series[i]!.labels)) > 0) {
      throw new Mismatch(
        `matrix results should always be sorted by labels, but matrix is not sorted: series at index ${i - 1} with labels ${formatLabelSet(series[i - 1]!.labels)} sorts after series at index ${i} with labels ${formatLabelSet(series[i]!.labels)}`,
      );
    }
  }
}

interface Vec {
  readonly labels: readonly Labels[];
  readonly values: ArrayLike<number>;
}

function compareVector(cmd: EvalCommand, v: Vec, ordered: boolean): void {
  if (cmd.expectScalar !== undefined) throw new Mismatch(`expected scalar result, but got vector`);
  if (cmd.expectString !== undefined) throw new Mismatch(`expected string result, but got vector`);
  const byKey = new Map<string, ExpectedSeries>();
  for (const s of cmd.expected) byKey.set(labelsKey(s.labels), s);
  const seen = new Set<string>();
  for (let pos = 0; pos < v.labels.length; pos++) {
    const labels = v.labels[pos]!;
    const got = v.values[pos]!;
    const key = labelsKey(labels);
    const exp = byKey.get(key);
    if (exp === undefined) throw new Mismatch(`unexpected metric ${formatLabelSet(labels)} in result, has value ${formatFloat(got)}`);
    if (ordered && exp.pos !== pos + 1) {
      throw new Mismatch(`expected metric ${formatLabelSet(labels)} at position ${exp.pos} but was at ${pos + 1}`);
    }
    const e0 = exp.values[0];
    if (e0 === undefined || e0.omitted) throw new Mismatch(`expected no value for ${formatLabelSet(labels)} but got ${formatFloat(got)}`);
    if (e0.histogram !== undefined) throw new Mismatch(`expected histogram ${e0.histogram} for ${formatLabelSet(labels)} but got float ${formatFloat(got)}`);
    if (!almostEqual(e0.value, got)) {
      throw new Mismatch(`expected ${formatFloat(e0.value)} for ${formatLabelSet(labels)} but got ${formatFloat(got)}`);
    }
    seen.add(key);
  }
  for (const [key, exp] of byKey) {
    if (!seen.has(key)) throw new Mismatch(`expected metric ${formatLabelSet(exp.labels)} with ${exp.values.map((x) => formatFloat(x.value)).join(" ")} not found`);
  }
}

function compareMatrix(cmd: EvalCommand, res: Extract<QueryResult, { type: "matrix" }>, start: number, end: number, step: number): void {
  if (cmd.ordered) throw new Mismatch("expected ordered result, but query returned a matrix");
  if (cmd.expectScalar !== undefined) throw new Mismatch("expected scalar result, but got matrix");
  if (cmd.expectString !== undefined) throw new Mismatch("expected string result, but got matrix");
  assertMatrixSorted(res.series);
  const byKey = new Map<string, ExpectedSeries>();
  for (const s of cmd.expected) byKey.set(labelsKey(s.labels), s);
  const seen = new Set<string>();
  for (const s of res.series) {
    const key = labelsKey(s.labels);
    const exp = byKey.get(key);
    if (exp === undefined) throw new Mismatch(`unexpected metric ${formatLabelSet(s.labels)} in result, has ${describePoints(s.timestamps, s.values)}`);
    seen.add(key);
    const ts: number[] = [];
    const vs: number[] = [];
    for (let i = 0; i < exp.values.length; i++) {
      const t = start + i * step;
      if (t > end) throw new Mismatch(`expected ${exp.values.length} points for ${formatLabelSet(exp.labels)}, but query time range cannot return this many points`);
      const e = exp.values[i]!;
      if (e.histogram !== undefined) throw new Mismatch(`expected histogram points for ${formatLabelSet(exp.labels)} (native histograms are not supported)`);
      if (!e.omitted) {
        ts.push(t);
        vs.push(e.value);
      }
    }
    if (ts.length !== s.timestamps.length) {
      throw new Mismatch(`expected ${ts.length} float points for ${formatLabelSet(exp.labels)}, but got ${describePoints(s.timestamps, s.values)}`);
    }
    for (let i = 0; i < ts.length; i++) {
      if (ts[i] !== s.timestamps[i]) {
        throw new Mismatch(`expected float value at index ${i} for ${formatLabelSet(exp.labels)} to have timestamp ${ts[i]}, but it had timestamp ${s.timestamps[i]} (result has ${describePoints(s.timestamps, s.values)})`);
      }
      if (!almostEqual(vs[i]!, s.values[i]!)) {
        throw new Mismatch(`expected float value at index ${i} (t=${ts[i]}) for ${formatLabelSet(exp.labels)} to be ${formatFloat(vs[i]!)}, but got ${formatFloat(s.values[i]!)} (result has ${describePoints(s.timestamps, s.values)})`);
      }
    }
  }
  for (const [key, exp] of byKey) {
    if (!seen.has(key)) throw new Mismatch(`expected metric ${formatLabelSet(exp.labels)} not found`);
  }
}

function describePoints(ts: ArrayLike<number>, vs: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < ts.length && i < 20; i++) parts.push(`${formatFloat(vs[i]!)} @[${ts[i]}]`);
  if (ts.length > 20) parts.push("…");
  return `${ts.length} float points [${parts.join(", ")}]`;
}

/** Compares an instant query's result with the eval's expectations. */
export function compareInstantResult(cmd: EvalCommand, res: QueryResult, ordered = cmd.ordered): void {
  switch (res.type) {
    case "vector":
      compareVector(cmd, res, ordered);
      return;
    case "scalar":
      if (cmd.expectScalar === undefined) throw new Mismatch(`expected vector or matrix result, but got scalar ${formatFloat(res.value)}`);
      if (!almostEqual(cmd.expectScalar, res.value)) throw new Mismatch(`expected scalar ${formatFloat(cmd.expectScalar)} but got ${formatFloat(res.value)}`);
      return;
    case "string":
      // Like promqltest: without `expect string` the expected string is "".
      if ((cmd.expectString ?? "") !== res.value) throw new Mismatch(`expected string ${JSON.stringify(cmd.expectString ?? "")} but got ${JSON.stringify(res.value)}`);
      return;
    case "matrix": {
      const rv = cmd.expectRangeVector;
      if (rv === undefined) throw new Mismatch("received range result on instant evaluation");
      compareMatrix(cmd, res, rv.start, rv.end, rv.step);
      return;
    }
  }
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
        for (const s of cmd.series) {
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
