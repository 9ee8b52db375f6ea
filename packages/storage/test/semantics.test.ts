import { describe, expect, it } from "vitest";
import { DEFAULT_TENANT, newMatcher, type MatchType, type Tenant } from "@strata/core";
import { Storage } from "@strata/storage";
import { batchOf, dump, nameBytes, openTestStorage, rmDir, tmpDir, type Row } from "./helpers.js";

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 21, 12);
const T1: Tenant = { accountID: 1, projectID: 2 };

function rows(): Row[] {
  const out: Row[] = [];
  const series: Record<string, string>[] = [
    { __name__: "http_requests_total", job: "api", code: "200" },
    { __name__: "http_requests_total", job: "api", code: "500" },
    { __name__: "http_requests_total", job: "web" },
    { __name__: "process_cpu_seconds_total", job: "api", instance: "a:1" },
    { __name__: "up", job: "web", instance: "b:2" },
    { __name__: "up", job: "api", instance: "a:1", empty_label_example: "x" },
  ];
  for (const labels of series) for (let i = 0; i < 5; i++) out.push({ tenant: DEFAULT_TENANT, labels, t: NOW - 600_000 + i * 60_000, v: i });
  out.push({ tenant: T1, labels: { __name__: "up", job: "api" }, t: NOW - 60_000, v: 1 });
  return out;
}

const key = (labels: Record<string, string>): string => Buffer.from(nameBytes(DEFAULT_TENANT, labels)).toString("hex");

describe("matcher semantics (Prometheus: regex anchored, empty = absent, tenants isolated)", () => {
  let s: Storage;
  const dir = tmpDir();
  const f = (ms: [MatchType, string, string][], want: Record<string, string>[]): void => {
    const got = dump(s, DEFAULT_TENANT, ms.map(([t, n, v]) => newMatcher(t, n, v)), NOW - DAY, NOW);
    expect([...got.keys()].sort()).toEqual(want.map(key).sort());
  };
  it("setup", async () => {
    s = await openTestStorage(dir, { now: () => NOW });
    await s.addRows(batchOf(rows()));
    await s.forceFlush();
  });
  it.each<[string, [MatchType, string, string][], Record<string, string>[]]>([
    ["= on name", [["=", "__name__", "up"]], [{ __name__: "up", job: "web", instance: "b:2" }, { __name__: "up", job: "api", instance: "a:1", empty_label_example: "x" }]],
    ["!= excludes", [["=", "__name__", "http_requests_total"], ["!=", "code", "200"]], [{ __name__: "http_requests_total", job: "api", code: "500" }, { __name__: "http_requests_total", job: "web" }]],
    ["= empty matches absent label", [["=", "__name__", "http_requests_total"], ["=", "code", ""]], [{ __name__: "http_requests_total", job: "web" }]],
    ["!= empty requires the label", [["!=", "instance", ""]], [{ __name__: "process_cpu_seconds_total", job: "api", instance: "a:1" }, { __name__: "up", job: "web", instance: "b:2" }, { __name__: "up", job: "api", instance: "a:1", empty_label_example: "x" }]],
    ["=~ is fully anchored", [["=~", "__name__", "http_requests"]], []],
    ["=~ alternation on __name__", [["=~", "__name__", "up|process_.*"]], [{ __name__: "process_cpu_seconds_total", job: "api", instance: "a:1" }, { __name__: "up", job: "web", instance: "b:2" }, { __name__: "up", job: "api", instance: "a:1", empty_label_example: "x" }]],
    ["=~ matching empty includes absent", [["=", "__name__", "http_requests_total"], ["=~", "code", "5..|"]], [{ __name__: "http_requests_total", job: "api", code: "500" }, { __name__: "http_requests_total", job: "web" }]],
    ["!~ excludes", [["=~", "__name__", ".+_total"], ["!~", "job", "a.*"]], [{ __name__: "http_requests_total", job: "web" }]],
    ["!~ .+ means absent", [["=", "__name__", "up"], ["!~", "empty_label_example", ".+"]], [{ __name__: "up", job: "web", instance: "b:2" }]],
    ["no match", [["=", "job", "nope"]], []],
  ])("%s", (_n, ms, want) => f(ms, want));
  it("tenants are isolated", () => {
    expect([...dump(s, T1, [newMatcher("=", "__name__", "up")], NOW - DAY, NOW).keys()]).toEqual([Buffer.from(nameBytes(T1, { __name__: "up", job: "api" })).toString("hex")]);
    expect(s.seriesCount(T1)).toBe(1);
    expect(s.seriesCount(DEFAULT_TENANT)).toBe(6);
    expect(s.labelValues(DEFAULT_TENANT, "job", [], NOW - DAY, NOW)).toEqual(["api", "web"]);
    expect(s.labelValues(T1, "job", [], NOW - DAY, NOW)).toEqual(["api"]);
  });
  it("limits: more series than maxSeries is an ExecutionError", () => {
    expect(() => s.search(DEFAULT_TENANT, [newMatcher("=~", "__name__", ".+")], NOW - DAY, NOW, { maxSeries: 2 })).toThrow(/2|series/);
  });
  it("teardown", async () => {
    await s.close();
    rmDir(dir);
  });
});

