import type { Labels } from "@strata/core";
import type { Call } from "../ast.js";
import type { Env } from "./env.js";
import { parseGoFloat } from "./mathutil.js";
import { formatG } from "./range-functions.js";
import type { VectorValue, VSeries } from "./types.js";
import { dropLabel, getLabel, labelsKey } from "./types.js";

/** Classic-histogram buckets of one group: member series sorted by upper bound. */
interface BucketGroup {
  readonly labels: Labels;
  readonly members: number[];
  readonly bounds: number[];
  values: Float64Array | undefined;
  present: Uint8Array | undefined;
}

const SMALL_DELTA_TOLERANCE = 1e-12;
const MIN_NORMAL = 2.2250738585072014e-308;

function almostEqual(a: number, b: number, eps: number): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  if (a === b) return true;
  const absSum = Math.abs(a) + Math.abs(b);
  const diff = Math.abs(a - b);
  if (a === 0 || b === 0 || absSum < MIN_NORMAL) return diff < eps * MIN_NORMAL;
  return diff / Math.min(absSum, Number.MAX_VALUE) < eps;
}

/** Groups the input series by labels without `le`; warns about unparsable `le` values. */
function groupBuckets(v: VectorValue, call: Call, argIndex: number, env: Env): { groups: BucketGroup[]; series: VSeries[] } {
  const byKey = new Map<string, BucketGroup>();
  const groups: BucketGroup[] = [];
  const series = v.series;
  for (let i = 0; i < series.length; i++) {
    const s = series[i]!;
    const le = getLabel(s.labels, "le");
    const ub = parseGoFloat(le);
    if (ub === undefined) {
      env.warn(
        `bucket label "le" is missing or has a malformed value of ${JSON.stringify(le)} for metric name ${JSON.stringify(getLabel(s.labels, "__name__"))}`,
        call.args[argIndex]!.pos,
      );
      continue;
    }
    const labels = dropLabel(s.labels, "le");
    const key = labelsKey(labels);
    let g = byKey.get(key);
    if (g === undefined) {
      g = { labels, members: [], bounds: [], values: undefined, present: undefined };
      byKey.set(key, g);
      groups.push(g);
    }
    g.members.push(i);
    g.bounds.push(ub);
  }
  for (const g of groups) {
    const n = g.members.length;
    const order: number[] = new Array<number>(n);
    for (let j = 0; j < n; j++) order[j] = j;
    sortBounds = g.bounds;
    order.sort(byBound);
    sortBounds = NO_BOUNDS;
    const m = new Array<number>(n);
    const b = new Array<number>(n);
    for (let j = 0; j < n; j++) {
      m[j] = g.members[order[j]!]!;
      b[j] = g.bounds[order[j]!]!;
    }
    g.members.splice(0, n, ...m);
    g.bounds.splice(0, n, ...b);
  }
  return { groups, series };
}

let ubBuf = new Float64Array(64);
let cntBuf = new Float64Array(64);

/** Gathers the group's buckets present at step k, coalescing equal bounds. Returns the count. */
function gather(g: BucketGroup, series: VSeries[], k: number): number {
  if (ubBuf.length < g.members.length) {
    ubBuf = new Float64Array(g.members.length * 2);
    cntBuf = new Float64Array(g.members.length * 2);
  }
  let m = 0;
  for (let j = 0; j < g.members.length; j++) {
    const s = series[g.members[j]!]!;
    if (s.present[k] !== 1) continue;
    const ub = g.bounds[j]!;
    if (m > 0 && ubBuf[m - 1] === ub) {
      cntBuf[m - 1]! += s.values[k]!;
      continue;
    }
    ubBuf[m] = ub;
    cntBuf[m] = s.values[k]!;
    m++;
  }
  return m;
}

/** Prometheus' ensureMonotonicAndIgnoreSmallDeltas on cntBuf[0..m). */
function ensureMonotonic(m: number): boolean {
  let forced = false;
  let prev = cntBuf[0]!;
  for (let i = 1; i < m; i++) {
    const curr = cntBuf[i]!;
    if (curr === prev) continue;
    if (almostEqual(prev, curr, SMALL_DELTA_TOLERANCE)) {
      cntBuf[i] = prev;
      continue;
    }
    if (curr < prev) {
      cntBuf[i] = prev;
      forced = true;
      continue;
    }
    prev = curr;
  }
  return forced;
}

let forcedFlag = false;

