import { formatPromValue } from "@strata/promql";

/**
 * Sample values written as bytes, exactly as formatPromValue writes them (the shortest decimal
 * that parses back to the double, the closest one when several have that length, in plain
 * decimal form), without V8's digit search (`String(v)`, ~125–170 ns per fraction) and without a
 * string per value.
 *
 * Two exact paths, both on float64 arithmetic only:
 *
 * - Short: with k chosen so that m = round(|v|·10^k) has 15 digits, m/10^k === |v| (one
 *   correctly rounded division of two exact doubles, k ≤ 22) proves that m·10^-k parses back to
 *   v. Decimals of ≤ 15 significant digits at one scale lie further apart than a double's
 *   round-trip interval is wide, so round() finds the only candidate, and m without its trailing
 *   zeros is the shortest.
 * - Wide (16–17 digits: rates, ratios): with k chosen so that x = |v|·10^k lies in [1e16, 1e17),
 *   x is held exactly as a double-double (Dekker's product of |v| and the exact 10^k), and the
 *   round-trip interval of v, scaled the same way, as x − dLo … x + dHi (half the gaps to the
 *   neighbouring doubles times 10^k: a power of two times 10^k, exact). The interval is at most
 *   22.3 units wide, so it holds at most one multiple of 100 (then the shortest has ≤ 15 digits),
 *   else up to three multiples of 10 (16 digits: the closest one, which is one of the two beside
 *   x), else the integer closest to x (17 digits). Integers are compared with x through t − lo, where x = hi + lo and a candidate is
 *   hi + t; a comparison closer than 1e-6 of a unit to a bound or a tie goes the general way,
 *   so rounding in those few operations can never decide an answer.
 *
 * Everything else (|v| below 1e-7 or from 1e15 on, 16–17-digit values below 1e-6, NaN, ±Inf,
 * ±0, undecided cases) takes V8's digits.
 */

const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Veltkamp splitting constant for Dekker's exact product (2^27 + 1). */
const SPLIT = 134_217_729;
/** The high and low halves (26 bits each) of 10^k, for the exact product. */
const POW10_HI = new Float64Array(23);
const POW10_LO = new Float64Array(23);
for (let k = 0; k < 23; k++) {
  const t = SPLIT * POW10[k]!;
  POW10_HI[k] = t - (t - POW10[k]!);
  POW10_LO[k] = POW10[k]! - POW10_HI[k]!;
}

/**
 * Half an ulp of a double with biased exponent e: 2^(e − 1023 − 53), for e ≥ 53 (wide's domain
 * lies far inside). Read from a table, not built through the F64/U32 words: a double loaded
 * right after two 32-bit stores to its halves waits for them to retire.
 */
const HALF_ULP = Float64Array.from({ length: 2048 }, (_, e) => 2 ** (e - 1076));

/** A margin, in units of the 17-digit integer, inside which a comparison is not trusted. */
const EPS = 1e-6;

/** The bits of one double (little-endian words: [1] holds sign, exponent, top of the mantissa). */
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);

/** The scale (decimal places for 15 digits) of the last fraction written the short way. */
let lastScale = 0;
/** The scale (decimal places for 17 digits) of the last fraction written the wide way. */
let lastWideScale = 0;

/**
 * Fractions tried the wide way first after one that needed 16–17 digits: computed values (rates,
 * ratios) rarely have ≤ 15, and a failed short try costs ~15 ns. Both ways write the same bytes;
 * this only decides which is tried first.
 */
const SKIP_AFTER_MISS = 7;
let skip = 0;

/** The result of wide(): the integer hiDigits·1e8 + loDigits, times 10^-wideScale. */
let hiDigits = 0;
let loDigits = 0;
let wideScale = 0;

/**
 * Writes v as formatPromValue(v) at buf[pos] and returns the position after it. buf must have
 * room for VALUE_MAX_BYTES from pos (the general way writes up to 330 bytes: 5e-324 in plain
 * decimal form); up to three bytes after the returned position may be overwritten too (the
 * digits go four at a time). Nothing before pos is touched.
 */
