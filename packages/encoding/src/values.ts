import { grownCapacity } from "@strata/core";
import { ByteBuffer } from "./bytes.js";
import {
  DECIMAL_FLAG,
  EXC_CANONICAL_NAN,
  EXC_NEG_INF,
  EXC_NEG_ZERO,
  EXC_POS_INF,
  EXC_RAW,
  EXC_STALE_NAN,
  INT_LAYOUT_MASK,
  IntEncoding,
  LZ4_FLAG,
  LZ4_MIN_INPUT,
  STALE_NAN_HI,
  STALE_NAN_LO,
  ValuesEncoding,
} from "./constants.js";
import { NOT_DECIMAL, decimalResult, fromDecimal, fromDecimalRange, toDecimal } from "./decimal.js";
import { corrupt } from "./errors.js";
import { nearestDelta } from "./nearest.js";
import { lz4Decompress } from "./compress.js";
import { appendMaybeLz4, checkCount, chooseIntLayout, lastChosenSize, readIntLayout, readIntLayoutAt, writeIntLayout } from "./int64s.js";
import type { IntLayout } from "./int64s.js";
import { getUvarint, getZigzag, putZigzag, varintResult, writeUvarint, zigzagSize, uvarintSize } from "./varint.js";

/**
 * Block codec for float64 sample values.
 *
 * Candidates, smallest wins:
 *  - ConstFloat: one raw float64 (any bit pattern) when all values have identical bits;
 *  - Decimal<layout>: one exponent + exceptions (NaN payloads, stale markers, ±Inf, -0 as raw
 *    bits) + the integer mantissas in the smallest int64 layout (const, arithmetic,
 *    delta/delta-of-delta/linear bit-packed or varint);
 *  - XorFloat: byte-aligned XOR with the previous value (for values no decimal can hold);
 *  - RawFloat.
 * lz4 wraps the payload only where it saves at least 10%. Lossless for every bit pattern.
 */

// Raw bits are read and written through Uint32Array views over Float64Arrays (so NaN payloads
// never pass through a JS number); the layouts are little-endian, and so must the platform be.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("@strata/encoding requires a little-endian platform");

let mantissas = new Float64Array(8192);
let excIdx = new Uint32Array(8192);
const scratch = new ByteBuffer(64 * 1024);

function grow(n: number): void {
  if (mantissas.length >= n) return;
  const cap = grownCapacity(mantissas.length, n);
  mantissas = new Float64Array(cap);
  excIdx = new Uint32Array(cap);
}

function u32view(a: Float64Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
}

function u8view(a: Float64Array, n: number): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, n * 8);
}

function exceptionKind(hi: number, lo: number): number {
  if (lo === STALE_NAN_LO && hi === STALE_NAN_HI) return EXC_STALE_NAN;
  if (lo === 0) {
    if (hi === 0x7ff00000) return EXC_POS_INF;
    if (hi === 0xfff00000) return EXC_NEG_INF;
    if (hi === 0x80000000) return EXC_NEG_ZERO;
    if (hi === 0x7ff80000) return EXC_CANONICAL_NAN;
  }
  return EXC_RAW;
}

export interface EncodeValuesOptions {
  /**
   * LOSSY when below 53: keep only this many significant bits of each decimal mantissa
   * (nearest-delta quantisation, see nearestDelta). Default: lossless. Values that do not
   * convert to decimal, and exceptions (NaN, ±Inf, -0), always stay exact.
   */
  readonly precisionBits?: number;
}

/**
 * Encodes values[0..n) (n defaults to values.length) into `out`; returns the tag to store
 * beside the block. The input is only read.
 */
