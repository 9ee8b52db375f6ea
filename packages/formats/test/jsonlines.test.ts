import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { RowsBatchReader, decodeMetricName, labelsToRecord } from "@strata/core";
import type { RowSink } from "@strata/formats";
import { CollectingSink, JsonLinesParser, RowsBatchSink, STALE_NAN, float64Bits, formatJsonLine, jsonSampleValue, parseAll } from "@strata/formats";
import { collect, errorOf } from "./helpers.js";

const jl = (sink: RowSink) => new JsonLinesParser(sink);

describe("JSON lines: valid input", () => {
  it.each([
    ["one series", '{"metric":{"__name__":"up","job":"a"},"values":[1,2.5],"timestamps":[1000,2000]}\n',
      [[{ __name__: "up", job: "a" }, [1000, 2000], [1, 2.5]]]],
    ["two lines, blank lines, CRLF", '\n{"metric":{"__name__":"a"},"values":[1],"timestamps":[1]}\r\n\n{"metric":{"__name__":"b"},"values":[2],"timestamps":[2]}',
      [[{ __name__: "a" }, [1], [1]], [{ __name__: "b" }, [2], [2]]]],
    ["string specials", '{"metric":{"__name__":"m"},"values":["Inf","-Infinity","+Inf","3.5"],"timestamps":[1,2,3,4]}',
      [[{ __name__: "m" }, [1, 2, 3, 4], [Infinity, -Infinity, Infinity, 3.5]]]],
    ["VictoriaMetrics bare tokens", '{"metric":{"__name__":"m"},"values":[+Inf, -Inf,1],"timestamps":[1,2,3]}',
      [[{ __name__: "m" }, [1, 2, 3], [Infinity, -Infinity, 1]]]],
    ["empty arrays add nothing", '{"metric":{"__name__":"m"},"values":[],"timestamps":[]}', []],
    ["empty label value is absent", '{"metric":{"__name__":"m","a":""},"values":[1],"timestamps":[1]}', [[{ __name__: "m" }, [1], [1]]]],
    ["negative timestamps", '{"metric":{"__name__":"m"},"values":[1],"timestamps":[-1]}', [[{ __name__: "m" }, [-1], [1]]]],
  ] as [string, string, unknown][])("%s", (_n, input, want) => {
    expect(collect(jl, input)).toEqual(want);
  });

  it("null is the stale marker; NaN strings are NaN", () => {
    const sink = new CollectingSink();
    parseAll(new JsonLinesParser(sink), '{"metric":{"__name__":"m"},"values":[null,"NaN",NaN],"timestamps":[1,2,3]}');
    expect(sink.series_[0]!.valueBits).toEqual([0x7ff0000000000002n, 0x7ff8000000000000n, 0x7ff8000000000000n]);
  });
});

describe("JSON lines: invalid input", () => {
  it.each([
    ["not JSON", "{x\n", "jsonline: line 1: invalid JSON: "],
    ["array", "[1]\n", "jsonline: line 1: want a JSON object"],
    ["no metric", '{"values":[1],"timestamps":[1]}', 'jsonline: line 1: missing or invalid "metric" object'],
    ["no values", '{"metric":{"__name__":"m"},"timestamps":[1]}', 'jsonline: line 1: missing or invalid "values" array'],
    ["no timestamps", '{"metric":{"__name__":"m"},"values":[1]}', 'jsonline: line 1: missing or invalid "timestamps" array'],
    ["length mismatch", '{"metric":{"__name__":"m"},"values":[1,2],"timestamps":[1]}', 'jsonline: line 1: "values" has 2 items but "timestamps" has 1'],
    ["label not a string", '{"metric":{"__name__":"m","a":1},"values":[1],"timestamps":[1]}', 'jsonline: line 1: value of label "a" is not a string'],
    ["no name", '{"metric":{"a":"b"},"values":[1],"timestamps":[1]}', 'jsonline: line 1: missing "__name__" in "metric"'],
    ["float timestamp", '{"metric":{"__name__":"m"},"values":[1],"timestamps":[1.5]}', "jsonline: line 1: timestamps[0]: want an integer (milliseconds), got \"1.5\""],
    ["bad value", '\n{"metric":{"__name__":"m"},"values":[true],"timestamps":[1]}', 'jsonline: line 2: values[0]: not a number: "true"'],
    ["bad value string", '{"metric":{"__name__":"m"},"values":["x"],"timestamps":[1]}', 'jsonline: line 1: values[0]: not a number: "\\"x\\""'],
  ])("%s", (_n, input, want) => {
    expect(errorOf(jl, input).startsWith(want)).toBe(true);
  });
});