export function writeValue(buf: Uint8Array, pos: number, v: number): number {
  const a = v < 0 ? -v : v;
  if (a >= 1e-7 && a < 1e15) {
    if (Number.isInteger(a)) {
      const h = Math.floor(a / 1e8);
      return writeDigits(buf, pos, v < 0, h, a - h * 1e8, 0);
    }
    if (skip > 0) {
      skip--;
      if (wide(a)) return writeDigits(buf, pos, v < 0, hiDigits, loDigits, wideScale);
    }
    // Short: the scale of the previous value first (a series' values keep their magnitude), then
    // the binary exponent's estimate of log10 when it does not give 15 digits.
    let k = lastScale;
    let t = a * POW10[k]!;
    if (!(t >= 1e14 && t < 1e15)) {
      F64[0] = a;
      k = 14 - Math.floor((((U32[1]! >>> 20) & 0x7ff) - 1023) * 0.3010299956639812);
      t = a * POW10[k]!;
      if (t >= 1e15) t = a * POW10[--k]!;
      if (k >= 0) lastScale = k;
    }
    const m = Math.round(t);
    if (k >= 0 && k <= 22 && m < 1e15 && m / POW10[k]! === a) {
      const h = Math.floor(m / 1e8);
      return writeDigits(buf, pos, v < 0, h, m - h * 1e8, k);
    }
    skip = SKIP_AFTER_MISS;
    if (wide(a)) return writeDigits(buf, pos, v < 0, hiDigits, loDigits, wideScale);
  }
  // Outside the paths' domain or undecided: V8's digits. JSON.stringify of a finite number skips
  // the number-string cache String() consults.
  let s = v - v === 0 && v !== 0 ? JSON.stringify(v) : "e";
  if (s.indexOf("e") >= 0) s = formatPromValue(v);
  for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
  return pos;
}

/**
 * The shortest (then closest) decimal that parses back to a, a positive normal non-integer, into
 * hiDigits/loDigits/wideScale; false when a is outside the domain or a comparison is too close
 * to call (the caller then takes V8's digits).
 */
function wide(a: number): boolean {
  F64[0] = a;
  const w1 = U32[1]!;
  const w0 = U32[0]!;
  const e = (w1 >>> 20) & 0x7ff;
  let k = lastWideScale;
  let hi = a * POW10[k]!;
  if (!(hi >= 1e16 && hi < 1e17)) {
    // floor((e − 1023)·log10 2) is floor(log10 a) or one less; the range check below corrects it.
    k = 16 - Math.floor((e - 1023) * 0.3010299956639812);
    if (k < 0 || k > 22) return false;
    hi = a * POW10[k]!;
    if (hi < 1e16 && k < 22) hi = a * POW10[++k]!;
    else if (hi >= 1e17 && k > 0) hi = a * POW10[--k]!;
    if (!(hi >= 1e16 && hi < 1e17)) return false;
    lastWideScale = k;
  }
  // x = a·10^k = hi + lo exactly (Dekker); hi is an even integer (≥ 2^53), |lo| ≤ 8.
  const s = SPLIT * a;
  const ah = s - (s - a);
  const al = a - ah;
  const bh = POW10_HI[k]!;
  const bl = POW10_LO[k]!;
  const lo = ah * bh - hi + ah * bl + al * bh + al * bl;
  // Half the gap to the next double above, times 10^k; the gap below is half that at a power
  // of two. (Whether a bound itself parses back to a depends on a's parity; candidates that
  // close to a bound are left to V8 below.)
  const dHi = HALF_ULP[e]! * POW10[k]!;
  const dLo = (w1 & 0xfffff) === 0 && w0 === 0 ? dHi / 2 : dHi;

  // hi = q·1e8 + r8 without fmod (a runtime call on doubles): q·1e8 = q·5^8·2^8 is exact, and
  // hi − q·1e8 is an integer below 2e8, exact too.
  let q = Math.floor(hi / 1e8);
  let r8 = hi - q * 1e8;
  if (r8 < 0) {
    q--;
    r8 += 1e8;
  }
  // Multiples of 100 (≤ 15 digits), then of 10 (16 digits), then integers (17 digits): the first
  // modulus with a candidate inside gives the shortest; of the two candidates beside x, the
  // closer one inside. Residues by constant divisors (int32 multiply-shift, no idiv).
  const r = r8 | 0;
  let t = nearest(100, r - ((r / 100) | 0) * 100, r, lo, dHi, dLo);
  if (t !== t) t = nearest(10, r - ((r / 10) | 0) * 10, r, lo, dHi, dLo);
  if (t !== t) t = nearest(1, 0, r, lo, dHi, dLo);
  if (t !== t || t === Infinity) return false;
  let l = r8 + t;
  let h = q;
  if (l < 0) {
    l += 1e8;
    h--;
  } else if (l >= 1e8) {
    l -= 1e8;
    h++;
  }
  hiDigits = h;
  loDigits = l;
  wideScale = k;
  return true;
}

