import fc from "fast-check";
import { BadDataError } from "@strata/core";
import { expect } from "vitest";

/** Float64Array from raw (hi, lo) uint32 pairs: any bit pattern incl. NaN payloads. */
export function floatsFromBits(pairs: ReadonlyArray<readonly [number, number]>): Float64Array {
  const u = new Uint32Array(pairs.length * 2);
  pairs.forEach(([hi, lo], i) => {
    u[2 * i] = lo;
    u[2 * i + 1] = hi;
  });
  return new Float64Array(u.buffer);
}

/** Bit-exact comparison through BigUint64Array views (NaN payloads, -0 included). */
export function expectSameBits(got: Float64Array, want: Float64Array, n = want.length): void {
  const g = new BigUint64Array(got.buffer, got.byteOffset, n);
  const w = new BigUint64Array(want.buffer, want.byteOffset, n);
  for (let i = 0; i < n; i++) {
    if (g[i] !== w[i]) {
      throw new Error(`value ${i}: got 0x${g[i]?.toString(16)} (${got[i]}), want 0x${w[i]?.toString(16)} (${want[i]})`);
    }
  }
}

export const MAX = Number.MAX_SAFE_INTEGER;
export const EXTREME_INTS = [0, -0, 1, -1, 2, -2, 63, 64, -64, -65, 127, 128, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, -(2 ** 32), 2 ** 52, -(2 ** 52), MAX, -MAX, MAX - 1, Number.MIN_SAFE_INTEGER];

/** Integers biased towards the edges of the safe range and of varint byte boundaries. */
export const arbSafeInt: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(...EXTREME_INTS),
  fc.integer({ min: -1000, max: 1000 }),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.integer({ min: 0, max: 52 }).chain((b) => fc.integer({ min: -1, max: 1 }).map((d) => Math.max(-MAX, Math.min(MAX, 2 ** b + d)) * (b % 2 ? -1 : 1))),
);

/** Any float64 bit pattern. */
export const arbFloatBits: fc.Arbitrary<readonly [number, number]> = fc.tuple(
  fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0x7ff00000, 0xfff00000, 0x7ff80000, 0xfff80000, 0x80000000, 0, 0x7fefffff)),
  fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 1, 2, 0xffffffff)),
);

export function expectCorrupt(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadDataError);
    expect((err as BadDataError).code).toBe("STRATA_CORRUPT_DATA");
    return;
  }
  throw new Error("expected a STRATA_CORRUPT_DATA error");
}

/** Runs fn; passes if it returns or throws STRATA_CORRUPT_DATA; anything else fails. */
export function onlyCorrupt(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof BadDataError) || err.code !== "STRATA_CORRUPT_DATA") throw err;
  }
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
