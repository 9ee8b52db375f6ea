import { compareByLabels, tenantKey, type Labels, type Tenant } from "@strata/core";
import type { MatrixSeries } from "@strata/promql";

/**
 * Result cache for range queries (VictoriaMetrics' rollup result cache, simplified). For a query
 * with a given step and start alignment it keeps the points older than `now - offset`; a later
 * request for an overlapping range reuses them and evaluates only the newer tail. Points newer
 * than the offset are never cached, so samples still arriving cannot be missed; a delete resets
 * the tenant's entries. Memory is bounded by `maxPoints` (oldest entries are evicted first).
 */

interface Entry {
  readonly start: number;
  /** Last step timestamp covered (inclusive). */
  readonly end: number;
  readonly series: readonly MatrixSeries[];
  readonly points: number;
}

export class RollupCache {
  private readonly entries = new Map<string, Entry>();
  private points = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly maxPoints: number) {}

  static key(tenant: Tenant, query: string, step: number, start: number): string {
    return `${tenantKey(tenant)}\u0000${step}\u0000${((start % step) + step) % step}\u0000${query}`;
  }

  /** Cached points of `key` within [start, end] and the first step they do not cover (Infinity when all). */
  get(key: string, start: number, end: number, step: number): { series: MatrixSeries[]; nextStart: number } | undefined {
    const e = this.entries.get(key);
    if (!e || e.start > start || e.end < start) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Refresh recency.
    this.entries.delete(key);
    this.entries.set(key, e);
    const upTo = Math.min(e.end, end);
    const series: MatrixSeries[] = [];
    for (const s of e.series) {
      const lo = lowerBound(s.timestamps, start);
      const hi = lowerBound(s.timestamps, upTo + 1);
      if (hi > lo) series.push({ labels: s.labels, timestamps: s.timestamps.subarray(lo, hi), values: s.values.subarray(lo, hi) });
    }
    // The tail to evaluate starts at the first step after the cached part (none when covered).
    return { series, nextStart: e.end >= end ? Infinity : e.end + step };
  }

  /** Stores the points of `series` up to `cacheableEnd` (inclusive) for [start, …]. */
  put(key: string, start: number, cacheableEnd: number, series: readonly MatrixSeries[]): void {
    if (cacheableEnd < start) return;
    const kept: MatrixSeries[] = [];
    let points = 0;
    for (const s of series) {
      const hi = lowerBound(s.timestamps, cacheableEnd + 1);
      if (hi === 0) continue;
      kept.push({ labels: s.labels, timestamps: s.timestamps.slice(0, hi), values: s.values.slice(0, hi) });
      points += hi;
    }
    if (points > this.maxPoints / 4) return; // one query may not take over the cache
    this.delete(key);
    this.entries.set(key, { start, end: cacheableEnd, series: kept, points });
    this.points += points;
    for (const [k, e] of this.entries) {
      if (this.points <= this.maxPoints) break;
      this.entries.delete(k);
      this.points -= e.points;
    }
  }

  private delete(key: string): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.points -= old.points;
    }
  }

  /** Drops every entry of a tenant (after a delete) or all entries. */
  reset(tenant?: Tenant): void {
    const prefix = tenant === undefined ? "" : `${tenantKey(tenant)}\u0000`;
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.delete(k);
  }

  get size(): number {
    return this.points;
  }
}

function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Concatenates cached head and fresh tail series by label set; result sorted by labels. */
export function mergeMatrix(head: readonly MatrixSeries[], tail: readonly MatrixSeries[]): MatrixSeries[] {
  const byKey = new Map<string, { labels: Labels; parts: MatrixSeries[] }>();
  const key = (l: Labels) => l.map((x) => `${x.name}\u0000${x.value}`).join("\u0001");
  for (const s of [...head, ...tail]) {
    const k = key(s.labels);
    let e = byKey.get(k);
    if (!e) byKey.set(k, (e = { labels: s.labels, parts: [] }));
    e.parts.push(s);
  }
  const out: MatrixSeries[] = [];
  for (const { labels, parts } of byKey.values()) {
    if (parts.length === 1) {
      out.push(parts[0]!);
      continue;
    }
    const n = parts.reduce((a, p) => a + p.timestamps.length, 0);
    const ts = new Float64Array(n);
    const vs = new Float64Array(n);
    let o = 0;
    for (const p of parts) {
      ts.set(p.timestamps, o);
      vs.set(p.values, o);
      o += p.timestamps.length;
    }
    out.push({ labels, timestamps: ts, values: vs });
  }
  return out.sort(compareByLabels);
}
