import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL } from "@strata/core";
import type { CommonParseOptions, RowSink, StreamParser } from "./common.js";
import { DEFAULT_MAX_LINE_BYTES, applyExtraLabels, excerpt, parseError } from "./common.js";
import { STALE_NAN, formatShortest, isStaleNaN, parseFloatStrict } from "./floats.js";
import { LineSplitter } from "./lines.js";

/**
 * JSON lines, the format of `/api/v1/import` and `/api/v1/export` (VictoriaMetrics):
 *
 *   {"metric":{"__name__":"up","job":"a"},"values":[1,0.5,null,"Infinity"],"timestamps":[1700000000000,…]}
 *
 * Values: JSON numbers; `null` is the Prometheus stale marker; the strings "NaN", "Inf",
 * "+Inf", "-Inf", "Infinity", "-Infinity" (any case) and numeric strings are accepted, and so
 * are the bare tokens NaN/+Inf/-Inf that VictoriaMetrics' exporter writes. Timestamps are
 * integer milliseconds. Empty lines are skipped.
 */
export class JsonLinesParser implements StreamParser {
  rowsRead = 0;
  private readonly lines: LineSplitter;
  private readonly labels: Label[] = [];
  private vals = new Float64Array(256);

  constructor(
    private readonly sink: RowSink,
    private readonly opts: CommonParseOptions = {},
  ) {
    this.lines = new LineSplitter("jsonline", opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, (l, n) => this.line(l, n), opts.onInvalidLine);
  }

  write(chunk: Uint8Array): void {
    this.lines.write(chunk);
  }

  end(): void {
    this.lines.end();
  }

  private line(line: string, n: number): void {
    if (isBlank(line)) return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      // VictoriaMetrics' exporter writes NaN and ±Inf as bare tokens (not JSON): accept those.
      const fixed = line.includes("NaN") || line.includes("Inf") ? line.replace(BARE_SPECIAL, '$1"$2"') : line;
      try {
        if (fixed === line) throw err;
        obj = JSON.parse(fixed);
      } catch {
        const msg = err instanceof Error ? err.message : String(err);
        throw parseError("jsonline", `line ${n}`, `invalid JSON: ${msg}`);
      }
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
      throw parseError("jsonline", `line ${n}`, "want a JSON object");
    }
    const rec = obj as Record<string, unknown>;
    const metric = rec["metric"];
    if (typeof metric !== "object" || metric === null || Array.isArray(metric)) {
      throw parseError("jsonline", `line ${n}`, 'missing or invalid "metric" object');
    }
    const values = rec["values"];
    const timestamps = rec["timestamps"];
    if (!Array.isArray(values)) throw parseError("jsonline", `line ${n}`, 'missing or invalid "values" array');
    if (!Array.isArray(timestamps)) throw parseError("jsonline", `line ${n}`, 'missing or invalid "timestamps" array');
    if (values.length !== timestamps.length) {
      throw parseError(
        "jsonline",
        `line ${n}`,
        `"values" has ${values.length} items but "timestamps" has ${timestamps.length}`,
      );
    }
    const labels = this.labels;
    labels.length = 0;
    for (const name in metric) {
      const v = (metric as Record<string, unknown>)[name];
      if (typeof v !== "string") {
        throw parseError("jsonline", `line ${n}`, `value of label ${excerpt(name)} is not a string`);
      }
      labels.push({ name, value: v });
    }
    if (!labels.some((l) => l.name === METRIC_NAME_LABEL && l.value !== "")) {
      throw parseError("jsonline", `line ${n}`, 'missing "__name__" in "metric"');
    }
    applyExtraLabels(labels, this.opts.extraLabels);
    if (values.length === 0) return;
    // Validate every sample before emitting any so a bad line adds nothing.
    for (let i = 0; i < values.length; i++) {
      const t: unknown = timestamps[i];
      if (typeof t !== "number" || !Number.isSafeInteger(t)) {
        throw parseError("jsonline", `line ${n}`, `timestamps[${i}]: want an integer (milliseconds), got ${excerpt(JSON.stringify(t) ?? "undefined")}`);
      }
    }
    // Values go through a Float64Array: it keeps the stale marker's bits (a JS array would not).
    if (this.vals.length < values.length) this.vals = new Float64Array(Math.max(values.length, this.vals.length * 2));
    const vals = this.vals;
    for (let i = 0; i < values.length; i++) {
      const v = jsonValue(values[i]);
      if (v === undefined) {
        throw parseError("jsonline", `line ${n}`, `values[${i}]: not a number: ${excerpt(JSON.stringify(values[i]) ?? "undefined")}`);
      }
      vals[i] = v;
    }
    this.sink.series(labels);
    for (let i = 0; i < values.length; i++) {
      this.sink.sample(timestamps[i] as number, vals[i]!);
      this.rowsRead++;
    }
  }
}

const BARE_SPECIAL = /([[,]\s*)([+-]?(?:NaN|Inf(?:inity)?))(?=\s*[,\]])/g;

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

function jsonValue(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v === null) return STALE_NAN;
  if (typeof v === "string") return parseFloatStrict(v);
  return undefined;
}

// ---- writer ---------------------------------------------------------------------------------

/**
 * A JSON value for a sample: the shortest decimal that parses back to the same double, `-0`
 * kept, `null` for the stale marker, `"NaN"` for any other NaN (its payload is not kept),
 * `"Infinity"`/`"-Infinity"` as VictoriaMetrics writes them.
 */
export function jsonSampleValue(v: number): string {
  if (v !== v) return isStaleNaN(v) ? "null" : '"NaN"';
  if (v === Infinity) return '"Infinity"';
  if (v === -Infinity) return '"-Infinity"';
  if (v === 0 && Object.is(v, -0)) return "-0";
  return formatShortest(v);
}

/**
 * One export line (with the trailing `\n`) for a series: `__name__` first, then the other
 * labels in the given order; `count` samples from the arrays (typed arrays are fine).
 */
export function formatJsonLine(
  labels: readonly Label[],
  timestamps: ArrayLike<number>,
  values: ArrayLike<number>,
  count: number = timestamps.length,
): string {
  let s = '{"metric":{';
  let first = true;
  for (const l of labels) {
    if (l.name !== METRIC_NAME_LABEL) continue;
    s += `${JSON.stringify(l.name)}:${JSON.stringify(l.value)}`;
    first = false;
  }
  for (const l of labels) {
    if (l.name === METRIC_NAME_LABEL) continue;
    s += `${first ? "" : ","}${JSON.stringify(l.name)}:${JSON.stringify(l.value)}`;
    first = false;
  }
  s += '},"values":[';
  for (let i = 0; i < count; i++) s += (i === 0 ? "" : ",") + jsonSampleValue(values[i]!);
  s += '],"timestamps":[';
  for (let i = 0; i < count; i++) s += (i === 0 ? "" : ",") + String(timestamps[i]!);
  return `${s}]}\n`;
}
