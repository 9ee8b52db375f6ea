import { describe, expect, it, vi } from "vitest";
import { BadDataError, PayloadTooLargeError } from "@strata/core";
import type { CsvOptions, InfluxOptions, RowSink, StreamParser } from "@strata/formats";
import { CollectingSink, CsvParser, GraphiteParser, InfluxParser, JsonLinesParser, OpenTsdbParser, PromTextParser, compileGoLayout, parseCsvFormat, parseGoTime, parseInfluxPrecision, parseRfc3339 } from "@strata/formats";
import { collect, errorOf } from "./helpers.js";

const T = 1_700_000_000_000;

describe("CSV", () => {
  const csv = (format: string, extra: Partial<CsvOptions> = {}) => (sink: RowSink) =>
    new CsvParser(sink, { format: parseCsvFormat(format), defaultTimestampMs: T, ...extra });

  it.each([
    ["VictoriaMetrics docs example", "2:metric:ask,3:metric:bid,1:label:ticker,4:label:market",
      "GOOG,1.23,4.56,NYSE\nMSFT,3.21,1.67,NASDAQ\n",
      [
        [{ __name__: "ask", ticker: "GOOG", market: "NYSE" }, [T], [1.23]],
        [{ __name__: "bid", ticker: "GOOG", market: "NYSE" }, [T], [4.56]],
        [{ __name__: "ask", ticker: "MSFT", market: "NASDAQ" }, [T], [3.21]],
        [{ __name__: "bid", ticker: "MSFT", market: "NASDAQ" }, [T], [1.67]],
      ]],
    ["unix_s", "1:time:unix_s,2:metric:m", "1700000000.5,1\n", [[{ __name__: "m" }, [1700000000500], [1]]]],
    ["unix_ms", "1:time:unix_ms,2:metric:m", "1700000000123,1\n", [[{ __name__: "m" }, [1700000000123], [1]]]],
    ["unix_ns", "1:time:unix_ns,2:metric:m", "1700000000123456789,1\n", [[{ __name__: "m" }, [1700000000123], [1]]]],
    ["rfc3339", "1:time:rfc3339,2:metric:m", "2023-11-14T22:13:20.5+01:00,1\n", [[{ __name__: "m" }, [1699996400500], [1]]]],
    ["custom layout", "1:time:custom:2006-01-02 15:04:05,2:metric:m", "2023-11-14 22:13:20,1\n", [[{ __name__: "m" }, [1700000000000], [1]]]],
    ["custom layout with comma", "1:time:custom:Jan 2, 2006,2:metric:m", '"Nov 14, 2023",7\n', [[{ __name__: "m" }, [1699920000000], [7]]]],
    ["quoted fields", "1:label:a,2:metric:m", '"x,""y""",2\n', [[{ __name__: "m", a: 'x,"y"' }, [T], [2]]]],
    ["empty metric cell skipped, empty label absent", "1:label:a,2:metric:m,3:metric:n", ",,3\n", [[{ __name__: "n" }, [T], [3]]]],
    ["extra columns ignored", "1:metric:m", "1,foo,bar\n", [[{ __name__: "m" }, [T], [1]]]],
    // Cases of VictoriaMetrics' lib/protoparser/csvimport TestRowsUnmarshalSuccess.
    ["VM: labels and unix_s", "1:metric:foo,2:time:unix_s,3:label:foo,4:label:bar", "123,456,xxx,yy", [[{ __name__: "foo", foo: "xxx", bar: "yy" }, [456000], [123]]]],
    ["VM: multiple metrics, quotes, custom layout", "2:metric:bar,1:metric:foo,3:label:foo,4:label:bar,5:time:custom:2006-01-02 15:04:05.999Z",
      '"2.34",5.6,"foo"",bar","aa",2015-08-10 20:04:40.123Z',
      [[{ __name__: "bar", foo: 'foo",bar', bar: "aa" }, [1439237080123], [5.6]], [{ __name__: "foo", foo: 'foo",bar', bar: "aa" }, [1439237080123], [2.34]]]],
    ["VM: quoted layout times", "2:label:symbol,3:time:custom:2006-01-02 15:04:05.999Z,4:metric:bid,5:metric:ask",
      '\n"aaa","AUDCAD","2015-08-10 00:00:01.000Z",0.9725,0.97273\n"aaa","AUDCAD","2015-08-10 00:00:02.000Z",0.97253,0.97276\n',
      [
        [{ __name__: "bid", symbol: "AUDCAD" }, [1439164801000], [0.9725]], [{ __name__: "ask", symbol: "AUDCAD" }, [1439164801000], [0.97273]],
        [{ __name__: "bid", symbol: "AUDCAD" }, [1439164802000], [0.97253]], [{ __name__: "ask", symbol: "AUDCAD" }, [1439164802000], [0.97276]],
      ]],
    ["VM: superfluous columns", "2:metric:foo", "123,-45.6,foo,bar", [[{ __name__: "foo" }, [T], [-45.6]]]],
  ] as [string, string, string, unknown][])("%s", (_n, format, input, want) => {
    expect(collect(csv(format), input)).toEqual(want);
  });

  it.each([
    ["too few columns", "1:metric:m,3:label:a", "1,2\n", "csv: line 1: 2 columns, the format needs 3"],
    ["bad value", "1:metric:m", "1\nx\n", 'csv: line 2: column 1: invalid value "x" for metric "m"'],
    ["bad time", "1:time:unix_s,2:metric:m", "abc,1\n", 'csv: line 1: column 1: invalid unix_s timestamp "abc"'],
    ["bad rfc3339", "1:time:rfc3339,2:metric:m", "2023-02-30T00:00:00Z,1\n", 'csv: line 1: column 1: invalid rfc3339 timestamp "2023-02-30T00:00:00Z"'],
    ["unterminated quote", "1:metric:m", '"1\n', "csv: line 1: unterminated quoted field"],
  ])("rejects %s", (_n, format, input, want) => {
    expect(errorOf(csv(format), input)).toBe(want);
  });

  it.each([
    ["", "csv: format parameter: empty; want e.g. 1:metric:name,2:label:job,3:time:unix_s"],
    ["1:label:a", "csv: format parameter: no metric column"],
    ["x:metric:a", 'csv: format parameter: "x:metric:a": want <column>:metric|label|time:<name or time format>'],
    ["0:metric:a", 'csv: format parameter: "0:metric:a": column numbers start at 1'],
    ["1:metric:a,1:metric:b", "csv: format parameter: column 1 is described twice"],
    ["1:metric:a,2:time:unix_h", 'csv: format parameter: "2:time:unix_h": unknown time format; want unix_s, unix_ms, unix_ns, rfc3339 or custom:<layout>'],
    ["1:metric:a,2:time:unix_s,3:time:unix_ms", "csv: format parameter: more than one time column"],
    ["1:metric:", 'csv: format parameter: "1:metric:": empty metric name'],
  ])("format %j is rejected", (spec, want) => {
    let msg = "no error";
    try {
      parseCsvFormat(spec);
    } catch (err) {
      expect(err).toBeInstanceOf(BadDataError);
      msg = (err as Error).message;
    }
    expect(msg).toBe(want);
  });
});

