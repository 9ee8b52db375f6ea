import { BadDataError } from "@strata/core";
import { getUvarint, varintResult } from "./varint.js";

/**
 * A snappy block-format decoder (https://github.com/google/snappy/blob/main/format_description.txt)
 * that writes into one buffer it keeps and reuses, for a service that decompresses one body at a
 * time (insert's remote write). The native decoder (snappyDecode) returns a fresh Buffer per body,
 * copied from the addon's own output: with the services' MALLOC_MMAP_THRESHOLD_ every ~1.4 MB body
 * then costs fresh pages (page faults, zeroing) twice, and the dead Buffers stay mapped until V8's
 * next GC. Here the output is a view of the kept buffer, valid until the next decode.
 *
 * Layout: uvarint(uncompressed length), then elements; the low 2 bits of an element's tag say
 * its kind — 0 literal (length in the tag, or in 1–4 bytes after it, minus one), 1 copy with an
 * 11-bit offset and length 4–11, 2 copy with a 16-bit offset, 3 copy with a 32-bit offset
 * (length 1–64 in the tag). A copy may overlap its own output (offset < length: the pattern
 * repeats), so it is copied forward.
 */
export class SnappyBlockDecoder {
  private buf: Uint8Array = new Uint8Array(0);
  private dv: DataView = new DataView(this.buf.buffer);

  /** `keepBytes`: a buffer grown beyond this for one body is dropped after it (not kept). */
  constructor(private readonly keepBytes = 8 << 20) {}

  /** Bytes of the kept buffer. */
  get capacity(): number {
    return this.buf.length;
  }

  /**
   * Decodes a snappy block; the result is a view valid until the next call. Throws
   * STRATA_CORRUPT_DATA when the block is malformed or declares more than maxSize bytes.
   */
  decode(src: Uint8Array, maxSize: number): Uint8Array {
    const start = getUvarint(src, 0, src.length, 0xffffffff);
    const n = varintResult.v;
    if (n > maxSize) throw new BadDataError(`snappy: block declares ${n} bytes, more than the ${maxSize} allowed`, "STRATA_CORRUPT_DATA");
    let dst = this.buf;
    let dv = this.dv;
    if (dst.length < n) {
      dst = new Uint8Array(Math.max(n, Math.min(2 * dst.length, this.keepBytes)));
      dv = new DataView(dst.buffer);
      if (dst.length <= this.keepBytes) {
        this.buf = dst;
        this.dv = dv;
      }
    }
    const end = decodeElements(src, start, new DataView(src.buffer, src.byteOffset, src.byteLength), dst, dv, n);
    if (end !== n) throw new BadDataError(`snappy: block decodes to ${end} bytes, its header says ${n}`, "STRATA_CORRUPT_DATA");
    return dst.subarray(0, n);
  }
}

/** Decodes the elements of src[s, …) into dst[0, n); returns the bytes written. */
function decodeElements(src: Uint8Array, s: number, sv: DataView, dst: Uint8Array, dv: DataView, n: number): number {
  const sn = src.length;
  let d = 0;
  while (s < sn) {
    const tag = src[s]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >>> 2;
      if (len < 60) {
        s++;
      } else {
        const k = len - 59; // 1–4 length bytes
        if (s + 1 + k > sn) throw bad("truncated literal length", s);
        len = src[s + 1]!;
        if (k > 1) len |= src[s + 2]! << 8;
        if (k > 2) len |= src[s + 3]! << 16;
        if (k > 3) len = (len | (src[s + 4]! << 24)) >>> 0;
        s += 1 + k;
      }
      len += 1;
      if (len > sn - s) throw bad("literal runs past the block", s);
      if (len > n - d) throw bad("literal runs past the declared length", s);
      if (len < 4) {
        for (let i = 0; i < len; i++) dst[d + i] = src[s + i]!;
      } else if (len <= 64) {
        // 4 bytes a step, the last step overlapping the one before.
        for (let i = 0; i < len - 4; i += 4) dv.setInt32(d + i, sv.getInt32(s + i));
        dv.setInt32(d + len - 4, sv.getInt32(s + len - 4));
      } else {
        dst.set(src.subarray(s, s + len), d);
      }
      s += len;
      d += len;
      continue;
    }
    let len: number;
    let off: number;
    if (kind === 1) {
      if (s + 2 > sn) throw bad("truncated copy", s);
      len = 4 + ((tag >>> 2) & 7);
      off = ((tag & 0xe0) << 3) | src[s + 1]!;
      s += 2;
    } else if (kind === 2) {
      if (s + 3 > sn) throw bad("truncated copy", s);
      len = 1 + (tag >>> 2);
      off = src[s + 1]! | (src[s + 2]! << 8);
      s += 3;
    } else {
      if (s + 5 > sn) throw bad("truncated copy", s);
      len = 1 + (tag >>> 2);
      off = (src[s + 1]! | (src[s + 2]! << 8) | (src[s + 3]! << 16) | (src[s + 4]! << 24)) >>> 0;
      s += 5;
    }
    if (off === 0 || off > d) throw bad(`copy offset ${off} outside the ${d} bytes written`, s);
    if (len > n - d) throw bad("copy runs past the declared length", s);
    const from = d - off;
    if (off >= 4 && len >= 4) {
      // Every 4-byte step reads bytes written before it (off ≥ 4); the last one overlaps.
      for (let i = 0; i < len - 4; i += 4) dv.setInt32(d + i, dv.getInt32(from + i));
      dv.setInt32(d + len - 4, dv.getInt32(from + len - 4));
    } else {
      for (let i = 0; i < len; i++) dst[d + i] = dst[from + i]!;
    }
    d += len;
  }
  return d;
}

/** STRATA_CORRUPT_DATA naming what was wrong and the byte of the block where it was found. */
function bad(what: string, at: number): BadDataError {
  return new BadDataError(`snappy: ${what} at byte ${at}`, "STRATA_CORRUPT_DATA");
}
