import type { Label, Labels } from "@strata/core";
import type { AggregateExpr } from "../ast.js";
import { checkParams, selectK, streamTopK } from "./aggregate-select.js";
import { evalExpr, evalVector, streamVector } from "./eval.js";
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

export function groupLabels(labels: Labels, grouping: ReadonlySet<string>, without: boolean): Labels {
  const out: Label[] = [];
  for (const l of labels) {
    if (without ? !grouping.has(l.name) && l.name !== "__name__" : grouping.has(l.name)) out.push(l);
  }
  return out;
}

export function groupSeries(series: readonly VSeries[], grouping: ReadonlySet<string>, without: boolean): Grouping {
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

export async function evalAggregate(e: AggregateExpr, ctx: StepCtx, env: Env): Promise<VectorValue> {
  const n = ctx.times.length;
  let param: Float64Array | undefined;
  let strParam = "";
  if (e.param !== undefined) {
    const p = await evalExpr(e.param, ctx, env);
    if (p.kind === "scalar") param = p.values;
    else if (p.kind === "string") strParam = p.value;
  }
  const grouping = new Set(e.grouping);
  switch (e.op) {
    case "sum":
    case "avg":
    case "count":
    case "min":
    case "max":
    case "group":
    case "stddev":
    case "stdvar": {
      const agg = new SimpleAgg(e.op, n, grouping, e.without);
      await streamVector(e.expr, ctx, env, (labels, dropName, values, present) => agg.add(labels, dropName, values, present));
      return agg.finish();
    }
    case "topk":
    case "bottomk": {
      checkParams(e.op, param!, n);
      const r = await streamTopK(e, param!, ctx, env, grouping);
      if (r !== undefined) return r;
      break;
    }
    default:
      break;
  }
  const v = await evalVector(e.expr, ctx, env);
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
      throw evalError(`unknown aggregation ${e.op}`);
  }
}

/** Doubles per accumulator chunk of SimpleAgg (64 KiB). */
const GROUP_CHUNK_DOUBLES = 8192;
const NO_DOUBLES = new Float64Array(0);

interface AggGroup {
  readonly labels: Labels;
  readonly val: Float64Array;
  readonly comp: Float64Array;
  readonly mean: Float64Array;
  readonly count: Float64Array;
  readonly incr: Uint8Array | undefined;
  dropName: boolean;
}

/**
 * sum, avg, count, min, max, group, stddev, stdvar: per-group accumulators of one value per
 * step, fed series by series (so the input can be streamed without being materialised).
 * Prometheus' algorithms: Kahan-Neumaier sums, avg as a compensated sum that switches to an
 * incremental mean before overflowing, Welford for stddev/stdvar.
 */
class SimpleAgg {
  private readonly groups: AggGroup[] = [];
  private readonly byKey = new Map<string, AggGroup>();
  private chunk = NO_DOUBLES;
  private chunkUsed = 0;

  constructor(
    private readonly op: string,
    private readonly n: number,
    private readonly grouping: ReadonlySet<string>,
    private readonly without: boolean,
  ) {}

  /** The group key of `labels` (labelsKey of groupLabels), without building the group's labels. */
  private keyOf(labels: Labels): string {
    const grouping = this.grouping;
    let k = "";
    if (this.without) {
      for (const l of labels) if (!grouping.has(l.name) && l.name !== "__name__") k += `${l.name}\u0000${l.value}\u0001`;
    } else {
      for (const l of labels) if (grouping.has(l.name)) k += `${l.name}\u0000${l.value}\u0001`;
    }
    return k;
  }

  /**
   * `len` zeroed doubles for one group's accumulator, cut from a shared chunk: a wide
   * `sum by (instance, le)` makes thousands of groups, and a backing store of its own per array
   * cost more than the group's whole fold.
   */
  private take(len: number): Float64Array {
    if (len === 0) return NO_DOUBLES;
    if (this.chunkUsed + len > this.chunk.length) {
      this.chunk = new Float64Array(Math.max(len, GROUP_CHUNK_DOUBLES));
      this.chunkUsed = 0;
    }
    const a = this.chunk.subarray(this.chunkUsed, this.chunkUsed + len);
    this.chunkUsed += len;
    return a;
  }

  private group(labels: Labels): AggGroup {
    const key = this.keyOf(labels);
    let g = this.byKey.get(key);
    if (g === undefined) {
      const n = this.n;
      const needMean = this.op === "avg" || this.op === "stddev" || this.op === "stdvar";
      g = {
        labels: groupLabels(labels, this.grouping, this.without),
        val: this.take(n),
        comp: this.take(this.op === "sum" || this.op === "avg" ? n : 0),
        mean: this.take(needMean ? n : 0),
        count: this.take(n),
        incr: this.op === "avg" ? new Uint8Array(n) : undefined,
        dropName: false,
      };
      this.byKey.set(key, g);
      this.groups.push(g);
    }
    return g;
  }

