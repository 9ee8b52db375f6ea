import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL } from "@strata/core";
import type { CommonParseOptions, RowSink, StreamParser } from "./common.js";
import { DEFAULT_MAX_LINE_BYTES, applyExtraLabels, excerpt, parseError } from "./common.js";
import { parseFloatStrict } from "./floats.js";
import { LineSplitter } from "./lines.js";

/**
 * Graphite plaintext protocol: `metric.path[;tag=value…] value [timestamp]`, fields separated
 * by spaces or tabs. The timestamp is Unix seconds (fractions allowed and kept to the
 * millisecond; VictoriaMetrics truncates them to seconds); missing or `-1` means the default
 * timestamp (now). The path becomes `__name__`, tags become labels; empty or malformed tags
 * (`foo;`, `foo;bar`, `foo;a=`) are skipped as VictoriaMetrics does.
 */
export class GraphiteParser implements StreamParser {
  rowsRead = 0;
  private readonly lines: LineSplitter;
  private readonly labels: Label[] = [];
  private defaultTs: number;

  constructor(
    private readonly sink: RowSink,
    private readonly opts: CommonParseOptions = {},
  ) {
    this.defaultTs = opts.defaultTimestampMs ?? Date.now();
    this.lines = new LineSplitter("graphite", opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l, n) => this.line(l, n), opts.onInvalidLine);
  }

  write(chunk: Uint8Array): void {
    // Without a fixed default, "now" is the time each chunk arrives: a Graphite TCP connection
    // lives for hours, and its lines without a timestamp must not all get the connect time.
    if (this.opts.defaultTimestampMs === undefined) this.defaultTs = Date.now();
    this.lines.write(chunk);
  }

  end(): void {
    this.lines.end();
  }

  private line(s: string, n: number): void {
    function fail(what: string): never {
      throw parseError("graphite", `line ${n}`, what);
    }
    const fields = s.split(/[ \t]+/);
    let a = 0;
    while (a < fields.length && fields[a] === "") a++;
    let b = fields.length;
    while (b > a && fields[b - 1] === "") b--;
    if (a === b) return;
    if (a > 0) fail("missing metric name: the line starts with a blank");
    if (b - a < 2) fail(`missing value after ${excerpt(fields[a]!)}`);
    if (b - a > 3) fail(`unexpected ${excerpt(fields.slice(a + 3, b).join(" "))} after the timestamp`);
    const path = fields[a]!;
    const labels = this.labels;
    labels.length = 0;
    const semi = path.indexOf(";");
    const name = semi < 0 ? path : path.slice(0, semi);
    if (name === "") fail("empty metric name");
    labels.push({ name: METRIC_NAME_LABEL, value: name });
    if (semi >= 0) {
      // VictoriaMetrics skips empty tags and tags without a name, a value or `=`.
      for (const tag of path.slice(semi + 1).split(";")) {
        const eq = tag.indexOf("=");
        if (eq <= 0 || eq === tag.length - 1) continue;
        const tn = tag.slice(0, eq);
        if (tn === METRIC_NAME_LABEL) fail("tag __name__ is not allowed");
        labels.push({ name: tn, value: tag.slice(eq + 1) });
      }
    }
    const vTok = fields[a + 1]!;
    const v = parseFloatStrict(vTok);
    if (v === undefined) fail(`invalid value ${excerpt(vTok)}`);
    let ts = this.defaultTs;
    if (b - a === 3) {
      const tTok = fields[a + 2]!;
      const t = parseFloatStrict(tTok);
      if (t === undefined || !Number.isFinite(t)) fail(`invalid timestamp ${excerpt(tTok)}`);
      if (t !== -1) {
        ts = Math.round(t * 1000);
        if (!Number.isSafeInteger(ts)) fail(`timestamp ${excerpt(tTok)} out of range`);
      }
    }
    applyExtraLabels(labels, this.opts.extraLabels);
    this.sink.series(labels);
    this.sink.sample(ts, v);
    this.rowsRead++;
  }
}
