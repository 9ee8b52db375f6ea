import { bitLength } from "./bitpack.js";

/**
 * LOSSY "nearest delta" quantisation (VictoriaMetrics nearest_delta with precisionBits < 64).
 *
 * Rewrites x[0..n) into dst so that each value keeps only `precisionBits` significant bits:
 * dst[i] = dst[i-1] + round((x[i] - dst[i-1]) / 2^t) * 2^t with t = max(0, bits(|x[i]|) - precisionBits).
 * The error of every value is at most 2^(t-1) <= |x[i]| * 2^-precisionBits and does not
 * accumulate (each step corrects against the reconstructed previous value). The deltas then
 * share t trailing zero bits, which the FOR groups' shift removes.
 *
 * Decoding needs nothing special: the result is an ordinary int sequence. Never used by
 * default; precisionBits >= 53 copies x unchanged (mantissas never exceed 53 bits).
 */
export function nearestDelta(x: ArrayLike<number>, n: number, precisionBits: number, dst: Float64Array): void {
  if (!Number.isInteger(precisionBits) || precisionBits < 1) throw new RangeError(`precisionBits must be an integer >= 1, got ${precisionBits}`);
  if (n === 0) return;
  let prev = x[0] as number;
  dst[0] = prev;
  for (let i = 1; i < n; i++) {
    const v = x[i] as number;
    const t = precisionBits >= 53 ? 0 : bitLength(Math.abs(v)) - precisionBits;
    if (t <= 0) {
      dst[i] = v;
      prev = v;
      continue;
    }
    const q = 2 ** t;
    const rec = prev + Math.round((v - prev) / q) * q;
    dst[i] = rec;
    prev = rec;
  }
}
