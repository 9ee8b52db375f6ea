import * as fs from "node:fs";
import * as path from "node:path";
import { type LabelMatcher, type Tenant, decodeMetricName, encodeMetricName, labelsFromRecord, newMatcher } from "@strata/core";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { decodeBlockV2, encodeBlockV2 } from "../src/mergeset/block.js";
import { ByteBuffer } from "../src/bytes.js";
import { Table } from "../src/mergeset/index.js";
import { type BlockCodec, CODEC_BROTLI, CODEC_LZ4, codecFor } from "../src/mergeset/constants.js";
import { FilePart, PartWriter, newBlockCache } from "../src/mergeset/part.js";
import { IndexDB } from "../src/indexdb/index.js";
import { rmDir, tmpDir } from "./helpers.js";

const dirs: string[] = [];
const tmpdir = (): string => dirs[dirs.push(tmpDir("strata-index-format-")) - 1]!;
afterEach(() => dirs.splice(0).forEach(rmDir));

/** Sorted unique items (as Uint8Arrays), the way a block holds them. */
const sortedItems = fc
  .array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 200 })
  .map((arr) => {
    const uniq = new Map(arr.map((a) => [Buffer.from(a).toString("hex"), a]));
    return [...uniq.values()].sort((a, b) => Buffer.compare(a, b));
  });

/** Items sharing long prefixes, like index items (kind, tenant, label, value, metricID). */
const indexLikeItems = fc
  .array(
    fc.tuple(fc.integer({ min: 1, max: 5 }), fc.constantFrom("__name__", "job", "instance"), fc.string({ maxLength: 6 }), fc.nat({ max: 1e6 })),
    { minLength: 1, maxLength: 300 },
  )
  .map((rows) => {
    const items = rows.map(([k, n, v, id]) => {
      const b = Buffer.concat([Buffer.from([k, 0, 0, 0, 0]), Buffer.from(`${n}\u0001${v}\u0001`), Buffer.alloc(8)]);
      b.writeUIntBE(id, b.length - 6, 6);
      return new Uint8Array(b);
    });
    const uniq = new Map(items.map((a) => [Buffer.from(a).toString("hex"), a]));
    return [...uniq.values()].sort((a, b) => Buffer.compare(a, b));
  });

function roundTrip(items: Uint8Array[]): void {
  const data = Buffer.concat(items);
  const offs = [0];
  for (const it of items) offs.push(offs[offs.length - 1]! + it.length);
  const out = new ByteBuffer(16);
  encodeBlockV2(new Uint8Array(data), offs, items.length, out);
  const b = decodeBlockV2(out.view(), items.length, data.length);
  expect(b.n).toBe(items.length);
  expect(Buffer.from(b.data)).toEqual(data);
  expect([...b.offs]).toEqual(offs);
}

