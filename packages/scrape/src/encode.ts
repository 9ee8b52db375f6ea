import type { Labels } from "@strata/core";
import { copyBytes, expandLabels } from "./series-cache.js";

/**
 * Remote write bodies (before snappy), written straight into a growable buffer: no protobuf
 * object per series or sample. 1.0: prometheus.WriteRequest { repeated TimeSeries timeseries = 1 }
 * with TimeSeries { repeated Label labels = 1; repeated Sample samples = 2 }. 2.0:
 * io.prometheus.write.v2.Request { repeated string symbols = 4; repeated TimeSeries timeseries = 5 }
 * with TimeSeries { repeated uint32 labels_refs = 1 (packed); repeated Sample samples = 2 }.
 * Sample is { double value = 1; int64 timestamp = 2 } in both.
 */

class Out {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  /** int64 as protobuf varint (negative values as 10-byte two's complement). */
  int64(v: number): void {
    if (v >= 0) {
      this.varint(v);
      return;
    }
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }
  double(v: number): void {
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str(s: string, len: number): void {
    this.pos += this.buf.write(s, this.pos, len, "utf8");
  }
}

function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** The labels of one series as 1.0 bytes (a run of `labels` fields), for caching per series. */
export function encodeLabelsV1(labels: Labels): Uint8Array {
  let size = 0;
  for (const l of labels) {
    const n = Buffer.byteLength(l.name);
    const v = Buffer.byteLength(l.value);
    const inner = 1 + varintLen(n) + n + 1 + varintLen(v) + v;
    size += 1 + varintLen(inner) + inner;
  }
  const o = new Out(size);
  for (const l of labels) {
    const n = Buffer.byteLength(l.name);
    const v = Buffer.byteLength(l.value);
    o.byte(0x0a);
    o.varint(1 + varintLen(n) + n + 1 + varintLen(v) + v);
    o.byte(0x0a);
    o.varint(n);
    o.str(l.name, n);
    o.byte(0x12);
    o.varint(v);
    o.str(l.value, v);
  }
  return new Uint8Array(o.buf.buffer, o.buf.byteOffset, o.pos);
}

function sampleLen(ts: number): number {
  if (ts === lastTs) return 1 + 8 + 1 + tsLen;
  return 1 + 8 + 1 + (ts >= 0 ? varintLen(ts) : 10);
}

/** The value's 8 bytes, little-endian (one shared scratch: encoding is synchronous). */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A scrape writes one timestamp for all its samples: the varint of the last one is kept, so a
 * sample costs a copy of its bytes instead of a division per 7 bits.
 */
let lastTs = Number.NaN;
const tsBytes = new Uint8Array(10);
let tsLen = 0;

/** `repeated Sample samples = 2` with one Sample { double value = 1; int64 timestamp = 2 }. */
function writeSample(o: Out, sl: number, timestampMs: number, value: number): void {
  const b = o.buf;
  let p = o.pos;
  b[p++] = 0x12;
  b[p++] = sl; // sl < 128: 1 + 8 + 1 + at most 10 bytes
  b[p++] = 0x09;
  f64[0] = value;
  if (littleEndian) {
    for (let i = 0; i < 8; i++) b[p + i] = f64Bytes[i]!;
  } else {
    for (let i = 0; i < 8; i++) b[p + i] = f64Bytes[7 - i]!;
  }
  p += 8;
  b[p++] = 0x10;
  o.pos = p;
  if (timestampMs !== lastTs) {
    const save = o.pos;
    o.int64(timestampMs);
    tsLen = o.pos - save;
    for (let i = 0; i < tsLen; i++) tsBytes[i] = b[save + i]!;
    lastTs = timestampMs;
    return;
  }
  for (let i = 0; i < tsLen; i++) b[p + i] = tsBytes[i]!;
  o.pos = p + tsLen;
}

/** Builds a remote write 1.0 WriteRequest from pre-encoded label runs. */
export class WriteRequestV1Builder {
  private readonly o = new Out(64 * 1024);
  series = 0;
  samples = 0;

  add(labels: Uint8Array, timestampMs: number, value: number): void {
    this.addRange(labels, 0, labels.length, timestampMs, value);
  }

