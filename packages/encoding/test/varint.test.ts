import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  ByteBuffer,
  ByteReader,
  readUvarint,
  readUvarintBig,
  readZigzag,
  readZigzagBig,
  uvarintSize,
  writeUvarint,
  writeUvarintBig,
  writeZigzag,
  writeZigzagBig,
  zigzagDecode,
  zigzagEncode,
  zigzagSize,
} from "@strata/encoding";
import { EXTREME_INTS, arbSafeInt, expectCorrupt } from "./helpers.js";

function zz(v: number): Uint8Array {
  const b = new ByteBuffer(4);
  writeZigzag(b, v);
  return b.toBytes();
}
function zzBig(v: bigint): Uint8Array {
  const b = new ByteBuffer(4);
  writeZigzagBig(b, v);
  return b.toBytes();
}

describe("zigzag varint over numbers", () => {
  it.each([...EXTREME_INTS, 2 ** 53, -(2 ** 53)])("%d round-trips and matches the int64 encoding", (v) => {
    const bytes = zz(v);
    expect(bytes).toEqual(zzBig(BigInt(v)));
    expect(bytes.length).toBe(zigzagSize(v));
    const r = new ByteReader(bytes);
    expect(readZigzag(r)).toBe(v === 0 ? 0 : v);
    r.expectEnd();
  });

  it.each([
    [0, [0x00]],
    [-1, [0x01]],
    [1, [0x02]],
    [-64, [0x7f]],
    [64, [0x80, 0x01]],
    [2 ** 53 - 1, [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]],
    [-(2 ** 53 - 1), [0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f]],
  ])("%d encodes as %j", (v, want) => {
    expect(Array.from(zz(v))).toEqual(want);
  });

  it("property: every integer in [-2^53, 2^53] round-trips, byte-identical to bigint int64 zigzag", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(arbSafeInt, fc.constantFrom(2 ** 53, -(2 ** 53))), { maxLength: 50 }), (vs) => {
        const b = new ByteBuffer(8);
        for (const v of vs) writeZigzag(b, v);
        const big = new ByteBuffer(8);
        for (const v of vs) writeZigzagBig(big, BigInt(v));
        expect(b.toBytes()).toEqual(big.toBytes());
        const r = new ByteReader(b.view());
        for (const v of vs) expect(readZigzag(r)).toBe(v + 0);
        r.expectEnd();
      }),
      { numRuns: 300 },
    );
  });

  it("zigzagEncode/zigzagDecode are inverse within ±2^52", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), (v) => {
        expect(zigzagDecode(zigzagEncode(v))).toBe(v + 0);
        expect(zigzagEncode(v)).toBe(Number(BigInt.asUintN(64, (BigInt(v) << 1n) ^ (BigInt(v) >> 63n))));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ["truncated", [0x80]],
    ["truncated long", [0xff, 0xff, 0xff]],
    ["beyond 2^53", [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["too long", [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ])("rejects %s input", (_name, bytes) => {
    expectCorrupt(() => readZigzag(new ByteReader(Uint8Array.from(bytes))));
  });
});

describe("uvarint over numbers", () => {
  it("property: 0..2^53 round-trips, byte-identical to bigint uvarint", () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constant(2 ** 53)), (v) => {
        const b = new ByteBuffer(2);
        writeUvarint(b, v);
        const big = new ByteBuffer(2);
        writeUvarintBig(big, BigInt(v));
        expect(b.toBytes()).toEqual(big.toBytes());
        expect(b.len).toBe(uvarintSize(v));
        expect(readUvarint(new ByteReader(b.view()))).toBe(v);
      }),
      { numRuns: 300 },
    );
  });
  it("enforces the caller's maximum", () => {
    const b = new ByteBuffer(2);
    writeUvarint(b, 1000);
    expectCorrupt(() => readUvarint(new ByteReader(b.view()), 999));
  });
});

describe("bigint varints (whole int64/uint64 range)", () => {
  it.each([0n, 1n, -1n, (1n << 63n) - 1n, -(1n << 63n), 1n << 53n])("%d round-trips", (v) => {
    const b = new ByteBuffer(2);
    writeZigzagBig(b, v);
    expect(readZigzagBig(new ByteReader(b.view()))).toBe(v);
  });
  it("property: uint64 round-trips", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
        const b = new ByteBuffer(2);
        writeUvarintBig(b, v);
        expect(readUvarintBig(new ByteReader(b.view()))).toBe(v);
      }),
      { numRuns: 200 },
    );
  });
  it("rejects an 11-byte varint", () => {
    expectCorrupt(() => readUvarintBig(new ByteReader(new Uint8Array(11).fill(0xff))));
  });
});
