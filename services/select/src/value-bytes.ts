import { formatPromValue } from "@strata/promql";

/**
 * Sample values written as bytes, exactly as formatPromValue writes them, without the shortest-
 * digits search of V8 (`String(v)`, ~125–170 ns per fraction) for the common case.
 *
 * The fast path: with k chosen so that m = round(|v|·10^k) has 15 digits, m/10^k === |v| (one
 * correctly rounded division of two exact doubles, k ≤ 22) proves that m·10^-k parses back to v.
 * A double's round-trip interval is narrower than 2^-52·|v| while decimals of ≤ 15 significant
 * digits at one scale lie at least 10^-15·|v| apart, so at most one such decimal round-trips at
 * each scale and round() finds it (the product's rounding error is ≤ 0.07 of a unit of m).
 * The shortest round-trip decimal, when it has ≤ 15 digits, is then m without its trailing zeros
 * (the same value at a coarser scale is the same integer at this one). When the check fails,
 * the shortest decimal needs 16 or 17 digits and the value goes the general way.
 */

const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i);

/** The scale (decimal places for 15 digits) of the last fraction written. */
let lastScale = 0;

/**
 * Fractions written the general way, without trying the fast path, after one that needed 16–17
 * digits: computed values (rates, ratios) rarely have ≤ 15, and a failed try costs ~15 ns. Both
 * ways write the same bytes; this only decides which is tried first.
 */
const SKIP_AFTER_MISS = 7;
let skip = 0;

/** Scratch for the digits of one value, written right to left. */
const SCRATCH = new Uint8Array(32);

/**
 * Writes v as formatPromValue(v) at buf[pos] and returns the position after it. buf must have
 * room for VALUE_MAX_BYTES from pos (the general way writes up to 330 bytes: 5e-324 in plain
 * decimal form).
 */
export function writeValue(buf: Uint8Array, pos: number, v: number): number {
  const a = v < 0 ? -v : v;
  if (a >= 1e-7 && a < 1e15) {
    let k = 0;
    let m = a;
    let exact = true;
    if (!Number.isInteger(a) && skip > 0) {
      skip--;
      exact = false;
    } else if (!Number.isInteger(a)) {
      // The scale of the previous value first (a series' values keep their magnitude), then
      // log10 (~16 ns) when it does not give 15 digits.
      k = lastScale;
      let t = a * POW10[k]!;
      if (!(t >= 1e14 && t < 1e15)) {
        k = 14 - Math.floor(Math.log10(a));
        t = a * POW10[k]!;
        if (t >= 1e15) t = a * POW10[--k]!;
        if (k >= 0) lastScale = k;
      }
      m = Math.round(t);
      exact = k >= 0 && m < 1e15 && m / POW10[k]! === a;
      if (!exact) skip = SKIP_AFTER_MISS;
    }
    if (exact) {
      // m = hi·1e8 + lo; digits come off lo (int32 arithmetic), then off hi once lo gave 8.
      const h = Math.floor(m / 1e8);
      let hi = h | 0;
      let lo = (m - h * 1e8) | 0;
      let taken = 0;
      let p = 32;
      let fraction = false; // a non-zero fraction digit was seen: zeros from here on are written
      for (let i = 0; i < k; i++) {
        if (taken === 8) {
          lo = hi;
          hi = 0;
        }
        const q = (lo / 10) | 0;
        const d = lo - q * 10;
        lo = q;
        taken++;
        if (fraction || d !== 0) {
          SCRATCH[--p] = 48 + d;
          fraction = true;
        }
      }
      if (fraction) SCRATCH[--p] = 46; // '.'
      do {
        if (taken === 8) {
          lo = hi;
          hi = 0;
        }
        const q = (lo / 10) | 0;
        SCRATCH[--p] = 48 + lo - q * 10;
        lo = q;
        taken++;
      } while (lo !== 0 || hi !== 0);
      if (v < 0) buf[pos++] = 45; // '-'
      while (p < 32) buf[pos++] = SCRATCH[p++]!;
      return pos;
    }
  }
  // 16–17 digits (most computed values: rates, ratios) or outside [1e-7, 1e15): V8's digits.
  // JSON.stringify of a finite number skips the number-string cache String() consults.
  let s = v - v === 0 && v !== 0 ? JSON.stringify(v) : "e";
  if (s.indexOf("e") >= 0) s = formatPromValue(v);
  for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
  return pos;
}

/** Room a value may take in the buffer (the longest plain form: -2.2250738585072014e-308 written out). */
export const VALUE_MAX_BYTES = 400;
