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

/** Gathers the loaded group's buckets present at step k, coalescing equal bounds. Returns the count. */
function gather(bounds: readonly number[], m: number, k: number): number {
  let c = 0;
  for (let j = 0; j < m; j++) {
    if (colPresent[j]![k] !== 1) continue;
    const ub = bounds[j]!;
    if (c > 0 && ubBuf[c - 1] === ub) {
      cntBuf[c - 1]! += colValues[j]![k]!;
      continue;
    }
    ubBuf[c] = ub;
    cntBuf[c] = colValues[j]![k]!;
    c++;
  }
  return c;
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
  try {
    for (const g of groups) {
      let values: Float64Array | undefined;
      let present: Uint8Array | undefined;
      let forced = false;
      const m = g.members.length;
      loadColumns(g, series);
      for (let k = 0; k < n; k++) {
        const c = gather(g.bounds, m, k);
        if (c === 0) continue;
        const r = bucketQuantile(qs[k]!, c);
        if (forcedFlag) forced = true;
        if (values === undefined) {
          values = env.columns.values(n);
          present = env.columns.present(n);
        }
        values[k] = r;
        present![k] = 1;
      }
      // Once per group: the annotation names the group's metric, the same at every step.
      if (forced) {
        env.info(
          `input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name ${JSON.stringify(getLabel(g.labels, "__name__"))}`,
          call.args[vecArg]!.pos,
        );
      }
      if (values !== undefined) out.push({ labels: g.labels, dropName: true, values, present: present! });
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
        const c = gather(g.bounds, m, k);
        if (c === 0) continue;
        const r = bucketFraction(lowers[k]!, uppers[k]!, c);
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
