import { xxhash64 } from "@strata/core";
import type { Label, Labels } from "@strata/core";
import type { AggregateExpr } from "../ast.js";
import { evalExpr, evalVector } from "./engine.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { quantile } from "./mathutil.js";
import { formatG } from "./range-functions.js";
import { formatPromValue } from "./result.js";
import type { StepCtx, VectorValue, VSeries } from "./types.js";
import { labelsKey, setLabel } from "./types.js";

interface Grouping {
  /** Group index per input series. */
  readonly groupOf: Int32Array;
  readonly labels: Labels[];
  /** Member series indices per group, in input order. */
  readonly members: number[][];
}

function groupLabels(labels: Labels, grouping: ReadonlySet<string>, without: boolean): Labels {
  const out: Label[] = [];
  for (const l of labels) {
    if (without ? !grouping.has(l.name) && l.name !== "__name__" : grouping.has(l.name)) out.push(l);
  }
  return out;
}

function groupSeries(series: readonly VSeries[], grouping: ReadonlySet<string>, without: boolean): Grouping {
  const groupOf = new Int32Array(series.length);
  const labels: Labels[] = [];
  const members: number[][] = [];
  const byKey = new Map<string, number>();
  for (let i = 0; i < series.length; i++) {
    const gl = groupLabels(series[i]!.labels, grouping, without);
    const key = labelsKey(gl);
    let g = byKey.get(key);
    if (g === undefined) {
      g = labels.length;
      byKey.set(key, g);
      labels.push(gl);
      members.push([]);
    }
    groupOf[i] = g;
    members[g]!.push(i);
  }
  return { groupOf, labels, members };
}

export function evalAggregate(e: AggregateExpr, ctx: StepCtx, env: Env): VectorValue {
  const n = ctx.times.length;
  let param: Float64Array | undefined;
  let strParam = "";
  if (e.param !== undefined) {
    const p = evalExpr(e.param, ctx, env);
    if (p.kind === "scalar") param = p.values;
    else if (p.kind === "string") strParam = p.value;
  }
  const v = evalVector(e.expr, ctx, env);
  const grouping = new Set(e.grouping);
  switch (e.op) {
    case "topk":
    case "bottomk":
    case "limitk":
    case "limit_ratio":
      return selectK(e, v, param!, n, grouping, env);
    case "count_values":
      return countValues(e, v, strParam, n, grouping);
    case "quantile":
      return quantileAgg(e, v, param!, n, grouping, env);
    default:
      return simpleAgg(e.op, v, n, grouping, e.without);
  }
}

