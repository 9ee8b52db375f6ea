import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SnappyBlockDecoder, snappyDecode, snappyEncode } from "@strata/encoding";
import { expectCorrupt, onlyCorrupt } from "./helpers.js";

/** Bytes with runs and repeats at short and long distances (what snappy's copies encode). */
const arbRepetitive: fc.Arbitrary<Uint8Array> = fc
  .array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 80 }), fc.nat(70_000), fc.integer({ min: 1, max: 300 })), { maxLength: 40 })
  .map((parts) => {
    const out: number[] = [];
    for (const [lit, back, len] of parts) {
      out.push(...lit);
      const from = out.length - 1 - (back % out.length);
      for (let i = 0; i < len; i++) out.push(out[from + i]!);
    }
    return Uint8Array.from(out);
  });

describe("SnappyBlockDecoder", () => {
  it("property: decodes what the native encoder writes, the bytes the native decoder gives", () => {
    const d = new SnappyBlockDecoder();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), arbRepetitive), (bytes) => {
        const c = snappyEncode(bytes);
        expect(d.decode(c, 1 << 24)).toEqual(new Uint8Array(snappyDecode(c)));
        expect(d.decode(c, 1 << 24)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    // Hand-written blocks: each element kind, and the lengths at their encoding's edges.
    ["empty", [0], []],
    ["1-byte literal", [1, 0x00, 7], [7]],
    ["literal with a 1-byte length (61 bytes)", [61, 60 << 2, 60, ...Array(61).fill(5)], Array(61).fill(5)],
    ["literal with a 2-byte length (300 bytes)", [0xac, 0x02, 61 << 2, 0x2b, 0x01, ...Array(300).fill(9)], Array(300).fill(9)],
    ["copy1, offset 1 (a run)", [9, 0x00, 4, ((8 - 4) << 2) | 1, 1], [4, 4, 4, 4, 4, 4, 4, 4, 4]],
    ["copy2, offset 3 < length (pattern repeats)", [10, 2 << 2, 1, 2, 3, ((7 - 1) << 2) | 2, 3, 0], [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]],
    ["copy4, offset 4, length 6", [10, 3 << 2, 1, 2, 3, 4, ((6 - 1) << 2) | 3, 4, 0, 0, 0], [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]],
    ["copy2, length 64, offset 8", [72, 7 << 2, 1, 2, 3, 4, 5, 6, 7, 8, (63 << 2) | 2, 8, 0], Array.from({ length: 72 }, (_, i) => (i % 8) + 1)],
  ])("%s", (_name, block, want) => {
    expect([...new SnappyBlockDecoder().decode(Uint8Array.from(block), 1 << 20)]).toEqual(want);
  });

  it.each([
    ["size above the cap", () => new SnappyBlockDecoder().decode(snappyEncode(new Uint8Array(1000)), 999)],
    ["empty input", () => new SnappyBlockDecoder().decode(new Uint8Array(0), 100)],
    ["copy before the output starts", () => new SnappyBlockDecoder().decode(Uint8Array.of(5, 1, 2, 3, 4, 5), 100)],
    ["copy with offset 0", () => new SnappyBlockDecoder().decode(Uint8Array.of(5, 0, 1, (3 << 2) | 2, 0, 0), 100)],
    ["literal past the block", () => new SnappyBlockDecoder().decode(Uint8Array.of(5, 4 << 2, 1, 2), 100)],
    ["literal past the declared length", () => new SnappyBlockDecoder().decode(Uint8Array.of(1, 1 << 2, 1, 2), 100)],
    ["fewer bytes than declared", () => new SnappyBlockDecoder().decode(Uint8Array.of(3, 0, 1), 100)],
    ["truncated copy", () => new SnappyBlockDecoder().decode(Uint8Array.of(3, 0, 1, 2), 100)],
  ])("%s → STRATA_CORRUPT_DATA", (_name, fn) => expectCorrupt(fn));

  it("a corrupt block's message names snappy once and the byte", () => {
    expect(() => new SnappyBlockDecoder().decode(Uint8Array.of(5, 1, 2, 3, 4, 5), 100)).toThrow(/^snappy: copy offset \d+ outside the 0 bytes written at byte 3$/);
  });

  it("property: random and mutated input only produces STRATA_CORRUPT_DATA, and a later body decodes right", () => {
    const text = new TextEncoder().encode("abcabcabc remote write ".repeat(50));
    const valid = snappyEncode(text);
    const d = new SnappyBlockDecoder();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(), fc.nat(255), (bytes, at, val) => {
        onlyCorrupt(() => d.decode(bytes, 1 << 20));
        const m = Uint8Array.from(valid);
        m[at % m.length] = val;
        onlyCorrupt(() => d.decode(m, 1 << 20));
        expect(d.decode(valid, 1 << 20)).toEqual(text);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps one buffer up to keepBytes and decodes a larger body into a buffer it drops", () => {
    const d = new SnappyBlockDecoder(4096);
    const small = new Uint8Array(3000).fill(1);
    const large = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const first = d.decode(snappyEncode(small), 1 << 20);
    expect(d.capacity).toBe(3000);
    expect(d.decode(snappyEncode(large), 1 << 20)).toEqual(large);
    expect(d.capacity).toBe(3000);
    // The kept buffer is reused: the next body overwrites the view handed out before.
    d.decode(snappyEncode(new Uint8Array(3000).fill(2)), 1 << 20);
    expect(first[0]).toBe(2);
  });
});
