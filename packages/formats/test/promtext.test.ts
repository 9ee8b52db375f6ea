import { describe, expect, it } from "vitest";
import type { Label } from "@strata/core";
import { labelsToRecord } from "@strata/core";
import type { PromTextOptions, RowSink } from "@strata/formats";
import { PromTextParser, STALE_NAN, metricTypeNumber, float64Bits, formatPromFloat, formatTextMetadata, formatTextSample, parseAll, CollectingSink } from "@strata/formats";
import { collect, errorOf } from "./helpers.js";

const T = 1_700_000_000_000;
const prom = (opts: PromTextOptions = {}) => (sink: RowSink) => new PromTextParser(sink, { defaultTimestampMs: T, ...opts });
const om = prom({ openMetrics: true });

describe("Prometheus text: valid input", () => {
  it.each([
    ["plain", "up 1\n", [[{ __name__: "up" }, [T], [1]]]],
    ["labels and timestamp", 'http_requests_total{method="post",code="200"} 1027 1395066363000\n',
      [[{ __name__: "http_requests_total", method: "post", code: "200" }, [1395066363000], [1027]]]],
    ["escapes", 'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9\n',
      [[{ __name__: "msdos_file_access_time_seconds", path: "C:\\DIR\\FILE.TXT", error: 'Cannot find file:\n"FILE.TXT"' }, [T], [1458255915]]]],
    ["unknown escape kept", 'm{a="x\\ty"} 1\n', [[{ __name__: "m", a: "x\\ty" }, [T], [1]]]],
    ["trailing comma, spaces, empty value drops label", 'm{ a = "1" , b="" ,} 2\n', [[{ __name__: "m", a: "1" }, [T], [2]]]],
    ["comments, HELP, TYPE, blank lines", "# HELP x Some help\n# TYPE x counter\n\n# a comment\nx 3\n", [[{ __name__: "x" }, [T], [3]]]],
    ["no trailing newline, CRLF", "a 1\r\nb 2", [[{ __name__: "a" }, [T], [1]], [{ __name__: "b" }, [T], [2]]]],
    ["negative timestamp", "m 1 -5\n", [[{ __name__: "m" }, [-5], [1]]]],
    ["colons in names", "a:b:c 1\n", [[{ __name__: "a:b:c" }, [T], [1]]]],
    ["UTF-8 quoted name", '{"my.metric", "a.b"="c"} 4\n', [[{ __name__: "my.metric", "a.b": "c" }, [T], [4]]]],
    ["UTF-8 quoted name only", '{"my.metric"} 4\n', [[{ __name__: "my.metric" }, [T], [4]]]],
    ["exemplar ignored", 'foo_bucket{le="0.1"} 8 # {trace_id="abc"} 0.05 1700000000\n', [[{ __name__: "foo_bucket", le: "0.1" }, [T], [8]]]],
    ["tabs between fields", "m\t5\t10\n", [[{ __name__: "m" }, [10], [5]]]],
    ["leading spaces", "   m 5\n", [[{ __name__: "m" }, [T], [5]]]],
    ["exponent", "m 1e-3\n", [[{ __name__: "m" }, [T], [0.001]]]],
  ] as [string, string, unknown][])("%s", (_n, input, want) => {
    expect(collect(prom(), input)).toEqual(want);
  });

  it.each([
    ["NaN", 0x7ff8000000000000n], ["+Inf", 0x7ff0000000000000n], ["-Inf", 0xfff0000000000000n], ["Inf", 0x7ff0000000000000n], ["nan", 0x7ff8000000000000n],
  ] as [string, bigint][])("special value %s", (tok, bits) => {
    const [[, , [v]]] = collect(prom(), `m ${tok}\n`) as [[unknown, unknown, [number]]];
    expect(float64Bits(v)).toBe(bits);
  });

  it("collects metadata", () => {
    const p = new PromTextParser(new CollectingSink(), {});
    parseAll(p, '# HELP a The a\\\\b\\nc.\n# TYPE a gauge\n# TYPE "my.metric" counter\n# HELP b x\n# UNIT a seconds\n');
    expect(p.metadata()).toEqual([
      { metric: "a", type: "gauge", help: "The a\\b\nc.", unit: "seconds" },
      { metric: "my.metric", type: "counter", help: "", unit: "" },
      { metric: "b", type: "unknown", help: "x", unit: "" },
    ]);
  });

  it.each([["unknown", 0], ["untyped", 0], ["counter", 1], ["gauge", 2], ["histogram", 3], ["gaugehistogram", 4], ["summary", 5], ["info", 6], ["stateset", 7]] as const)(
    "metric type %s is number %d",
    (t, n) => {
      expect(metricTypeNumber(t)).toBe(n);
    },
  );

  it("applies extra labels, replacing same-named ones", () => {
    const extra: Label[] = [{ name: "job", value: "x" }, { name: "env", value: "p" }];
    expect(collect(prom({ extraLabels: extra }), 'm{job="a"} 1\n')).toEqual([[{ __name__: "m", job: "x", env: "p" }, [T], [1]]]);
  });
});

