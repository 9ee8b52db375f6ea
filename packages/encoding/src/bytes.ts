import { growBytes } from "@strata/core";
import { corrupt } from "./errors.js";

/**
 * A growable byte buffer that codecs append into. Reuse one per writer: `reset()` keeps the
 * allocation. `bytes()` is a view that stays valid until the next write or reset.
 */
export class ByteBuffer {
  buf: Uint8Array;
  /** Bytes written so far; the next write goes to `buf[length]`. */
  length = 0;

  constructor(initialCapacity = 1024) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
  }

  /** Makes room for `extra` more bytes (grows by doubling). */
  ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    this.buf = growBytes(this.buf, this.length, need);
  }

  reset(): void {
    this.length = 0;
  }

  /** Drops everything after the first `length` bytes (used to roll back a trial encoding). */
  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  /** A view of the written bytes, valid until the next write or reset. */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** A copy of the written bytes. */
  toUint8Array(): Uint8Array {
    return this.buf.slice(0, this.length);
  }

  writeByte(b: number): void {
    if (this.length >= this.buf.length) this.ensure(1);
    this.buf[this.length++] = b;
  }

  writeBytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.length);
    this.length += src.length;
  }
}

/** A bounds-checked cursor over encoded bytes; every overrun is a STRATA_CORRUPT_DATA error. */
export class ByteReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  readByte(): number {
    if (this.pos >= this.end) throw corrupt("unexpected end of data", this.pos);
    return this.buf[this.pos++] as number;
  }

  /** A view of the next n bytes. */
  readBytes(n: number): Uint8Array {
    if (n < 0 || n > this.end - this.pos) throw corrupt(`need ${n} bytes, have ${this.end - this.pos}`, this.pos);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** Throws unless every byte was consumed (trailing garbage means a wrong tag or count). */
  expectEnd(): void {
    if (this.pos !== this.end) throw corrupt(`${this.end - this.pos} unexpected trailing bytes`, this.pos);
  }
}
