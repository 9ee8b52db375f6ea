import { BadDataError } from "@strata/core";
import { ByteBuffer, dataView, getInt64, putInt64, TWO_32 } from "./bytes.js";
import {
  CodecBuffer,
  decodeTimestamps,
  decodeTimestampsNear,
  decodeValues,
  encodeTimestampsFast,
  encodeValuesFast,
  IntEncoding,
  progression,
  timestampsProgression,
  ValuesEncoding,
  type IntervalGrid,
} from "./codec.js";
import { BLOCK_HEADER_BYTES, BLOCK_WIRE_HEADER_BYTES, BLOCK_WIRE_VERSION, MAX_BLOCK_SAMPLES, TSID_BYTES } from "./constants.js";
import { decodeTSID, encodeTSID, type TSID } from "./tsid.js";

/**
 * A block as it travels (search results, cluster RPC): self-describing, compressed as stored.
 * `timestamps` / `values` are the encoded payloads; decode them with `decodeBlock`.
 */
export interface RawBlock {
  readonly tsid: TSID;
  /** Number of samples (1..8192). */
  readonly count: number;
  /** First and last timestamp in the block (ms). */
  readonly minT: number;
  readonly maxT: number;
  /** Codec tags (see docs/format/storage.md §codecs). */
  readonly tsTag: number;
  readonly valTag: number;
  readonly timestamps: Uint8Array;
  readonly values: Uint8Array;
}

/** A block header as stored in index.bin. */
export interface BlockHeader {
  /** The 24-byte big-endian TSID (compare with compareBytes). */
  readonly tsid: Uint8Array;
  readonly minT: number;
  readonly maxT: number;
  readonly tsOffset: number;
  readonly valOffset: number;
  readonly count: number;
  readonly tsSize: number;
  readonly valSize: number;
  readonly tsTag: number;
  readonly valTag: number;
  /**
   * A one-sample block stored in its header (fresh parts, docs/format/storage.md §inline
   * one-sample blocks): its timestamp is minT, its value is `value`, and it has no payloads
   * (tsSize = valSize = 0, tsOffset = valOffset = 0).
   */
  readonly inline: boolean;
  /** The sample's value of an inline block (0 otherwise). */
  readonly value: number;
}

/** Byte 70 of a block header: bit 0 set for an inline one-sample block. */
const INLINE_FLAG = 1;

export function writeBlockHeader(buf: Uint8Array, pos: number, h: BlockHeader): void {
  buf.set(h.tsid, pos);
  const dv = dataView(buf);
  putInt64(dv, pos + 24, h.minT);
  putInt64(dv, pos + 32, h.maxT);
  putInt64(dv, pos + 40, h.tsOffset);
  if (h.inline) dv.setFloat64(pos + 48, h.value, true);
  else putInt64(dv, pos + 48, h.valOffset);
  dv.setUint32(pos + 56, h.count, true);
  dv.setUint32(pos + 60, h.tsSize, true);
  dv.setUint32(pos + 64, h.valSize, true);
  buf[pos + 68] = h.tsTag;
  buf[pos + 69] = h.valTag;
  buf[pos + 70] = h.inline ? INLINE_FLAG : 0;
  buf[pos + 71] = 0;
}

/**
 * Writes the header of an inline one-sample block at buf[pos..pos+72) after its TSID (already
 * at buf[pos..pos+24)): timestamp t, value v; the tags are those of the payloads a reader makes
 * of it (inlinePayloads).
 */
export function writeInlineHeaderAfterTSID(buf: Uint8Array, dv: DataView, pos: number, t: number, v: number): void {
  putInt64(dv, pos + 24, t);
  putInt64(dv, pos + 32, t);
  dv.setUint32(pos + 40, 0, true);
  dv.setUint32(pos + 44, 0, true);
  dv.setFloat64(pos + 48, v, true);
  dv.setUint32(pos + 56, 1, true);
  dv.setUint32(pos + 60, 0, true);
  dv.setUint32(pos + 64, 0, true);
  buf[pos + 68] = IntEncoding.DeltaVarint;
  buf[pos + 69] = ValuesEncoding.RawFloat;
  buf[pos + 70] = INLINE_FLAG;
  buf[pos + 71] = 0;
}

