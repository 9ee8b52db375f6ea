import { existsSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { decodeMetricName, ExecutionError, type LabelMatcher, type Tenant } from "@strata/core";
import { compareTSIDs, type SeriesIndex, type TSID, type TsdbStatus, type TsdbStatusRequest } from "@strata/storage";

/**
 * A small in-memory index honouring the SeriesIndex contract, for tests only (the real one is
 * src/indexdb). `flush()` persists it as JSON in `dir` so reopen/crash tests work; `open` loads.
 */
interface Series {
  tsid: TSID;
  name: Uint8Array;
  tenant: Tenant;
  labels: Map<string, string>;
  days: Set<number>;
  deleted: boolean;
}

const DAY = 86_400_000;

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class IndexDouble implements SeriesIndex {
  private readonly byKey = new Map<string, Series>();
  private readonly byID = new Map<number, Series>();
  private nextID = 1;

  constructor(private readonly dir?: string) {}

  static open(dir: string): IndexDouble {
    const d = new IndexDouble(dir);
    const f = join(dir, "index-double.json");
    if (existsSync(f)) {
      const j = JSON.parse(readFileSync(f, "utf8")) as { nextID: number; series: { id: number; name: string; days: number[]; deleted: boolean }[] };
      d.nextID = j.nextID;
      for (const s of j.series) d.add(Buffer.from(s.name, "base64"), s.id, new Set(s.days), s.deleted);
    }
    return d;
  }

  private add(name: Uint8Array, id: number, days: Set<number>, deleted: boolean): Series {
    const mn = decodeMetricName(name);
    const labels = new Map(mn.labels.map((l) => [l.name, l.value]));
    const tsid: TSID = {
      accountID: mn.tenant.accountID,
      projectID: mn.tenant.projectID,
      metricGroupID: fnv(labels.get("__name__") ?? ""),
      jobInstanceID: fnv(`${labels.get("job") ?? ""}\u0000${labels.get("instance") ?? ""}`),
      metricID: id,
    };
    const s: Series = { tsid, name, tenant: mn.tenant, labels, days, deleted };
    this.byID.set(id, s);
    if (!deleted) this.byKey.set(Buffer.from(name).toString("latin1"), s);
    return s;
  }

  getOrCreateTSID(metricName: Uint8Array, day: number): TSID {
    const key = Buffer.from(metricName).toString("latin1");
    let s = this.byKey.get(key);
    if (s === undefined) s = this.add(metricName.slice(), this.nextID++, new Set(), false);
    s.days.add(day);
    return s.tsid;
  }

  private matching(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number): Series[] {
    const d0 = Math.floor(minT / DAY);
    const d1 = Math.floor(maxT / DAY);
    const out: Series[] = [];
    for (const s of this.byID.values()) {
      if (s.deleted || s.tenant.accountID !== tenant.accountID || s.tenant.projectID !== tenant.projectID) continue;
      if (!matchers.every((m) => m.matches(s.labels.get(m.name) ?? ""))) continue;
      let hit = false;
      for (const d of s.days) if (d >= d0 && d <= d1) hit = true;
      if (hit) out.push(s);
    }
    return out;
  }

  searchTSIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): TSID[] {
    const got = this.matching(tenant, matchers, minT, maxT);
    if (got.length > maxSeries) throw new ExecutionError(`too many series: ${got.length} > ${maxSeries}`, "STRATA_LIMIT_EXCEEDED");
    return got.map((s) => s.tsid).sort(compareTSIDs);
  }

  metricNameByID(metricID: number): Uint8Array | undefined {
    return this.byID.get(metricID)?.name;
  }

  labelNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[] {
    const names = new Set<string>();
    for (const s of this.matching(tenant, matchers, minT, maxT)) for (const k of s.labels.keys()) names.add(k);
    return [...names].sort().slice(0, limit);
  }

  labelValues(tenant: Tenant, labelName: string, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[] {
    const vals = new Set<string>();
    for (const s of this.matching(tenant, matchers, minT, maxT)) {
      const v = s.labels.get(labelName);
      if (v !== undefined && v !== "") vals.add(v);
    }
    return [...vals].sort().slice(0, limit);
  }

  seriesCount(tenant: Tenant): number {
    return this.matching(tenant, [], -Infinity, Infinity).length + this.noDays(tenant);
  }

  private noDays(tenant: Tenant): number {
    let n = 0;
    for (const s of this.byID.values()) {
      if (!s.deleted && s.days.size === 0 && s.tenant.accountID === tenant.accountID && s.tenant.projectID === tenant.projectID) n++;
    }
    return n;
  }

  tsdbStatus(tenant: Tenant, req: TsdbStatusRequest): TsdbStatus {
    const series = this.matching(tenant, req.matchers ?? [], req.date * DAY, req.date * DAY + DAY - 1);
    const top = (m: Map<string, number>): { name: string; value: number }[] =>
      [...m.entries()]
        .map(([name, value]) => ({ name, value }))
        .sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .slice(0, req.topN);
    const byName = new Map<string, number>();
    const byLabel = new Map<string, number>();
    const byPair = new Map<string, number>();
    const byFocus = new Map<string, number>();
    const values = new Map<string, Set<string>>();
    for (const s of series) {
      const n = s.labels.get("__name__") ?? "";
      byName.set(n, (byName.get(n) ?? 0) + 1);
      for (const [k, v] of s.labels) {
        byLabel.set(k, (byLabel.get(k) ?? 0) + 1);
        byPair.set(`${k}=${v}`, (byPair.get(`${k}=${v}`) ?? 0) + 1);
        let set = values.get(k);
        if (set === undefined) values.set(k, (set = new Set()));
        set.add(v);
      }
      if (req.focusLabel !== undefined) {
        const v = s.labels.get(req.focusLabel);
        if (v !== undefined) byFocus.set(v, (byFocus.get(v) ?? 0) + 1);
      }
    }
    return {
      totalSeries: series.length,
      totalLabelValuePairs: [...byPair.values()].reduce((a, b) => a + b, 0),
      seriesCountByMetricName: top(byName),
      seriesCountByLabelName: top(byLabel),
      seriesCountByFocusLabelValue: top(byFocus),
      seriesCountByLabelValuePair: top(byPair),
      labelValueCountByLabelName: top(new Map([...values].map(([k, v]) => [k, v.size]))),
    };
  }

  deleteSeries(tenant: Tenant, matchers: readonly LabelMatcher[]): number {
    const got = this.matching(tenant, matchers, -Infinity, Infinity);
    for (const s of got) {
      s.deleted = true;
      this.byKey.delete(Buffer.from(s.name).toString("latin1"));
    }
    return got.length;
  }

  isDeleted(metricID: number): boolean {
    return this.byID.get(metricID)?.deleted ?? false;
  }

  async flush(): Promise<void> {
    if (this.dir === undefined) return;
    const j = {
      nextID: this.nextID,
      series: [...this.byID.entries()].map(([id, s]) => ({ id, name: Buffer.from(s.name).toString("base64"), days: [...s.days], deleted: s.deleted })),
    };
    const f = join(this.dir, "index-double.json");
    writeFileSync(`${f}.tmp`, JSON.stringify(j));
    renameSync(`${f}.tmp`, f);
  }

  async dropDaysBefore(minDay: number): Promise<void> {
    for (const s of this.byID.values()) for (const d of s.days) if (d < minDay) s.days.delete(d);
  }

  async snapshot(dir: string): Promise<void> {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dir, { recursive: true });
  }

  metrics(): Record<string, number> {
    return { series: this.byID.size };
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
