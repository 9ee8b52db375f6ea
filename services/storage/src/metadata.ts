import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tenantKey, type Tenant } from "@strata/core";

/**
 * Remote-write metric metadata (type, help, unit per metric family and tenant), kept so select
 * can serve /api/v1/metadata. Last writer wins. Held in memory (bounded by maxEntries: the
 * least recently updated entries go first) and persisted atomically to
 * `<storageDataPath>/metadata/metadata.json` when dirty, at most every `persistIntervalMs`, and on close.
 */

export interface MetadataEntry {
  readonly family: string;
  readonly type: number;
  readonly help: string;
  readonly unit: string;
  readonly updatedMs: number;
}

interface FileShape {
  version: 1;
  tenants: Record<string, MetadataEntry[]>;
}

export class MetadataStore {
  private readonly byTenant = new Map<string, Map<string, MetadataEntry>>();
  private size = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly file: string;

  constructor(
    dir: string,
    private readonly maxEntries = 1_000_000,
    persistIntervalMs = 10_000,
  ) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "metadata.json");
    if (existsSync(this.file)) {
      const data = JSON.parse(readFileSync(this.file, "utf8")) as FileShape;
      for (const [k, list] of Object.entries(data.tenants)) {
        const m = new Map<string, MetadataEntry>();
        for (const e of list) m.set(e.family, e);
        this.byTenant.set(k, m);
        this.size += m.size;
      }
    }
    this.timer = setInterval(() => this.persist(), persistIntervalMs);
    this.timer.unref();
  }

  get entries(): number {
    return this.size;
  }

  /** Returns whether an answer of `get` may have changed (a new family, or new type, help or unit). */
  put(tenant: Tenant, e: Omit<MetadataEntry, "updatedMs">, nowMs = Date.now()): boolean {
    const k = tenantKey(tenant);
    let m = this.byTenant.get(k);
    if (!m) this.byTenant.set(k, (m = new Map()));
    const prev = m.get(e.family);
    if (prev) {
      m.delete(e.family); // re-insert to keep Map order = update order
    } else {
      this.size++;
    }
    m.set(e.family, { family: e.family, type: e.type, help: e.help, unit: e.unit, updatedMs: nowMs });
    const changed = !prev || prev.type !== e.type || prev.help !== e.help || prev.unit !== e.unit;
    if (changed) this.dirty = true;
    while (this.size > this.maxEntries) this.evictOldest();
    return changed;
  }

  private evictOldest(): void {
    let oldest: { k: string; family: string; t: number } | undefined;
    for (const [k, m] of this.byTenant) {
      const first = m.values().next();
      if (!first.done && (oldest === undefined || first.value.updatedMs < oldest.t)) {
        oldest = { k, family: first.value.family, t: first.value.updatedMs };
      }
    }
    if (!oldest) return;
    this.byTenant.get(oldest.k)!.delete(oldest.family);
    this.size--;
    this.dirty = true;
  }

  /** Entries of a tenant sorted by family; only `metric` when given; at most `limit` (0: all). */
  get(tenant: Tenant, metric: string, limit: number): MetadataEntry[] {
    const m = this.byTenant.get(tenantKey(tenant));
    if (!m) return [];
    if (metric !== "") {
      const e = m.get(metric);
      return e ? [e] : [];
    }
    const out = [...m.values()].sort((a, b) => (a.family < b.family ? -1 : a.family > b.family ? 1 : 0));
    return limit > 0 ? out.slice(0, limit) : out;
  }

  persist(): void {
    if (!this.dirty) return;
    const data: FileShape = { version: 1, tenants: {} };
    for (const [k, m] of this.byTenant) data.tenants[k] = [...m.values()];
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(data));
    const fd = openSync(tmp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    this.dirty = false;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.persist();
  }
}
