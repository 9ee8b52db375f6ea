import { MAX_DECIMAL_EXP } from "./constants.js";

/**
 * float64 → decimal (mantissa, exponent) for a whole block, in the way of VictoriaMetrics'
 * lib/decimal but exact by construction: the block gets ONE exponent e, and every value v is
 * stored as an integer mantissa m with |m| <= 2^53-1 such that decoding gives v bit for bit:
 *
 *   e <  0:  v === m / 10^-e      (both operands exact, so IEEE division rounds the exact
 *                                   rational m·10^e to the nearest double — the same double
 *                                   the decimal literal parses to)
 *   e >= 0:  v === m * 10^e
 *
 * The encoder picks the smallest number of decimals that represents every value; if a value has
 * more significant digits than a safe mantissa holds (|m| would exceed 2^53-1), or needs more than
 * MAX_DECIMAL_EXP decimals, conversion reports failure and the caller stores raw floats.
 * Because the encoder verifies every value by decoding it, the conversion is lossless or fails;
 * it never rounds.
 *
 * Values a mantissa cannot express — NaN (any payload, incl. the Prometheus stale marker),
 * ±Inf and -0 — are "exceptions": their slots get the previous mantissa (keeps deltas small)
 * and the caller stores their raw bits separately.
 */

export const P10: Float64Array = new Float64Array(MAX_DECIMAL_EXP + 1);
for (let i = 0; i <= MAX_DECIMAL_EXP; i++) P10[i] = Number(`1e${i}`);

const MAX_SAFE = 9007199254740991;

/** Sentinel exponent: conversion impossible. */
export const NOT_DECIMAL = 1000;

function isException(v: number): boolean {
  return v !== v || v === Infinity || v === -Infinity || (v === 0 && 1 / v < 0);
}

/** Mantissa of v at k decimals if one decodes exactly to v, else NaN. */
function mantissaAt(v: number, k: number): number {
  if (k === 0) return Number.isInteger(v) && v <= MAX_SAFE && v >= -MAX_SAFE ? v : NaN;
  const p = P10[k] as number;
  const m = Math.round(v * p);
  if (m > MAX_SAFE || m < -MAX_SAFE) return NaN;
  if (m / p === v) return m;
  // v*p carries a rounding error of up to an ulp of m; near 2^53 that can miss by one.
  if (m > 4.5e15 || m < -4.5e15) {
    if (m + 1 <= MAX_SAFE && (m + 1) / p === v) return m + 1;
    if (m - 1 >= -MAX_SAFE && (m - 1) / p === v) return m - 1;
  }
  return NaN;
}

/**
 * Converts values[0..n) to mantissas[0..n) sharing one exponent, which it returns
 * (NOT_DECIMAL if impossible). Indexes of exception values are written to excIdx; their count
 * is left in `decimalResult.exceptions`. If every value is an exception the result is NOT_DECIMAL.
 */
export const decimalResult = { exceptions: 0 };

export function toDecimal(values: Float64Array, n: number, mantissas: Float64Array, excIdx: Uint32Array): number {
  let k = 0;
  let exc = 0;
  let hasBig = false;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (isException(v)) {
      excIdx[exc++] = i;
      continue;
    }
    if (v > MAX_SAFE || v < -MAX_SAFE) {
      // Only a positive exponent can hold it; that requires the whole block to be integers.
      if (!Number.isInteger(v)) return NOT_DECIMAL;
      hasBig = true;
      continue;
    }
    while (Number.isNaN(mantissaAt(v, k))) {
      k++;
      if (k > MAX_DECIMAL_EXP) return NOT_DECIMAL;
    }
  }
  decimalResult.exceptions = exc;
  if (exc === n) return NOT_DECIMAL;
  if (hasBig && k > 0) return NOT_DECIMAL;
  if (k > 0) {
    let prev = NaN;
    for (let i = 0; i < n; i++) {
      const v = values[i] as number;
      if (isException(v)) {
        mantissas[i] = prev;
        continue;
      }
      const m = mantissaAt(v, k);
      if (m !== m) return NOT_DECIMAL; // a mantissa overflowed at the block's precision
      mantissas[i] = m;
      prev = m;
    }
    fillLeading(mantissas, n);
    return -k;
  }
  // All integers: strip common trailing decimal zeros (1200, 1300 → 12, 13 · 10^2); values
  // beyond 2^53 require it.
  let e = 0;
  while (e < MAX_DECIMAL_EXP) {
    const p = P10[e + 1] as number;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const v = values[i] as number;
      if (v === 0 || isException(v)) continue;
      const m = v / p;
      if (!Number.isInteger(m) || m * p !== v) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    e++;
  }
  const p = P10[e] as number;
  let prev = NaN;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (isException(v)) {
      mantissas[i] = prev;
      continue;
    }
    const m = e === 0 ? v : v / p;
    if (m > MAX_SAFE || m < -MAX_SAFE) return NOT_DECIMAL;
    mantissas[i] = m;
    prev = m;
  }
  fillLeading(mantissas, n);
  return e;
}

/** Exception slots before the first real value take the first real mantissa. */
function fillLeading(m: Float64Array, n: number): void {
  let first = 0;
  while (first < n && m[first] !== m[first]) first++;
  const v = m[first] as number;
  for (let i = 0; i < first; i++) m[i] = v;
}

/** In place: mantissas → floats for exponent e. */
export function fromDecimal(m: Float64Array, n: number, e: number): void {
  if (e === 0) return;
  if (e < 0) {
    const p = P10[-e] as number;
    for (let i = 0; i < n; i++) m[i] = (m[i] as number) / p;
  } else {
    const p = P10[e] as number;
    for (let i = 0; i < n; i++) m[i] = (m[i] as number) * p;
  }
}
