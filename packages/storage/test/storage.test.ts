import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_TENANT, newMatcher } from "@strata/core";
import { ByteBuffer, deduplicateSamples, marshalBlock, MEMORY_SHARES, memoryCaps, mergeSeriesBlocks, normalizeSamples, STALE_NAN, unmarshalBlock, isStaleNaN } from "@strata/storage";
import { batchOf, dump, nameBytes, openTestStorage, rmDir, tmpDir } from "./helpers.js";

const T0 = Date.UTC(2026, 10, 20);

/** The fields of a data part's metadata.json these tests read (docs/format/storage.md). */
interface DataPartMeta {
  readonly blocks: number;
  readonly indexBytes: number;
  readonly dedupIntervalMs: number;
  readonly fastLayouts?: boolean;
  readonly rawIndex?: boolean;
}

/**
 * metadata.json of every data part under `dir`/data: only the parts a partition's parts.json
 * lists. A part a flush or merge is still writing has a directory too, and its metadata.json
 * may be half-written while a test polls.
 */
function dataPartMetas(dir: string): DataPartMeta[] {
  for (let attempt = 1; ; attempt++) {
    try {
      return listedDataPartMetas(dir);
    } catch (err) {
      // A merge removed a listed part between reading parts.json and its metadata.json: read again.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || attempt === 100) throw err;
    }
  }
}

function listedDataPartMetas(dir: string): DataPartMeta[] {
  const out: DataPartMeta[] = [];
  const data = path.join(dir, "data");
  for (const f of fs.readdirSync(data, { recursive: true, encoding: "utf8" })) {
    if (path.basename(f) !== "parts.json") continue;
    const partition = path.join(data, path.dirname(f));
    const listed = JSON.parse(fs.readFileSync(path.join(data, f), "utf8")) as { parts: string[] };
    for (const name of listed.parts) {
      const m = JSON.parse(fs.readFileSync(path.join(partition, name, "metadata.json"), "utf8")) as Partial<DataPartMeta>;
      if (m.dedupIntervalMs !== undefined) out.push(m as DataPartMeta);
    }
  }
  return out;
}

const now = () => T0 + 86_400_000;

describe("dedup and duplicate rules", () => {
  const f = (ts: number[], vs: number[], interval: number, wantT: number[], wantV: number[]): void => {
    const t = Float64Array.from(ts);
    const v = Float64Array.from(vs);
    let n = normalizeSamples(t, v, t.length);
    n = deduplicateSamples(t, v, n, interval);
    expect(Array.from(t.subarray(0, n))).toEqual(wantT);
    expect(Array.from(v.subarray(0, n)).map(String)).toEqual(wantV.map(String));
  };
  it.each([
    ["no dedup keeps all distinct", [1, 2, 3], [1, 2, 3], 0, [1, 2, 3], [1, 2, 3]],
    ["unsorted input is ordered", [3, 1, 2], [30, 10, 20], 0, [1, 2, 3], [10, 20, 30]],
    ["equal ts keeps largest", [5, 5, 5], [1, 9, 3], 0, [5], [9]],
    ["equal ts: non-stale beats stale", [5, 5], [STALE_NAN, -1], 0, [5], [-1]],
    ["equal ts: number beats NaN", [5, 5], [NaN, -100], 0, [5], [-100]],
    ["interval keeps last of (k*d-d, k*d]", [1, 5, 10, 11, 19, 20, 21], [1, 2, 3, 4, 5, 6, 7], 10, [10, 20, 21], [3, 6, 7]],
    ["interval boundary inclusive at k*d", [10, 20], [1, 2], 10, [10, 20], [1, 2]],
    ["interval with out-of-order and dup", [15, 12, 15], [1, 2, 3], 10, [15], [3]],
    ["interval 15s on 10s scrape", [0, 10_000, 20_000, 30_000, 40_000], [0, 1, 2, 3, 4], 15_000, [0, 10_000, 30_000, 40_000], [0, 1, 3, 4]],
  ])("%s", (_name, ts, vs, interval, wantT, wantV) => f(ts, vs, interval, wantT, wantV));

  it("stale marker is recognised", () => {
    expect(isStaleNaN(STALE_NAN)).toBe(true);
    expect(isStaleNaN(NaN)).toBe(false);
    expect(isStaleNaN(1)).toBe(false);
  });
});