describe("mergeset block format 2 (and 3)", () => {
  it.each([
    ["arbitrary sorted items", sortedItems],
    ["index-like items", indexLikeItems],
  ])("round-trips %s", (_name, arb) => {
    fc.assert(fc.property(arb, roundTrip), { numRuns: 500 });
  });

  it("stores the prefix common to all items once", () => {
    const items = Array.from({ length: 100 }, (_, i) => new Uint8Array(Buffer.from(`03 tenant __name__=node_cpu_seconds_total ${String(i).padStart(3, "0")}`)));
    const out = new ByteBuffer(16);
    const offs = [0];
    for (const it of items) offs.push(offs[offs.length - 1]! + it.length);
    encodeBlockV2(new Uint8Array(Buffer.concat(items)), offs, items.length, out);
    // common prefix once (~45 bytes), then per item: a cpl, a length and ≤ 3 suffix bytes
    expect(out.len).toBeLessThan(45 + 100 * 5);
    roundTrip(items);
  });

  it("writes format-3 parts with compressed blocks and per-kind sizes in metadata.json", async () => {
    const dir = tmpdir();
    const t = await Table.open(dir, { flushIntervalMs: 0 });
    for (let i = 0; i < 20_000; i++) {
      t.add(new Uint8Array(Buffer.from(`\u0003\u0000\u0000tag\u0001value-${i % 50}\u0001${String(i).padStart(8, "0")}`)));
      if (i % 2 === 0) t.add(new Uint8Array(Buffer.from(`\u0005day${String(i).padStart(8, "0")}`)));
    }
    await t.flush();
    const [part] = fs.readdirSync(path.join(dir, "parts"));
    const meta = JSON.parse(fs.readFileSync(path.join(dir, "parts", part!, "metadata.json"), "utf8")) as {
      formatVersion: number;
      itemsBinBytes: number;
      kinds: Record<string, { items: number; bytes: number }>;
    };
    expect(meta.formatVersion).toBe(3);
    expect(meta.kinds["03"]!.items).toBe(20_000);
    expect(meta.kinds["05"]!.items).toBe(10_000);
    const sum = meta.kinds["03"]!.bytes + meta.kinds["05"]!.bytes;
    expect(Math.abs(sum - meta.itemsBinBytes)).toBeLessThanOrEqual(2); // rounding only
    // ~28 raw bytes per item; lz4 over the columns leaves a few
    expect(meta.itemsBinBytes).toBeLessThan(30_000 * 4);
    expect(t.kindSizes()).toEqual(meta.kinds);
    await t.close();
    const t2 = await Table.open(dir, { flushIntervalMs: 0 });
    const snap = t2.snapshot(true);
    const c = snap.cursor();
    c.seek(new Uint8Array([3]));
    let n = 0;
    while (c.next()) n++;
    expect(n).toBe(20_000);
    snap.release();
    await t2.close();
  });
});

describe("mergeset part format 3", () => {
  it.each<[string, number, boolean, BlockCodec]>([
    ["a small flush", 1000, true, { codec: CODEC_LZ4, quality: 0 }],
    ["a flush of 2^20 items (the in-memory cap while series are created)", 1 << 20, true, { codec: CODEC_LZ4, quality: 0 }],
    ["a small merge", (1 << 20) - 1, false, { codec: CODEC_LZ4, quality: 0 }],
    ["a merge of 2^20 items (what stays on disk)", 1 << 20, false, { codec: CODEC_BROTLI, quality: 2 }],
    ["a merge of 2^23 items (a big node's lasting parts)", 1 << 23, false, { codec: CODEC_BROTLI, quality: 4 }],
  ])("%s is written with the codec of its kind and size", (_name, items, flush, want) => {
    expect(codecFor(items, flush)).toEqual(want);
  });

  it.each<[string, BlockCodec]>([
    ["lz4", { codec: CODEC_LZ4, quality: 0 }],
    ["brotli", { codec: CODEC_BROTLI, quality: 1 }],
  ])("reads back blocks written with %s", async (_name, codec) => {
    const dir = path.join(tmpdir(), "part");
    const w = await PartWriter.create(dir, 1024, undefined, codec);
    const items = Array.from({ length: 3000 }, (_, i) => Buffer.from(`\u0003\u0000tag\u0001v-${i % 40}\u0001${String(i).padStart(8, "0")}`)).sort(Buffer.compare);
    for (const it of items) w.add(it, 0, it.length);
    await w.finish();
    const p = FilePart.open(dir, newBlockCache(1 << 20));
    const codecs = new Set<number>();
    const got: Buffer[] = [];
    for (let b = 0; b < p.blocksCount; b++) {
      const blk = p.block(b);
      for (let i = 0; i < blk.n; i++) got.push(Buffer.from(blk.data.subarray(blk.offs[i]!, blk.offs[i + 1]!)));
    }
    // the metaindex rows' codec byte: 4 crc, 8 offset, 4 size, 4 count, 4 itemsBytes, then codec
    const mi = fs.readFileSync(path.join(dir, "metaindex.bin"));
    let pos = 12;
    for (let b = 0; b < p.blocksCount; b++) {
      codecs.add(mi[pos + 24]!);
      pos += 25;
      const len = mi[pos]!; // first items here are < 128 bytes: one varint byte
      pos += 1 + len;
    }
    p.close();
    expect(got).toEqual(items);
    expect([...codecs].filter((c) => c !== 0)).toEqual([codec.codec]); // a short last block stays plain
  });
});