export function encodeValues(values: Float64Array, out: ByteBuffer, n = values.length, opts?: EncodeValuesOptions): ValuesEncoding {
  if (n === 0) return ValuesEncoding.RawFloat;
  const bits = u32view(values);
  // Constant block (bitwise, so NaN payloads count as equal only to themselves).
  const hi0 = bits[1] as number;
  const lo0 = bits[0] as number;
  let constant = true;
  for (let i = 1; i < n; i++) {
    if (bits[2 * i] !== lo0 || bits[2 * i + 1] !== hi0) {
      constant = false;
      break;
    }
  }
  grow(n);
  const e = toDecimal(values, n, mantissas, excIdx);
  if (constant && (e === NOT_DECIMAL || decimalResult.exceptions > 0)) {
    out.ensure(8);
    out.bytes(u8view(values, 1));
    return ValuesEncoding.ConstFloat;
  }
  if (e !== NOT_DECIMAL) {
    const nexc = decimalResult.exceptions;
    const precisionBits = opts?.precisionBits ?? 64;
    if (precisionBits < 53) nearestDelta(mantissas, n, precisionBits, mantissas);
    const layout = chooseIntLayout(mantissas, n);
    let excBytes = uvarintSize(nexc);
    for (let j = 0; j < nexc; j++) {
      const i = excIdx[j] as number;
      excBytes += uvarintSize(i - (j > 0 ? (excIdx[j - 1] as number) : 0)) + 1;
      if (exceptionKind(bits[2 * i + 1] as number, bits[2 * i] as number) === EXC_RAW) excBytes += 8;
    }
    const decSize = zigzagSize(e) + excBytes + lastChosenSize();
    // Decimal wins nearly always; check XOR only when mantissas are expensive.
    if (decSize <= 3 * n || decSize <= xorSize(values, n)) {
      const tag = DECIMAL_FLAG | layout;
      const dst = decSize >= LZ4_MIN_INPUT && layout !== IntEncoding.Const && layout !== IntEncoding.Arith ? scratch : out;
      if (dst === scratch) scratch.reset();
      dst.ensure(decSize + 16);
      dst.len = putZigzag(dst.buf, dst.len, e);
      writeUvarint(dst, nexc);
      for (let j = 0; j < nexc; j++) {
        const i = excIdx[j] as number;
        writeUvarint(dst, i - (j > 0 ? (excIdx[j - 1] as number) : 0));
        const hi = bits[2 * i + 1] as number;
        const lo = bits[2 * i] as number;
        const kind = exceptionKind(hi, lo);
        dst.byte(kind);
        if (kind === EXC_RAW) dst.bytes(new Uint8Array(values.buffer, values.byteOffset + 8 * i, 8));
      }
      writeIntLayout(layout as IntLayout, mantissas, n, dst);
      if (dst === out) return tag as ValuesEncoding;
      return appendMaybeLz4(tag, scratch.view(), out) as ValuesEncoding;
    }
  }
  const xs = xorSize(values, n);
  if (xs < 8 * n) {
    scratch.reset();
    writeXor(values, n, scratch);
    return appendMaybeLz4(ValuesEncoding.XorFloat, scratch.view(), out) as ValuesEncoding;
  }
  return appendMaybeLz4(ValuesEncoding.RawFloat, u8view(values, n), out) as ValuesEncoding;
}

// ---- XorFloat: per value a control byte, then the non-zero middle bytes of bits ^ prevBits.
// control = 0 when the XOR is zero, else 0x80 | lead << 3 | trail (zero bytes at the top and
// bottom, lead + trail <= 7), followed by 8 - lead - trail bytes, least significant first.

function xorSize(values: Float64Array, n: number): number {
  const b = u32view(values);
  let size = 0;
  let ph = 0;
  let pl = 0;
  for (let i = 0; i < n; i++) {
    const h = b[2 * i + 1] as number;
    const l = b[2 * i] as number;
    const xh = (h ^ ph) >>> 0;
    const xl = (l ^ pl) >>> 0;
    ph = h;
    pl = l;
    if (xh === 0 && xl === 0) {
      size += 1;
      continue;
    }
    const lead = xh !== 0 ? Math.clz32(xh) >>> 3 : 4 + (Math.clz32(xl) >>> 3);
    const trail = xl !== 0 ? ctzBytes(xl) : 4 + ctzBytes(xh);
    size += 1 + 8 - lead - trail;
  }
  return size;
}

