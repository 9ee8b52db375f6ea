import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type LabelMatcher, type MatchType, type Tenant, encodeMetricName, labelsFromRecord, newMatcher } from "@strata/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { IndexDB, type TSID, compareTSID, decodeTSID, encodeTSID, TSID_SIZE } from "../src/indexdb/index.js";

const dirs: string[] = [];
function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "strata-indexdb-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const T0: Tenant = { accountID: 0, projectID: 0 };
const T1: Tenant = { accountID: 1, projectID: 7 };
const DAY = 86_400_000;
const D = 20_000; // a day number
const dayStart = D * DAY;

function mn(rec: Record<string, string>, tenant: Tenant = T0): Uint8Array {
  return encodeMetricName({ tenant, labels: labelsFromRecord(rec) });
}

const m = (type: MatchType, name: string, value: string): LabelMatcher => newMatcher(type, name, value);

/** Series used by the semantic tables; `id` labels name them in expectations. */
const SERIES: Record<string, string>[] = [
  { __name__: "up", job: "api", instance: "a:1", id: "1" },
  { __name__: "up", job: "api", instance: "b:1", id: "2" },
  { __name__: "up", job: "db", instance: "c:1", id: "3" },
  { __name__: "up", instance: "d:1", id: "4" }, // no job
  { __name__: "http_requests_total", job: "api", code: "200", id: "5" },
  { __name__: "http_requests_total", job: "api", code: "500", id: "6" },
  { __name__: "http_requests_total", job: "web", code: "", id: "7" }, // empty code == absent
  { __name__: "node_cpu", job: "node", mode: "idle", cpu: "0", id: "8" },
  { __name__: "node_cpu", job: "node", mode: "user", cpu: "0", id: "9" },
  { __name__: "node_cpu", job: "node\nline", mode: "a\u0000b\u0001c", cpu: "1", id: "10" }, // separator bytes in values
  { __name__: "weird name", "label with space": "ü✓😀", id: "11" },
];

async function openWith(series: Record<string, string>[], dir = tmpdir(), nameFilterMaxSeries = 0): Promise<IndexDB> {
  const db = await IndexDB.open(dir, { flushIntervalMs: 0, nameFilterMaxSeries });
  for (const s of series) db.getOrCreateTSID(mn(s), D);
  return db;
}

function ids(db: IndexDB, ms: LabelMatcher[], tenant = T0, minT = dayStart, maxT = dayStart + 3_600_000): string[] {
  return db
    .searchTSIDs(tenant, ms, minT, maxT, 1e9)
    .map((t) => {
      const name = db.metricNameByID(t.metricID)!;
      const rec = Object.fromEntries(decodeLabels(name));
      return rec.id ?? "?";
    })
    .sort((a, b) => Number(a) - Number(b));
}

function decodeLabels(name: Uint8Array): [string, string][] {
  const dec = new TextDecoder();
  const out: [string, string][] = [];
  let pos = 8;
  const rd = (): string => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = name[pos++]!;
      n += (b & 0x7f) * mul;
      mul *= 128;
      if (b < 0x80) break;
    }
    const s = dec.decode(name.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  while (pos < name.length) out.push([rd(), rd()]);
  return out;
}

/** Prometheus semantics evaluated naively: absent label == "". */
function naive(ms: LabelMatcher[]): string[] {
  return SERIES.filter((s) => ms.every((mm) => mm.matches(s[mm.name] ?? "")))
    .map((s) => s.id!)
    .sort((a, b) => Number(a) - Number(b));
}