/**
 * Of the multiples of mod (hi + t with t ≡ −rm mod mod) beside x = hi + lo, the offset t of the
 * one closer to x inside (x − dLo, x + dHi); NaN when neither is inside, Infinity when the answer
 * is too close to call (a candidate on a bound within rounding, or two within rounding of a tie).
 * r: hi + t's low 8 digits are r + t (mod 1e8).
 */
function nearest(mod: number, rm: number, r: number, lo: number, dHi: number, dLo: number): number {
  // tb = the candidate at or below x (|lo| ≤ 8: for mod ≥ 10, lo + rm lies in [−8, mod + 8), one
  // step from −rm at most).
  const u = lo + rm;
  let tb = -rm;
  if (mod === 1) tb = Math.floor(lo);
  else if (u < 0) tb -= mod;
  else if (u >= mod) tb += mod;
  const rb = tb - lo; // ≤ 0 up to rounding
  const ra = rb + mod; // > 0
  const inB = rb >= -dLo - EPS;
  const inA = ra <= dHi + EPS;
  // On a bound (within rounding): exactly on it only when the decimal is a midpoint between two
  // doubles, which parses to a or its neighbour by parity; too close to call here.
  if ((inB && rb < -dLo + EPS) || (inA && ra > dHi - EPS)) return Infinity;
  if (inB && inA) {
    const db = -rb;
    if (db < ra - EPS) return tb;
    if (ra < db - EPS) return tb + mod;
    // An exact tie (x exactly halfway: lo is then a half-integer or an integer, and rb, ra are
    // computed exactly): the even one of the two digit strings, as ECMAScript's Number::toString
    // says. hi + t over mod has the parity of (r + t)/mod, since 1e8/mod is even.
    if (db === ra) return (((r + tb) / mod) & 1) === 0 ? tb : tb + mod;
    return Infinity;
  }
  if (inB) return tb;
  if (inA) return tb + mod;
  return NaN;
}

/** n's four decimal digits (leading zeros kept) as a little-endian word: the first digit in the low byte. */
const DIGITS4 = new Uint32Array(10_000);
/** n's decimal digits without leading zeros, left-aligned in a little-endian word (the rest zeros); LEAD_LENGTH[n] of them count. */
const LEAD4 = new Uint32Array(10_000);
const LEAD_LENGTH = new Uint8Array(10_000);
for (let n = 0; n < 10_000; n++) {
  const s = String(n);
  const full = s.padStart(4, "0");
  DIGITS4[n] = (full.charCodeAt(0) | (full.charCodeAt(1) << 8) | (full.charCodeAt(2) << 16) | (full.charCodeAt(3) << 24)) >>> 0;
  let w = 0;
  for (let i = 0; i < s.length; i++) w |= s.charCodeAt(i) << (8 * i);
  LEAD4[n] = w >>> 0;
  LEAD_LENGTH[n] = s.length;
}

/** The buffer `view` covers (writeValue's callers write a chunk at a time into one buffer). */
let viewOf: Uint8Array | undefined;
let view: DataView = new DataView(new ArrayBuffer(0));

