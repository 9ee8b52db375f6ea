import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ByteBuffer, NOT_DECIMAL, decimalResult, ValuesEncoding, decodeValues, encodeValues, fromDecimal, toDecimal, valuesEncodingName } from "@strata/encoding";
import { arbFloatBits, expectSameBits, floatsFromBits, mulberry32 } from "./helpers.js";

function roundTrip(vs: Float64Array, precisionBits?: number): { tag: number; bytes: number; out: Float64Array } {
  const b = new ByteBuffer(16);
  b.byte(0xee);
  const tag = precisionBits === undefined ? encodeValues(vs, b) : encodeValues(vs, b, vs.length, { precisionBits });
  const out = new Float64Array(vs.length + 1);
  out[vs.length] = 777;
  decodeValues(tag, b.view().subarray(1), vs.length, out);
  if (precisionBits === undefined) expectSameBits(out, vs);
  expect(out[vs.length]).toBe(777);
  return { tag, bytes: b.len - 1, out };
}

const STALE = floatsFromBits([[0x7ff00000, 2]])[0] as number;
const PAYLOAD_NAN = floatsFromBits([[0xfff12345, 0x6789abcd]])[0] as number;

/** Decimal-ish values: mantissa with d decimals, plus sprinkled special values. */
const arbDecimalBlock = fc
  .record({ d: fc.integer({ min: 0, max: 6 }), n: fc.integer({ min: 1, max: 600 }), seed: fc.integer(), scale: fc.integer({ min: 0, max: 12 }), specials: fc.boolean() })
  .map(({ d, n, seed, scale, specials }) => {
    const r = mulberry32(seed);
    const p = 10 ** d;
    let m = Math.round((r() - 0.5) * 10 ** scale);
    const vs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      m += Math.round((r() - 0.5) * 1000);
      vs[i] = m / p;
      if (specials && r() < 0.05) vs[i] = [NaN, STALE, Infinity, -Infinity, -0, PAYLOAD_NAN][Math.floor(r() * 6)] as number;
    }
    return vs;
  });

