import { ByteBuffer } from "@strata/core";

export { ByteBuffer };

/**
 * Byte helpers of the storage engine (parts, blocks, the mergeset and the index): comparisons,
 * varints, fixed-width integers, and the one growable buffer writers append into.
 */

/** Lexicographic (memcmp) order of a[as:ae) and b[bs:be). */
export function compareRange(
  a: Uint8Array,
  as: number,
  ae: number,
  b: Uint8Array,
  bs: number,
  be: number,
): number {
  const la = ae - as;
  const lb = be - bs;
  const n = la < lb ? la : lb;
  for (let i = 0; i < n; i++) {
    const d = a[as + i]! - b[bs + i]!;
    if (d !== 0) return d;
  }
  return la - lb;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length, b, 0, b.length);
}

/** True when a[as:ae) starts with `prefix`. */
export function hasPrefixRange(a: Uint8Array, as: number, ae: number, prefix: Uint8Array): boolean {
  const n = prefix.length;
  if (ae - as < n) return false;
  for (let i = 0; i < n; i++) if (a[as + i] !== prefix[i]) return false;
  return true;
}

export function hasPrefix(a: Uint8Array, prefix: Uint8Array): boolean {
  return hasPrefixRange(a, 0, a.length, prefix);
}

export function commonPrefixLen(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  let i = 0;
  while (i < n && a[as + i] === b[bs + i]) i++;
  return i;
}

/**
 * The smallest key greater than every key starting with `prefix` (prefix + 1 at the last
 * byte below 0xff), or undefined when none exists (all 0xff).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  let i = prefix.length - 1;
  while (i >= 0 && prefix[i] === 0xff) i--;
  if (i < 0) return undefined;
  const out = prefix.slice(0, i + 1);
  out[i]!++;
  return out;
}

/** A small cursor for reading varints and fixed ints; throws on overrun via `fail`. */
export class ByteReader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    pos: number,
    readonly end: number,
    private readonly fail: (msg: string) => never,
  ) {
    this.pos = pos;
  }

  uvarint(): number {
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) this.fail(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
    return this.fail(`varint too long at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.end) this.fail(`truncated byte at ${this.pos}`);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    if (this.pos + 4 > this.end) this.fail(`truncated u32 at byte ${this.pos}`);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    return hi * 0x1_0000_0000 + lo;
  }

  bytes(n: number): Uint8Array {
    if (this.pos + n > this.end) this.fail(`${n} bytes at byte ${this.pos} overrun ${this.end}`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

export function readU32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, p: number, n: number): void {
  b[p] = n >>> 24;
  b[p + 1] = (n >>> 16) & 0xff;
  b[p + 2] = (n >>> 8) & 0xff;
  b[p + 3] = n & 0xff;
}

export function readU64(b: Uint8Array, p: number): number {
  return readU32(b, p) * 0x1_0000_0000 + readU32(b, p + 4);
}

export function writeU64(b: Uint8Array, p: number, n: number): void {
  writeU32(b, p, Math.floor(n / 0x1_0000_0000));
  writeU32(b, p + 4, n >>> 0);
}

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const nativeLatin1 = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

/**
 * b[start, end) as a latin1 string (one char per byte): a Map key or a natively sortable form
 * of an item. Node's Buffer latin1Slice works on any Uint8Array without a Buffer view (one
 * allocation: the string); falls back to a view where it is missing.
 */
export function latin1(b: Uint8Array, start: number, end: number): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(b, start, end);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1", start, end);
}

export const TWO_32 = 4294967296;

/** Writes an integer-valued double (|v| < 2^53) as int64 little-endian. */
export function putInt64(dv: DataView, pos: number, v: number): void {
  dv.setUint32(pos, v >>> 0, true);
  dv.setInt32(pos + 4, Math.floor(v / TWO_32), true);
}

export function getInt64(dv: DataView, pos: number): number {
  return dv.getInt32(pos + 4, true) * TWO_32 + dv.getUint32(pos, true);
}

export function dataView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