// ---- an index written by format 2 (test/fixtures/indexdb-v2, made by the code at c49651c: the
// series of the format-1 fixture below, flushed after day D and at close)

describe("index written by format 2", () => {
  it("is read as it is, then rewritten in format 3 by a merge with the same answers", async () => {
    const { dir, ids, db: first } = await openFixture("indexdb-v2", 2);
    let db = first;
    await db.forceMerge();
    expect(partVersions(dir)).toEqual([3]);
    await db.close();
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(range(0, 50, (i) => i !== 7).map((i) => db.getOrCreateTSID(fixtureName(i), D + 1).metricID)).toEqual(ids);
    expect(db.metrics().series_created_total).toBe(0);
    checkFixtureAnswers(db, true);
    await db.close();
  });
});

// ---- an index written by format 1 (test/fixtures/indexdb-v1, made by the code before format 2)

const T0: Tenant = { accountID: 0, projectID: 0 };
const T1: Tenant = { accountID: 1, projectID: 7 };
const D = 20_000;
const DAY = 86_400_000;
const FIXTURE = path.join(import.meta.dirname, "fixtures", "indexdb-v1");

/** The fixture's series: 0..39 got samples on day D, 0..19 and 40..49 on D+1, 0..4 of T1 on D+1; i=7 deleted. */
function fixtureName(i: number, t: Tenant = T0): Uint8Array {
  return encodeMetricName({ tenant: t, labels: labelsFromRecord({ __name__: `m_${i % 3}`, job: "node", instance: `h${i % 5}:9100`, i: String(i) }) });
}

function found(db: IndexDB, tenant: Tenant, ms: LabelMatcher[], minT: number, maxT: number): number[] {
  return db
    .searchTSIDs(tenant, ms, minT, maxT, 1e9)
    .map((t) => Number(decodeMetricName(db.metricNameByID(t.metricID)!).labels.find((l) => l.name === "i")!.value))
    .sort((a, b) => a - b);
}

const range = (lo: number, hi: number, f: (i: number) => boolean): number[] => Array.from({ length: hi - lo }, (_, k) => lo + k).filter(f);

/** `touched`: every T0 series got a sample on day D+1 since the fixture was written. */
function checkFixtureAnswers(db: IndexDB, touched: boolean): void {
  const m1 = [newMatcher("=", "__name__", "m_1")];
  expect(found(db, T0, m1, D * DAY, D * DAY + 3_600_000)).toEqual(range(0, 40, (i) => i % 3 === 1 && i !== 7));
  expect(found(db, T0, m1, (D + 1) * DAY, (D + 1) * DAY + 3_600_000)).toEqual(range(0, 50, (i) => i % 3 === 1 && i !== 7 && (touched || i < 20 || i >= 40)));
  expect(found(db, T0, [newMatcher("=", "instance", "h2:9100")], 0, 100 * 365 * DAY)).toEqual(range(0, 50, (i) => i % 5 === 2 && i !== 7));
  expect(found(db, T1, [newMatcher("=~", "__name__", ".+")], (D + 1) * DAY, (D + 1) * DAY + 1)).toEqual([0, 1, 2, 3, 4]);
  expect(found(db, T1, [newMatcher("=~", "__name__", ".+")], D * DAY, D * DAY + 1)).toEqual([]);
  expect(db.labelValues(T0, "instance", [], D * DAY, D * DAY + 1, 0)).toEqual(["h0:9100", "h1:9100", "h2:9100", "h3:9100", "h4:9100"]);
}

function partVersions(dir: string): number[] {
  const pj = JSON.parse(fs.readFileSync(path.join(dir, "table", "parts.json"), "utf8")) as { parts: string[] };
  return pj.parts.map((p) => (JSON.parse(fs.readFileSync(path.join(dir, "table", "parts", p, "metadata.json"), "utf8")) as { formatVersion: number }).formatVersion);
}

