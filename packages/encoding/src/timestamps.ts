import type { ByteBuffer } from "./bytes.js";
import type { TimestampsEncoding } from "./constants.js";
import { decodeInt64s, decodeInt64sNear, encodeInt64s, int64sProgression, type IntervalGrid } from "./int64s.js";

/**
 * Block codec for sample timestamps (integer milliseconds, |t| <= 2^53-1, normally ascending).
 * Layouts: constant, arithmetic (perfect scrape grid), delta / delta-of-delta / linear-residual
 * FOR bit-packed (jittered grids, gaps), varints, lz4 only where it pays.
 */
export function encodeTimestamps(ts: ArrayLike<number>, out: ByteBuffer, n = ts.length): TimestampsEncoding {
  return encodeInt64s(ts, out, n);
}

/** Decodes `count` timestamps into out[0..count); throws STRATA_CORRUPT_DATA on malformed input. */
export function decodeTimestamps(tag: number, bytes: Uint8Array, count: number, out: Float64Array): void {
  decodeInt64s(tag, bytes, count, out);
}

/**
 * Decodes `count` timestamps into out[0..count) exactly inside the intervals of `grid`; returns
 * whether values outside them were left as ascending placeholders (decodeInt64sNear).
 */
export function decodeTimestampsNear(tag: number, bytes: Uint8Array, count: number, out: Float64Array, grid: IntervalGrid): boolean {
  return decodeInt64sNear(tag, bytes, count, out, grid);
}

/**
 * Whether `count` timestamps are stored as an arithmetic progression (a perfect scrape grid):
 * then timestamp i is `progression.x0 + i·progression.step` (int64sProgression).
 */
export function timestampsProgression(tag: number, bytes: Uint8Array, count: number): boolean {
  return int64sProgression(tag, bytes, count);
}