describe("values block codec", () => {
  it("property: arbitrary float64 bit patterns round-trip bit-exactly", () => {
    fc.assert(fc.property(fc.array(arbFloatBits, { maxLength: 300 }), (pairs) => void roundTrip(floatsFromBits(pairs))), { numRuns: 300 });
  });

  it("property: decimal-like blocks with NaN payloads, stale markers, ±Inf, -0 round-trip bit-exactly", () => {
    fc.assert(fc.property(arbDecimalBlock, (vs) => void roundTrip(vs)), { numRuns: 200 });
  });

  it("property: doubles from fast-check (incl. subnormals, extremes) round-trip", () => {
    fc.assert(fc.property(fc.array(fc.double(), { maxLength: 200 }), (xs) => void roundTrip(Float64Array.from(xs))), { numRuns: 300 });
  });

  it("property: integers and big integers (beyond 2^53, positive exponent) round-trip", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.maxSafeInteger(), fc.integer({ min: 0, max: 15 }).map((k) => 7 * 10 ** (k + 10)), fc.integer()), { maxLength: 100 }), (xs) => void roundTrip(Float64Array.from(xs))),
      { numRuns: 200 },
    );
  });

  const gauge2 = (() => {
    const r = mulberry32(7);
    let v = 5000;
    return Float64Array.from({ length: 8192 }, () => (v = Math.round((v + (r() - 0.5) * 4) * 100) / 100));
  })();
  const counter = (() => {
    const r = mulberry32(8);
    let c = 123456;
    return Float64Array.from({ length: 8192 }, () => (c += Math.floor(r() * 5000)));
  })();
  const cpuSeconds = (() => {
    const r = mulberry32(9);
    let c = 1234.56;
    return Float64Array.from({ length: 8192 }, () => (c = Math.round((c + 15 * r() * 0.3) * 100) / 100));
  })();
  const f = (name: string, vs: Float64Array, want: readonly number[], maxBpv: number) => [name, vs, want, maxBpv] as const;
  it.each([
    f("empty", new Float64Array(0), [ValuesEncoding.RawFloat], 0),
    f("constant 0", new Float64Array(8192), [ValuesEncoding.DecimalConst], 0.001),
    f("constant 1.5", new Float64Array(8192).fill(1.5), [ValuesEncoding.DecimalConst], 0.001),
    f("constant stale markers", new Float64Array(100).fill(STALE), [ValuesEncoding.ConstFloat], 0.1),
    f("constant 0.1+0.2 (not decimal)", new Float64Array(100).fill(0.1 + 0.2), [ValuesEncoding.ConstFloat], 0.1),
    f("arithmetic 0.5 steps", Float64Array.from({ length: 1000 }, (_, i) => i * 0.5), [ValuesEncoding.DecimalArith], 0.01),
    f("sparse counter (lz4 pays)", (() => { const r = mulberry32(10); let c = 17; return Float64Array.from({ length: 8192 }, () => (c += r() < 0.1 ? 1 + Math.floor(r() * 5) : 0)); })(), [ValuesEncoding.DecimalDeltaPackedLz4], 0.3),
    f("integer counter", counter, [ValuesEncoding.DecimalDeltaPacked], 1.7),
    f("cpu seconds counter, 2 decimals", cpuSeconds, [ValuesEncoding.DecimalDeltaPacked], 1.2),
    f("random-walk gauge, 2 decimals", gauge2, [ValuesEncoding.DecimalDeltaPacked], 1.2),
    f("gauge ending in a stale marker", Float64Array.from([...gauge2.subarray(0, 100), STALE]), [ValuesEncoding.DecimalDeltaPacked], 1.5),
    f("repeating non-decimal pattern (lz4 over xor pays)", Float64Array.from({ length: 4096 }, (_, i) => [Math.PI * 1e-20, Math.E * 1e300, 0.1 + 0.2, -1 / 3e-17][i % 4] as number), [ValuesEncoding.XorFloatLz4, ValuesEncoding.RawFloatLz4], 0.5),
    f("random doubles (not decimal)", Float64Array.from({ length: 500 }, (_, i) => Math.sin(i) * 1e6), [ValuesEncoding.XorFloat, ValuesEncoding.RawFloat], 8.2),
  ])("%s → expected tag, bytes/value bound", (_name, vs, want, maxBpv) => {
    const { tag, bytes } = roundTrip(vs);
    expect(want).toContain(tag);
    if (vs.length) expect(bytes / vs.length).toBeLessThanOrEqual(maxBpv);
  });

  it("tag names", () => {
    expect(valuesEncodingName(ValuesEncoding.DecimalDeltaPackedLz4)).toBe("DecimalDeltaPackedLz4");
    expect(valuesEncodingName(0xc1)).toBe("unknown(0xc1)");
  });

  it("a reused ByteBuffer keeps earlier blocks intact (codecs append)", () => {
    const b = new ByteBuffer(8);
    const blocks = [gauge2.subarray(0, 300), counter.subarray(0, 1000), new Float64Array(50).fill(STALE)];
    const spans = blocks.map((vs) => {
      const start = b.len;
      const tag = encodeValues(vs, b);
      return { start, end: b.len, tag };
    });
    blocks.forEach((vs, i) => {
      const { start, end, tag } = spans[i] as { start: number; end: number; tag: number };
      const out = new Float64Array(vs.length);
      decodeValues(tag, b.view().subarray(start, end), vs.length, out);
      expectSameBits(out, vs);
    });
    b.reset();
    expect(b.len).toBe(0);
  });

  it("precisionBits (lossy nearest delta) bounds the relative error and is never the default", () => {
    const vs = Float64Array.from({ length: 2000 }, (_, i) => 1e9 + Math.round(Math.sin(i / 10) * 1e6) + i);
    const lossless = roundTrip(vs);
    const lossy = roundTrip(vs, 12);
    expect(lossy.bytes).toBeLessThan(lossless.bytes);
    for (let i = 0; i < vs.length; i++) expect(Math.abs((lossy.out[i] as number) - (vs[i] as number))).toBeLessThanOrEqual(Math.abs(vs[i] as number) * 2 ** -12);
  });
});