function simpleAgg(op: string, v: VectorValue, n: number, grouping: ReadonlySet<string>, without: boolean): VectorValue {
  const series = v.series;
  const g = groupSeries(series, grouping, without);
  const G = g.labels.length;
  const size = G * n;
  const val = new Float64Array(size);
  const comp = new Float64Array(size);
  const mean = new Float64Array(size);
  const count = new Float64Array(size);
  const incr = op === "avg" ? new Uint8Array(size) : undefined;
  const dropName = new Uint8Array(G);
  for (let i = 0; i < series.length; i++) {
    const s = series[i]!;
    const gi = g.groupOf[i]!;
    const base = gi * n;
    const pres = s.present;
    const vals = s.values;
    let contributed = false;
    for (let k = 0; k < n; k++) {
      if (pres[k] !== 1) continue;
      contributed = true;
      const f = vals[k]!;
      const j = base + k;
      const c0 = count[j]!;
      count[j] = c0 + 1;
      if (c0 === 0) {
        switch (op) {
          case "sum":
          case "avg":
          case "min":
          case "max":
            val[j] = f;
            break;
          case "stddev":
          case "stdvar":
            val[j] = Number.isFinite(f) ? 0 : NaN;
            mean[j] = f;
            break;
          default:
            val[j] = 1;
        }
        continue;
      }
      switch (op) {
        case "sum": {
          const sum = val[j]!;
          const t = sum + f;
          if (t === Infinity || t === -Infinity) comp[j] = 0;
          else if (Math.abs(sum) >= Math.abs(f)) comp[j]! += sum - t + f;
          else comp[j]! += f - t + sum;
          val[j] = t;
          break;
        }
        case "avg": {
          const cnt = c0 + 1;
          if (incr![j] !== 1) {
            const sum = val[j]!;
            const t = sum + f;
            if (t !== Infinity && t !== -Infinity) {
              if (Math.abs(sum) >= Math.abs(f)) comp[j]! += sum - t + f;
              else comp[j]! += f - t + sum;
              val[j] = t;
              break;
            }
            incr![j] = 1;
            mean[j] = sum / c0;
            comp[j] = comp[j]! / c0;
          }
          const q = c0 / cnt;
          const inc = f / cnt;
          const sum = q * mean[j]!;
          let c = q * comp[j]!;
          const t = sum + inc;
          if (t === Infinity || t === -Infinity) c = 0;
          else if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
          else c += inc - t + sum;
          mean[j] = t;
          comp[j] = c;
          break;
        }
        case "max": {
          const cur = val[j]!;
          if (cur < f || Number.isNaN(cur)) val[j] = f;
          break;
        }
        case "min": {
          const cur = val[j]!;
          if (cur > f || Number.isNaN(cur)) val[j] = f;
          break;
        }
        case "count":
          val[j] = c0 + 1;
          break;
        case "group":
          break;
        case "stddev":
        case "stdvar": {
          const cnt = c0 + 1;
          const delta = f - mean[j]!;
          mean[j]! += delta / cnt;
          val[j]! += delta * (f - mean[j]!);
          break;
        }
        default:
          throw evalError(`unknown aggregation ${op}`);
      }
    }
    if (contributed && s.dropName) dropName[gi] = 1;
  }
  const out: VSeries[] = [];
  for (let gi = 0; gi < G; gi++) {
    const base = gi * n;
    const values = new Float64Array(n);
    const present = new Uint8Array(n);
    let any = false;
    for (let k = 0; k < n; k++) {
      const j = base + k;
      const c = count[j]!;
      if (c === 0) continue;
      any = true;
      present[k] = 1;
      switch (op) {
        case "sum": {
          const s = val[j]!;
          values[k] = s === Infinity || s === -Infinity ? s : s + comp[j]!;
          break;
        }
        case "avg":
          if (c === 1) values[k] = val[j]!;
          else if (incr![j] === 1) values[k] = mean[j]! + comp[j]!;
          else values[k] = val[j]! / c + comp[j]! / c;
          break;
        case "stdvar":
          values[k] = val[j]! / c;
          break;
        case "stddev":
          values[k] = Math.sqrt(val[j]! / c);
          break;
        default:
          values[k] = val[j]!;
      }
    }
    if (any) out.push({ labels: g.labels[gi]!, dropName: dropName[gi] === 1, values, present });
  }
  return { kind: "vector", series: out };
}

function quantileAgg(e: AggregateExpr, v: VectorValue, qs: Float64Array, n: number, grouping: ReadonlySet<string>, env: Env): VectorValue {
  const series = v.series;
  const g = groupSeries(series, grouping, e.without);
  let warned = false;
  const out: VSeries[] = [];
  let buf = new Float64Array(16);
  for (let gi = 0; gi < g.labels.length; gi++) {
    const members = g.members[gi]!;
    if (buf.length < members.length) buf = new Float64Array(members.length * 2);
    const values = new Float64Array(n);
    const present = new Uint8Array(n);
    let any = false;
    let drop = false;
    for (let k = 0; k < n; k++) {
      let m = 0;
      for (const i of members) {
        const s = series[i]!;
        if (s.present[k] !== 1) continue;
        buf[m++] = s.values[k]!;
        if (s.dropName) drop = true;
      }
      if (m === 0) continue;
      const q = qs[k]!;
      if (!warned && (Number.isNaN(q) || q < 0 || q > 1)) {
        warned = true;
        env.warn(`quantile value should be between 0 and 1, got ${formatG(q)}`, e.param!.pos);
      }
      values[k] = quantile(q, buf.subarray(0, m));
      present[k] = 1;
      any = true;
    }
    if (any) out.push({ labels: g.labels[gi]!, dropName: drop, values, present });
  }
  return { kind: "vector", series: out };
}

