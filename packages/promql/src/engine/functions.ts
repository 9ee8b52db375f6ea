import { compileAnchoredRegex, compareStrings, DAY_MS } from "@strata/core";
import type { Labels } from "@strata/core";
import type { Call } from "../ast.js";
import { absentLabels } from "./eval.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { evalHistogramFraction, evalHistogramQuantile } from "./histogram.js";
import { formatG } from "./range-functions.js";
import type { ScalarValue, StepCtx, Value, VectorValue, VSeries } from "./types.js";
import { getLabel, labelsKey, setLabel } from "./types.js";

type Math1 = (v: number) => number;

const sgn: Math1 = (v) => (v < 0 ? -1 : v > 0 ? 1 : v);

const MATH: Readonly<Record<string, Math1>> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  exp: Math.exp,
  sqrt: Math.sqrt,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sgn,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  asinh: Math.asinh,
  acosh: Math.acosh,
  atanh: Math.atanh,
  deg: (v) => (v * 180) / Math.PI,
  rad: (v) => (v * Math.PI) / 180,
};

function vec(v: Value | undefined): VectorValue {
  if (v === undefined || v.kind !== "vector") throw evalError("expected instant vector argument");
  return v;
}

function scal(v: Value | undefined): Float64Array {
  if (v === undefined || v.kind !== "scalar") throw evalError("expected scalar argument");
  return v.values;
}

function str(v: Value | undefined): string {
  if (v === undefined || v.kind !== "string") throw evalError("expected string argument");
  return v.value;
}

/** Maps every present value; the result drops the metric name. */
function mapValues(v: VectorValue, n: number, f: (x: number, k: number) => number): VectorValue {
  const out: VSeries[] = [];
  for (const s of v.series) {
    const values = new Float64Array(n);
    for (let k = 0; k < n; k++) if (s.present[k] === 1) values[k] = f(s.values[k]!, k);
    out.push({ labels: s.labels, dropName: true, values, present: s.present });
  }
  return { kind: "vector", series: out };
}

function isValidLabelName(name: string): boolean {
  return name !== "" && name.isWellFormed() && !name.includes("\uFFFD");
}

