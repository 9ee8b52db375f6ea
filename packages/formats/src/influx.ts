import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL } from "@strata/core";
import type { CommonParseOptions, RowSink, StreamParser } from "./common.js";
import { DEFAULT_MAX_LINE_BYTES, applyExtraLabels, excerpt, parseError, truncDigits } from "./common.js";
import { parseFloatStrict } from "./floats.js";
import { LineSplitter } from "./lines.js";

export type InfluxPrecision = "ns" | "us" | "ms" | "s" | "m" | "h";

export interface InfluxOptions extends CommonParseOptions {
  /** The `precision` parameter (v1: n, u, ms, s, m, h; v2: ns, us, ms, s). Default ns. */
  readonly precision?: InfluxPrecision;
  /** The `db` (v1) or `bucket` (v2) parameter, added as label `dbLabel` unless a tag has that name. */
  readonly db?: string;
  /** Name of the db label (VictoriaMetrics -influxDBLabel, default "db"). */
  readonly dbLabel?: string;
  /** Between measurement and field in metric names (-influxMeasurementFieldSeparator, default "_"). */
  readonly measurementFieldSeparator?: string;
  /** Use the field name alone as the metric name (-influxSkipMeasurement). */
  readonly skipMeasurement?: boolean;
  /** Use the measurement alone for a line's only field (-influxSkipSingleField). */
  readonly skipSingleField?: boolean;
}

/** Maps the `precision` query parameter of /write (v1) and /api/v2/write to a unit. */
export function parseInfluxPrecision(p: string | null | undefined): InfluxPrecision {
  switch (p ?? "") {
    case "":
    case "n":
    case "ns":
      return "ns";
    case "u":
    case "us":
    case "µ":
    case "µs":
      return "us";
    case "ms":
      return "ms";
    case "s":
      return "s";
    case "m":
      return "m";
    case "h":
      return "h";
    default:
      throw parseError("influx", "parameter precision", `unsupported precision ${excerpt(p ?? "")}`);
  }
}

