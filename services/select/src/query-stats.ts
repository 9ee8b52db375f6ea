import { formatTenant, type Tenant } from "@strata/core";

/**
 * Active and top queries, served at /api/v1/status/active_queries and /api/v1/status/top_queries
 * in VictoriaMetrics' JSON shapes. Top-query statistics keep the last `maxRecords` finished queries
 * (a ring), so memory stays bounded whatever the query rate.
 */

interface Active {
  readonly id: number;
  readonly tenant: Tenant;
  readonly query: string;
  readonly start: number;
  readonly end: number;
  readonly step: number;
  readonly remoteAddr: string;
  readonly startedAt: number;
}

interface Finished {
  readonly tenantKey: string;
  readonly query: string;
  readonly timeRangeSeconds: number;
  readonly durationSeconds: number;
  readonly finishedAt: number;
}

export class QueryStats {
  private nextId = 1;
  private readonly active = new Map<number, Active>();
  private readonly ring: (Finished | undefined)[];
  private pos = 0;

  constructor(
    private readonly maxRecords = 20_000,
    private readonly minDurationMs = 1,
  ) {
    this.ring = new Array<Finished | undefined>(maxRecords);
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** Registers a running query; call the returned function when it finishes. */
  begin(tenant: Tenant, query: string, start: number, end: number, step: number, remoteAddr: string): () => void {
    const id = this.nextId++;
    const startedAt = Date.now();
    this.active.set(id, { id, tenant, query, start, end, step, remoteAddr, startedAt });
    return () => {
      this.active.delete(id);
      const durationMs = Date.now() - startedAt;
      if (durationMs < this.minDurationMs) return;
      this.ring[this.pos] = {
        tenantKey: formatTenant(tenant),
        query,
        timeRangeSeconds: Math.max(0, (end - start) / 1000),
        durationSeconds: durationMs / 1000,
        finishedAt: Date.now(),
      };
      this.pos = (this.pos + 1) % this.maxRecords;
    };
  }

  activeJson(tenant: Tenant | undefined): string {
    const now = Date.now();
    const data = [...this.active.values()]
      .filter((a) => tenant === undefined || (a.tenant.accountID === tenant.accountID && a.tenant.projectID === tenant.projectID))
      .map((a) => ({
        duration: `${((now - a.startedAt) / 1000).toFixed(3)}s`,
        id: `${a.id.toString(16).padStart(16, "0")}`,
        remote_addr: a.remoteAddr,
        accountID: a.tenant.accountID,
        projectID: a.tenant.projectID,
        query: a.query,
        start: a.start,
        end: a.end,
        step: a.step,
      }));
    return JSON.stringify({ status: "ok", data });
  }

  topJson(tenant: Tenant | undefined, topN: number, maxLifetimeMs: number): string {
    const now = Date.now();
    const want = tenant === undefined ? undefined : formatTenant(tenant);
    const groups = new Map<string, { query: string; timeRangeSeconds: number; count: number; sum: number; tenantKey: string }>();
    for (const f of this.ring) {
      if (f === undefined || now - f.finishedAt > maxLifetimeMs) continue;
      if (want !== undefined && f.tenantKey !== want) continue;
      const key = `${f.tenantKey}\u0000${f.timeRangeSeconds}\u0000${f.query}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { query: f.query, timeRangeSeconds: f.timeRangeSeconds, count: 0, sum: 0, tenantKey: f.tenantKey }));
      g.count++;
      g.sum += f.durationSeconds;
    }
    const list = [...groups.values()];
    const tenantFields = (k: string) => {
      const [a = "0", p = "0"] = k.split(":");
      return { accountID: Number(a), projectID: Number(p) };
    };
    const top = <T>(sorted: typeof list, f: (g: (typeof list)[number]) => T) => sorted.slice(0, topN).map(f);
    return JSON.stringify({
      topN: String(topN),
      maxLifetime: `${maxLifetimeMs / 1000}s`,
      "search.queryStats.lastQueriesCount": this.maxRecords,
      "search.queryStats.minQueryDuration": `${this.minDurationMs}ms`,
      topByCount: top([...list].sort((a, b) => b.count - a.count), (g) => ({ ...tenantFields(g.tenantKey), query: g.query, timeRangeSeconds: g.timeRangeSeconds, count: g.count })),
      topByAvgDuration: top([...list].sort((a, b) => b.sum / b.count - a.sum / a.count), (g) => ({
        ...tenantFields(g.tenantKey),
        query: g.query,
        timeRangeSeconds: g.timeRangeSeconds,
        avgDurationSeconds: g.sum / g.count,
        count: g.count,
      })),
      topBySumDuration: top([...list].sort((a, b) => b.sum - a.sum), (g) => ({
        ...tenantFields(g.tenantKey),
        query: g.query,
        timeRangeSeconds: g.timeRangeSeconds,
        sumDurationSeconds: g.sum,
        count: g.count,
      })),
    });
  }
}

/** Bounds concurrent queries; waiters queue up to `maxQueueMs`, then get a 503. */
export class Limiter {
  private running = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly max: number) {}

  get inFlight(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves once a slot is free; rejects with `onTimeout()` after `maxQueueMs`. */
  async acquire(maxQueueMs: number, onTimeout: () => Error, signal?: AbortSignal): Promise<() => void> {
    if (this.running < this.max) {
      this.running++;
      return () => this.release();
    }
    await new Promise<void>((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", abort);
        resolve();
      };
      const remove = () => {
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      const timer = setTimeout(() => {
        remove();
        reject(onTimeout());
      }, maxQueueMs);
      const abort = () => {
        clearTimeout(timer);
        remove();
        reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal?.addEventListener("abort", abort, { once: true });
      this.waiters.push(wake);
    });
    this.running++;
    return () => this.release();
  }

  private release(): void {
    this.running--;
    const next = this.waiters.shift();
    if (next) next();
  }
}
