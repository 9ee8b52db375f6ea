import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter, type Tenant } from "@strata/core";
import { BlockCutter, decodeBlock, STALE_NAN, Storage, type RawBlock } from "../src/index.js";

/**
 * BlockCutter (Search_v1's cut_blocks): a block cut to [minT, maxT] holds exactly the samples of
 * the whole block inside that range, bit for bit, whatever the block's codecs (merged parts:
 * timestamps on a perfect grid or jittered, decimal gauges, counters, NaN and stale markers).
 */

const tenant: Tenant = { accountID: 0, projectID: 0 };
const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b) => b.toString(16));
const T0 = 1_700_000_000_000;
const N = 6000;
let dir = "";
let storage: Storage;
const blocks: RawBlock[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "strata-block-cut-"));
  storage = await Storage.open(dir, { retentionMs: 100 * 365 * 86_400_000, flushIntervalMs: 3_600_000, diskFlushIntervalMs: 3_600_000, walFsyncIntervalMs: 0 });
  const kinds: [string, (i: number) => number, (i: number) => number][] = [
    ["grid gauge", (i) => T0 + i * 15_000, (i) => Math.round(Math.sin(i / 50) * 1000) / 100],
    ["jittered counter", (i) => T0 + i * 15_000 + ((i * 7919) % 13), (i) => i * 3 + (i % 5)],
    ["grid floats with NaN and stale markers", (i) => T0 + i * 15_000, (i) => (i % 97 === 0 ? STALE_NAN : i % 89 === 0 ? NaN : Math.sqrt(i) * 1.1)],
  ];
  const vals = new Float64Array(1);
  for (let half = 0; half < 2; half++) {
    const w = new RowsBatchWriter();
    for (const [name, t, v] of kinds) {
      const mn = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "m" }, { name: "kind", value: name }]) });
      for (let i = half * (N / 2); i < (half + 1) * (N / 2); i++) {
        vals[0] = v(i); // through a typed array so the stale marker keeps its bits
        w.add(mn, t(i), vals[0]);
      }
    }
    storage.addRowsSync(w.finish());
    await storage.forceFlush();
  }
  await storage.forceMerge();
  const c = storage.search(tenant, [newMatcher("=", "__name__", "m")], -Infinity, Infinity);
  while (c.next()) blocks.push(...c.at().blocks);
  c.close();
});

afterAll(async () => {
  await storage?.close();
  rmSync(dir, { recursive: true, force: true });
});

function decoded(b: RawBlock): { ts: Float64Array; vals: Float64Array } {
  const ts = new Float64Array(b.count);
  const vals = new Float64Array(b.count);
  decodeBlock(b, ts, vals);
  return { ts, vals };
}

describe("BlockCutter", () => {
  it("keeps exactly the block's samples inside the range, bit for bit", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.every((b) => b.count > 1000)).toBe(true);
    const cutter = new BlockCutter();
    let cut = 0;
    for (const b of blocks) {
      const whole = decoded(b);
      const span = b.maxT - b.minT;
      // Ranges at the ends, inside, on sample timestamps and between them, past the block.
      const ranges: [number, number][] = [[b.maxT - 300_000, b.maxT], [b.maxT - 300_001, b.maxT + 60_000], [b.minT - 1000, b.minT + 45_000], [b.minT + 1, b.minT + 15_000]];
      for (let k = 0; k < 40; k++) {
        const lo = b.minT + Math.floor(((k * 7919) % 1000) / 1000 * span) + (k % 3) - 1;
        ranges.push([lo, lo + ((k * 104_729) % 900_000)]);
      }
      for (const [minT, maxT] of ranges) {
        const got = cutter.cut(b, minT, maxT);
        const keep: number[] = [];
        for (let i = 0; i < b.count; i++) if (whole.ts[i]! >= minT && whole.ts[i]! <= maxT) keep.push(i);
        if (keep.length === 0 || keep.length === b.count) {
          expect(got).toBe(b);
          continue;
        }
        cut++;
        expect(got.count).toBe(keep.length);
        expect([got.minT, got.maxT]).toEqual([whole.ts[keep[0]!], whole.ts[keep[keep.length - 1]!]]);
        const g = decoded(got);
        expect(Array.from(g.ts)).toEqual(keep.map((i) => whole.ts[i]!));
        expect(bits(g.vals)).toEqual(bits(Float64Array.from(keep, (i) => whole.vals[i]!)));
      }
    }
    expect(cut).toBeGreaterThan(100);
  });

  it("hands back the block itself when the range covers it", () => {
    const b = blocks[0]!;
    expect(new BlockCutter().cut(b, b.minT, b.maxT)).toBe(b);
    expect(new BlockCutter().cut(b, b.minT - 1, b.maxT + 1)).toBe(b);
  });
});