// The input of Prometheus' TestPromParse and TestUTF8PromParse (model/textparse), with the
// series it documents.
const promParseInput = `# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# \tTYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
go_gc_duration_seconds{quantile="0.8", a="b"} 8.3835e-05
go_gc_duration_seconds{ quantile="0.9", a="b"} 8.3835e-05
# Hrandom comment starting with prefix of HELP
#
wind_speed{A="2",c="3"} 12345
# comment with escaped \\n newline
# comment with escaped \\ escape character
# HELP nohelp1
# HELP nohelp2 
go_gc_duration_seconds{ quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile="1.0", a="b" } 8.3835e-05
go_gc_duration_seconds { quantile= "1.0", a= "b", } 8.3835e-05
go_gc_duration_seconds { quantile = "1.0", a = "b" } 8.3835e-05
go_gc_duration_seconds { quantile = "2.0" a = "b" } 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"}\t1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  \t123123
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\\"bar\\""} 1
# HELP metric foo\x00bar
null_byte_metric{a="abc\x00"} 1
{"Heizölrückstoßabdämpfung 10€ metric with \\"interesting\\" {character\\nchoices}","strange©™\\n'quoted' \\"name\\""="6"} 10.0`;

describe("Prometheus' own parser test input", () => {
  it("gives the documented series", () => {
    const g = (q: string, a?: string): Record<string, string> => (a === undefined ? { __name__: "go_gc_duration_seconds", quantile: q } : { __name__: "go_gc_duration_seconds", quantile: q, a });
    expect(collect(prom(), promParseInput)).toEqual([
      [g("0"), [T], [4.9351e-5]],
      [g("0.25"), [T], [7.424100000000001e-5]],
      [g("0.5", "b"), [T], [8.3835e-5]],
      [g("0.8", "b"), [T], [8.3835e-5]],
      [g("0.9", "b"), [T], [8.3835e-5]],
      [{ A: "2", __name__: "wind_speed", c: "3" }, [T], [12345]],
      [g("1.0", "b"), [T], [8.3835e-5]],
      [g("1.0", "b"), [T], [8.3835e-5]],
      [g("1.0", "b"), [T], [8.3835e-5]],
      [g("1.0", "b"), [T], [8.3835e-5]],
      [g("2.0", "b"), [T], [8.3835e-5]],
      [{ __name__: "go_gc_duration_seconds_count" }, [T], [99]],
      [{ __name__: "some:aggregate:rate5m", a_b: "c" }, [T], [1]],
      [{ __name__: "go_goroutines" }, [123123], [33]],
      [{ __name__: "_metric_starting_with_underscore" }, [T], [1]],
      [{ __name__: "testmetric", _label_starting_with_underscore: "foo" }, [T], [1]],
      [{ __name__: "testmetric", label: '"bar"' }, [T], [1]],
      [{ __name__: "null_byte_metric", a: "abc\x00" }, [T], [1]],
      [{ __name__: 'Heizölrückstoßabdämpfung 10€ metric with "interesting" {character\nchoices}', "strange©™\n'quoted' \"name\"": "6" }, [T], [10]],
    ]);
    const p = new PromTextParser(new CollectingSink());
    parseAll(p, promParseInput);
    expect(p.metadata().map((m) => [m.metric, m.type, m.help])).toEqual([
      ["go_gc_duration_seconds", "summary", "A summary of the GC invocation durations."],
      ["nohelp1", "unknown", ""],
      ["nohelp2", "unknown", ""],
      ["go_goroutines", "gauge", "Number of goroutines that currently exist."],
      ["metric", "unknown", "foo\x00bar"],
    ]);
  });
});

