import type { Labels } from "@strata/core";
import type { Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector } from "../ast.js";
import { evalError, isStaleSample } from "./env.js";
import type { Env, LoadedSeries } from "./env.js";
import type { FoldedGroup, RollupBatch, RollupSpec, SeriesStream } from "../querier.js";
import { evalExpr, typeOfExpr, unwrap } from "./eval.js";
import type { MatrixSeries } from "./result.js";
import type { Columns } from "./columns.js";
import { SAMPLE_BYTES, SERIES_BYTES } from "./cost.js";
import { atOf, countSeries, matchersText, subqueryTimes } from "./select.js";
import { keepsName, noteNotCounter, SIMPLE_ROLLUPS, type SeriesSink } from "./range-functions.js";
import type { MSeries, RangeArg, StepCtx, VectorValue, VSeries } from "./types.js";
import { dropMetricName, labelsKey } from "./types.js";

/** The present steps of a series as samples; with `columns`, its arrays are cut from there. */
export function compact(labels: Labels, times: Float64Array, values: Float64Array, present: Uint8Array, columns?: Columns): MatrixSeries {
  let m = 0;
  for (let k = 0; k < present.length; k++) m += present[k]!;
  const ts = columns === undefined ? new Float64Array(m) : columns.values(m);
  const vs = columns === undefined ? new Float64Array(m) : columns.values(m);
  let j = 0;
  for (let k = 0; k < present.length; k++) {
    if (present[k] !== 1) continue;
    ts[j] = times[k]!;
    vs[j] = values[k]!;
    j++;
  }
  return { labels, timestamps: ts, values: vs };
}

function cleanOf(s: LoadedSeries): { ts: Float64Array; vs: Float64Array; st: Float64Array | undefined } {
  if (s.clean !== undefined) return s.clean;
  let stale = 0;
  const raw = s.vs;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i]!;
    if (v !== v && isStaleSample(s, i)) stale++;
  }
  if (stale === 0) {
    s.clean = { ts: s.ts, vs: s.vs, st: s.st };
    return s.clean;
  }
  const m = s.ts.length - stale;
  const ts = new Float64Array(m);
  const vs = new Float64Array(m);
  const st = s.st === undefined ? undefined : new Float64Array(m);
  let j = 0;
  for (let i = 0; i < s.ts.length; i++) {
    if (isStaleSample(s, i)) continue;
    ts[j] = s.ts[i]!;
    vs[j] = s.vs[i]!;
    if (st !== undefined) st[j] = s.st![i]!;
    j++;
  }
  s.clean = { ts, vs, st };
  return s.clean;
}

/**
 * The series of a selector, in batches: a whole selection as one batch, a streamed one
 * (env.streams) batch by batch. A streamed batch counts against maxSamples while it is in hand
 * and is dropped (its arrays invalid) when the consumer asks for the next; the consumer keeps
 * nothing of its arrays.
 */
export async function* selectionBatches(sel: VectorSelector, env: Env): AsyncGenerator<readonly LoadedSeries[]> {
  const stream = env.streams.get(sel);
  if (stream === undefined) {
    yield env.selections.get(sel) ?? [];
    return;
  }
  let waited = 0;
  let batches = 0;
  let series = 0;
  let total = 0;
  try {
    for (;;) {
      const t0 = performance.now();
      const batch = await stream.nextBatch();
      waited += performance.now() - t0;
      env.checkAbortNow();
      if (batch === undefined) break;
      batches++;
      series += batch.length;
      const list: LoadedSeries[] = [];
      let samples = 0;
      for (const s of batch) {
        countSeries(env);
        samples += s.timestamps.length;
        list.push({ labels: s.labels, ts: s.timestamps, vs: s.values, bits: undefined, st: s.startTimestamps, clean: undefined });
      }
      env.checkSamples(samples);
      total += samples;
      env.selectedSamples += samples;
      env.heldSamples += samples;
      try {
        yield list;
      } finally {
        env.heldSamples -= samples;
      }
    }
    for (const w of stream.warnings) env.warnings.add(w);
  } finally {
    stream.close();
    env.trace.addDone(`wait for decoded batches of ${matchersText(sel.matchers)}: ${batches} batches, ${series} series, ${total} samples`, waited);
  }
}