describe("retention", () => {
  // Rows at these ages (relative to now at write time); retention 10 days.
  const R = 10 * DAY;
  it.each<[string, number, number, boolean]>([
    // name, age at write, clock advance after write, visible at the end
    ["fresh sample stays", DAY, 0, true],
    ["too old at ingest is dropped", 11 * DAY, 0, false],
    ["ages out after the clock advances", 5 * DAY, 6 * DAY, false],
    ["still inside after a small advance", 5 * DAY, 4 * DAY, true],
    ["exactly at the cutoff is kept", 4 * DAY, 6 * DAY, true],
    ["1 day ahead (inside the 2-day futureRetention) is kept", -DAY, 0, true],
    ["3 days ahead is dropped", -3 * DAY, 0, false],
  ])("%s", async (_n, age, advance, visible) => {
    const dir = tmpDir();
    let now = NOW;
    try {
      const s = await openTestStorage(dir, { now: () => now, retentionMs: R });
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "r" }, t: NOW - age, v: 1 }]));
      await s.forceFlush();
      now += advance;
      await s.forceMerge();
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "r")], 0, now + 3 * DAY).size).toBe(visible ? 1 : 0);
      await s.close();
      const s2 = await openTestStorage(dir, { now: () => now, retentionMs: R });
      expect(dump(s2, DEFAULT_TENANT, [newMatcher("=", "__name__", "r")], 0, now + 3 * DAY).size).toBe(visible ? 1 : 0);
      await s2.close();
    } finally {
      rmDir(dir);
    }
  });

  it("counts dropped rows by reason and creates no series for them (a year-10000 sample)", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW, retentionMs: R });
      const y10k = Date.UTC(10000, 0, 1) - 1;
      await s.addRows(batchOf([
        { tenant: DEFAULT_TENANT, labels: { __name__: "future" }, t: y10k, v: 1 },
        { tenant: DEFAULT_TENANT, labels: { __name__: "old" }, t: NOW - 11 * DAY, v: 1 },
        { tenant: DEFAULT_TENANT, labels: { __name__: "ok" }, t: NOW, v: 1 },
      ]));
      await s.forceFlush();
      expect(s.metrics().rows_dropped_too_new_total).toBe(1);
      expect(s.metrics().rows_dropped_too_old_total).toBe(1);
      expect(s.seriesCount(DEFAULT_TENANT)).toBe(1);
      expect(s.labelValues(DEFAULT_TENANT, "__name__", [], 0, y10k)).toEqual(["ok"]);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("a row that follows a dropped row of its own series goes to its own series, not the one before", async () => {
    // Batches group a series' rows; a dropped row (too old or too new) must not let the next
    // row of its series take the previous row's series as "the same name as before".
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW, retentionMs: R });
      const x = { __name__: "up", job: "a", instance: "x" };
      const a = { __name__: "up", job: "a" };
      await s.addRows(batchOf([
        { tenant: DEFAULT_TENANT, labels: x, t: NOW - DAY, v: 1 },
        { tenant: DEFAULT_TENANT, labels: a, t: NOW - 11 * DAY, v: 2 },
        { tenant: DEFAULT_TENANT, labels: a, t: NOW - DAY, v: 3 },
        { tenant: DEFAULT_TENANT, labels: x, t: NOW + 400 * DAY, v: 4 },
        { tenant: DEFAULT_TENANT, labels: x, t: NOW - DAY + 1000, v: 5 },
      ]));
      await s.forceFlush();
      const got = dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "up")], 0, NOW);
      const key = (l: Record<string, string>): string => Buffer.from(nameBytes(DEFAULT_TENANT, l)).toString("hex");
      const want = new Map<string, [number, number][]>([
        [key(x), [[NOW - DAY, 1], [NOW - DAY + 1000, 5]]],
        [key(a), [[NOW - DAY, 3]]],
      ]);
      expect(got).toEqual(want);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("a batch that grows the series table asks the index once per new series, not once per row after the growth", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW, retentionMs: R });
      const rows: Row[] = [];
      for (let i = 0; i < 3000; i++) {
        const labels = { __name__: "grow", i: String(i) };
        rows.push({ tenant: DEFAULT_TENANT, labels, t: NOW - 2000, v: i }, { tenant: DEFAULT_TENANT, labels, t: NOW - 1000, v: i });
      }
      await s.addRows(batchOf(rows));
      expect(s.metrics().index_day_updates_total).toBe(0);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("drops whole partitions past retention while ingestion goes on", async () => {
    const dir = tmpDir();
    let now = Date.UTC(2026, 0, 20);
    try {
      const s = await openTestStorage(dir, { now: () => now, retentionMs: 30 * DAY });
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "p" }, t: now - DAY, v: 1 }]));
      await s.forceFlush();
      expect(s.metrics().partitions).toBe(1);
      now = Date.UTC(2026, 2, 5); // January is now entirely older than 30 days
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "p" }, t: now, v: 2 }]));
      await s.forceMerge();
      expect(s.metrics().partitions).toBe(1);
      expect(s.metrics().partitions_dropped_total).toBe(1);
      expect([...dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "p")], 0, now).values()]).toEqual([[[now, 2]]]);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });
});

