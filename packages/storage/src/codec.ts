/**
 * Block codecs: the storage engine stores whatever tag @strata/encoding's codecs choose per
 * block (docs/format/encoding.md lists every tag and layout). This module is the one place the
 * data path touches them, so tests and the format doc have a single seam.
 */
import { BadDataError } from "@strata/core";
import {
  ByteBuffer as CodecBuffer,
  getZigzag,
  varintResult,
  IntEncoding,
  ValuesEncoding,
  putZigzag,
  decodeTimestamps as decodeTs,
  decodeTimestampsNear as decodeTsNear,
  timestampsProgression as tsProgression,
  progression,
  type IntervalGrid,
  decodeValues as decodeVals,
  encodeTimestamps as encodeTs,
  encodeValues as encodeVals,
} from "@strata/encoding";

export { CodecBuffer, IntEncoding, putZigzag, ValuesEncoding };
export type { IntervalGrid };

/** Encodes ts[0..n) into out (reset first by the caller); returns the tag. */
export function encodeTimestamps(out: CodecBuffer, ts: Float64Array, n: number): number {
  return encodeTs(ts, out, n);
}

/** Encodes vals[0..n) into out (reset first by the caller); returns the tag. */
export function encodeValues(out: CodecBuffer, vals: Float64Array, n: number): number {
  return encodeVals(vals, out, n);
}

/**
 * Cheap encodings for short-lived parts (in-memory parts and fresh on-disk parts, often a few
 * samples per block): DeltaVarint timestamps and RawFloat values, standard @strata/encoding tags
 * written without trying layouts. A background merge re-encodes them with the full codecs.
 * ts[0..n) must be ascending (the writers normalize first).
 */
export function encodeTimestampsFast(out: CodecBuffer, ts: Float64Array, n: number): number {
  out.ensure(10 + 9 * n);
  if (n > 0 && !deltasSafe(ts, 0, n)) {
    for (let i = 0; i < n; i++) out.len = putZigzag(out.buf, out.len, ts[i]!);
    return IntEncoding.PlainVarint;
  }
  out.len = putDeltaVarints(out.buf, out.len, ts, 0, n);
  return IntEncoding.DeltaVarint;
}

/** True when ascending ts[a..b) has deltas within ±(2^53−1) (DeltaVarint round-trips). */
export function deltasSafe(ts: Float64Array, a: number, b: number): boolean {
  return ts[b - 1]! - ts[a]! <= Number.MAX_SAFE_INTEGER;
}

/** Writes ts[a..b) (ascending, b > a) as DeltaVarint at buf[p..]; returns the end position. */
export function putDeltaVarints(buf: Uint8Array, p: number, ts: Float64Array, a: number, b: number): number {
  p = putZigzag(buf, p, ts[a]!);
  for (let i = a + 1; i < b; i++) {
    let d = ts[i]! - ts[i - 1]!;
    if (d > 0 && d < 0x8000000) {
      // Ascending: zigzag(d) = 2d, below 2^28.
      d *= 2;
      while (d >= 0x80) {
        buf[p++] = (d & 0x7f) | 0x80;
        d >>>= 7;
      }
      buf[p++] = d;
    } else {
      p = putZigzag(buf, p, d);
    }
  }
  return p;
}

export function encodeValuesFast(out: CodecBuffer, vals: Float64Array, n: number): number {
  out.ensure(8 * n);
  const buf = out.buf;
  if (buf.buffer !== fastDv.buffer || buf.byteOffset !== fastDvOffset) {
    fastDv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    fastDvOffset = buf.byteOffset;
  }
  const dv = fastDv;
  let p = out.len;
  for (let i = 0; i < n; i++, p += 8) dv.setFloat64(p, vals[i]!, true);
  out.len = p;
  return ValuesEncoding.RawFloat;
}

let fastDv: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
let fastDvOffset = 0;

/** Decodes n timestamps into out[0..n); throws BadDataError (STRATA_CORRUPT_DATA) on bad input. */
export function decodeTimestamps(tag: number, src: Uint8Array, n: number, out: Float64Array): void {
  decodeTs(tag, src, n, out);
}

