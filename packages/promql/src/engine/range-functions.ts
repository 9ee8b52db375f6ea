import type { Call } from "../ast.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { quantile } from "./mathutil.js";
import { formatPromValue } from "./result.js";
import { evalExtended } from "./range-extended.js";
import type { Labels } from "@strata/core";
import type { RangeArg, StepCtx, VectorValue, VSeries } from "./types.js";
import { kahanInc } from "./types.js";

/**
 * A range function over one series' window of samples `[lo, hi)` (stale markers removed) that
 * covers (wStart, wEnd]. Returns undefined when the step has no output. `k` is the step index.
 * `prepare` is called once per series before its steps, to precompute per-series state.
 */
interface RangeImpl {
  minSamples: number;
  prepare?(ts: Float64Array, vs: Float64Array, st: Float64Array | undefined): void;
  at(ts: Float64Array, vs: Float64Array, lo: number, hi: number, wStart: number, wEnd: number, k: number): number | undefined;
}

const kbuf = new Float64Array(2);

/**
 * What the sliding kernels need of the evaluation: a count of the samples they scanned and a
 * clock that says when to pause. Env provides both; a querier computing rollups off the event
 * loop (querier.ts SeriesStream.rollup) passes a meter that never pauses.
 */
export interface RollupMeter {
  samplesScanned: number;
  sliceUsedUp(): boolean;
}

/** Reusable scratch buffer for window copies (quantiles, medians). */
let scratch = new Float64Array(1024);
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(Math.max(n, scratch.length * 2));
  return scratch;
}

function counterSuffixOk(name: string): boolean {
  return name.endsWith("_total") || name.endsWith("_sum") || name.endsWith("_count") || name.endsWith("_bucket");
}

function makeInstant(isRate: boolean): RangeImpl {
  let sts: Float64Array | undefined;
  return {
    minSamples: 2,
    prepare(_ts, _vs, st) {
      sts = st;
    },
    at(ts, vs, _lo, hi) {
      const l = vs[hi - 1]!;
      const p = vs[hi - 2]!;
      const reset = l < p || (sts !== undefined && isStartTimestampReset(sts[hi - 2]!, ts[hi - 2]!, sts[hi - 1]!, ts[hi - 1]!));
      const result = isRate && reset ? l : l - p;
      const interval = ts[hi - 1]! - ts[hi - 2]!;
      if (interval === 0) return undefined;
      return isRate ? result / (interval / 1000) : result;
    },
  };
}

/** Prometheus' linearRegression (Kahan sums), returning slope and intercept via `lr`. */
const lr = new Float64Array(2);
function linearRegression(ts: Float64Array, vs: Float64Array, lo: number, hi: number, interceptTime: number): void {
  let n = 0;
  let sumX = 0;
  let cX = 0;
  let sumY = 0;
  let cY = 0;
  let sumXY = 0;
  let cXY = 0;
  let sumX2 = 0;
  let cX2 = 0;
  const initY = vs[lo]!;
  let constY = true;
  for (let i = lo; i < hi; i++) {
    const f = vs[i]!;
    if (constY && i > lo && f !== initY) constY = false;
    n += 1;
    const x = (ts[i]! - interceptTime) / 1e3;
    kahanInc(x, sumX, cX, kbuf);
    sumX = kbuf[0]!;
    cX = kbuf[1]!;
    kahanInc(f, sumY, cY, kbuf);
    sumY = kbuf[0]!;
    cY = kbuf[1]!;
    kahanInc(x * f, sumXY, cXY, kbuf);
    sumXY = kbuf[0]!;
    cXY = kbuf[1]!;
    kahanInc(x * x, sumX2, cX2, kbuf);
    sumX2 = kbuf[0]!;
    cX2 = kbuf[1]!;
  }
  if (constY) {
    if (initY === Infinity || initY === -Infinity) {
      lr[0] = NaN;
      lr[1] = NaN;
    } else {
      lr[0] = 0;
      lr[1] = initY;
    }
    return;
  }
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  const slope = covXY / varX;
  lr[0] = slope;
  lr[1] = sumY / n - (slope * sumX) / n;
}

// Kahan-Neumaier steps are written out inline below (no helper call, no out-parameter stores):
// these loops run once per sample per window.

function sumOverTime(vs: Float64Array, lo: number, hi: number): number {
  let sum = 0;
  let c = 0;
  for (let i = lo; i < hi; i++) {
    const f = vs[i]!;
    const t = sum + f;
    if (t === Infinity || t === -Infinity) c = 0;
    else if (Math.abs(sum) >= Math.abs(f)) c += sum - t + f;
    else c += f - t + sum;
    sum = t;
  }
  if (sum === Infinity || sum === -Infinity) return sum;
  return sum + c;
}

