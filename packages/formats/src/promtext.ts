import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL } from "@strata/core";
import type { CommonParseOptions, FormatName, RowSink, StreamParser } from "./common.js";
import { DEFAULT_MAX_LINE_BYTES, applyExtraLabels, excerpt, parseError } from "./common.js";
import { formatPromFloat, parseFloatStrict } from "./floats.js";
import { LineSplitter } from "./lines.js";

export type MetricType =
  | "counter"
  | "gauge"
  | "histogram"
  | "gaugehistogram"
  | "summary"
  | "info"
  | "stateset"
  | "unknown"
  | "untyped";

const METRIC_TYPES: ReadonlySet<string> = new Set<MetricType>([
  "counter",
  "gauge",
  "histogram",
  "gaugehistogram",
  "summary",
  "info",
  "stateset",
  "unknown",
  "untyped",
]);

/** HELP/TYPE/UNIT of one metric family, for the metadata API. */
export interface MetricMetadata {
  readonly metric: string;
  readonly type: MetricType;
  readonly help: string;
  readonly unit: string;
}

export interface PromTextOptions extends CommonParseOptions {
  /**
   * OpenMetrics 1.0 (`application/openmetrics-text`): timestamps are seconds (fractions
   * allowed), nothing may follow `# EOF`, and `<family>_created` samples of counters,
   * histograms, summaries and gauge histograms are creation times, not series.
   * Otherwise the Prometheus text format 0.0.4: timestamps are integer milliseconds.
   */
  readonly openMetrics?: boolean;
  /** Receives each `_created` sample skipped in OpenMetrics mode (labels valid only during the call). */
  readonly onCreated?: (labels: readonly Label[], createdMs: number) => void;
  /** Most metric families whose metadata is kept (default 10000); more are ignored. */
  readonly maxMetadata?: number;
}

const TYPE_NUMBERS: Record<MetricType, number> = {
  unknown: 0,
  untyped: 0,
  counter: 1,
  gauge: 2,
  histogram: 3,
  gaugehistogram: 4,
  summary: 5,
  info: 6,
  stateset: 7,
};

/** The numbering of prometheus.MetricMetadata.MetricType (remote write; @strata/protocol MetricTypeNumber). */
export function metricTypeNumber(t: MetricType): number {
  return TYPE_NUMBERS[t];
}

/** True for a Content-Type that announces OpenMetrics. */
export function isOpenMetricsContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.toLowerCase().includes("application/openmetrics-text");
}

const CREATED_TYPES: ReadonlySet<string> = new Set(["counter", "histogram", "summary", "gaugehistogram"]);

interface MutableMeta {
  type: MetricType;
  help: string;
  unit: string;
}

/**
 * Streaming parser for the Prometheus text exposition format and OpenMetrics, including
 * Prometheus 3 UTF-8 names (`{"my.metric","a.b"="c"}`). Exemplars (` # {…} v [ts]`) are
 * ignored. HELP/TYPE/UNIT lines are collected into `metadata()`.
 */
export class PromTextParser implements StreamParser {
  rowsRead = 0;
  private readonly lines: LineSplitter;
  private readonly labels: Label[] = [];
  private readonly format: FormatName;
  private readonly defaultTs: number;
  private readonly meta = new Map<string, MutableMeta>();
  private eof = false;
  /** Type of the family announced by the last `# TYPE` line (OpenMetrics label normalization). */
  private lastType: MetricType = "unknown";
  // Cursor state for the line being parsed.
  private s = "";
  private i = 0;
  private n = 0;

