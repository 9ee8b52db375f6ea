import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BadDataError } from "@strata/core";
import { ByteBuffer, IntEncoding, MAX_BLOCK_COUNT, decodeInt64s, intEncodingName, decodeTimestamps, encodeInt64s, encodeTimestamps, forSize, progression, readFor, timestampsProgression, writeFor } from "@strata/encoding";
import { MAX, arbSafeInt, expectCorrupt, mulberry32 } from "./helpers.js";

function roundTrip(xs: ArrayLike<number>): { tag: number; bytes: number } {
  const b = new ByteBuffer(16);
  b.byte(0xee); // codecs append: existing bytes must survive
  const tag = encodeInt64s(xs, b);
  expect(b.buf[0]).toBe(0xee);
  const out = new Float64Array(xs.length + 1).fill(12345);
  decodeInt64s(tag, b.view().subarray(1), xs.length, out);
  for (let i = 0; i < xs.length; i++) expect(out[i]).toBe((xs[i] as number) + 0);
  expect(out[xs.length]).toBe(12345);
  return { tag, bytes: b.len - 1 };
}

/** Timestamps on a scrape grid with jitter, gaps and an occasional large jump. */
const arbTimestamps = fc
  .record({
    start: fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
    step: fc.integer({ min: 0, max: 100_000 }),
    jitter: fc.integer({ min: 0, max: 1000 }),
    n: fc.integer({ min: 0, max: 700 }),
    seed: fc.integer(),
  })
  .map(({ start, step, jitter, n, seed }) => {
    const rnd = mulberry32(seed);
    const ts: number[] = [];
    let t = start;
    for (let i = 0; i < n; i++) {
      t += step + (rnd() < 0.01 ? Math.floor(rnd() * 1e9) : 0);
      ts.push(t + Math.round((rnd() - 0.5) * 2 * jitter));
    }
    return ts;
  });

describe("int64 block codec", () => {
  it("property: random arrays incl. extreme values round-trip exactly", () => {
    fc.assert(fc.property(fc.array(arbSafeInt, { maxLength: 300 }), (xs) => void roundTrip(xs)), { numRuns: 300 });
  });

  it("property: long blocks (several FOR groups) of small-range values round-trip", () => {
    fc.assert(
      fc.property(fc.integer({ min: -MAX, max: MAX }), fc.array(fc.integer({ min: -(2 ** 20), max: 2 ** 20 }), { minLength: 100, maxLength: 1000 }), (base, ds) => {
        let acc = Math.max(-MAX + 2 ** 31, Math.min(MAX - 2 ** 31, base));
        const xs = ds.map((d) => (acc = Math.max(-MAX, Math.min(MAX, acc + d))));
        roundTrip(xs);
      }),
      { numRuns: 100 },
    );
  });

  it("property: jittered timestamps round-trip", () => {
    fc.assert(fc.property(arbTimestamps, (ts) => void roundTrip(ts)), { numRuns: 150 });
  });

  it("property: Float64Array input and number[] input encode identically", () => {
    fc.assert(
      fc.property(fc.array(arbSafeInt, { maxLength: 200 }), (xs) => {
        const a = new ByteBuffer();
        const b = new ByteBuffer();
        expect(encodeTimestamps(xs, a)).toBe(encodeTimestamps(Float64Array.from(xs), b));
        expect(a.toBytes()).toEqual(b.toBytes());
      }),
      { numRuns: 100 },
    );
  });

  const grid = (n: number, step: number, jitter: number) => {
    const rnd = mulberry32(42);
    return Array.from({ length: n }, (_, i) => 1_700_000_000_000 + i * step + (jitter ? Math.round((rnd() - 0.5) * 2 * jitter) : 0));
  };
  const f = (name: string, xs: number[], wantTag: number, maxBytesPerValue: number) => [name, xs, wantTag, maxBytesPerValue] as const;
  it.each([
    f("empty", [], IntEncoding.PlainVarint, 0),
    f("one", [1_700_000_000_000], IntEncoding.Const, 7),
    f("constant", new Array(1000).fill(-5), IntEncoding.Const, 0.01),
    f("arithmetic timestamps (15s grid)", grid(8192, 15_000, 0), IntEncoding.Arith, 0.01),
    f("two samples", [10, 25], IntEncoding.Arith, 2),
    f("jittered 15s grid ±5ms", grid(8192, 15_000, 5), IntEncoding.LinearPacked, 0.55),
    f("jittered 10s grid ±1ms", grid(8192, 10_000, 1), IntEncoding.LinearPacked, 0.3),
    f("jittered 15s grid ±25ms", grid(8192, 15_000, 25), IntEncoding.LinearPacked, 0.8),
    f("jittered grid with missed scrapes (level changes)", grid(8192, 15_000, 5).map((t, i) => t + 15_000 * Math.floor(i / 1000)), IntEncoding.LinearPacked, 0.55),
    f("steady-rate counter with a reset", (() => { const r = mulberry32(5); return Array.from({ length: 4096 }, (_, i) => (i < 3000 ? 1e9 + i * 1000 : (i - 3000) * 1000) + Math.floor(r() * 8)); })(), IntEncoding.LinearPacked, 0.45),
    f("counter with increments 0..15", (() => { const r = mulberry32(1); let c = 0; return Array.from({ length: 4096 }, () => (c += Math.floor(r() * 16))); })(), IntEncoding.DeltaPacked, 0.55),
    f("page-sized byte gauge (multiples of 4096)", (() => { const r = mulberry32(2); let c = 2 ** 33; return Array.from({ length: 4096 }, () => (c += 4096 * Math.floor((r() - 0.5) * 64))); })(), IntEncoding.DeltaPacked, 0.8),
    f("periodic pattern (lz4 pays)", Array.from({ length: 8192 }, (_, i) => 1_700_000_000_000 + i * 1000 + (i % 7) * 3), IntEncoding.LinearPackedLz4, 0.2),
    f("values spanning ±2^53 (deltas unsafe)", [MAX, -MAX, MAX, -MAX], IntEncoding.PlainVarint, 8),
  ])("%s → tag %#, bytes/value bound", (_name, xs, wantTag, maxBpv) => {
    const { tag, bytes } = roundTrip(xs);
    expect(tag).toBe(wantTag);
    if (xs.length) expect(bytes / xs.length).toBeLessThanOrEqual(maxBpv);
  });

  it.each([
    [[1.5]],
    [[NaN]],
    [[Infinity]],
    [[2 ** 53]],
    [[0, 1, 2 ** 60]],
  ])("rejects non-int64-safe input %j with BadDataError", (xs) => {
    expect(() => encodeInt64s(xs, new ByteBuffer())).toThrow(BadDataError);
  });

  it.each([
    ["count above the output", 3, 2],
    ["negative count", -1, 2],
    ["fractional count", 1.5, 2],
    ["count above MAX_BLOCK_COUNT", MAX_BLOCK_COUNT + 1, 0],
  ])("decodeTimestamps rejects %s as corrupt", (_name, count, outLen) => {
    expectCorrupt(() => decodeTimestamps(IntEncoding.Const, Uint8Array.of(2), count, new Float64Array(outLen)));
  });

  it("property: timestampsProgression gives x0 and step exactly when the layout is Arith or Const, matching the whole decode", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 41 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 1, max: 8192 }),
        fc.option(fc.integer({ min: 0, max: 8191 })),
        (x0, step, n, jitterAt) => {
          const xs = Array.from({ length: n }, (_, i) => x0 + i * step + (i === jitterAt ? 1 : 0));
          const b = new ByteBuffer(16);
          const tag = encodeTimestamps(xs, b);
          const grid = timestampsProgression(tag, b.view(), n);
          expect(grid).toBe(tag === IntEncoding.Arith || tag === IntEncoding.Const);
          if (!grid) return;
          const whole = new Float64Array(n);
          decodeTimestamps(tag, b.view(), n, whole);
          expect(Array.from({ length: n }, (_, i) => progression.x0 + i * progression.step)).toEqual(Array.from(whole));
        },
      ),
      { numRuns: 300 },
    );
    expectCorrupt(() => timestampsProgression(IntEncoding.Arith, Uint8Array.of(2, 4, 0), 3));
  });

  it("tag names", () => {
    expect(intEncodingName(IntEncoding.LinearPackedLz4)).toBe("LinearPackedLz4");
    expect(intEncodingName(0x7f)).toBe("unknown(0x7f)");
  });
});