describe("time layouts", () => {
  it.each([
    ["2006-01-02T15:04:05Z07:00", "2023-11-14T22:13:20Z", 1700000000000],
    ["2006-01-02T15:04:05Z07:00", "2023-11-14T23:13:20+01:00", 1700000000000],
    ["2006-01-02 15:04:05.000", "2023-11-14 22:13:20.123", 1700000000123],
    ["2006-01-02 15:04:05.999", "2023-11-14 22:13:20.5", 1700000000500],
    ["2006-01-02 15:04:05.999", "2023-11-14 22:13:20", 1700000000000],
    ["02/01/2006 3:04PM", "14/11/2023 10:13PM", 1700000000000 - 20000],
    ["Mon Jan _2 15:04:05 2006", "Tue Nov 14 22:13:20 2023", 1700000000000],
    ["January 2 2006 -0700", "November 14 2023 +0000", 1699920000000],
    ["20060102150405", "20231114221320", 1700000000000],
    ["2006-01-02 15:04:05 MST", "2023-11-14 22:13:20 UTC", 1700000000000],
  ] as [string, string, number][])("%s parses %s", (layout, s, want) => {
    expect(parseGoTime(compileGoLayout(layout), s)).toBe(want);
  });
  it.each([
    ["2006-01-02", "2023-13-01"], ["2006-01-02", "2023-1-01"], ["2006-01-02", "2023-01-02x"], ["15:04", "25:00"],
  ])("%s rejects %s", (layout, s) => {
    expect(parseGoTime(compileGoLayout(layout), s)).toBeUndefined();
  });
  it("rfc3339", () => {
    expect(parseRfc3339("1970-01-01T00:00:00Z")).toBe(0);
    expect(parseRfc3339("2023-11-14T22:13:20.123456789Z")).toBe(1700000000123);
    expect(parseRfc3339("2023-11-14")).toBeUndefined();
  });
});

