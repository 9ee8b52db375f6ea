import { ByteBuffer } from "@strata/core";

/** The one byte buffer (@strata/core), re-exported for the codecs' callers. */
export { ByteBuffer };
import { corrupt } from "./errors.js";

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
