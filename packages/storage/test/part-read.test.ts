import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TwoGenCache } from "@strata/core";
import type { BlockHeader } from "../src/block.js";
import { MAX_WINDOW_BYTES, Part, PartSearchHint, PartWriter } from "../src/part.js";
import { rmDir, tmpDir } from "./helpers.js";

describe("PartCursor read-ahead (merges)", () => {
  it("reads a part of many MiB through windows of at most MAX_WINDOW_BYTES a file, every block intact", () => {
    const dir = tmpDir();
    try {
      // 64 series × 8192 samples of random doubles: ~4 MiB of values, ~1 MiB of timestamps.
      const w = new PartWriter(dir, 0, true);
      const n = 8192;
      const ts = new Float64Array(n);
      const vals = new Float64Array(n);
      let seed = 1;
      const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
      for (let s = 0; s < 64; s++) {
        const tsid = new Uint8Array(24);
        tsid[23] = s;
        for (let i = 0; i < n; i++) {
          ts[i] = 1_700_000_000_000 + i * 1000 + Math.floor(rnd() * 900);
          vals[i] = rnd() * 1e6;
        }
        w.writeSamples(tsid, ts, vals, n);
      }
      const meta = w.finish().meta;
      expect(meta.valuesBytes).toBeGreaterThan(4 * MAX_WINDOW_BYTES * 4);
      const part = Part.open(dir, "p", new TwoGenCache<number, Uint8Array>(1 << 20, (_k, b) => b.length));
      try {
        const c = part.cursor();
        let blocks = 0;
        let most = 0;
        let bytes = 0;
        while (c.next()) {
          bytes += c.values().length + c.timestamps().length;
          most = Math.max(most, c.readAheadBytes);
          blocks++;
        }
        expect(blocks).toBe(64);
        expect(bytes).toBe(meta.valuesBytes + meta.timestampsBytes);
        expect(most).toBeGreaterThan(0);
        expect(most).toBeLessThanOrEqual(2 * MAX_WINDOW_BYTES);
        expect(MAX_WINDOW_BYTES).toBeLessThanOrEqual(128 << 10);
      } finally {
        part.release();
      }
    } finally {
      rmDir(dir);
    }
  });
});

describe("findBlocks with a search's hint (TSIDs in ascending order)", () => {
  it("finds the blocks it finds without one, across index blocks and time filters", () => {
    const dir = tmpDir();
    try {
      // 2,600 series of 1–3 blocks (some straddle the 1,024-header index blocks), later series
      // later in time (so that whole index blocks fall outside a search's range); every 7th
      // TSID is left out, so searches also ask for series the part does not hold.
      const w = new PartWriter(dir, 0, true);
      const tsidOf = (s: number): Uint8Array => {
        const t = new Uint8Array(24);
        t[3] = s % 5;
        t[9] = s >> 8;
        t[23] = s & 255;
        return t;
      };
      const order = Array.from({ length: 3000 }, (_, s) => s).sort((a, b) => Buffer.compare(tsidOf(a), tsidOf(b)));
      const t0 = 1_700_000_000_000;
      order.forEach((s, at) => {
        if (s % 7 === 3) return;
        for (let b = 0; b < 1 + (s % 3); b++) {
          const ts = Float64Array.from({ length: 4 }, (_, i) => t0 + (b * 4 + i + (s % 11) + 10 * Math.floor(at / 700)) * 15_000);
          w.writeSamples(tsidOf(s), ts, Float64Array.from(ts, (t) => t / 1000 + s), 4);
        }
      });
      w.finish();
      const part = Part.open(dir, "p", new TwoGenCache<number, Uint8Array>(1 << 20, (_k, b) => b.length));
      try {
        const headers = (tsid: Uint8Array, minT: number, maxT: number, hint?: PartSearchHint) => {
          const out: BlockHeader[] = [];
          part.findBlocks(tsid, minT, maxT, out, hint);
          return out.map((h) => [h.minT, h.maxT, h.count, h.tsOffset, h.valOffset]);
        };
        let found = 0;
        fc.assert(
          fc.property(
            fc.uniqueArray(fc.integer({ min: 0, max: 2999 }), { maxLength: 400 }),
            fc.integer({ min: 0, max: 60 }),
            fc.integer({ min: 0, max: 60 }),
            (picked, a, b) => {
              const minT = t0 + Math.min(a, b) * 15_000;
              const maxT = t0 + Math.max(a, b) * 15_000;
              const hint = new PartSearchHint();
              for (const s of order.filter((x) => picked.includes(x))) {
                const want = headers(tsidOf(s), minT, maxT);
                found += want.length;
                expect(headers(tsidOf(s), minT, maxT, hint)).toEqual(want);
              }
            },
          ),
          { numRuns: 200 },
        );
        expect(found).toBeGreaterThan(500);
      } finally {
        part.release();
      }
    } finally {
      rmDir(dir);
    }
  });
});
