import { xxhash64 } from "@strata/core";
import type { Labels } from "@strata/core";
import type { AggregateExpr } from "../ast.js";
import { groupLabels, groupSeries } from "./aggregate.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { streamVector } from "./eval.js";
import { formatG } from "./range-functions.js";
import type { StepCtx, VectorValue, VSeries } from "./types.js";
import { labelsKey } from "./types.js";

// topk, bottomk, limitk, limit_ratio: aggregations that select input series.

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

export function checkParams(op: string, params: Float64Array, n: number): void {
  for (let k = 0; k < n; k++) {
    const p = params[k]!;
    if (Number.isNaN(p)) throw evalError(op === "limit_ratio" ? "Ratio value is NaN" : "Parameter value is NaN");
    if (op !== "limit_ratio" && Math.abs(p) >= 9.223372036854776e18) throw evalError(`Scalar value ${formatG(p)} overflows int64`);
  }
}

/** Largest k that streamTopK keeps per step and group (k × steps heap slots). */
const STREAM_TOPK_MAX = 1000;

interface TopKGroup {
  readonly idx: Int32Array;
  readonly val: Float64Array;
  readonly len: Int32Array;
}

/**
 * topk/bottomk fed series by series: one bounded heap per step and group (Go's container/heap,
 * so ties resolve as in Prometheus), so the input vector is never materialised. Undefined when
 * k is too large for per-step heaps (the caller then materialises).
 */
export async function streamTopK(e: AggregateExpr, params: Float64Array, ctx: StepCtx, env: Env, grouping: ReadonlySet<string>): Promise<VectorValue | undefined> {
  const n = ctx.times.length;
  const ks = new Int32Array(n);
  let maxK = 0;
  for (let k = 0; k < n; k++) {
    const kk = Math.trunc(params[k]!);
    if (kk > STREAM_TOPK_MAX) return undefined;
    ks[k] = kk < 1 ? 0 : kk;
    if (kk > maxK) maxK = kk;
  }
  const isTop = e.op === "topk";
  const labelsOf: Labels[] = [];
  const dropOf: boolean[] = [];
  const groups: TopKGroup[] = [];
  const byKey = new Map<string, TopKGroup>();
  const less = (a: number, b: number): boolean => a !== a || (isTop ? a < b : a > b);
  const swap = (g: TopKGroup, i: number, j: number): void => {
    const ti = g.idx[i]!;
    g.idx[i] = g.idx[j]!;
    g.idx[j] = ti;
    const tv = g.val[i]!;
    g.val[i] = g.val[j]!;
    g.val[j] = tv;
  };
  if (maxK === 0) {
    await streamVector(e.expr, ctx, env, () => undefined);
    return { kind: "vector", series: [] };
  }
  await streamVector(e.expr, ctx, env, (labels, dropName, values, present) => {
    const si = labelsOf.length;
    labelsOf.push(labels);
    dropOf.push(dropName);
    const gl = groupLabels(labels, grouping, e.without);
    const key = labelsKey(gl);
    let g = byKey.get(key);
    if (g === undefined) {
      g = { idx: new Int32Array(n * maxK), val: new Float64Array(n * maxK), len: new Int32Array(n) };
      byKey.set(key, g);
      groups.push(g);
    }
    for (let k = 0; k < n; k++) {
      if (present[k] !== 1) continue;
      const kk = ks[k]!;
      if (kk === 0) continue;
      const base = k * maxK;
      const f = values[k]!;
      const len = g.len[k]!;
      if (len < kk) {
        // heap.Push: append, then sift up.
        g.idx[base + len] = si;
        g.val[base + len] = f;
        let j = len;
        while (j > 0) {
          const i = (j - 1) >> 1;
          if (!less(g.val[base + j]!, g.val[base + i]!)) break;
          swap(g, base + i, base + j);
          j = i;
        }
        g.len[k] = len + 1;
        continue;
      }
      const tv = g.val[base]!;
      const replace = (isTop ? tv < f : tv > f) || (tv !== tv && f === f);
      if (!replace) continue;
      g.idx[base] = si;
      g.val[base] = f;
      // heap.Fix(0): sift down.
      let i = 0;
      for (;;) {
        const j1 = 2 * i + 1;
        if (j1 >= len) break;
        let j = j1;
        if (j1 + 1 < len && less(g.val[base + j1 + 1]!, g.val[base + j1]!)) j = j1 + 1;
        if (!less(g.val[base + j]!, g.val[base + i]!)) break;
        swap(g, base + i, base + j);
        i = j;
      }
    }
  });
  const outValues = new Map<number, { values: Float64Array; present: Uint8Array }>();
  const order: number[] = [];
  for (const g of groups) {
    for (let k = 0; k < n; k++) {
      const len = g.len[k]!;
      const base = k * maxK;
      const picked: number[] = [];
      for (let j = 0; j < len; j++) picked.push(base + j);
      // sort.Reverse(heap): most significant first.
      sortLess = less;
      sortVals = g.val;
      picked.sort(bySlotValueDesc);
      sortLess = NO_LESS;
      sortVals = NO_VALS;
      for (const slot of picked) {
        const si = g.idx[slot]!;
        let o = outValues.get(si);
        if (o === undefined) {
          o = { values: new Float64Array(n), present: new Uint8Array(n) };
          outValues.set(si, o);
          if (n === 1) order.push(si);
        }
        o.values[k] = g.val[slot]!;
        o.present[k] = 1;
      }
    }
  }
  const indices = n === 1 ? order : [...outValues.keys()].sort(ascending);
  const out: VSeries[] = [];
  for (const si of indices) {
    const o = outValues.get(si)!;
    out.push({ labels: labelsOf[si]!, dropName: dropOf[si]!, values: o.values, present: o.present });
  }
  return { kind: "vector", series: out };
}