function countValues(e: AggregateExpr, v: VectorValue, valueLabel: string, n: number, grouping: ReadonlySet<string>): VectorValue {
  if (valueLabel === "" || !valueLabel.isWellFormed() || valueLabel.includes("\uFFFD")) {
    throw evalError(`invalid label name ${JSON.stringify(valueLabel)}`);
  }
  const g = new Set(grouping);
  if (!e.without) g.add(valueLabel);
  const byKey = new Map<string, VSeries>();
  const out: VSeries[] = [];
  for (const s of v.series) {
    for (let k = 0; k < n; k++) {
      if (s.present[k] !== 1) continue;
      const withValue = setLabel(s.labels, valueLabel, formatPromValue(s.values[k]!));
      const labels = groupLabels(withValue, g, e.without);
      const key = labelsKey(labels);
      let o = byKey.get(key);
      if (o === undefined) {
        o = { labels, dropName: false, values: new Float64Array(n), present: new Uint8Array(n) };
        byKey.set(key, o);
        out.push(o);
      }
      o.values[k]! += 1;
      o.present[k] = 1;
    }
  }
  return { kind: "vector", series: out };
}

const MAX_UINT64 = Number(0xffffffffffffffffn);
const te = new TextEncoder();

/** Prometheus' labels.Hash(): xxhash64 over name 0xff value 0xff …, as a fraction of 2^64-1. */
function ratioOffset(labels: Labels): number {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const l of labels) {
    const a = te.encode(l.name);
    const b = te.encode(l.value);
    parts.push(a, b);
    size += a.length + b.length + 2;
  }
  const buf = new Uint8Array(size);
  let p = 0;
  for (const part of parts) {
    buf.set(part, p);
    p += part.length;
    buf[p++] = 0xff;
  }
  return Number(xxhash64(buf)) / MAX_UINT64;
}

/** Go container/heap over indices with a custom less. */
function heapDown(h: Int32Array, i0: number, len: number, less: (a: number, b: number) => boolean): void {
  let i = i0;
  for (;;) {
    const j1 = 2 * i + 1;
    if (j1 >= len || j1 < 0) break;
    let j = j1;
    const j2 = j1 + 1;
    if (j2 < len && less(h[j2]!, h[j1]!)) j = j2;
    if (!less(h[j]!, h[i]!)) break;
    const t = h[i]!;
    h[i] = h[j]!;
    h[j] = t;
    i = j;
  }
}

function heapUp(h: Int32Array, j0: number, less: (a: number, b: number) => boolean): void {
  let j = j0;
  for (;;) {
    const i = (j - 1) >> 1;
    if (i === j || j <= 0 || !less(h[j]!, h[i]!)) break;
    const t = h[i]!;
    h[i] = h[j]!;
    h[j] = t;
    j = i;
  }
}

