import { BadDataError, normalizeLabels, STALE_NAN_ARRAY, type Label } from "@strata/core";
import { tokenize } from "../parser/lexer.js";
import { unquote } from "../parser/strings.js";

/**
 * Series notation of Prometheus' test scripts and `promtool test rules`:
 * `metric{a="b"} 0+10x5 1 _ _x3 stale NaN Inf -Inf 1x3 {{schema:0 sum:1 count:2}}`.
 */

/** One point of an expanded sequence. */
export interface SequenceValue {
  /** `_`: no sample at this step. */
  readonly omitted: boolean;
  /** The float (NaN for `stale` and for histogram points). */
  readonly value: number;
  /**
   * A stale marker. Kept as a flag: V8 canonicalizes NaN payloads in plain JS number arrays,
   * so the marker's bit pattern only survives in typed arrays (see SCRIPT_STALE_NAN).
   */
  readonly stale: boolean;
  /** The `{{…}}` text of a native histogram point (not supported by the engine yet). */
  readonly histogram: string | undefined;
}

export interface SeriesDesc {
  /** Normalized (sorted) labels, `__name__` included when given. */
  readonly labels: readonly Label[];
  readonly values: readonly SequenceValue[];
  /** True when any point is a native histogram. */
  readonly hasHistogram: boolean;
  /** `metric@st` lines (start timestamps, Prometheus 3.14) are not supported. */
  readonly startTimestamps: boolean;
}

const NUM = String.raw`(?:[+-]?(?:Inf|inf|NaN|nan|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?))`;
const ITEM = new RegExp(`^(${NUM})(?:(${NUM})?x(\\d+))?$`);

/** Go's strconv.ParseFloat for the spellings the scripts use. */
export function parseScriptNumber(s: string): number | undefined {
  const t = s.trim();
  if (!new RegExp(`^${NUM}$`).test(t)) return undefined;
  const body = t.replace(/^[+-]/, "").toLowerCase();
  const neg = t.startsWith("-");
  if (body === "inf") return neg ? -Infinity : Infinity;
  if (body === "nan") return NaN;
  return Number(t);
}

/** The stale marker: a NaN with the bit pattern 0x7ff0000000000002 (copy it with typed arrays). */
export const STALE_MARKER_BITS: Float64Array = STALE_NAN_ARRAY;
const SCRIPT_STALE_NAN: number = STALE_MARKER_BITS[0]!;

const OMITTED: SequenceValue = Object.freeze({ omitted: true, value: NaN, stale: false, histogram: undefined });

/** Splits the values part into items, keeping `{{…}}` (which contain spaces) together. */
function splitItems(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    let j = i;
    while (j < s.length && !/\s/.test(s[j]!)) {
      if (s.startsWith("{{", j)) {
        const end = s.indexOf("}}", j + 2);
        if (end < 0) throw new BadDataError(`unterminated native histogram in ${JSON.stringify(s)}`);
        j = end + 2;
      } else j++;
    }
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
}

/** Expands the values part of a series line. */
export function parseSequence(s: string): SequenceValue[] {
  const out: SequenceValue[] = [];
  for (const item of splitItems(s)) {
    if (item === "_") {
      out.push(OMITTED);
      continue;
    }
    const blank = /^_x(\d+)$/.exec(item);
    if (blank) {
      for (let j = 0; j < Number(blank[1]); j++) out.push(OMITTED);
      continue;
    }
    if (item === "stale") {
      out.push({ omitted: false, value: SCRIPT_STALE_NAN, stale: true, histogram: undefined });
      continue;
    }
    if (item.startsWith("{{")) {
      const rep = /x(\d+)$/.exec(item);
      const n = rep && item.endsWith("}}" + rep[0]) ? Number(rep[1]) + 1 : 1;
      for (let j = 0; j < n; j++) out.push({ omitted: false, value: NaN, stale: false, histogram: item });
      continue;
    }
    const m = ITEM.exec(item);
    if (m === null) throw new BadDataError(`invalid series value ${JSON.stringify(item)}`);
    let v = parseScriptNumber(m[1]!)!;
    if (m[3] === undefined) {
      out.push({ omitted: false, value: v, stale: false, histogram: undefined });
      continue;
    }
    const times = Number(m[3]);
    const inc = m[2] === undefined ? 0 : parseScriptNumber(m[2])!;
    // Accumulate like Prometheus (k += inc), so float rounding matches its expansion.
    for (let j = 0; j <= times; j++) {
      out.push({ omitted: false, value: v, stale: false, histogram: undefined });
      v += inc;
    }
  }
  return out;
}