function avgOverTime(vs: Float64Array, lo: number, hi: number): number {
  let sum = vs[lo]!;
  let count = 1;
  let mean = 0;
  let c = 0;
  let incremental = false;
  for (let i = lo + 1; i < hi; i++) {
    const f = vs[i]!;
    count = i - lo + 1;
    if (!incremental) {
      const t = sum + f;
      if (t !== Infinity && t !== -Infinity) {
        if (Math.abs(sum) >= Math.abs(f)) c += sum - t + f;
        else c += f - t + sum;
        sum = t;
        continue;
      }
      incremental = true;
      mean = sum / (count - 1);
      c /= count - 1;
    }
    const q = (count - 1) / count;
    const inc = f / count;
    const m = q * mean;
    let cc = q * c;
    const t = m + inc;
    if (t === Infinity || t === -Infinity) cc = 0;
    else if (Math.abs(m) >= Math.abs(inc)) cc += m - t + inc;
    else cc += inc - t + m;
    mean = t;
    c = cc;
  }
  if (incremental) return mean + c;
  return sum / count + c / count;
}

function varianceOverTime(vs: Float64Array, lo: number, hi: number): number {
  let count = 0;
  let mean = 0;
  let cMean = 0;
  let aux = 0;
  let cAux = 0;
  for (let i = lo; i < hi; i++) {
    const f = vs[i]!;
    count++;
    const delta = f - (mean + cMean);
    kahanInc(delta / count, mean, cMean, kbuf);
    mean = kbuf[0]!;
    cMean = kbuf[1]!;
    kahanInc(delta * (f - (mean + cMean)), aux, cAux, kbuf);
    aux = kbuf[0]!;
    cAux = kbuf[1]!;
  }
  return (aux + cAux) / count;
}

function windowQuantile(q: number, vs: Float64Array, lo: number, hi: number): number {
  const n = hi - lo;
  const buf = scratchOf(n);
  buf.set(vs.subarray(lo, hi));
  return quantile(q, buf.subarray(0, n));
}

function madOverTime(vs: Float64Array, lo: number, hi: number): number {
  const n = hi - lo;
  for (let i = lo; i < hi; i++) if (Number.isNaN(vs[i]!)) return NaN;
  const buf = scratchOf(n);
  buf.set(vs.subarray(lo, hi));
  const w = buf.subarray(0, n);
  const median = quantile(0.5, w);
  for (let i = 0; i < n; i++) w[i] = Math.abs(vs[lo + i]! - median);
  return quantile(0.5, w);
}

function calcTrendValue(i: number, tf: number, s0: number, s1: number, b: number): number {
  if (i === 0) return b;
  return tf * (s1 - s0) + (1 - tf) * b;
}

/** Functions whose result keeps the metric name. */
const KEEPS_NAME = new Set(["last_over_time", "first_over_time"]);

export const RANGE_FUNCTIONS = new Set([
  "rate",
  "increase",
  "delta",
  "irate",
  "idelta",
  "deriv",
  "predict_linear",
  "resets",
  "changes",
  "avg_over_time",
  "sum_over_time",
  "count_over_time",
  "min_over_time",
  "max_over_time",
  "last_over_time",
  "first_over_time",
  "present_over_time",
  "stddev_over_time",
  "stdvar_over_time",
  "quantile_over_time",
  "mad_over_time",
  "ts_of_last_over_time",
  "ts_of_first_over_time",
  "ts_of_max_over_time",
  "ts_of_min_over_time",
  "double_exponential_smoothing",
  "absent_over_time",
]);

/**
 * Evaluates a range function for every step and series at once: two pointers slide over each
 * series' samples as the window moves, so the whole range costs O(samples + steps) per series
 * plus the function's own per-window work.
 */
/** Receives one output series; the arrays may be reused after the call returns. */
export type SeriesSink = (labels: Labels, dropName: boolean, values: Float64Array, present: Uint8Array) => void;

export async function evalRangeFunction(
  call: Call,
  arg: RangeArg,
  scalars: readonly Float64Array[],
  ctx: StepCtx,
  env: Env,
): Promise<VectorValue> {
  const out: VSeries[] = [];
  await streamRangeFunction(call, arg, scalars, ctx, env, (labels, dropName, values, present) => {
    out.push({ labels, dropName, values, present });
  }, false);
  return { kind: "vector", series: out };
}

/**
 * Evaluates a range function and hands each output series to `sink`. With `reuse` the value
 * and presence arrays are shared between calls (the sink must copy what it keeps), so an
 * aggregation over a range function allocates nothing per series.
 */
