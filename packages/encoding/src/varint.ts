import { ByteBuffer, ByteReader } from "./bytes.js";
import { corrupt } from "./errors.js";

/**
 * Varints (LEB128, 7 bits per byte, low bits first) and zigzag varints over JS numbers.
 *
 * The number API handles every integer in [-2^53, 2^53] exactly and never touches bigint: the
 * zigzag value 2|v|-1 can reach 2^54+1, which a double cannot hold, so the writer splits the
 * magnitude instead of materialising it (`mag % 64` into the first byte, `floor(mag / 64)` as a
 * plain uvarint after it). That is bit-identical to the int64 zigzag varint of Go/protobuf for
 * the same value. Values of 32-bit magnitude take a bitwise fast path.
 *
 * bigint variants (`*Big`) cover the whole int64/uint64 range for the rare caller that needs it.
 */

export const TWO_53 = 9007199254740992;
const TWO_31 = 2147483648;

/** Writes an unsigned integer 0 <= v <= 2^53. */
export function writeUvarint(out: ByteBuffer, v: number): void {
  out.ensure(9);
  const buf = out.buf;
  let p = out.len;
  while (v >= TWO_31) {
    buf[p++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  while (v >= 0x80) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  out.len = p;
}

/** Writes a signed integer -2^53 <= v <= 2^53 as a zigzag varint. */
export function writeZigzag(out: ByteBuffer, v: number): void {
  out.ensure(9);
  out.len = putZigzag(out.buf, out.len, v);
}

/** Writes zigzag(v) at buf[p] (room for 9 bytes must exist); returns the new position. */
export function putZigzag(buf: Uint8Array, p: number, v: number): number {
  if (v > -1073741824 && v < 1073741824) {
    let z = (v << 1) ^ (v >> 31);
    z >>>= 0;
    while (z >= 0x80) {
      buf[p++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    buf[p++] = z;
    return p;
  }
  const neg = v < 0;
  let mag = neg ? -v - 1 : v;
  const low = ((mag % 64) << 1) | (neg ? 1 : 0);
  mag = Math.floor(mag / 64);
  if (mag === 0) {
    buf[p++] = low;
    return p;
  }
  buf[p++] = low | 0x80;
  while (mag >= TWO_31) {
    buf[p++] = (mag % 128) | 0x80;
    mag = Math.floor(mag / 128);
  }
  while (mag >= 0x80) {
    buf[p++] = (mag & 0x7f) | 0x80;
    mag >>>= 7;
  }
  buf[p++] = mag;
  return p;
}

/** Bytes zigzag varint of v takes (|v| <= 2^53). */
export function zigzagSize(v: number): number {
  const mag = v < 0 ? -v - 1 : v; // zigzag = 2*mag + sign, so bits = bits(mag) + 1
  if (mag < 64) return 1;
  if (mag < 8192) return 2;
  if (mag < 1048576) return 3;
  if (mag < 134217728) return 4;
  if (mag < 17179869184) return 5;
  if (mag < 2199023255552) return 6;
  if (mag < 281474976710656) return 7;
  return 8;
}

/** Bytes uvarint of v takes (0 <= v <= 2^53). */
export function uvarintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Cursor-style readers for hot loops: they return the new position and leave the value in
 * `varintResult.v`, so a loop over thousands of varints allocates nothing.
 */
export const varintResult = { v: 0 };

/** Reads a uvarint at buf[p] (bounded by end); the value must be <= max (<= 2^53). */
export function getUvarint(buf: Uint8Array, p: number, end: number, max = TWO_53): number {
  let v = 0;
  let shift = 0;
  let mul = 1;
  for (;;) {
    if (p >= end) throw corrupt("truncated varint", p);
    const b = buf[p++] as number;
    if (shift < 28) {
      v |= (b & 0x7f) << shift;
      if (shift === 21) v >>>= 0;
    } else {
      v += (b & 0x7f) * mul;
    }
    if (b < 0x80) break;
    shift += 7;
    if (shift === 28) mul = 268435456;
    else if (shift > 28) mul *= 128;
    if (shift > 56) throw corrupt("varint longer than 9 bytes", p);
  }
  if (v > max) throw corrupt(`varint ${v} exceeds ${max}`, p);
  varintResult.v = v;
  return p;
}

const MAX_MAG_REST = TWO_53 / 64;

/** Reads a zigzag varint at buf[p]; the decoded value must lie in [-2^53, 2^53]. */
export function getZigzag(buf: Uint8Array, p: number, end: number): number {
  if (p >= end) throw corrupt("truncated varint", p);
  const b0 = buf[p] as number;
  if (b0 < 0x80) {
    varintResult.v = (b0 >>> 1) ^ -(b0 & 1);
    return p + 1;
  }
  // Fast path: up to 4 bytes fit in 28 bits.
  if (p + 1 < end) {
    const b1 = buf[p + 1] as number;
    if (b1 < 0x80) {
      const z = (b0 & 0x7f) | (b1 << 7);
      varintResult.v = (z >>> 1) ^ -(z & 1);
      return p + 2;
    }
    if (p + 2 < end) {
      const b2 = buf[p + 2] as number;
      if (b2 < 0x80) {
        const z = (b0 & 0x7f) | ((b1 & 0x7f) << 7) | (b2 << 14);
        varintResult.v = (z >>> 1) ^ -(z & 1);
        return p + 3;
      }
    }
  }
  const sign = b0 & 1;
  const low = (b0 >>> 1) & 0x3f;
  p = getUvarint(buf, p + 1, end, MAX_MAG_REST);
  const mag = low + varintResult.v * 64;
  if (sign === 1) {
    if (mag >= TWO_53) throw corrupt("zigzag varint below -2^53", p);
    varintResult.v = -mag - 1;
  } else {
    if (mag > TWO_53) throw corrupt("zigzag varint above 2^53", p);
    varintResult.v = mag;
  }
  return p;
}

/** Reads a uvarint (<= max, default 2^53) from a ByteReader. */
export function readUvarint(r: ByteReader, max = TWO_53): number {
  r.pos = getUvarint(r.buf, r.pos, r.end, max);
  return varintResult.v;
}

/** Reads a zigzag varint in [-2^53, 2^53] from a ByteReader. */
export function readZigzag(r: ByteReader): number {
  r.pos = getZigzag(r.buf, r.pos, r.end);
  return varintResult.v;
}

/** zigzag(v) as a number; exact for |v| <= 2^52 (the result stays <= 2^53). */
export function zigzagEncode(v: number): number {
  return v < 0 ? -2 * v - 1 : 2 * v;
}

/** Inverse of zigzagEncode for 0 <= z <= 2^53. */
export function zigzagDecode(z: number): number {
  return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
}

// ---- bigint variants: the whole int64 / uint64 range ----

const U64_MAX = (1n << 64n) - 1n;

/** Writes an unsigned 64-bit integer (0 <= v < 2^64). */
export function writeUvarintBig(out: ByteBuffer, v: bigint): void {
  if (v < 0n || v > U64_MAX) throw new RangeError(`uvarint out of uint64 range: ${v}`);
  out.ensure(10);
  while (v >= 0x80n) {
    out.buf[out.len++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  out.buf[out.len++] = Number(v);
}

export function readUvarintBig(r: ByteReader): bigint {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    const b = r.readByte();
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) {
      if (v > U64_MAX) throw corrupt("uvarint exceeds uint64", r.pos);
      return v;
    }
    shift += 7n;
  }
  throw corrupt("varint longer than 10 bytes", r.pos);
}

/** zigzag of a signed 64-bit integer as an unsigned bigint. */
export function zigzagEncodeBig(v: bigint): bigint {
  return BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
}

export function zigzagDecodeBig(z: bigint): bigint {
  return BigInt.asIntN(64, (z >> 1n) ^ -(z & 1n));
}

/** Writes a signed 64-bit integer as a zigzag varint (whole int64 range). */
export function writeZigzagBig(out: ByteBuffer, v: bigint): void {
  if (v < -(1n << 63n) || v >= 1n << 63n) throw new RangeError(`zigzag out of int64 range: ${v}`);
  writeUvarintBig(out, zigzagEncodeBig(v));
}

export function readZigzagBig(r: ByteReader): bigint {
  return zigzagDecodeBig(readUvarintBig(r));
}