describe("Influx line protocol", () => {
  const influx = (opts: Partial<InfluxOptions> = {}) => (sink: RowSink) => new InfluxParser(sink, { defaultTimestampMs: T, ...opts });

  it.each([
    ["measurement_field naming, tags", "cpu,host=a,region=eu usage=1.5,idle=2i 1700000000000000000\n", {},
      [
        [{ __name__: "cpu_usage", host: "a", region: "eu" }, [T], [1.5]],
        [{ __name__: "cpu_idle", host: "a", region: "eu" }, [T], [2]],
      ]],
    ["bools, unsigned, strings skipped", 'm a=t,b=FALSE,c=5u,d="str, with = spaces",e=True\n', {},
      [
        [{ __name__: "m_a" }, [T], [1]],
        [{ __name__: "m_b" }, [T], [0]],
        [{ __name__: "m_c" }, [T], [5]],
        [{ __name__: "m_e" }, [T], [1]],
      ]],
    ["escapes", 'my\\ meas\\,x,ta\\ g=v\\,1\\=2 f\\=x=1\n', {}, [[{ __name__: "my meas,x_f=x", "ta g": "v,1=2" }, [T], [1]]]],
    ["db label", "m,host=a f=1\n", { db: "telegraf" }, [[{ __name__: "m_f", host: "a", db: "telegraf" }, [T], [1]]]],
    ["db tag wins", "m,db=x f=1\n", { db: "telegraf" }, [[{ __name__: "m_f", db: "x" }, [T], [1]]]],
    ["precision s", "m f=1 1700000000\n", { precision: "s" }, [[{ __name__: "m_f" }, [T], [1]]]],
    ["precision ms", "m f=1 1700000000001\n", { precision: "ms" }, [[{ __name__: "m_f" }, [T + 1], [1]]]],
    ["precision us", "m f=1 1700000000001999\n", { precision: "us" }, [[{ __name__: "m_f" }, [T + 1], [1]]]],
    ["precision h", "m f=1 1\n", { precision: "h" }, [[{ __name__: "m_f" }, [3_600_000], [1]]]],
    ["negative ns truncates toward zero", "m f=1 -1500000\n", {}, [[{ __name__: "m_f" }, [-1], [1]]]],
    ["comments and blank lines", "# c\n\nm f=1\n", {}, [[{ __name__: "m_f" }, [T], [1]]]],
    ["separator option", "m f=1\n", { measurementFieldSeparator: "." }, [[{ __name__: "m.f" }, [T], [1]]]],
    ["skipSingleField", "m f=1\n", { skipSingleField: true }, [[{ __name__: "m" }, [T], [1]]]],
    ["skipMeasurement", "m f=1\n", { skipMeasurement: true }, [[{ __name__: "f" }, [T], [1]]]],
    ["negative float and exponent", "m f=-1.5e3\n", {}, [[{ __name__: "m_f" }, [T], [-1500]]]],
  ] as [string, string, Partial<InfluxOptions>, unknown][])("%s", (_n, input, opts, want) => {
    expect(collect(influx(opts), input)).toEqual(want);
  });

  // Cases of VictoriaMetrics' lib/protoparser/influx TestRowsUnmarshalSuccess (string fields
  // are skipped here, as the issue asks).
  it.each([
    ["missing measurement", " baz=123", [[{ __name__: "baz" }, [T], [123]]]],
    ["missing measurement with tag", ",foo=bar baz=123", [[{ __name__: "baz", foo: "bar" }, [T], [123]]]],
    ["excess whitespace after the field", "foo bar=123   ", [[{ __name__: "foo_bar" }, [T], [123]]]],
    ["comments around", "# comment\nfoo bar=123\r\n#comment2 sdsf dsf", [[{ __name__: "foo_bar" }, [T], [123]]]],
    ["negative timestamp", "foo bar=123.45 -345000000", [[{ __name__: "foo_bar" }, [-345], [123.45]]]],
    ["empty tag values and keys skipped", "foo,tag1=xyz,tagN=,tag2=43as,=xxx bar=123", [[{ __name__: "foo_bar", tag1: "xyz", tag2: "43as" }, [T], [123]]]],
    ["all field kinds", 'foo,tag1=xyz,tag2=43as bar=-123e4,x=True,y=-45i,z=f,aa="f,= \\"a",bb=23u 48934000000',
      [
        [{ __name__: "foo_bar", tag1: "xyz", tag2: "43as" }, [48934], [-123e4]],
        [{ __name__: "foo_x", tag1: "xyz", tag2: "43as" }, [48934], [1]],
        [{ __name__: "foo_y", tag1: "xyz", tag2: "43as" }, [48934], [-45]],
        [{ __name__: "foo_z", tag1: "xyz", tag2: "43as" }, [48934], [0]],
        [{ __name__: "foo_bb", tag1: "xyz", tag2: "43as" }, [48934], [23]],
      ]],
    ["escape chars", "fo\\,bar\\=b\\ az,x\\=\\ b=\\\\a\\,\\=\\q\\  \\\\\\a\\ b\\=\\,=4.34",
      [[{ __name__: "fo,bar=b az_\\\\a b=,", "x= b": "\\a,=\\q " }, [T], [4.34]]]],
    ["librenms", "ports,foo=a,bar=et\\ +\\ V,baz=ype INDISCARDS=245333676,OUTDISCARDS=1798680",
      [[{ __name__: "ports_INDISCARDS", foo: "a", bar: "et + V", baz: "ype" }, [T], [245333676]], [{ __name__: "ports_OUTDISCARDS", foo: "a", bar: "et + V", baz: "ype" }, [T], [1798680]]]],
    ["superfluous whitespace", "cpu_utilization,host=mnsbook-pro.local   value=119.8   1607222595591000000", [[{ __name__: "cpu_utilization_value", host: "mnsbook-pro.local" }, [1607222595591], [119.8]]]],
    ["escaped spaces in a tag", "x,y=z,g=p:\\ \\ 5432\\,\\ gp\\ mon\\ [lol]\\ con10\\ cmd5\\ SELECT f=1", [[{ __name__: "x_f", y: "z", g: "p:  5432, gp mon [lol] con10 cmd5 SELECT" }, [T], [1]]]],
  ] as [string, string, unknown][])("VictoriaMetrics case: %s", (_n, input, want) => {
    expect(collect(influx(), input)).toEqual(want);
  });

  it.each([
    "foo", "foo,bar=baz 1234", "foo,bar", "foo,bar baz", "foo,bar=123, 123", "foo bar", "foo bar=", "foo bar=,baz=23 123", "foo bar=1, 123",
    'foo bar=" 123', 'foo bar="123', 'foo bar=",123', 'foo bar=a"", 123', "foo =123", "foo bar=123 baz", "foo bar=1abci", "foo bar=-2abci", "foo bar=3abcu",
    "GET /foo HTTP/1.1", "GET /foo?bar=baz HTTP/1.0",
  ])("VictoriaMetrics failure case %j is rejected", (input) => {
    expect(errorOf(influx(), input)).toMatch(/^influx: line 1: /);
  });

  it.each([
    ["no fields", "cpu\n", 'influx: line 1: missing fields after measurement "cpu"'],
    ["tag without =", "cpu,host f=1\n", 'influx: line 1: tag "host": missing ='],
    ["field without =", "cpu f\n", 'influx: line 1: field "f": missing ='],
    ["bad field value", "cpu f=abc\n", 'influx: line 1: field "f": invalid value "abc"'],
    ["bad integer", "cpu f=1.5i\n", 'influx: line 1: field "f": invalid value "1.5i"'],
    ["unterminated string", 'cpu f="abc\n', 'influx: line 1: field "f": unterminated string'],
    ["bad timestamp", "cpu f=1 12a\n", 'influx: line 1: invalid timestamp "12a"'],
    ["extra after timestamp", "m f=1 1 2\n", 'influx: line 1: unexpected "2" after the timestamp'],
    ["line number", "m f=1\nm f=x\n", 'influx: line 2: field "f": invalid value "x"'],
  ])("rejects %s", (_n, input, want) => {
    expect(errorOf(influx(), input)).toBe(want);
  });

  it.each([
    [null, "ns"], ["n", "ns"], ["u", "us"], ["ms", "ms"], ["s", "s"], ["m", "m"], ["h", "h"],
  ] as [string | null, string][])("precision %j", (p, want) => {
    expect(parseInfluxPrecision(p)).toBe(want);
  });
  it("rejects an unknown precision", () => {
    expect(() => parseInfluxPrecision("d")).toThrow('influx: parameter precision: unsupported precision "d"');
  });
});