export async function streamRangeFunction(
  call: Call,
  arg: RangeArg,
  scalars: readonly Float64Array[],
  ctx: StepCtx,
  env: Env,
  sink: SeriesSink,
  reuse: boolean,
): Promise<void> {
  const name = call.func.name;
  const n = ctx.times.length;
  if (arg.extended !== "") {
    for (const s of evalExtended(call, arg, ctx, env).series) sink(s.labels, s.dropName, s.values, s.present);
    return;
  }
  const ends = arg.ends;
  const range = arg.range;
  const isRateInfo = name === "rate" || name === "increase";
  const isCounter = name !== "delta";
  const fastRate = name === "rate" || name === "increase" || name === "delta";
  // rate/increase/delta have their own kernel (slideRate); the rest share `slide`.
  const impl = fastRate ? undefined : makeImpl(name, scalars, ctx, env, call);
  const isRate = name === "rate";
  const keepName = KEEPS_NAME.has(name);
  let sharedValues: Float64Array | undefined;
  let sharedPresent: Uint8Array | undefined;
  for (const s of arg.series) {
    if (env.yieldDue()) await env.yieldNow();
    const ts = s.ts;
    const vs = s.vs;
    const len = ts.length;
    if (len === 0) continue;
    let values: Float64Array;
    let present: Uint8Array;
    if (reuse) {
      sharedValues ??= new Float64Array(n);
      sharedPresent ??= new Uint8Array(n);
      values = sharedValues;
      present = sharedPresent;
      present.fill(0);
    } else {
      values = new Float64Array(n);
      present = new Uint8Array(n);
    }
    const st = isCounter ? s.st : undefined;
    stOverlap = false;
    const got = fastRate
      ? st !== undefined
        ? slideRateST(ts, vs, st, ends, range, n, isRate, values, present, env)
        : slideRate(ts, vs, ends, range, n, isCounter, isRate, values, present, env)
      : await slideYielding(impl!, ts, vs, s.st, ends, range, n, values, present, env);
    if (stOverlap) {
      env.warn(`sample has start time that overlaps with previous sample timestamp for metric ${JSON.stringify(nameOf(s.labels))}`, call.args[0]!.pos);
    }
    if (got === 0) continue;
    sink(s.labels, s.dropName || !keepName, values, present);
    if (isRateInfo) noteNotCounter(call, s.labels, env);
  }
}

/** Whether a range function's output keeps the metric name. */
export function keepsName(name: string): boolean {
  return KEEPS_NAME.has(name);
}

/** rate/increase over a metric whose name does not say counter: Prometheus' info annotation. */
export function noteNotCounter(call: Call, labels: Labels, env: Env): void {
  const metric = nameOf(labels);
  // A wide selection repeats one name: a name that passed needs no second look.
  if (metric === lastCounterName) return;
  if (metric !== "" && !counterSuffixOk(metric)) {
    env.info(`metric might not be a counter, name does not end in _total/_sum/_count/_bucket: ${JSON.stringify(metric)}`, call.args[0]!.pos);
  } else {
    lastCounterName = metric;
  }
}

/** The last metric name noteNotCounter found needing no annotation. */
let lastCounterName = "";

/** One series' generic sliding window, and the step where it stopped to let the event loop run. */
interface SlideState {
  readonly impl: RangeImpl;
  readonly ts: Float64Array;
  readonly vs: Float64Array;
  readonly ends: Float64Array;
  readonly range: number;
  readonly n: number;
  readonly values: Float64Array;
  readonly present: Uint8Array;
  k: number;
  lo: number;
  hi: number;
  got: number;
}

/**
 * The generic sliding window over all steps of one series; returns the number of steps with
 * output. A window function can be costly (quantile_over_time sorts every window), and one long
 * series over many steps would hold the event loop for seconds: the slide pauses every
 * YIELD_MS and resumes at the same step.
 */
async function slideYielding(
  impl: RangeImpl,
  ts: Float64Array,
  vs: Float64Array,
  st: Float64Array | undefined,
  ends: Float64Array,
  range: number,
  n: number,
  values: Float64Array,
  present: Uint8Array,
  env: Env,
): Promise<number> {
  impl.prepare?.(ts, vs, st);
  const state: SlideState = { impl, ts, vs, ends, range, n, values, present, k: 0, lo: 0, hi: 0, got: 0 };
  while (!slide(state, env)) await env.yieldNow();
  return state.got;
}

/** Slides from `state.k`; false when it paused (state saved) because evaluation is due to yield. */
function slide(state: SlideState, env: RollupMeter): boolean {
  const { impl, ts, vs, ends, range, n, values, present } = state;
  const len = ts.length;
  let { lo, hi, got } = state;
  let scanned = 0;
  let k = state.k;
  for (; k < n; k++) {
    if ((k & 255) === 255 && env.sliceUsedUp()) break;
    const wEnd = ends[k]!;
    const wStart = wEnd - range;
    if (k > 0 && wEnd < ends[k - 1]!) {
      lo = 0;
      hi = 0;
    }
    while (hi < len && ts[hi]! <= wEnd) hi++;
    while (lo < len && ts[lo]! <= wStart) lo++;
    const cnt = hi - lo;
    if (cnt < impl.minSamples || cnt <= 0) continue;
    scanned += cnt;
    const r = impl.at(ts, vs, lo, hi, wStart, wEnd, k);
    if (r === undefined) continue;
    values[k] = r;
    present[k] = 1;
    got++;
  }
  env.samplesScanned += scanned;
  state.k = k;
  state.lo = lo;
  state.hi = hi;
  state.got = got;
  return k >= n;
}

/**
 * rate/increase/delta over all steps of one series: Prometheus' extrapolatedRate per window.
 *
 * Series scraped together have the same timestamps (every series of one target, and a wide
 * selection in label order holds a target's series one after another), and everything in the
 * extrapolation but the window's first and last values is a function of the timestamps and the
 * steps: which samples each window holds, the durations to its edges and the factor. When a
 * series comes with the timestamps (and steps) of the one before, those are read from
 * `rateGeometry` instead of walked and divided again; the values are then the same arithmetic
 * on the same operands (a counter's reset corrections included, summed only in the windows that
 * hold a reset, as the walk does). Timestamps not seen just before take the walk (slideRateWalk).
 */