  add(labels: Labels, dropName: boolean, vals: Float64Array, pres: Uint8Array): void {
    const g = this.group(labels);
    const n = this.n;
    const { val, comp, mean, count } = g;
    let contributed = false;
    switch (this.op) {
      case "sum":
        for (let k = 0; k < n; k++) {
          if (pres[k] !== 1) continue;
          contributed = true;
          const f = vals[k]!;
          const c0 = count[k]!;
          count[k] = c0 + 1;
          if (c0 === 0) {
            val[k] = f;
            continue;
          }
          const sum = val[k]!;
          const t = sum + f;
          if (t === Infinity || t === -Infinity) comp[k] = 0;
          else if (Math.abs(sum) >= Math.abs(f)) comp[k]! += sum - t + f;
          else comp[k]! += f - t + sum;
          val[k] = t;
        }
        break;
      case "avg": {
        const incr = g.incr!;
        for (let k = 0; k < n; k++) {
          if (pres[k] !== 1) continue;
          contributed = true;
          const f = vals[k]!;
          const c0 = count[k]!;
          count[k] = c0 + 1;
          if (c0 === 0) {
            val[k] = f;
            continue;
          }
          if (incr[k] !== 1) {
            const sum = val[k]!;
            const t = sum + f;
            if (t !== Infinity && t !== -Infinity) {
              if (Math.abs(sum) >= Math.abs(f)) comp[k]! += sum - t + f;
              else comp[k]! += f - t + sum;
              val[k] = t;
              continue;
            }
            incr[k] = 1;
            mean[k] = sum / c0;
            comp[k] = comp[k]! / c0;
          }
          const q = c0 / (c0 + 1);
          const inc = f / (c0 + 1);
          const sum = q * mean[k]!;
          let c = q * comp[k]!;
          const t = sum + inc;
          if (t === Infinity || t === -Infinity) c = 0;
          else if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
          else c += inc - t + sum;
          mean[k] = t;
          comp[k] = c;
        }
        break;
      }
      case "max":
      case "min": {
        const isMax = this.op === "max";
        for (let k = 0; k < n; k++) {
          if (pres[k] !== 1) continue;
          contributed = true;
          const f = vals[k]!;
          const c0 = count[k]!;
          count[k] = c0 + 1;
          if (c0 === 0) {
            val[k] = f;
            continue;
          }
          const cur = val[k]!;
          if ((isMax ? cur < f : cur > f) || Number.isNaN(cur)) val[k] = f;
        }
        break;
      }
      case "count":
      case "group":
        for (let k = 0; k < n; k++) {
          if (pres[k] !== 1) continue;
          contributed = true;
          count[k]!++;
        }
        break;
      case "stddev":
      case "stdvar":
        for (let k = 0; k < n; k++) {
          if (pres[k] !== 1) continue;
          contributed = true;
          const f = vals[k]!;
          const c = ++count[k]!;
          if (c === 1) {
            val[k] = Number.isFinite(f) ? 0 : NaN;
            mean[k] = f;
            continue;
          }
          const delta = f - mean[k]!;
          mean[k]! += delta / c;
          val[k]! += delta * (f - mean[k]!);
        }
        break;
      default:
        throw evalError(`unknown aggregation ${this.op}`);
    }
    if (contributed && dropName) g.dropName = true;
  }

  finish(): VectorValue {
    const n = this.n;
    const op = this.op;
    const out: VSeries[] = [];
    for (const g of this.groups) {
      // In place: each step reads only its own accumulators, and the group is not used again.
      const values = g.val;
      const present = new Uint8Array(n);
      let any = false;
      for (let k = 0; k < n; k++) {
        const c = g.count[k]!;
        if (c === 0) continue;
        any = true;
        present[k] = 1;
        switch (op) {
          case "sum": {
            const s = g.val[k]!;
            values[k] = s === Infinity || s === -Infinity ? s : s + g.comp[k]!;
            break;
          }
          case "avg":
            if (c === 1) values[k] = g.val[k]!;
            else if (g.incr![k] === 1) values[k] = g.mean[k]! + g.comp[k]!;
            else values[k] = g.val[k]! / c + g.comp[k]! / c;
            break;
          case "count":
            values[k] = c;
            break;
          case "group":
            values[k] = 1;
            break;
          case "stdvar":
            values[k] = g.val[k]! / c;
            break;
          case "stddev":
            values[k] = Math.sqrt(g.val[k]! / c);
            break;
          default:
            values[k] = g.val[k]!;
        }
      }
      if (any) out.push({ labels: g.labels, dropName: g.dropName, values, present });
    }
    return { kind: "vector", series: out };
  }
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