/** Instant-vector and scalar functions (range functions are in range-functions.ts). */
export function evalFunction(call: Call, args: Value[], ctx: StepCtx, env: Env): Value {
  const name = call.func.name;
  const n = ctx.times.length;
  const math = MATH[name];
  if (math !== undefined) return mapValues(vec(args[0]), n, math);
  switch (name) {
    case "time": {
      const values = new Float64Array(n);
      for (let k = 0; k < n; k++) values[k] = ctx.times[k]! / 1000;
      return { kind: "scalar", values } satisfies ScalarValue;
    }
    case "pi":
      return { kind: "scalar", values: new Float64Array(n).fill(Math.PI) };
    case "step":
      return { kind: "scalar", values: new Float64Array(n).fill(env.step / 1000) };
    case "range":
      return { kind: "scalar", values: new Float64Array(n).fill((env.end - env.start) / 1000) };
    case "start":
      return { kind: "scalar", values: new Float64Array(n).fill(env.start / 1000) };
    case "end":
      return { kind: "scalar", values: new Float64Array(n).fill(env.end / 1000) };
    case "min_of":
    case "max_of": {
      const a = scal(args[0]);
      const b = scal(args[1]);
      const values = new Float64Array(n);
      for (let k = 0; k < n; k++) values[k] = name === "min_of" ? goMin(a[k]!, b[k]!) : goMax(a[k]!, b[k]!);
      return { kind: "scalar", values };
    }
    case "vector": {
      const s = scal(args[0]);
      return { kind: "vector", series: [{ labels: [], dropName: false, values: new Float64Array(s), present: new Uint8Array(n).fill(1) }] };
    }
    case "scalar": {
      const v = vec(args[0]);
      const values = new Float64Array(n).fill(NaN);
      const counts = new Uint32Array(n);
      for (const s of v.series) {
        for (let k = 0; k < n; k++) {
          if (s.present[k] !== 1) continue;
          counts[k]!++;
          values[k] = s.values[k]!;
        }
      }
      for (let k = 0; k < n; k++) if (counts[k] !== 1) values[k] = NaN;
      return { kind: "scalar", values };
    }
    case "absent": {
      const v = vec(args[0]);
      const values = new Float64Array(n);
      const present = new Uint8Array(n).fill(1);
      for (const s of v.series) for (let k = 0; k < n; k++) if (s.present[k] === 1) present[k] = 0;
      if (!present.includes(1)) return { kind: "vector", series: [] };
      values.fill(1);
      return { kind: "vector", series: [{ labels: absentLabels(call.args[0]!), dropName: false, values, present }] };
    }
    case "timestamp": {
      // Non-selector argument: the sample timestamp is the evaluation time.
      return mapValues(vec(args[0]), n, (_x, k) => ctx.times[k]! / 1000);
    }
    case "round": {
      const to = args.length > 1 ? scal(args[1]) : undefined;
      return mapValues(vec(args[0]), n, (x, k) => {
        const inv = 1 / (to === undefined ? 1 : to[k]!);
        return Math.floor(x * inv + 0.5) / inv;
      });
    }
    case "clamp": {
      const mins = scal(args[1]);
      const maxs = scal(args[2]);
      // Steps where max < min have no output.
      const out: VSeries[] = [];
      for (const ser of vec(args[0]).series) {
        const values = new Float64Array(n);
        const present = new Uint8Array(n);
        let any = false;
        for (let k = 0; k < n; k++) {
          if (ser.present[k] !== 1 || maxs[k]! < mins[k]!) continue;
          values[k] = goMax(mins[k]!, goMin(maxs[k]!, ser.values[k]!));
          present[k] = 1;
          any = true;
        }
        if (any) out.push({ labels: ser.labels, dropName: true, values, present });
      }
      return { kind: "vector", series: out };
    }
    case "clamp_min": {
      const mins = scal(args[1]);
      return mapValues(vec(args[0]), n, (x, k) => goMax(mins[k]!, x));
    }
    case "clamp_max": {
      const maxs = scal(args[1]);
      return mapValues(vec(args[0]), n, (x, k) => goMin(maxs[k]!, x));
    }
    case "day_of_month":
    case "day_of_week":
    case "day_of_year":
    case "days_in_month":
    case "hour":
    case "minute":
    case "month":
    case "year":
      return dateFunction(name, args, ctx);
    case "sort":
    case "sort_desc":
    case "sort_by_label":
    case "sort_by_label_desc":
      if (env.start !== env.end) env.warn("sort is ineffective for range queries since results are always ordered by labels", call.pos);
      return sortVector(name, vec(args[0]), args.slice(1).map(str));
    case "label_replace":
      return labelReplace(vec(args[0]), str(args[1]), str(args[2]), str(args[3]), str(args[4]));
    case "label_join":
      return labelJoin(vec(args[0]), str(args[1]), str(args[2]), args.slice(3).map(str));
    case "histogram_quantile":
      return evalHistogramQuantile(call, scal(args[0]), vec(args[1]), n, env);
    case "histogram_quantiles": {
      const v = vec(args[0]);
      const label = str(args[1]);
      if (!isValidLabelName(label)) throw evalError(`invalid label name ${JSON.stringify(label)}`);
      const all: VSeries[] = [];
      for (let i = 2; i < args.length; i++) {
        const qs = scal(args[i]);
        const r = evalHistogramQuantile(call, qs, v, n, env, 0, i);
        const qstr = quantileLabel(qs[0]!);
        for (const s of r.series) all.push({ labels: setLabel(s.labels, label, qstr), dropName: s.dropName, values: s.values, present: s.present });
      }
      return { kind: "vector", series: mergeEqual(all) };
    }
    case "histogram_fraction":
      return evalHistogramFraction(call, scal(args[0]), scal(args[1]), vec(args[2]), n, env);
    case "histogram_count":
    case "histogram_sum":
    case "histogram_avg":
    case "histogram_stddev":
    case "histogram_stdvar":
      // Native-histogram functions ignore float samples.
      vec(args[0]);
      return { kind: "vector", series: [] };
    default:
      throw evalError(`function ${JSON.stringify(name)} is not supported`);
  }
}