function slideRate(
  ts: Float64Array,
  vs: Float64Array,
  ends: Float64Array,
  range: number,
  n: number,
  isCounter: boolean,
  isRate: boolean,
  values: Float64Array,
  present: Uint8Array,
  env: RollupMeter,
): number {
  const g = rateGeometry;
  if (!g.seen(ts, vs, ends, range, n)) {
    g.remember(ts, ends, range, n);
    return slideRateWalk(ts, vs, ends, range, n, isCounter, isRate, values, present, env);
  }
  g.build(isRate);
  g.reads++;
  const { lo, last, toStart, toEnd, sampled, factor, zeroCheck } = g;
  // A counter with resets: `seen` listed them (the samples below the one before), so a window
  // adds the value before each reset it holds, in slideRateWalk's order, without walking its
  // samples again.
  const withResets = isCounter && g.resetCount > 0;
  const rangeSec = range / 1000;
  for (let k = 0; k < n; k++) {
    const l = last[k]!;
    if (l < 0) continue;
    const first = lo[k]!;
    const firstV = vs[first]!;
    let result = vs[l]! - firstV;
    if (withResets) result = g.addResets(vs, first, l, result);
    let f = factor[k]!;
    // slideRateWalk's extrapolation towards zero, which the values decide (zeroCheck: the
    // duration to the window's start is longer than the sampled interval).
    if (isCounter && result > 0 && firstV >= 0 && (firstV < result || zeroCheck[k] === 1)) {
      const sampledInterval = sampled[k]!;
      const durationToZero = sampledInterval * (firstV / result);
      if (durationToZero < toStart[k]!) {
        f = (sampledInterval + durationToZero + toEnd[k]!) / sampledInterval;
        if (isRate) f /= rangeSec;
      }
    }
    values[k] = result * f;
    present[k] = 1;
  }
  env.samplesScanned += g.scanned;
  return g.got;
}

/** Same number, sign of zero included (a NaN never is). */
function sameNumber(a: number, b: number): boolean {
  return a === b && (a !== 0 || 1 / a === 1 / b);
}

/**
 * The windows of slideRate over the last timestamps it was given: remembered on the first
 * series with them, built (walked once) on the second, read by every further one.
 */
class RateGeometry {
  private ts = new Float64Array(0);
  private len = -1;
  private ends = new Float64Array(0);
  private n = -1;
  private range = NaN;
  /** Built for these timestamps, and for rate (factor divided by the range) or not. */
  private built = false;
  private builtRate = false;
  /** Per step: first and last sample of the window (last -1: fewer than two samples, no output). */
  lo = new Int32Array(0);
  last = new Int32Array(0);
  /** Per step: the durations to the window's edges after the threshold rule, the sampled interval, the factor. */
  toStart = new Float64Array(0);
  toEnd = new Float64Array(0);
  sampled = new Float64Array(0);
  factor = new Float64Array(0);
  /** Per step: 1 where the duration to the window's start is longer than the sampled interval. */
  zeroCheck = new Uint8Array(0);
  /** Samples in the windows with output, and steps with output. */
  scanned = 0;
  got = 0;
  /** Series whose windows were read from here (tests). */
  reads = 0;

  /**
   * The resets of the `vs` last given to `seen`, in order (the first `resetCount`): the indexes
   * of the values below the one before them, as slideRateWalk finds them.
   */
  private resets = new Int32Array(16);
  resetCount = 0;
  /** addResets' place in `resets`, and the window's first sample it was found for. */
  private resetFrom = 0;
  private resetFirst = 0;
  /** Reset corrections added from `resets` since the last takeRateGeometryReads (tests). */
  resetTerms = 0;

  /**
   * seen's walk from its first reset (`first`) on: lists the resets of vs into `resets` and
   * returns how many, or -1 when ts leaves the remembered timestamps.
   */
  private listResets(ts: Float64Array, vs: Float64Array, first: number): number {
    let resets = this.resets;
    let count = 0;
    const len = this.len;
    const a = this.ts;
    for (let i = first; i < len; i++) {
      const t = ts[i]!;
      if (t !== a[i]! || (t === 0 && 1 / t !== 1 / a[i]!)) return -1;
      if (!(vs[i]! < vs[i - 1]!)) continue;
      if (count === resets.length) {
        const grown = new Int32Array(2 * resets.length);
        grown.set(resets);
        this.resets = resets = grown;
      }
      resets[count++] = i;
    }
    return count;
  }

  /**
   * `result` plus the value before each reset in (first, last], in order, as slideRateWalk adds
   * them. Windows come in order of `first` (a subquery's steps that go back start over), so
   * the search goes on from the previous window's place in `resets`.
   */
  addResets(vs: Float64Array, first: number, last: number, result: number): number {
    const resets = this.resets;
    const count = this.resetCount;
    let r = first < this.resetFirst ? 0 : this.resetFrom;
    while (r < count && resets[r]! <= first) r++;
    this.resetFrom = r;
    this.resetFirst = first;
    for (let j = r; j < count; j++) {
      const i = resets[j]!;
      if (i > last) break;
      result += vs[i - 1]!;
      this.resetTerms++;
    }
    return result;
  }

