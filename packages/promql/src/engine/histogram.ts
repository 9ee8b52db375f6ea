import type { Labels } from "@strata/core";
import type { Call } from "../ast.js";
import type { Env } from "./env.js";
import { parseGoFloat } from "./mathutil.js";
import { formatG } from "./range-functions.js";
import type { VectorValue, VSeries } from "./types.js";
import { dropLabel, getLabel } from "./types.js";
import { GroupKeyer } from "./group-keys.js";

/** Classic-histogram buckets of one group: member series sorted by upper bound. */
interface BucketGroup {
  readonly labels: Labels;
  readonly members: number[];
  readonly bounds: number[];
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

/** The grouping of histogram functions: every label but `le` (`__name__` included). */
const NO_LE: ReadonlySet<string> = new Set(["le"]);

/**
 * Groups the input series by labels without `le` (GroupKeyer ids, no key strings); warns about
 * unparsable `le` values. Each group's members are sorted by upper bound once, for all steps.
 */
function groupBuckets(v: VectorValue, call: Call, argIndex: number, env: Env): { groups: BucketGroup[]; series: VSeries[] } {
  const keyer = new GroupKeyer(NO_LE, true, false);
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
    const id = keyer.id(s.labels);
    let g = groups[id];
    if (g === undefined) {
      g = { labels: dropLabel(s.labels, "le"), members: [], bounds: [] };
      groups.push(g);
    }
    g.members.push(i);
    g.bounds.push(ub);
  }
  for (const g of groups) {
    const n = g.members.length;
    if (n < 2) continue;
    let sorted = true;
    for (let j = 1; j < n && sorted; j++) if (!(g.bounds[j - 1]! <= g.bounds[j]!)) sorted = false;
    if (sorted) continue;
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
/** The current group's member columns (values, presence), in bucket order. */
let colValues: Float64Array[] = [];
let colPresent: Uint8Array[] = [];

/** Loads group g's member columns into colValues/colPresent (once per group, for all its steps). */
function loadColumns(g: BucketGroup, series: VSeries[]): void {
  const m = g.members.length;
  if (ubBuf.length < m) {
    ubBuf = new Float64Array(m * 2);
    cntBuf = new Float64Array(m * 2);
  }
  for (let j = 0; j < m; j++) {
    const s = series[g.members[j]!]!;
    colValues[j] = s.values;
    colPresent[j] = s.present;
  }
}

/** Forgets the columns (they belong to the query). */
function clearColumns(): void {
  colValues = [];
  colPresent = [];
}

/**
 * Gathers a group's buckets present at step k from its columns (`vals`, `pres`, sorted by
 * `bounds`) into ub/cnt, coalescing equal bounds. Returns the count. Everything it reads comes
 * in as arguments: module variables cost a context load and a hole check per access here.
 */
function gather(bounds: readonly number[], vals: readonly Float64Array[], pres: readonly Uint8Array[], m: number, k: number, ub: Float64Array, cnt: Float64Array): number {
  let c = 0;
  for (let j = 0; j < m; j++) {
    if (pres[j]![k] !== 1) continue;
    const u = bounds[j]!;
    if (c > 0 && ub[c - 1] === u) {
      cnt[c - 1]! += vals[j]![k]!;
      continue;
    }
    ub[c] = u;
    cnt[c] = vals[j]![k]!;
    c++;
  }
  return c;
}

/** Prometheus' ensureMonotonicAndIgnoreSmallDeltas on cnt[0..m). */
function ensureMonotonic(cnt: Float64Array, m: number): boolean {
  let forced = false;
  let prev = cnt[0]!;
  for (let i = 1; i < m; i++) {
    const curr = cnt[i]!;
    if (curr === prev) continue;
    if (almostEqual(prev, curr, SMALL_DELTA_TOLERANCE)) {
      cnt[i] = prev;
      continue;
    }
    if (curr < prev) {
      cnt[i] = prev;
      forced = true;
      continue;
    }
    prev = curr;
  }
  return forced;
}

/** Set by bucketQuantile: its input needed fixing for monotonicity. */
let forcedFlag = false;

/** Prometheus' BucketQuantile over the gathered buckets ub/cnt[0..m). */
function bucketQuantile(q: number, m: number, ub: Float64Array, cnt: Float64Array): number {
  forcedFlag = false;
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  if (ub[m - 1] !== Infinity) return NaN;
  forcedFlag = ensureMonotonic(cnt, m);
  if (m < 2) return NaN;
  const observations = cnt[m - 1]!;
  if (observations === 0) return NaN;
  let rank = q * observations;
  // sort.Search over the first m-1 buckets: smallest b with count >= rank.
  let b = 0;
  let hi = m - 1;
  while (b < hi) {
    const mid = (b + hi) >>> 1;
    if (cnt[mid]! >= rank) hi = mid;
    else b = mid + 1;
  }
  if (b === m - 1) return ub[m - 2]!;
  if (b === 0 && ub[0]! <= 0) return ub[0]!;
  let bucketStart = 0;
  const bucketEnd = ub[b]!;
  let count = cnt[b]!;
  if (b > 0) {
    bucketStart = ub[b - 1]!;
    count -= cnt[b - 1]!;
    rank -= cnt[b - 1]!;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/**
 * histogram_quantile of one group at every step into values/present; returns 0 when no step
 * had buckets, else 1, plus 2 when some step's buckets needed fixing for monotonicity.
 */
function quantileSteps(
  bounds: readonly number[],
  vals: readonly Float64Array[],
  pres: readonly Uint8Array[],
  m: number,
  qs: Float64Array,
  n: number,
  ub: Float64Array,
  cnt: Float64Array,
  values: Float64Array,
  present: Uint8Array,
): number {
  let any = 0;
  let forced = 0;
  for (let k = 0; k < n; k++) {
    const c = gather(bounds, vals, pres, m, k, ub, cnt);
    if (c === 0) continue;
    values[k] = bucketQuantile(qs[k]!, c, ub, cnt);
    if (forcedFlag) forced = 2;
    present[k] = 1;
    any = 1;
  }
  return any | forced;
}

/** Prometheus' BucketFraction over the gathered buckets. */
function bucketFraction(lower: number, upper: number, m: number, ubBuf: Float64Array, cntBuf: Float64Array): number {
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
  try {
    for (const g of groups) {
      const m = g.members.length;
      loadColumns(g, series);
      const values = env.columns.values(n);
      const present = env.columns.present(n);
      const r = quantileSteps(g.bounds, colValues, colPresent, m, qs, n, ubBuf, cntBuf, values, present);
      // Once per group: the annotation names the group's metric, the same at every step.
      if ((r & 2) !== 0) {
        env.info(
          `input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name ${JSON.stringify(getLabel(g.labels, "__name__"))}`,
          call.args[vecArg]!.pos,
        );
      }
      if (r !== 0) out.push({ labels: g.labels, dropName: true, values, present });
    }
  } finally {
    clearColumns();
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
  try {
    for (const g of groups) {
      let values: Float64Array | undefined;
      let present: Uint8Array | undefined;
      const m = g.members.length;
      loadColumns(g, series);
      for (let k = 0; k < n; k++) {
        const c = gather(g.bounds, colValues, colPresent, m, k, ubBuf, cntBuf);
        if (c === 0) continue;
        const r = bucketFraction(lowers[k]!, uppers[k]!, c, ubBuf, cntBuf);
        if (values === undefined) {
          values = env.columns.values(n);
          present = env.columns.present(n);
        }
        values[k] = r;
        present![k] = 1;
      }
      if (values !== undefined) out.push({ labels: g.labels, dropName: true, values, present: present! });
    }
  } finally {
    clearColumns();
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