/**
 * A block header that a sequential reader overwrites for each block (readBlockHeaderInto):
 * nothing is allocated per block. `tsid` is the header's own 24 bytes, not a view of the index.
 */
export class ReusedBlockHeader implements BlockHeader {
  private readonly tsidBytes = new Uint8Array(TSID_BYTES);
  /**
   * The TSID as four big-endian 48-bit numbers (exact in a double): comparing them in order
   * orders TSIDs like compareBytes on `tsid`, in four comparisons instead of up to 24 (merges).
   */
  k0 = 0;
  k1 = 0;
  k2 = 0;
  k3 = 0;
  minT = 0;
  maxT = 0;
  tsOffset = 0;
  valOffset = 0;
  count = 0;
  tsSize = 0;
  valSize = 0;
  tsTag = 0;
  valTag = 0;
  inline = false;
  value = 0;

  /**
   * The 24-byte TSID, made from k0..k3 when asked for (a merge reads it once per series, not per
   * block); the same array every time, overwritten by the next call.
   */
  get tsid(): Uint8Array {
    writeKeysTSID(this, this.tsidBytes, 0);
    return this.tsidBytes;
  }
}

const TWO_16 = 65_536;

/** Writes the TSID of a parsed header (its k0..k3) at out[pos..pos+24), big-endian. */
export function writeKeysTSID(h: ReusedBlockHeader, out: Uint8Array, pos: number): void {
  putKey48(out, pos, h.k0);
  putKey48(out, pos + 6, h.k1);
  putKey48(out, pos + 12, h.k2);
  putKey48(out, pos + 18, h.k3);
}

function putKey48(out: Uint8Array, pos: number, k: number): void {
  const hi = Math.floor(k / TWO_32);
  const lo = k - hi * TWO_32;
  out[pos] = hi >>> 8;
  out[pos + 1] = hi & 0xff;
  out[pos + 2] = lo >>> 24;
  out[pos + 3] = (lo >>> 16) & 0xff;
  out[pos + 4] = (lo >>> 8) & 0xff;
  out[pos + 5] = lo & 0xff;
}

/** The metricID (TSID bytes 16..24) of a parsed header, from its keys. */
export function keysMetricID(h: ReusedBlockHeader): number {
  return (h.k2 % TWO_16) * 2 ** 48 + h.k3;
}

/** TSID order of two parsed headers (negative, 0, positive), by their 48-bit keys. */
export function compareHeaderTSIDs(a: ReusedBlockHeader, b: ReusedBlockHeader): number {
  return a.k0 - b.k0 || a.k1 - b.k1 || a.k2 - b.k2 || a.k3 - b.k3;
}