describe("float → decimal", () => {
  const conv = (vs: number[]) => {
    const m = new Float64Array(vs.length);
    const e = toDecimal(Float64Array.from(vs), vs.length, m, new Uint32Array(vs.length));
    return { e, m: Array.from(m) };
  };
  it.each([
    [[1, 2, 3], 0, [1, 2, 3]],
    [[1200, 1300, 0], 2, [12, 13, 0]],
    [[0.1, 0.25, 3], -2, [10, 25, 300]],
    [[1.5e20, 2e20], 19, [15, 20]],
    [[-0.001], -3, [-1]],
    [[9007199254740991], 0, [9007199254740991]],
    [[123456.789, 0.000001], -6, [123456789000, 1]],
    [[Math.PI], -15, [3141592653589793]],
    [[2 ** 60], 3, [1152921504606847]],
  ])("%j → exponent %d, mantissas %j", (vs, e, m) => {
    const got = conv(vs);
    expect(got.e).toBe(e);
    expect(got.m).toEqual(m);
  });
  it.each([[[0.1 + 0.2]], [[5e-324]], [[1.7976931348623157e308]], [[1e-30]], [[NaN, Infinity]], [[2 ** 60 + 256]]])("%j is not decimal", (vs) => {
    expect(conv(vs).e).toBe(NOT_DECIMAL);
  });
  const exc = (vs: number[]) => {
    const m = new Float64Array(vs.length);
    const idx = new Uint32Array(vs.length);
    const e = toDecimal(Float64Array.from(vs), vs.length, m, idx);
    return { e, m: Array.from(m), exceptions: Array.from(idx.subarray(0, decimalResult.exceptions)) };
  };
  it.each([
    ["a 17-digit value among integers", [0.1 * 3, 1, 2], 0, [1, 1, 2], [0]],
    ["a huge integer among 1-decimal values", [1.5, 1e20, 2.5], -1, [15, 15, 25], [1]],
    ["specials keep the previous mantissa", [NaN, 1.25, -0, Infinity, 2.5], -2, [125, 125, 125, 125, 250], [0, 2, 3]],
    ["one value with many decimals is cheaper as an exception", [...Array.from({ length: 50 }, (_, i) => i / 100), 1 / 3], -2, [...Array.from({ length: 50 }, (_, i) => i), 49], [50]],
    ["many values with more decimals widen the block instead", [0.5, 0.125, 0.25, 0.375], -3, [500, 125, 250, 375], []],
  ])("%s", (_name, vs, e, m, exceptions) => {
    expect(exc(vs)).toEqual({ e, m, exceptions });
  });
  it("property: whenever conversion succeeds, fromDecimal restores every value bit-exactly", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer().map((i) => i / 1000)), { minLength: 1, maxLength: 50 }), (xs) => {
        const vs = Float64Array.from(xs.map((x) => (Object.is(x, -0) ? 0 : x)));
        const m = new Float64Array(vs.length);
        const idx = new Uint32Array(vs.length);
        const e = toDecimal(vs, vs.length, m, idx);
        if (e === NOT_DECIMAL) return;
        for (const x of m) expect(Number.isSafeInteger(x)).toBe(true);
        fromDecimal(m, m.length, e);
        for (const i of idx.subarray(0, decimalResult.exceptions)) m[i] = vs[i] as number;
        expectSameBits(m, vs);
      }),
      { numRuns: 400 },
    );
  });
});