/**
 * A copy of a fixture index whose two parts are in `format`, opened, its answers checked, and
 * its live series resolved on day D+1 without creating any (format 1: through the old `01 |
 * hash | TSID` items).
 */
async function openFixture(name: string, format: number): Promise<{ dir: string; db: IndexDB; ids: number[] }> {
  const dir = tmpdir();
  fs.cpSync(path.join(import.meta.dirname, "fixtures", name), dir, { recursive: true });
  expect(partVersions(dir)).toEqual([format, format]);
  const db = await IndexDB.open(dir, { flushIntervalMs: 0 });
  checkFixtureAnswers(db, false);
  const ids = range(0, 50, (i) => i !== 7).map((i) => db.getOrCreateTSID(fixtureName(i), D + 1).metricID);
  expect(db.metrics().series_created_total).toBe(0);
  expect(new Set(ids).size).toBe(49);
  return { dir, db, ids };
}

describe("index written by format 1", () => {
  it("is read as it is, then rewritten in format 3 by a merge with the same answers", async () => {
    const { dir, ids, db: first } = await openFixture("indexdb-v1", 1);
    let db = first;
    expect(db.getOrCreateTSID(fixtureName(3, T1), D + 1).metricID).not.toBe(ids[3]);
    expect(db.metrics().series_created_total).toBe(0);
    // a deleted name comes back as a new series
    const back = db.getOrCreateTSID(fixtureName(7), D + 1);
    expect(db.metrics().series_created_total).toBe(1);
    expect(ids).not.toContain(back.metricID);
    expect(db.kindSizes().old!.items).toBeGreaterThan(0);

    await db.forceMerge();
    expect(partVersions(dir)).toEqual([3]);
    expect(db.kindSizes().old).toBeUndefined();
    await db.close();
    fs.rmSync(path.join(dir, "tsid-cache.bin"), { force: true }); // resolve through the index again
    db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    expect(range(0, 50, (i) => i !== 7).map((i) => db.getOrCreateTSID(fixtureName(i), D + 1).metricID)).toEqual(ids);
    expect(db.getOrCreateTSID(fixtureName(7), D + 1).metricID).toBe(back.metricID);
    expect(db.metrics().series_created_total).toBe(0);
    const m7 = found(db, T0, [newMatcher("=", "i", "7")], (D + 1) * DAY, (D + 1) * DAY + 1);
    expect(m7).toEqual([7]);
    db.deleteSeries(T0, [newMatcher("=", "i", "7")]);
    checkFixtureAnswers(db, true);
    await db.close();
  });

  it("new series in an old index get the format-2 name item (hash and metricID only)", async () => {
    const dir = tmpdir();
    fs.cpSync(FIXTURE, dir, { recursive: true });
    const db = await IndexDB.open(dir, { flushIntervalMs: 0 });
    const name = fixtureName(100);
    const tsid = db.getOrCreateTSID(name, D + 1);
    await db.forceMerge();
    const sizes = db.kindSizes();
    // 55 old name items of 33 bytes (deleted series keep theirs) and one new of 17 share the kind
    expect(sizes.name_to_tsid!.items).toBe(56);
    await db.close();
    const t = await Table.open(path.join(dir, "table"), { flushIntervalMs: 0 });
    const snap = t.snapshot(true);
    const c = snap.cursor();
    c.seek(new Uint8Array([1]));
    const lens = new Map<number, number>();
    let last: Uint8Array | undefined;
    while (c.next()) {
      lens.set(c.length, (lens.get(c.length) ?? 0) + 1);
      if (c.length === 17) last = c.item.slice();
    }
    snap.release();
    await t.close();
    expect(Object.fromEntries(lens)).toEqual({ 33: 55, 17: 1 });
    expect(Buffer.from(last!).readUIntBE(11, 6)).toBe(tsid.metricID);
  });
});