export function selectK(e: AggregateExpr, v: VectorValue, params: Float64Array, n: number, grouping: ReadonlySet<string>, env: Env): VectorValue {
  const op = e.op;
  const series = v.series;
  checkParams(op, params, n);
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
  const valuesOf = series.map((s) => s.values);
  const presents = series.map((s) => s.present);
  let curK = 0;
  const val = (i: number): number => series[i]!.values[curK]!;
  const topLess = (a: number, b: number): boolean => Number.isNaN(val(a)) || val(a) < val(b);
  const bottomLess = (a: number, b: number): boolean => Number.isNaN(val(a)) || val(a) > val(b);
  let ratioOffsets: Float64Array | undefined;
  let warnedRatio = false;
  for (let k = 0; k < n; k++) {
    env.checkAbort();
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
      const isTop = op === "topk";
      let len = 0;
      let tv = NaN;
      for (let mi = 0; mi < members.length; mi++) {
        const i = members[mi]!;
        if (presents[i]![k] !== 1) continue;
        if (len < kk) {
          heap[len] = i;
          heapUp(heap, len, less);
          len++;
          if (len === kk) tv = valuesOf[heap[0]!]![k]!;
          continue;
        }
        const f = valuesOf[i]![k]!;
        const replace = isTop ? tv < f || (tv !== tv && f === f) : tv > f || (tv !== tv && f === f);
        if (replace) {
          heap[0] = i;
          heapDown(heap, 0, len, less);
          tv = valuesOf[heap[0]!]![k]!;
        }
      }
      const picked = Array.from(heap.subarray(0, len));
      // sort.Reverse(heap): most significant first.
      sortLess = less;
      picked.sort(byDesc);
      sortLess = NO_LESS;
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

// Sort comparators are module functions over these (set right before each sort) rather than
// arrows made per step: V8 re-optimized every such closure, a TurboFan compile per query.
// Reset after each sort so they never keep a finished query's data alive.
const NO_LESS = (): boolean => false;
const NO_VALS = new Float64Array(0);
let sortLess: (a: number, b: number) => boolean = NO_LESS;
let sortVals: Float64Array = NO_VALS;
/** sort.Reverse(heap) over slots of `sortVals`: most significant first. */
function bySlotValueDesc(a: number, b: number): number {
  return sortLess(sortVals[b]!, sortVals[a]!) ? -1 : sortLess(sortVals[a]!, sortVals[b]!) ? 1 : 0;
}
/** sort.Reverse(heap) by `sortLess` on the items: most significant first. */
function byDesc(a: number, b: number): number {
  return sortLess(b, a) ? -1 : sortLess(a, b) ? 1 : 0;
}
function ascending(a: number, b: number): number {
  return a - b;
}