describe("JSON lines writer", () => {
  it.each([
    [1, "1"], [-0, "-0"], [0.1, "0.1"], [1e21, "1e+21"], [1.5e-7, "1.5e-7"], [Infinity, '"Infinity"'], [-Infinity, '"-Infinity"'],
    [NaN, '"NaN"'], [STALE_NAN, "null"], [Number.MAX_VALUE, "1.7976931348623157e+308"], [5e-324, "5e-324"],
  ] as [number, string][])("value %s → %s", (v, want) => {
    expect(jsonSampleValue(v)).toBe(want);
  });

  it("writes __name__ first", () => {
    const values = new Float64Array(2);
    values[0] = 0.5;
    values[1] = STALE_NAN; // a Float64Array keeps the signaling NaN; `[0.5, STALE_NAN]` would quiet it
    const line = formatJsonLine([{ name: "a", value: "1" }, { name: "__name__", value: "m" }], [1, 2], values);
    expect(line).toBe('{"metric":{"__name__":"m","a":"1"},"values":[0.5,null],"timestamps":[1,2]}\n');
  });

  it("export → import round-trips bit-exactly through rows batch v1", () => {
    const labelsArb = fc.uniqueArray(
      fc.record({ name: fc.stringMatching(/^[a-z_][a-z0-9_]{0,6}$/), value: fc.string({ minLength: 1, maxLength: 10 }) }),
      { selector: (l) => l.name, maxLength: 4 },
    );
    // Values as raw bits so signaling NaNs (the stale marker) are generated exactly.
    const bitsArb = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.constantFrom(0x7ff0000000000002n, 0x7ff8000000000000n, 0x7ff0000000000000n, 0xfff0000000000000n, 0x8000000000000000n, 0n, 1n),
    );
    const seriesArb = fc.record({
      labels: labelsArb,
      name: fc.string({ minLength: 1, maxLength: 10 }),
      samples: fc.array(fc.tuple(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), bitsArb), { maxLength: 20 }),
    });
    // What import gives back: exact bits, except that NaNs other than the stale marker are
    // the canonical NaN (their payload is not written).
    const expected = (bits: bigint): bigint => {
      const isNaN = (bits & 0x7ff0000000000000n) === 0x7ff0000000000000n && (bits & 0xfffffffffffffn) !== 0n;
      if (!isNaN) return bits;
      return bits === 0x7ff0000000000002n || bits === 0x7ff8000000000002n ? 0x7ff0000000000002n : 0x7ff8000000000000n;
    };
    fc.assert(
      fc.property(fc.array(seriesArb, { maxLength: 5 }), (series) => {
        let text = "";
        const want: string[] = [];
        for (const s of series) {
          const labels = [{ name: "__name__", value: s.name }, ...s.labels.filter((l) => l.name !== "__name__")];
          const values = new Float64Array(new BigUint64Array(s.samples.map((x) => x[1])).buffer);
          text += formatJsonLine(labels, s.samples.map((x) => x[0]), values);
          const rec = JSON.stringify(labelsToRecord([...labels].sort((a, b) => (a.name < b.name ? -1 : 1))));
          for (const [t, b] of s.samples) want.push(`${rec} ${t} ${expected(b)}`);
        }
        const sink = new RowsBatchSink({ tenant: { accountID: 1, projectID: 2 } });
        parseAll(new JsonLinesParser(sink), text);
        const r = new RowsBatchReader(sink.writer.view());
        const got: string[] = [];
        while (r.next()) {
          const mn = decodeMetricName(r.metricName);
          expect(mn.tenant).toEqual({ accountID: 1, projectID: 2 });
          got.push(`${JSON.stringify(labelsToRecord(mn.labels))} ${r.timestamp} ${float64Bits(r.value)}`);
        }
        expect(got).toEqual(want);
      }),
      { numRuns: 150 },
    );
  });
});
