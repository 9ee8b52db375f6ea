import { BadDataError, CanceledError, compareLabels, normalizeLabels, labelsFromRecord, STALE_NAN_ARRAY } from "@strata/core";
import type { Label, Labels, LabelMatcher } from "@strata/core";
import type { Querier, SelectHints, Series, SeriesSet } from "./querier.js";
import { seriesSetOf } from "./querier.js";

/** One series' samples in growable typed arrays (capacity doubles; `n` used). */
class MemSeries {
  ts: Float64Array;
  vs: Float64Array;
  /** Start timestamps (ms, 0 = unknown); allocated when the first one is added. */
  st: Float64Array | undefined;
  n = 0;
  /** Set when samples arrived out of order; select() sorts before reading. */
  unsorted = false;
  constructor(
    readonly labels: Labels,
    readonly key: string,
    capacity: number,
  ) {
    this.ts = new Float64Array(Math.max(4, capacity));
    this.vs = new Float64Array(Math.max(4, capacity));
  }

  reserve(extra: number): void {
    const need = this.n + extra;
    if (need <= this.ts.length) return;
    let cap = this.ts.length * 2;
    while (cap < need) cap *= 2;
    const ts = new Float64Array(cap);
    ts.set(this.ts.subarray(0, this.n));
    const vs = new Float64Array(cap);
    // Copying through a Float64Array keeps NaN payloads (stale markers) intact.
    vs.set(this.vs.subarray(0, this.n));
    this.ts = ts;
    this.vs = vs;
    if (this.st !== undefined) {
      const st = new Float64Array(cap);
      st.set(this.st.subarray(0, this.n));
      this.st = st;
    }
  }

  /** Sorts by timestamp; for equal timestamps the sample added last wins. */
  normalize(): void {
    if (!this.unsorted) return;
    const n = this.n;
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    const ts = this.ts;
    idx.sort((a, b) => ts[a]! - ts[b]! || a - b);
    const nts = new Float64Array(this.ts.length);
    const nvs = new Float64Array(this.vs.length);
    const nst = this.st === undefined ? undefined : new Float64Array(this.st.length);
    let m = 0;
    for (let j = 0; j < n; j++) {
      const i = idx[j]!;
      if (m > 0 && nts[m - 1] === ts[i]) m--;
      nts[m] = ts[i]!;
      nvs.set(this.vs.subarray(i, i + 1), m);
      if (nst !== undefined) nst[m] = this.st![i]!;
      m++;
    }
    this.ts = nts;
    this.vs = nvs;
    this.st = nst;
    this.n = m;
    this.unsorted = false;
  }
}

function keyOf(labels: Labels): string {
  let k = "";
  for (const l of labels) k += `${l.name}\u0000${l.value}\u0001`;
  return k;
}