  /** Like add() with the label run buf[off, off + len) (a series cache's arena). */
  addRange(buf: Uint8Array, off: number, len: number, timestampMs: number, value: number): void {
    this.addExpanded(buf, off, len, len, NO_SHARED, timestampMs, value);
  }

  /**
   * Like addRange() for a SeriesCache label run stored with markers for fields (the target's, metric names):
   * buf[off, off + stored) expands (expandLabels) to `len` bytes.
   */
  addExpanded(buf: Uint8Array, off: number, stored: number, len: number, fields: readonly Uint8Array[], timestampMs: number, value: number): void {
    const sl = sampleLen(timestampMs);
    const inner = len + 1 + varintLen(sl) + sl;
    const o = this.o;
    o.ensure(1 + 10 + inner);
    o.byte(0x0a);
    o.varint(inner);
    o.pos = stored === len ? copyBytes(buf, off, off + len, o.buf, o.pos) : expandLabels(buf, off, stored, fields, o.buf, o.pos);
    writeSample(o, sl, timestampMs, value);
    this.series++;
    this.samples++;
  }

  get byteLength(): number {
    return this.o.pos;
  }

  /** The encoded request; valid until the next add() or reset(). */
  view(): Uint8Array {
    return new Uint8Array(this.o.buf.buffer, this.o.buf.byteOffset, this.o.pos);
  }

  /** Empties the batch; a buffer grown past `keepBytes` by a burst is given back. */
  reset(keepBytes = 4 << 20): void {
    this.o.pos = 0;
    if (this.o.buf.length > keepBytes) this.o.buf = Buffer.allocUnsafe(64 * 1024);
    this.series = 0;
    this.samples = 0;
  }
}

/**
 * Builds a remote write 2.0 Request (its own symbol table) from the same 1.0 label runs: the
 * symbols are interned by their bytes (open addressing over typed arrays, the symbols section
 * written as they come), so a sample makes no string.
 */
export class WriteRequestV2Builder {
  private readonly ts = new Out(64 * 1024);
  /** The encoded `repeated string symbols = 4` section; symbol i's bytes at symOff[i]. */
  private readonly sym = new Out(16 * 1024);
  private symOff = new Int32Array(1024);
  private symLen = new Int32Array(1024);
  private symHash = new Int32Array(1024);
  private nsym = 0;
  private table = new Int32Array(2048).fill(-1);
  private refs = new Int32Array(64);
  private readonly out = new Out(64 * 1024);
  series = 0;
  samples = 0;

  constructor() {
    this.reset();
  }

  /** The symbol of buf[s, e) (added when new). */
  private intern(buf: Uint8Array, s: number, e: number): number {
    let h = 0x811c9dc5 | 0;
    for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
    const len = e - s;
    let mask = this.table.length - 1;
    const sb = this.sym;
    let slot = h & mask;
    for (; ; slot = (slot + 1) & mask) {
      const id = this.table[slot]!;
      if (id < 0) break;
      if (this.symHash[id] !== h || this.symLen[id] !== len) continue;
      const off = this.symOff[id]!;
      let i = 0;
      while (i < len && sb.buf[off + i] === buf[s + i]) i++;
      if (i === len) return id;
    }
    const id = this.nsym++;
    if (id === this.symOff.length) {
      const g = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
        const b = new Int32Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.symOff = g(this.symOff);
      this.symLen = g(this.symLen);
      this.symHash = g(this.symHash);
    }
    sb.ensure(1 + 5 + len);
    sb.byte(0x22);
    sb.varint(len);
    this.symOff[id] = sb.pos;
    this.symLen[id] = len;
    this.symHash[id] = h;
    copyBytes(buf, s, e, sb.buf, sb.pos);
    sb.pos += len;
    if (this.nsym * 2 > this.table.length) {
      this.table = new Int32Array(this.table.length * 2).fill(-1);
      mask = this.table.length - 1;
      for (let j = 0; j < this.nsym; j++) {
        let k = this.symHash[j]! & mask;
        while (this.table[k]! >= 0) k = (k + 1) & mask;
        this.table[k] = j;
      }
    } else this.table[slot] = id;
    return id;
  }

