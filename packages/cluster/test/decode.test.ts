import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter, type Tenant } from "@strata/core";
import { mergeSeriesBlocks, STALE_NAN, Storage, type RawBlock } from "@strata/storage";
import { decodeSeries, packJob, SampleArena } from "../src/decode.js";
import { runRollupJob } from "../src/rollup-job.js";

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
        fc.array(sample, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: -1000, max: 51_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.constantFrom(0, 1000, 7000),
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