  /**
   * Whether `ts`, `ends` (its first n) and `range` are the remembered ones, the same numbers to
   * the sign of a zero (a NaN never is); if so, `resets` lists the resets of `vs`.
   */
  seen(ts: Float64Array, vs: Float64Array, ends: Float64Array, range: number, n: number): boolean {
    const len = ts.length;
    if (len !== this.len || n !== this.n || !sameNumber(range, this.range)) return false;
    const a = this.ts;
    let prev = len > 0 ? vs[0]! : 0;
    let i = 0;
    // Up to the first reset (most series have none), then listing the resets on.
    for (; i < len; i++) {
      const t = ts[i]!;
      if (t !== a[i]! || (t === 0 && 1 / t !== 1 / a[i]!)) return false;
      const v = vs[i]!;
      if (v < prev) break;
      prev = v;
    }
    const count = i < len ? this.listResets(ts, vs, i) : 0;
    if (count < 0) return false;
    const e = this.ends;
    for (let k = 0; k < n; k++) if (!sameNumber(ends[k]!, e[k]!)) return false;
    this.resetCount = count;
    this.resetFrom = 0;
    this.resetFirst = 0;
    return true;
  }

  remember(ts: Float64Array, ends: Float64Array, range: number, n: number): void {
    if (this.ts.length < ts.length) this.ts = new Float64Array(Math.max(ts.length, 2 * this.ts.length));
    this.ts.set(ts);
    this.len = ts.length;
    if (this.ends.length < n) {
      this.ends = new Float64Array(Math.max(n, 2 * this.ends.length));
      this.lo = new Int32Array(this.ends.length);
      this.last = new Int32Array(this.ends.length);
      this.toStart = new Float64Array(this.ends.length);
      this.toEnd = new Float64Array(this.ends.length);
      this.sampled = new Float64Array(this.ends.length);
      this.factor = new Float64Array(this.ends.length);
      this.zeroCheck = new Uint8Array(this.ends.length);
    }
    this.ends.set(ends.subarray(0, n));
    this.n = n;
    this.range = range;
    this.built = false;
  }

  /** Walks the remembered timestamps as slideRateWalk does, keeping what each window's extrapolation needs of them. */
  build(isRate: boolean): void {
    if (this.built && this.builtRate === isRate) return;
    const { ts, ends, range, n, lo: loOf, last: lastOf, toStart, toEnd, sampled, factor, zeroCheck } = this;
    const len = this.len;
    const rangeSec = range / 1000;
    let lo = 0;
    let hi = 0;
    let scanned = 0;
    let got = 0;
    for (let k = 0; k < n; k++) {
      const rangeEnd = ends[k]!;
      const rangeStart = rangeEnd - range;
      if (k > 0 && rangeEnd < ends[k - 1]!) {
        lo = 0;
        hi = 0;
      }
      while (hi < len && ts[hi]! <= rangeEnd) hi++;
      while (lo < len && ts[lo]! <= rangeStart) lo++;
      const last = hi - 1;
      if (last - lo < 1) {
        lastOf[k] = -1;
        continue;
      }
      scanned += hi - lo;
      got++;
      const firstT = ts[lo]!;
      const lastT = ts[last]!;
      let durationToStart = (firstT - rangeStart) / 1000;
      let durationToEnd = (rangeEnd - lastT) / 1000;
      const sampledInterval = (lastT - firstT) / 1000;
      const avgBetween = sampledInterval / (last - lo);
      const threshold = avgBetween * 1.1;
      if (durationToStart >= threshold) durationToStart = avgBetween / 2;
      if (durationToEnd >= threshold) durationToEnd = avgBetween / 2;
      let f = (sampledInterval + durationToStart + durationToEnd) / sampledInterval;
      if (isRate) f /= rangeSec;
      loOf[k] = lo;
      lastOf[k] = last;
      toStart[k] = durationToStart;
      toEnd[k] = durationToEnd;
      sampled[k] = sampledInterval;
      factor[k] = f;
      zeroCheck[k] = durationToStart > sampledInterval ? 1 : 0;
    }
    this.scanned = scanned;
    this.got = got;
    this.built = true;
    this.builtRate = isRate;
  }
}

let rateGeometry = new RateGeometry();

/** Tests: reset corrections added from the listed resets since takeRateGeometryReads last forgot the windows. */
export function rateGeometryResetTerms(): number {
  return rateGeometry.resetTerms;
}

/** Tests: series rate/increase/delta computed from remembered windows since the last call, which forgets them. */
export function takeRateGeometryReads(): number {
  const r = rateGeometry.reads;
  rateGeometry = new RateGeometry();
  return r;
}

/**
 * slideRate by walking the windows: the counter-reset correction is computed only for windows
 * that contain a reset (found by tracking the last reset index as the window's end advances).
 */
