import type { Label, Labels } from "@strata/core";
import type { AggregateExpr, Expr } from "../ast.js";
import { checkParams, selectK, streamTopK } from "./aggregate-select.js";
import { evalExpr, evalVector, streamVector, unwrap } from "./eval.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { quantile } from "./mathutil.js";
import { finishFold, foldLengths, foldSeries, type FoldAcc } from "./fold.js";
import { formatG, SIMPLE_ROLLUPS } from "./range-functions.js";
import { checkModifiers, streamRollupFold, type FoldTarget } from "./selectors.js";
import { formatPromValue } from "./result.js";
import type { StepCtx, VectorValue, VSeries } from "./types.js";
import { labelsKey, setLabel } from "./types.js";
import { GroupKeyer } from "./group-keys.js";

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
      const agg = new SimpleAgg(e.op, n, grouping, e.without, env);
      if (!(await foldOnStream(e.expr, ctx, env, agg))) {
        await streamVector(e.expr, ctx, env, (labels, dropName, values, present) => agg.add(labels, dropName, values, present));
      }
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

/**
 * A range function over a streamed selector under this aggregation (`sum by (mode)
 * (rate(x[5m]))`): the querier may fold it where it computes the rollup (streamRollupFold).
 * False when it does not; nothing has been read then.
 */
async function foldOnStream(expr: Expr, ctx: StepCtx, env: Env, agg: SimpleAgg): Promise<boolean> {
  const u = unwrap(expr);
  if (u.kind !== "Call" || u.args.length !== 1 || !SIMPLE_ROLLUPS.has(u.func.name)) return false;
  const m = unwrap(u.args[0]!);
  if (m.kind !== "MatrixSelector" || !env.streams.has(m.vector)) return false;
  checkModifiers(m, u.func.name);
  return streamRollupFold(u, m, ctx, env, agg);
}

/** Doubles per accumulator chunk of SimpleAgg (64 KiB). */
const GROUP_CHUNK_DOUBLES = 8192;
const NO_DOUBLES = new Float64Array(0);

interface AggGroup extends FoldAcc {
  readonly labels: Labels;
  dropName: boolean;
  /** A group finished by the querier (`adopt`): `val` holds its result, present where it has one. */
  readonly present?: Uint8Array;
}

/**
 * sum, avg, count, min, max, group, stddev, stdvar: per-group accumulators of one value per
 * step, fed series by series (so the input can be streamed without being materialised) through
 * fold.ts foldSeries, or folded by the querier (`adopt`, selectors.ts streamRollupFold). Groups
 * are found by GroupKeyer ids (group-keys.ts), not key strings.
 */
class SimpleAgg implements FoldTarget {
  /** Groups in the order of their first contributing series (the output order). */
  private readonly groups: AggGroup[] = [];
  /** Groups by id: the keyer's (`add`) or the partition's (`adopt`). */
  private readonly byId: (AggGroup | undefined)[] = [];
  private readonly keyer: GroupKeyer;
  private chunk = NO_DOUBLES;
  private chunkUsed = 0;

  constructor(
    readonly op: string,
    private readonly n: number,
    private readonly grouping: ReadonlySet<string>,
    private readonly without: boolean,
    private readonly env: Env,
  ) {
    this.keyer = new GroupKeyer(grouping, without);
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

  add(labels: Labels, dropName: boolean, vals: Float64Array, pres: Uint8Array): void {
    const id = this.keyer.id(labels);
    let g = this.byId[id];
    if (g === undefined) {
      const n = this.n;
      const [c, m, i] = foldLengths(this.op, n);
      g = {
        labels: groupLabels(labels, this.grouping, this.without),
        val: this.take(n),
        comp: this.take(c),
        mean: this.take(m),
        count: this.take(n),
        incr: i > 0 ? new Uint8Array(i) : undefined,
        dropName: false,
      };
      this.byId[id] = g;
      this.groups.push(g);
    }
    if (foldSeries(this.op, g, this.n, vals, pres) && dropName) g.dropName = true;
  }

  /**
   * Takes group `group` of the partition (`partition`), folded and finished elsewhere
   * (SeriesStream.rollupFold: every series of the group, in stream order, through foldSeries,
   * then finishFold), as if its series had been added here. Groups must come in the order of
   * their first contributing series (the order `add` creates them in).
   */
  adopt(group: number, labels: Labels, dropName: boolean, values: Float64Array, present: Uint8Array): void {
    if (this.byId[group] !== undefined) throw evalError("a folded group arrived twice");
    const g: AggGroup = { labels: groupLabels(labels, this.grouping, this.without), val: values, comp: NO_DOUBLES, mean: NO_DOUBLES, count: NO_DOUBLES, incr: undefined, dropName, present };
    this.byId[group] = g;
    this.groups.push(g);
  }

  /**
   * Group index per series of `labels` (in first-seen order) and the number of groups: the
   * partition a querier folds by (each group's series on one thread, in order). The query's
   * cost estimate made the same partition of the same series already (engine.ts): it is reused.
   */
  partition(labels: readonly Labels[]): { readonly groupOf: Int32Array; readonly groups: number } {
    return this.env.partitions.get(labels, this.grouping, this.without);
  }

  finish(): VectorValue {
    const n = this.n;
    const op = this.op;
    const out: VSeries[] = [];
    for (const g of this.groups) {
      if (g.present !== undefined) {
        out.push({ labels: g.labels, dropName: g.dropName, values: g.val, present: g.present });
        continue;
      }
      // In place: each step reads only its own accumulators, and the group is not used again.
      const present = this.env.columns.present(n);
      if (finishFold(op, n, g, present)) out.push({ labels: g.labels, dropName: g.dropName, values: g.val, present });
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
