import { BadDataError, METRIC_NAME_LABEL } from "@strata/core";
import type { Label } from "@strata/core";
import type { CommonParseOptions, RowSink, StreamParser } from "./common.js";
import { DEFAULT_MAX_LINE_BYTES, applyExtraLabels, excerpt, parseError, truncDigits } from "./common.js";
import { parseFloatStrict } from "./floats.js";
import { LineSplitter } from "./lines.js";
import { compileGoLayout, parseGoTime, parseRfc3339 } from "./timefmt.js";

export type CsvTimeFormat =
  | { readonly kind: "unix_s" | "unix_ms" | "unix_ns" | "rfc3339" }
  | { readonly kind: "custom"; readonly layout: string };

export type CsvColumn =
  | { readonly col: number; readonly kind: "metric"; readonly name: string }
  | { readonly col: number; readonly kind: "label"; readonly name: string }
  | { readonly col: number; readonly kind: "time"; readonly time: CsvTimeFormat };

/** A parsed `format=` parameter. Column numbers are 1-based, as written. */
export interface CsvFormat {
  readonly columns: readonly CsvColumn[];
}

/**
 * Parses the VictoriaMetrics CSV `format` parameter:
 * `1:label:ticker,2:metric:ask,3:metric:bid,4:time:rfc3339` (time: unix_s, unix_ms, unix_ns,
 * rfc3339, custom:<Go layout>). At least one metric column; at most one time column.
 */
export function parseCsvFormat(spec: string): CsvFormat {
  function bad(what: string): never {
    throw new BadDataError(`csv: format parameter: ${what}`, "STRATA_PARSE_ERROR");
  }
  if (spec === "") bad("empty; want e.g. 1:metric:name,2:label:job,3:time:unix_s");
  const columns: CsvColumn[] = [];
  const seen = new Set<number>();
  let times = 0;
  let metrics = 0;
  // Custom layouts may contain commas only inside the last item; split on "," otherwise.
  const items = splitSpec(spec);
  for (const item of items) {
    const m = /^(\d+):(metric|label|time):(.*)$/s.exec(item);
    if (m === null) bad(`${excerpt(item)}: want <column>:metric|label|time:<name or time format>`);
    const col = Number(m[1]);
    if (col < 1 || !Number.isSafeInteger(col)) bad(`${excerpt(item)}: column numbers start at 1`);
    if (seen.has(col)) bad(`column ${col} is described twice`);
    seen.add(col);
    const rest = m[3]!;
    switch (m[2]) {
      case "metric":
        if (rest === "") bad(`${excerpt(item)}: empty metric name`);
        columns.push({ col, kind: "metric", name: rest });
        metrics++;
        break;
      case "label":
        if (rest === "") bad(`${excerpt(item)}: empty label name`);
        if (rest === METRIC_NAME_LABEL) bad(`${excerpt(item)}: use a metric column for __name__`);
        columns.push({ col, kind: "label", name: rest });
        break;
      default: {
        times++;
        let time: CsvTimeFormat;
        if (rest === "unix_s" || rest === "unix_ms" || rest === "unix_ns" || rest === "rfc3339") time = { kind: rest };
        else if (rest.startsWith("custom:") && rest.length > 7) time = { kind: "custom", layout: rest.slice(7) };
        else bad(`${excerpt(item)}: unknown time format; want unix_s, unix_ms, unix_ns, rfc3339 or custom:<layout>`);
        columns.push({ col, kind: "time", time });
      }
    }
  }
  if (metrics === 0) bad("no metric column");
  if (times > 1) bad("more than one time column");
  return { columns };
}

function splitSpec(spec: string): string[] {
  // An item starts at `<digits>:(metric|label|time):`; commas elsewhere belong to a layout.
  const out: string[] = [];
  const parts = spec.split(",");
  for (const p of parts) {
    if (out.length > 0 && !/^\d+:(metric|label|time):/.test(p) && /^\d+:time:custom:/.test(out[out.length - 1]!)) {
      out[out.length - 1] += `,${p}`;
    } else {
      out.push(p);
    }
  }
  return out;
}

export interface CsvOptions extends CommonParseOptions {
  readonly format: CsvFormat;
}

/**
 * CSV import (`/api/v1/import/csv?format=…`): one row per line, fields separated by `,`,
 * fields may be quoted with `"` (a `""` inside is a quote). Every metric column gives a sample
 * named by its metric name, labelled with every label column. Empty metric cells are skipped;
 * empty label cells mean the label is absent. Quoted fields cannot span lines.
 */
export class CsvParser implements StreamParser {
  rowsRead = 0;
  private readonly lines: LineSplitter;
  private readonly labels: Label[] = [];
  private readonly fields: string[] = [];
  private readonly defaultTs: number;
  private readonly layout: ReturnType<typeof compileGoLayout> | undefined;
  private readonly maxCol: number;
  private readonly timeCol: (CsvColumn & { kind: "time" }) | undefined;

