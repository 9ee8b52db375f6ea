import { create, toBinary } from "@bufbuild/protobuf";
import { BadDataError, RowsBatchWriter, type LabelLimits, type Tenant } from "@strata/core";
import { prompb, prompbRemote, RemoteWriteDecoder, writev2 } from "@strata/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { referenceV1, referenceV2, type RefResult } from "./reference.js";

const tenant: Tenant = { accountID: 7, projectID: 3 };
const limits: LabelLimits = { maxLabels: 6, maxLabelNameLen: 12, maxLabelValueLen: 20 };

// Small alphabets so that duplicates, empty values, missing names and limits all happen.
const labelName = fc.oneof(
  fc.constantFrom("__name__", "job", "instance", "a", "b", "", "ü", "x".repeat(13), "le"),
  fc.string({ maxLength: 6 }),
);
const labelValue = fc.oneof(fc.constantFrom("", "up", "v", "😀", "y".repeat(21)), fc.string({ maxLength: 8 }));
const sampleArb = fc.record({
  value: fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -0, 1.5)),
  timestamp: fc.oneof(
    fc.bigInt({ min: -(2n ** 53n), max: 2n ** 53n }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.constantFrom(0n, 1_700_000_000_000n),
  ),
});
const seriesArb = fc.record({
  labels: fc.array(fc.record({ name: labelName, value: labelValue }), { maxLength: 7 }),
  samples: fc.array(sampleArb, { maxLength: 4 }),
  exemplars: fc.nat({ max: 2 }),
  histograms: fc.nat({ max: 1 }),
});
const requestArb = fc.array(seriesArb, { maxLength: 5 });

type Series = { labels: { name: string; value: string }[]; samples: { value: number; timestamp: bigint }[]; exemplars: number; histograms: number };

function encodeV1(series: Series[]): Uint8Array {
  const req = create(prompbRemote.WriteRequestSchema, {
    timeseries: series.map((s) =>
      create(prompb.TimeSeriesSchema, {
        labels: s.labels.map((l) => create(prompb.LabelSchema, l)),
        samples: s.samples.map((x) => create(prompb.SampleSchema, x)),
        exemplars: Array.from({ length: s.exemplars }, () => create(prompb.ExemplarSchema, { value: 1 })),
        histograms: Array.from({ length: s.histograms }, () => create(prompb.HistogramSchema, { sum: 2 })),
      }),
    ),
    metadata: [create(prompb.MetricMetadataSchema, { type: 1, metricFamilyName: "up", help: "h" })],
  });
  return toBinary(prompbRemote.WriteRequestSchema, req);
}

function encodeV2(series: Series[]): Uint8Array {
  const symbols = [""];
  const idx = new Map<string, number>([["", 0]]);
  const ref = (s: string): number => {
    let i = idx.get(s);
    if (i === undefined) {
      i = symbols.length;
      symbols.push(s);
      idx.set(s, i);
    }
    return i;
  };
  const ts = series.map((s) =>
    create(writev2.TimeSeriesSchema, {
      labelsRefs: s.labels.flatMap((l) => [ref(l.name), ref(l.value)]),
      samples: s.samples.map((x) => create(writev2.SampleSchema, x)),
      exemplars: Array.from({ length: s.exemplars }, () => create(writev2.ExemplarSchema, { value: 1 })),
      histograms: Array.from({ length: s.histograms }, () => create(writev2.HistogramSchema, { sum: 2 })),
      metadata: create(writev2.MetadataSchema, { type: 2, helpRef: ref("help text"), unitRef: 0 }),
    }),
  );
  return toBinary(writev2.RequestSchema, create(writev2.RequestSchema, { symbols, timeseries: ts }));
}

type Outcome = { ok: true; bytes: Uint8Array; res: RefResult } | { ok: false; err: unknown };

function run(fn: (b: Uint8Array, t: Tenant, l: LabelLimits, w: RowsBatchWriter) => RefResult, body: Uint8Array): Outcome {
  const w = new RowsBatchWriter(16);
  try {
    const res = fn(body, tenant, limits, w);
    return { ok: true, bytes: w.finish(), res };
  } catch (err) {
    return { ok: false, err };
  }
}