function lowerBound(a: Float64Array, n: number, t: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(a: Float64Array, n: number, t: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function getValue(labels: Labels, name: string): string {
  for (const l of labels) if (l.name === name) return l.value;
  return "";
}

function matchesAll(labels: Labels, matchers: readonly LabelMatcher[]): boolean {
  for (const m of matchers) if (!m.matches(getValue(labels, m.name))) return false;
  return true;
}

/**
 * An in-memory Querier over typed arrays, for tests, the conformance runner and benchmarks.
 * Selections return views of the stored arrays (no copy): do not add samples to a series while
 * a query over it runs.
 */
export class MemoryQuerier implements Querier {
  private readonly byKey = new Map<string, MemSeries>();
  private sorted: MemSeries[] | undefined = [];

  /** Number of series stored. */
  get seriesCount(): number {
    return this.byKey.size;
  }

  private seriesFor(labels: Labels | Readonly<Record<string, string>>, capacity: number): MemSeries {
    const norm: Label[] = Array.isArray(labels) ? normalizeLabels(labels as Labels) : labelsFromRecord(labels as Record<string, string>);
    for (let i = 1; i < norm.length; i++) {
      if (norm[i - 1]!.name === norm[i]!.name) throw new BadDataError(`duplicate label name ${JSON.stringify(norm[i]!.name)}`, "STRATA_DUPLICATE_LABEL");
    }
    const key = keyOf(norm);
    let s = this.byKey.get(key);
    if (s === undefined) {
      s = new MemSeries(Object.freeze(norm), key, capacity);
      this.byKey.set(key, s);
      this.sorted = undefined;
    }
    return s;
  }

  /**
   * Adds samples to the series with these labels (created on first use). Timestamps are ms;
   * out-of-order samples are allowed (sorted lazily); a repeated timestamp overwrites.
   */
  add(
    labels: Labels | Readonly<Record<string, string>>,
    timestamps: ArrayLike<number>,
    values: ArrayLike<number>,
    startTimestamps?: ArrayLike<number>,
  ): void {
    if (timestamps.length !== values.length || (startTimestamps !== undefined && startTimestamps.length !== values.length)) {
      throw new BadDataError(`add: ${timestamps.length} timestamps, ${values.length} values, ${startTimestamps?.length ?? "no"} start timestamps`);
    }
    const s = this.seriesFor(labels, timestamps.length);
    if (startTimestamps !== undefined && s.st === undefined) s.st = new Float64Array(s.ts.length);
    s.reserve(timestamps.length);
    if (s.st !== undefined) for (let i = 0; i < timestamps.length; i++) s.st[s.n + i] = startTimestamps?.[i] ?? 0;
    let last = s.n > 0 ? s.ts[s.n - 1]! : -Infinity;
    for (let i = 0; i < timestamps.length; i++) {
      const t = timestamps[i]!;
      if (t <= last) s.unsorted = true;
      last = t;
      s.ts[s.n + i] = t;
    }
    if (values instanceof Float64Array) s.vs.set(values, s.n);
    else for (let i = 0; i < values.length; i++) s.vs[s.n + i] = values[i]!;
    s.n += timestamps.length;
  }

  /**
   * Adds a whole series without copying: the querier keeps `timestamps` and `values` (which
   * must be sorted by time and must not change afterwards; several series may share one
   * timestamps array). Replaces any samples stored for these labels.
   */
  adoptSeries(labels: Labels | Readonly<Record<string, string>>, timestamps: Float64Array, values: Float64Array): void {
    if (timestamps.length !== values.length) {
      throw new BadDataError(`adoptSeries: ${timestamps.length} timestamps but ${values.length} values`);
    }
    const s = this.seriesFor(labels, 0);
    s.ts = timestamps;
    s.vs = values;
    s.st = undefined;
    s.n = timestamps.length;
    s.unsorted = false;
  }

  /** Adds one sample. */
  appendSample(labels: Labels | Readonly<Record<string, string>>, t: number, v: number): void {
    const s = this.seriesFor(labels, 16);
    s.reserve(1);
    if (s.n > 0 && t <= s.ts[s.n - 1]!) s.unsorted = true;
    s.ts[s.n] = t;
    s.vs[s.n] = v;
    if (s.st !== undefined) s.st[s.n] = 0;
    s.n++;
  }

  /** Adds a stale marker (NaN with bits 0x7ff0000000000002) at `t`. */
  appendStale(labels: Labels | Readonly<Record<string, string>>, t: number): void {
    const s = this.seriesFor(labels, 16);
    s.reserve(1);
    if (s.n > 0 && t <= s.ts[s.n - 1]!) s.unsorted = true;
    s.ts[s.n] = t;
    s.vs.set(STALE_NAN_ARRAY, s.n);
    if (s.st !== undefined) s.st[s.n] = 0;
    s.n++;
  }

  /** Removes every series. */
  clear(): void {
    this.byKey.clear();
    this.sorted = [];
  }

  private all(): MemSeries[] {
    if (this.sorted === undefined) {
      this.sorted = [...this.byKey.values()].sort((a, b) => compareLabels(a.labels, b.labels));
    }
    return this.sorted;
  }

  select(
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    _hints: SelectHints,
    signal?: AbortSignal,
  ): Promise<SeriesSet> {
    if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new CanceledError("query canceled"));
    const out: Series[] = [];
    for (const s of this.all()) {
      if (!matchesAll(s.labels, matchers)) continue;
      s.normalize();
      const lo = lowerBound(s.ts, s.n, minT);
      const hi = upperBound(s.ts, s.n, maxT);
      if (hi <= lo) continue;
      const series: Series = { labels: s.labels, timestamps: s.ts.subarray(lo, hi), values: s.vs.subarray(lo, hi) };
      out.push(s.st === undefined ? series : { ...series, startTimestamps: s.st.subarray(lo, hi) });
    }
    return Promise.resolve(seriesSetOf(out));
  }

  labelNames(matchers: readonly LabelMatcher[], minT: number, maxT: number): Promise<string[]> {
    const names = new Set<string>();
    for (const s of this.matching(matchers, minT, maxT)) for (const l of s.labels) names.add(l.name);
    return Promise.resolve([...names].sort());
  }

  labelValues(name: string, matchers: readonly LabelMatcher[], minT: number, maxT: number): Promise<string[]> {
    const values = new Set<string>();
    for (const s of this.matching(matchers, minT, maxT)) {
      const v = getValue(s.labels, name);
      if (v !== "") values.add(v);
    }
    return Promise.resolve([...values].sort());
  }

  private *matching(matchers: readonly LabelMatcher[], minT: number, maxT: number): Generator<MemSeries> {
    for (const s of this.all()) {
      if (!matchesAll(s.labels, matchers)) continue;
      s.normalize();
      const lo = lowerBound(s.ts, s.n, minT);
      if (lo < s.n && s.ts[lo]! <= maxT) yield s;
    }
  }
}