describe("memory caps (memoryCaps)", () => {
  const MiB = 2 ** 20;
  it.each([
    // allowed memory → in-memory parts before a disk flush: 2% of it, at least 4 MiB, at most 64 MiB
    [100 * MiB, 4 * MiB],
    [1024 * MiB, Math.floor(1024 * MiB * MEMORY_SHARES.inmemoryParts)],
    [2900 * MiB, Math.floor(2900 * MiB * MEMORY_SHARES.inmemoryParts)],
    [16 * 1024 * MiB, 64 * MiB],
  ])("allowed %i bytes: in-memory parts up to %i bytes", (allowed, want) => {
    expect(memoryCaps(allowed).maxInmemoryPartsBytes).toBe(want);
    expect(memoryCaps(allowed).indexOptions.maxInmemoryPartsBytes).toBe(want);
  });
  it("an explicit cap wins over the share, for the data's and the index's in-memory parts alike", () => {
    const caps = memoryCaps(16 * 1024 * MiB, { maxInmemoryPartsBytes: 8 * MiB, maxIndexInmemoryPartsBytes: 16 * MiB });
    expect([caps.maxInmemoryPartsBytes, caps.indexOptions.maxInmemoryPartsBytes]).toEqual([8 * MiB, 16 * MiB]);
  });
});