// One decoder for all cases, so its raw-labels cache (remote write 1.0) sees label sets again
// and again — and a tiny one that is reset all the time.
const decoder = new RemoteWriteDecoder(limits);
const tinyCache = new RemoteWriteDecoder(limits, { labelsCacheBytes: 1 });
const hand = {
  v1: (b: Uint8Array, t: Tenant, _l: LabelLimits, w: RowsBatchWriter) => decoder.decodeV1(b, t, w),
  v2: (b: Uint8Array, t: Tenant, _l: LabelLimits, w: RowsBatchWriter) => decoder.decodeV2(b, t, w),
};
const handTiny = {
  v1: (b: Uint8Array, t: Tenant, _l: LabelLimits, w: RowsBatchWriter) => tinyCache.decodeV1(b, t, w),
  v2: (b: Uint8Array, t: Tenant, _l: LabelLimits, w: RowsBatchWriter) => tinyCache.decodeV2(b, t, w),
};
const ref = { v1: referenceV1, v2: referenceV2 };
const enc = { v1: encodeV1, v2: encodeV2 };

function sameOutcome(a: Outcome, b: Outcome): void {
  expect(a.ok).toBe(b.ok);
  if (a.ok && b.ok) {
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    expect(a.res).toEqual(b.res);
  }
}

function compare(version: "v1" | "v2", body: Uint8Array, valid: boolean): void {
  const mine = run(hand[version], body);
  const theirs = run(ref[version], body);
  // Decoding again (now with the body's label sets cached) and with a cache that keeps being
  // reset gives the same answer.
  sameOutcome(run(hand[version], body), mine);
  sameOutcome(run(handTiny[version], body), mine);
  if (!mine.ok) {
    // Only typed errors, never a crash.
    expect(mine.err).toBeInstanceOf(BadDataError);
    // A well-formed body the reference accepts must be accepted too.
    if (valid) expect(theirs.ok).toBe(false);
    return;
  }
  // Whatever the hand decoder accepts, the reference accepts with identical rows.
  expect(theirs.ok).toBe(true);
  if (!theirs.ok) return;
  expect(Buffer.from(mine.bytes).equals(Buffer.from(theirs.bytes))).toBe(true);
  expect(mine.res.samples).toBe(theirs.res.samples);
  expect(mine.res.series).toBe(theirs.res.series);
  expect(mine.res.histograms).toBe(theirs.res.histograms);
  expect(mine.res.exemplars).toBe(theirs.res.exemplars);
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(), byte: fc.constant(0) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(body: Uint8Array, muts: { kind: "flip" | "truncate" | "insert"; at: number; byte: number }[]): Uint8Array {
  let b = Uint8Array.from(body);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === "flip") b[at] = m.byte;
    else if (m.kind === "truncate") b = b.slice(0, at);
    else b = Uint8Array.from([...b.subarray(0, at), m.byte, ...b.subarray(at)]);
  }
  return b;
}

describe.each(["v1", "v2"] as const)("remote write %s hand decoder vs generated decoder", (version) => {
  it("agrees on random well-formed requests", () => {
    fc.assert(
      fc.property(requestArb, (series) => compare(version, enc[version](series), true)),
      { numRuns: 400 },
    );
  });

  it("agrees or fails with BadDataError on mutated requests", () => {
    fc.assert(
      fc.property(requestArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (series, muts) =>
        compare(version, mutate(enc[version](series), muts), false),
      ),
      { numRuns: 600 },
    );
  });

  it("only ever throws BadDataError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => compare(version, bytes, false)),
      { numRuns: 500 },
    );
  });
});