describe("Graphite plaintext", () => {
  const g = (sink: RowSink) => new GraphiteParser(sink, { defaultTimestampMs: T });
  it.each([
    ["path value ts", "a.b.c 1.5 1700000000\n", [[{ __name__: "a.b.c" }, [T], [1.5]]]],
    ["tags", "a.b.c;tag1=v1;tag2=v2 1 1700000000\n", [[{ __name__: "a.b.c", tag1: "v1", tag2: "v2" }, [T], [1]]]],
    ["no timestamp", "x 2\n", [[{ __name__: "x" }, [T], [2]]]],
    ["-1 means now", "x 2 -1\n", [[{ __name__: "x" }, [T], [2]]]],
    ["fractional seconds", "x 2 1700000000.25\n", [[{ __name__: "x" }, [T + 250], [2]]]],
    ["tabs and extra spaces", "x\t 2   1700000000  \n", [[{ __name__: "x" }, [T], [2]]]],
    // Cases of VictoriaMetrics' lib/protoparser/graphite TestRowsUnmarshalSuccess.
    ["VM: negative value", "foobar -123.456 789", [[{ __name__: "foobar" }, [789000], [-123.456]]]],
    ["VM: big timestamp", "aaa 1123 429496729600", [[{ __name__: "aaa" }, [429496729600000], [1123]]]],
    ["VM: empty tags", "foo; 1 2", [[{ __name__: "foo" }, [2000], [1]]]],
    ["VM: tag without =", "foo;bar 1 2", [[{ __name__: "foo" }, [2000], [1]]]],
    ["VM: empty tag name or value", "foo;bar=baz;aa=;x=y;=z 1 2", [[{ __name__: "foo", bar: "baz", x: "y" }, [2000], [1]]]],
    ["VM: tabs and tags", "foo;baz=bar;bb=;y=x;=z\t1\t2", [[{ __name__: "foo", baz: "bar", y: "x" }, [2000], [1]]]],
    ["VM: whitespace after timestamp", "foo.baz 125 1789 \na 1.34 567\t  ", [[{ __name__: "foo.baz" }, [1789000], [125]], [{ __name__: "a" }, [567000], [1.34]]]],
    ["VM: empty lines", "\r\n\n\r\n", []],
  ] as [string, string, unknown][])("%s", (_n, input, want) => {
    expect(collect(g, input)).toEqual(want);
  });
  it.each([
    ["no value", "a.b\n", 'graphite: line 1: missing value after "a.b"'],
    ["bad value", "a.b x\n", 'graphite: line 1: invalid value "x"'],
    ["bad ts", "a.b 1 x\n", 'graphite: line 1: invalid timestamp "x"'],
    ["leading blank (missing metric)", " 123 455\n", "graphite: line 1: missing metric name: the line starts with a blank"],
    ["space in a tag value", "s;tag1=aaa1;tag2=bb b2;tag3=ccc3 1\n", 'graphite: line 1: invalid value "b2;tag3=ccc3"'],
    ["too many fields", "a 1 2 3\n", 'graphite: line 1: unexpected "3" after the timestamp'],
    ["empty name", ";a=b 1\n", "graphite: line 1: empty metric name"],
  ])("rejects %s", (_n, input, want) => {
    expect(errorOf(g, input)).toBe(want);
  });
});