describe("series churned out past retention", () => {
  it("are pruned from the index, and a name that comes back is a new, complete series", async () => {
    const dir = tmpDir();
    let now = NOW;
    const R = 10 * DAY;
    const sel = (name: string) => [newMatcher("=", "__name__", name)];
    try {
      const s = await openTestStorage(dir, { now: () => now, retentionMs: R });
      await s.addRows(batchOf([
        { tenant: DEFAULT_TENANT, labels: { __name__: "churn", pod: "a" }, t: now - DAY, v: 1 },
        { tenant: DEFAULT_TENANT, labels: { __name__: "stay" }, t: now - DAY, v: 1 },
      ]));
      await s.forceFlush();
      now += 12 * DAY;
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "stay" }, t: now, v: 2 }]));
      await s.forceMerge();
      expect(s.metrics().indexdb_series_pruned_total).toBe(1);
      expect(s.labelValues(DEFAULT_TENANT, "pod", [], 0, now, 0)).toEqual([]);
      // The storage's own series cache must not hand the pruned id out again.
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "churn", pod: "a" }, t: now, v: 3 }]));
      await s.forceFlush();
      expect([...dump(s, DEFAULT_TENANT, sel("churn"), 0, now).values()]).toEqual([[[now, 3]]]);
      expect(s.labelValues(DEFAULT_TENANT, "pod", [], 0, now, 0)).toEqual(["a"]);
      await s.close();
      const s2 = await openTestStorage(dir, { now: () => now, retentionMs: R });
      expect([...dump(s2, DEFAULT_TENANT, sel("churn"), 0, now).values()]).toEqual([[[now, 3]]]);
      expect([...dump(s2, DEFAULT_TENANT, sel("stay"), 0, now).values()]).toEqual([[[now, 2]]]);
      await s2.close();
    } finally {
      rmDir(dir);
    }
  });
  it("a retention step that comes while the previous retention merge still runs is pruned too", async () => {
    const dir = tmpDir();
    let now = NOW;
    try {
      // Opening starts a retention merge; the next step comes before it has finished.
      const s = await openTestStorage(dir, { now: () => now, retentionMs: 2 * DAY });
      await s.addRows(batchOf([
        { tenant: DEFAULT_TENANT, labels: { __name__: "old" }, t: now - DAY, v: 1 },
        { tenant: DEFAULT_TENANT, labels: { __name__: "new" }, t: now, v: 1 },
      ]));
      await s.forceFlush();
      now += 2 * DAY;
      await s.forceMerge(); // waits for the index's retention merge, this step included
      expect(s.metrics().indexdb_series_pruned_total).toBe(1);
      expect(s.seriesCount(DEFAULT_TENANT)).toBe(1);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });
});