  add(labels: Uint8Array, timestampMs: number, value: number): void {
    this.addRange(labels, 0, labels.length, timestampMs, value);
  }

  /** Adds a sample of the series whose 1.0 label run (encodeLabelsV1) is buf[off, off + len). */
  addRange(buf: Uint8Array, off: number, len: number, timestampMs: number, value: number): void {
    let refsLen = 0;
    let n = 0;
    const end = off + len;
    let p = off;
    while (p < end) {
      // Label { string name = 1; string value = 2; } as encodeLabelsV1 writes it: both fields, in order.
      p++; // 0x0a
      p = readVarint(buf, p);
      p++; // 0x0a
      p = readVarint(buf, p);
      const ns = p;
      p += varintValue;
      const ne = p;
      p++; // 0x12
      p = readVarint(buf, p);
      const vs = p;
      p += varintValue;
      if (n + 2 > this.refs.length) {
        const r = new Int32Array(this.refs.length * 2);
        r.set(this.refs);
        this.refs = r;
      }
      const a = this.intern(buf, ns, ne);
      const b = this.intern(buf, vs, p);
      this.refs[n++] = a;
      this.refs[n++] = b;
      refsLen += varintLen(a) + varintLen(b);
    }
    const sl = sampleLen(timestampMs);
    const inner = 1 + varintLen(refsLen) + refsLen + 1 + varintLen(sl) + sl;
    const o = this.ts;
    o.ensure(1 + 10 + inner);
    o.byte(0x2a);
    o.varint(inner);
    o.byte(0x0a);
    o.varint(refsLen);
    for (let i = 0; i < n; i++) o.varint(this.refs[i]!);
    writeSample(o, sl, timestampMs, value);
    this.series++;
    this.samples++;
  }

  /** addRange() of a label run stored with field markers (see WriteRequestV1Builder.addExpanded). */
  addExpanded(buf: Uint8Array, off: number, stored: number, len: number, fields: readonly Uint8Array[], timestampMs: number, value: number): void {
    if (this.expanded.length < len) this.expanded = new Uint8Array(Math.max(len, this.expanded.length * 2));
    expandLabels(buf, off, stored, fields, this.expanded, 0);
    this.addRange(this.expanded, 0, len, timestampMs, value);
  }

  private expanded = new Uint8Array(1024);

  get byteLength(): number {
    return this.ts.pos;
  }

  /** The encoded request; valid until the next add(), finish() or reset(). */
  finish(): Uint8Array {
    const o = this.out;
    o.pos = 0;
    o.ensure(this.sym.pos + this.ts.pos);
    o.bytes(new Uint8Array(this.sym.buf.buffer, this.sym.buf.byteOffset, this.sym.pos));
    o.bytes(new Uint8Array(this.ts.buf.buffer, this.ts.buf.byteOffset, this.ts.pos));
    return new Uint8Array(o.buf.buffer, o.buf.byteOffset, o.pos);
  }

  /** Empties the batch; buffers grown past `keepBytes` by a burst are given back. */
  reset(keepBytes = 4 << 20): void {
    this.ts.pos = 0;
    this.sym.pos = 0;
    if (this.ts.buf.length > keepBytes) this.ts.buf = Buffer.allocUnsafe(64 * 1024);
    if (this.sym.buf.length > keepBytes) this.sym.buf = Buffer.allocUnsafe(16 * 1024);
    if (this.out.buf.length > keepBytes) this.out.buf = Buffer.allocUnsafe(64 * 1024);
    this.nsym = 0;
    this.table.fill(-1);
    this.intern(EMPTY, 0, 0);
    this.series = 0;
    this.samples = 0;
  }
}

const EMPTY = new Uint8Array(0);
const NO_SHARED: readonly Uint8Array[] = [];

/** Where readVarint puts the value it read (encoding is synchronous). */
let varintValue = 0;

/** Reads a varint at buf[p] into varintValue; returns the position after it. */
function readVarint(buf: Uint8Array, p: number): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    const b = buf[p++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 0x80;
  }
  varintValue = v;
  return p;
}
