import { BadDataError, ExecutionError, Trace } from "@strata/core";
import type { Labels } from "@strata/core";
import type { Expr, VectorSelector } from "../ast.js";
import type { Querier } from "../querier.js";
import { Env, evalError } from "./env.js";
import type { EngineOptions } from "./env.js";
import { estimateCost, SAMPLE_BYTES } from "./cost.js";
import { evalExpr, typeOfExpr } from "./eval.js";
import type { MatrixSeries, QueryResult, QueryStats } from "./result.js";
import { select } from "./select.js";
import { compact, evalMatrixResult } from "./selectors.js";
import { Columns } from "./columns.js";
import type { StepCtx, VectorValue, VSeries } from "./types.js";
import { dropMetricName, labelsKey } from "./types.js";

const DEFAULT_LOOKBACK = 5 * 60_000;
const DEFAULT_SUBQUERY_STEP = 60_000;

export type { EngineOptions } from "./env.js";

/** Parses a query string to an AST; injected so the engine does not depend on the parser. */
export type ParseFn = (query: string) => Expr;

export interface Engine {
  /** Evaluates `query` at `time` (ms); parse, selection and evaluation are recorded under `trace`. */
  instantQuery(querier: Querier, query: string | Expr, time: number, signal?: AbortSignal, trace?: Trace): Promise<QueryResult>;
  /** Evaluates `query` at start, start+step, …, end (ms). */
  rangeQuery(
    querier: Querier,
    query: string | Expr,
    start: number,
    end: number,
    step: number,
    signal?: AbortSignal,
    trace?: Trace,
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
    trace: Trace,
  ): Promise<QueryResult> => {
    let expr: Expr;
    let text = "";
    if (typeof query === "string") {
      if (deps.parse === undefined) throw new BadDataError("engine has no parser; pass an AST");
      text = query;
      const t = trace.child("parse query");
      expr = deps.parse(query);
      t.done();
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
    env.trace = trace;
    try {
      return await execute(querier, expr, env);
    } finally {
      for (const s of env.streams.values()) s.close();
      env.memory.release();
    }
  };
  return {
    // Times are whole milliseconds, as Prometheus truncates them (timestamp.FromTime).
    instantQuery: (querier, query, time, signal, trace = Trace.off) => {
      if (!Number.isFinite(time)) return Promise.reject(new BadDataError(`invalid evaluation time ${time}`));
      return run(querier, query, Math.floor(time), Math.floor(time), 0, signal, trace);
    },
    rangeQuery: (querier, query, rawStart, rawEnd, rawStep, signal, trace = Trace.off) => {
      if (!Number.isFinite(rawStart) || !Number.isFinite(rawEnd)) {
        return Promise.reject(new BadDataError(`invalid time range ${rawStart}..${rawEnd}`));
      }
      const start = Math.floor(rawStart);
      const end = Math.floor(rawEnd);
      const step = Math.floor(rawStep);
      if (!(step > 0)) {
        return Promise.reject(new BadDataError("zero or negative query resolution step widths are not accepted. Try a positive integer"));
      }
      if (end < start) return Promise.reject(new BadDataError("end timestamp must not be before start time"));
      return run(querier, query, start, end, step, signal, trace);
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
  // Before selecting anything: queries too big whatever the data (every selector one series).
  const lower = estimateCost(expr, env, n, () => 1);
  env.memory.admit(lower.bytes, "its evaluation needs at least");
  const root = env.trace;
  env.trace = root.child("select series in parallel");
  await select(querier, expr, env);
  env.trace.done(`select series in parallel: ${env.seriesSelected} series with ${env.selectedSamples} samples read whole, ${env.streams.size} selections streamed`);
  env.checkAbortNow();
  // Before evaluating: the selected series and samples are known; a streamed selection holds
  // one batch in hand and one decoded ahead, never all of its samples.
  const selected = (sel: VectorSelector): readonly Labels[] => {
    const s = env.selections.get(sel);
    return s !== undefined ? s.map(labelsOfSeries) : (env.streams.get(sel)?.labels ?? []);
  };
  const est = estimateCost(
    expr,
    env,
    n,
    (sel) => env.selections.get(sel)?.length ?? env.streams.get(sel)?.labels.length ?? 0,
    // A streamed selection's partition is the one its fold asks for (aggregate.ts SimpleAgg.partition).
    (sel, grouping, without) => env.partitions.get(selected(sel), new Set(grouping), without).groups,
  );
  let streamedSeries = 0;
  let streamedSamples = 0;
  for (const s of env.streams.values()) {
    streamedSeries += s.labels.length;
    streamedSamples += s.heldSamples;
  }
  const held = env.heldSamples + streamedSamples;
  const resultBytes = type === "matrix" ? env.selectedSamples * SAMPLE_BYTES : instant ? 0 : est.series * n * SAMPLE_BYTES;
  env.memory.admit(
    est.bytes + held * SAMPLE_BYTES + resultBytes,
    `it selects ${env.seriesSelected + streamedSeries} series with ${held} samples${streamedSamples > 0 ? " in memory at once" : ""} and returns up to ${est.series} series with ${n} points each, which needs about`,
  );
  env.memory.charge(held * SAMPLE_BYTES);
  const times = new Float64Array(n);
  for (let k = 0; k < n; k++) times[k] = env.start + k * env.step;
  const ctx: StepCtx = { times, start: env.start, end: instant ? env.start : times[n - 1]!, interval: instant ? 1 : env.step };
  const ann = (): { warnings: string[]; infos: string[]; stats: QueryStats } => ({
    warnings: [...env.warnings],
    infos: [...env.infos],
    stats: {
      samplesSelected: env.selectedSamples,
      samplesScanned: env.samplesScanned,
      seriesSelected: env.seriesSelected,
      memoryEstimated: env.memory.estimated,
      memoryCharged: env.memory.charged,
    },
  });

  const evalTrace = (env.trace = root.child(`evaluate at ${n} steps`));
  try {
    return await evaluate(expr, type, instant, n, times, ctx, env, ann);
  } finally {
    evalTrace.done(`evaluate at ${n} steps: ${env.seriesSelected} series selected, ${env.samplesScanned} samples scanned`);
    env.trace = root;
  }
}

async function evaluate(
  expr: Expr,
  type: string,
  instant: boolean,
  n: number,
  times: Float64Array,
  ctx: StepCtx,
  env: Env,
  ann: () => { warnings: string[]; infos: string[]; stats: QueryStats },
): Promise<QueryResult> {
  if (type === "matrix") {
    const series = await evalMatrixResult(expr, ctx, env);
    return { type: "matrix", series, ...ann() };
  }
  const v = await evalExpr(expr, ctx, env);
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
  // The answer's own chunks: a cached answer holds them, not the chunks of intermediate values.
  const columns = new Columns();
  for (const s of final) {
    if (env.yieldDue()) await env.yieldNow();
    series.push(compact(s.labels, times, s.values, s.present, columns));
  }
  series.sort(byLabelsGo);
  return { type: "matrix", series, ...ann() };
}

function labelsOfSeries(s: { readonly labels: Labels }): Labels {
  return s.labels;
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

/** A module function, not an arrow per query (V8 re-optimized every such closure). */
function byLabelsGo(a: MatrixSeries, b: MatrixSeries): number {
  return compareLabelsGo(a.labels, b.labels);
}
