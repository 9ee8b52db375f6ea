/**
 * Block codecs: the storage engine stores whatever tag @strata/encoding's codecs choose per
 * block (docs/format/encoding.md lists every tag and layout). This module is the one place the
 * data path touches them, so tests and the format doc have a single seam.
 */
import {
  ByteBuffer as CodecBuffer,
  IntEncoding,
  ValuesEncoding,
  putZigzag,
  decodeTimestamps as decodeTs,
  decodeValues as decodeVals,
  encodeTimestamps as encodeTs,
  encodeValues as encodeVals,
} from "@strata/encoding";

export { CodecBuffer, IntEncoding, putZigzag, ValuesEncoding };

/** Encodes ts[0..n) into out (reset first by the caller); returns the tag. */
export function encodeTimestamps(out: CodecBuffer, ts: Float64Array, n: number): number {
  return encodeTs(ts, out, n);
}

/** Encodes vals[0..n) into out (reset first by the caller); returns the tag. */
export function encodeValues(out: CodecBuffer, vals: Float64Array, n: number): number {
  return encodeVals(vals, out, n);
}

/**
 * Cheap encodings for short-lived in-memory parts (about a second of rows, often one sample per
 * block): PlainVarint timestamps and RawFloat values, standard @strata/encoding tags written
 * without trying layouts. The flush to disk re-encodes every series with the full codecs.
 */
export function encodeTimestampsFast(out: CodecBuffer, ts: Float64Array, n: number): number {
  out.ensure(9 * n);
  for (let i = 0; i < n; i++) out.length = putZigzag(out.buf, out.length, ts[i]!);
  return IntEncoding.PlainVarint;
}

export function encodeValuesFast(out: CodecBuffer, vals: Float64Array, n: number): number {
  out.ensure(8 * n);
  out.buf.set(new Uint8Array(vals.buffer, vals.byteOffset, 8 * n), out.length);
  out.length += 8 * n;
  return ValuesEncoding.RawFloat;
}

/** Decodes n timestamps into out[0..n); throws BadDataError (STRATA_CORRUPT_DATA) on bad input. */
export function decodeTimestamps(tag: number, src: Uint8Array, n: number, out: Float64Array): void {
  decodeTs(tag, src, n, out);
}

/** Decodes n values into out[0..n) bit-exactly; throws BadDataError on bad input. */
export function decodeValues(tag: number, src: Uint8Array, n: number, out: Float64Array): void {
  decodeVals(tag, src, n, out);
}