/** Parses the header at buf[pos..pos+72) into `h`; throws BadDataError on a truncated or corrupt one. */
export function readBlockHeaderInto(buf: Uint8Array, pos: number, dv: DataView, h: ReusedBlockHeader): void {
  if (pos + BLOCK_HEADER_BYTES > buf.length) {
    throw new BadDataError(`block header at byte ${pos} overruns index block of ${buf.length}`, "STRATA_CORRUPT_DATA");
  }
  h.k0 = dv.getUint16(pos) * TWO_32 + dv.getUint32(pos + 2);
  h.k1 = dv.getUint16(pos + 6) * TWO_32 + dv.getUint32(pos + 8);
  h.k2 = dv.getUint16(pos + 12) * TWO_32 + dv.getUint32(pos + 14);
  h.k3 = dv.getUint16(pos + 18) * TWO_32 + dv.getUint32(pos + 20);
  h.minT = getInt64(dv, pos + 24);
  h.maxT = getInt64(dv, pos + 32);
  h.count = dv.getUint32(pos + 56, true);
  h.tsSize = dv.getUint32(pos + 60, true);
  h.valSize = dv.getUint32(pos + 64, true);
  h.tsTag = buf[pos + 68]!;
  h.valTag = buf[pos + 69]!;
  if ((buf[pos + 70]! & INLINE_FLAG) !== 0) {
    h.inline = true;
    h.value = dv.getFloat64(pos + 48, true);
    h.tsOffset = 0;
    h.valOffset = 0;
    if (h.count !== 1 || h.minT !== h.maxT || h.tsSize !== 0 || h.valSize !== 0) {
      throw new BadDataError(`corrupt inline block header at byte ${pos}: count ${h.count}, minT ${h.minT}, maxT ${h.maxT}, sizes ${h.tsSize}+${h.valSize}`, "STRATA_CORRUPT_DATA");
    }
    return;
  }
  h.inline = false;
  h.value = 0;
  h.tsOffset = getInt64(dv, pos + 40);
  h.valOffset = getInt64(dv, pos + 48);
  if (h.count === 0 || h.count > MAX_BLOCK_SAMPLES || h.minT > h.maxT) {
    throw new BadDataError(`corrupt block header at byte ${pos}: count ${h.count}, minT ${h.minT}, maxT ${h.maxT}`, "STRATA_CORRUPT_DATA");
  }
}

/** Scratch of inlinePayloads. */
const inlineTs = new Float64Array(1);
const inlineVal = new Float64Array(1);
const inlineOut = new CodecBuffer(32);

/**
 * The payloads of an inline one-sample block in the layouts its tags name (DeltaVarint
 * timestamps, RawFloat values), as fresh arrays: what a search sends for it.
 */
export function inlinePayloads(h: BlockHeader): { timestamps: Uint8Array; values: Uint8Array } {
  inlineTs[0] = h.minT;
  inlineVal[0] = h.value;
  inlineOut.reset();
  encodeTimestampsFast(inlineOut, inlineTs, 1);
  const timestamps = inlineOut.buf.slice(0, inlineOut.len);
  inlineOut.reset();
  encodeValuesFast(inlineOut, inlineVal, 1);
  return { timestamps, values: inlineOut.buf.slice(0, inlineOut.len) };
}

/** Parses the header at buf[pos..pos+72) into a header of its own; pass `dv` (a DataView over buf) when reading many. */
export function readBlockHeader(buf: Uint8Array, pos: number, dv: DataView = dataView(buf)): BlockHeader {
  const h = new ReusedBlockHeader();
  readBlockHeaderInto(buf, pos, dv, h);
  return h;
}

/**
 * Appends a block in its wire form (docs/format/storage.md §block wire form):
 * version u8 | TSID 24 | count u32 | minT i64 | maxT i64 | tsTag u8 | valTag u8 |
 * tsLen u32 | valLen u32 | timestamps | values. Integers little-endian, TSID big-endian.
 */
export function marshalBlock(b: RawBlock, out: ByteBuffer): void {
  out.ensure(marshaledBlockSize(b));
  out.len = marshalBlockAt(b, out.buf, out.len);
}

/** Bytes of a block's wire form. */
export function marshaledBlockSize(b: RawBlock): number {
  return BLOCK_WIRE_HEADER_BYTES + b.timestamps.length + b.values.length;
}

/**
 * Writes a block's wire form at `pos` (`buf` must hold marshaledBlockSize more bytes); returns
 * the end. `dv`: a DataView over exactly `buf`, for callers writing many blocks into one buffer.
 */
export function marshalBlockAt(b: RawBlock, buf: Uint8Array, pos: number, dv: DataView = dataView(buf)): number {
  buf[pos] = BLOCK_WIRE_VERSION;
  encodeTSID(b.tsid, buf, pos + 1);
  dv.setUint32(pos + 25, b.count, true);
  putInt64(dv, pos + 29, b.minT);
  putInt64(dv, pos + 37, b.maxT);
  buf[pos + 45] = b.tsTag;
  buf[pos + 46] = b.valTag;
  dv.setUint32(pos + 47, b.timestamps.length, true);
  dv.setUint32(pos + 51, b.values.length, true);
  buf.set(b.timestamps, pos + 55);
  buf.set(b.values, pos + 55 + b.timestamps.length);
  return pos + 55 + b.timestamps.length + b.values.length;
}