function ctzBytes(x: number): number {
  return (31 - Math.clz32(x & -x)) >>> 3;
}

function writeXor(values: Float64Array, n: number, out: ByteBuffer): void {
  out.ensure(9 * n);
  const b = u32view(values);
  const bytes = u8view(values, n);
  const buf = out.buf;
  let p = out.len;
  let ph = 0;
  let pl = 0;
  for (let i = 0; i < n; i++) {
    const h = b[2 * i + 1] as number;
    const l = b[2 * i] as number;
    const xh = (h ^ ph) >>> 0;
    const xl = (l ^ pl) >>> 0;
    if (xh === 0 && xl === 0) {
      buf[p++] = 0;
    } else {
      const lead = xh !== 0 ? Math.clz32(xh) >>> 3 : 4 + (Math.clz32(xl) >>> 3);
      const trail = xl !== 0 ? ctzBytes(xl) : 4 + ctzBytes(xh);
      buf[p++] = 0x80 | (lead << 3) | trail;
      for (let k = trail; k < 8 - lead; k++) {
        const prev = i > 0 ? (bytes[8 * i - 8 + k] as number) : 0;
        buf[p++] = (bytes[8 * i + k] as number) ^ prev;
      }
    }
    ph = h;
    pl = l;
  }
  out.len = p;
}

function readXor(buf: Uint8Array, p: number, end: number, n: number, out: Float64Array): number {
  const bytes = u8view(out, n);
  for (let i = 0; i < n; i++) {
    if (p >= end) throw corrupt("truncated xor float block", p);
    const c = buf[p++] as number;
    const o = 8 * i;
    if (i === 0) bytes.fill(0, 0, 8);
    else bytes.copyWithin(o, o - 8, o);
    if (c === 0) continue;
    const lead = (c >>> 3) & 7;
    const trail = c & 7;
    if ((c & 0x40) !== 0 || c < 0x80 || lead + trail > 7) throw corrupt(`bad xor control byte 0x${c.toString(16)}`, p - 1);
    const len = 8 - lead - trail;
    if (len > end - p) throw corrupt("truncated xor float block", p);
    for (let k = 0; k < len; k++) bytes[o + trail + k] = (bytes[o + trail + k] as number) ^ (buf[p++] as number);
  }
  return p;
}

const VALUE_TAGS = new Set<number>(Object.values(ValuesEncoding));

export function isValuesEncoding(tag: number): tag is ValuesEncoding {
  return VALUE_TAGS.has(tag);
}

/**
 * Largest payload encodeValues writes for n values before lz4 (bounds what lz4 may inflate to):
 * decimal is only chosen when no larger than XorFloat (<= 9 bytes/value) or 3 bytes/value.
 */
function maxValuesPayload(n: number): number {
  return 9 * n + 64;
}

/**
 * Decodes `count` values encoded with `tag` from `bytes` (exactly: trailing bytes are an error)
 * into out[0..count), bit-exactly. Throws STRATA_CORRUPT_DATA on malformed input.
 *
 * With `want` (sorted, disjoint [from, to) index pairs want[0..2·wantCount)), only the values
 * at those indexes must come out (bit-exactly the same); the others are left unspecified, and
 * decimal delta and linear layouts skip the bit-packed groups that hold none of them.
 */