/** The windows' ends of `call` over streamed `m` at every step, as a RollupSpec. */
function rollupSpecOf(call: Call, m: MatrixSelector, ctx: StepCtx, env: Env): RollupSpec {
  const v = m.vector;
  const n = ctx.times.length;
  const ends = new Float64Array(n);
  const at = atOf(v.at, v.atModifier, env);
  for (let k = 0; k < n; k++) ends[k] = (at ?? ctx.times[k]!) - v.offset;
  return { func: call.func.name, ends, range: m.range };
}

/**
 * Reads a querier-computed rollup's batches with the limits, counts and annotations of
 * streamRangeFunction over selectionBatches; `each(b, i)` gets every row with output.
 */
async function readRollup(
  call: Call,
  v: VectorSelector,
  stream: SeriesStream,
  next: () => Promise<RollupBatch | undefined>,
  env: Env,
  each: (b: RollupBatch, i: number) => void,
): Promise<readonly FoldedGroup[]> {
  const name = call.func.name;
  // The "might not be a counter" note depends only on the metric name: with `__name__="…"` in
  // the selector every series has the same one, and one series with output tells it.
  let noteEach = name === "rate" || name === "increase";
  const oneName = v.matchers.some((m) => m.name === "__name__" && m.type === "=");
  let waited = 0;
  let batches = 0;
  let series = 0;
  let total = 0;
  let folded: readonly FoldedGroup[] = [];
  try {
    for (;;) {
      const t0 = performance.now();
      const b = await next();
      waited += performance.now() - t0;
      env.checkAbortNow();
      if (b === undefined) break;
      if (b.folded !== undefined) folded = b.folded;
      batches++;
      series += b.labels.length;
      for (let i = 0; i < b.labels.length; i++) countSeries(env);
      env.checkSamples(b.samples);
      total += b.samples;
      env.selectedSamples += b.samples;
      env.samplesScanned += b.scanned;
      for (let i = 0; i < b.labels.length; i++) {
        if (env.yieldDue()) await env.yieldNow();
        if (b.got[i] === 0) continue;
        each(b, i);
        if (noteEach) {
          noteNotCounter(call, b.labels[i]!, env);
          if (oneName) noteEach = false;
        }
      }
    }
    for (const w of stream.warnings) env.warnings.add(w);
  } finally {
    stream.close();
    env.trace.addDone(`wait for ${name} of ${matchersText(v.matchers)} computed by the querier: ${batches} batches, ${series} series, ${total} samples`, waited);
  }
  return folded;
}

/**
 * A range function over a streamed matrix selector, computed by the querier (SeriesStream.rollup:
 * e.g. on worker threads beside the decoding) and fed to `sink` series by series with the same
 * values, limits, counts and annotations as streamRangeFunction over selectionBatches. False
 * when the stream does not compute this rollup (the caller then evaluates it itself).
 */
export async function streamRollup(call: Call, m: MatrixSelector, ctx: StepCtx, env: Env, sink: SeriesSink): Promise<boolean> {
  const name = call.func.name;
  const v = m.vector;
  const stream = env.streams.get(v);
  if (stream?.rollup === undefined || !SIMPLE_ROLLUPS.has(name) || v.anchored || v.smoothed) return false;
  const n = ctx.times.length;
  const next = stream.rollup(rollupSpecOf(call, m, ctx, env));
  if (next === undefined) return false;
  const dropName = !keepsName(name);
  await readRollup(call, v, stream, next, env, (b, i) => {
    sink(b.labels[i]!, dropName, b.values.subarray(i * n, (i + 1) * n), b.present.subarray(i * n, (i + 1) * n));
  });
  return true;
}

/** What a folding aggregation gives streamRollupFold: its partition, and where folded groups go. */
export interface FoldTarget {
  readonly op: string;
  /** Group per series of the stream (called only when the querier folds). */
  partition(labels: readonly Labels[]): { readonly groupOf: Int32Array; readonly groups: number };
  /** Folded and finished group `group` (of the partition), with the labels of its first series; called in the order of those series. */
  adopt(group: number, labels: Labels, dropName: boolean, values: Float64Array, present: Uint8Array): void;
}