function slideRateWalk(
  ts: Float64Array,
  vs: Float64Array,
  ends: Float64Array,
  range: number,
  n: number,
  isCounter: boolean,
  isRate: boolean,
  values: Float64Array,
  present: Uint8Array,
  env: RollupMeter,
): number {
  const len = ts.length;
  const rangeSec = range / 1000;
  let got = 0;
  let lo = 0;
  let hi = 0;
  let lastReset = -1;
  let scanned = 0;
  for (let k = 0; k < n; k++) {
    const rangeEnd = ends[k]!;
    const rangeStart = rangeEnd - range;
    if (k > 0 && rangeEnd < ends[k - 1]!) {
      lo = 0;
      hi = 0;
      lastReset = -1;
    }
    while (hi < len && ts[hi]! <= rangeEnd) {
      if (hi > 0 && vs[hi]! < vs[hi - 1]!) lastReset = hi;
      hi++;
    }
    while (lo < len && ts[lo]! <= rangeStart) lo++;
    const last = hi - 1;
    if (last - lo < 1) continue;
    scanned += hi - lo;
    const firstT = ts[lo]!;
    const lastT = ts[last]!;
    const firstV = vs[lo]!;
    let result = vs[last]! - firstV;
    if (isCounter && lastReset > lo) {
      let prev = firstV;
      for (let i = lo + 1; i <= last; i++) {
        const cur = vs[i]!;
        if (cur < prev) result += prev;
        prev = cur;
      }
    }
    let durationToStart = (firstT - rangeStart) / 1000;
    let durationToEnd = (rangeEnd - lastT) / 1000;
    const sampledInterval = (lastT - firstT) / 1000;
    const avgBetween = sampledInterval / (last - lo);
    const threshold = avgBetween * 1.1;
    if (durationToStart >= threshold) durationToStart = avgBetween / 2;
    // A division per step less where it cannot matter: with firstV >= result > 0 the quotient is
    // >= 1 and the product >= sampledInterval (rounding is monotonic), so durationToZero cannot
    // undercut a durationToStart <= sampledInterval (a counter far from zero: nearly always).
    if (isCounter && result > 0 && firstV >= 0 && (firstV < result || durationToStart > sampledInterval)) {
      const durationToZero = sampledInterval * (firstV / result);
      if (durationToZero < durationToStart) durationToStart = durationToZero;
    }
    if (durationToEnd >= threshold) durationToEnd = avgBetween / 2;
    let factor = (sampledInterval + durationToStart + durationToEnd) / sampledInterval;
    if (isRate) factor /= rangeSec;
    values[k] = result * factor;
    present[k] = 1;
    got++;
  }
  env.samplesScanned += scanned;
  return got;
}

function nameOf(labels: readonly { name: string; value: string }[]): string {
  for (const l of labels) if (l.name === "__name__") return l.value;
  return "";
}

function makeImpl(name: string, scalars: readonly Float64Array[], ctx: StepCtx, env: Env, call: Call): RangeImpl {
  const simple = simpleImpl(name);
  if (simple !== undefined) return simple;
  switch (name) {
    case "predict_linear": {
      const dur = scalars[0]!;
      return {
        minSamples: 2,
        at(ts, vs, lo, hi, _s, _e, k) {
          linearRegression(ts, vs, lo, hi, ctx.times[k]!);
          return lr[0]! * dur[k]! + lr[1]!;
        },
      };
    }
    case "quantile_over_time": {
      const qs = scalars[0]!;
      let warned = false;
      return {
        minSamples: 1,
        at(_ts, vs, lo, hi, _s, _e, k) {
          const q = qs[k]!;
          if (!warned && (Number.isNaN(q) || q < 0 || q > 1)) {
            warned = true;
            env.warn(`quantile value should be between 0 and 1, got ${formatG(q)}`, call.args[0]!.pos);
          }
          return windowQuantile(q, vs, lo, hi);
        },
      };
    }
    case "double_exponential_smoothing": {
      const sfs = scalars[0]!;
      const tfs = scalars[1]!;
      return {
        minSamples: 1,
        at(_ts, vs, lo, hi, _s, _e, k) {
          const sf = sfs[k]!;
          const tf = tfs[k]!;
          if (!(sf > 0 && sf < 1)) throw evalError(`invalid smoothing factor. Expected: 0 < sf < 1, got: ${sf.toFixed(6)}`);
          if (!(tf > 0 && tf < 1)) throw evalError(`invalid trend factor. Expected: 0 < tf < 1, got: ${tf.toFixed(6)}`);
          const l = hi - lo;
          if (l < 2) return undefined;
          let s0 = 0;
          let s1 = vs[lo]!;
          let b = vs[lo + 1]! - vs[lo]!;
          for (let i = 1; i < l; i++) {
            const x = sf * vs[lo + i]!;
            b = calcTrendValue(i - 1, tf, s0, s1, b);
            const y = (1 - sf) * (s1 + b);
            s0 = s1;
            s1 = x + y;
          }
          return s1;
        },
      };
    }
    default:
      throw evalError(`function ${JSON.stringify(name)} is not a range function`);
  }
}

