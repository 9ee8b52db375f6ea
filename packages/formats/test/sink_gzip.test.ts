import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { gzipSync, deflateSync } from "node:zlib";
import { BadDataError, PayloadTooLargeError, RowsBatchReader, UnsupportedMediaTypeError, decodeMetricName, encodeMetricName, labelsToRecord, normalizeLabels } from "@strata/core";
import type { Labels } from "@strata/core";
import { CollectingSink, MetricNameEncoder, OpenTsdbParser, PromTextParser, parsePushgatewayPath, parseStreamFlushing, RowsBatchSink, canonicalLabels, decodeBody, parseAll, parseExtraLabels, parseStream } from "@strata/formats";

async function* chunksOf(buf: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts).toString();
}

const rowsOf = (sink: RowsBatchSink): string[] => {
  const r = new RowsBatchReader(sink.writer.view());
  const out: string[] = [];
  while (r.next()) out.push(`${JSON.stringify(labelsToRecord(decodeMetricName(r.metricName).labels))} ${r.timestamp} ${r.value}`);
  return out;
};

describe("MetricNameEncoder", () => {
  it("gives the same bytes as core encodeMetricName", () => {
    const enc = new MetricNameEncoder();
    const labelArb = fc.record({ name: fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }), value: fc.string({ unit: "grapheme", maxLength: 200 }) });
    fc.assert(
      fc.property(fc.array(labelArb, { maxLength: 8 }), fc.nat(), fc.nat(), (labels, a, p) => {
        const tenant = { accountID: a % 2 ** 32, projectID: p % 2 ** 32 };
        expect(enc.encode(tenant, labels)).toEqual(encodeMetricName({ tenant, labels }));
      }),
      { numRuns: 300 },
    );
  });
});

describe("canonicalLabels", () => {
  it("sorts like normalizeLabels and rejects duplicates", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ name: fc.string({ maxLength: 4 }), value: fc.string({ maxLength: 3 }) }), { selector: (l) => l.name, maxLength: 10 }), (labels) => {
        expect(canonicalLabels(labels)).toEqual(normalizeLabels(labels));
      }),
      { numRuns: 300 },
    );
    expect(() => canonicalLabels([{ name: "b", value: "1" }, { name: "a", value: "1" }, { name: "b", value: "2" }])).toThrow('duplicate label name "b"');
  });
});

describe("RowsBatchSink", () => {
  it("normalizes, transforms and validates", () => {
    const drop = (l: Labels) => (l.some((x) => x.name === "drop") ? null : l);
    const sink = new RowsBatchSink({ tenant: { accountID: 3, projectID: 0 }, transform: drop, limits: { maxLabels: 3 } });
    parseAll(new PromTextParser(sink, { defaultTimestampMs: 5 }), 'm{b="2",a="1"} 1\nm{b="2",a="1"} 2 7\nm{drop="x"} 3\n');
    expect(rowsOf(sink)).toEqual(['{"__name__":"m","a":"1","b":"2"} 5 1', '{"__name__":"m","a":"1","b":"2"} 7 2']);
    expect(sink.rowsWritten).toBe(2);
    expect(sink.rowsDropped).toBe(1);
  });
  it("a transform that removes __name__ drops the series", () => {
    const sink = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 }, transform: (l) => l.filter((x) => x.name !== "__name__") });
    parseAll(new PromTextParser(sink, { defaultTimestampMs: 5 }), "m 1\n");
    expect(sink.rowsWritten).toBe(0);
    expect(sink.rowsDropped).toBe(1);
  });
  it("label limit errors name the format and line", () => {
    const sink = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 }, limits: { maxLabels: 2 } });
    expect(() => parseAll(new PromTextParser(sink), 'ok 1\nm{a="1",b="2"} 1\n')).toThrow(/^prometheus: line 2: series m\{a="1", b="2"\} has 3 labels, more than the limit of 2$/);
  });
});

describe("extra_label", () => {
  it.each([
    [["a=b", "c=d=e", "e="], [{ name: "a", value: "b" }, { name: "c", value: "d=e" }, { name: "e", value: "" }]],
  ])("parses %j", (params, want) => {
    expect(parseExtraLabels(params)).toEqual(want);
  });
  it.each(["ab", "=b"])("rejects %j", (p) => {
    expect(() => parseExtraLabels([p])).toThrow(BadDataError);
  });
});