/**
 * A range function under a folding aggregation (`sum by (mode) (rate(x[5m]))`), computed and
 * folded by the querier (SeriesStream.rollupFold): only the groups' accumulators come back,
 * with the same limits, counts and annotations as streamRollup. False when the stream does not
 * fold this one (the caller then streams the rollup itself).
 */
export async function streamRollupFold(call: Call, m: MatrixSelector, ctx: StepCtx, env: Env, target: FoldTarget): Promise<boolean> {
  const name = call.func.name;
  const v = m.vector;
  const stream = env.streams.get(v);
  if (stream?.rollupFold === undefined || !SIMPLE_ROLLUPS.has(name) || v.anchored || v.smoothed) return false;
  const next = stream.rollupFold(rollupSpecOf(call, m, ctx, env), () => ({ op: target.op, ...target.partition(stream.labels) }));
  if (next === undefined) return false;
  const folded = await readRollup(call, v, stream, next, env, () => undefined);
  const dropName = !keepsName(name);
  const labels = stream.labels;
  for (const g of [...folded].sort(byFirst)) target.adopt(g.group, labels[g.first]!, dropName, g.values, g.present);
  return true;
}

function byFirst(a: FoldedGroup, b: FoldedGroup): number {
  return a.first - b.first;
}

/** Instant-vector selector: last sample in (ref - lookback, ref], unless it is a stale marker. */
/** What an instant selector yields per step: the sample value, its timestamp, or its start timestamp (s). */
export type SelectorValue = "value" | "timestamp" | "start";

export async function evalVectorSelector(sel: VectorSelector, ctx: StepCtx, env: Env, want: SelectorValue): Promise<VectorValue> {
  const out: VSeries[] = [];
  await streamVectorSelector(sel, ctx, env, want, false, (labels, dropName, values, present) => {
    out.push({ labels, dropName, values, present });
  });
  return { kind: "vector", series: out };
}

/**
 * Instant-vector selector, series by series. With `reuse` the value and presence arrays are
 * shared between calls (the sink must copy what it keeps).
 */
export async function streamVectorSelector(
  sel: VectorSelector,
  ctx: StepCtx,
  env: Env,
  want: SelectorValue,
  reuse: boolean,
  sink: SeriesSink,
): Promise<void> {
  const n = ctx.times.length;
  const at = atOf(sel.at, sel.atModifier, env);
  const offset = sel.offset;
  const lookback = env.lookback;
  const times = ctx.times;
  let values: Float64Array | undefined;
  let present: Uint8Array | undefined;
  const smoothed = sel.smoothed === true;
  for await (const list of selectionBatches(sel, env)) for (const s of list) {
    if (env.yieldDue()) await env.yieldNow();
    if (!reuse || values === undefined || present === undefined) {
      values = env.columns.values(n);
      present = env.columns.present(n);
    } else {
      present.fill(0);
    }
    if (!lookupSteps(s, times, at, offset, lookback, want, smoothed, values, present)) {
      // Nothing found: keep the arrays for the next series (they are still zero).
      continue;
    }
    sink(s.labels, false, values, present);
    if (!reuse) {
      values = undefined;
      present = undefined;
    }
  }
}

/**
 * The step loop of an instant-vector selector over one series: `values` and `present` (zeroed)
 * get the sample each step looks back to; false when no step found one. A plain function of its
 * own, so V8 optimises it as one small loop whatever the async caller does around it.
 */
function lookupSteps(
  s: LoadedSeries,
  times: Float64Array,
  at: number | undefined,
  offset: number,
  lookback: number,
  want: SelectorValue,
  smoothed: boolean,
  values: Float64Array,
  present: Uint8Array,
): boolean {
  const ts = s.ts;
  const vs = s.vs;
  const len = ts.length;
  const n = times.length;
  let got = false;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const ref = (at === undefined ? times[k]! : at) - offset;
    while (j < len && ts[j]! <= ref) j++;
    const i = j - 1;
    if (i < 0 || ts[i]! <= ref - lookback || isStaleSample(s, i)) continue;
    let v = want === "value" ? vs[i]! : want === "timestamp" ? ts[i]! / 1000 : (s.st?.[i] ?? 0) / 1000;
    // `smoothed`: interpolate linearly towards the next sample (within the lookback delta).
    if (smoothed && want === "value" && ts[i]! < ref && j < len && ts[j]! - ref <= lookback && !isStaleSample(s, j)) {
      v = vs[i]! + ((vs[j]! - vs[i]!) * (ref - ts[i]!)) / (ts[j]! - ts[i]!);
    }
    values[k] = v;
    present[k] = 1;
    got = true;
  }
  return got;
}

