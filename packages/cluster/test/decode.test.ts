import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter, type Tenant } from "@strata/core";
import { isStaleNaN, mergeSeriesBlocks, STALE_NAN, Storage, type RawBlock } from "@strata/storage";
import { decodeSeries, packJob, SampleArena } from "../src/decode.js";
import { runRollupJob } from "../src/rollup-job.js";
import { rollupSeries } from "@strata/promql";

/**
 * select's block decoding (inline and the packed form decode workers run) must give exactly what
 * storage's own mergeSeriesBlocks gives, bit for bit, for blocks from several parts and nodes
 * (replicas, overlaps, duplicate timestamps, NaN and stale markers).
 */

const tenant: Tenant = { accountID: 1, projectID: 0 };
const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b) => b.toString(16));

let dirs: string[] = [];
const nodes: Storage[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const dir = mkdtempSync(join(tmpdir(), "strata-cluster-decode-"));
    dirs.push(dir);
    nodes.push(await Storage.open(dir, { retentionMs: 100 * 365 * 86_400_000, flushIntervalMs: 3_600_000, diskFlushIntervalMs: 3_600_000, walFsyncIntervalMs: 0 }));
  }
});

afterAll(async () => {
  for (const n of nodes) await n.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

const sample = fc.record({
  t: fc.integer({ min: 0, max: 50_000 }),
  v: fc.oneof(
    fc.double({ noNaN: true }),
    fc.integer({ min: -1000, max: 1000 }).map((x) => x / 4),
    fc.constant(NaN),
    fc.constant(STALE_NAN),
  ),
  node: fc.integer({ min: 0, max: 1 }),
  part: fc.integer({ min: 0, max: 2 }),
});

/** A selection: its samples, minT, the width of [minT, maxT], -dedup.minScrapeInterval. */
const selection = [
  fc.array(sample, { minLength: 1, maxLength: 60 }),
  fc.integer({ min: -1000, max: 51_000 }),
  fc.integer({ min: 0, max: 60_000 }),
  fc.constantFrom(0, 1000, 7000),
] as const;

let seriesNo = 0;

/** Writes samples to the two nodes in up to three flushes each; returns all blocks of the series. */
async function blocksOf(samples: readonly { t: number; v: number; node: number; part: number }[]): Promise<RawBlock[]> {
  const name = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "m" }, { name: "n", value: String(seriesNo++) }]) });
  const vals = new Float64Array(1);
  for (let part = 0; part < 3; part++) {
    for (let node = 0; node < 2; node++) {
      const w = new RowsBatchWriter();
      let any = false;
      for (const s of samples) {
        if (s.node !== node || s.part !== part) continue;
        vals[0] = s.v; // through a typed array so the stale marker keeps its bits
        w.add(name, s.t, vals[0]);
        any = true;
      }
      if (!any) continue;
      nodes[node]!.addRowsSync(w.finish());
      await nodes[node]!.forceFlush();
    }
  }
  const blocks: RawBlock[] = [];
  const value = String(seriesNo - 1);
  for (const n of nodes) {
    const c = n.search(tenant, [newMatcher("=", "n", value)], -Infinity, Infinity);
    while (c.next()) blocks.push(...c.at().blocks);
    c.close();
  }
  return blocks;
}