describe("OpenTSDB /api/put", () => {
  const o = (sink: RowSink) => new OpenTsdbParser(sink, { defaultTimestampMs: T });
  it.each([
    ["single object", '{"metric":"sys.cpu","timestamp":1700000000,"value":18,"tags":{"host":"web01"}}',
      [[{ __name__: "sys.cpu", host: "web01" }, [T], [18]]]],
    ["array, ms timestamps, string value", '[{"metric":"a","timestamp":1700000000001,"value":"1.5","tags":{}},{"metric":"b","value":2}]',
      [[{ __name__: "a" }, [T + 1], [1.5]], [{ __name__: "b" }, [T], [2]]]],
  ] as [string, string, unknown][])("%s", (_n, input, want) => {
    expect(collect(o, input)).toEqual(want);
  });
  it.each([
    ["not JSON", "{", "opentsdb: body: invalid JSON: "],
    ["no metric", '{"value":1}', 'opentsdb: object: missing or empty "metric"'],
    ["bad value", '[{"metric":"a","value":1},{"metric":"a","value":"x"}]', 'opentsdb: item 2: invalid "value" "\\"x\\""'],
    ["bad timestamp", '{"metric":"a","value":1,"timestamp":-5}', 'opentsdb: object: invalid "timestamp" "-5"'],
    ["bad tags", '{"metric":"a","value":1,"tags":[]}', 'opentsdb: object: "tags" must be an object'],
    ["tag not string", '{"metric":"a","value":1,"tags":{"a":1}}', 'opentsdb: object: tag "a": value must be a string'],
    ["not an object", "[1]", "opentsdb: item 1: want a JSON object"],
  ])("rejects %s", (_n, input, want) => {
    expect(errorOf(o, input).startsWith(want)).toBe(true);
  });
  it("caps the body size", () => {
    const p = (sink: RowSink) => new OpenTsdbParser(sink, { maxBodyBytes: 10 });
    const write = () => p(new CollectingSink()).write(new TextEncoder().encode('{"metric":"abcdefgh","value":1}'));
    expect(write).toThrow(PayloadTooLargeError);
    expect(write).toThrow("opentsdb: byte 10: body larger than 10 bytes (-opentsdbhttp.maxInsertRequestSize)");
  });
  it("accepts a request whole or not at all", () => {
    const rows: string[] = [];
    const sink: RowSink = { series: (l) => rows.push(l[0]!.value), sample: () => undefined };
    expect(() => {
      const p = new OpenTsdbParser(sink);
      p.write(new TextEncoder().encode('[{"metric":"a","value":1},{"metric":"b"}]'));
      p.end();
    }).toThrow(BadDataError);
    expect(rows).toEqual([]);
  });
});

