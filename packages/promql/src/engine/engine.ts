import { BadDataError, ExecutionError, assertNever } from "@strata/core";
import type { LabelMatcher, Labels } from "@strata/core";
import type { Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector } from "../ast.js";
import type { Querier, SelectHints } from "../querier.js";
import { evalAggregate } from "./aggregate.js";
import { evalBinary, evalUnary } from "./binary.js";
import { Env, abortError, evalError } from "./env.js";
import type { EngineOptions, LoadedSeries } from "./env.js";
import { evalFunction } from "./functions.js";
import { evalInfo, infoArgs, refTimeOf } from "./info.js";
import { RANGE_FUNCTIONS, evalRangeFunction, streamRangeFunction } from "./range-functions.js";
import type { SeriesSink } from "./range-functions.js";
import type { MatrixSeries, QueryResult, QueryStats } from "./result.js";
import type { MSeries, RangeArg, ScalarValue, StepCtx, Value, VectorValue, VSeries } from "./types.js";
import { bitsView, dropMetricName, isStaleAt, labelsKey } from "./types.js";

const DEFAULT_LOOKBACK = 5 * 60_000;
const DEFAULT_SUBQUERY_STEP = 60_000;

export type { EngineOptions } from "./env.js";

/** Parses a query string to an AST; injected so the engine does not depend on the parser. */
export type ParseFn = (query: string) => Expr;

export interface Engine {
  /** Evaluates `query` at `time` (ms). */
  instantQuery(querier: Querier, query: string | Expr, time: number, signal?: AbortSignal): Promise<QueryResult>;
  /** Evaluates `query` at start, start+step, …, end (ms). */
  rangeQuery(
    querier: Querier,
    query: string | Expr,
    start: number,
    end: number,
    step: number,
    signal?: AbortSignal,
  ): Promise<QueryResult>;
}

/** Duration expressions (`step()`, `range()`) resolved for one query; identity when absent. */
export type ResolveFn = (expr: Expr, q: { start: number; end: number; step: number }) => Expr;

export interface EngineDeps {
  readonly parse?: ParseFn;
  readonly resolveDurations?: ResolveFn;
}

export function createEngineWith(deps: EngineDeps, opts: EngineOptions = {}): Engine {
  const run = async (
    querier: Querier,
    query: string | Expr,
    start: number,
    end: number,
    step: number,
    signal: AbortSignal | undefined,
  ): Promise<QueryResult> => {
    let expr: Expr;
    let text = "";
    if (typeof query === "string") {
      if (deps.parse === undefined) throw new BadDataError("engine has no parser; pass an AST");
      text = query;
      expr = deps.parse(query);
    } else {
      expr = query;
    }
    if (deps.resolveDurations !== undefined) expr = deps.resolveDurations(expr, { start, end, step });
    let sig = signal;
    let timer: AbortSignal | undefined;
    if (opts.timeout !== undefined) {
      timer = AbortSignal.timeout(opts.timeout);
      sig = sig === undefined ? timer : AbortSignal.any([sig, timer]);
    }
    const env = new Env(
      text,
      start,
      end,
      step,
      opts.lookbackDelta ?? DEFAULT_LOOKBACK,
      opts.defaultSubqueryStep ?? DEFAULT_SUBQUERY_STEP,
      opts,
      sig,
    );
    return execute(querier, expr, env);
  };
  return {
    instantQuery: (querier, query, time, signal) => run(querier, query, time, time, 0, signal),
    rangeQuery: (querier, query, start, end, step, signal) => {
      if (!(step > 0)) {
        return Promise.reject(new BadDataError("zero or negative query resolution step widths are not accepted. Try a positive integer"));
      }
      if (end < start) return Promise.reject(new BadDataError("end timestamp must not be before start time"));
      return run(querier, query, start, end, step, signal);
    },
  };
}