/**
 * Range functions whose kernel needs nothing but the samples and the windows: all but those
 * that take scalars or warn (and absent_over_time, evaluated on its own).
 */
export const SIMPLE_ROLLUPS: ReadonlySet<string> = new Set(
  [...RANGE_FUNCTIONS].filter((f) => !["predict_linear", "quantile_over_time", "double_exponential_smoothing", "absent_over_time"].includes(f)),
);

function simpleImpl(name: string): RangeImpl | undefined {
  switch (name) {
    case "irate":
      return makeInstant(true);
    case "idelta":
      return makeInstant(false);
    case "deriv":
      return {
        minSamples: 2,
        at(ts, vs, lo, hi) {
          linearRegression(ts, vs, lo, hi, ts[lo]!);
          return lr[0]!;
        },
      };
    case "resets": {
      let sts: Float64Array | undefined;
      return {
        minSamples: 1,
        prepare(_ts, _vs, st) {
          sts = st;
        },
        at(ts, vs, lo, hi) {
          let r = 0;
          for (let i = lo + 1; i < hi; i++) {
            if (vs[i]! < vs[i - 1]! || (sts !== undefined && isStartTimestampReset(sts[i - 1]!, ts[i - 1]!, sts[i]!, ts[i]!))) r++;
          }
          return r;
        },
      };
    }
    case "changes":
      return {
        minSamples: 1,
        at(_ts, vs, lo, hi) {
          let r = 0;
          for (let i = lo + 1; i < hi; i++) {
            const c = vs[i]!;
            const p = vs[i - 1]!;
            if (c !== p && !(Number.isNaN(c) && Number.isNaN(p))) r++;
          }
          return r;
        },
      };
    case "avg_over_time":
      return { minSamples: 1, at: (_ts, vs, lo, hi) => avgOverTime(vs, lo, hi) };
    case "sum_over_time":
      return { minSamples: 1, at: (_ts, vs, lo, hi) => sumOverTime(vs, lo, hi) };
    case "count_over_time":
      return { minSamples: 1, at: (_ts, _vs, lo, hi) => hi - lo };
    case "present_over_time":
      return { minSamples: 1, at: () => 1 };
    case "absent_over_time":
      return { minSamples: 1, at: () => 1 };
    case "last_over_time":
      return { minSamples: 1, at: (_ts, vs, _lo, hi) => vs[hi - 1]! };
    case "first_over_time":
      return { minSamples: 1, at: (_ts, vs, lo) => vs[lo]! };
    case "ts_of_last_over_time":
      return { minSamples: 1, at: (ts, _vs, _lo, hi) => ts[hi - 1]! / 1000 };
    case "ts_of_first_over_time":
      return { minSamples: 1, at: (ts, _vs, lo) => ts[lo]! / 1000 };
    case "max_over_time":
    case "ts_of_max_over_time": {
      const wantTs = name === "ts_of_max_over_time";
      return {
        minSamples: 1,
        at(ts, vs, lo, hi) {
          let m = vs[lo]!;
          let t = ts[lo]!;
          for (let i = lo + 1; i < hi; i++) {
            const f = vs[i]!;
            if (f > m || Number.isNaN(m)) {
              m = f;
              t = ts[i]!;
            } else if (wantTs && f === m) t = ts[i]!;
          }
          return wantTs ? t / 1000 : m;
        },
      };
    }
    case "min_over_time":
    case "ts_of_min_over_time": {
      const wantTs = name === "ts_of_min_over_time";
      return {
        minSamples: 1,
        at(ts, vs, lo, hi) {
          let m = vs[lo]!;
          let t = ts[lo]!;
          for (let i = lo + 1; i < hi; i++) {
            const f = vs[i]!;
            if (f < m || Number.isNaN(m)) {
              m = f;
              t = ts[i]!;
            } else if (wantTs && f === m) t = ts[i]!;
          }
          return wantTs ? t / 1000 : m;
        },
      };
    }
    case "stddev_over_time":
      return { minSamples: 1, at: (_ts, vs, lo, hi) => Math.sqrt(varianceOverTime(vs, lo, hi)) };
    case "stdvar_over_time":
      return { minSamples: 1, at: (_ts, vs, lo, hi) => varianceOverTime(vs, lo, hi) };
    case "mad_over_time":
      return { minSamples: 1, at: (_ts, vs, lo, hi) => madOverTime(vs, lo, hi) };
    default:
      return undefined;
  }
}

/**
 * One series' rollup for every window ending at `ends[k]` (a SIMPLE_ROLLUPS function, samples
 * without stale markers and start timestamps): the same kernels as the engine's own evaluation
 * (streamRangeFunction), so a querier that computes rollups elsewhere (on a worker thread) gets
 * bit-identical values. Writes values[k]/present[k] (present must be zero on entry) for the steps
 * with output and returns their number; adds the samples scanned to `meter`.
 */