describe("decodeSeries and the worker job format", () => {
  it("equal storage's mergeSeriesBlocks bit for bit", async () => {
    await fc.assert(
      fc.asyncProperty(
        ...selection,
        async (samples, minT, width, dedup) => {
          const blocks = await blocksOf(samples);
          const maxT = minT + width;
          const want = mergeSeriesBlocks(blocks, minT, maxT, dedup);
          const got = decodeSeries(blocks, minT, maxT, dedup);
          expect(Array.from(got.timestamps)).toEqual(Array.from(want.timestamps));
          expect(bits(got.values)).toEqual(bits(want.values));
          // The packed job for a worker, with an empty and a repeated series around it: its
          // count_over_time over [minT, maxT] counts the samples the merge keeps, stale markers aside.
          const r = runRollupJob({ ...packJob(7, [[], blocks, blocks], minT, maxT, dedup), func: "count_over_time", ends: new Float64Array([maxT]), range: maxT - minT + 1 });
          expect(r.id).toBe(7);
          const live = bits(want.values).filter((b) => b !== "7ff0000000000002" && b !== "7ff8000000000002").length;
          const rows = want.values.length === 0 ? 0 : 2;
          expect(r.rows).toBe(rows);
          for (let k = 0; k < rows; k++) {
            expect(r.index[k]).toBe(k + 1);
            expect(r.samples).toBe(2 * want.values.length);
            if (live > 0) expect([r.present[k], r.values[k]]).toEqual([1, live]);
            else expect(r.present[k]).toBe(0);
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 60_000);
});

/** Samples of ts/vs without stale markers (as the engine's matrix arguments see them). */
function live(ts: Float64Array, vs: Float64Array): [Float64Array, Float64Array] {
  const keep: number[] = [];
  for (let i = 0; i < vs.length; i++) if (!isStaleNaN(vs[i]!)) keep.push(i);
  return [Float64Array.from(keep, (i) => ts[i]!), Float64Array.from(keep, (i) => vs[i]!)];
}

const ROLLUPS = ["rate", "increase", "delta", "irate", "count_over_time", "last_over_time", "changes", "resets", "sum_over_time", "deriv"];

describe("selection by windows (SelectHints.windows)", () => {
  it("gives the engine exactly what the whole selection gives it, on random blocks and step/window grids", async () => {
    await fc.assert(
      fc.asyncProperty(
        ...selection,
        // On a 250 ms grid, like the samples, so that samples sit on window edges.
        fc.record({ first: fc.integer({ min: -8, max: 208 }), step: fc.integer({ min: 0, max: 36 }), count: fc.integer({ min: 1, max: 30 }), range: fc.integer({ min: 1, max: 48 }) }),
        async (raw, minT, width, dedup, grid) => {
          const samples = raw.map((x) => ({ ...x, t: x.t - (x.t % 250) }));
          const w = { first: grid.first * 250, step: grid.step * 250, count: grid.count, range: grid.range * 250 };
          const blocks = await blocksOf(samples);
          const maxT = minT + width;
          const windows = w.step === 0 ? { ...w, count: 1 } : w;
          const whole = decodeSeries(blocks, minT, maxT, dedup);
          const got = decodeSeries(blocks, minT, maxT, dedup, new SampleArena(), windows);
          const ends = Float64Array.from({ length: windows.count }, (_, k) => windows.first + k * windows.step);
          // Windows with gaps keep exactly the samples inside some window; without gaps, all.
          const inside = (t: number) => windows.count > 1 && windows.step <= windows.range ? true : ends.some((e) => t > e - windows.range && t <= e);
          const keep = Array.from(whole.timestamps.keys()).filter((i) => inside(whole.timestamps[i]!));
          expect(Array.from(got.timestamps)).toEqual(keep.map((i) => whole.timestamps[i]!));
          expect(bits(got.values)).toEqual(bits(Float64Array.from(keep, (i) => whole.values[i]!)));
          // Every rollup over those windows: bit-identical, inline and in a worker job.
          const [wt, wv] = live(whole.timestamps, whole.values);
          const [gt, gv] = live(got.timestamps, got.values);
          const meter = { samplesScanned: 0, sliceUsedUp: () => false };
          for (const func of ROLLUPS) {
            const want = { values: new Float64Array(ends.length), present: new Uint8Array(ends.length) };
            const mine = { values: new Float64Array(ends.length), present: new Uint8Array(ends.length) };
            rollupSeries(func, wt, wv, ends, windows.range, want.values, want.present, meter);
            rollupSeries(func, gt, gv, ends, windows.range, mine.values, mine.present, meter);
            expect([func, Array.from(mine.present)]).toEqual([func, Array.from(want.present)]);
            expect([func, bits(mine.values)]).toEqual([func, bits(want.values)]);
            const r = runRollupJob({ ...packJob(1, [blocks], minT, maxT, dedup), func, ends: new Float64Array(ends), range: windows.range });
            const rowPresent = r.rows === 0 ? new Uint8Array(ends.length) : r.present.subarray(0, ends.length);
            expect([func, Array.from(rowPresent)]).toEqual([func, Array.from(want.present)]);
            if (r.rows > 0) expect([func, bits(r.values.subarray(0, ends.length).map((v, k) => (rowPresent[k] ? v : 0)))]).toEqual([func, bits(want.values.map((v, k) => (want.present[k] ? v : 0)))]);
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});

describe("selection by windows over merged blocks", () => {
  // Blocks as long-range queries read them: merged (full codecs: radix-packed jittered
  // timestamps, bit-packed decimal deltas and lines), thousands of samples, several blocks.
  const shapes: Record<string, (i: number, r: () => number) => number> = {
    counter: (i, r) => Math.floor(i * 1234.5 + r() * 7) / 100,
    bytes: (i, r) => i * 4096 + Math.floor(r() * 1024) * 4,
    gauge: (i, r) => Math.round(Math.sin(i / 50) * 1e4 + r() * 10) / 10,
    resets: (i) => (i % 700) * 3 + (i % 1300 === 5 ? NaN : 0),
    stale: (i) => (i % 97 === 0 ? STALE_NAN : i / 4),
  };
  // Series on a perfect 15 s grid (timestamps stored as arithmetic progressions, read by
  // decodeGridWindows), one with a gap between its parts' time ranges and one single-sample block.
  const gridShapes: Record<string, (i: number, r: () => number) => number> = {
    "grid gauge": (i, r) => Math.round(Math.sin(i / 50) * 1e4 + r() * 10) / 10,
    "grid stale": (i) => (i % 97 === 0 ? STALE_NAN : i / 4),
  };
  let merged: { name: string; blocks: RawBlock[]; count: number }[] = [];

  beforeAll(async () => {
    merged = [];
    const node = nodes[0]!;
    let seed = 11;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const vals = new Float64Array(1);
    const jittered = (g: Record<string, (i: number, r: () => number) => number>, jitter: boolean) => Object.entries(g).map(([shape, f]) => ({ shape, f, jitter }));
    for (const { shape, f, jitter } of [...jittered(shapes, true), ...jittered(gridShapes, false)]) {
      const name = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "merged" }, { name: "shape", value: shape }]) });
      const count = 9000 + Math.floor(rand() * 4000);
      for (let part = 0; part < 3; part++) {
        const w = new RowsBatchWriter();
        for (let i = part; i < count; i += 3) {
          vals[0] = f(i, rand);
          w.add(name, 1_700_000_000_000 + i * 15_000 + (jitter ? Math.floor(rand() * 40) - 20 : 0), vals[0]);
        }
        node.addRowsSync(w.finish());
        await node.forceFlush();
      }
    }
    // A grid series whose blocks lie apart (a day later, another phase) and a block of one sample.
    const apart = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "merged" }, { name: "shape", value: "grid apart" }]) });
    for (const [from, n, phase] of [[0, 8192, 0], [8192 + 5760, 8192, 7000], [8192 + 5760 + 8192 + 200, 1, 3]] as const) {
      const w = new RowsBatchWriter();
      for (let i = 0; i < n; i++) {
        vals[0] = (from + i) % 13 === 0 ? STALE_NAN : Math.round(rand() * 1e4) / 100;
        w.add(apart, 1_700_000_000_000 + (from + i) * 15_000 + phase, vals[0]);
      }
      node.addRowsSync(w.finish());
      await node.forceFlush();
      await node.forceMerge();
    }
    await node.forceMerge();
    for (const shape of [...Object.keys(shapes), ...Object.keys(gridShapes), "grid apart"]) {
      const blocks: RawBlock[] = [];
      const c = node.search(tenant, [newMatcher("=", "shape", shape)], -Infinity, Infinity);
      while (c.next()) blocks.push(...c.at().blocks);
      c.close();
      merged.push({ name: shape, blocks, count: blocks.reduce((a, b) => a + b.count, 0) });
    }
  }, 60_000);

  it("keeps exactly the windows' samples of the whole selection, inline and in a worker job", () => {
    const t0 = 1_700_000_000_000;
    expect(merged.map((m) => m.blocks.length).every((n) => n >= 2)).toBe(true);
    // The grid series' timestamps are stored as arithmetic progressions (tag 2: Arith; 1: Const,
    // a block of one sample), so decodeGridWindows reads them.
    for (const m of merged.filter((x) => x.name.startsWith("grid"))) expect(m.blocks.every((b) => b.tsTag === 2 || (b.tsTag === 1 && b.count === 1))).toBe(true);
    expect(merged.find((x) => x.name === "grid apart")!.blocks.map((b) => b.count)).toEqual([8192, 8192, 1]);
    fc.assert(
      fc.property(
        fc.constantFrom(...merged.map((_, i) => i)),
        fc.record({ first: fc.integer({ min: -100, max: 14_000 }), step: fc.integer({ min: 0, max: 3000 }), count: fc.integer({ min: 1, max: 200 }), range: fc.integer({ min: 1, max: 40 }) }),
        fc.integer({ min: -200_000, max: 200_000_000 }),
        fc.constantFrom(0, 15_000),
        fc.boolean(),
        (m, grid, minOff, dedup, last) => {
          const { blocks } = merged[m]!;
          const windows = { first: t0 + grid.first * 15_000, step: grid.step * 1000, count: grid.step === 0 ? 1 : grid.count, range: grid.range * 15_000, last };
          const minT = t0 + minOff;
          const maxT = minT + 250_000_000;
          const whole = decodeSeries(blocks, minT, maxT, dedup);
          const got = decodeSeries(blocks, minT, maxT, dedup, new SampleArena(), windows);
          const ends = Float64Array.from({ length: windows.count }, (_, k) => windows.first + k * windows.step);
          const gaps = windows.count === 1 || windows.step > windows.range;
          const inWindow = (i: number, e: number) => whole.timestamps[i]! > e - windows.range && whole.timestamps[i]! <= e;
          // With `last`, a window keeps its last sample only (the next sample is not in it).
          const keep = Array.from(whole.timestamps.keys()).filter(
            (i) => !gaps || ends.some((e) => inWindow(i, e) && (!last || i + 1 === whole.timestamps.length || !inWindow(i + 1, e))),
          );
          expect(Array.from(got.timestamps)).toEqual(keep.map((i) => whole.timestamps[i]!));
          expect(bits(got.values)).toEqual(bits(Float64Array.from(keep, (i) => whole.values[i]!)));
          const r = runRollupJob({ ...packJob(1, [blocks], minT, maxT, dedup), func: "count_over_time", ends, range: windows.range });
          const [, wv] = live(got.timestamps, got.values);
          if (!last) expect(r.samples).toBe(got.values.length);
          if (!last && wv.length === 0) expect(r.rows === 0 || r.present.every((p) => p === 0)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe("SampleArena", () => {
  it("reuses released chunks, and never hands out pooled memory after its own release", () => {
    const a = new SampleArena();
    const x = a.take(100);
    x.fill(1);
    const big = a.take(1 << 20); // larger than a chunk: its own buffer, never pooled
    expect(big.length).toBe(1 << 20);
    expect(big.buffer).not.toBe(x.buffer);
    a.release();
    const b = new SampleArena();
    const y = b.take(100);
    expect(y.buffer).toBe(x.buffer); // the released chunk came back from the pool
    const late = a.take(100); // a late decode of the released query
    expect(late.buffer).not.toBe(y.buffer);
    late.fill(2);
    y.fill(3);
    expect(Array.from(new Set(y))).toEqual([3]);
    b.release();
  });

  it("decodeSeries gives equal samples through a shared, released and reused arena", async () => {
    const blocks = await blocksOf(Array.from({ length: 50 }, (_, i) => ({ t: i * 1000, v: i / 3, node: i % 2, part: i % 3 })));
    const want = mergeSeriesBlocks(blocks, 0, 60_000, 0);
    for (let round = 0; round < 3; round++) {
      const arena = new SampleArena();
      for (const [minT, maxT] of [[0, 60_000], [10_000, 20_000], [-5_000, 100_000]] as const) {
        const got = decodeSeries(blocks, minT, maxT, 0, arena);
        const w = mergeSeriesBlocks(blocks, minT, maxT, 0);
        expect(Array.from(got.timestamps)).toEqual(Array.from(w.timestamps));
        expect(bits(got.values)).toEqual(bits(w.values));
      }
      arena.release();
    }
    expect(want.timestamps.length).toBe(50);
  });
});