export function decodeValues(tag: number, bytes: Uint8Array, count: number, out: Float64Array, want?: Uint32Array, wantCount = 0): void {
  checkCount(count, out);
  if (!isValuesEncoding(tag)) throw corrupt(`unknown values encoding tag ${tag}`);
  let src = bytes;
  if (tag & LZ4_FLAG) src = lz4Decompress(bytes, maxValuesPayload(count));
  const end = src.length;
  let p = 0;
  if (count === 0) {
    if (end !== 0) throw corrupt(`${end} unexpected trailing bytes`, 0);
    return;
  }
  if (tag & DECIMAL_FLAG) {
    p = getZigzag(src, p, end);
    const e = varintResult.v;
    if (e < -22 || e > 22) throw corrupt(`decimal exponent ${e} out of range`, p);
    p = getUvarint(src, p, end, count);
    const nexc = varintResult.v;
    const excStart = p;
    // Validate the exception section now; patch after the mantissas are decoded.
    let idx = 0;
    for (let j = 0; j < nexc; j++) {
      p = getUvarint(src, p, end, count);
      idx += varintResult.v;
      if (idx >= count || (j > 0 && varintResult.v === 0)) throw corrupt(`exception index ${idx} out of order or range`, p);
      if (p >= end) throw corrupt("truncated exception", p);
      const kind = src[p++] as number;
      if (kind > EXC_CANONICAL_NAN) throw corrupt(`unknown exception kind ${kind}`, p - 1);
      if (kind === EXC_RAW) {
        if (end - p < 8) throw corrupt("truncated exception", p);
        p += 8;
      }
    }
    if (want === undefined) {
      p = readIntLayout((tag & INT_LAYOUT_MASK) as IntLayout, src, p, end, count, out);
      if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`, p);
      fromDecimal(out, count, e);
    } else {
      p = readIntLayoutAt((tag & INT_LAYOUT_MASK) as IntLayout, src, p, end, count, out, want, wantCount);
      if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`, p);
      for (let s = 0; s < wantCount; s++) fromDecimalRange(out, want[2 * s]!, want[2 * s + 1]!, e);
    }
    if (nexc === 0) return; // most blocks: no views to create
    const ob = u32view(out);
    const o8 = u8view(out, count);
    let q = excStart;
    idx = 0;
    for (let j = 0; j < nexc; j++) {
      q = getUvarint(src, q, end, count);
      idx += varintResult.v;
      const kind = src[q++] as number;
      let hi = 0;
      let lo = 0;
      switch (kind) {
        case EXC_STALE_NAN:
          hi = STALE_NAN_HI;
          lo = STALE_NAN_LO;
          break;
        case EXC_POS_INF:
          hi = 0x7ff00000;
          break;
        case EXC_NEG_INF:
          hi = 0xfff00000;
          break;
        case EXC_NEG_ZERO:
          hi = 0x80000000;
          break;
        case EXC_CANONICAL_NAN:
          hi = 0x7ff80000;
          break;
        default:
          o8.set(src.subarray(q, q + 8), 8 * idx);
          q += 8;
          continue;
      }
      ob[2 * idx] = lo;
      ob[2 * idx + 1] = hi;
    }
    return;
  }
  switch (tag & INT_LAYOUT_MASK) {
    case ValuesEncoding.RawFloat:
      if (end !== 8 * count) throw corrupt(`raw float block has ${end} bytes, want ${8 * count}`);
      u8view(out, count).set(src);
      return;
    case ValuesEncoding.ConstFloat: {
      if (end !== 8) throw corrupt(`const float block has ${end} bytes, want 8`);
      const ob = u32view(out);
      const b = u8view(out, count);
      b.set(src, 0);
      const lo = ob[0] as number;
      const hi = ob[1] as number;
      if (want !== undefined) {
        // Only the wanted indexes (and index 0, written above).
        for (let s = 0; s < wantCount; s++) {
          const to = want[2 * s + 1]!;
          for (let i = want[2 * s]!; i < to; i++) {
            ob[2 * i] = lo;
            ob[2 * i + 1] = hi;
          }
        }
        return;
      }
      for (let i = 1; i < count; i++) {
        ob[2 * i] = lo;
        ob[2 * i + 1] = hi;
      }
      return;
    }
    case ValuesEncoding.XorFloat:
      p = readXor(src, 0, end, count, out);
      if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`, p);
      return;
    default:
      throw corrupt(`unknown values encoding tag ${tag}`);
  }
}
