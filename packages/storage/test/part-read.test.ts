import { describe, expect, it } from "vitest";
import { TwoGenCache } from "@strata/core";
import { MAX_WINDOW_BYTES, Part, PartWriter } from "../src/part.js";
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