/** Reads one block in wire form at `pos`; returns it and the position after it. Payloads are views. */
export function unmarshalBlock(buf: Uint8Array, pos: number): { block: RawBlock; next: number } {
  if (pos + BLOCK_WIRE_HEADER_BYTES > buf.length) {
    throw new BadDataError(`block at byte ${pos}: truncated header`, "STRATA_CORRUPT_DATA");
  }
  if (buf[pos] !== BLOCK_WIRE_VERSION) {
    throw new BadDataError(`block at byte ${pos}: unknown version ${buf[pos]}`, "STRATA_CORRUPT_DATA");
  }
  const dv = dataView(buf);
  const count = dv.getUint32(pos + 25, true);
  const tsLen = dv.getUint32(pos + 47, true);
  const valLen = dv.getUint32(pos + 51, true);
  const start = pos + 55;
  const end = start + tsLen + valLen;
  if (end > buf.length || count === 0 || count > MAX_BLOCK_SAMPLES) {
    throw new BadDataError(`block at byte ${pos}: count ${count}, lengths ${tsLen}+${valLen} overrun ${buf.length}`, "STRATA_CORRUPT_DATA");
  }
  const block: RawBlock = {
    tsid: decodeTSID(buf, pos + 1),
    count,
    minT: getInt64(dv, pos + 29),
    maxT: getInt64(dv, pos + 37),
    tsTag: buf[pos + 45]!,
    valTag: buf[pos + 46]!,
    timestamps: buf.subarray(start, start + tsLen),
    values: buf.subarray(start + tsLen, end),
  };
  return { block, next: end };
}

/**
 * Decodes a block's samples into ts[off..off+count) and vals[off..off+count) (arrays must be
 * large enough). Throws BadDataError when the payload is corrupt.
 */
export function decodeBlock(b: RawBlock, ts: Float64Array, vals: Float64Array, off = 0): number {
  decodeBlockTimestamps(b, ts, off);
  decodeBlockValues(b, vals, off);
  return b.count;
}

/** The timestamps half of decodeBlock. */
export function decodeBlockTimestamps(b: RawBlock, ts: Float64Array, off = 0): void {
  try {
    decodeTimestamps(b.tsTag, b.timestamps, b.count, off === 0 ? ts : ts.subarray(off));
  } catch (err) {
    throw corruptBlock(b, err);
  }
}

/**
 * The timestamps half of decodeBlock, exact only inside `grid`'s intervals: outside them a
 * block's timestamps may be ascending placeholders (decodeTimestampsNear), which never fall
 * inside an interval. Returns whether any were left.
 */
export function decodeBlockTimestampsNear(b: RawBlock, ts: Float64Array, off: number, grid: IntervalGrid): boolean {
  try {
    return decodeTimestampsNear(b.tsTag, b.timestamps, b.count, off === 0 ? ts : ts.subarray(off), grid);
  } catch (err) {
    throw corruptBlock(b, err);
  }
}

/**
 * Whether a block's timestamps lie on a perfect grid (stored as an arithmetic progression): then
 * timestamp i is `blockProgression.x0 + i·blockProgression.step`, and a reader that needs a few
 * of them computes those instead of decoding the block's timestamps.
 */
export function blockTimestampsProgression(b: RawBlock): boolean {
  try {
    return timestampsProgression(b.tsTag, b.timestamps, b.count);
  } catch (err) {
    throw corruptBlock(b, err);
  }
}

/** The progression blockTimestampsProgression found (valid until its next call). */
export const blockProgression: { readonly x0: number; readonly step: number } = progression;