async function execute(querier: Querier, expr: Expr, env: Env): Promise<QueryResult> {
  const instant = env.start === env.end && env.step === 0;
  const n = instant ? 1 : Math.floor((env.end - env.start) / env.step) + 1;
  const maxPoints = env.opts.maxPointsPerSeries;
  if (maxPoints !== undefined && n > maxPoints) {
    throw new ExecutionError(
      `exceeded maximum resolution of ${maxPoints} points per timeseries. Try decreasing the query resolution (?step=XX)`,
      "STRATA_LIMIT_EXCEEDED",
    );
  }
  const type = typeOfExpr(expr);
  if (!instant && type !== "scalar" && type !== "vector") {
    throw new BadDataError(`invalid expression type "${type === "matrix" ? "range vector" : type}" for range query, must be Scalar or instant Vector`);
  }
  await select(querier, expr, env);
  env.checkAbortNow();
  const times = new Float64Array(n);
  for (let k = 0; k < n; k++) times[k] = env.start + k * env.step;
  const ctx: StepCtx = { times, start: env.start, end: instant ? env.start : times[n - 1]!, interval: instant ? 1 : env.step };
  const ann = (): { warnings: string[]; infos: string[]; stats: QueryStats } => ({
    warnings: [...env.warnings],
    infos: [...env.infos],
    stats: { samplesSelected: env.selectedSamples, samplesScanned: env.samplesScanned, seriesSelected: env.seriesSelected },
  });

  if (type === "matrix") {
    const series = evalMatrixResult(expr, ctx, env);
    return { type: "matrix", series, ...ann() };
  }
  const v = evalExpr(expr, ctx, env);
  if (v.kind === "string") return { type: "string", timestamp: env.start, value: v.value, ...ann() };
  if (v.kind === "scalar") {
    if (instant) return { type: "scalar", timestamp: env.start, value: v.values[0]!, ...ann() };
    return {
      type: "matrix",
      series: [{ labels: [], timestamps: times, values: v.values }],
      ...ann(),
    };
  }
  const final = removeNames(v, n);
  if (instant) {
    const labels: Labels[] = [];
    const values = new Float64Array(final.length);
    for (const s of final) {
      if (s.present[0] !== 1) continue;
      values[labels.length] = s.values[0]!;
      labels.push(s.labels);
    }
    return { type: "vector", timestamp: env.start, labels, values: values.subarray(0, labels.length), ...ann() };
  }
  const series: MatrixSeries[] = [];
  for (const s of final) series.push(compact(s.labels, times, s.values, s.present));
  series.sort((a, b) => compareLabelsGo(a.labels, b.labels));
  return { type: "matrix", series, ...ann() };
}

/** Prometheus' labels.Compare (byte order of names then values). */
function compareLabelsGo(a: Labels, b: Labels): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name) return x.name < y.name ? -1 : 1;
    if (x.value !== y.value) return x.value < y.value ? -1 : 1;
  }
  return a.length - b.length;
}

function compact(labels: Labels, times: Float64Array, values: Float64Array, present: Uint8Array): MatrixSeries {
  let m = 0;
  for (let k = 0; k < present.length; k++) m += present[k]!;
  const ts = new Float64Array(m);
  const vs = new Float64Array(m);
  let j = 0;
  for (let k = 0; k < present.length; k++) {
    if (present[k] !== 1) continue;
    ts[j] = times[k]!;
    vs[j] = values[k]!;
    j++;
  }
  return { labels, timestamps: ts, values: vs };
}

/**
 * Delayed name removal (Prometheus 3): drop `__name__` where flagged, then merge series that
 * became equal; two of them with a sample at the same step is an error.
 */
