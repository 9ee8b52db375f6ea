import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { lz4Compress, lz4CompressAsync, lz4Decompress, snappyDecode, snappyEncode } from "@strata/encoding";
import { expectCorrupt, onlyCorrupt } from "./helpers.js";

describe("lz4 and snappy wrappers", () => {
  it("property: round-trip arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.string({ maxLength: 2000 }).map((s) => new TextEncoder().encode(s.repeat(3)))), (bytes) => {
        expect(new Uint8Array(lz4Decompress(lz4Compress(bytes), bytes.length))).toEqual(bytes);
        expect(new Uint8Array(snappyDecode(snappyEncode(bytes)))).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it("property: lz4CompressAsync gives the bytes lz4Compress gives (a plain Uint8Array view too)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.nat(16), async (bytes, pad) => {
        const view = new Uint8Array(pad + bytes.length).subarray(pad);
        view.set(bytes);
        expect(new Uint8Array(await lz4CompressAsync(view))).toEqual(new Uint8Array(lz4Compress(bytes)));
      }),
      { numRuns: 100 },
    );
  });

  it("snappy output is the block format (leading uvarint length)", () => {
    const data = new TextEncoder().encode("remote write body ".repeat(100));
    const c = snappyEncode(data);
    expect(c[0]).toBe(data.length & 0x7f | 0x80);
    expect(c[1]).toBe(data.length >> 7);
  });

  it.each([
    ["lz4 size above cap", () => lz4Decompress(lz4Compress(new Uint8Array(1000)), 999)],
    ["lz4 truncated", () => lz4Decompress(Uint8Array.of(10, 0, 0), 100)],
    ["lz4 garbage", () => lz4Decompress(Uint8Array.of(10, 0, 0, 0, 0xff, 1, 2), 100)],
    ["snappy size above cap", () => snappyDecode(snappyEncode(new Uint8Array(1000)), 999)],
    ["snappy garbage", () => snappyDecode(Uint8Array.of(0x10, 0xff, 0xff, 0xff))],
    ["snappy empty", () => snappyDecode(new Uint8Array(0))],
  ])("%s → STRATA_CORRUPT_DATA", (_name, fn) => expectCorrupt(fn));

  it("a corrupt snappy body's message names snappy once", () => {
    let msg = "";
    try {
      snappyDecode(Uint8Array.of(1, 2, 3, 4, 5)); // a copy whose offset points before the output
    } catch (err) {
      msg = err instanceof Error ? err.message : String(err);
    }
    expect(msg).toMatch(/: snappy: corrupt input/);
    expect(msg).not.toMatch(/snappy: snappy:/);
  });

  it("property: random and mutated input only produces STRATA_CORRUPT_DATA", () => {
    const valid = snappyEncode(new TextEncoder().encode("abcabcabc".repeat(50)));
    const validLz4 = lz4Compress(new TextEncoder().encode("abcabcabc".repeat(50)));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), fc.nat(255), (bytes, at, val) => {
        onlyCorrupt(() => snappyDecode(bytes, 1 << 20));
        onlyCorrupt(() => lz4Decompress(bytes, 1 << 20));
        const m = Uint8Array.from(valid);
        m[at % m.length] = val;
        onlyCorrupt(() => snappyDecode(m, 1 << 20));
        const l = Uint8Array.from(validLz4);
        l[at % l.length] = val;
        onlyCorrupt(() => lz4Decompress(l, 1 << 20));
      }),
      { numRuns: 1000 },
    );
  });
});
