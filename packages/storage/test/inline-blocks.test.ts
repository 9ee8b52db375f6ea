import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TwoGenCache } from "@strata/core";
import { decodeBlock, inlinePayloads, type BlockHeader, type RawBlock } from "../src/block.js";
import { mergeParts } from "../src/merge.js";
import { Part, PartWriter } from "../src/part.js";
import { decodeTSID } from "../src/tsid.js";
import { rmDir, tmpDir } from "./helpers.js";

// Inline one-sample blocks (docs/format/storage.md): fresh parts hold a series' lone sample in
// its block header, without payloads; every reader gives the same samples, bit for bit.

const STALE = new Float64Array(new Uint32Array([2, 0x7ff00000]).buffer)[0]!;
const T = 1_765_000_000_000;
const cache = (): TwoGenCache<number, Uint8Array> => new TwoGenCache<number, Uint8Array>(1 << 20, (_k, b) => b.length);
const mergeOpts = { dedupIntervalMs: 0, minTimestamp: -Infinity, isDeleted: () => false, aborted: () => false };

function tsidOf(s: number): Uint8Array {
  const tsid = new Uint8Array(24);
  tsid[11] = 7;
  tsid[23] = s;
  return tsid;
}

/** Series s (1..6): odd ones one sample, even ones three; series 3's sample is the stale marker. */
function samplesOf(s: number): { ts: number[]; vals: number[] } {
  const n = s % 2 === 1 ? 1 : 3;
  const ts: number[] = [];
  const vals: number[] = [];
  for (let i = 0; i < n; i++) {
    ts.push(T + s * 1000 + i * 15_000);
    vals.push(s === 3 ? STALE : s === 5 ? -0 : s * 1.5 + i);
  }
  return { ts, vals };
}

/** Float64 bit patterns (NaN payloads and -0 included) as hex strings. */
function bits(vals: ArrayLike<number>): string[] {
  const dv = new DataView(new ArrayBuffer(8));
  return Array.from(vals, (v) => {
    dv.setFloat64(0, v, true);
    return dv.getBigUint64(0, true).toString(16);
  });
}

/** Every series' samples of a part as a search reads them (findBlocks, payloads, decodeBlock). */
function searchAll(part: Part, series: number[]): Map<number, { ts: number[]; vals: string[] }> {
  const out = new Map<number, { ts: number[]; vals: string[] }>();
  for (const s of series) {
    const headers: BlockHeader[] = [];
    part.findBlocks(tsidOf(s), -Infinity, Infinity, headers);
    const ts: number[] = [];
    const vals: number[] = [];
    for (const h of headers) {
      const p = h.inline ? inlinePayloads(h) : { timestamps: part.readTimestamps(h).slice(), values: part.readValues(h).slice() };
      const b: RawBlock = { tsid: decodeTSID(tsidOf(s), 0), count: h.count, minT: h.minT, maxT: h.maxT, tsTag: h.tsTag, valTag: h.valTag, ...p };
      const bt = new Float64Array(b.count);
      const bv = new Float64Array(b.count);
      decodeBlock(b, bt, bv);
      ts.push(...bt);
      vals.push(...bv);
    }
    out.set(s, { ts, vals: bits(vals) });
  }
  return out;
}

const SERIES = [1, 2, 3, 4, 5, 6];
const expected = new Map(SERIES.map((s) => [s, { ts: samplesOf(s).ts, vals: bits(samplesOf(s).vals) }]));

/** Merges `parts` into a new part in `dir` (cheap layouts unless `compress`). */
async function mergeInto(dir: string, parts: Part[], compress: boolean): Promise<Part> {
  mkdirSync(dir);
  const w = new PartWriter(dir, 0, compress);
  await mergeParts(parts, w, mergeOpts);
  await w.finishAsync();
  return Part.open(dir, "m", cache());
}