const TABLE: [string, LabelMatcher[], string[]][] = [
  ["metric name", [m("=", "__name__", "up")], ["1", "2", "3", "4"]],
  ["name and label", [m("=", "__name__", "up"), m("=", "job", "api")], ["1", "2"]],
  ["!= keeps series without the label", [m("=", "__name__", "up"), m("!=", "job", "api")], ["3", "4"]],
  ["= '' selects series without the label", [m("=", "__name__", "up"), m("=", "job", "")], ["4"]],
  ["!= '' selects series with the label", [m("=", "__name__", "up"), m("!=", "job", "")], ["1", "2", "3"]],
  ["regex anchored", [m("=~", "job", "ap")], []],
  ["regex alternation (set fast path)", [m("=~", "job", "api|db")], ["1", "2", "3", "5", "6"]],
  ["regex prefix fast path", [m("=~", "instance", "a.*|b.*")], ["1", "2"]],
  ["regex literal prefix", [m("=~", "instance", "c:.*")], ["3"]],
  ["regex matching empty adds series without label", [m("=", "__name__", "up"), m("=~", "job", "db|")], ["3", "4"]],
  ["!~ keeps series without label", [m("=", "__name__", "up"), m("!~", "job", "a.*")], ["3", "4"]],
  ["!~ matching empty requires the label", [m("=", "__name__", "up"), m("!~", "job", "|api")], ["3"]],
  ["=~ .* is everything of the metric", [m("=", "__name__", "up"), m("=~", "job", ".*")], ["1", "2", "3", "4"]],
  ["=~ .+ requires the label", [m("=", "__name__", "up"), m("=~", "job", ".+")], ["1", "2", "3"]],
  ["!~ .* selects nothing", [m("=", "__name__", "up"), m("!~", "job", ".*")], []],
  ["__name__ regex", [m("=~", "__name__", "http_.*|node_.*"), m("=", "job", "node")], ["8", "9"]],
  ["empty value is absent", [m("=", "__name__", "http_requests_total"), m("=", "code", "")], ["7"]],
  ["value with newline and dot-all", [m("=~", "job", "node.line")], ["10"]],
  ["value with NUL and 0x01 bytes", [m("=", "mode", "a\u0000b\u0001c")], ["10"]],
  ["regex over NUL byte values", [m("=~", "mode", "a.b.c")], ["10"]],
  ["unicode names and values", [m("=", "label with space", "ü✓😀")], ["11"]],
  ["case-insensitive regex", [m("=~", "__name__", "(?i)UP")], ["1", "2", "3", "4"]],
  ["only negative matchers scan all series", [m("!=", "job", "api"), m("!~", "__name__", "node.*|up")], ["7", "11"]],
  ["no matchers = every series", [], SERIES.map((s) => s.id!)],
  ["unknown label = ''", [m("=", "nosuch", "")], SERIES.map((s) => s.id!)],
  ["unknown label value", [m("=", "job", "nosuch")], []],
  ["conflicting matchers on one label", [m("=", "job", "api"), m("!=", "job", "api")], []],
  ["character class", [m("=~", "cpu", "[01]"), m("!~", "mode", "idle")], ["9", "10"]],
];