/** decodeTimestamps exact only inside grid's intervals (@strata/encoding decodeTimestampsNear); true if placeholders were left. */
export function decodeTimestampsNear(tag: number, src: Uint8Array, n: number, out: Float64Array, grid: IntervalGrid): boolean {
  return decodeTsNear(tag, src, n, out, grid);
}

/** Whether n timestamps are an arithmetic progression; then timestamp i is `x0 + i·step` of progression (@strata/encoding timestampsProgression). */
export function timestampsProgression(tag: number, src: Uint8Array, n: number): boolean {
  return tsProgression(tag, src, n);
}

export { progression };

/** Decodes n values into out[0..n) bit-exactly (with `want`, only at those index ranges: @strata/encoding decodeValues); throws BadDataError on bad input. */
export function decodeValues(tag: number, src: Uint8Array, n: number, out: Float64Array, want?: Uint32Array, wantCount = 0): void {
  decodeVals(tag, src, n, out, want, wantCount);
}

let scratchTs = new Float64Array(1024);
let scratchVals = new Float64Array(1024);
let scratchValBytes = new Uint8Array(scratchVals.buffer);
let outBytes: Uint8Array = new Uint8Array(0);

function corrupt(what: string): BadDataError {
  return new BadDataError(`corrupt encoded data: ${what}`, "STRATA_CORRUPT_DATA");
}

function checkOut(count: number, out: Float64Array, o: number): void {
  if (!Number.isInteger(count) || count < 0 || o + count > out.length) {
    throw corrupt(`sample count ${count} at ${o} does not fit the ${out.length} output slots`);
  }
}

/**
 * decodeTimestamps from src[p, p + len) into out[o, o + count) — the merge path: the cheap
 * layouts of fresh parts are decoded in place (no view or scratch allocated per block), other
 * layouts go through the full decoder and a scratch copy.
 */
export function decodeTimestampsAt(tag: number, src: Uint8Array, p: number, len: number, count: number, out: Float64Array, o: number): void {
  checkOut(count, out, o);
  const end = p + len;
  if (tag === IntEncoding.DeltaVarint && count > 0) {
    p = getZigzag(src, p, end);
    let x = varintResult.v;
    out[o] = x;
    for (let i = 1; i < count; i++) {
      p = getZigzag(src, p, end);
      x += varintResult.v;
      out[o + i] = x;
    }
    if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`);
    return;
  }
  if (scratchTs.length < count) scratchTs = new Float64Array(Math.max(count, 2 * scratchTs.length));
  decodeTs(tag, src.subarray(p, end), count, scratchTs);
  for (let i = 0; i < count; i++) out[o + i] = scratchTs[i]!;
}

/** decodeValues from src[p, p + len) into out[o, o + count), bit-exactly (see decodeTimestampsAt). */
export function decodeValuesAt(tag: number, src: Uint8Array, p: number, len: number, count: number, out: Float64Array, o: number): void {
  checkOut(count, out, o);
  if (outBytes.buffer !== out.buffer) outBytes = new Uint8Array(out.buffer);
  const ob = outBytes;
  let q = out.byteOffset + 8 * o;
  if (tag === ValuesEncoding.RawFloat) {
    if (len !== 8 * count) throw corrupt(`raw float block has ${len} bytes, want ${8 * count}`);
    // Byte copy: raw bit patterns (NaN payloads) never pass through a JS number.
    if (len > 256) ob.set(src.subarray(p, p + len), q);
    else for (let i = p, end = p + len; i < end; i++) ob[q++] = src[i]!;
    return;
  }
  if (scratchVals.length < count) {
    scratchVals = new Float64Array(Math.max(count, 2 * scratchVals.length));
    scratchValBytes = new Uint8Array(scratchVals.buffer);
  }
  decodeVals(tag, src.subarray(p, p + len), count, scratchVals);
  const sb = scratchValBytes;
  if (count > 32) ob.set(sb.subarray(0, 8 * count), q);
  else for (let i = 0, n = 8 * count; i < n; i++) ob[q++] = sb[i]!;
}
