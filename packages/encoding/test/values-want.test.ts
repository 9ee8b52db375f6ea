import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ByteBuffer, decodeValues, encodeValues, ValuesEncoding, valuesEncodingName } from "@strata/encoding";
import { floatsFromBits, mulberry32 } from "./helpers.js";

/**
 * decodeValues with `want` (only the values at some index ranges) gives, at those indexes,
 * bit for bit what the whole decode gives, for every layout — the bit-packed delta and linear
 * ones skip or sum the groups no range meets.
 */

const STALE = floatsFromBits([[0x7ff00000, 2]])[0] as number;
const PAYLOAD_NAN = floatsFromBits([[0xfff12345, 0x6789abcd]])[0] as number;
const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b) => b.toString(16));

/** Blocks of the shapes the encoder packs differently: counters, gauges, jumps, wide deltas. */
const block = fc
  .record({
    shape: fc.constantFrom("counter", "bytes", "gauge", "linear", "jumps", "wide", "sparse", "const", "arith", "jitter", "bigcounter"),
    short: fc.boolean(),
    decimals: fc.integer({ min: 0, max: 4 }),
    seed: fc.integer(),
    specials: fc.boolean(),
  })
  .map(({ shape, short, decimals, seed, specials }) => {
    const r = mulberry32(seed);
    // Lengths drawn evenly (fast-check's integers lean small): most blocks span several groups.
    const n = 1 + Math.floor(r() * (short ? 200 : 2000));
    const p = 10 ** decimals;
    const vs = new Float64Array(n);
    let m = Math.round((r() - 0.5) * 1e6);
    for (let i = 0; i < n; i++) {
      switch (shape) {
        case "counter":
          m += Math.floor(r() * 5000);
          break;
        case "bytes":
          // Deltas over a power-of-two range: plain groups, summed without their values when skipped.
          m += Math.floor(r() * 4096) * 4;
          break;
        case "gauge":
          m += Math.round((r() - 0.5) * 400);
          break;
        case "linear":
          m = 1000 * i + Math.round(r() * 50);
          break;
        case "jumps":
          m += r() < 0.02 ? Math.round((r() - 0.5) * 1e12) : Math.floor(r() * 30);
          break;
        case "wide":
          m = Math.round((r() - 0.5) * 2 ** 52);
          break;
        case "sparse":
          m += r() < 0.1 ? 1 : 0;
          break;
        case "jitter":
          // Few levels far from a power of two: radix groups of small bases.
          m += Math.round((r() - 0.5) * (2 + (seed & 15)));
          break;
        case "bigcounter":
          // Deltas of 32 to 45 bits (a byte counter in thousandths): wide plain groups.
          m += Math.floor(r() * 2 ** (32 + (seed & 7)) + 2 ** 31);
          break;
        case "const":
          m = 42;
          break;
        case "arith":
          m = 5 * i;
          break;
      }
      vs[i] = m / p;
      if (specials && r() < 0.03) vs[i] = [NaN, STALE, Infinity, -Infinity, -0, PAYLOAD_NAN][Math.floor(r() * 6)] as number;
    }
    return vs;
  });

/** Up to 12 sorted, disjoint [from, to) ranges within [0, n), drawn evenly from a seed. */
function wantOf(n: number, seed: number): { want: Uint32Array; count: number } {
  const r = mulberry32(seed);
  const k = Math.floor(r() * 13);
  const pts = [...new Set(Array.from({ length: 2 * k }, () => Math.floor(r() * (n + 1))))].sort((a, b) => a - b);
  const want = new Uint32Array(pts.length + 2);
  let count = 0;
  for (let i = 0; i + 1 < pts.length; i += 2) {
    want[2 * count] = pts[i]!;
    want[2 * count + 1] = pts[i + 1]!;
    count++;
  }
  return { want, count };
}

describe("decodeValues with wanted index ranges", () => {
  it("property: equals the whole decode bit for bit at every wanted index", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(block, fc.integer(), (vs, cuts) => {
        const b = new ByteBuffer(64);
        const tag = encodeValues(vs, b);
        seen.add(valuesEncodingName(tag));
        const whole = new Float64Array(vs.length);
        decodeValues(tag, b.view(), vs.length, whole);
        expect([valuesEncodingName(tag), bits(whole)]).toEqual([valuesEncodingName(tag), bits(vs)]);
        const { want, count } = wantOf(vs.length, cuts);
        const got = new Float64Array(vs.length).fill(-12345);
        decodeValues(tag, b.view(), vs.length, got, want, count);
        for (let s = 0; s < count; s++) {
          const a = want[2 * s]!;
          const e = want[2 * s + 1]!;
          expect([valuesEncodingName(tag), a, bits(got.subarray(a, e))]).toEqual([valuesEncodingName(tag), a, bits(whole.subarray(a, e))]);
        }
      }),
      { numRuns: 400 },
    );
    // The layouts that skip groups were among the blocks.
    for (const t of [ValuesEncoding.DecimalDeltaPacked, ValuesEncoding.DecimalLinearPacked]) expect(seen).toContain(valuesEncodingName(t));
  });

  it("writes no index outside the wanted ranges of constant, arithmetic and wide-delta blocks", () => {
    const r = mulberry32(11);
    let c = 1e9;
    const blocks: [string, Float64Array][] = [
      ["const", new Float64Array(3000).fill(42)],
      ["const float", new Float64Array(3000).fill(0.1 + 0.2)],
      ["arith", Float64Array.from({ length: 3000 }, (_, i) => 7 + 15 * i)],
      // Deltas of ~33 bits: plain groups wider than 32 bits, summed without storing their values.
      ["wide deltas", Float64Array.from({ length: 3000 }, () => (c += Math.floor(r() * 2 ** 33) + 2 ** 32))],
    ];
    for (const [name, vs] of blocks) {
      const b = new ByteBuffer(64);
      const tag = encodeValues(vs, b);
      const whole = new Float64Array(vs.length);
      decodeValues(tag, b.view(), vs.length, whole);
      expect([name, bits(whole)]).toEqual([name, bits(vs)]);
      // Index 0 and one index in some groups: a window's last sample every ~134 samples.
      const want = new Uint32Array(2 * 23);
      for (let s = 0; s < 23; s++) {
        want[2 * s] = 1 + 130 * s;
        want[2 * s + 1] = 2 + 130 * s;
      }
      const got = new Float64Array(vs.length).fill(-12345);
      decodeValues(tag, b.view(), vs.length, got, want, 23);
      const written: number[] = [];
      for (let i = 1; i < vs.length; i++) {
        const inWant = (i - 1) % 130 === 0 && i < 2 + 130 * 22;
        if (inWant) expect([name, i, got[i]]).toEqual([name, i, whole[i]]);
        else if (got[i] !== -12345) written.push(i);
      }
      expect([name, valuesEncodingName(tag), written.length]).toEqual([name, valuesEncodingName(tag), 0]);
    }
  });

  it("a corrupt skipped group is still an error", () => {
    const r = mulberry32(3);
    let c = 100;
    const vs = Float64Array.from({ length: 1000 }, () => (c += Math.floor(r() * 5000)));
    const b = new ByteBuffer(64);
    const tag = encodeValues(vs, b);
    expect(tag).toBe(ValuesEncoding.DecimalDeltaPacked);
    const cut = b.view().subarray(0, b.len - 40);
    expect(() => decodeValues(tag, cut, vs.length, new Float64Array(vs.length), Uint32Array.of(0, 10), 1)).toThrow(/group needs|truncated|trailing/);
  });
});
