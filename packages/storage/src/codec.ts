import { deflateRawSync, inflateRawSync } from "node:zlib";
import { ByteBuffer, ByteReader } from "./bytes.js";

/**
 * Block codecs: timestamps and values of one block, each encoded into a caller's ByteBuffer,
 * returning a one-byte tag that the block header stores (docs/format/storage.md §codecs).
 *
 * These are the storage-local codecs the engine writes today. @strata/encoding (being written in
 * parallel) will offer the same shape; the tags here are part of the part format, so a switch
 * gets new tag numbers and keeps decoding these.
 *
 * Tag byte: low 7 bits = kind, bit 7 (0x80) = payload is deflate-raw compressed.
 */

export const TS_CONST_DELTA = 1;
export const TS_DOD = 2;

export const VAL_CONST = 1;
export const VAL_DELTA_CONST = 2;
export const VAL_DELTA = 3;
export const VAL_DOD = 4;
export const VAL_RAW = 5;

export const TAG_DEFLATE = 0x80;

/** Payloads shorter than this are never compressed (zlib overhead is not worth it). */
const MIN_COMPRESS = 96;

const POW10: number[] = [];
for (let i = 0; i <= 22; i++) POW10.push(Number(`1e${i}`));
const MAX_MANTISSA = 2 ** 50;

let mant = new Float64Array(8192);
let exps = new Int8Array(8192);

let compressing = true;

function maybeCompress(out: ByteBuffer, start: number, tag: number): number {
  const len = out.len - start;
  if (!compressing || len < MIN_COMPRESS) return tag;
  const raw = out.buf.subarray(start, out.len);
  const c = deflateRawSync(raw, { level: 6 });
  if (c.length * 10 > len * 9) return tag;
  out.len = start;
  out.pushBytes(c);
  return tag | TAG_DEFLATE;
}

function payload(tag: number, src: Uint8Array): Uint8Array {
  return (tag & TAG_DEFLATE) !== 0 ? inflateRawSync(src) : src;
}

/** Appends the encoded timestamps (integers, ms) of ts[0..n) to out; returns the tag. */
export function encodeTimestamps(out: ByteBuffer, ts: Float64Array, n: number, compress = true): number {
  compressing = compress;
  const start = out.len;
  const first = ts[0] ?? 0;
  out.pushZigzag(first);
  if (n <= 1) {
    out.pushZigzag(0);
    return TS_CONST_DELTA;
  }
  const d0 = ts[1]! - first;
  let constant = true;
  for (let i = 2; i < n; i++) {
    if (ts[i]! - ts[i - 1]! !== d0) {
      constant = false;
      break;
    }
  }
  out.pushZigzag(d0);
  if (constant) return TS_CONST_DELTA;
  let prevD = d0;
  for (let i = 2; i < n; i++) {
    const d = ts[i]! - ts[i - 1]!;
    out.pushZigzag(d - prevD);
    prevD = d;
  }
  return maybeCompress(out, start, TS_DOD);
}

/** Decodes n timestamps of `tag` from src into out[0..n). Throws RangeError on corrupt input. */
export function decodeTimestamps(tag: number, src: Uint8Array, n: number, out: Float64Array): void {
  const r = new ByteReader(payload(tag, src));
  const first = r.zigzag();
  const d0 = r.zigzag();
  if (n === 0) return;
  out[0] = first;
  switch (tag & 0x7f) {
    case TS_CONST_DELTA:
      for (let i = 1; i < n; i++) out[i] = first + d0 * i;
      return;
    case TS_DOD: {
      if (n < 2) return;
      let d = d0;
      out[1] = first + d0;
      for (let i = 2; i < n; i++) {
        d += r.zigzag();
        out[i] = out[i - 1]! + d;
      }
      return;
    }
    default:
      throw new RangeError(`unknown timestamps tag ${tag}`);
  }
}

/** Decimal form of v as m * 10^e with |m| < 2^50; returns false when there is none. */
function toDecimal(v: number, i: number): boolean {
  if (Number.isInteger(v)) {
    if (Math.abs(v) < MAX_MANTISSA) {
      if (v === 0 && Object.is(v, -0)) return false;
      mant[i] = v;
      exps[i] = 0;
      return true;
    }
    for (let e = 1; e <= 22; e++) {
      const p = POW10[e]!;
      const m = Math.round(v / p);
      if (Math.abs(m) < MAX_MANTISSA && m * p === v) {
        mant[i] = m;
        exps[i] = e;
        return true;
      }
    }
    return false;
  }
  if (!Number.isFinite(v)) return false;
  for (let k = 1; k <= 18; k++) {
    const p = POW10[k]!;
    const m = Math.round(v * p);
    if (Math.abs(m) >= MAX_MANTISSA) return false;
    if (m / p === v) {
      mant[i] = m;
      exps[i] = -k;
      return true;
    }
  }
  return false;
}