describe("deletes, snapshots, metrics", () => {
  it("deleted series never reappear (reopen, merge, re-ingest of the same name is a new series)", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW });
      const lab = { __name__: "d", job: "x" };
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: lab, t: NOW - 1000, v: 1 }]));
      await s.forceFlush();
      expect(await s.deleteSeries(DEFAULT_TENANT, [newMatcher("=", "__name__", "d")])).toBe(1);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "d")], 0, NOW).size).toBe(0);
      await s.forceMerge();
      expect(s.metrics().rows_dropped_deleted_total).toBe(1);
      await s.close();
      const s2 = await openTestStorage(dir, { now: () => NOW });
      expect(dump(s2, DEFAULT_TENANT, [newMatcher("=", "__name__", "d")], 0, NOW).size).toBe(0);
      expect(s2.seriesCount(DEFAULT_TENANT)).toBe(0);
      await s2.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: lab, t: NOW, v: 2 }]));
      await s2.forceFlush();
      expect([...dump(s2, DEFAULT_TENANT, [newMatcher("=", "__name__", "d")], 0, NOW).values()]).toEqual([[[NOW, 2]]]);
      await s2.close();
    } finally {
      rmDir(dir);
    }
  });

  it("snapshots are openable stores; list and delete work", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW });
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "snap" }, t: NOW, v: 7 }]));
      const name = await s.createSnapshot();
      expect(s.listSnapshots()).toEqual([name]);
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "snap" }, t: NOW + 1, v: 8 }]));
      await s.forceMerge();
      const snap = await openTestStorage(s.snapshotPath(name), { now: () => NOW });
      expect([...dump(snap, DEFAULT_TENANT, [newMatcher("=", "__name__", "snap")], 0, NOW + 10).values()]).toEqual([[[NOW, 7]]]);
      await snap.close();
      s.deleteSnapshot(name);
      expect(s.listSnapshots()).toEqual([]);
      expect(() => s.deleteSnapshot(name)).toThrow(/does not exist/);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("metrics expose every cap next to its size", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW, seriesCacheBytes: 1 << 20, maxRowsBuffer: 1000 });
      const m = s.metrics();
      for (const k of ["rows_buffer_max_rows", "inmemory_parts_max_bytes", "series_cache_max_bytes", "index_block_cache_max_bytes"]) expect(m[k]).toBeGreaterThan(0);
      expect(m.series_cache_max_bytes).toBe(1 << 20);
      expect(Object.keys(m).some((k) => k.startsWith("indexdb_"))).toBe(true);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("keeps each series' name once (series cache, not the index's cache) and restarts warm from it", async () => {
    const dir = tmpDir();
    try {
      const batch = batchOf(rows());
      let s = await openTestStorage(dir, { now: () => NOW });
      await s.addRows(batch);
      let m = s.metrics();
      expect(m.series_cache_entries).toBe(7);
      expect(m.indexdb_tsid_cache_entries).toBe(0);
      await s.close();
      s = await openTestStorage(dir, { now: () => NOW });
      m = s.metrics();
      expect(m.series_cache_entries).toBe(7); // loaded from the file saved on close
      expect(m.indexdb_tsid_cache_entries).toBe(0);
      await s.addRows(batch);
      m = s.metrics();
      expect(m.series_cache_misses_total).toBe(0);
      expect(m.indexdb_series_lookups_total).toBe(0);
      // The series kept their ids: still two `up` series, not four.
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "up")], NOW - DAY, NOW).size).toBe(2);
      expect(s.metrics().indexdb_series_created_total).toBe(0);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("merges read block headers past the index block cache; searches fill it", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW });
      const all = rows();
      await s.addRows(batchOf(all.slice(0, 15)));
      await s.forceFlush();
      await s.addRows(batchOf(all.slice(15)));
      await s.forceFlush();
      await s.forceMerge();
      expect(s.metrics().index_block_cache_bytes).toBe(0);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "up")], NOW - DAY, NOW).size).toBe(2);
      expect(s.metrics().index_block_cache_bytes).toBeGreaterThan(0);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("rejects malformed batches without writing anything", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now: () => NOW });
      await expect(s.addRows(new Uint8Array([5, 1, 2]))).rejects.toThrow();
      // A well-formed batch whose row count is not the one the request declared.
      const batch = batchOf(rows());
      await expect(s.addRows(batch, undefined, rows().length - 1)).rejects.toThrow(`holds ${rows().length} rows, the request says ${rows().length - 1}`);
      expect(s.metrics().wal_appends_total).toBe(0);
      await s.addRows(batch, undefined, rows().length);
      expect(s.metrics().wal_appends_total).toBe(1);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });
});