describe("inline one-sample blocks", () => {
  it("fresh parts keep a lone sample in its header; disk flush, full merge and search give the same samples", async () => {
    const dir = tmpDir();
    const parts: Part[] = [];
    try {
      // An in-memory part as a rows flush writes it (TSIDs as big-endian u32 words).
      const w = new PartWriter(undefined, 0, false, { rows: 12, blocks: 6 });
      const words = new Uint32Array(6);
      for (const s of SERIES) {
        const dv = new DataView(tsidOf(s).buffer);
        for (let k = 0; k < 6; k++) words[k] = dv.getUint32(4 * k);
        const { ts, vals } = samplesOf(s);
        w.writeSamplesFast(words, 0, Float64Array.from(ts), Float64Array.from(vals), 0, ts.length);
      }
      const mem = Part.fromMemory("mem", w.finish(), cache());
      parts.push(mem);
      // Only the three-sample series have payloads: 3 × 3 values of 8 bytes.
      expect(mem.meta.valuesBytes).toBe(72);
      expect(mem.meta.version).toBe(2);
      const c = mem.cursor();
      const inline: boolean[] = [];
      while (c.next()) inline.push(c.header!.inline);
      expect(inline).toEqual([true, false, true, false, true, false]);
      expect(searchAll(mem, SERIES)).toEqual(expected);

      // A disk flush copies the inline blocks as they are.
      const fresh = await mergeInto(join(dir, "fresh"), [mem], false);
      parts.push(fresh);
      expect(fresh.meta.valuesBytes).toBe(72);
      expect(fresh.meta.version).toBe(2);
      expect(searchAll(fresh, SERIES)).toEqual(expected);

      // Two one-sample parts of the same series become a two-sample block with payloads.
      const w2 = new PartWriter(undefined, 0, false, { rows: 1, blocks: 1 });
      w2.writeSamples(tsidOf(1), Float64Array.of(T + 1000 + 15_000), Float64Array.of(42), 1);
      const mem2 = Part.fromMemory("mem2", w2.finish(), cache());
      parts.push(mem2);
      const both = await mergeInto(join(dir, "both"), [mem, mem2], false);
      parts.push(both);
      const got = searchAll(both, SERIES);
      expect(got.get(1)).toEqual({ ts: [T + 1000, T + 16_000], vals: bits([1.5, 42]) });
      expect(got.get(3)).toEqual(expected.get(3));

      // A merge with the full codecs writes ordinary blocks (format 1).
      const merged = await mergeInto(join(dir, "merged"), [fresh], true);
      parts.push(merged);
      expect(merged.meta.version).toBe(1);
      const mc = merged.cursor();
      while (mc.next()) expect(mc.header!.inline).toBe(false);
      expect(searchAll(merged, SERIES)).toEqual(expected);
    } finally {
      for (const p of parts) p.release();
      rmDir(dir);
    }
  });

  it("reads a fresh part written before inline blocks (format 1, fixtures/part-v1-fresh) and rewrites it", async () => {
    const dir = tmpDir();
    const parts: Part[] = [];
    try {
      const old = join(dir, "old");
      cpSync(join(import.meta.dirname, "fixtures", "part-v1-fresh", "0000000000000001"), old, { recursive: true });
      const part = Part.open(old, "old", cache());
      parts.push(part);
      expect(part.meta.version).toBe(1);
      expect(part.meta.timestampsBytes).toBeGreaterThan(0);
      const c = part.cursor();
      while (c.next()) expect(c.header!.inline).toBe(false);
      expect(searchAll(part, SERIES)).toEqual(expected);

      // Merged with a new one-sample part in the cheap layouts: its blocks are copied as they
      // are, beside the new part's inline one.
      const w = new PartWriter(undefined, 0, false, { rows: 1, blocks: 1 });
      w.writeSamples(tsidOf(9), Float64Array.of(T), Float64Array.of(9), 1);
      const mem = Part.fromMemory("mem", w.finish(), cache());
      parts.push(mem);
      const fresh = await mergeInto(join(dir, "fresh"), [part, mem], false);
      parts.push(fresh);
      expect(fresh.meta.version).toBe(2);
      expect(fresh.meta.valuesBytes).toBe(96);
      expect(searchAll(fresh, SERIES)).toEqual(expected);
      expect(searchAll(fresh, [9]).get(9)).toEqual({ ts: [T], vals: bits([9]) });
      const merged = await mergeInto(join(dir, "merged"), [part], true);
      parts.push(merged);
      expect(searchAll(merged, SERIES)).toEqual(expected);
    } finally {
      for (const p of parts) p.release();
      rmDir(dir);
    }
  });

  it("refuses an inline header that is not one sample without payloads", () => {
    const dir = tmpDir();
    try {
      const w = new PartWriter(dir, 0, false);
      w.writeSamples(tsidOf(1), Float64Array.of(T), Float64Array.of(1), 1);
      w.finish();
      // count 2 in the inline header of the only block (index.bin holds raw headers here)
      const file = join(dir, "index.bin");
      const hb = readFileSync(file);
      hb.writeUInt32LE(2, 56);
      writeFileSync(file, hb);
      const part = Part.open(dir, "p", cache());
      try {
        const c = part.cursor();
        expect(() => c.next()).toThrow(/inline block header/);
      } finally {
        part.release();
      }
    } finally {
      rmDir(dir);
    }
  });
});