/**
 * The values half of decodeBlock; with `want` only the values at the block's indexes in those
 * [from, to) pairs (sorted, disjoint, want[0..2·wantCount)) must come out (decodeValues).
 */
export function decodeBlockValues(b: RawBlock, vals: Float64Array, off = 0, want?: Uint32Array, wantCount = 0): void {
  try {
    decodeValues(b.valTag, b.values, b.count, off === 0 ? vals : vals.subarray(off), want, wantCount);
  } catch (err) {
    throw corruptBlock(b, err);
  }
}

function corruptBlock(b: RawBlock, err: unknown): BadDataError {
  if (err instanceof BadDataError) return err;
  return new BadDataError(`corrupt block of metricID ${b.tsid.metricID}: ${String(err)}`, "STRATA_CORRUPT_DATA", { cause: err });
}

/**
 * Cuts blocks to the samples of a time range: a search whose range covers a sliver of a long
 * block (an instant query's 5 minutes of a 34-hour block at 7 days) sends those samples instead
 * of the whole block. One cutter per caller; its scratch is reused.
 */
export class BlockCutter {
  private ts = new Float64Array(0);
  private vals = new Float64Array(0);
  private readonly want = new Uint32Array(2);
  private readonly tsOut = new ByteBuffer(1024);
  private readonly valOut = new ByteBuffer(1024);

  /**
   * `b` with only its samples in [minT, maxT], re-encoded (delta varint timestamps, raw float64
   * values: lossless) into fresh payloads; `b` itself when every sample or none is inside. Only
   * what the range needs is decoded: timestamps on a perfect grid are computed, others decoded
   * exactly near the range only; values only at the kept indexes (decodeBlockValues' `want`).
   */
  cut(b: RawBlock, minT: number, maxT: number): RawBlock {
    if (b.minT >= minT && b.maxT <= maxT) return b;
    const n = b.count;
    if (this.ts.length < n) {
      this.ts = new Float64Array(n);
      this.vals = new Float64Array(n);
    }
    const ts = this.ts;
    let lo: number;
    let hi: number;
    if (n > 1 && blockTimestampsProgression(b) && blockProgression.step > 0) {
      const { x0, step } = blockProgression;
      lo = Math.min(n, Math.max(0, Math.ceil((minT - x0) / step)));
      while (lo > 0 && x0 + (lo - 1) * step >= minT) lo--;
      while (lo < n && x0 + lo * step < minT) lo++;
      hi = Math.min(n, Math.max(lo, Math.floor((maxT - x0) / step) + 1));
      while (hi > lo && x0 + (hi - 1) * step > maxT) hi--;
      while (hi < n && x0 + hi * step <= maxT) hi++;
      for (let i = lo; i < hi; i++) ts[i] = x0 + i * step;
    } else {
      // Exact inside (maxT - range, maxT] = [minT, maxT]; ascending placeholders outside it.
      decodeBlockTimestampsNear(b, ts, 0, { first: maxT, step: 0, count: 1, range: maxT - minT + 1 });
      lo = 0;
      while (lo < n && ts[lo]! < minT) lo++;
      hi = lo;
      while (hi < n && ts[hi]! <= maxT) hi++;
    }
    if (hi === lo || hi - lo === n) return b;
    const m = hi - lo;
    this.want[0] = lo;
    this.want[1] = hi;
    decodeBlockValues(b, this.vals, 0, this.want, 1);
    this.tsOut.reset();
    this.valOut.reset();
    const tsTag = encodeTimestampsFast(this.tsOut, ts.subarray(lo, hi), m);
    const valTag = encodeValuesFast(this.valOut, this.vals.subarray(lo, hi), m);
    return {
      tsid: b.tsid,
      count: m,
      minT: ts[lo]!,
      maxT: ts[hi - 1]!,
      tsTag,
      valTag,
      timestamps: this.tsOut.buf.slice(0, this.tsOut.len),
      values: this.valOut.buf.slice(0, this.valOut.len),
    };
  }
}