// The main input of Prometheus' TestOpenMetricsParse (model/textparse), with the series it
// documents when _created series are skipped (WithOMParserCTSeriesSkipped).
const omParseInput = `# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
# HELP nohelp1 
# HELP help2 escape \\ \\n \\\\ \\" \\x chars
# UNIT nounit 
go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hh histogram
hh_bucket{le="+Inf"} 1
# TYPE gh gaugehistogram
gh_bucket{le="+Inf"} 1
# TYPE hhh histogram
hhh_bucket{le="+Inf"} 1 # {id="histogram-bucket-test"} 4
hhh_count 1 # {id="histogram-count-test"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le="+Inf"} 1 # {id="gaugehistogram-bucket-test",xx="yy"} 4 123.123
ggh_count 1 # {id="gaugehistogram-count-test",xx="yy"} 4 123.123
# TYPE smr_seconds summary
smr_seconds_count 2.0 # {id="summary-count-test"} 1 123.321
smr_seconds_sum 42.0 # {id="summary-sum-test"} 1 123.321
# TYPE ii info
ii{foo="bar"} 1
# TYPE ss stateset
ss{ss="foo"} 1
ss{ss="bar"} 0
ss{A="a"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\\"bar\\""} 1
# HELP foo Counter with and without labels to certify CT is parsed for both cases
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id="counter-test"} 5
foo_created 1520872607.123
foo_total{a="b"} 17.0 1520879607.789 # {id="counter-test"} 5
foo_created{a="b"} 1520872607.123
foo_total{le="c"} 21.0
foo_created{le="c"} 1520872621.123
foo_total{le="1"} 10.0
# HELP baz Histogram with the same objective as above's summary
# TYPE baz histogram
baz_bucket{le="0.0"} 0
baz_bucket{le="+Inf"} 17
baz_count 17
baz_sum 324789.3
baz_created 1520872609.125
# HELP fizz_created Gauge which shouldn't be parsed as CT
# TYPE fizz_created gauge
fizz_created 17.0
# HELP something Histogram with _created between buckets and summary
# TYPE something histogram
something_count 18
something_created 1520430001
something_bucket{le="1"} 2
# EOF
`;

describe("Prometheus' own OpenMetrics parser test input", () => {
  it("gives the documented series and creation times", () => {
    const created: [string, number][] = [];
    const sink = new CollectingSink();
    const p = new PromTextParser(sink, { openMetrics: true, defaultTimestampMs: T, onCreated: (l, ms) => created.push([l.map((x) => `${x.name}=${x.value}`).join(","), ms]) });
    parseAll(p, omParseInput);
    const got = sink.series_.map((s) => [labelsToRecord(s.labels), s.timestamps[0], s.values[0]]);
    const g = (q: string, a?: string) => ({ __name__: "go_gc_duration_seconds", quantile: q, ...(a ? { a } : {}) });
    expect(got).toEqual([
      [g("0.0"), T, 4.9351e-5],
      [g("0.25"), T, 7.424100000000001e-5],
      [g("0.5", "b"), T, 8.3835e-5],
      [g("1.0", "b"), T, 8.3835e-5],
      [{ __name__: "go_gc_duration_seconds_count" }, T, 99],
      [{ __name__: "some:aggregate:rate5m", a_b: "c" }, T, 1],
      [{ __name__: "go_goroutines" }, 123123, 33],
      [{ __name__: "hh_bucket", le: "+Inf" }, T, 1],
      [{ __name__: "gh_bucket", le: "+Inf" }, T, 1],
      [{ __name__: "hhh_bucket", le: "+Inf" }, T, 1],
      [{ __name__: "hhh_count" }, T, 1],
      [{ __name__: "ggh_bucket", le: "+Inf" }, T, 1],
      [{ __name__: "ggh_count" }, T, 1],
      [{ __name__: "smr_seconds_count" }, T, 2],
      [{ __name__: "smr_seconds_sum" }, T, 42],
      [{ __name__: "ii", foo: "bar" }, T, 1],
      [{ __name__: "ss", ss: "foo" }, T, 1],
      [{ __name__: "ss", ss: "bar" }, T, 0],
      [{ A: "a", __name__: "ss" }, T, 0],
      [{ __name__: "_metric_starting_with_underscore" }, T, 1],
      [{ __name__: "testmetric", _label_starting_with_underscore: "foo" }, T, 1],
      [{ __name__: "testmetric", label: '"bar"' }, T, 1],
      [{ __name__: "foo_total" }, 1520879607789, 17],
      [{ __name__: "foo_total", a: "b" }, 1520879607789, 17],
      [{ __name__: "foo_total", le: "c" }, T, 21],
      [{ __name__: "foo_total", le: "1" }, T, 10],
      [{ __name__: "baz_bucket", le: "0.0" }, T, 0],
      [{ __name__: "baz_bucket", le: "+Inf" }, T, 17],
      [{ __name__: "baz_count" }, T, 17],
      [{ __name__: "baz_sum" }, T, 324789.3],
      [{ __name__: "fizz_created" }, T, 17],
      [{ __name__: "something_count" }, T, 18],
      [{ __name__: "something_bucket", le: "1.0" }, T, 2],
    ]);
    expect(created).toEqual([
      ["__name__=foo_created", 1520872607123],
      ["a=b,__name__=foo_created", 1520872607123],
      ["le=c,__name__=foo_created", 1520872621123],
      ["__name__=baz_created", 1520872609125],
      ["__name__=something_created", 1520430001000],
    ]);
    expect(p.metadata().find((m) => m.metric === "help2")!.help).toBe('escape \\ \n \\ " \\x chars');
    expect(p.metadata().find((m) => m.metric === "go_gc_duration_seconds")).toEqual({ metric: "go_gc_duration_seconds", type: "summary", help: "A summary of the GC invocation durations.", unit: "seconds" });
  });
});

