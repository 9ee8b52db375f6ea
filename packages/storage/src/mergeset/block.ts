import { InternalError } from "@strata/core";
import { ByteBuffer, ByteReader, commonPrefixLen } from "../bytes.js";

/**
 * A decoded block: its items concatenated in `data`, item i is data[offs[i], offs[i+1]).
 * Items are sorted and unique. Decoded blocks are immutable and shared through caches.
 */
export interface Block {
  readonly data: Uint8Array;
  readonly offs: Uint32Array;
  readonly n: number;
}

export function blockBytes(b: Block): number {
  return b.data.byteLength + b.offs.byteLength + 64;
}

function corrupt(msg: string): never {
  throw new InternalError(`mergeset block: ${msg}`, "STRATA_CORRUPT_DATA");
}

/**
 * Decodes a format-1 block payload (`{ uvarint cpl, uvarint suffixLen, suffix }*`, where cpl is
 * the length of the prefix shared with the previous item) into a Block. Parts written before
 * format 2 hold such blocks; nothing writes them any more.
 */
export function decodeBlock(raw: Uint8Array, count: number, itemsBytes: number): Block {
  const data = new Uint8Array(itemsBytes);
  const offs = new Uint32Array(count + 1);
  const r = new ByteReader(raw, 0, raw.length, corrupt);
  let pos = 0;
  let prevStart = 0;
  let prevLen = 0;
  for (let i = 0; i < count; i++) {
    const cpl = r.uvarint();
    const sl = r.uvarint();
    if (cpl > prevLen) corrupt(`item ${i}: common prefix ${cpl} longer than previous item ${prevLen}`);
    if (pos + cpl + sl > itemsBytes) corrupt(`item ${i} overruns the block's ${itemsBytes} bytes`);
    if (r.pos + sl > raw.length) corrupt(`item ${i}: suffix overruns payload`);
    offs[i] = pos;
    if (cpl > 0) data.copyWithin(pos, prevStart, prevStart + cpl);
    const src = r.pos;
    const dst = pos + cpl;
    for (let j = 0; j < sl; j++) data[dst + j] = raw[src + j]!;
    r.pos += sl;
    prevStart = pos;
    prevLen = cpl + sl;
    pos += prevLen;
  }
  if (pos !== itemsBytes) corrupt(`decoded ${pos} bytes, metaindex says ${itemsBytes}`);
  if (r.pos !== raw.length) corrupt(`${raw.length - r.pos} trailing bytes`);
  offs[count] = pos;
  return { data, offs, n: count };
}

/**
 * Appends the format-2 payload of `count` sorted items (item i is items[offs[i], offs[i+1])) to
 * `out`: the prefix common to all items once, then the column of prefix lengths shared with
 * the previous item (beyond the common prefix, items 1..n-1), the column of suffix lengths, and
 * the suffixes back to back. Columns of similar small numbers and runs of similar suffixes are
 * what a general compressor shrinks best (docs/format/indexdb.md).
 */
export function encodeBlockV2(items: Uint8Array, offs: ArrayLike<number>, count: number, out: ByteBuffer): number {
  if (count === 0) return 0;
  const end = offs[count]!;
  const lastStart = offs[count - 1]!;
  const common = commonPrefixLen(items, offs[0]!, offs[1]!, items, lastStart, end);
  out.uvarint(common);
  out.bytes(items, offs[0]!, offs[0]! + common);
  if (cplScratch.length < count) cplScratch = new Uint32Array(Math.max(count, cplScratch.length * 2));
  const cpls = cplScratch;
  cpls[0] = 0;
  for (let i = 1; i < count; i++) {
    const s = offs[i]!;
    cpls[i] = commonPrefixLen(items, offs[i - 1]! + common, s, items, s + common, offs[i + 1]!);
    out.uvarint(cpls[i]!);
  }
  for (let i = 0; i < count; i++) out.uvarint(offs[i + 1]! - (offs[i]! + common + cpls[i]!));
  // suffixes: mostly a few bytes each, copied by a loop (a subarray + set per item costs more)
  out.ensure(end - offs[0]!);
  const ob = out.buf;
  let p = out.len;
  for (let i = 0; i < count; i++) {
    const e = offs[i + 1]!;
    for (let j = offs[i]! + common + cpls[i]!; j < e; j++) ob[p++] = items[j]!;
  }
  out.len = p;
  return common;
}

/** encodeBlockV2's column of shared-prefix lengths (scratch reused across blocks). */
let cplScratch = new Uint32Array(1024);

/**
 * The column of the last encodeBlockV2 call: item i (≥ 1) shares `common + lastPrefixLens()[i]`
 * bytes with item i - 1. Valid until the next call.
 */