  constructor(
    private readonly sink: RowSink,
    private readonly opts: CsvOptions,
  ) {
    this.defaultTs = opts.defaultTimestampMs ?? Date.now();
    let maxCol = 0;
    let timeCol: (CsvColumn & { kind: "time" }) | undefined;
    for (const c of opts.format.columns) {
      maxCol = Math.max(maxCol, c.col);
      if (c.kind === "time") timeCol = c;
    }
    this.maxCol = maxCol;
    this.timeCol = timeCol;
    this.layout = timeCol?.time.kind === "custom" ? compileGoLayout(timeCol.time.layout) : undefined;
    this.lines = new LineSplitter("csv", opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l, n) => this.line(l, n), opts.onInvalidLine);
  }

  write(chunk: Uint8Array): void {
    this.lines.write(chunk);
  }

  end(): void {
    this.lines.end();
  }

  private line(s: string, n: number): void {
    if (s.trim() === "") return;
    function fail(what: string): never {
      throw parseError("csv", `line ${n}`, what);
    }
    const fields = this.fields;
    if (!splitCsv(s, fields)) fail("unterminated quoted field");
    if (fields.length < this.maxCol) fail(`${fields.length} columns, the format needs ${this.maxCol}`);
    let ts = this.defaultTs;
    if (this.timeCol !== undefined) {
      const raw = fields[this.timeCol.col - 1]!;
      const t = this.parseTime(raw);
      if (t === undefined) fail(`column ${this.timeCol.col}: invalid ${describeTime(this.timeCol.time)} timestamp ${excerpt(raw)}`);
      ts = t;
    }
    const labels = this.labels;
    labels.length = 1;
    for (const c of this.opts.format.columns) {
      if (c.kind === "label") labels.push({ name: c.name, value: fields[c.col - 1]! });
    }
    applyExtraLabels(labels, this.opts.extraLabels);
    // Validate all values of the line before emitting any.
    for (const c of this.opts.format.columns) {
      if (c.kind !== "metric") continue;
      const raw = fields[c.col - 1]!;
      if (raw !== "" && parseFloatStrict(raw) === undefined) fail(`column ${c.col}: invalid value ${excerpt(raw)} for metric ${excerpt(c.name)}`);
    }
    for (const c of this.opts.format.columns) {
      if (c.kind !== "metric") continue;
      const raw = fields[c.col - 1]!;
      if (raw === "") continue;
      labels[0] = { name: METRIC_NAME_LABEL, value: c.name };
      this.sink.series(labels);
      this.sink.sample(ts, parseFloatStrict(raw)!);
      this.rowsRead++;
    }
  }

  private parseTime(raw: string): number | undefined {
    const f = this.timeCol!.time;
    let ms: number | undefined;
    switch (f.kind) {
      case "unix_s": {
        const v = parseFloatStrict(raw);
        ms = v === undefined ? undefined : Math.round(v * 1000);
        break;
      }
      case "unix_ms": {
        const v = parseFloatStrict(raw);
        ms = v === undefined ? undefined : Math.round(v);
        break;
      }
      case "unix_ns":
        ms = /^-?\d+$/.test(raw) ? truncDigits(raw, 6) : undefined;
        break;
      case "rfc3339":
        ms = parseRfc3339(raw);
        break;
      case "custom":
        ms = parseGoTime(this.layout!, raw);
        break;
    }
    return ms !== undefined && Number.isSafeInteger(ms) ? ms : undefined;
  }
}

function describeTime(f: CsvTimeFormat): string {
  return f.kind === "custom" ? `custom:${f.layout}` : f.kind;
}

/** Splits a CSV line into `out`; false for an unterminated quote. */
function splitCsv(s: string, out: string[]): boolean {
  out.length = 0;
  let i = 0;
  for (;;) {
    if (s.charCodeAt(i) === 0x22) {
      let v = "";
      i++;
      for (;;) {
        const q = s.indexOf('"', i);
        if (q < 0) return false;
        v += s.slice(i, q);
        if (s.charCodeAt(q + 1) === 0x22) {
          v += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      // Text after the closing quote up to the comma is kept (lenient, like VictoriaMetrics).
      const comma = s.indexOf(",", i);
      const end = comma < 0 ? s.length : comma;
      out.push(v + s.slice(i, end));
      if (comma < 0) return true;
      i = comma + 1;
    } else {
      const comma = s.indexOf(",", i);
      if (comma < 0) {
        out.push(s.slice(i));
        return true;
      }
      out.push(s.slice(i, comma));
      i = comma + 1;
    }
  }
}
