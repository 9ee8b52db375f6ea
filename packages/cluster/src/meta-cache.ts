import { parseDuration, tenantKey, type LabelMatcher, type Tenant } from "@strata/core";

const DAY = parseDuration("1d");

/**
 * Select's cache of index answers (label names, label values, metadata), valid while every
 * storage node's WatchIndex_v1 stream is up: the owner calls `invalidate()` on every message of
 * any stream and when a stream drops, and `usable` is false while some stream is down. An answer
 * fetched across an invalidation is not stored (`epoch` tells), so an entry never predates the
 * last change a node reported.
 *
 * Storage answers these calls from its per-day index: only the days of the range matter, so keys
 * hold days, not milliseconds (a dashboard's moving range hits). The one input that moves without
 * an index change is the retention boundary (storage clamps the range to it): entries expire
 * after `ttlMs` so an answer never lags it by more than that. An entry read when older than half
 * the TTL is due for a refresh (`claimRefresh`): its owner fetches it again in the background and
 * stores the new answer, so an entry read at least once per half TTL never expires into a miss
 * (a dashboard refreshed every 30 s would otherwise ask the storage nodes once a minute). Keys
 * start with the tenant: tenants never share an entry. Bounded by `maxEntries` (the oldest go
 * first).
 */
export class MetaCache {
  private readonly entries = new Map<string, { readonly value: readonly unknown[]; readonly at: number }>();
  /** Keys whose refresh is claimed and not yet ended. */
  private readonly refreshing = new Set<string>();
  private epochNo = 0;
  hits = 0;
  misses = 0;
  /** Refreshes claimed (for /metrics). */
  refreshes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Increases on every invalidation. */
  get epoch(): number {
    return this.epochNo;
  }

  get size(): number {
    return this.entries.size;
  }

  invalidate(): void {
    this.epochNo++;
    this.entries.clear();
  }

  /** The cached list (frozen; the same array on every hit of one entry), or undefined. */
  get<T>(key: string): readonly T[] | undefined {
    const e = this.entries.get(key);
    if (e === undefined || this.now() - e.at > this.ttlMs) {
      if (e !== undefined) this.entries.delete(key);
      this.misses++;
      return undefined;
    }
    this.hits++;
    return e.value as readonly T[];
  }

  /**
   * Whether the caller should fetch `key` again now: its entry is older than half the TTL and no
   * refresh of it runs. True claims the refresh; the caller ends it with `endRefresh` whatever
   * the fetch's outcome, and stores the answer with `set` (dropped if an invalidation came first).
   */
  claimRefresh(key: string): boolean {
    const e = this.entries.get(key);
    if (e === undefined || this.now() - e.at <= this.ttlMs / 2 || this.refreshing.has(key)) return false;
    this.refreshing.add(key);
    this.refreshes++;
    return true;
  }

  endRefresh(key: string): void {
    this.refreshing.delete(key);
  }

  /**
   * Stores `value` unless an invalidation happened since `epoch` (read before fetching it). The
   * array is frozen and kept as it is: the caller must not change it afterwards.
   */
  set(key: string, epoch: number, value: readonly unknown[]): void {
    if (epoch !== this.epochNo || this.maxEntries <= 0) return;
    // A replaced entry moves to the end: its key is deleted first so the bound evicts the oldest.
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value: Object.freeze(value), at: this.now() });
  }

  /** The key of one call: its kind, tenant, days of the range and every other argument. */
  static key(kind: string, tenant: Tenant, minT: number, maxT: number, args: readonly (string | number)[], sets: readonly (readonly LabelMatcher[])[]): string {
    const day = (t: number) => (Number.isFinite(t) ? Math.floor(t / DAY) : String(t));
    const ms = sets.map((s) => s.map((m) => [m.name, m.type, m.value]));
    return JSON.stringify([tenantKey(tenant), kind, day(minT), day(maxT), args, ms]);
  }
}
