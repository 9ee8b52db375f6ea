import { BadDataError } from "@strata/core";

/**
 * Minimal protobuf wire-format cursor for the hand-written hot-path decoders. It reads from one
 * buffer and keeps its position in a field, so decoding allocates nothing per field. Every
 * malformed input ends in a BadDataError naming the byte offset.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_SGROUP = 3;
export const WIRE_EGROUP = 4;
export const WIRE_I32 = 5;

const TWO_32 = 4294967296;

export function protoError(what: string, offset: number): BadDataError {
  return new BadDataError(`cannot parse protobuf: ${what} at byte ${offset}`, "STRATA_PARSE_ERROR");
}

export class WireCursor {
  buf: Uint8Array;
  dv: DataView;
  pos = 0;
  /** Reads never go past this offset (the end of the message being decoded). */
  limit: number;
  /** Field number of the tag read last. */
  fieldNo = 0;
  /** Wire type of the tag read last. */
  wireType = 0;
  /** Low and high 32 bits of the varint read last by `varint64`. */
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.limit = buf.length;
  }

  reset(buf: Uint8Array): void {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
    this.limit = buf.length;
  }

  /** Reads a tag; sets fieldNo and wireType and returns the field number. */
  tag(): number {
    const at = this.pos;
    const t = this.uint32();
    if (this.hi !== 0) throw protoError("tag overflows uint32", at);
    this.fieldNo = t >>> 3;
    this.wireType = t & 7;
    if (this.fieldNo === 0) throw protoError("field number 0", at);
    if (this.wireType > 5) throw protoError(`invalid wire type ${this.wireType}`, at);
    return this.fieldNo;
  }

  /** Reads a varint of up to 10 bytes, keeping its low 32 bits (as protobuf uint32 does). */
  uint32(): number {
    this.varint64();
    return this.lo;
  }

  /** Reads a varint into `lo`/`hi` (unsigned 32-bit halves of the 64-bit value). */
  varint64(): void {
    const buf = this.buf;
    const start = this.pos;
    let lo = 0;
    let hi = 0;
    let b = 0;
    let i = 0;
    for (; i < 4; i++) {
      if (this.pos >= this.limit) throw protoError("truncated varint", start);
      b = buf[this.pos++]!;
      lo |= (b & 0x7f) << (i * 7);
      if (b < 0x80) {
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    // 5th byte: 4 bits to lo, 3 bits to hi.
    if (this.pos >= this.limit) throw protoError("truncated varint", start);
    b = buf[this.pos++]!;
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (i = 0; i < 5; i++) {
        if (this.pos >= this.limit) throw protoError("truncated varint", start);
        b = buf[this.pos++]!;
        hi |= (b & 0x7f) << (i * 7 + 3);
        if (b < 0x80) break;
      }
      if (b >= 0x80) throw protoError("varint longer than 10 bytes", start);
    }
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** Reads an int64 varint as a number; throws when it is not a safe integer. */
  int64(what: string): number {
    const at = this.pos;
    this.varint64();
    const hi = this.hi | 0; // two's complement high word
    if (hi > 0x1fffff || hi < -0x200000 || (hi === -0x200000 && this.lo === 0)) throw protoError(`${what} out of the safe integer range`, at);
    return hi * TWO_32 + this.lo;
  }

  double(): number {
    if (this.pos + 8 > this.limit) throw protoError("truncated double", this.pos);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix and returns the end offset of the delimited bytes. */
  lenEnd(): number {
    const at = this.pos;
    const n = this.uint32();
    // uint32 keeps the low 32 bits; a length with high bits set is malformed anyway.
    if (this.hi !== 0 || n > this.limit - this.pos) throw protoError("length overruns the message", at);
    return this.pos + n;
  }

  /** Skips the value of the field whose tag was read last. */
  skip(): void {
    this.skipValue(this.wireType, this.fieldNo, 0);
  }

  private skipValue(wireType: number, fieldNo: number, depth: number): void {
    const at = this.pos;
    switch (wireType) {
      case WIRE_VARINT:
        this.varint64();
        return;
      case WIRE_I64:
        if (this.pos + 8 > this.limit) throw protoError("truncated fixed64", at);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.pos = this.lenEnd();
        return;
      case WIRE_I32:
        if (this.pos + 4 > this.limit) throw protoError("truncated fixed32", at);
        this.pos += 4;
        return;
      case WIRE_SGROUP: {
        if (depth > 64) throw protoError("groups nested too deeply", at);
        for (;;) {
          if (this.pos >= this.limit) throw protoError("unterminated group", at);
          this.tag();
          if (this.wireType === WIRE_EGROUP) {
            if (this.fieldNo !== fieldNo) throw protoError("mismatched end group", at);
            return;
          }
          this.skipValue(this.wireType, this.fieldNo, depth + 1);
        }
      }
      default:
        throw protoError(`invalid wire type ${wireType}`, at);
    }
  }

  expect(wireType: number, what: string): void {
    if (this.wireType !== wireType) {
      throw protoError(`${what} has wire type ${this.wireType}, want ${wireType}`, this.pos);
    }
  }
}
