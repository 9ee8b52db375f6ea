/** A growable byte buffer that codecs append into, plus varint helpers over doubles (< 2^53). */
export class ByteBuffer {
  buf: Uint8Array;
  len = 0;

  constructor(capacity = 4096) {
    this.buf = new Uint8Array(capacity);
  }

  ensure(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  pushByte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  pushBytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Unsigned varint of a non-negative integer below 2^53. */
  pushUvarint(n: number): void {
    this.ensure(8);
    const buf = this.buf;
    let pos = this.len;
    while (n >= 0x80000000) {
      buf[pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    this.len = pos;
  }

  pushZigzag(n: number): void {
    this.pushUvarint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): void {
    this.len = 0;
  }
}

/** Cursor for reading varints back; `pos` advances. Throws RangeError on overrun. */
export class ByteReader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  uvarint(): number {
    const buf = this.buf;
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= buf.length) throw new RangeError(`varint overruns buffer at byte ${this.pos}`);
      const b = buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
    throw new RangeError(`varint too long at byte ${this.pos}`);
  }

  zigzag(): number {
    const z = this.uvarint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
}

const TWO_32 = 4294967296;

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

/** Lexicographic byte comparison. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
