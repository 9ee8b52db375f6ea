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
 * Values a mantissa at the block's exponent cannot express are "exceptions" whose raw bits the
 * caller stores separately: always NaN (any payload, incl. the Prometheus stale marker), ±Inf
 * and -0; and also a value that needs more decimals than the rest of the block when giving it
 * its own raw 8 bytes is cheaper than widening every mantissa (a gauge of 2-decimal values
 * with one 0.30000000000000004 stays a 2-decimal block). Exception slots get the previous
 * mantissa, which keeps deltas small.
 *
 * The encoder verifies every value by decoding it, so conversion is lossless or the value is
 * an exception; it never rounds. If every value is an exception the block is NOT_DECIMAL.
 */

export const P10: Float64Array = new Float64Array(MAX_DECIMAL_EXP + 1);
for (let i = 0; i <= MAX_DECIMAL_EXP; i++) P10[i] = Number(`1e${i}`);

const MAX_SAFE = 9007199254740991;

/** Sentinel exponent: conversion impossible. */
export const NOT_DECIMAL = 1000;

/** Per-value class: 0..22 = fewest decimals; these mark values no decimal count holds. */
const K_SPECIAL = 30; // NaN, ±Inf, -0
const K_BIG = 29; // integer beyond 2^53: only a positive exponent can hold it
const K_NONE = 28; // needs more than 22 decimals or a mantissa beyond 2^53-1

/** Estimated bytes an exception costs (index, kind, 8 raw bytes). */
const EXCEPTION_COST = 10;
/** Estimated bytes one more decimal costs per changing value (log2(10) bits, partly). */
const DECIMAL_COST = 0.3;

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

/** Fewest decimals (0..22) that represent v exactly, or K_BIG / K_NONE. */
function decimalsOf(v: number): number {
  if (v > MAX_SAFE || v < -MAX_SAFE) return Number.isInteger(v) ? K_BIG : K_NONE;
  if (Number.isInteger(v)) return 0;
  // Skip k where even the integer part of |v|·10^k would not fit a safe mantissa.
  for (let k = 1; k <= MAX_DECIMAL_EXP; k++) {
    const m = mantissaAt(v, k);
    if (m === m) return k;
    if (Math.abs(v) * (P10[k] as number) > MAX_SAFE) return K_NONE;
  }
  return K_NONE;
}

/**
 * Converts values[0..n) to mantissas[0..n) sharing one exponent, which it returns
 * (NOT_DECIMAL if no value converts). Indexes of exception values are written to excIdx in
 * ascending order; their count is left in `decimalResult.exceptions`.
 */
export const decimalResult = { exceptions: 0 };

let kOf = new Uint8Array(8192);
const hist = new Float64Array(32);

export function toDecimal(values: Float64Array, n: number, mantissas: Float64Array, excIdx: Uint32Array): number {
  if (kOf.length < n) kOf = new Uint8Array(Math.max(n, kOf.length * 2));
  hist.fill(0);
  let changing = 0;
  let prev = NaN;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    const k = isException(v) ? K_SPECIAL : decimalsOf(v);
    kOf[i] = k;
    hist[k] = (hist[k] as number) + 1;
    if (v !== prev) changing++;
    prev = v;
  }
  // Pick the block's decimals K minimising (values above K become exceptions) + (cost of K).
  let kMax = -1;
  for (let k = MAX_DECIMAL_EXP; k >= 0; k--) {
    if (hist[k] !== 0) {
      kMax = k;
      break;
    }
  }
  if (kMax < 0) {
    // No value with a safe decimal form; big integers may still share a positive exponent.
    if (hist[K_BIG] === 0) return NOT_DECIMAL;
    kMax = 0;
  }
  let bestK = 0;
  let bestCost = Infinity;
  let above = (hist[K_NONE] as number) + (hist[K_BIG] as number);
  for (let k = kMax; k >= 0; k--) {
    const cost = above * EXCEPTION_COST + k * DECIMAL_COST * changing;
    if (cost < bestCost) {
      bestCost = cost;
      bestK = k;
    }
    above += hist[k] as number;
  }
  return bestK > 0 ? convertDecimals(values, n, bestK, mantissas, excIdx) : convertIntegers(values, n, mantissas, excIdx);
}

function convertDecimals(values: Float64Array, n: number, k: number, mantissas: Float64Array, excIdx: Uint32Array): number {
  let exc = 0;
  let prev = NaN;
  for (let i = 0; i < n; i++) {
    const m = (kOf[i] as number) <= k ? mantissaAt(values[i] as number, k) : NaN;
    if (m !== m) {
      // Above K, or a mantissa that overflowed at K: store the raw bits.
      excIdx[exc++] = i;
      mantissas[i] = prev;
      continue;
    }
    mantissas[i] = m;
    prev = m;
  }
  return finish(mantissas, n, exc, -k);
}

function convertIntegers(values: Float64Array, n: number, mantissas: Float64Array, excIdx: Uint32Array): number {
  // Strip common trailing decimal zeros (1200, 1300 → 12, 13 · 10^2); integers beyond 2^53
  // need it. Values that are not integers are exceptions here.
  let e = 0;
  while (e < MAX_DECIMAL_EXP) {
    const p = P10[e + 1] as number;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const k = kOf[i] as number;
      if (k !== 0 && k !== K_BIG) continue;
      const v = values[i] as number;
      if (v === 0) continue;
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
  let exc = 0;
  let prev = NaN;
  for (let i = 0; i < n; i++) {
    const k = kOf[i] as number;
    const v = values[i] as number;
    const m = k === 0 || k === K_BIG ? (e === 0 ? v : v / p) : NaN;
    if (!(m <= MAX_SAFE && m >= -MAX_SAFE)) {
      excIdx[exc++] = i;
      mantissas[i] = prev;
      continue;
    }
    mantissas[i] = m;
    prev = m;
  }
  return finish(mantissas, n, exc, e);
}

function finish(mantissas: Float64Array, n: number, exc: number, e: number): number {
  decimalResult.exceptions = exc;
  if (exc === n) return NOT_DECIMAL;
  // Exception slots before the first real value take the first real mantissa.
  let first = 0;
  while (first < n && mantissas[first] !== mantissas[first]) first++;
  const v = mantissas[first] as number;
  for (let i = 0; i < first; i++) mantissas[i] = v;
  return e;
}

/** In place: mantissas → floats for exponent e. */
export function fromDecimal(m: Float64Array, n: number, e: number): void {
  fromDecimalRange(m, 0, n, e);
}

/** fromDecimal over m[from..to). */
export function fromDecimalRange(m: Float64Array, from: number, to: number, e: number): void {
  if (e === 0) return;
  if (e < 0) {
    const p = P10[-e] as number;
    for (let i = from; i < to; i++) m[i] = (m[i] as number) / p;
  } else {
    const p = P10[e] as number;
    for (let i = from; i < to; i++) m[i] = (m[i] as number) * p;
  }
}