function removeNames(v: VectorValue, n: number): VSeries[] {
  const byKey = new Map<string, VSeries>();
  const out: VSeries[] = [];
  for (const s of v.series) {
    const labels = s.dropName ? dropMetricName(s.labels) : s.labels;
    const key = labelsKey(labels);
    const prev = byKey.get(key);
    if (prev === undefined) {
      const ns: VSeries = { labels, dropName: false, values: s.values, present: s.present };
      byKey.set(key, ns);
      out.push(ns);
      continue;
    }
    // Copy-on-merge: the first series' arrays may be shared with another node's value.
    const values = new Float64Array(prev.values);
    const present = new Uint8Array(prev.present);
    for (let k = 0; k < n; k++) {
      if (s.present[k] !== 1) continue;
      if (present[k] === 1) throw evalError("vector cannot contain metrics with the same labelset");
      present[k] = 1;
      values[k] = s.values[k]!;
    }
    const merged: VSeries = { labels, dropName: false, values, present };
    byKey.set(key, merged);
    out[out.indexOf(prev)] = merged;
  }
  return out;
}

// ---- selection ------------------------------------------------------------------------------

interface Span {
  lo: number;
  hi: number;
}

/** Fetches every selector's series with the time range its evaluation needs. */
async function select(querier: Querier, root: Expr, env: Env): Promise<void> {
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
      list.push({ labels: s.labels, ts: s.timestamps, vs: s.values, bits: bitsView(s.values), clean: undefined });
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

function atOf(at: number | undefined, mod: "start" | "end" | undefined, env: Env): number | undefined {
  if (mod === "start") return env.start;
  if (mod === "end") return env.end;
  return at;
}

/** Inner evaluation times of a subquery evaluated for outer times [lo, hi] (Prometheus' alignment). */
function subqueryTimes(e: SubqueryExpr, lo: number, hi: number, env: Env): { start: number; end: number; interval: number } {
  const at = atOf(e.at, e.atModifier, env);
  const interval = e.step > 0 ? e.step : env.defaultSubqueryStep;
  const outerLo = at ?? lo;
  const outerHi = at ?? hi;
  const from = outerLo - e.offset - e.range;
  let start = interval * Math.trunc(from / interval);
  if (start <= from) start += interval;
  return { start, end: outerHi - e.offset, interval };
}

// ---- evaluation -----------------------------------------------------------------------------

type ExprType = "scalar" | "string" | "vector" | "matrix";

export function typeOfExpr(e: Expr): ExprType {
  switch (e.kind) {
    case "NumberLiteral":
      return "scalar";
    case "StringLiteral":
      return "string";
    case "VectorSelector":
      return "vector";
    case "MatrixSelector":
    case "SubqueryExpr":
      return "matrix";
    case "Call":
      return e.func.returnType;
    case "AggregateExpr":
      return "vector";
    case "BinaryExpr":
      return typeOfExpr(e.lhs) === "scalar" && typeOfExpr(e.rhs) === "scalar" ? "scalar" : "vector";
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return typeOfExpr(e.expr);
    default:
      return assertNever(e, "expression");
  }
}

export function constScalar(v: number, n: number): ScalarValue {
  const values = new Float64Array(n);
  values.fill(v);
  return { kind: "scalar", values };
}

/** Evaluates an expression of type scalar, string or vector at every time of `ctx`. */
export function evalExpr(e: Expr, ctx: StepCtx, env: Env): Value {
  env.checkAbort();
  const n = ctx.times.length;
  switch (e.kind) {
    case "NumberLiteral":
      return constScalar(e.value, n);
    case "StringLiteral":
      return { kind: "string", value: e.value };
    case "VectorSelector":
      return evalVectorSelector(e, ctx, env, false);
    case "MatrixSelector":
    case "SubqueryExpr":
      throw evalError(`unexpected range vector ${e.kind} in an instant context`);
    case "Call":
      return evalCall(e, ctx, env);
    case "AggregateExpr":
      return checkVector(evalAggregate(e, ctx, env), n, env);
    case "BinaryExpr":
      return evalBinary(e, ctx, env);
    case "UnaryExpr":
      return evalUnary(e, evalExpr(e.expr, ctx, env));
    case "ParenExpr":
    case "StepInvariantExpr":
      return evalExpr(e.expr, ctx, env);
    default:
      return assertNever(e, "expression");
  }
}

function checkVector(v: VectorValue, n: number, env: Env): VectorValue {
  if (env.opts.maxSamples !== undefined) {
    let points = 0;
    for (const s of v.series) for (let k = 0; k < n; k++) points += s.present[k]!;
    env.checkSamples(points);
  }
  return v;
}

/** Evaluates `e` and requires an instant vector. */
export function evalVector(e: Expr, ctx: StepCtx, env: Env): VectorValue {
  const v = evalExpr(e, ctx, env);
  if (v.kind !== "vector") throw evalError(`expected instant vector, got ${v.kind}`);
  return v;
}

/** Evaluates `e` and requires a scalar. */
export function evalScalar(e: Expr, ctx: StepCtx, env: Env): ScalarValue {
  const v = evalExpr(e, ctx, env);
  if (v.kind !== "scalar") throw evalError(`expected scalar, got ${v.kind}`);
  return v;
}

function unwrap(e: Expr): Expr {
  while (e.kind === "ParenExpr" || e.kind === "StepInvariantExpr") e = e.expr;
  return e;
}

function evalCall(e: Call, ctx: StepCtx, env: Env): Value {
  const name = e.func.name;
  const n = ctx.times.length;
  if (RANGE_FUNCTIONS.has(name)) {
    let mi = e.func.argTypes.indexOf("matrix");
    if (mi < 0) mi = 0;
    const arg = evalRangeArg(e.args[mi]!, ctx, env, name);
    const scalars: Float64Array[] = [];
    for (let i = 0; i < e.args.length; i++) if (i !== mi) scalars.push(evalScalar(e.args[i]!, ctx, env).values);
    const out = evalRangeFunction(e, arg, scalars, ctx, env);
    if (name === "absent_over_time") return absentOverTime(e, out, n);
    return checkVector(out, n, env);
  }
  if (name === "info") {
    const base = evalVector(e.args[0]!, ctx, env);
    return checkVector(evalInfo(e, base, ctx, env, env.selections.get(e) ?? []), n, env);
  }
  if (name === "timestamp") {
    const a = unwrap(e.args[0]!);
    if (a.kind === "VectorSelector") {
      const v = evalVectorSelector(a, ctx, env, true);
      for (const s of v.series) s.dropName = true;
      return v;
    }
  }
  const args: Value[] = e.args.map((a) => evalExpr(a, ctx, env));
  const out = evalFunction(e, args, ctx, env);
  return out.kind === "vector" ? checkVector(out, n, env) : out;
}

/**
 * Feeds the series of an instant-vector expression to `sink`. Range functions stream with
 * reused arrays (the sink must copy what it keeps); everything else is evaluated first.
 */
export function streamVector(e: Expr, ctx: StepCtx, env: Env, sink: SeriesSink): void {
  const u = unwrap(e);
  if (u.kind === "Call" && RANGE_FUNCTIONS.has(u.func.name) && u.func.name !== "absent_over_time") {
    let mi = u.func.argTypes.indexOf("matrix");
    if (mi < 0) mi = 0;
    const arg = evalRangeArg(u.args[mi]!, ctx, env, u.func.name);
    const scalars: Float64Array[] = [];
    for (let i = 0; i < u.args.length; i++) if (i !== mi) scalars.push(evalScalar(u.args[i]!, ctx, env).values);
    streamRangeFunction(u, arg, scalars, ctx, env, sink, true);
    return;
  }
  const v = evalVector(e, ctx, env);
  for (const s of v.series) sink(s.labels, s.dropName, s.values, s.present);
}

function absentOverTime(e: Call, v: VectorValue, n: number): VectorValue {
  const values = new Float64Array(n);
  const present = new Uint8Array(n);
  let any = false;
  for (let k = 0; k < n; k++) {
    let found = false;
    for (const s of v.series) {
      if (s.present[k] === 1) {
        found = true;
        break;
      }
    }
    if (!found) {
      values[k] = 1;
      present[k] = 1;
      any = true;
    }
  }
  if (!any) return { kind: "vector", series: [] };
  return { kind: "vector", series: [{ labels: absentLabels(e.args[0]!), dropName: false, values, present }] };
}

/** Prometheus' createLabelsForAbsentFunction. */
export function absentLabels(arg: Expr): Labels {
  let sel: VectorSelector | undefined;
  if (arg.kind === "VectorSelector") sel = arg;
  else if (arg.kind === "MatrixSelector") sel = arg.vector;
  if (sel === undefined) return [];
  const has = new Set<string>();
  const m = new Map<string, string>();
  for (const ma of sel.matchers) {
    if (ma.name === "__name__") continue;
    if (ma.type === "=" && !has.has(ma.name)) {
      m.set(ma.name, ma.value);
      has.add(ma.name);
    } else {
      m.delete(ma.name);
    }
  }
  const out: { name: string; value: string }[] = [];
  for (const [name, value] of m) if (value !== "") out.push({ name, value });
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

function cleanOf(s: LoadedSeries): { ts: Float64Array; vs: Float64Array } {
  if (s.clean !== undefined) return s.clean;
  let stale = 0;
  const raw = s.vs;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    if (v !== v && isStaleAt(s.bits, i)) stale++;
  }
  if (stale === 0) {
    s.clean = { ts: s.ts, vs: s.vs };
    return s.clean;
  }
  const m = s.ts.length - stale;
  const ts = new Float64Array(m);
  const vs = new Float64Array(m);
  let j = 0;
  for (let i = 0; i < s.ts.length; i++) {
    if (isStaleAt(s.bits, i)) continue;
    ts[j] = s.ts[i]!;
    vs[j] = s.vs[i]!;
    j++;
  }
  s.clean = { ts, vs };
  return s.clean;
}

/** Instant-vector selector: last sample in (ref - lookback, ref], unless it is a stale marker. */
export function evalVectorSelector(sel: VectorSelector, ctx: StepCtx, env: Env, wantTimestamps: boolean): VectorValue {
  const list = env.selections.get(sel) ?? [];
  const n = ctx.times.length;
  const at = atOf(sel.at, sel.atModifier, env);
  const offset = sel.offset;
  const lookback = env.lookback;
  const times = ctx.times;
  const out: VSeries[] = [];
  for (const s of list) {
    env.checkAbort();
    const ts = s.ts;
    const vs = s.vs;
    const bits = s.bits;
    const len = ts.length;
    let values: Float64Array | undefined;
    let present: Uint8Array | undefined;
    let j = 0;
    for (let k = 0; k < n; k++) {
      const ref = (at ?? times[k]!) - offset;
      if (k > 0 && at === undefined && ref < (times[k - 1]! - offset)) j = 0;
      while (j < len && ts[j]! <= ref) j++;
      const i = j - 1;
      if (i < 0 || ts[i]! <= ref - lookback || isStaleAt(bits, i)) continue;
      if (values === undefined) {
        values = new Float64Array(n);
        present = new Uint8Array(n);
      }
      let v = wantTimestamps ? ts[i]! / 1000 : vs[i]!;
      // `smoothed`: interpolate linearly towards the next sample (within the lookback delta).
      if (sel.smoothed && !wantTimestamps && ts[i]! < ref && j < len && ts[j]! - ref <= lookback && !isStaleAt(bits, j)) {
        v = vs[i]! + ((vs[j]! - vs[i]!) * (ref - ts[i]!)) / (ts[j]! - ts[i]!);
      }
      values[k] = v;
      present![k] = 1;
    }
    if (values !== undefined) out.push({ labels: s.labels, dropName: false, values, present: present! });
  }
  return { kind: "vector", series: out };
}

/** A range-vector argument (matrix selector or subquery) with per-step windows. */
export function evalRangeArg(e: Expr, ctx: StepCtx, env: Env, func: string): RangeArg {
  const a = unwrap(e);
  const n = ctx.times.length;
  const ends = new Float64Array(n);
  if (a.kind === "MatrixSelector") {
    const v = a.vector;
    const at = atOf(v.at, v.atModifier, env);
    for (let k = 0; k < n; k++) ends[k] = (at ?? ctx.times[k]!) - v.offset;
    const list = env.selections.get(v) ?? [];
    const series: MSeries[] = [];
    for (const s of list) {
      const c = cleanOf(s);
      series.push({ labels: s.labels, dropName: false, ts: c.ts, vs: c.vs });
    }
    checkModifiers(a, func);
    return { series, ends, range: a.range, extended: v.anchored ? "anchored" : v.smoothed ? "smoothed" : "" };
  }
  if (a.kind === "SubqueryExpr") {
    const at = atOf(a.at, a.atModifier, env);
    for (let k = 0; k < n; k++) ends[k] = (at ?? ctx.times[k]!) - a.offset;
    return { series: evalSubquerySeries(a, ctx, env), ends, range: a.range, extended: "" };
  }
  throw evalError(`expected range vector, got ${typeOfExpr(a)}`);
}

function checkModifiers(m: MatrixSelector, func: string): void {
  if (m.vector.smoothed && func !== "rate" && func !== "increase" && func !== "delta") {
    throw evalError(`smoothed modifier can only be used with: delta, increase, rate - not with ${func}`);
  }
  if (m.vector.anchored && !["changes", "delta", "increase", "rate", "resets"].includes(func)) {
    throw evalError(`anchored modifier can only be used with: changes, delta, increase, rate, resets - not with ${func}`);
  }
}

/** Evaluates a subquery's inner expression at its aligned steps; one raw series per result. */
function evalSubquerySeries(e: SubqueryExpr, ctx: StepCtx, env: Env): MSeries[] {
  const t = subqueryTimes(e, ctx.times[0]!, ctx.times[ctx.times.length - 1]!, env);
  const m = t.end >= t.start ? Math.floor((t.end - t.start) / t.interval) + 1 : 0;
  const times = new Float64Array(m);
  for (let i = 0; i < m; i++) times[i] = t.start + i * t.interval;
  if (m === 0) return [];
  const inner: StepCtx = { times, start: t.start, end: times[m - 1]!, interval: t.interval };
  const v = evalExpr(e.expr, inner, env);
  const series: MSeries[] = [];
  if (v.kind === "scalar") {
    series.push({ labels: [], dropName: false, ts: times, vs: v.values });
    return series;
  }
  if (v.kind !== "vector") throw evalError("subquery is only allowed on instant vector");
  for (const s of v.series) {
    const c = compact(s.labels, times, s.values, s.present);
    series.push({ labels: s.labels, dropName: s.dropName, ts: c.timestamps, vs: c.values });
  }
  return series;
}

/** An instant query whose expression is a range vector: the samples of each window. */
function evalMatrixResult(e: Expr, ctx: StepCtx, env: Env): MatrixSeries[] {
  const arg = evalRangeArg(e, ctx, env, "");
  const end = arg.ends[0]!;
  const start = end - arg.range;
  const out: MatrixSeries[] = [];
  const byKey = new Set<string>();
  for (const s of arg.series) {
    let lo = 0;
    while (lo < s.ts.length && s.ts[lo]! <= start) lo++;
    let hi = lo;
    while (hi < s.ts.length && s.ts[hi]! <= end) hi++;
    if (hi === lo) continue;
    const labels = s.dropName ? dropMetricName(s.labels) : s.labels;
    const key = labelsKey(labels);
    if (byKey.has(key)) throw evalError("vector cannot contain metrics with the same labelset");
    byKey.add(key);
    out.push({ labels, timestamps: s.ts.slice(lo, hi), values: s.vs.slice(lo, hi) });
  }
  return out;
}