/** A range-vector argument (matrix selector or subquery) with per-step windows. */
export async function evalRangeArg(e: Expr, ctx: StepCtx, env: Env, func: string): Promise<RangeArg> {
  const a = unwrap(e);
  const n = ctx.times.length;
  const ends = new Float64Array(n);
  if (a.kind === "MatrixSelector") return matrixArg(a, env.selections.get(a.vector) ?? [], ctx, env, func);
  if (a.kind === "SubqueryExpr") {
    const at = atOf(a.at, a.atModifier, env);
    for (let k = 0; k < n; k++) ends[k] = (at ?? ctx.times[k]!) - a.offset;
    return { series: await evalSubquerySeries(a, ctx, env), ends, range: a.range, extended: "" };
  }
  throw evalError(`expected range vector, got ${typeOfExpr(a)}`);
}

/** A matrix selector's range argument over `list` (its selection, or one streamed batch of it). */
export function matrixArg(a: MatrixSelector, list: readonly LoadedSeries[], ctx: StepCtx, env: Env, func: string): RangeArg {
  const n = ctx.times.length;
  const ends = new Float64Array(n);
  const v = a.vector;
  const at = atOf(v.at, v.atModifier, env);
  for (let k = 0; k < n; k++) ends[k] = (at ?? ctx.times[k]!) - v.offset;
  const series: MSeries[] = [];
  for (const s of list) {
    const c = cleanOf(s);
    series.push({ labels: s.labels, dropName: false, ts: c.ts, vs: c.vs, st: c.st });
  }
  checkModifiers(a, func);
  return { series, ends, range: a.range, extended: v.anchored ? "anchored" : v.smoothed ? "smoothed" : "" };
}

export function checkModifiers(m: MatrixSelector, func: string): void {
  if (m.vector.smoothed && func !== "rate" && func !== "increase" && func !== "delta") {
    throw evalError(`smoothed modifier can only be used with: delta, increase, rate - not with ${func}`);
  }
  if (m.vector.anchored && !["changes", "delta", "increase", "rate", "resets"].includes(func)) {
    throw evalError(`anchored modifier can only be used with: changes, delta, increase, rate, resets - not with ${func}`);
  }
}

/** Evaluates a subquery's inner expression at its aligned steps; one raw series per result. */
async function evalSubquerySeries(e: SubqueryExpr, ctx: StepCtx, env: Env): Promise<MSeries[]> {
  const t = subqueryTimes(e, ctx.times[0]!, ctx.times[ctx.times.length - 1]!, env);
  const m = t.end >= t.start ? Math.floor((t.end - t.start) / t.interval) + 1 : 0;
  env.memory.charge(m * 8);
  const times = new Float64Array(m);
  for (let i = 0; i < m; i++) times[i] = t.start + i * t.interval;
  if (m === 0) return [];
  const inner: StepCtx = { times, start: t.start, end: times[m - 1]!, interval: t.interval };
  const v = await evalExpr(e.expr, inner, env);
  const series: MSeries[] = [];
  if (v.kind === "scalar") {
    series.push({ labels: [], dropName: false, ts: times, vs: v.values });
    return series;
  }
  if (v.kind !== "vector") throw evalError("subquery is only allowed on instant vector");
  for (const s of v.series) {
    if (env.yieldDue()) await env.yieldNow();
    const c = compact(s.labels, times, s.values, s.present);
    env.memory.charge(c.timestamps.length * SAMPLE_BYTES + SERIES_BYTES);
    series.push({ labels: s.labels, dropName: s.dropName, ts: c.timestamps, vs: c.values });
  }
  return series;
}

/** An instant query whose expression is a range vector: the samples of each window. */
export async function evalMatrixResult(e: Expr, ctx: StepCtx, env: Env): Promise<MatrixSeries[]> {
  const arg = await evalRangeArg(e, ctx, env, "");
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