function fromDecimal(m: number, e: number): number {
  return e < 0 ? m / POW10[-e]! : e === 0 ? m : m * POW10[e]!;
}

function encodeRaw(out: ByteBuffer, vals: Float64Array, n: number): number {
  const start = out.len;
  out.ensure(n * 8);
  const dv = new DataView(out.buf.buffer, out.buf.byteOffset + out.len, n * 8);
  for (let i = 0; i < n; i++) dv.setFloat64(i * 8, vals[i]!, true);
  out.len += n * 8;
  return maybeCompress(out, start, VAL_RAW);
}

/** Appends the encoded values vals[0..n) (any float64 bit pattern) to out; returns the tag. */
export function encodeValues(out: ByteBuffer, vals: Float64Array, n: number, compress = true): number {
  compressing = compress;
  if (mant.length < n) {
    mant = new Float64Array(n);
    exps = new Int8Array(n);
  }
  let emin = 127;
  let emax = -128;
  for (let i = 0; i < n; i++) {
    if (!toDecimal(vals[i]!, i)) return encodeRaw(out, vals, n);
    const e = exps[i]!;
    if (e < emin) emin = e;
    if (e > emax) emax = e;
  }
  if (n === 0) emin = 0;
  if (emax !== emin) {
    for (let i = 0; i < n; i++) {
      const e = exps[i]!;
      if (e !== emin) {
        const m = mant[i]! * POW10[e - emin]!;
        if (Math.abs(m) >= MAX_MANTISSA) return encodeRaw(out, vals, n);
        mant[i] = m;
      }
      // Scaling must round-trip bit-exactly or the block falls back to raw floats.
      if (!Object.is(fromDecimal(mant[i]!, emin), vals[i]!)) return encodeRaw(out, vals, n);
    }
  }
  const start = out.len;
  out.pushZigzag(emin);
  const m0 = mant[0] ?? 0;
  out.pushZigzag(m0);
  if (n <= 1) return VAL_CONST;
  const d0 = mant[1]! - m0;
  let constDelta = true;
  let deltaCost = 0;
  let dodCost = 0;
  let prevD = d0;
  for (let i = 1; i < n; i++) {
    const d = mant[i]! - mant[i - 1]!;
    if (d !== d0) constDelta = false;
    deltaCost += varintCost(d);
    if (i >= 2) dodCost += varintCost(d - prevD);
    prevD = d;
  }
  if (constDelta) {
    if (d0 === 0) return VAL_CONST;
    out.pushZigzag(d0);
    return VAL_DELTA_CONST;
  }
  if (dodCost + varintCost(d0) < deltaCost) {
    out.pushZigzag(d0);
    prevD = d0;
    for (let i = 2; i < n; i++) {
      const d = mant[i]! - mant[i - 1]!;
      out.pushZigzag(d - prevD);
      prevD = d;
    }
    return maybeCompress(out, start, VAL_DOD);
  }
  for (let i = 1; i < n; i++) out.pushZigzag(mant[i]! - mant[i - 1]!);
  return maybeCompress(out, start, VAL_DELTA);
}

function varintCost(d: number): number {
  const z = d >= 0 ? d * 2 : -d * 2 - 1;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 6;
}

/** Decodes n values of `tag` from src into out[0..n). Throws RangeError on corrupt input. */
export function decodeValues(tag: number, src: Uint8Array, n: number, out: Float64Array): void {
  const data = payload(tag, src);
  const kind = tag & 0x7f;
  if (kind === VAL_RAW) {
    if (data.length < n * 8) throw new RangeError(`raw values: ${data.length} bytes for ${n} values`);
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat64(i * 8, true);
    return;
  }
  const r = new ByteReader(data);
  const e = r.zigzag();
  if (e < -22 || e > 22) throw new RangeError(`values exponent ${e} out of range`);
  let m = r.zigzag();
  if (n === 0) return;
  out[0] = fromDecimal(m, e);
  switch (kind) {
    case VAL_CONST:
      for (let i = 1; i < n; i++) out[i] = out[0];
      return;
    case VAL_DELTA_CONST: {
      const d = r.zigzag();
      for (let i = 1; i < n; i++) {
        m += d;
        out[i] = fromDecimal(m, e);
      }
      return;
    }
    case VAL_DELTA:
      for (let i = 1; i < n; i++) {
        m += r.zigzag();
        out[i] = fromDecimal(m, e);
      }
      return;
    case VAL_DOD: {
      let d = r.zigzag();
      m += d;
      if (n >= 2) out[1] = fromDecimal(m, e);
      for (let i = 2; i < n; i++) {
        d += r.zigzag();
        m += d;
        out[i] = fromDecimal(m, e);
      }
      return;
    }
    default:
      throw new RangeError(`unknown values tag ${tag}`);
  }
}