  constructor(
    private readonly sink: RowSink,
    private readonly opts: PromTextOptions = {},
  ) {
    this.format = opts.openMetrics ? "openmetrics" : "prometheus";
    this.defaultTs = opts.defaultTimestampMs ?? Date.now();
    this.lines = new LineSplitter(this.format, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l, n) => this.line(l, n), opts.onInvalidLine);
  }

  write(chunk: Uint8Array): void {
    this.lines.write(chunk);
  }

  end(): void {
    this.lines.end();
  }

  /** Metadata of the families seen so far (HELP, TYPE, UNIT lines). */
  metadata(): MetricMetadata[] {
    const out: MetricMetadata[] = [];
    for (const [metric, m] of this.meta) out.push({ metric, type: m.type, help: m.help, unit: m.unit });
    return out;
  }

  private fail(what: string): never {
    throw parseError(this.format, `line ${this.n}`, what);
  }

  private line(line: string, n: number): void {
    this.s = line;
    this.n = n;
    this.i = 0;
    this.skipSpace();
    if (this.i >= line.length) return;
    if (this.eof) this.fail("data after # EOF");
    if (line.charCodeAt(this.i) === 0x23 /* # */) {
      this.comment();
      return;
    }
    this.sample();
  }

  // ---- comments and metadata ----------------------------------------------------------------

  private comment(): void {
    const s = this.s;
    this.i++;
    if (s.charCodeAt(this.i) !== 0x20 && s.charCodeAt(this.i) !== 0x09) {
      if (this.i >= s.length) return; // a bare "#"
      return; // "#foo": a comment
    }
    this.skipSpace();
    const kwStart = this.i;
    while (this.i < s.length && s.charCodeAt(this.i) !== 0x20 && s.charCodeAt(this.i) !== 0x09) this.i++;
    const kw = s.slice(kwStart, this.i);
    if (kw === "EOF" && this.i >= s.length) {
      if (this.opts.openMetrics) this.eof = true;
      return;
    }
    if (kw !== "HELP" && kw !== "TYPE" && kw !== "UNIT") return; // an ordinary comment
    this.skipSpace();
    if (this.i >= s.length) this.fail(`# ${kw} without a metric name`);
    const name = this.metricNameToken(`# ${kw}`);
    let rest = "";
    if (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09) this.fail(`# ${kw} ${excerpt(name)}: unexpected ${excerpt(s.slice(this.i, this.i + 1))} after the name`);
      this.i++;
      rest = s.slice(this.i);
    }
    switch (kw) {
      case "HELP": {
        const m = this.family(name);
        if (m) m.help = unescapeHelp(rest, this.opts.openMetrics === true);
        break;
      }
      case "TYPE": {
        const t = rest.trim();
        if (!METRIC_TYPES.has(t)) this.fail(`# TYPE ${excerpt(name)}: invalid metric type ${excerpt(t)}`);
        const m = this.family(name);
        if (m) m.type = t as MetricType;
        this.lastType = t as MetricType;
        break;
      }
      case "UNIT": {
        const m = this.family(name);
        if (m) m.unit = rest.trim();
        break;
      }
    }
  }

  private family(name: string): MutableMeta | undefined {
    let m = this.meta.get(name);
    if (m === undefined) {
      if (this.meta.size >= (this.opts.maxMetadata ?? 10_000)) return undefined;
      m = { type: "unknown", help: "", unit: "" };
      this.meta.set(name, m);
    }
    return m;
  }

  // ---- samples ------------------------------------------------------------------------------

  private sample(): void {
    const s = this.s;
    const labels = this.labels;
    labels.length = 0;
    let name = "";
    if (s.charCodeAt(this.i) !== 0x7b /* { */) {
      name = this.metricNameToken("metric name");
      // Prometheus accepts blanks between the name and the label set: `m {a="b"} 1`.
      const afterName = this.i;
      this.skipSpace();
      if (s.charCodeAt(this.i) !== 0x7b) this.i = afterName;
    }
    if (s.charCodeAt(this.i) === 0x7b) {
      name = this.labelSet(name);
    }
    if (name === "") this.fail("missing metric name");
    labels.push({ name: METRIC_NAME_LABEL, value: name });
    if (!this.expectSpace()) this.fail(`missing value after ${excerpt(name)}`);
    const value = this.valueToken(name);
    let ts = this.defaultTs;
    if (this.skipSpaceAny() && this.i < s.length && s.charCodeAt(this.i) !== 0x23) {
      ts = this.timestampToken();
      this.skipSpace();
    }
    if (this.i < s.length) {
      if (s.charCodeAt(this.i) !== 0x23) this.fail(`unexpected ${excerpt(s.slice(this.i))} after the sample`);
      // An exemplar (` # {…} value [ts]`): ignored.
    }
    if (this.opts.openMetrics && this.isCreated(name)) {
      if (this.opts.onCreated) this.opts.onCreated(labels, value * 1000);
      return;
    }
    applyExtraLabels(labels, this.opts.extraLabels);
    this.sink.series(labels);
    this.sink.sample(ts, value);
    this.rowsRead++;
  }

  private isCreated(name: string): boolean {
    if (!name.endsWith("_created")) return false;
    const fam = this.meta.get(name.slice(0, -"_created".length));
    return fam !== undefined && CREATED_TYPES.has(fam.type);
  }

  /**
   * OpenMetrics writes `quantile` (summaries) and `le` (histograms) as floats; Prometheus
   * normalizes them so `le="1"` and `le="1.0"` are one series: Go 'g' formatting with ".0"
   * added to integers.
   */
  private normalizeFloatLabel(name: string, value: string): string {
    if (!((name === "le" && this.lastType === "histogram") || (name === "quantile" && this.lastType === "summary"))) return value;
    const f = parseFloatStrict(value);
    if (f === undefined) return value;
    const s = formatPromFloat(f);
    return /^-?\d+$/.test(s) ? `${s}.0` : s;
  }

  /** `{` already at the cursor. Fills `this.labels`; returns the metric name (quoted form may set it). */
  private labelSet(name: string): string {
    const s = this.s;
    this.i++; // {
    let first = true;
    for (;;) {
      this.skipSpace();
      if (this.i >= s.length) this.fail("unterminated label set: missing }");
      const c = s.charCodeAt(this.i);
      if (c === 0x7d /* } */) {
        this.i++;
        return name;
      }
      let lname: string;
      if (c === 0x22 /* " */) {
        lname = this.quoted("label name");
        this.skipSpace();
        const next = s.charCodeAt(this.i);
        if (next === 0x2c /* , */ || next === 0x7d) {
          // A quoted metric name inside the braces: {"my.metric", a="b"}.
          if (!first || name !== "") this.fail(`quoted metric name ${excerpt(lname)} must come first, without a name before {`);
          name = lname;
          if (lname === "") this.fail("empty metric name");
          if (next === 0x2c) this.i++;
          first = false;
          continue;
        }
      } else {
        lname = this.labelNameToken();
      }
      this.skipSpace();
      if (s.charCodeAt(this.i) !== 0x3d /* = */) {
        this.fail(`label ${excerpt(lname)}: expected = after the label name, got ${excerpt(s.slice(this.i, this.i + 8))}`);
      }
      this.i++;
      this.skipSpace();
      if (s.charCodeAt(this.i) !== 0x22) this.fail(`label ${excerpt(lname)}: the value must be a quoted string`);
      const value = this.quoted("value of label ", lname);
      if (lname === METRIC_NAME_LABEL) this.fail("label __name__ is not allowed in a label set");
      this.labels.push({ name: lname, value: this.opts.openMetrics ? this.normalizeFloatLabel(lname, value) : value });
      first = false;
      this.skipSpace();
      const sep = s.charCodeAt(this.i);
      if (sep === 0x2c) {
        this.i++;
        continue;
      }
      // Prometheus' text parser also takes labels separated by blanks only (`{a="1" b="2"}`).
      if (sep !== 0x7d && !(this.i > 0 && isBlank(s.charCodeAt(this.i - 1)) && isNameChar(sep, true, false))) {
        this.fail(`expected , or } after label ${excerpt(lname)}, got ${excerpt(s.slice(this.i, this.i + 8))}`);
      }
    }
  }

  /**
   * A quoted string at the cursor with text-format escapes `\\`, `\"`, `\n`. Errors name
   * `what` followed by the quoted `subject` (built only on failure: this is the hot path).
   */
  private quoted(what: string, subject?: string): string {
    const s = this.s;
    const start = ++this.i;
    let out = "";
    let from = start;
    for (;;) {
      if (this.i >= s.length) this.fail(`${what}${subject === undefined ? "" : excerpt(subject)}: unterminated quoted string`);
      const c = s.charCodeAt(this.i);
      if (c === 0x22) {
        out += s.slice(from, this.i);
        this.i++;
        return out;
      }
      if (c === 0x5c /* \ */) {
        out += s.slice(from, this.i);
        const e = s.charCodeAt(this.i + 1);
        if (e === 0x5c) out += "\\";
        else if (e === 0x22) out += '"';
        else if (e === 0x6e) out += "\n";
        else if (this.i + 1 >= s.length) this.fail(`${what}${subject === undefined ? "" : excerpt(subject)}: unterminated quoted string`);
        else out += s.slice(this.i, this.i + 2); // unknown escapes stay as written (Prometheus)
        this.i += 2;
        from = this.i;
        continue;
      }
      this.i++;
    }
  }

  private metricNameToken(what: string): string {
    const s = this.s;
    if (s.charCodeAt(this.i) === 0x22) {
      const q = this.quoted(what);
      if (q === "") this.fail(`${what}: empty name`);
      return q;
    }
    const start = this.i;
    while (this.i < s.length && isNameChar(s.charCodeAt(this.i), this.i === start, true)) this.i++;
    if (this.i === start) this.fail(`${what}: invalid character ${excerpt(s.slice(start, start + 1))}`);
    return s.slice(start, this.i);
  }

  private labelNameToken(): string {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length && isNameChar(s.charCodeAt(this.i), this.i === start, false)) this.i++;
    if (this.i === start) this.fail(`invalid label name starting at ${excerpt(s.slice(start, start + 8))}`);
    return s.slice(start, this.i);
  }

  private valueToken(name: string): number {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length && s.charCodeAt(this.i) !== 0x20 && s.charCodeAt(this.i) !== 0x09) this.i++;
    const tok = s.slice(start, this.i);
    const v = parseFloatStrict(tok);
    if (v === undefined) this.fail(`invalid value ${excerpt(tok)} for ${excerpt(name)}`);
    return v;
  }

  private timestampToken(): number {
    const s = this.s;
    const start = this.i;
    while (this.i < s.length && s.charCodeAt(this.i) !== 0x20 && s.charCodeAt(this.i) !== 0x09) this.i++;
    const tok = s.slice(start, this.i);
    if (this.opts.openMetrics) {
      const v = parseFloatStrict(tok);
      if (v === undefined || !Number.isFinite(v)) this.fail(`invalid timestamp ${excerpt(tok)}: want seconds`);
      const ms = Math.round(v * 1000);
      if (!Number.isSafeInteger(ms)) this.fail(`timestamp ${excerpt(tok)} out of range`);
      return ms;
    }
    if (!/^[+-]?\d+$/.test(tok)) this.fail(`invalid timestamp ${excerpt(tok)}: want integer milliseconds`);
    const ms = Number(tok);
    if (!Number.isSafeInteger(ms)) this.fail(`timestamp ${excerpt(tok)} out of range`);
    return ms;
  }

  private skipSpace(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09) break;
      this.i++;
    }
  }

  /** Skips blanks; true if at least one was skipped or the line ended. */
  private skipSpaceAny(): boolean {
    const before = this.i;
    this.skipSpace();
    return this.i > before || this.i >= this.s.length;
  }

  private expectSpace(): boolean {
    const before = this.i;
    this.skipSpace();
    return this.i > before;
  }
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function isNameChar(c: number, first: boolean, colon: boolean): boolean {
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f) return true;
  if (colon && c === 0x3a) return true;
  return !first && c >= 0x30 && c <= 0x39;
}

function unescapeHelp(s: string, openMetrics: boolean): string {
  if (!s.includes("\\")) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== "\\" || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[i + 1]!;
    if (e === "\\") out += "\\";
    else if (e === "n") out += "\n";
    else if (e === '"' && openMetrics) out += '"';
    else out += c + e;
    i++;
  }
  return out;
}