describe("onInvalidLine: skip bad lines instead of failing (Graphite over TCP)", () => {
  it.each([
    ["graphite", (sink: RowSink, on: (e: BadDataError) => void) => new GraphiteParser(sink, { defaultTimestampMs: T, onInvalidLine: on }),
      "a 1\nb x\nc 3\n", [[{ __name__: "a" }, [T], [1]], [{ __name__: "c" }, [T], [3]]], ['graphite: line 2: invalid value "x"']],
    ["jsonline bad value adds nothing", (sink: RowSink, on: (e: BadDataError) => void) => new JsonLinesParser(sink, { onInvalidLine: on }),
      '{"metric":{"__name__":"a"},"values":[1,true],"timestamps":[1,2]}\n{"metric":{"__name__":"b"},"values":[2],"timestamps":[3]}\n',
      [[{ __name__: "b" }, [3], [2]]], ['jsonline: line 1: values[1]: not a number: "true"']],
    ["influx", (sink: RowSink, on: (e: BadDataError) => void) => new InfluxParser(sink, { defaultTimestampMs: T, onInvalidLine: on }),
      "m a=1,b=x\nm c=2\n", [[{ __name__: "m_c" }, [T], [2]]], ['influx: line 1: field "b": invalid value "x"']],
    ["prometheus duplicate label from the sink", (sink: RowSink, on: (e: BadDataError) => void) => new PromTextParser(sink, { defaultTimestampMs: T, onInvalidLine: on }),
      'm{a="1",a="2"} 1\nok 2\n', [[{ __name__: "ok" }, [T], [2]]], ['prometheus: line 1: duplicate label name "a"']],
  ] as [string, (sink: RowSink, on: (e: BadDataError) => void) => StreamParser, string, unknown, string[]][])("%s", (_n, make, input, want, wantErrors) => {
    const errors: string[] = [];
    expect(collect((sink) => make(sink, (e) => errors.push(e.message)), input)).toEqual(want);
    expect(errors).toEqual(wantErrors);
  });
});

describe("Graphite default timestamp on long-lived streams", () => {
  it("is the time each chunk arrives when no fixed default is given", () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(1_000_000);
      const sink = new CollectingSink();
      const p = new GraphiteParser(sink);
      p.write(new TextEncoder().encode("a 1\n"));
      vi.setSystemTime(2_000_000);
      p.write(new TextEncoder().encode("b 2\n"));
      p.end();
      expect(sink.series_.map((s) => s.timestamps[0])).toEqual([1_000_000, 2_000_000]);
    } finally {
      vi.useRealTimers();
    }
  });
});