/** A quantile as a label value: shortest decimal, integers with ".0" ("0.0", "0.25", "NaN"). */
function quantileLabel(q: number): string {
  // labels.FormatOpenMetricsFloat: %g, with ".0" added when there is neither "." nor "e".
  const s = formatG(q);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

/** Go's math.Max/Min: NaN wins, and -0 < +0. */
function goMax(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return Math.max(a, b);
}

function goMin(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return NaN;
  return Math.min(a, b);
}

function dateFunction(name: string, args: Value[], ctx: StepCtx): VectorValue {
  const n = ctx.times.length;
  const f = (sec: number): number => {
    const d = new Date(Math.trunc(sec) * 1000);
    switch (name) {
      case "day_of_month":
        return d.getUTCDate();
      case "day_of_week":
        return d.getUTCDay();
      case "day_of_year": {
        const start = Date.UTC(d.getUTCFullYear(), 0, 1);
        return Math.floor((d.getTime() - start) / DAY_MS) + 1;
      }
      case "days_in_month":
        return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
      case "hour":
        return d.getUTCHours();
      case "minute":
        return d.getUTCMinutes();
      case "month":
        return d.getUTCMonth() + 1;
      default:
        return d.getUTCFullYear();
    }
  };
  if (args.length === 0) {
    const values = new Float64Array(n);
    for (let k = 0; k < n; k++) values[k] = f(Math.trunc(ctx.times[k]! / 1000));
    return { kind: "vector", series: [{ labels: [], dropName: false, values, present: new Uint8Array(n).fill(1) }] };
  }
  return mapValues(vec(args[0]), n, (x) => (Number.isFinite(x) ? f(x) : NaN));
}

// ---- sorting ---------------------------------------------------------------------------------

function chunkify(s: string): string[] {
  return s.match(/(\d+|\D+)/g) ?? [];
}

function atoi(s: string): number | undefined {
  return /^[+-]?\d+$/.test(s) && s.length < 19 ? Number(s) : undefined;
}

/** facette/natsort.Compare (a < b), as Prometheus' sort_by_label uses. */
export function natLess(a: string, b: string): boolean {
  const ca = chunkify(a);
  const cb = chunkify(b);
  for (let i = 0; i < ca.length; i++) {
    if (i >= cb.length) return false;
    const x = ca[i]!;
    const y = cb[i]!;
    const ai = atoi(x);
    const bi = atoi(y);
    if (ai !== undefined && bi !== undefined) {
      if (ai === bi) {
        if (i === ca.length - 1) return true;
        if (i === cb.length - 1) return false;
        continue;
      }
      return ai < bi;
    }
    if (x === y) {
      if (i === ca.length - 1) return true;
      if (i === cb.length - 1) return false;
      continue;
    }
    return x < y;
  }
  return false;
}

function compareLabelSets(a: Labels, b: Labels): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareStrings(a[i]!.name, b[i]!.name) || compareStrings(a[i]!.value, b[i]!.value);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/** Go's insertionSortCmpFunc. */
function insertionSort<T>(data: T[], cmp: (a: T, b: T) => number): void {
  for (let i = 1; i < data.length; i++) {
    for (let j = i; j > 0 && cmp(data[j]!, data[j - 1]!) < 0; j--) {
      const t = data[j]!;
      data[j] = data[j - 1]!;
      data[j - 1] = t;
    }
  }
}

function sortVector(name: string, v: VectorValue, labelNames: string[]): VectorValue {
  // Instant queries only (range results are ordered by labels anyway): sort by step 0.
  const series = [...v.series];
  const val = (s: VSeries): number => s.values[0]!;
  switch (name) {
    case "sort":
      series.sort((a, b) => {
        const x = val(a);
        const y = val(b);
        if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;
        if (Number.isNaN(y)) return -1;
        return x - y;
      });
      break;
    case "sort_desc":
      series.sort((a, b) => {
        const x = val(a);
        const y = val(b);
        if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;
        if (Number.isNaN(y)) return -1;
        return y - x;
      });
      break;
    default: {
      const desc = name === "sort_by_label_desc";
      const cmp = (a: VSeries, b: VSeries): number => {
        for (const l of labelNames) {
          const x = getLabel(a.labels, l);
          const y = getLabel(b.labels, l);
          if (x === y) continue;
          const less = natLess(x, y);
          return desc ? (less ? 1 : -1) : less ? -1 : 1;
        }
        const c = compareLabelSets(a.labels, b.labels);
        return desc ? -c : c;
      };
      // natsort is not a strict order ("a2" and "a02" are each less than the other), so the
      // result depends on the algorithm: Go's slices.SortFunc insertion-sorts up to 12 items.
      if (series.length <= 12) insertionSort(series, cmp);
      else series.sort(cmp);
    }
  }
  return { kind: "vector", series };
}

// ---- label functions ----------------------------------------------------------------------------

/** Go's regexp.Expand template syntax: `$1`, `${1}`, `$name`, `${name}`, `$$`. */
export function expandTemplate(template: string, group: (ref: string) => string): string {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== "$" || i + 1 >= template.length) {
      out += c;
      continue;
    }
    const next = template[i + 1]!;
    if (next === "$") {
      out += "$";
      i++;
      continue;
    }
    let name = "";
    let j: number;
    if (next === "{") {
      const close = template.indexOf("}", i + 2);
      name = close < 0 ? "" : template.slice(i + 2, close);
      if (close < 0 || !/^[A-Za-z0-9_]+$/.test(name)) {
        out += c;
        continue;
      }
      j = close + 1;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (!m) {
        out += c;
        continue;
      }
      name = m[0];
      j = i + 1 + name.length;
    }
    out += group(name);
    i = j - 1;
  }
  return out;
}