describe("remote write 1.0 raw-labels cache", () => {
  const series = (job: string): Series => ({ labels: [{ name: "__name__", value: "up" }, { name: "job", value: job }], samples: [{ value: 1, timestamp: 1000n }], exemplars: 0, histograms: 0 });

  it("keys names by tenant as well as by label bytes", () => {
    const d = new RemoteWriteDecoder(limits);
    const body = encodeV1([series("a")]);
    const w1 = new RowsBatchWriter();
    d.decodeV1(body, { accountID: 1, projectID: 0 }, w1);
    const w2 = new RowsBatchWriter();
    d.decodeV1(body, { accountID: 2, projectID: 5 }, w2);
    const w3 = new RowsBatchWriter();
    referenceV1(body, { accountID: 2, projectID: 5 }, limits, w3);
    expect(Buffer.from(w2.finish()).equals(Buffer.from(w3.finish()))).toBe(true);
    expect(Buffer.from(w1.finish()).equals(Buffer.from(w3.finish()))).toBe(false);
    expect(d.labelsCache?.misses).toBe(2);
  });

  it("never caches an invalid label set and counts hits", () => {
    const d = new RemoteWriteDecoder(limits);
    const bad = encodeV1([{ ...series("a"), labels: [{ name: "job", value: "a" }] }]); // no __name__
    for (let i = 0; i < 3; i++) expect(() => d.decodeV1(bad, tenant, new RowsBatchWriter())).toThrow(/no metric name/);
    expect(d.labelsCache?.entries).toBe(0);
    const good = encodeV1([series("a"), series("b")]);
    for (let i = 0; i < 3; i++) d.decodeV1(good, tenant, new RowsBatchWriter());
    expect(d.labelsCache?.entries).toBe(2);
    expect(d.labelsCache?.hits).toBe(4);
  });

  // Samples as senders encode them and as they may: a cache hit reads the usual form directly.
  const te = new TextEncoder();
  const rec = (n: string, v: string): number[] => {
    const nb = [...te.encode(n)];
    const vb = [...te.encode(v)];
    return [0x0a, 4 + nb.length + vb.length, 0x0a, nb.length, ...nb, 0x12, vb.length, ...vb];
  };
  const varint = (x: bigint): number[] => {
    let u = BigInt.asUintN(64, x);
    const out: number[] = [];
    while (u >= 0x80n) {
      out.push(Number(u & 0x7fn) | 0x80);
      u >>= 7n;
    }
    return [...out, Number(u)];
  };
  const f64 = (v: number): number[] => [...new Uint8Array(new Float64Array([v]).buffer)];
  const sampleOf = (fields: number[]): number[] => [0x12, fields.length, ...fields];
  it.each<[string, number[]]>([
    ["value then timestamp", sampleOf([0x09, ...f64(2.5), 0x10, ...varint(1_700_000_000_123n)])],
    ["timestamp then value", sampleOf([0x10, ...varint(1_700_000_000_123n), 0x09, ...f64(2.5)])],
    ["value 0 left out", sampleOf([0x10, ...varint(1_700_000_000_123n)])],
    ["timestamp 0 left out", sampleOf([0x09, ...f64(-1)])],
    ["negative timestamp (10-byte varint)", sampleOf([0x09, ...f64(7), 0x10, ...varint(-5n)])],
    ["timestamp of 8 varint bytes", sampleOf([0x09, ...f64(7), 0x10, ...varint(2n ** 52n + 3n)])],
    ["timestamp of 7 varint bytes", sampleOf([0x09, ...f64(7), 0x10, ...varint(2n ** 48n + 3n)])],
    ["timestamp of 1 varint byte", sampleOf([0x09, ...f64(NaN), 0x10, 0x05])],
    ["value repeated", sampleOf([0x09, ...f64(1), 0x09, ...f64(3), 0x10, 0x05])],
    ["timestamp repeated", sampleOf([0x09, ...f64(1), 0x10, 0x05, 0x10, 0x06])],
    ["an unknown field after the timestamp", sampleOf([0x09, ...f64(1), 0x10, 0x05, 0x18, 0x01])],
    ["three samples", [...sampleOf([0x09, ...f64(1), 0x10, 0x05]), ...sampleOf([0x09, ...f64(2), 0x10, 0x06]), ...sampleOf([0x09, ...f64(3), 0x10, 0x07])]],
    ["a sample and an exemplar", [...sampleOf([0x09, ...f64(1), 0x10, 0x05]), 0x1a, 0x00]],
    ["no sample", []],
  ])("a cache hit decodes %s as the reference does", (_, samples) => {
    const d = new RemoteWriteDecoder(limits);
    const sorted = [...rec("__name__", "up"), ...rec("job", "a")];
    const unsorted = [...rec("job", "b"), ...rec("__name__", "up")];
    const ts = (labels: number[]): number[] => [0x0a, labels.length + samples.length, ...labels, ...samples];
    const body = Uint8Array.from([...ts(sorted), ...ts(unsorted)]);
    const theirs = new RowsBatchWriter();
    const want = referenceV1(body, tenant, limits, theirs);
    for (let i = 0; i < 3; i++) {
      const mine = new RowsBatchWriter();
      const got = d.decodeV1(body, tenant, mine);
      expect(Buffer.from(mine.finish()).toString("hex")).toBe(Buffer.from(theirs.finish()).toString("hex"));
      expect([got.samples, got.series, got.exemplars]).toEqual([want.samples, want.series, want.exemplars]);
    }
    // The first label set spells its name (a fingerprint), the second does not (a full entry).
    expect([d.labelsCache?.fingerprintHits, d.labelsCache?.hits]).toEqual([2, 4]);
  });

  // A series not yet cached whose records spell a name skips the full parse only when that
  // parse would accept the labels as they are; any other label set gets the full way's answer,
  // the same rows or the same error as without a cache.
  it.each<[string, [string, string][], LabelLimits]>([
    ["sorted, valid", [["__name__", "up"], ["instance", "h:9100"], ["job", "node"]], limits],
    ["__name__ only", [["__name__", "up"]], limits],
    ["unsorted", [["job", "node"], ["__name__", "up"]], limits],
    ["a name that is a prefix of the next, in order", [["__name__", "up"], ["a", "1"], ["ab", "2"]], limits],
    ["a name that is a prefix of the one before", [["__name__", "up"], ["ab", "1"], ["a", "2"]], limits],
    ["duplicate name", [["__name__", "up"], ["job", "a"], ["job", "b"]], limits],
    ["empty value (dropped)", [["__name__", "up"], ["job", ""], ["zone", "z"]], limits],
    ["empty name", [["", "x"], ["__name__", "up"]], limits],
    ["no __name__", [["instance", "h"], ["job", "a"]], limits],
    ["non-ASCII, valid UTF-8", [["__name__", "up"], ["ü", "😀"]], limits],
    ["name at the length limit", [["__name__", "up"], ["x".repeat(12), "v"]], limits],
    ["name over the length limit", [["__name__", "up"], ["x".repeat(13), "v"]], limits],
    ["value over the length limit", [["__name__", "up"], ["job", "y".repeat(21)]], limits],
    ["labels at the count limit", [["__name__", "up"], ["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"]], limits],
    ["labels over the count limit", [["__name__", "up"], ["a", "1"], ["b", "2"], ["c", "3"], ["d", "4"], ["e", "5"], ["f", "6"]], limits],
    ["legacy names asked for, invalid metric name", [["__name__", "a-b"], ["job", "x"]], { ...limits, legacyNames: true }],
    ["legacy names asked for, valid", [["__name__", "up"], ["job", "x"]], { ...limits, legacyNames: true }],
  ])("a new series whose records spell its name (%s) gets the full way's answer", (_name, labels, lim) => {
    // Records written by hand: an empty value is sent as `12 00` (protobuf-es would leave it out).
    const labelBytes = labels.flatMap(([n, v]) => rec(n, v));
    const sample = sampleOf([0x09, ...f64(1.5), 0x10, ...varint(1_700_000_000_000n)]);
    const body = Uint8Array.from([0x0a, labelBytes.length + sample.length, ...labelBytes, ...sample]);
    const answer = (d: RemoteWriteDecoder): string => {
      const w = new RowsBatchWriter();
      try {
        d.decodeV1(body, tenant, w);
        return Buffer.from(w.finish()).toString("hex");
      } catch (err) {
        return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      }
    };
    const want = answer(new RemoteWriteDecoder(lim, { labelsCacheBytes: 0 }));
    const d = new RemoteWriteDecoder(lim);
    expect(answer(d)).toBe(want);
    expect(answer(d)).toBe(want); // and from the cache
  });

  it("takes the full way when labels follow samples", () => {
    // TimeSeries with a sample record between two label records (legal protobuf).
    const lab = (n: string, v: string): number[] => {
      const te = new TextEncoder();
      const nb = [...te.encode(n)];
      const vb = [...te.encode(v)];
      const inner = [0x0a, nb.length, ...nb, 0x12, vb.length, ...vb];
      return [0x0a, inner.length, ...inner];
    };
    const sample = [0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x08]; // value 1, ts 8
    const ts = [...lab("__name__", "up"), ...sample, ...lab("job", "x")];
    const body = Uint8Array.from([0x0a, ts.length, ...ts]);
    const d = new RemoteWriteDecoder(limits);
    for (let i = 0; i < 2; i++) {
      const mine = new RowsBatchWriter();
      d.decodeV1(body, tenant, mine);
      const theirs = new RowsBatchWriter();
      referenceV1(body, tenant, limits, theirs);
      expect(Buffer.from(mine.finish()).equals(Buffer.from(theirs.finish()))).toBe(true);
    }
    expect(d.labelsCache?.entries).toBe(0);
  });
});
