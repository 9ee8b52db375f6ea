import { create, toBinary } from "@bufbuild/protobuf";
import { BadDataError, decodeMetricName, RowsBatchReader, RowsBatchWriter, seriesHash, writeRecordsName, type RowsSink } from "@strata/core";
import { prompb, prompbRemote, RemoteWriteDecoder, writev2 } from "@strata/protocol";
import { describe, expect, it } from "vitest";

const tenant = { accountID: 1, projectID: 2 };
const dec = new RemoteWriteDecoder({ maxLabels: 4, maxLabelNameLen: 10, maxLabelValueLen: 10 });

function v1(labels: Record<string, string>[], samples = 1): Uint8Array {
  return toBinary(
    prompbRemote.WriteRequestSchema,
    create(prompbRemote.WriteRequestSchema, {
      timeseries: labels.map((l) => ({
        labels: Object.entries(l).map(([name, value]) => ({ name, value })),
        samples: Array.from({ length: samples }, (_, i) => ({ value: i + 0.5, timestamp: BigInt(1000 + i) })),
      })),
      metadata: [{ type: prompb.MetricMetadata_MetricType.COUNTER, metricFamilyName: "a_total", help: "help a", unit: "" }],
    }),
  );
}

describe("remote write 1.0 decoder", () => {
  it.each([
    [[{ __name__: "a", x: "1", y: "2", z: "3", w: "4" }], /5 labels, more than the limit of -maxLabelsPerTimeseries=4/],
    [[{ __name__: "a", abcdefghijk: "1" }], /label name "abcdefghijk" is 11 bytes, longer than -maxLabelNameLen=10/],
    [[{ __name__: "a", x: "01234567890" }], /value of label "x" is 11 bytes, longer than -maxLabelValueLen=10/],
    [[{ x: "1" }], /has no metric name \(__name__\)/],
    [[{ __name__: "a", "": "1" }], /empty name/],
  ])("rejects %j: %s", (labels, want) => {
    const w = new RowsBatchWriter();
    expect(() => dec.decodeV1(v1(labels), tenant, w)).toThrow(want);
  });

  it("rejects duplicate label names", () => {
    const body = toBinary(
      prompbRemote.WriteRequestSchema,
      create(prompbRemote.WriteRequestSchema, {
        timeseries: [{ labels: [{ name: "__name__", value: "a" }, { name: "j", value: "1" }, { name: "j", value: "2" }], samples: [{ value: 1 }] }],
      }),
    );
    expect(() => dec.decodeV1(body, tenant, new RowsBatchWriter())).toThrow(/duplicate label name "j"/);
  });

  it("writes canonical names, sorted labels, every sample, and metadata", () => {
    const w = new RowsBatchWriter();
    const res = dec.decodeV1(v1([{ z: "1", __name__: "a_total", b: "" }], 3), tenant, w);
    expect(res).toMatchObject({ series: 1, samples: 3, metadata: [{ family: "a_total", type: 1, help: "help a", unit: "" }] });
    const r = new RowsBatchReader(w.finish());
    const got: [string, number, number][] = [];
    while (r.next()) {
      const mn = decodeMetricName(r.metricName);
      expect(mn.tenant).toEqual(tenant);
      got.push([mn.labels.map((l) => `${l.name}=${l.value}`).join(","), r.timestamp, r.value]);
    }
    expect(got).toEqual([
      ["__name__=a_total,z=1", 1000, 0.5],
      ["__name__=a_total,z=1", 1001, 1.5],
      ["__name__=a_total,z=1", 1002, 2.5],
    ]);
  });
});

/** A RowsSink that keeps each row's name, the hash it was given, and the hash of the name. */
class HashCheckSink implements RowsSink {
  readonly rows: { name: string; given: [number, number]; want: [number, number] }[] = [];
  addHashedName(src: Uint8Array, off: number, len: number, hashLo: number, hashHi: number): void {
    const name = src.slice(off, off + len);
    const h = seriesHash(name, { lo: 0, hi: 0 });
    this.rows.push({ name: Buffer.from(name).toString("hex"), given: [hashLo, hashHi], want: [h.lo, h.hi] });
  }
  addRecordsName(src: DataView, start: number, end: number, len: number, account: number, project: number, hashLo: number, hashHi: number): void {
    const name = new Uint8Array(len);
    expect(writeRecordsName(src, start, end, account, project, new DataView(name.buffer), 0)).toBe(len);
    this.addHashedName(name, 0, len, hashLo, hashHi);
  }
  addSameName(): void {
    const last = this.rows.at(-1)!;
    this.rows.push({ ...last });
  }
}