describe("OpenMetrics", () => {
  it.each([
    ["seconds timestamps", "m 1 1700000000.5\n# EOF\n", [[{ __name__: "m" }, [1700000000500], [1]]]],
    ["integer seconds", "m 1 17\n", [[{ __name__: "m" }, [17000], [1]]]],
    ["_created of a counter is skipped", "# TYPE c counter\nc_total 5\nc_created 1700000000\n# EOF\n", [[{ __name__: "c_total" }, [T], [5]]]],
    ["_created of a gauge is a series", "# TYPE g gauge\ng_created 1\n# EOF\n", [[{ __name__: "g_created" }, [T], [1]]]],
    ["_created of a histogram is skipped", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_created{a="b"} 1.5\n', [[{ __name__: "h_bucket", le: "+Inf" }, [T], [2]]]],
    ["exemplar with timestamp ignored", '# TYPE c counter\nc_total 5 # {id="1"} 1 1700000000.1\n', [[{ __name__: "c_total" }, [T], [5]]]],
  ] as [string, string, unknown][])("%s", (_n, input, want) => {
    expect(collect(om, input)).toEqual(want);
  });

  it("reports _created timestamps", () => {
    const got: [string, number][] = [];
    const p = new PromTextParser(new CollectingSink(), {
      openMetrics: true,
      onCreated: (l, ms) => got.push([l.map((x) => `${x.name}=${x.value}`).join(","), ms]),
    });
    parseAll(p, '# TYPE c counter\nc_created{a="1"} 1700000000.25\n# EOF\n');
    expect(got).toEqual([["a=1,__name__=c_created", 1700000000250]]);
  });
});

describe("Prometheus text: invalid input", () => {
  it.each([
    ["missing value", "up\n", 'prometheus: line 1: missing value after "up"'],
    ["bad value", "up abc\n", 'prometheus: line 1: invalid value "abc" for "up"'],
    ["bad timestamp", "up 1 1.5\n", 'prometheus: line 1: invalid timestamp "1.5": want integer milliseconds'],
    ["trailing garbage", "up 1 2 3\n", 'prometheus: line 1: unexpected "3" after the sample'],
    ["unterminated labels", 'up{a="b" 1\n', 'prometheus: line 1: expected , or } after label "a", got "1"'],
    ["unterminated string", 'up{a="b} 1\n', 'prometheus: line 1: value of label "a": unterminated quoted string'],
    ["unquoted value", "up{a=b} 1\n", 'prometheus: line 1: label "a": the value must be a quoted string'],
    ["missing =", 'up{a"b"} 1\n', 'prometheus: line 1: label "a": expected = after the label name, got "\\"b\\"} 1"'],
    ["bad name char", "1up 1\n", 'prometheus: line 1: metric name: invalid character "1"'],
    ["line number", "a 1\nb 2\nc x\n", 'prometheus: line 3: invalid value "x" for "c"'],
    ["duplicate label", 'm{a="1",a="2"} 1\n', 'prometheus: line 1: duplicate label name "a"'],
    ["bad TYPE", "# TYPE m foo\n", 'prometheus: line 1: # TYPE "m": invalid metric type "foo"'],
    ["__name__ label", 'm{__name__="x"} 1\n', "prometheus: line 1: label __name__ is not allowed in a label set"],
    ["no name", '{a="b"} 1\n', "prometheus: line 1: missing metric name"],
    ["quoted name not first", '{a="b","x.y"} 1\n', 'prometheus: line 1: quoted metric name "x.y" must come first, without a name before {'],
    ["invalid UTF-8", new Uint8Array([0x6d, 0x7b, 0x61, 0x3d, 0x22, 0xff, 0x22, 0x7d, 0x20, 0x31, 0x0a]), "prometheus: line 1: invalid UTF-8"],
    ["hex float (Prometheus rejects)", "foo 0x1p-3\n", 'prometheus: line 1: invalid value "0x1p-3" for "foo"'],
    ["digit separator", "foo 1_2\n", 'prometheus: line 1: invalid value "1_2" for "foo"'],
    ["timestamp with separator", "foo 0 1_2\n", 'prometheus: line 1: invalid timestamp "1_2": want integer milliseconds'],
    ["single quotes", "a{b='c'} 1\n", 'prometheus: line 1: label "b": the value must be a quoted string'],
    ["empty label name", 'empty_label_name{=""} 0\n', 'prometheus: line 1: invalid label name starting at "=\\"\\"} 0"'],
    ["TYPE without name", "# TYPE #\n", 'prometheus: line 1: # TYPE: invalid character "#"'],
    ["HELP without name", "# HELP #\n", 'prometheus: line 1: # HELP: invalid character "#"'],
    ["timestamp out of range", "m 1 99999999999999999999\n", 'prometheus: line 1: timestamp "99999999999999999999" out of range'],
  ] as [string, string | Uint8Array, string][])("%s", (_n, input, want) => {
    expect(errorOf(prom(), input)).toBe(want);
  });

  it.each([
    ["data after EOF", "m 1\n# EOF\nm 2\n", "openmetrics: line 3: data after # EOF"],
    ["NaN timestamp", "m 1 NaN\n", 'openmetrics: line 1: invalid timestamp "NaN": want seconds'],
  ])("openmetrics %s", (_n, input, want) => {
    expect(errorOf(om, input)).toBe(want);
  });

  it("rejects over-long lines without buffering them", () => {
    const p = (sink: RowSink) => new PromTextParser(sink, { maxLineBytes: 100 });
    expect(errorOf(p, `m{a="${"x".repeat(200)}"} 1\n`)).toBe("prometheus: line 1: line longer than 100 bytes");
  });
});

describe("text exposition writer", () => {
  it.each([
    [0, "0"], [-0, "-0"], [1, "1"], [1.5, "1.5"], [1e6, "1e+06"], [123456.7, "123456.7"], [1234567, "1.234567e+06"],
    [0.0001, "0.0001"], [0.00001, "1e-05"], [1.5e-7, "1.5e-07"], [1e21, "1e+21"], [1e100, "1e+100"], [NaN, "NaN"],
    [Infinity, "+Inf"], [-Infinity, "-Inf"], [5e-324, "5e-324"], [-2.5e-5, "-2.5e-05"], [100000, "100000"],
  ] as [number, string][])("formats %s as %s (Go 'g' shortest)", (v, want) => {
    expect(formatPromFloat(v)).toBe(want);
  });

  it("writes samples and metadata", () => {
    const labels = [
      { name: "__name__", value: "up" }, { name: "job", value: 'a"b\\c\nd' }, { name: "x.y", value: "1" },
    ];
    expect(formatTextSample(labels, 1, 1700000000000)).toBe('up{job="a\\"b\\\\c\\nd","x.y"="1"} 1 1700000000000\n');
    expect(formatTextSample([{ name: "__name__", value: "my.metric" }, { name: "a", value: "b" }], STALE_NAN)).toBe('{"my.metric",a="b"} NaN\n');
    expect(formatTextSample([{ name: "__name__", value: "m" }], 2)).toBe("m 2\n");
    expect(formatTextMetadata("up", "gauge", "Help\nwith \\")).toBe("# HELP up Help\\nwith \\\\\n# TYPE up gauge\n");
  });

  it("round-trips through the parser", () => {
    const labels = [
      { name: "__name__", value: "my.metric" }, { name: "a", value: 'q"\\\n' }, { name: "b.c", value: "ü" },
    ];
    const text = formatTextMetadata("my.metric", "counter", "h") + formatTextSample(labels, 0.1, 5) + formatTextSample(labels, 1e-300, 6);
    expect(collect(prom(), text)).toEqual([
      [{ __name__: "my.metric", a: 'q"\\\n', "b.c": "ü" }, [5], [0.1]],
      [{ __name__: "my.metric", a: 'q"\\\n', "b.c": "ü" }, [6], [1e-300]],
    ]);
  });
});
