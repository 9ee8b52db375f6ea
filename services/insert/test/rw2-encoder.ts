// A remote write 2.0 encoder written from the specification (io.prometheus.write.v2.Request:
// symbols = 4, timeseries = 5; TimeSeries: labels_refs = 1 packed uint32, samples = 2,
// metadata = 5 { type = 1, help_ref = 3, unit_ref = 4 }; Sample: value = 1 double,
// timestamp = 2 int64). Independent of the generated code, so it checks the decoder against
// the spec rather than against itself.

export class Writer {
  private buf = new Uint8Array(1024);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.len++] = Number(x);
  }
  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    this.ensure(8);
    new DataView(this.buf.buffer).setFloat64(this.len, v, true);
    this.len += 8;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export interface V2Series {
  labels: Record<string, string>;
  samples: [number, number][];
  metadata?: { type: number; help: string; unit: string };
}

export function encodeRemoteWriteV2(series: readonly V2Series[]): Uint8Array {
  const symbols: string[] = [""];
  const index = new Map<string, number>([["", 0]]);
  const ref = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = symbols.length;
      symbols.push(s);
      index.set(s, i);
    }
    return i;
  };
  const te = new TextEncoder();
  const tsBodies = series.map((s) => {
    const w = new Writer();
    const refs = new Writer();
    for (const name of Object.keys(s.labels).sort()) {
      refs.varint(ref(name));
      refs.varint(ref(s.labels[name]!));
    }
    w.bytes(1, refs.finish());
    for (const [t, v] of s.samples) {
      const sw = new Writer();
      sw.double(1, v);
      sw.tag(2, 0);
      sw.varint(t);
      w.bytes(2, sw.finish());
    }
    if (s.metadata) {
      const mw = new Writer();
      mw.tag(1, 0);
      mw.varint(s.metadata.type);
      mw.tag(3, 0);
      mw.varint(ref(s.metadata.help));
      mw.tag(4, 0);
      mw.varint(ref(s.metadata.unit));
      w.bytes(5, mw.finish());
    }
    return w.finish();
  });
  const req = new Writer();
  for (const s of symbols) req.bytes(4, te.encode(s));
  for (const b of tsBodies) req.bytes(5, b);
  return req.finish();
}

/** Encodes raw label-ref lists (for invalid-request tests). */
export function encodeRawV2(symbols: string[], labelRefs: number[]): Uint8Array {
  const te = new TextEncoder();
  const refs = new Writer();
  for (const r of labelRefs) refs.varint(r);
  const s = new Writer();
  s.double(1, 1);
  s.tag(2, 0);
  s.varint(1000);
  const ts = new Writer();
  ts.bytes(1, refs.finish());
  ts.bytes(2, s.finish());
  const req = new Writer();
  for (const sym of symbols) req.bytes(4, te.encode(sym));
  req.bytes(5, ts.finish());
  return req.finish();
}