describe("series hash passed to a RowsSink", () => {
  it("is the seriesHash of the name, parsed (1.0 miss), cached (1.0 hit) and 2.0", () => {
    const d = new RemoteWriteDecoder();
    const body = v1([{ __name__: "a", x: "1" }, { __name__: "b" }, { __name__: "a", x: "2" }], 3);
    for (const pass of ["miss", "hit"]) {
      const sink = new HashCheckSink();
      d.decodeV1(body, tenant, sink);
      expect(sink.rows, pass).toHaveLength(9);
      for (const r of sink.rows) expect(r.given, pass).toEqual(r.want);
    }
    expect(d.labelsCache!.hits).toBe(3);
    const sink = new HashCheckSink();
    d.decodeV2(
      toBinary(
        writev2.RequestSchema,
        create(writev2.RequestSchema, { symbols: ["", "__name__", "a"], timeseries: [{ labelsRefs: [1, 2], samples: [{ value: 1, timestamp: 1n }, { value: 2, timestamp: 2n }] }] }),
      ),
      tenant,
      sink,
    );
    expect(sink.rows).toHaveLength(2);
    for (const r of sink.rows) expect(r.given).toEqual(r.want);
  });
});

describe("remote write 2.0 decoder", () => {
  const body = (symbols: string[], refs: number[], meta?: { type: number; helpRef: number; unitRef: number }): Uint8Array =>
    toBinary(
      writev2.RequestSchema,
      create(writev2.RequestSchema, {
        symbols,
        timeseries: [{ labelsRefs: refs, samples: [{ value: 2, timestamp: 5n }], ...(meta ? { metadata: meta } : {}) }],
      }),
    );

  it.each([
    [["", "__name__", "a"], [1, 2, 1], /odd number of references/],
    [["", "__name__", "a"], [1, 9], /labels_refs 9 is out of range of 3 symbols/],
    [["", "__name__", "a", "j"], [1, 2, 3, 2, 3, 2], /duplicate label name "j"/],
  ])("rejects symbols %j refs %j", (symbols, refs, want) => {
    expect(() => dec.decodeV2(body(symbols, refs), tenant, new RowsBatchWriter())).toThrow(want);
  });

  it("resolves symbols and strips histogram suffixes from metadata families", () => {
    const w = new RowsBatchWriter();
    const res = new RemoteWriteDecoder().decodeV2(
      body(["", "__name__", "rpc_seconds_bucket", "le", "+Inf", "latency"], [1, 2, 3, 4], { type: 3, helpRef: 5, unitRef: 0 }),
      tenant,
      w,
    );
    expect(res).toMatchObject({ series: 1, samples: 1, metadata: [{ family: "rpc_seconds", type: 3, help: "latency", unit: "" }] });
    const r = new RowsBatchReader(w.finish());
    expect(r.next()).toBe(true);
    expect(decodeMetricName(r.metricName).labels).toEqual([
      { name: "__name__", value: "rpc_seconds_bucket" },
      { name: "le", value: "+Inf" },
    ]);
    expect([r.timestamp, r.value]).toEqual([5, 2]);
  });

  it("rejects a 1.0 body sent as 2.0 (fields 1..3 are reserved, so nothing resolves)", () => {
    const b = v1([{ __name__: "a" }]);
    const res = dec.decodeV2(b, tenant, new RowsBatchWriter());
    expect(res.series).toBe(0);
  });

  it("throws only BadDataError on a truncated body", () => {
    const b = body(["", "__name__", "a"], [1, 2]);
    for (let i = 1; i < b.length; i++) {
      try {
        dec.decodeV2(b.subarray(0, i), tenant, new RowsBatchWriter());
      } catch (e) {
        expect(e).toBeInstanceOf(BadDataError);
      }
    }
  });
});

describe("sample window (-retentionPeriod, -futureRetention)", () => {
  const v2 = (): Uint8Array =>
    toBinary(
      writev2.RequestSchema,
      create(writev2.RequestSchema, {
        symbols: ["", "__name__", "w"],
        timeseries: [{ labelsRefs: [1, 2], samples: [1000n, 1001n, 1002n].map((timestamp, i) => ({ value: i + 0.5, timestamp })) }],
      }),
    );
  const rows = (w: RowsBatchWriter): number[] => {
    const r = new RowsBatchReader(w.finish());
    const out: number[] = [];
    while (r.next()) out.push(r.timestamp);
    return out;
  };
  // Samples at 1000, 1001, 1002 of one series; each case is decoded twice (the second time a
  // 1.0 series comes from the raw-labels cache).
  it.each([
    ["all inside", -Infinity, Infinity, [1000, 1001, 1002], 0, 0],
    ["the first too old", 1001, Infinity, [1001, 1002], 1, 0],
    ["the last two too new", -Infinity, 1000, [1000], 0, 2],
    ["only the middle one", 1001, 1001, [1001], 1, 1],
    ["none", 1003, Infinity, [], 3, 0],
  ])("%s", (_name, minT, maxT, want, tooOld, tooNew) => {
    const d = new RemoteWriteDecoder();
    for (const version of ["1.0", "1.0 cached", "2.0"]) {
      const w = new RowsBatchWriter();
      const res = version === "2.0" ? d.decodeV2(v2(), tenant, w, { minT, maxT }) : d.decodeV1(v1([{ __name__: "w" }], 3), tenant, w, { minT, maxT });
      expect({ version, rows: rows(w), samples: res.samples, tooOld: res.tooOld, tooNew: res.tooNew }).toEqual({ version, rows: want, samples: want.length, tooOld, tooNew });
    }
  });
});