export function lastPrefixLens(): Uint32Array {
  return cplScratch;
}

/** Inverse of encodeBlockV2; every length is checked against `count` and `itemsBytes`. */
export function decodeBlockV2(raw: Uint8Array, count: number, itemsBytes: number): Block {
  const data = new Uint8Array(itemsBytes);
  const offs = new Uint32Array(count + 1);
  if (count === 0) {
    if (raw.length !== 0 || itemsBytes !== 0) corrupt(`empty block with ${raw.length} payload bytes`);
    return { data, offs, n: 0 };
  }
  const r = new ByteReader(raw, 0, raw.length, corrupt);
  const common = r.uvarint();
  if (common * count > itemsBytes) corrupt(`common prefix of ${common} bytes × ${count} items exceeds ${itemsBytes}`);
  const prefix = r.bytes(common);
  const cpls = new Uint32Array(count);
  for (let i = 1; i < count; i++) cpls[i] = r.uvarint();
  let pos = 0;
  let prevLen = 0; // of the previous item beyond the common prefix
  for (let i = 0; i < count; i++) {
    const sl = r.uvarint();
    const cpl = cpls[i]!;
    if (cpl > prevLen) corrupt(`item ${i}: shared prefix ${cpl} longer than previous item's ${prevLen}`);
    const len = common + cpl + sl;
    if (pos + len > itemsBytes) corrupt(`item ${i} overruns the block's ${itemsBytes} bytes`);
    offs[i] = pos;
    pos += len;
    prevLen = cpl + sl;
  }
  if (pos !== itemsBytes) corrupt(`decoded ${pos} bytes, metaindex says ${itemsBytes}`);
  offs[count] = pos;
  let src = r.pos;
  // Short ranges by byte loops, long ones by native copies (a call costs more than a short copy).
  for (let i = 0; i < count; i++) {
    const s = offs[i]!;
    if (common < 16) for (let j = 0; j < common; j++) data[s + j] = prefix[j]!;
    else data.set(prefix, s);
    const cpl = cpls[i]!;
    const from = s + common + cpl;
    if (cpl > 0) {
      const ps = offs[i - 1]! + common;
      if (cpl < 32) for (let j = 0; j < cpl; j++) data[s + common + j] = data[ps + j]!;
      else data.copyWithin(s + common, ps, ps + cpl);
    }
    const sl = offs[i + 1]! - from;
    if (src + sl > raw.length) corrupt(`item ${i}: suffix overruns payload`);
    if (sl < 64) for (let j = 0; j < sl; j++) data[from + j] = raw[src + j]!;
    else data.set(raw.subarray(src, src + sl), from);
    src += sl;
  }
  if (src !== raw.length) corrupt(`${raw.length - src} trailing bytes`);
  return { data, offs, n: count };
}

/** Accumulates sorted items of one block. */
export class BlockBuilder {
  /** The items themselves, concatenated. */
  readonly items = new ByteBuffer(4096);
  readonly offs: number[] = [];
  count = 0;
  private prevStart = 0;

  reset(): void {
    this.items.reset();
    this.offs.length = 0;
    this.count = 0;
    this.prevStart = 0;
  }

  get itemsBytes(): number {
    return this.items.len;
  }

  add(b: Uint8Array, start: number, end: number): void {
    const items = this.items;
    this.prevStart = items.len;
    this.offs.push(items.len);
    items.ensure(end - start);
    const ib = items.buf;
    let p = items.len;
    for (let i = start; i < end; i++) ib[p++] = b[i]!;
    items.len = p;
    this.count++;
  }

  /**
   * Appends the format-2 payload of the items to `out` (see encodeBlockV2); returns the length
   * of the prefix all items share (lastPrefixLens() has the rest).
   */
  encode(out: ByteBuffer): number {
    this.offs.push(this.items.len);
    const common = encodeBlockV2(this.items.buf, this.offs, this.count, out);
    this.offs.pop();
    return common;
  }

  firstItem(): Uint8Array {
    return this.items.buf.slice(0, this.offs.length > 1 ? this.offs[1]! : this.items.len);
  }

  lastItem(): Uint8Array {
    return this.items.buf.slice(this.prevStart, this.items.len);
  }

  /** The block in decoded form (copies). */
  toBlock(): Block {
    const offs = new Uint32Array(this.count + 1);
    for (let i = 0; i < this.count; i++) offs[i] = this.offs[i]!;
    offs[this.count] = this.items.len;
    return { data: this.items.toBytes(), offs, n: this.count };
  }
}