export function rollupSeries(
  name: string,
  ts: Float64Array,
  vs: Float64Array,
  ends: Float64Array,
  range: number,
  values: Float64Array,
  present: Uint8Array,
  meter: RollupMeter,
): number {
  const n = ends.length;
  if (ts.length === 0) return 0;
  if (name === "rate" || name === "increase" || name === "delta") {
    return slideRate(ts, vs, ends, range, n, name !== "delta", name === "rate", values, present, meter);
  }
  const impl = simpleImpl(name);
  if (impl === undefined) throw evalError(`function ${JSON.stringify(name)} is not a simple rollup`);
  impl.prepare?.(ts, vs, undefined);
  const state: SlideState = { impl, ts, vs, ends, range, n, values, present, k: 0, lo: 0, hi: 0, got: 0 };
  while (!slide(state, meter));
  return state.got;
}

/**
 * Go's %g (strconv.FormatFloat(v, 'g', -1, 64)), as annotations print numbers: the shortest
 * digits, in exponent form ("1e+06", "1e-05") when the exponent is < -4 or >= 6.
 */
export function formatG(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(v.toExponential());
  if (m === null) return String(v);
  const exp = (m[2] === "-" ? -1 : 1) * Number(m[3]);
  if (exp < -4 || exp >= 6) return `${m[1]}e${m[2]}${m[3]!.padStart(2, "0")}`;
  return formatPromValue(v);
}


/**
 * Whether a start timestamp marks a counter reset between two samples (Prometheus 3.14):
 * unknown (0) or not before the sample itself: no; pointing before the previous sample: no;
 * after it: yes; exactly at it: a reset only when the previous sample had a known, valid start
 * timestamp of its own (a delta series), not for a cumulative series of unknown start.
 */
export function isStartTimestampReset(prevST: number, prevT: number, curST: number, curT: number): boolean {
  if (curST === 0 || curST >= curT) return false;
  if (curST < prevT) return false;
  if (curST > prevT) return true;
  if (prevST > prevT) return false;
  return prevST !== 0 && prevST !== prevT;
}

/** Set by slideRateST when a window holds a start timestamp overlapping the previous sample. */
let stOverlap = false;

/**
 * rate/increase with start timestamps: a start timestamp after the previous sample is a reset,
 * and when the first sample's start timestamp lies inside the window the increase is counted
 * from a zero at that time instead of extrapolating towards the window start (so a single
 * sample can have a rate).
 */
function slideRateST(
  ts: Float64Array,
  vs: Float64Array,
  st: Float64Array,
  ends: Float64Array,
  range: number,
  n: number,
  isRate: boolean,
  values: Float64Array,
  present: Uint8Array,
  env: Env,
): number {
  const len = ts.length;
  let got = 0;
  let lo = 0;
  let hi = 0;
  let scanned = 0;
  for (let k = 0; k < n; k++) {
    const rangeEnd = ends[k]!;
    const rangeStart = rangeEnd - range;
    if (k > 0 && rangeEnd < ends[k - 1]!) {
      lo = 0;
      hi = 0;
    }
    while (hi < len && ts[hi]! <= rangeEnd) hi++;
    while (lo < len && ts[lo]! <= rangeStart) lo++;
    const last = hi - 1;
    if (last < lo) continue;
    const firstT = ts[lo]!;
    const lastT = ts[last]!;
    const firstV = vs[lo]!;
    let result = vs[last]! - firstV;
    for (let i = lo + 1; i <= last; i++) {
      const cur = st[i]!;
      // A start inside the previous sample's interval that is not the previous start overlaps it.
      if (cur !== 0 && cur < ts[i - 1]! && cur !== st[i - 1]!) stOverlap = true;
      if (vs[i]! < vs[i - 1]! || isStartTimestampReset(st[i - 1]!, ts[i - 1]!, cur, ts[i]!)) result += vs[i - 1]!;
    }
    const numMinusOne = last - lo;
    let durationToStart = (firstT - rangeStart) / 1000;
    let durationToEnd = (rangeEnd - lastT) / 1000;
    let sampledInterval = (lastT - firstT) / 1000;
    const avgBetween = numMinusOne > 0 ? sampledInterval / numMinusOne : 0;
    const threshold = avgBetween * 1.1;
    const st0 = st[lo]!;
    if (st0 !== 0 && st0 > rangeStart && st0 < firstT) {
      // A zero at the first sample's start time replaces the extrapolation to the left.
      durationToStart = 0;
      sampledInterval = (lastT - st0) / 1000;
      result += firstV;
    } else if (numMinusOne === 0) {
      continue;
    } else {
      if (durationToStart >= threshold) durationToStart = avgBetween / 2;
      if (result > 0 && firstV >= 0) {
        const durationToZero = sampledInterval * (firstV / result);
        if (durationToZero < durationToStart) durationToStart = durationToZero;
      }
    }
    if (durationToEnd >= threshold) durationToEnd = avgBetween / 2;
    let factor = sampledInterval !== 0 ? (sampledInterval + durationToStart + durationToEnd) / sampledInterval : 1;
    if (isRate) factor /= range / 1000;
    scanned += hi - lo;
    values[k] = result * factor;
    present[k] = 1;
    got++;
  }
  env.samplesScanned += scanned;
  return got;
}
