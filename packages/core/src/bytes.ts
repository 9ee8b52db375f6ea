/** Growth of the buffers that writers append into. */

/** `cap` doubled until it holds `need` (at least 16). */
export function grownCapacity(cap: number, need: number): number {
  let c = Math.max(16, cap);
  while (c < need) c *= 2;
  return c;
}

/** A new buffer of at least `need` bytes (doubling `buf`'s size) holding a copy of buf[0, used). */
export function growBytes(buf: Uint8Array, used: number, need: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(grownCapacity(buf.length * 2, need));
  next.set(buf.subarray(0, used));
  return next;
}

/**
 * The growable byte buffer every writer appends into (codecs, parts, index items, RPC frames).
 * Reuse one per writer: `reset()` keeps the allocation; `view()` stays valid until the next
 * write or reset. Fixed-width integers are big-endian (the order index items sort in).
 */
export class ByteBuffer {
  buf: Uint8Array;
  /** Bytes written so far; the next write goes to `buf[len]`. */
  len = 0;

  constructor(cap = 256) {
    this.buf = new Uint8Array(Math.max(16, cap));
  }

  reset(): void {
    this.len = 0;
  }

  /** Makes room for `extra` more bytes (grows by doubling). */
  ensure(extra: number): void {
    const need = this.len + extra;
    if (need <= this.buf.length) return;
    this.buf = growBytes(this.buf, this.len, need);
  }

  /** Drops everything after the first `len` bytes (rolls back a trial encoding). */
  truncate(len: number): void {
    if (len < this.len) this.len = len;
  }

  byte(b: number): void {
    if (this.len >= this.buf.length) this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array, start = 0, end = b.length): void {
    const n = end - start;
    this.ensure(n);
    this.buf.set(start === 0 && end === b.length ? b : b.subarray(start, end), this.len);
    this.len += n;
  }

  /** Unsigned LEB128 of a non-negative safe integer. */
  uvarint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.len++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.len++] = n;
  }

  u32(n: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.len;
    b[p] = n >>> 24;
    b[p + 1] = (n >>> 16) & 0xff;
    b[p + 2] = (n >>> 8) & 0xff;
    b[p + 3] = n & 0xff;
    this.len += 4;
  }

  /** Non-negative safe integer as 8 big-endian bytes. */
  u64(n: number): void {
    this.u32(Math.floor(n / 0x1_0000_0000));
    this.u32(n >>> 0);
  }

  /** A view of the written bytes, valid until the next write or reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** A copy of the written bytes. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