interface MetricPart {
  /** The metric text without any `@st` suffix. */
  readonly metric: string;
  /** Index in the line just after the metric part (and its suffix). */
  readonly end: number;
  /** The `@…` suffix after the name or the closing brace (`@st`), if any. */
  readonly suffix: string | undefined;
}

/** Splits off the metric part (`name`, `name{…}`, `{…}`, each optionally followed by `@st`). */
function metricPart(line: string): MetricPart {
  let i = 0;
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
  if (line[i] === "{") {
    let q: string | undefined;
    for (i++; ; i++) {
      if (i >= line.length) throw new BadDataError(`unterminated label set in ${JSON.stringify(line)}`);
      const c = line[i]!;
      if (q !== undefined) {
        if (c === "\\" && q !== "`") i++;
        else if (c === q) q = undefined;
      } else if (c === '"' || c === "'" || c === "`") q = c;
      else if (c === "}") {
        i++;
        break;
      }
    }
  }
  const metric = line.slice(0, i);
  if (line[i] !== "@") return { metric, end: i, suffix: undefined };
  let j = i + 1;
  while (j < line.length && /[a-z]/.test(line[j]!)) j++;
  return { metric, end: j, suffix: line.slice(i, j) };
}

/** Parses `metric{a="b"}` (also `{"utf8.name", a="b"}`) into labels. */
export function parseMetric(text: string): Label[] {
  const toks = tokenize(text);
  const labels: Label[] = [];
  let i = 0;
  const t0 = toks[0]!;
  if (t0.type === "IDENT" || t0.type === "METRIC_IDENT") {
    labels.push({ name: "__name__", value: t0.text });
    i++;
  }
  const bad = (): BadDataError => new BadDataError(`invalid series metric ${JSON.stringify(text)}`);
  if (toks[i]?.type === "LBRACE") {
    i++;
    while (toks[i]?.type !== "RBRACE") {
      const nt = toks[i];
      if (nt === undefined || (nt.type !== "IDENT" && nt.type !== "STRING")) throw bad();
      const name = nt.type === "STRING" ? unquote(nt.text) : nt.text;
      i++;
      if (nt.type === "STRING" && (toks[i]?.type === "COMMA" || toks[i]?.type === "RBRACE")) {
        labels.push({ name: "__name__", value: name });
      } else {
        if (toks[i]?.type !== "EQL") throw bad();
        i++;
        const v = toks[i];
        if (v?.type !== "STRING") throw bad();
        labels.push({ name, value: unquote(v.text) });
        i++;
      }
      if (toks[i]?.type === "COMMA") i++;
      else if (toks[i]?.type !== "RBRACE") throw bad();
    }
    i++;
  }
  if (toks[i]?.type !== "EOF") throw bad();
  return normalizeLabels(labels);
}

/** Parses a whole series line: metric, then values. */
export function parseSeriesLine(line: string): SeriesDesc {
  const { metric, end, suffix } = metricPart(line);
  const startTimestamps = suffix !== undefined;
  const labels = parseMetric(metric);
  let values: SequenceValue[];
  try {
    values = parseSequence(line.slice(end));
  } catch (e) {
    if (!startTimestamps) throw e;
    values = []; // @st lines hold durations; unsupported, kept only as a marker
  }
  return { labels, values, hasHistogram: values.some((v) => v.histogram !== undefined), startTimestamps };
}
