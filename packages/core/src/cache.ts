import { labelValue, type MetricsRegistry } from "./metrics.js";

/**
 * What every bounded cache reports (rendered as `strata_cache_*{type="…"}`, see
 * renderCacheMetrics): entries, bytes held now and the cap, hits, misses, and how often a
 * generation was dropped.
 */
export interface CacheStats {
  readonly entries: number;
  readonly sizeBytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly rotations: number;
}

/**
 * A cache bounded by (estimated) bytes with two generations, like VictoriaMetrics'
 * workingsetcache: entries go to `curr`; when `curr` holds half the cap it becomes `prev` and
 * the old `prev` is dropped (a rotation). A hit in `prev` moves the entry back to `curr`, so
 * the working set survives every rotation and only entries unused for a whole generation go.
 * The cache therefore degrades gradually when the working set outgrows it: never a reset of
 * everything at once. O(1) per access, no per-access bookkeeping.
 *
 * `sizeOf(k, v)` estimates an entry's bytes (key and value and the Map's own overhead); an
 * entry larger than half the cap is not stored.
 */
export class TwoGenCache<K, V> implements CacheStats {
  private curr = new Map<K, V>();
  private prev = new Map<K, V>();
  private currBytes = 0;
  private prevBytes = 0;
  hits = 0;
  misses = 0;
  rotations = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (k: K, v: V) => number,
  ) {}

  get(k: K): V | undefined {
    const v = this.curr.get(k);
    if (v !== undefined) {
      this.hits++;
      return v;
    }
    const p = this.prev.get(k);
    if (p !== undefined) {
      this.hits++;
      this.prev.delete(k);
      this.prevBytes -= this.sizeOf(k, p);
      this.set(k, p);
      return p;
    }
    this.misses++;
    return undefined;
  }

  /** Looks k up without counting a hit or a miss and without promoting it. */
  peek(k: K): V | undefined {
    return this.curr.get(k) ?? this.prev.get(k);
  }

  set(k: K, v: V): void {
    const size = this.sizeOf(k, v);
    if (size * 2 > this.maxBytes) return;
    const old = this.curr.get(k);
    if (old !== undefined) {
      this.curr.delete(k);
      this.currBytes -= this.sizeOf(k, old);
    }
    if (this.currBytes + size > this.maxBytes / 2) this.rotate();
    const stale = this.prev.get(k);
    if (stale !== undefined) {
      this.prev.delete(k);
      this.prevBytes -= this.sizeOf(k, stale);
    }
    this.curr.set(k, v);
    this.currBytes += size;
  }

  /** Forgets k (in either generation). */
  delete(k: K): void {
    const c = this.curr.get(k);
    if (c !== undefined) {
      this.curr.delete(k);
      this.currBytes -= this.sizeOf(k, c);
    }
    const p = this.prev.get(k);
    if (p !== undefined) {
      this.prev.delete(k);
      this.prevBytes -= this.sizeOf(k, p);
    }
  }

  /** Every entry, older generation first (so re-inserting them in order keeps the newer ones). */
  *all(): IterableIterator<[K, V]> {
    yield* this.prev;
    yield* this.curr;
  }

  /** Drops everything: only for when cached values became wrong (e.g. ids pruned), never for room. */
  clear(): void {
    this.curr = new Map();
    this.prev = new Map();
    this.currBytes = 0;
    this.prevBytes = 0;
  }

  private rotate(): void {
    this.prev = this.curr;
    this.prevBytes = this.currBytes;
    this.curr = new Map();
    this.currBytes = 0;
    this.rotations++;
  }

  get sizeBytes(): number {
    return this.currBytes + this.prevBytes;
  }

  get entries(): number {
    return this.curr.size + this.prev.size;
  }
}

/**
 * Registers `strata_cache_{entries,size_bytes,size_max_bytes,hits_total,misses_total,rotations_total}`
 * with a `type` label per cache (VictoriaMetrics' `vm_cache_*{type=…}` shape), read at scrape time.
 */
export function registerCacheMetrics(r: MetricsRegistry, caches: Readonly<Record<string, CacheStats>>): void {
  for (const [type, c] of Object.entries(caches)) {
    const l = `{type="${labelValue(type)}"}`;
    r.gauge(`strata_cache_entries${l}`, "Entries held by the cache.", () => c.entries);
    r.gauge(`strata_cache_size_bytes${l}`, "Bytes held by the cache (estimated).", () => c.sizeBytes);
    r.gauge(
      `strata_cache_size_max_bytes${l}`,
      "Cap of the cache in bytes: a share of -memory.allowedPercent / -memory.allowedBytes unless its own flag sets it.",
      () => c.maxBytes,
    );
    r.counter(`strata_cache_hits_total${l}`, "Lookups that found their entry.", () => c.hits);
    r.counter(`strata_cache_misses_total${l}`, "Lookups that did not find their entry.", () => c.misses);
    r.counter(`strata_cache_rotations_total${l}`, "Times the older generation was dropped to make room.", () => c.rotations);
  }
}
