import { InternalError } from "@strata/core";
import { ByteBuffer, ByteReader, commonPrefixLen } from "./bytes.js";

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
 * Decodes a raw block payload (`{ uvarint cpl, uvarint suffixLen, suffix }*`, where cpl is the
 * length of the prefix shared with the previous item) into a Block.
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

/** Accumulates sorted items into one block payload. */
export class BlockBuilder {
  /** With `encode` false only the items are kept (in-memory parts need no payload). */
  constructor(private readonly encode = true) {}
  readonly raw = new ByteBuffer(4096);
  /** The items themselves, concatenated (for in-memory blocks and the last-item prefix). */
  readonly items = new ByteBuffer(4096);
  readonly offs: number[] = [];
  count = 0;
  private prevStart = 0;

  reset(): void {
    this.raw.reset();
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
    if (this.encode) {
      const cpl = this.count === 0 ? 0 : commonPrefixLen(items.buf, this.prevStart, items.len, b, start, end);
      const raw = this.raw;
      raw.uvarint(cpl);
      raw.uvarint(end - start - cpl);
      raw.ensure(end - start - cpl);
      const rb = raw.buf;
      let p = raw.len;
      for (let i = start + cpl; i < end; i++) rb[p++] = b[i]!;
      raw.len = p;
    }
    this.prevStart = items.len;
    this.offs.push(items.len);
    items.ensure(end - start);
    const ib = items.buf;
    let p = items.len;
    for (let i = start; i < end; i++) ib[p++] = b[i]!;
    items.len = p;
    this.count++;
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