describe("IndexDB matchers (Prometheus semantics)", () => {
  // one index resolving every matcher through the index, one checking costly matchers
  // against metric names once few candidates remain
  const dbs: IndexDB[] = [];
  const dbDirs: string[] = [];
  beforeAll(async () => {
    for (const nameFilter of [0, 1000]) {
      const d = fs.mkdtempSync(path.join(os.tmpdir(), "strata-indexdb-sem-"));
      dbDirs.push(d);
      dbs.push(await openWith(SERIES, d, nameFilter));
    }
  });
  afterAll(async () => {
    for (const db of dbs) await db.close();
    for (const d of dbDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it.each(TABLE)("%s", (_name, ms, want) => {
    expect(naive(ms)).toEqual(want); // the table itself follows Prometheus semantics
    for (const db of dbs) {
      expect(ids(db, ms)).toEqual(want); // per-day index
      expect(ids(db, ms, T0, 0, 1e15)).toEqual(want); // global index (long range)
    }
  });

  it("gives the same answers from disk parts after flush, merge and reopen", async () => {
    for (let i = 0; i < dbs.length; i++) {
      await dbs[i]!.forceMerge();
      await dbs[i]!.close();
      dbs[i] = await IndexDB.open(dbDirs[i]!, { flushIntervalMs: 0, nameFilterMaxSeries: i === 0 ? 0 : 1000 });
    }
    for (const [, ms, want] of TABLE) {
      for (const db of dbs) {
        expect(ids(db, ms)).toEqual(want);
        expect(ids(db, ms, T0, 0, 1e15)).toEqual(want);
      }
    }
  });
});

describe("IndexDB", () => {
  it("TSID encodes big-endian in compareTSID order", () => {
    const a: TSID = { accountID: 1, projectID: 2, metricGroupID: 0xffffffff, jobInstanceID: 4, metricID: 2 ** 40 + 5 };
    const b: TSID = { ...a, metricID: 2 ** 40 + 6 };
    const ba = new Uint8Array(TSID_SIZE);
    const bb = new Uint8Array(TSID_SIZE);
    encodeTSID(a, ba, 0);
    encodeTSID(b, bb, 0);
    expect(decodeTSID(ba, 0)).toEqual(a);
    expect(Buffer.compare(ba, bb)).toBe(-1);
    expect(compareTSID(a, b)).toBe(-1);
  });

  it("returns the same TSID for the same name, groups a metric's series, keeps tenants apart", async () => {
    const db = await openWith([]);
    const a = db.getOrCreateTSID(mn({ __name__: "x", job: "j", instance: "i" }), D);
    const b = db.getOrCreateTSID(mn({ __name__: "x", job: "j", instance: "i" }), D + 1);
    const c = db.getOrCreateTSID(mn({ __name__: "x", job: "j", instance: "i" }, T1), D);
    const d = db.getOrCreateTSID(mn({ __name__: "x", job: "k", instance: "i" }), D);
    expect(b).toEqual(a);
    expect(c.metricID).not.toBe(a.metricID);
    expect([c.accountID, c.projectID]).toEqual([1, 7]);
    expect(d.metricGroupID).toBe(a.metricGroupID);
    expect(d.jobInstanceID).not.toBe(a.jobInstanceID);
    expect(db.searchTSIDs(T1, [m("=", "__name__", "x")], 0, 1e15, 10)).toEqual([c]);
    expect(db.searchTSIDs(T0, [m("=", "__name__", "x")], 0, 1e15, 10)).toEqual([a, d].sort(compareTSID));
    expect(db.seriesCount(T0)).toBe(2);
    expect(db.seriesCount(T1)).toBe(1);
    await db.close();
  });

  it("rejects malformed metric names with a typed error", async () => {
    const db = await openWith([]);
    expect(() => db.getOrCreateTSID(new Uint8Array([0, 0, 0]), D)).toThrow(expect.objectContaining({ code: "STRATA_CORRUPT_DATA" }));
    expect(() => db.getOrCreateTSID(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 5, 1]), D)).toThrow(
      expect.objectContaining({ code: "STRATA_CORRUPT_DATA" }),
    );
    const huge = mn({ __name__: "big", v: "x".repeat(70_000) });
    expect(() => db.getOrCreateTSID(huge, D)).toThrow(expect.objectContaining({ code: "STRATA_LABEL_TOO_LONG" }));
    expect(db.metrics().mergeset_items_added_total).toBe(0); // nothing half-written
    await db.close();
  });

  it("enforces maxSeries with STRATA_LIMIT_EXCEEDED", async () => {
    const db = await openWith(SERIES);
    expect(() => db.searchTSIDs(T0, [m("=", "__name__", "up")], dayStart, dayStart, 3)).toThrow(
      expect.objectContaining({ code: "STRATA_LIMIT_EXCEEDED" }),
    );
    expect(db.searchTSIDs(T0, [m("=", "__name__", "up")], dayStart, dayStart, 4)).toHaveLength(4);
    await db.close();
  });

  it("per-day index only returns series with samples on the searched days", async () => {
    const db = await openWith([]);
    db.getOrCreateTSID(mn({ __name__: "a", d: "1" }), D);
    db.getOrCreateTSID(mn({ __name__: "a", d: "2" }), D + 1);
    db.getOrCreateTSID(mn({ __name__: "a", d: "3" }), D + 5);
    db.getOrCreateTSID(mn({ __name__: "a", d: "1" }), D + 5);
    const q = (minDay: number, maxDay: number): number => db.searchTSIDs(T0, [m("=", "__name__", "a")], minDay * DAY, maxDay * DAY + 1, 100).length;
    expect(q(D, D)).toBe(1);
    expect(q(D + 1, D + 1)).toBe(1);
    expect(q(D, D + 1)).toBe(2);
    expect(q(D + 2, D + 4)).toBe(0);
    expect(q(D + 5, D + 5)).toBe(2);
    expect(q(D, D + 5)).toBe(3);
    expect(q(0, D + 100)).toBe(3); // global fallback
    expect(db.labelValues(T0, "d", [], (D + 5) * DAY, (D + 5) * DAY, 0)).toEqual(["1", "3"]);
    expect(db.labelValues(T0, "d", [], 0, 1e15, 0)).toEqual(["1", "2", "3"]);
    await db.close();
  });

  it("deleted series never come back, also after restart; re-adding creates a new metricID", async () => {
    const dir = tmpdir();
    let db = await openWith(SERIES, dir);
    const before = db.searchTSIDs(T0, [m("=", "__name__", "up"), m("=", "job", "api")], 0, 1e15, 10);
    expect(db.deleteSeries(T0, [m("=", "__name__", "up"), m("=", "job", "api")])).toBe(2);
    expect(db.deleteSeries(T0, [m("=", "__name__", "up"), m("=", "job", "api")])).toBe(0);
    for (const t of before) expect(db.isDeleted(t.metricID)).toBe(true);
    expect(ids(db, [m("=", "__name__", "up")])).toEqual(["3", "4"]);
    expect(db.labelValues(T0, "instance", [], 0, 1e15, 0)).toEqual(["c:1", "d:1"]);
    expect(db.labelValues(T0, "job", [m("=", "__name__", "up")], 0, 1e15, 0)).toEqual(["db"]);
    await db.flush();
    await db.close();
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(ids(db, [m("=", "__name__", "up")])).toEqual(["3", "4"]);
    expect(db.seriesCount(T0)).toBe(SERIES.length - 2);
    for (const t of before) expect(db.isDeleted(t.metricID)).toBe(true);
    const again = db.getOrCreateTSID(mn(SERIES[0]!), D);
    expect(before.map((t) => t.metricID)).not.toContain(again.metricID);
    expect(again.metricID).toBeGreaterThan(Math.max(...before.map((t) => t.metricID)));
    expect(ids(db, [m("=", "__name__", "up")])).toEqual(["1", "3", "4"]);
    await db.forceMerge();
    expect(ids(db, [m("=", "__name__", "up")])).toEqual(["1", "3", "4"]);
    await db.close();
  });

  it("labelNames and labelValues with matchers, time ranges and limits", async () => {
    const db = await openWith(SERIES);
    db.getOrCreateTSID(mn({ __name__: "later", zone: "z1" }), D + 3);
    expect(db.labelNames(T0, [], dayStart, dayStart, 0)).toEqual([
      "__name__",
      "code",
      "cpu",
      "id",
      "instance",
      "job",
      "label with space",
      "mode",
    ]);
    expect(db.labelNames(T0, [], 0, 1e15, 0)).toContain("zone");
    expect(db.labelNames(T0, [m("=", "__name__", "up")], 0, 1e15, 0)).toEqual(["__name__", "id", "instance", "job"]);
    expect(db.labelNames(T0, [], 0, 1e15, 3)).toEqual(["__name__", "code", "cpu"]);
    expect(db.labelValues(T0, "job", [], dayStart, dayStart, 0)).toEqual(["api", "db", "node", "node\nline", "web"]);
    expect(db.labelValues(T0, "job", [m("=~", "__name__", "up|node_cpu")], dayStart, dayStart, 2)).toEqual(["api", "db"]);
    expect(db.labelValues(T0, "__name__", [], (D + 3) * DAY, (D + 3) * DAY, 0)).toEqual(["later"]);
    expect(db.labelValues(T1, "job", [], 0, 1e15, 0)).toEqual([]);
    expect(db.labelValues(T0, "nosuch", [], 0, 1e15, 0)).toEqual([]);
    await db.close();
  });

  it("tsdbStatus counts a day's cardinality", async () => {
    const db = await openWith(SERIES);
    const st = db.tsdbStatus(T0, { date: D, topN: 2, focusLabel: "job" });
    expect(st.totalSeries).toBe(SERIES.length);
    const pairs = SERIES.reduce((n, s) => n + Object.values(s).filter((v) => v !== "").length, 0);
    expect(st.totalLabelValuePairs).toBe(pairs);
    expect(st.seriesCountByMetricName).toEqual([
      { name: "up", value: 4 },
      { name: "http_requests_total", value: 3 },
    ]);
    expect(st.seriesCountByLabelName).toEqual([
      { name: "__name__", value: 11 },
      { name: "id", value: 11 },
    ]);
    expect(st.seriesCountByFocusLabelValue).toEqual([
      { name: "api", value: 4 },
      { name: "node", value: 2 },
    ]);
    expect(st.seriesCountByLabelValuePair).toEqual([
      { name: "job=api", value: 4 },
      { name: "__name__=up", value: 4 },
    ].sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1)));
    expect(st.labelValueCountByLabelName[0]).toEqual({ name: "id", value: 11 });
    const f = db.tsdbStatus(T0, { date: D, topN: 10, matchers: [m("=", "__name__", "up")] });
    expect(f.totalSeries).toBe(4);
    expect(f.seriesCountByMetricName).toEqual([{ name: "up", value: 4 }]);
    expect(db.tsdbStatus(T0, { date: D + 1, topN: 10 }).totalSeries).toBe(0);
    await db.close();
  });

  it("metricIDs are monotonic and never reused across reopen (reserved ranges)", async () => {
    const dir = tmpdir();
    let db = await IndexDB.open(dir, { flushIntervalMs: 0, idReserve: 4 });
    const seen: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 6; i++) seen.push(db.getOrCreateTSID(mn({ __name__: "m", r: String(r), i: String(i) }), D).metricID);
      await db.close(); // closes without further adds: unflushed ids may be lost but never reused
      db = await IndexDB.open(dir, { flushIntervalMs: 0, idReserve: 4 });
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    await db.close();
  });

  it("reads stay consistent while flushes and merges run in the background", async () => {
    const dir = tmpdir();
    const db = await IndexDB.open(dir, { flushIntervalMs: 0, table: { maxPendingItems: 100, blockSize: 512, mergeFanIn: 4 } });
    const pending: Promise<void>[] = [];
    let n = 0;
    for (let round = 0; round < 15; round++) {
      for (let i = 0; i < 150; i++, n++) db.getOrCreateTSID(mn({ __name__: `r${n % 3}`, n: String(n) }), D);
      pending.push(db.flush());
      if (round % 4 === 3) pending.push(db.forceMerge());
      // while those run (they are awaiting I/O), every read sees every series added so far
      for (let k = 0; k < 3; k++) {
        const total = [0, 1, 2].reduce(
          (acc, j) => acc + db.searchTSIDs(T0, [m("=", "__name__", `r${j}`)], dayStart, dayStart, 1e6).length,
          0,
        );
        expect(total).toBe(n);
        expect(db.seriesCount(T0)).toBe(n);
        await new Promise((r) => setImmediate(r));
      }
    }
    await Promise.all(pending);
    expect(db.labelValues(T0, "n", [m("=", "__name__", "r1")], 0, 1e15, 0)).toHaveLength(n / 3);
    expect(db.metrics().mergeset_background_errors_total).toBe(0);
    await db.close();
  });

  it.each([1, 2, 3, 5])("finds a known series whose name and id items landed in different parts (%i pending items per part)", async (maxPendingItems) => {
    // A 1-byte name → TSID cache keeps nothing: every lookup reads the index. With a few pending
    // items per part, a series' `01` (name) and `02` (id → name) items often land in different
    // in-memory parts; the lookup confirms the name in the `01` item's part, else in all parts.
    const db = await IndexDB.open(tmpdir(), { flushIntervalMs: 0, tsidCacheBytes: 1, metricNameCacheBytes: 1, table: { maxPendingItems, maxInMemoryParts: 1000 } });
    const names = Array.from({ length: 40 }, (_, i) => mn({ __name__: "split", i: String(i) }));
    const ids = names.map((n) => db.getOrCreateTSID(n, D).metricID);
    db.searchMetricIDs(T0, [], 0, 1e15); // converts the last pending items
    for (let r = 0; r < 2; r++) expect(names.map((n) => db.getOrCreateTSID(n, D).metricID)).toEqual(ids);
    expect(db.metrics().series_created_total).toBe(names.length);
    await db.close();
  });

  it("a clean close saves the name → TSID cache; the next open uses it once", async () => {
    const dir = tmpdir();
    let db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    const names = Array.from({ length: 300 }, (_, i) => mn({ __name__: "cached", i: String(i) }));
    const tsids = names.map((n) => db.getOrCreateTSID(n, D));
    db.deleteSeries(T0, [m("=", "i", "7")]);
    for (const n of names) db.getOrCreateTSID(n, D); // refills the cache (i=7 gets a new id)
    const again7 = db.getOrCreateTSID(names[7]!, D);
    await db.close();
    expect(fs.existsSync(path.join(dir, "tsid-cache.bin"))).toBe(true);
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(fs.existsSync(path.join(dir, "tsid-cache.bin"))).toBe(false); // consumed
    for (let i = 0; i < names.length; i++) expect(db.getOrCreateTSID(names[i]!, D)).toEqual(i === 7 ? again7 : tsids[i]);
    expect(db.metrics().index_lookups_total).toBe(0);
    expect(db.metrics().series_created_total).toBe(0);
    // a damaged cache file is ignored
    await db.close();
    const f = path.join(dir, "tsid-cache.bin");
    const b = fs.readFileSync(f);
    b[40]! ^= 0xff;
    fs.writeFileSync(f, b);
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    for (let i = 0; i < names.length; i++) expect(db.getOrCreateTSID(names[i]!, D)).toEqual(i === 7 ? again7 : tsids[i]);
    expect(db.metrics().index_lookups_total).toBe(names.length);
    await db.close();
  });

  it("never reuses ids even if state.json is lost", async () => {
    const dir = tmpdir();
    let db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    let max = 0;
    for (let i = 0; i < 50; i++) max = Math.max(max, db.getOrCreateTSID(mn({ __name__: "s", i: String(i) }), D).metricID);
    await db.close();
    fs.rmSync(path.join(dir, "state.json"));
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(db.getOrCreateTSID(mn({ __name__: "s", i: "new" }), D).metricID).toBeGreaterThan(max);
    await db.close();
  });

  it("dropDaysBefore hides and, after a merge, removes old per-day entries", async () => {
    const db = await openWith([]);
    db.getOrCreateTSID(mn({ __name__: "old" }), D - 10);
    db.getOrCreateTSID(mn({ __name__: "new" }), D);
    await db.flush();
    const dropping = db.dropDaysBefore(D - 5);
    expect(db.labelValues(T0, "__name__", [], (D - 10) * DAY, D * DAY, 0)).toEqual(["new"]); // hidden at once
    await dropping;
    expect(db.metrics().mergeset_dropped_items_total).toBeGreaterThan(0); // and rewritten away
    await db.close();
  });

  it("prunes series without samples inside the retention from the global index too", async () => {
    const dir = tmpdir();
    let prunes = 0;
    const db = await IndexDB.open(dir, { flushIntervalMs: 0, onPrune: () => prunes++ });
    const old = db.getOrCreateTSID(mn({ __name__: "old", job: "gone" }), D - 10);
    const both = db.getOrCreateTSID(mn({ __name__: "both" }), D - 10);
    db.getOrCreateTSID(mn({ __name__: "both" }), D);
    db.getOrCreateTSID(mn({ __name__: "new" }), D);
    const delOld = db.getOrCreateTSID(mn({ __name__: "deleted_old" }), D - 10);
    expect(db.deleteSeries(T0, [m("=", "__name__", "deleted_old")])).toBe(1);
    await db.flush();
    const dropping = db.dropDaysBefore(D - 5);
    // Hidden at once, from every kind of lookup.
    expect(db.labelValues(T0, "__name__", [], 0, 1e15, 0)).toEqual(["both", "new"]);
    expect(db.labelNames(T0, [], 0, 1e15, 0)).toEqual(["__name__"]);
    expect(db.metricNameByID(old.metricID)).toBeUndefined();
    expect(prunes).toBe(1);
    await dropping;
    const mt = db.metrics();
    expect(mt.series_pruned_total).toBe(2); // "old" and the deleted "deleted_old"
    expect(mt.prune_pending).toBe(0);
    expect(mt.deleted_series).toBe(0); // its 06 item went with it
    expect(fs.existsSync(path.join(dir, "prune.bin"))).toBe(false);
    // A pruned name that comes back is a new series with a full set of items.
    const again = db.getOrCreateTSID(mn({ __name__: "old", job: "gone" }), D);
    expect(again.metricID).not.toBe(old.metricID);
    expect(again.metricID).not.toBe(delOld.metricID);
    expect(db.getOrCreateTSID(mn({ __name__: "both" }), D).metricID).toBe(both.metricID);
    await db.close();
    const re = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(re.labelValues(T0, "__name__", [], 0, 1e15, 0)).toEqual(["both", "new", "old"]);
    expect(re.labelValues(T0, "job", [], 0, 1e15, 0)).toEqual(["gone"]);
    expect(re.getOrCreateTSID(mn({ __name__: "old", job: "gone" }), D).metricID).toBe(again.metricID);
    expect(re.metricNameByID(old.metricID)).toBeUndefined();
    await re.close();
  });

  it("keeps a series that gets a sample while the prune set is computed", async () => {
    const db = await IndexDB.open(tmpdir(), { flushIntervalMs: 0 });
    const n = 70_000; // more than one scan chunk, so the scan yields to the event loop
    for (let i = 0; i < n; i++) db.getOrCreateTSID(mn({ __name__: "churn", i: String(i) }), D - 10);
    await db.flush();
    const dropping = db.dropDaysBefore(D - 5);
    // Runs while the scan is suspended: series 7 is written to on day D.
    const revived = db.getOrCreateTSID(mn({ __name__: "churn", i: "7" }), D);
    await dropping;
    expect(db.metrics().series_pruned_total).toBe(n - 1);
    expect(db.labelValues(T0, "i", [], 0, 1e15, 0)).toEqual(["7"]);
    expect(db.getOrCreateTSID(mn({ __name__: "churn", i: "7" }), D).metricID).toBe(revived.metricID);
    await db.close();
  });

  it("the prune scan seeks each tenant's first retained day instead of reading the days before", async () => {
    const db = await IndexDB.open(tmpdir(), { flushIntervalMs: 0 });
    for (let d = D - 10; d < D - 5; d++) for (let i = 0; i < 1000; i++) db.getOrCreateTSID(mn({ __name__: "old", i: String(i) }), d);
    for (let i = 0; i < 500; i++) db.getOrCreateTSID(mn({ __name__: "old", i: String(i) }, T1), D - 8);
    for (let i = 0; i < 10; i++) db.getOrCreateTSID(mn({ __name__: "kept", i: String(i) }), D);
    for (let i = 0; i < 5; i++) db.getOrCreateTSID(mn({ __name__: "kept", i: String(i) }, T1), D - 1);
    await db.flush();
    await db.dropDaysBefore(D - 5);
    const mt = db.metrics();
    expect(mt.series_pruned_total).toBe(1500);
    // the 15 retained day items plus the first old one of each tenant, not the 5500 old ones
    expect(mt.prune_scanned_day_items_total).toBeLessThanOrEqual(15 + 2);
    expect(db.labelValues(T1, "__name__", [], 0, 1e15, 0)).toEqual(["kept"]);
    await db.close();
  });

  it("finishes a prune that was interrupted (prune.bin) when it opens", async () => {
    const dir = tmpdir();
    const db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    const old = db.getOrCreateTSID(mn({ __name__: "old" }), D - 10);
    db.getOrCreateTSID(mn({ __name__: "new" }), D);
    await db.flush();
    const dropping = db.dropDaysBefore(D - 5);
    // The prune set is persisted before anything is rewritten: copy the directory as a crash would leave it.
    expect(fs.existsSync(path.join(dir, "prune.bin"))).toBe(true);
    const copy = path.join(tmpdir(), "crashed");
    fs.cpSync(dir, copy, { recursive: true });
    await dropping;
    await db.close();
    const re = await IndexDB.open(copy, { flushIntervalMs: 0 });
    expect(re.labelValues(T0, "__name__", [], 0, 1e15, 0)).toEqual(["new"]);
    expect(re.metricNameByID(old.metricID)).toBeUndefined();
    await re.forceMerge();
    expect(re.metrics().prune_pending).toBe(0);
    expect(re.metrics().mergeset_dropped_items_total).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(copy, "prune.bin"))).toBe(false);
    const again = re.getOrCreateTSID(mn({ __name__: "old" }), D);
    expect(again.metricID).toBeGreaterThan(old.metricID);
    await re.close();
  });

  it("snapshot() hard-links parts into a directory that opens as an equal index", async () => {
    const db = await openWith(SERIES);
    const snap = path.join(tmpdir(), "snap");
    await db.snapshot(snap);
    db.getOrCreateTSID(mn({ __name__: "after" }), D);
    const s = await IndexDB.open(snap, { flushIntervalMs: 0 });
    expect(s.labelValues(T0, "__name__", [], 0, 1e15, 0)).toEqual(["http_requests_total", "node_cpu", "up", "weird name"]);
    const x = s.getOrCreateTSID(mn({ __name__: "new-in-snap" }), D);
    const y = db.getOrCreateTSID(mn({ __name__: "after2" }), D);
    expect(x.metricID).toBeGreaterThan(0);
    expect(y.metricID).toBeGreaterThan(0);
    await s.close();
    await db.close();
  });

  it("exposes bounded caches in metrics()", async () => {
    const dir = tmpdir();
    const db = await IndexDB.open(dir, { flushIntervalMs: 0, tsidCacheBytes: 20_000, metricNameCacheBytes: 10_000 });
    for (let i = 0; i < 2000; i++) db.getOrCreateTSID(mn({ __name__: "c", i: String(i) }), D);
    db.searchTSIDs(T0, [m("=", "__name__", "c")], dayStart, dayStart, 1e6);
    const mt = db.metrics();
    expect(mt.tsid_cache_bytes).toBeLessThanOrEqual(20_000);
    expect(mt.metric_name_cache_bytes).toBeLessThanOrEqual(10_000);
    expect(mt.tsid_cache_cap_bytes).toBe(20_000);
    expect(mt.series_created_total).toBe(2000);
    // evicted names are found again in the index, not re-created
    for (let i = 0; i < 2000; i++) db.getOrCreateTSID(mn({ __name__: "c", i: String(i) }), D);
    expect(db.metrics().series_created_total).toBe(2000);
    expect(db.seriesCount(T0)).toBe(2000);
    await db.close();
  });

  it("a search resolving many series keeps their names, not the index blocks it read them from", async () => {
    const db = await IndexDB.open(tmpdir(), { flushIntervalMs: 0 });
    try {
      // Long names: the id → name items span many blocks of the on-disk part.
      const pad = "x".repeat(100);
      for (let i = 0; i < 5000; i++) db.getOrCreateTSID(mn({ __name__: "c", instance: `host-${i}.${pad}`, i: String(i) }), D);
      await db.flush();
      const before = db.metrics().mergeset_block_cache_bytes!;
      const found = db.searchTSIDs(T0, [m("=", "__name__", "c")], dayStart, dayStart, 1e6);
      expect(found.length).toBe(5000);
      const mt = db.metrics();
      // 5000 names of ~130 bytes (~650 KB of id → name items, 1.1 MB of cached blocks when they
      // were kept) were read: those blocks are not kept, the resolved entries are (in the
      // metricID → name cache). What stays is the __name__=c → metricIDs items (~200 KB).
      expect(mt.mergeset_block_cache_bytes! - before).toBeLessThan(300_000);
      expect(mt.metric_name_cache_bytes).toBeGreaterThan(5000 * 130);
      // and the names are right
      const byName = new Set(found.map((t) => decodeLabels(db.metricNameByID(t.metricID)!).find(([k]) => k === "i")![1]));
      expect(byName.size).toBe(5000);
    } finally {
      await db.close();
    }
  });
});