/** Prometheus' BucketQuantile over the gathered buckets. */
function bucketQuantile(q: number, m: number): number {
  forcedFlag = false;
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  if (ubBuf[m - 1] !== Infinity) return NaN;
  forcedFlag = ensureMonotonic(m);
  if (m < 2) return NaN;
  const observations = cntBuf[m - 1]!;
  if (observations === 0) return NaN;
  let rank = q * observations;
  // sort.Search over the first m-1 buckets: smallest b with count >= rank.
  let b = 0;
  let hi = m - 1;
  while (b < hi) {
    const mid = (b + hi) >>> 1;
    if (cntBuf[mid]! >= rank) hi = mid;
    else b = mid + 1;
  }
  if (b === m - 1) return ubBuf[m - 2]!;
  if (b === 0 && ubBuf[0]! <= 0) return ubBuf[0]!;
  let bucketStart = 0;
  const bucketEnd = ubBuf[b]!;
  let count = cntBuf[b]!;
  if (b > 0) {
    bucketStart = ubBuf[b - 1]!;
    count -= cntBuf[b - 1]!;
    rank -= cntBuf[b - 1]!;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/** Prometheus' BucketFraction over the gathered buckets. */
function bucketFraction(lower: number, upper: number, m: number): number {
  if (ubBuf[m - 1] !== Infinity) return NaN;
  const count = cntBuf[m - 1]!;
  if (count === 0 || Number.isNaN(lower) || Number.isNaN(upper)) return NaN;
  if (lower >= upper) return 0;
  let rank = 0;
  let lowerRank = 0;
  let upperRank = 0;
  let lowerSet = false;
  let upperSet = false;
  for (let i = 0; i < m; i++) {
    const upperBound = ubBuf[i]!;
    // The first bucket of positive values starts at 0, as in histogram_quantile.
    const lowerBound = i > 0 ? ubBuf[i - 1]! : upperBound > 0 ? 0 : -Infinity;
    const bc = cntBuf[i]!;
    // Observations of an infinitely wide bucket sit at its infinite end (no interpolation).
    const interp = (v: number): number =>
      lowerBound === -Infinity ? bc : upperBound === Infinity ? rank : rank + ((bc - rank) * (v - lowerBound)) / (upperBound - lowerBound);
    if (!lowerSet && lowerBound >= lower) {
      lowerRank = rank;
      lowerSet = true;
    }
    if (!upperSet && lowerBound >= upper) {
      upperRank = rank;
      upperSet = true;
    }
    if (lowerSet && upperSet) break;
    if (!lowerSet && lowerBound < lower && upperBound > lower) {
      lowerRank = interp(lower);
      lowerSet = true;
    }
    if (!upperSet && lowerBound < upper && upperBound > upper) {
      upperRank = interp(upper);
      upperSet = true;
    }
    if (lowerSet && upperSet) break;
    rank = bc;
  }
  if (!lowerSet || lowerRank > count) lowerRank = count;
  if (!upperSet || upperRank > count) upperRank = count;
  return (upperRank - lowerRank) / count;
}

export function evalHistogramQuantile(
  call: Call,
  qs: Float64Array,
  v: VectorValue,
  n: number,
  env: Env,
  vecArg = 1,
  qArg = 0,
): VectorValue {
  let warnedQ = false;
  for (let k = 0; k < n && !warnedQ; k++) {
    const q = qs[k]!;
    if (Number.isNaN(q) || q < 0 || q > 1) {
      env.warn(`quantile value should be between 0 and 1, got ${formatG(q)}`, call.args[qArg]!.pos);
      warnedQ = true;
    }
  }
  const { groups, series } = groupBuckets(v, call, vecArg, env);
  const out: VSeries[] = [];
  for (const g of groups) {
    let values: Float64Array | undefined;
    let present: Uint8Array | undefined;
    for (let k = 0; k < n; k++) {
      const m = gather(g, series, k);
      if (m === 0) continue;
      const r = bucketQuantile(qs[k]!, m);
      if (forcedFlag) {
        env.info(
          `input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name ${JSON.stringify(getLabel(g.labels, "__name__"))}`,
          call.args[vecArg]!.pos,
        );
      }
      if (values === undefined) {
        values = new Float64Array(n);
        present = new Uint8Array(n);
      }
      values[k] = r;
      present![k] = 1;
    }
    if (values !== undefined) out.push({ labels: g.labels, dropName: true, values, present: present! });
  }
  return { kind: "vector", series: out };
}

export function evalHistogramFraction(
  call: Call,
  lowers: Float64Array,
  uppers: Float64Array,
  v: VectorValue,
  n: number,
  env: Env,
): VectorValue {
  const { groups, series } = groupBuckets(v, call, 2, env);
  const out: VSeries[] = [];
  for (const g of groups) {
    let values: Float64Array | undefined;
    let present: Uint8Array | undefined;
    for (let k = 0; k < n; k++) {
      const m = gather(g, series, k);
      if (m === 0) continue;
      const r = bucketFraction(lowers[k]!, uppers[k]!, m);
      if (values === undefined) {
        values = new Float64Array(n);
        present = new Uint8Array(n);
      }
      values[k] = r;
      present![k] = 1;
    }
    if (values !== undefined) out.push({ labels: g.labels, dropName: true, values, present: present! });
  }
  return { kind: "vector", series: out };
}

/**
 * Bucket order by upper bound: a module comparator over `sortBounds` (set around each sort)
 * instead of an arrow per group, which V8 re-optimized for every query.
 */
const NO_BOUNDS: number[] = [];
let sortBounds: number[] = NO_BOUNDS;
function byBound(a: number, b: number): number {
  return sortBounds[a]! - sortBounds[b]!;
}