describe("FOR bit-packing", () => {
  it("property: groups of any width (0..53) and shift round-trip", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 52 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 400 }),
        fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        fc.integer({ min: 0, max: 7 }),
        (bits, shift, fr, base, at) => {
          const s = Math.min(shift, 52 - bits);
          const xs = Float64Array.from(fr, (f) => base + Math.floor(f * 2 ** bits) * 2 ** s);
          const size = forSize(xs, 0, xs.length);
          // Groups start at any byte offset (blocks are views into received frames).
          const b = new ByteBuffer(4);
          for (let i = 0; i < at; i++) b.byte(0xa5);
          writeFor(b, xs, 0, xs.length);
          expect(b.len - at).toBe(size);
          const out = new Float64Array(xs.length);
          expect(readFor(b.buf, at, b.len, out, 0, xs.length)).toBe(b.len);
          expect(Array.from(out)).toEqual(Array.from(xs));
        },
      ),
      { numRuns: 300 },
    );
  });
  it("property: groups of arbitrary (non power of two) ranges round-trip, radix packing included", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 70_000 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 400 }),
        fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        fc.integer({ min: 0, max: 12 }),
        fc.boolean(),
        (range, fr, base, shift, sparse) => {
          const xs = Float64Array.from(fr, (f, i) => base + (sparse && i % 3 ? 0 : Math.round(f * range)) * 2 ** shift);
          const b = new ByteBuffer(4);
          writeFor(b, xs, 0, xs.length);
          expect(b.len).toBe(forSize(xs, 0, xs.length));
          const out = new Float64Array(xs.length);
          expect(readFor(b.buf, 0, b.len, out, 0, xs.length)).toBe(b.len);
          expect(Array.from(out)).toEqual(Array.from(xs));
        },
      ),
      { numRuns: 400 },
    );
  });

  it.each([
    [3, 2],
    [11, 3.6],
    [21, 4.6],
    [51, 5.9],
  ])("radix packing: 128 values of %i distinct levels take at most %f bits each", (levels, maxBits) => {
    const r = mulberry32(levels);
    const xs = Float64Array.from({ length: 128 }, (_, i) => (i === 0 ? 0 : i === 1 ? levels - 1 : Math.floor(r() * levels)));
    const header = 1 + 1 + 2; // header byte, zz(min), uvarint(range)
    expect((forSize(xs, 0, 128) - header) * 8 / 128).toBeLessThanOrEqual(maxBits);
  });

  it("reports Infinity when a group's range is not exactly representable", () => {
    expect(forSize(Float64Array.of(MAX, -MAX), 0, 2)).toBe(Infinity);
  });
});