function viewFor(buf: Uint8Array): DataView {
  if (buf !== viewOf) {
    viewOf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

/**
 * Writes (hi·1e8 + lo)·10^-k in plain decimal form: integer digits from the first non-zero one
 * (at least one), fraction digits without trailing zeros. 0 ≤ hi ≤ 1e9 + 1, 0 ≤ lo < 1e8,
 * 0 ≤ k ≤ 22. The fraction's trailing zeros are dropped first; then the digits go left to right,
 * four at a time (a 32-bit store of a table word: int32 arithmetic, constant divisors), and when
 * the point falls among them the integer digits move one byte left to make room for it. Up to
 * three bytes after the returned position may be overwritten (the leading group's word).
 */
function writeDigits(buf: Uint8Array, pos: number, negative: boolean, hi: number, lo: number, k: number): number {
  let h = hi | 0;
  let l = lo | 0;
  // The fraction's trailing zeros go: eight at a time while lo is zero, then one at a time.
  while (k >= 8 && l === 0) {
    const hq = (h / 100_000_000) | 0;
    l = h - hq * 100_000_000;
    h = hq;
    k -= 8;
  }
  while (k > 0) {
    const q = (l / 10) | 0;
    if (l - q * 10 !== 0) break;
    const hq = (h / 10) | 0;
    l = q + (h - hq * 10) * 10_000_000;
    h = hq;
    k--;
  }
  if (negative) buf[pos++] = 45; // '-'
  const dv = viewFor(buf);
  if (k === 0) return digitsOf(dv, pos, h, l);
  const nd = h > 0 ? 8 + digitCount(h) : digitCount(l);
  if (k >= nd) {
    buf[pos] = 48; // '0'
    buf[pos + 1] = 46; // '.'
    const z = pos + 2 + k - nd;
    for (let i = pos + 2; i < z; i++) buf[i] = 48;
    return digitsOf(dv, z, h, l);
  }
  // The digits one byte to the right, then the integer digits back by one and the point after them.
  const end = digitsOf(dv, pos + 1, h, l);
  const point = pos + nd - k;
  for (let i = pos; i < point; i++) buf[i] = buf[i + 1]!;
  buf[point] = 46; // '.'
  return end;
}

/** Writes the digits of hi·1e8 + lo (hi > 0: lo as eight digits) at p, left to right; returns the position after them. */
function digitsOf(dv: DataView, p: number, h: number, l: number): number {
  if (h > 0) {
    p = intDigits(dv, p, h);
    const a = (l / 10_000) | 0;
    dv.setUint32(p, DIGITS4[a]!, true);
    dv.setUint32(p + 4, DIGITS4[l - a * 10_000]!, true);
    return p + 8;
  }
  return intDigits(dv, p, l);
}

/** Writes the digits of 0 ≤ x < 2^31 at p, left to right; returns the position after them. */
function intDigits(dv: DataView, p: number, x: number): number {
  if (x < 10_000) {
    dv.setUint32(p, LEAD4[x]!, true);
    return p + LEAD_LENGTH[x]!;
  }
  if (x < 100_000_000) {
    const a = (x / 10_000) | 0;
    dv.setUint32(p, LEAD4[a]!, true);
    p += LEAD_LENGTH[a]!;
    dv.setUint32(p, DIGITS4[x - a * 10_000]!, true);
    return p + 4;
  }
  const a = (x / 100_000_000) | 0;
  const r = x - a * 100_000_000;
  const b = (r / 10_000) | 0;
  dv.setUint32(p, LEAD4[a]!, true);
  p += LEAD_LENGTH[a]!;
  dv.setUint32(p, DIGITS4[b]!, true);
  dv.setUint32(p + 4, DIGITS4[r - b * 10_000]!, true);
  return p + 8;
}

/** Decimal digits of 0 < x < 2^31 (1 for 0). */
function digitCount(x: number): number {
  if (x < 10_000) return x < 100 ? (x < 10 ? 1 : 2) : x < 1000 ? 3 : 4;
  if (x < 100_000_000) return x < 1_000_000 ? (x < 100_000 ? 5 : 6) : x < 10_000_000 ? 7 : 8;
  return x < 1_000_000_000 ? 9 : 10;
}

/** Room a value may take in the buffer (the longest plain form: -2.2250738585072014e-308 written out). */
export const VALUE_MAX_BYTES = 400;