function selectK(e: AggregateExpr, v: VectorValue, params: Float64Array, n: number, grouping: ReadonlySet<string>, env: Env): VectorValue {
  const op = e.op;
  const series = v.series;
  for (let k = 0; k < n; k++) {
    const p = params[k]!;
    if (Number.isNaN(p)) throw evalError(op === "limit_ratio" ? "Ratio value is NaN" : "Parameter value is NaN");
    if (op !== "limit_ratio" && Math.abs(p) >= 9.223372036854776e18) throw evalError(`Scalar value ${formatG(p)} overflows int64`);
  }
  const g = groupSeries(series, grouping, e.without);
  const outValues: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(series.length);
  const outPresent: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(series.length);
  const mark = (i: number, k: number): void => {
    let vals = outValues[i];
    if (vals === undefined) {
      vals = new Float64Array(n);
      outValues[i] = vals;
      outPresent[i] = new Uint8Array(n);
    }
    vals[k] = series[i]!.values[k]!;
    outPresent[i]![k] = 1;
  };
  // Output order for instant queries follows Prometheus: per group, sorted by value.
  const order: number[] = [];
  const heap = new Int32Array(series.length);
  let curK = 0;
  const val = (i: number): number => series[i]!.values[curK]!;
  const topLess = (a: number, b: number): boolean => Number.isNaN(val(a)) || val(a) < val(b);
  const bottomLess = (a: number, b: number): boolean => Number.isNaN(val(a)) || val(a) > val(b);
  let ratioOffsets: Float64Array | undefined;
  let warnedRatio = false;
  for (let k = 0; k < n; k++) {
    curK = k;
    const p = params[k]!;
    if (op === "limit_ratio") {
      let r = p;
      if (r < -1 || r > 1) {
        r = r < -1 ? -1 : 1;
        if (!warnedRatio) {
          warnedRatio = true;
          env.warn(`ratio value should be between -1 and 1, got ${formatG(p)}, capping to ${formatG(r)}`, e.param!.pos);
        }
      }
      if (r === 0) continue;
      if (ratioOffsets === undefined) {
        ratioOffsets = new Float64Array(series.length);
        for (let i = 0; i < series.length; i++) ratioOffsets[i] = ratioOffset(series[i]!.labels);
      }
      for (let gi = 0; gi < g.labels.length; gi++) {
        for (const i of g.members[gi]!) {
          if (series[i]!.present[k] !== 1) continue;
          const off = ratioOffsets[i]!;
          if ((r >= 0 && off < r) || (r < 0 && off >= 1 + r)) {
            mark(i, k);
            if (n === 1) order.push(i);
          }
        }
      }
      continue;
    }
    let kk = Math.trunc(p);
    if (kk > series.length) kk = series.length;
    if (kk < 1) continue;
    for (let gi = 0; gi < g.labels.length; gi++) {
      const members = g.members[gi]!;
      if (op === "limitk") {
        let taken = 0;
        for (const i of members) {
          if (taken >= kk) break;
          if (series[i]!.present[k] !== 1) continue;
          mark(i, k);
          if (n === 1) order.push(i);
          taken++;
        }
        continue;
      }
      const less = op === "topk" ? topLess : bottomLess;
      let len = 0;
      for (const i of members) {
        if (series[i]!.present[k] !== 1) continue;
        if (len < kk) {
          heap[len] = i;
          heapUp(heap, len, less);
          len++;
          continue;
        }
        const top = heap[0]!;
        const tv = val(top);
        const f = val(i);
        const replace = op === "topk" ? tv < f || (Number.isNaN(tv) && !Number.isNaN(f)) : tv > f || (Number.isNaN(tv) && !Number.isNaN(f));
        if (replace) {
          heap[0] = i;
          heapDown(heap, 0, len, less);
        }
      }
      const picked = Array.from(heap.subarray(0, len));
      // sort.Reverse(heap): most significant first.
      picked.sort((a, b) => (less(b, a) ? -1 : less(a, b) ? 1 : 0));
      for (const i of picked) {
        mark(i, k);
        if (n === 1) order.push(i);
      }
    }
  }
  const out: VSeries[] = [];
  const indices = n === 1 ? order : series.map((_, i) => i);
  for (const i of indices) {
    const vals = outValues[i];
    if (vals === undefined) continue;
    const s = series[i]!;
    out.push({ labels: s.labels, dropName: s.dropName, values: vals, present: outPresent[i]! });
  }
  return { kind: "vector", series: out };
}
