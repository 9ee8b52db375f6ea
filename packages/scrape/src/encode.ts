import type { Labels } from "@strata/core";

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
    const sl = sampleLen(timestampMs);
    const inner = labels.length + 1 + varintLen(sl) + sl;
    const o = this.o;
    o.ensure(1 + 10 + inner);
    o.byte(0x0a);
    o.varint(inner);
    o.bytes(labels);
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

  reset(): void {
    this.o.pos = 0;
    this.series = 0;
    this.samples = 0;
  }
}

/** Builds a remote write 2.0 Request (its own symbol table). */
export class WriteRequestV2Builder {
  private readonly ts = new Out(64 * 1024);
  private readonly symbols = new Map<string, number>([["", 0]]);
  private readonly refs: number[] = [];
  series = 0;
  samples = 0;

  private ref(s: string): number {
    let r = this.symbols.get(s);
    if (r === undefined) {
      r = this.symbols.size;
      this.symbols.set(s, r);
    }
    return r;
  }

  add(labels: Labels, timestampMs: number, value: number): void {
    const refs = this.refs;
    refs.length = 0;
    let refsLen = 0;
    for (const l of labels) {
      const a = this.ref(l.name);
      const b = this.ref(l.value);
      refs.push(a, b);
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
    for (const r of refs) o.varint(r);
    writeSample(o, sl, timestampMs, value);
    this.series++;
    this.samples++;
  }

  get byteLength(): number {
    return this.ts.pos;
  }

  /** The encoded request (a copy). */
  finish(): Uint8Array {
    let size = 0;
    for (const s of this.symbols.keys()) {
      const n = Buffer.byteLength(s);
      size += 1 + varintLen(n) + n;
    }
    const o = new Out(size + this.ts.pos);
    for (const s of this.symbols.keys()) {
      const n = Buffer.byteLength(s);
      o.byte(0x22);
      o.varint(n);
      o.str(s, n);
    }
    o.bytes(new Uint8Array(this.ts.buf.buffer, this.ts.buf.byteOffset, this.ts.pos));
    return new Uint8Array(o.buf.buffer, o.buf.byteOffset, o.pos);
  }

  reset(): void {
    this.ts.pos = 0;
    this.symbols.clear();
    this.symbols.set("", 0);
    this.series = 0;
    this.samples = 0;
  }
}