const MULT: Record<InfluxPrecision, number> = { ns: 0, us: 0, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * InfluxDB line protocol: `measurement[,tag=v…] field=value[,field=value…] [timestamp]`.
 * Each numeric or boolean field becomes a sample of `<measurement><sep><field>` with the tags
 * as labels; string fields are skipped, as VictoriaMetrics does. Escapes `\,` `\ ` `\=` `\\`
 * in names and tags, `\"` `\\` in string fields. Timestamps are converted to milliseconds
 * (truncated toward zero for ns and us).
 */
export class InfluxParser implements StreamParser {
  rowsRead = 0;
  private readonly lines: LineSplitter;
  private readonly labels: Label[] = [];
  private readonly fieldNames: string[] = [];
  private readonly fieldValues: number[] = [];
  private readonly defaultTs: number;
  private readonly sep: string;
  private readonly dbLabel: string;
  private n = 0;

  constructor(
    private readonly sink: RowSink,
    private readonly opts: InfluxOptions = {},
  ) {
    this.defaultTs = opts.defaultTimestampMs ?? Date.now();
    this.sep = opts.measurementFieldSeparator ?? "_";
    this.dbLabel = opts.dbLabel ?? "db";
    this.lines = new LineSplitter("influx", opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l, n) => this.line(l, n), opts.onInvalidLine);
  }

  write(chunk: Uint8Array): void {
    this.lines.write(chunk);
  }

  end(): void {
    this.lines.end();
  }

  private fail(what: string): never {
    throw parseError("influx", `line ${this.n}`, what);
  }

  private line(s: string, n: number): void {
    this.n = n;
    // Blank lines and `#` comments are skipped; a leading blank is an empty measurement
    // (VictoriaMetrics: " f=1" is the metric "f").
    let i = 0;
    let k = 0;
    while (k < s.length && (s.charCodeAt(k) === 0x20 || s.charCodeAt(k) === 0x09)) k++;
    if (k >= s.length || s.charCodeAt(0) === 0x23 /* # */) return;
    const labels = this.labels;
    labels.length = 1; // slot 0: __name__
    // measurement
    const mStart = i;
    let escaped = false;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 0x5c) {
        escaped = true;
        i += 2;
        continue;
      }
      if (c === 0x2c || c === 0x20) break;
      i++;
    }
    if (i > s.length) i = s.length;
    const measurement = unescape(s.slice(mStart, i), escaped);
    if (i >= s.length) this.fail(`missing fields after measurement ${excerpt(measurement)}`);
    // tags
    let hasDbTag = false;
    while (s.charCodeAt(i) === 0x2c) {
      i++;
      const kStart = i;
      let kEsc = false;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x5c) {
          kEsc = true;
          i += 2;
          continue;
        }
        if (c === 0x3d || c === 0x2c || c === 0x20) break;
        i++;
      }
      if (s.charCodeAt(i) !== 0x3d) this.fail(`tag ${excerpt(s.slice(kStart, i))}: missing =`);
      const key = unescape(s.slice(kStart, i), kEsc);
      i++;
      const vStart = i;
      let vEsc = false;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x5c) {
          vEsc = true;
          i += 2;
          continue;
        }
        if (c === 0x2c || c === 0x20) break;
        i++;
      }
      if (i > s.length) i = s.length;
      const value = unescape(s.slice(vStart, i), vEsc);
      // VictoriaMetrics skips tags with an empty key (`=x`) or value (`k=`).
      if (key === "" || value === "") continue;
      if (key === this.dbLabel) hasDbTag = true;
      labels.push({ name: key, value });
    }
    if (s.charCodeAt(i) !== 0x20) this.fail(`missing fields after measurement ${excerpt(measurement)}`);
    while (s.charCodeAt(i) === 0x20) i++;
    // fields
    const names = this.fieldNames;
    const values = this.fieldValues;
    names.length = 0;
    values.length = 0;
    for (;;) {
      const kStart = i;
      let kEsc = false;
      while (i < s.length) {
        const c = s.charCodeAt(i);
        if (c === 0x5c) {
          kEsc = true;
          i += 2;
          continue;
        }
        if (c === 0x3d || c === 0x2c || c === 0x20) break;
        i++;
      }
      if (s.charCodeAt(i) !== 0x3d) this.fail(`field ${excerpt(s.slice(kStart, i))}: missing =`);
      const key = unescape(s.slice(kStart, i), kEsc);
      if (key === "") this.fail("empty field key");
      i++;
      if (s.charCodeAt(i) === 0x22) {
        // A string field: skipped, but it must be well formed.
        i++;
        for (;;) {
          if (i >= s.length) this.fail(`field ${excerpt(key)}: unterminated string`);
          const c = s.charCodeAt(i);
          if (c === 0x5c) {
            i += 2;
            continue;
          }
          i++;
          if (c === 0x22) break;
        }
      } else {
        const vStart = i;
        while (i < s.length && s.charCodeAt(i) !== 0x2c && s.charCodeAt(i) !== 0x20) i++;
        const tok = s.slice(vStart, i);
        const v = fieldValue(tok);
        if (v === undefined) this.fail(`field ${excerpt(key)}: invalid value ${excerpt(tok)}`);
        names.push(key);
        values.push(v);
      }
      if (s.charCodeAt(i) === 0x2c) {
        i++;
        continue;
      }
      break;
    }
    let ts = this.defaultTs;
    if (i < s.length) {
      if (s.charCodeAt(i) !== 0x20) this.fail(`unexpected ${excerpt(s.slice(i, i + 16))} after the fields`);
      while (s.charCodeAt(i) === 0x20) i++;
      if (i < s.length) {
        const tStart = i;
        while (i < s.length && s.charCodeAt(i) !== 0x20) i++;
        ts = this.timestamp(s.slice(tStart, i));
        while (s.charCodeAt(i) === 0x20) i++;
        if (i < s.length) this.fail(`unexpected ${excerpt(s.slice(i, i + 16))} after the timestamp`);
      }
    }
    if (this.opts.db !== undefined && this.opts.db !== "" && !hasDbTag) {
      labels.push({ name: this.dbLabel, value: this.opts.db });
    }
    applyExtraLabels(labels, this.opts.extraLabels);
    for (let f = 0; f < names.length; f++) {
      labels[0] = { name: METRIC_NAME_LABEL, value: this.metricName(measurement, names[f]!, names.length) };
      this.sink.series(labels);
      this.sink.sample(ts, values[f]!);
      this.rowsRead++;
    }
  }

  private metricName(measurement: string, field: string, nFields: number): string {
    if (this.opts.skipSingleField && nFields === 1 && measurement !== "") return measurement;
    if (this.opts.skipMeasurement || measurement === "") return field;
    return measurement + this.sep + field;
  }

  private timestamp(tok: string): number {
    if (!/^-?\d+$/.test(tok)) this.fail(`invalid timestamp ${excerpt(tok)}`);
    const p = this.opts.precision ?? "ns";
    let ms: number;
    if (p === "ns" || p === "us") {
      ms = truncDigits(tok, p === "ns" ? 6 : 3);
    } else {
      ms = Number(tok) * MULT[p];
    }
    if (!Number.isSafeInteger(ms)) this.fail(`timestamp ${excerpt(tok)} out of range`);
    return ms;
  }
}

function unescape(s: string, escaped: boolean): string {
  if (!escaped) return s;
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    if (i + 1 >= s.length) {
      out += c;
      break;
    }
    const e = s[i + 1]!;
    if (e !== " " && e !== "," && e !== "=" && e !== "\\") out += c;
    out += e;
    i++;
  }
  return out;
}

function fieldValue(tok: string): number | undefined {
  if (tok.length === 0) return undefined;
  switch (tok) {
    case "t":
    case "T":
    case "true":
    case "True":
    case "TRUE":
      return 1;
    case "f":
    case "F":
    case "false":
    case "False":
    case "FALSE":
      return 0;
  }
  const last = tok.charCodeAt(tok.length - 1);
  if (last === 0x69 /* i */) {
    const d = tok.slice(0, -1);
    return /^[+-]?\d+$/.test(d) ? Number(d) : undefined;
  }
  if (last === 0x75 /* u */) {
    const d = tok.slice(0, -1);
    return /^\d+$/.test(d) ? Number(d) : undefined;
  }
  return parseFloatStrict(tok);
}
