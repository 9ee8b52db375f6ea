import { describe, it } from "vitest";
import fc from "fast-check";
import type { RowSink, StreamParser } from "@strata/formats";
import { CsvParser, GraphiteParser, InfluxParser, JsonLinesParser, OpenTsdbParser, PromTextParser, RowsBatchSink, parseCsvFormat } from "@strata/formats";
import { onlyBadData } from "./helpers.js";

type Make = (sink: RowSink) => StreamParser;

const parsers: [string, Make, string][] = [
  ["prometheus", (s) => new PromTextParser(s, { maxLineBytes: 4096 }),
    '# HELP m h\\n\n# TYPE m counter\nm{a="b\\"c",d="\\\\"} 1.5e3 1700000000000\n{"x.y","z"="1"} NaN\nm_bucket{le="+Inf"} 2 # {t="1"} 1 2\n'],
  ["openmetrics", (s) => new PromTextParser(s, { openMetrics: true, maxLineBytes: 4096 }),
    "# TYPE c counter\nc_total 5 1700000000.5\nc_created 1700000000\n# EOF\n"],
  ["jsonline", (s) => new JsonLinesParser(s, { maxLineBytes: 4096 }),
    '{"metric":{"__name__":"m","a":"b"},"values":[1,null,"Inf",2.5e-3],"timestamps":[1,2,3,4]}\n'],
  ["csv", (s) => new CsvParser(s, { format: parseCsvFormat("1:label:a,2:metric:m,3:time:custom:2006-01-02T15:04:05.999Z07:00"), maxLineBytes: 4096 }),
    '"x,y",1.5,2023-11-14T22:13:20.5+01:00\nz,2,2023-11-14T22:13:20Z\n'],
  ["influx", (s) => new InfluxParser(s, { db: "d", maxLineBytes: 4096 }),
    'cpu,host=a\\ b,r=eu usage=1.5,idle=2i,s="x\\"y",ok=t 1700000000000000000\n'],
  ["graphite", (s) => new GraphiteParser(s, { maxLineBytes: 4096 }), "a.b.c;t=v 1.5 1700000000\nx 2 -1\n"],
  ["opentsdb", (s) => new OpenTsdbParser(s, { maxBodyBytes: 1 << 16 }),
    '[{"metric":"a.b","timestamp":1700000000,"value":1.5,"tags":{"h":"x"}},{"metric":"c","value":"2"}]'],
];

const SPECIAL = [0x0a, 0x0d, 0x20, 0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3d, 0x23, 0x3b, 0x3a, 0x5b, 0x5d, 0x00, 0xff, 0xc3, 0x80, 0x2e, 0x2d, 0x65];

/** Random edits of a valid input: replace, insert, delete, duplicate a slice. */
const mutated = (seed: string) =>
  fc.array(
    fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 }), fc.oneof(fc.constantFrom(...SPECIAL), fc.integer({ min: 0, max: 255 })), fc.nat({ max: 40 })),
    { minLength: 1, maxLength: 8 },
  ).map((edits) => {
    const b = Array.from(new TextEncoder().encode(seed));
    for (const [pos, kind, byte, len] of edits) {
      const p = b.length === 0 ? 0 : pos % (b.length + 1);
      if (kind === 0 && b.length > 0) b[p % b.length] = byte;
      else if (kind === 1) b.splice(p, 0, byte);
      else if (kind === 2) b.splice(p, 1 + (len % 5));
      else b.splice(p, 0, ...b.slice(p, p + len));
    }
    return new Uint8Array(b);
  });

const sinks: [string, () => RowSink][] = [
  ["noop", () => ({ series: () => undefined, sample: () => undefined })],
  ["rows batch", () => new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 }, limits: { maxLabels: 30 } })],
];

describe("fuzz: only BadDataError, never a crash or hang", () => {
  describe.each(parsers)("%s", (_name, make, seed) => {
    it.each(sinks)("random bytes → %s sink", (_s, sink) => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => onlyBadData(() => make(sink()), bytes)), { numRuns: 300 });
    });
    it.each(sinks)("random text → %s sink", (_s, sink) => {
      fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), (text) => onlyBadData(() => make(sink()), new TextEncoder().encode(text))), { numRuns: 200 });
    });
    it.each(sinks)("mutated valid input → %s sink", (_s, sink) => {
      fc.assert(fc.property(mutated(seed), (bytes) => onlyBadData(() => make(sink()), bytes)), { numRuns: 500 });
    });
  });
});