/**
 * Series that became equal after relabelling are merged when they never overlap in time
 * (Prometheus 3.14); a step where two have a sample is an error.
 */
function mergeEqual(series: VSeries[]): VSeries[] {
  const byKey = new Map<string, number>();
  const out: VSeries[] = [];
  for (const s of series) {
    const key = labelsKey(s.labels);
    const at = byKey.get(key);
    if (at === undefined) {
      byKey.set(key, out.length);
      out.push(s);
      continue;
    }
    const prev = out[at]!;
    const values = new Float64Array(prev.values);
    const present = new Uint8Array(prev.present);
    for (let k = 0; k < present.length; k++) {
      if (s.present[k] !== 1) continue;
      if (present[k] === 1) throw evalError("vector cannot contain metrics with the same labelset");
      present[k] = 1;
      values[k] = s.values[k]!;
    }
    out[at] = { labels: prev.labels, dropName: prev.dropName, values, present };
  }
  return out;
}

function labelReplace(v: VectorValue, dst: string, repl: string, src: string, regexStr: string): VectorValue {
  let re;
  try {
    re = compileAnchoredRegex(regexStr);
  } catch {
    throw evalError(`invalid regular expression in label_replace(): ${regexStr}`);
  }
  if (!isValidLabelName(dst)) throw evalError(`invalid destination label name in label_replace(): ${dst}`);
  const names = re.namedGroups();
  const out: VSeries[] = [];
  for (const s of v.series) {
    const srcVal = getLabel(s.labels, src);
    const m = re.matcher(srcVal);
    if (!m.matches()) {
      out.push(s);
      continue;
    }
    const groupCount = m.groupCount();
    const res = expandTemplate(repl, (ref) => {
      let idx: number | undefined;
      if (/^\d+$/.test(ref)) idx = Number(ref);
      else idx = names[ref];
      if (idx === undefined || idx > groupCount) return "";
      return m.group(idx) ?? "";
    });
    const labels = setLabel(s.labels, dst, res);
    out.push({ labels, dropName: dst === "__name__" ? false : s.dropName, values: s.values, present: s.present });
  }
  return { kind: "vector", series: mergeEqual(out) };
}

function labelJoin(v: VectorValue, dst: string, sep: string, srcs: string[]): VectorValue {
  if (!isValidLabelName(dst)) throw evalError(`invalid destination label name in label_join(): ${dst}`);
  for (const s of srcs) if (!isValidLabelName(s)) throw evalError(`invalid source label name in label_join(): ${s}`);
  const out: VSeries[] = [];
  for (const s of v.series) {
    const joined = srcs.map((l) => getLabel(s.labels, l)).join(sep);
    const labels = setLabel(s.labels, dst, joined);
    out.push({ labels, dropName: dst === "__name__" ? false : s.dropName, values: s.values, present: s.present });
  }
  return { kind: "vector", series: mergeEqual(out) };
}
