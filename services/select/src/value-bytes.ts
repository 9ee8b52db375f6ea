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

/** '00'…'99' as byte pairs. */
const PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  PAIRS[2 * i] = 48 + Math.floor(i / 10);
  PAIRS[2 * i + 1] = 48 + (i % 10);
}

/** The 16 digits of m < 1e16, right-aligned (leading zeros included). */
const DIGITS = new Uint8Array(16);

/** Writes the 8 digits of x < 1e8 (with leading zeros) at DIGITS[at]. */
function eight(x: number, at: number): void {
  const a = (x / 10000) | 0;
  const b = x - a * 10000;
  const a1 = (a / 100) | 0;
  const a2 = a - a1 * 100;
  const b1 = (b / 100) | 0;
  const b2 = b - b1 * 100;
  DIGITS[at] = PAIRS[2 * a1]!;
  DIGITS[at + 1] = PAIRS[2 * a1 + 1]!;
  DIGITS[at + 2] = PAIRS[2 * a2]!;
  DIGITS[at + 3] = PAIRS[2 * a2 + 1]!;
  DIGITS[at + 4] = PAIRS[2 * b1]!;
  DIGITS[at + 5] = PAIRS[2 * b1 + 1]!;
  DIGITS[at + 6] = PAIRS[2 * b2]!;
  DIGITS[at + 7] = PAIRS[2 * b2 + 1]!;
}

/**
 * Writes v as formatPromValue(v) at buf[pos] and returns the position after it. buf must have
 * room for VALUE_MAX_BYTES from pos (the general way writes up to 330 bytes: 5e-324 in plain
 * decimal form).
 */
export function writeValue(buf: Uint8Array, pos: number, v: number): number {
  let a = v;
  if (v < 0) {
    a = -v;
  }
  if (a >= 1e-7 && a < 1e15) {
    let k = 14 - Math.floor(Math.log10(a));
    let m = Math.round(a * POW10[k]!);
    if (m >= 1e15) m = Math.round(a * POW10[--k]!);
    if (k >= 0 && m / POW10[k]! === a) {
      const hi = Math.floor(m / 1e8);
      eight(m - hi * 1e8, 8);
      eight(hi, 0);
      // Significant digits: from the first non-zero digit to the last non-zero digit (or the
      // units digit, whichever is later).
      let first = 0;
      while (first < 15 && DIGITS[first] === 48) first++;
      let end = 16;
      while (end > 16 - k && DIGITS[end - 1] === 48) end--;
      if (v < 0) buf[pos++] = 45; // '-'
      const point = 16 - k; // DIGITS index where the fraction starts
      if (point <= first) {
        buf[pos++] = 48;
        if (end > point) buf[pos++] = 46;
        for (let i = point; i < first; i++) buf[pos++] = 48;
        for (let i = first; i < end; i++) buf[pos++] = DIGITS[i]!;
      } else {
        for (let i = first; i < point; i++) buf[pos++] = DIGITS[i]!;
        if (end > point) {
          buf[pos++] = 46;
          for (let i = point; i < end; i++) buf[pos++] = DIGITS[i]!;
        }
      }
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