describe("Storage basics", () => {
  it("a disk flush starts once the in-memory parts hold half of maxInmemoryPartsBytes, without waiting for the interval", async () => {
    const dir = tmpDir();
    try {
      const cap = 1 << 20;
      // maxRowsBuffer 1000: every batch below becomes an in-memory part (~90 KB) at once.
      const s = await openTestStorage(dir, { now, maxInmemoryPartsBytes: cap, maxRowsBuffer: 1000 });
      let batches = 0;
      while (s.metrics()["inmemory_parts_bytes"]! <= cap / 2 && s.metrics()["disk_flushes_total"] === 0) {
        const rows = [];
        for (let i = 0; i < 1000; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "half", i: String(batches * 1000 + i) }, t: T0, v: i });
        await s.addRows(batchOf(rows));
        batches++;
        expect(s.metrics()["inmemory_parts_bytes"]).toBeLessThan(cap);
      }
      // No more writes, the disk-flush timer an hour away: only the half-cap start flushes them.
      const done = (): boolean => s.metrics()["inmemory_parts_bytes"] === 0 && s.metrics()["disk_flushes_total"]! >= 1;
      for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(s.metrics()["inmemory_parts_bytes"]).toBe(0);
      expect(s.metrics()["disk_flushes_total"]).toBeGreaterThanOrEqual(1);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "half")], T0, T0 + 1e9).size).toBe(batches * 1000);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("the periodic disk flush comes diskFlushIntervalMs after the last disk flush, not right after one the in-memory parts started", async () => {
    const dir = tmpDir();
    try {
      const interval = 1000;
      const cap = 1 << 20;
      // Six batches of 1000 new series: six in-memory parts of ~90 KB each, past half the cap.
      const batches: Uint8Array[] = [];
      for (let b = 0; b < 6; b++) {
        const rows = [];
        for (let i = 0; i < 1000; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "cadence", i: String(b * 1000 + i) }, t: T0, v: i });
        batches.push(batchOf(rows));
      }
      const s = await openTestStorage(dir, { now, maxInmemoryPartsBytes: cap, maxRowsBuffer: 1000, diskFlushIntervalMs: interval });
      const flushes = (): number => s.metrics()["disk_flushes_total"]!;
      const waitFor = async (n: number): Promise<number> => {
        for (let i = 0; i < 1000 && flushes() < n; i++) await new Promise((r) => setTimeout(r, 5));
        expect(flushes()).toBeGreaterThanOrEqual(n);
        return performance.now();
      };
      // Halfway to the interval's first tick, the parts pass half the cap and start a flush.
      await new Promise((r) => setTimeout(r, interval / 2));
      for (const b of batches) await s.addRows(b);
      const first = await waitFor(1);
      expect(flushes()).toBe(1);
      // On a fixed grid the timer would flush again ~interval/2 later, writing a tiny part.
      const second = await waitFor(2);
      expect(second - first).toBeGreaterThanOrEqual(0.8 * interval);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "cadence")], T0, T0 + 1e9).size).toBe(6000);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("the rows buffer holds at most twice maxSeriesPerRowsFlush series: its drain scratch stays small, every row is kept", async () => {
    /** Adds 12 batches of 600 new series; the most series and bytes the rows buffer held after one. */
    const run = async (maxSeriesPerRowsFlush: number): Promise<{ most: number; mostBytes: number; max: number }> => {
      const dir = tmpDir();
      try {
        const s = await openTestStorage(dir, { now, maxSeriesPerRowsFlush });
        let most = 0;
        let mostBytes = 0;
        for (let b = 0; b < 12; b++) {
          const rows = [];
          for (let i = 0; i < 600; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "wide", i: String(b * 600 + i) }, t: T0 + b * 1000, v: i });
          await s.addRows(batchOf(rows));
          most = Math.max(most, s.metrics()["rows_buffer_series"]!);
          mostBytes = Math.max(mostBytes, s.metrics()["rows_buffer_bytes"]!);
        }
        await s.forceFlush();
        expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "wide")], T0, T0 + 1e9).size).toBe(7200);
        const max = s.metrics()["rows_buffer_max_series"]!;
        await s.close();
        return { most, mostBytes, max };
      } finally {
        rmDir(dir);
      }
    };
    const bounded = await run(1000);
    const unbounded = await run(1e9);
    expect(bounded.max).toBe(2000);
    expect(bounded.most).toBeGreaterThan(0);
    expect(bounded.most).toBeLessThanOrEqual(2000);
    expect(unbounded.most).toBe(7200);
    expect(bounded.mostBytes).toBeLessThan(unbounded.mostBytes);
  });

  it("a disk flush reports the bytes of the in-memory parts it dropped (onBuffersFreed), once each", async () => {
    const dir = tmpDir();
    try {
      const freed: number[] = [];
      const s = await openTestStorage(dir, { now, onBuffersFreed: (b) => freed.push(b) });
      const rows = [];
      for (let i = 0; i < 5000; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "m", i: String(i % 50) }, t: T0 + i * 1000, v: i });
      await s.addRows(batchOf(rows));
      await s.forceFlush();
      const m = s.metrics();
      expect(freed.length).toBe(1);
      expect(freed[0]).toBeGreaterThan(5000 * 8); // at least the values
      expect(m["inmemory_parts_freed_bytes_total"]).toBe(freed[0]);
      expect(m["inmemory_parts_bytes"]).toBe(0);
      await s.forceFlush(); // nothing in memory: nothing dropped
      expect(freed.length).toBe(1);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("writes, flushes, searches and decodes; blocks survive the wire form", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      const rows = [];
      for (let i = 0; i < 20000; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "m", job: "j", i: String(i % 3) }, t: T0 + i * 1000, v: i * 0.5 });
      await s.addRows(batchOf(rows));
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "m")], T0, T0 + 1e9).size).toBe(0);
      await s.forceFlush();
      const got = dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "m")], T0, T0 + 1e9);
      expect(got.size).toBe(3);
      let total = 0;
      for (const v of got.values()) total += v.length;
      expect(total).toBe(20000);
      const c = s.search(DEFAULT_TENANT, [newMatcher("=", "i", "1")], T0, T0 + 1e9);
      expect(c.next()).toBe(true);
      const bb = new ByteBuffer();
      for (const b of c.at().blocks) marshalBlock(b, bb);
      const back = [];
      let pos = 0;
      while (pos < bb.len) {
        const r = unmarshalBlock(bb.view(), pos);
        back.push(r.block);
        pos = r.next;
      }
      expect(mergeSeriesBlocks(back, T0, T0 + 1e9).timestamps.length).toBe(6667);
      expect(c.next()).toBe(false);
      await s.close();
      const s2 = await openTestStorage(dir, { now });
      // Reused block buffers give the same samples when each series is used before the next.
      const reuse = { reuseBlockBuffers: true };
      for (const opts of [{}, reuse]) expect(dump(s2, DEFAULT_TENANT, [newMatcher("=~", "__name__", "m|x")], T0, T0 + 1e9, opts)).toEqual(got);
      await s2.forceMerge();
      for (const opts of [{}, reuse]) expect(dump(s2, DEFAULT_TENANT, [newMatcher("=~", "__name__", "m|x")], T0, T0 + 1e9, opts)).toEqual(got);
      await s2.close();
    } finally {
      rmDir(dir);
    }
  });

  it("a wide search reads a part's blocks ahead instead of one read per payload, with the same samples", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      // 2000 series of 40 samples each, and a few of 20 000 (several blocks each, so windows
      // move while a series' earlier blocks are still held).
      const rows = [];
      for (let i = 0; i < 2000; i++) for (let k = 0; k < 40; k++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "w", i: String(i) }, t: T0 + k * 15_000, v: i * k });
      for (let i = 0; i < 3; i++) for (let k = 0; k < 20_000; k++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "w", i: `big${i}` }, t: T0 + k * 1000, v: Math.sin(k + i) });
      await s.addRows(batchOf(rows));
      await s.forceFlush();
      await s.forceMerge();
      const all = [newMatcher("=", "__name__", "w")];
      const copied = dump(s, DEFAULT_TENANT, all, T0, T0 + 1e9);
      const before = s.metrics();
      const reused = dump(s, DEFAULT_TENANT, all, T0, T0 + 1e9, { reuseBlockBuffers: true });
      const after = s.metrics();
      expect(reused).toEqual(copied);
      expect(reused.size).toBe(2003);
      const blocks = after.search_blocks_total! - before.search_blocks_total!;
      const reads = after.search_file_reads_total! - before.search_file_reads_total!;
      expect(blocks).toBeGreaterThanOrEqual(2003);
      // One read per timestamps and per values payload would be 2 × blocks.
      expect(reads).toBeLessThan(blocks / 4);
      // Windows that move while a big series' earlier blocks are held take buffers the cursor
      // is done with: the same search again allocates none (it did ~one per big block).
      const again = dump(s, DEFAULT_TENANT, all, T0, T0 + 1e9, { reuseBlockBuffers: true });
      expect(again).toEqual(copied);
      expect(s.metrics().search_read_buffers_total! - after.search_read_buffers_total!).toBe(0);
      // A narrow search reads only around what it needs.
      const one = dump(s, DEFAULT_TENANT, [newMatcher("=", "i", "1234")], T0, T0 + 1e9, { reuseBlockBuffers: true });
      expect([...one.values()][0]).toEqual(copied.get([...one.keys()][0]!));
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("forceMerge merges the index into one part as well", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      for (let b = 0; b < 3; b++) {
        await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "m", batch: String(b) }, t: T0 + b, v: b }]));
        await s.forceFlush();
      }
      expect(s.metrics().indexdb_mergeset_file_parts).toBe(3);
      await s.forceMerge();
      expect(s.metrics().indexdb_mergeset_file_parts).toBe(1);
      expect(s.metrics().indexdb_disk_items_name_to_tsid).toBe(3);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "m")], T0, T0 + 1e9).size).toBe(3);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("replays the WAL after a close without flush (simulated by a fresh open of a copied dir)", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "w" }, t: T0, v: 1 }]));
      // Read the WAL before close flushes it: copy dir state now.
      const { cpSync } = await import("node:fs");
      const copy = tmpDir();
      cpSync(dir, copy, { recursive: true });
      await s.close();
      const s2 = await openTestStorage(copy, { now });
      await s2.forceFlush();
      expect([...dump(s2, DEFAULT_TENANT, [newMatcher("=", "__name__", "w")], T0, T0 + 1).values()]).toEqual([[[T0, 1]]]);
      expect(s2.metrics().wal_replayed_rows_total).toBe(1);
      await s2.close();
      rmDir(copy);
    } finally {
      rmDir(dir);
    }
  });

  it("the WAL keeps lz4 payloads as given, and replays them and STRWAL01 segments of older versions", async () => {
    const { cpSync, readdirSync, readFileSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { crc32 } = await import("node:zlib");
    const { lz4Compress } = await import("@strata/encoding");
    const dir = tmpDir();
    const copy = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      const rows = Array.from({ length: 200 }, (_, i) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "z", i: String(i % 7) }, t: T0 + i, v: i }));
      const plain = batchOf(rows);
      const packed = lz4Compress(plain);
      await s.addRows(plain, packed);
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "z", i: "plain" }, t: T0, v: -1 }]));
      cpSync(dir, copy, { recursive: true });
      await s.close();
      const walDir = join(copy, "wal");
      const segs = readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort();
      const seg = readFileSync(join(walDir, segs[segs.length - 1]!));
      expect(seg.subarray(0, 8).toString()).toBe("STRWAL02");
      // First record: the lz4 payload itself, flagged in bit 31 of the length word.
      expect(seg.readUInt32LE(8)).toBe((packed.length | 0x80000000) >>> 0);
      expect(Buffer.compare(seg.subarray(16, 16 + packed.length), packed)).toBe(0);
      // An older version's segment: STRWAL01 with one plain record.
      const old = batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "z", i: "v1" }, t: T0, v: 7 }]);
      const hdr = Buffer.alloc(8);
      hdr.writeUInt32LE(old.length, 0);
      hdr.writeUInt32LE(crc32(old), 4);
      writeFileSync(join(walDir, "0000000000000000.wal"), Buffer.concat([Buffer.from("STRWAL01"), hdr, old]));
      const s2 = await openTestStorage(copy, { now });
      await s2.forceFlush();
      expect(s2.metrics().wal_replayed_rows_total).toBe(202);
      const got = dump(s2, DEFAULT_TENANT, [newMatcher("=", "__name__", "z")], T0, T0 + 1000);
      expect(got.size).toBe(9);
      let n = 0;
      for (const samples of got.values()) n += samples.length;
      expect(n).toBe(202);
      await s2.close();
    } finally {
      rmDir(copy);
      rmDir(dir);
    }
  });

  it("a torn lz4 WAL record ends its segment; the records before it replay", async () => {
    const { cpSync, readdirSync, readFileSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { lz4Compress } = await import("@strata/encoding");
    const dir = tmpDir();
    const copy = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      const b1 = batchOf(Array.from({ length: 50 }, (_, i) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "q" }, t: T0 + i, v: i })));
      const b2 = batchOf(Array.from({ length: 50 }, (_, i) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "q" }, t: T0 + 100 + i, v: i })));
      await s.addRows(b1, lz4Compress(b1));
      await s.addRows(b2, lz4Compress(b2));
      cpSync(dir, copy, { recursive: true });
      await s.close();
      const walDir = join(copy, "wal");
      const segs = readdirSync(walDir).filter((f) => f.endsWith(".wal")).sort();
      const path = join(walDir, segs[segs.length - 1]!);
      const seg = readFileSync(path);
      writeFileSync(path, seg.subarray(0, seg.length - 3));
      const s2 = await openTestStorage(copy, { now });
      await s2.forceFlush();
      expect(s2.metrics().wal_replayed_rows_total).toBe(50);
      expect(s2.metrics().wal_torn_segments_total).toBe(1);
      await s2.close();
    } finally {
      rmDir(copy);
      rmDir(dir);
    }
  });

  it("rows become searchable from in-memory parts after the periodic flush, before any disk flush", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now, flushIntervalMs: 50 });
      await s.addRows(batchOf([{ tenant: DEFAULT_TENANT, labels: { __name__: "fresh" }, t: T0, v: 3 }]));
      await new Promise((r) => setTimeout(r, 300));
      expect(s.metrics().inmemory_parts).toBeGreaterThan(0);
      expect(s.metrics().disk_rows).toBe(0);
      expect([...dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "fresh")], T0, T0).values()]).toEqual([[[T0, 3]]]);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("fresh parts below the merge threshold are merged once no new one has come for freshPartsMaxAgeMs", async () => {
    for (const maxAge of [150, 0]) {
      const dir = tmpDir();
      try {
        const s = await openTestStorage(dir, { now, flushIntervalMs: 20, diskFlushIntervalMs: 40, freshPartsMaxAgeMs: maxAge });
        const rows = (t: number) => Array.from({ length: 50 }, (_, k) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "fresh", i: String(k) }, t, v: k + t / 1e12 }));
        // Two fresh parts (cheap layouts), fewer than maxPartsPerPartition (8): no merge by count.
        await s.addRows(batchOf(rows(T0)));
        await s.forceFlush();
        await s.addRows(batchOf(rows(T0 + 1000)));
        await s.forceFlush();
        const want = dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "fresh")], T0, T0 + 1000);
        expect(want.size).toBe(50);
        // The disk flush timer schedules merges every 40 ms; wait for the merge (or 1 s without).
        const deadline = Date.now() + (maxAge > 0 ? 10_000 : 1000);
        while (Date.now() < deadline && !(dataPartMetas(dir).length === 1 && dataPartMetas(dir)[0]!.fastLayouts === false)) await new Promise((r) => setTimeout(r, 20));
        if (maxAge > 0) {
          expect(dataPartMetas(dir)).toEqual([expect.objectContaining({ blocks: 50, fastLayouts: false })]);
          expect(s.metrics().fresh_part_merges_total).toBeGreaterThanOrEqual(1);
        } else {
          expect(dataPartMetas(dir).map((m) => m.fastLayouts)).toEqual([true, true]);
          expect(s.metrics().fresh_part_merges_total).toBe(0);
        }
        expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "fresh")], T0, T0 + 1000)).toEqual(want);
        await s.close();
      } finally {
        rmDir(dir);
      }
    }
  });

  it("a disk flush copies the blocks of series found in one in-memory part, and merges the others", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now, flushIntervalMs: 20 });
      const rows = (from: number, to: number, t: number) =>
        Array.from({ length: to - from }, (_, k) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "cp", i: String(from + k) }, t, v: from + k + (t - T0) / 1000 }));
      const inmemParts = async (n: number): Promise<void> => {
        while (s.metrics().inmemory_parts !== n || s.metrics().rows_buffer_rows !== 0) await new Promise((r) => setTimeout(r, 10));
      };
      // Two in-memory parts: series 0..99 at T0, series 50..149 at T0 + 1 s.
      await s.addRows(batchOf(rows(0, 100, T0)));
      await inmemParts(1);
      await s.addRows(batchOf(rows(50, 150, T0 + 1000)));
      await inmemParts(2);
      await s.forceFlush();
      // 0..49 and 100..149 are in one source each: copied; 50..99 have a block in each part.
      expect(s.metrics().merge_blocks_copied_total).toBe(100);
      expect(s.metrics().merge_blocks_decoded_total).toBe(100);
      const want = new Map<string, [number, number][]>();
      for (let i = 0; i < 150; i++) {
        const samples: [number, number][] = [];
        if (i < 100) samples.push([T0, i]);
        if (i >= 50) samples.push([T0 + 1000, i + 1]);
        want.set(Buffer.from(nameBytes(DEFAULT_TENANT, { __name__: "cp", i: String(i) })).toString("hex"), samples);
      }
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "cp")], T0, T0 + 1000)).toEqual(want);
      // The flushed part keeps the cheap layouts and raw index blocks (72 bytes a block header),
      // read above from disk: a merge encodes every block fully and deflates its index blocks.
      expect(dataPartMetas(dir)).toEqual([expect.objectContaining({ blocks: 150, fastLayouts: true, rawIndex: true, indexBytes: 150 * 72 })]);
      await s.forceMerge();
      expect(s.metrics().merge_blocks_decoded_total).toBe(100 + 150);
      const merged = dataPartMetas(dir);
      expect(merged).toEqual([expect.objectContaining({ blocks: 150, fastLayouts: false })]);
      expect(merged[0]!.rawIndex).toBeUndefined();
      expect(merged[0]!.indexBytes).toBeLessThan(150 * 72);
      expect(dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "cp")], T0, T0 + 1000)).toEqual(want);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("a periodic rows flush runs in slices; rows (and new series) added meanwhile and a forceFlush keep every sample right", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now, flushIntervalMs: 10 });
      const N = 20_000;
      const rows = (k: number, from: number) =>
        Array.from({ length: N }, (_, i) => ({ tenant: DEFAULT_TENANT, labels: { __name__: "sl", i: String(from + i) }, t: T0 + k, v: from + i + k / 10 }));
      await s.addRows(batchOf(rows(0, 0)));
      // Let a periodic flush start (it takes many 5 ms slices for 20k series), then add rows of
      // the same and of new series while it may still be running, then flush everything.
      await new Promise((r) => setTimeout(r, 15));
      await s.addRows(batchOf(rows(1, 0)));
      await s.addRows(batchOf(rows(2, N)));
      await s.forceFlush();
      const got = dump(s, DEFAULT_TENANT, [newMatcher("=", "__name__", "sl")], T0, T0 + 10);
      expect(got.size).toBe(2 * N);
      // Series i has the values i (+ k/10 at T0 + k): each must hold exactly its own samples.
      const seen = new Set<number>();
      for (const samples of got.values()) {
        const old = samples[0]![0] === T0;
        const i = old ? samples[0]![1] : Math.round(samples[0]![1] - 0.2);
        expect(samples).toEqual(old ? [[T0, i], [T0 + 1, i + 0.1]] : [[T0 + 2, i + 0.2]]);
        expect(old ? i < N : i >= N).toBe(true);
        seen.add(i);
      }
      expect(seen.size).toBe(2 * N);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("a part a merge replaced leaves the index-block cache with its last reference", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      const readAll = (): void => {
        const c = s.search(DEFAULT_TENANT, [newMatcher("=", "__name__", "c")], T0, T0 + 10_000);
        while (c.next()) c.at();
      };
      for (let k = 0; k < 3; k++) {
        const rows = [];
        for (let i = 0; i < 500; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "c", i: String(i) }, t: T0 + k * 1000, v: k });
        await s.addRows(batchOf(rows));
        await s.forceFlush();
      }
      readAll();
      const threeParts = s.metrics().index_block_cache_bytes!;
      expect(threeParts).toBeGreaterThan(0);
      // A cursor opened before the merge keeps the old parts (and their cached blocks) alive.
      const c = s.search(DEFAULT_TENANT, [newMatcher("=", "__name__", "c")], T0, T0 + 10_000);
      await s.forceMerge();
      expect(s.metrics().small_parts).toBe(1);
      expect(s.metrics().index_block_cache_bytes).toBeGreaterThanOrEqual(threeParts);
      c.close();
      expect(s.metrics().index_block_cache_bytes).toBeLessThan(threeParts / 2);
      readAll();
      // One part holds the same series: about a third of the three parts' headers.
      expect(s.metrics().index_block_cache_bytes).toBeLessThan(threeParts / 2);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });

  it("an open cursor keeps its parts while a merge replaces them (consistent view)", async () => {
    const dir = tmpDir();
    try {
      const s = await openTestStorage(dir, { now });
      for (let k = 0; k < 3; k++) {
        const rows = [];
        for (let i = 0; i < 50; i++) rows.push({ tenant: DEFAULT_TENANT, labels: { __name__: "c", i: String(i) }, t: T0 + k * 1000, v: k });
        await s.addRows(batchOf(rows));
        await s.forceFlush();
      }
      expect(s.metrics().small_parts).toBe(3);
      const c = s.search(DEFAULT_TENANT, [newMatcher("=", "__name__", "c")], T0, T0 + 10_000);
      await s.forceMerge();
      expect(s.metrics().small_parts).toBe(1);
      let series = 0;
      while (c.next()) {
        series++;
        expect(Array.from(mergeSeriesBlocks(c.at().blocks, c.minT, c.maxT).values)).toEqual([0, 1, 2]);
      }
      expect(series).toBe(50);
      await s.close();
    } finally {
      rmDir(dir);
    }
  });
});
