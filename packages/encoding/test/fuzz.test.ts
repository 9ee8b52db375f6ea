import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ByteBuffer, IntEncoding, ValuesEncoding, decodeTimestamps, decodeValues, encodeTimestamps, encodeValues } from "@strata/encoding";
import { arbFloatBits, floatsFromBits, mulberry32, onlyCorrupt } from "./helpers.js";

/**
 * Decoders fed random or mutated bytes must only ever throw STRATA_CORRUPT_DATA — never
 * another exception, a hang, or an allocation beyond the caller's count (they write only into
 * the caller's output, and lz4 sizes are checked before decompressing).
 */

const intTags = Object.values(IntEncoding);
const valueTags = Object.values(ValuesEncoding);

function mutate(bytes: Uint8Array, seed: number): Uint8Array {
  const r = mulberry32(seed);
  const b = Uint8Array.from(bytes);
  const kind = Math.floor(r() * 4);
  const at = Math.floor(r() * b.length);
  if (kind === 0 && b.length) b[at] = (b[at] as number) ^ (1 << Math.floor(r() * 8));
  else if (kind === 1 && b.length) b[at] = Math.floor(r() * 256);
  else if (kind === 2) return b.subarray(0, Math.floor(r() * b.length));
  else {
    const c = new Uint8Array(b.length + 1 + Math.floor(r() * 4));
    c.set(b);
    c.fill(Math.floor(r() * 256), b.length);
    return c;
  }
  return b;
}

function sampleBlock(seed: number, n: number): { ts: Float64Array; vs: Float64Array } {
  const r = mulberry32(seed);
  const ts = new Float64Array(n);
  const vs = new Float64Array(n);
  let t = 1.7e12;
  let v = r() * 1000;
  const kind = seed % 4;
  for (let i = 0; i < n; i++) {
    t += 15000 + Math.round((r() - 0.5) * 20);
    ts[i] = t;
    v = kind === 0 ? v : kind === 1 ? v + Math.floor(r() * 100) : kind === 2 ? Math.round((v + r() - 0.5) * 100) / 100 : r() * 1e9;
    vs[i] = v;
  }
  return { ts, vs };
}

describe("decoders on random and mutated input", () => {
  it("property: random bytes with any tag and count", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3000 }), (bytes, tag, count) => {
        const out = new Float64Array(count);
        onlyCorrupt(() => decodeTimestamps(tag, bytes, count, out));
        onlyCorrupt(() => decodeValues(tag, bytes, count, out));
      }),
      { numRuns: 1500 },
    );
  });

  it("property: random bytes with valid tags", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...intTags), fc.constantFrom(...valueTags), fc.integer({ min: 0, max: 1000 }), (bytes, it, vt, count) => {
        const out = new Float64Array(count);
        onlyCorrupt(() => decodeTimestamps(it, bytes, count, out));
        onlyCorrupt(() => decodeValues(vt, bytes, count, out));
      }),
      { numRuns: 1500 },
    );
  });

  it("property: mutations of valid blocks (incl. lz4 ones) and wrong counts", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: 1, max: 600 }), fc.integer(), fc.integer({ min: -2, max: 2 }), (seed, n, mseed, dn) => {
        const { ts, vs } = sampleBlock(seed, n);
        const tb = new ByteBuffer();
        const ttag = encodeTimestamps(ts, tb);
        const vb = new ByteBuffer();
        const vtag = encodeValues(vs, vb);
        const count = Math.max(0, n + dn);
        const out = new Float64Array(count);
        onlyCorrupt(() => decodeTimestamps(ttag, mutate(tb.view(), mseed), count, out));
        onlyCorrupt(() => decodeValues(vtag, mutate(vb.view(), mseed), count, out));
      }),
      { numRuns: 800 },
    );
  });

  it("property: mutations of arbitrary-bit-pattern value blocks", () => {
    fc.assert(
      fc.property(fc.array(arbFloatBits, { minLength: 1, maxLength: 100 }), fc.integer(), (pairs, mseed) => {
        const vs = floatsFromBits(pairs);
        const vb = new ByteBuffer();
        const vtag = encodeValues(vs, vb);
        onlyCorrupt(() => decodeValues(vtag, mutate(vb.view(), mseed), vs.length, new Float64Array(vs.length)));
      }),
      { numRuns: 500 },
    );
  });

  it("an lz4 block declaring a huge size is rejected before decompression", () => {
    const b = Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 0x1f, 0x00);
    onlyCorrupt(() => decodeTimestamps(IntEncoding.DeltaPackedLz4, b, 10, new Float64Array(10)));
    expect(() => decodeTimestamps(IntEncoding.DeltaPackedLz4, b, 10, new Float64Array(10))).toThrow(/declares/);
  });
});