describe("decodeBody", () => {
  const body = Buffer.from("m 1\n".repeat(1000));
  it.each(["gzip", "x-gzip"])("decodes %s in small chunks and feeds a parser", async (enc) => {
    const sink = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 } });
    const n = await parseStream(new PromTextParser(sink, { defaultTimestampMs: 1 }), decodeBody(chunksOf(gzipSync(body), 13), enc, { maxBytes: 1 << 20 }));
    expect(n).toBe(1000);
  });
  it("decodes deflate and identity", async () => {
    expect(await readAll(decodeBody(chunksOf(deflateSync(body), 100), "deflate", { maxBytes: 1 << 20 }))).toBe(body.toString());
    expect(await readAll(decodeBody(chunksOf(body, 100), undefined, { maxBytes: 1 << 20 }))).toBe(body.toString());
  });
  it("caps the decompressed size (zip bomb)", async () => {
    const bomb = gzipSync(Buffer.alloc(10 << 20));
    expect(bomb.length).toBeLessThan(20_000);
    await expect(readAll(decodeBody(chunksOf(bomb, 4096), "gzip", { maxBytes: 1 << 20 }))).rejects.toThrow(PayloadTooLargeError);
  });
  it("caps identity bodies too", async () => {
    await expect(readAll(decodeBody(chunksOf(body, 100), "identity", { maxBytes: 100 }))).rejects.toThrow(PayloadTooLargeError);
  });
  it("rejects corrupt gzip with BadDataError", async () => {
    const bad = gzipSync(body);
    bad[20] = bad[20]! ^ 0xff;
    bad[30] = bad[30]! ^ 0xff;
    await expect(readAll(decodeBody(chunksOf(bad, 16), "gzip", { maxBytes: 1 << 20 }))).rejects.toThrow(BadDataError);
    await expect(readAll(decodeBody(chunksOf(Buffer.from("not gzip at all"), 4), "gzip", { maxBytes: 1 << 20 }))).rejects.toThrow(/^gzip: invalid compressed body/);
  });
  it("rejects truncated gzip", async () => {
    const t = gzipSync(body).subarray(0, 20);
    await expect(readAll(decodeBody(chunksOf(t, 7), "gzip", { maxBytes: 1 << 20 }))).rejects.toThrow(BadDataError);
  });
  it("rejects unknown encodings", () => {
    expect(() => decodeBody(chunksOf(body, 1), "br", { maxBytes: 1 })).toThrow(UnsupportedMediaTypeError);
  });
  it("propagates source errors", async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield gzipSync(body).subarray(0, 10);
      throw new Error("socket reset");
    }
    await expect(readAll(decodeBody(failing(), "gzip", { maxBytes: 1 << 20 }))).rejects.toThrow("socket reset");
  });
});

describe("parsePushgatewayPath", () => {
  it.each([
    ["/metrics/job/a", [{ name: "job", value: "a" }]],
    ["/metrics/job/a/instance/h:1/", [{ name: "job", value: "a" }, { name: "instance", value: "h:1" }]],
    ["/metrics/job@base64/L3Zhci90bXA/path@base64/=", [{ name: "job", value: "/var/tmp" }, { name: "path", value: "" }]],
    ["/metrics/job/a%20b", [{ name: "job", value: "a b" }]],
  ] as [string, unknown][])("%s", (path, want) => {
    expect(parsePushgatewayPath(path)).toEqual(want);
  });
  it.each(["/metrics", "/metrics/instance/x", "/metrics/job/a/instance", "/foo/job/a", "/metrics/job/%zz"])("rejects %s", (path) => {
    expect(() => parsePushgatewayPath(path)).toThrow(BadDataError);
  });
});

describe("bounded memory", () => {
  it("a line that never ends fails as soon as it passes maxLineBytes", () => {
    const p = new PromTextParser(new CollectingSink(), { maxLineBytes: 4 << 20 });
    const chunk = new Uint8Array(1 << 20).fill(0x61);
    let written = 0;
    expect(() => {
      for (let i = 0; i < 100; i++) {
        p.write(chunk);
        written++;
      }
    }).toThrow("prometheus: line 1: line longer than 4194304 bytes");
    expect(written).toBe(4);
  });
  it("OpenTSDB bodies fail as soon as they pass maxBodyBytes", () => {
    const p = new OpenTsdbParser(new CollectingSink(), { maxBodyBytes: 1 << 20 });
    expect(() => {
      for (let i = 0; i < 100; i++) p.write(new Uint8Array(300_000));
    }).toThrow("opentsdb: byte 1048576: body larger than 1048576 bytes");
  });
});

describe("parseStreamFlushing", () => {
  it("flushes every ~flushBytes and at the end; all rows arrive once", async () => {
    const sink = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 } });
    const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => `m{i="${i}"} ${i} 1\n`).join(""));
    const flushed: number[] = [];
    let total = 0;
    const n = await parseStreamFlushing(new PromTextParser(sink), chunksOf(body, 4096), sink.writer, 16 * 1024, async (batch, rows) => {
      await new Promise((r) => setTimeout(r, 1));
      const r = new RowsBatchReader(batch);
      while (r.next()) total += r.value;
      flushed.push(rows);
    });
    expect(n).toBe(5000);
    expect(flushed.length).toBeGreaterThan(5);
    expect(flushed.reduce((a, b) => a + b, 0)).toBe(5000);
    expect(total).toBe((4999 * 5000) / 2);
  });
});

describe("RowsBatchSink sample window", () => {
  it.each([
    ["no window", undefined, [1000, 2000, 3000], 0, 0],
    ["too old and too new left out", { minT: 1500, maxT: 2500 }, [2000], 1, 1],
    ["bounds are inclusive", { minT: 1000, maxT: 3000 }, [1000, 2000, 3000], 0, 0],
  ])("%s", (_name, window, want, tooOld, tooNew) => {
    const sink = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 }, ...(window ? { window } : {}) });
    sink.series([{ name: "__name__", value: "m" }]);
    for (const t of [1000, 2000, 3000]) sink.sample(t, 1);
    const r = new RowsBatchReader(sink.writer.finish());
    const got: number[] = [];
    while (r.next()) got.push(r.timestamp);
    expect([got, sink.rowsWritten, sink.rowsTooOld, sink.rowsTooNew]).toEqual([want, want.length, tooOld, tooNew]);
  });
});
