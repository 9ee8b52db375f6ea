import { describe, expect, it } from "vitest";
import { BadDataError } from "@strata/core";
import type { ImportFormat } from "@strata/formats";
import { CollectingSink, parseTimestampParam, parserForRequest, metricsTypeOf } from "@strata/formats";
import type { MetricMetadata } from "@strata/formats";
import { labelsToRecord } from "@strata/core";

const NOW = 1_700_000_000_000;

function run(format: ImportFormat, query: string, body: string, extra: { contentType?: string; pushgatewayPath?: string } = {}) {
  const sink = new CollectingSink();
  const p = parserForRequest({ format, query: new URLSearchParams(query), nowMs: NOW, ...extra }, sink);
  p.write(new TextEncoder().encode(body));
  p.end();
  return sink.series_.map((s) => [labelsToRecord(s.labels), s.timestamps, s.values]);
}

describe("parserForRequest", () => {
  it.each([
    ["jsonline", "extra_label=env=prod", '{"metric":{"__name__":"m"},"values":[1],"timestamps":[5]}', {}, [[{ __name__: "m", env: "prod" }, [5], [1]]]],
    ["prometheus", "timestamp=1700000001", "m 1\n", {}, [[{ __name__: "m" }, [NOW + 1000], [1]]]],
    ["prometheus", "", "m 1 2.5\n", { contentType: "application/openmetrics-text; version=1.0.0" }, [[{ __name__: "m" }, [2500], [1]]]],
    ["prometheus", "extra_label=a=b", "m 1\n", { pushgatewayPath: "/metrics/job/j/instance/i" }, [[{ __name__: "m", job: "j", instance: "i", a: "b" }, [NOW], [1]]]],
    ["csv", "format=1:metric:m,2:label:a", "1,x\n", {}, [[{ __name__: "m", a: "x" }, [NOW], [1]]]],
    ["influx", "db=tg&precision=s", "cpu f=1 1700000000\n", {}, [[{ __name__: "cpu_f", db: "tg" }, [NOW], [1]]]],
    ["influx", "bucket=b", "cpu f=1\n", {}, [[{ __name__: "cpu_f", db: "b" }, [NOW], [1]]]],
    ["opentsdb", "", '{"metric":"a","value":1}', {}, [[{ __name__: "a" }, [NOW], [1]]]],
    ["graphite", "", "a.b 1\n", {}, [[{ __name__: "a.b" }, [NOW], [1]]]],
  ] as [ImportFormat, string, string, { contentType?: string; pushgatewayPath?: string }, unknown][])("%s ?%s", (format, query, body, extra, want) => {
    expect(run(format, query, body, extra)).toEqual(want);
  });

  it.each([
    ["csv", "", "csv: missing format parameter"],
    ["influx", "precision=x", "influx: parameter precision: unsupported precision"],
    ["jsonline", "extra_label=bad", "extra_label"],
    ["prometheus", "timestamp=abc", "invalid timestamp parameter"],
  ] as [ImportFormat, string, string][])("%s ?%s is rejected before the body", (format, query, want) => {
    expect(() => parserForRequest({ format, query: new URLSearchParams(query), nowMs: NOW }, new CollectingSink())).toThrow(BadDataError);
    expect(() => parserForRequest({ format, query: new URLSearchParams(query), nowMs: NOW }, new CollectingSink())).toThrow(want);
  });

  it("reports metadata at the end", () => {
    let meta: readonly MetricMetadata[] = [];
    const p = parserForRequest({ format: "prometheus", query: new URLSearchParams(), nowMs: NOW, onMetadata: (m) => (meta = m) }, new CollectingSink());
    p.write(new TextEncoder().encode("# TYPE m gauge\nm 1\n"));
    p.end();
    expect(meta).toEqual([{ metric: "m", type: "gauge", help: "", unit: "" }]);
    expect(p.rowsRead).toBe(1);
  });

  it.each([
    ["1700000000", 1700000000000], ["1700000000123", 1700000000123], ["1700000000123456", 1700000000123], ["1700000000123456789", 1700000000123],
    ["1700000000.5", 1700000000500], ["2023-11-14T22:13:20Z", 1700000000000],
  ] as [string, number][])("timestamp param %s", (s, want) => {
    expect(parseTimestampParam(s)).toBe(want);
  });

  it("metrics type", () => {
    expect(metricsTypeOf("prometheus", "application/openmetrics-text")).toBe("openmetrics");
    expect(metricsTypeOf("influx")).toBe("influx");
  });
});
