import { assertNever } from "@strata/core";
import type { Label, Labels } from "@strata/core";
import type { BinaryExpr, BinaryOp, UnaryExpr, VectorMatching } from "../ast.js";
import { evalExpr } from "./eval.js";
import type { Columns } from "./columns.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import { GroupKeyer } from "./group-keys.js";
import { goPow } from "./mathutil.js";
import type { ScalarValue, StepCtx, Value, VectorValue, VSeries } from "./types.js";
import { dropMetricName, labelsKey, labelsString, setLabel } from "./types.js";

function isComparison(op: BinaryOp): boolean {
  return op === "==" || op === "!=" || op === ">" || op === "<" || op === ">=" || op === "<=";
}

function isArithmetic(op: BinaryOp): boolean {
  return op === "+" || op === "-" || op === "*" || op === "/" || op === "%" || op === "^" || op === "atan2";
}

/** Prometheus' vectorElemBinop for floats: the value, and whether a comparison keeps it. */
let keepFlag = true;
function elemBinop(op: BinaryOp, l: number, r: number): number {
  keepFlag = true;
  switch (op) {
    case "+":
      return l + r;
    case "-":
      return l - r;
    case "*":
      return l * r;
    case "/":
      return l / r;
    case "%":
      return l % r;
    case "^":
      return goPow(l, r);
    case "atan2":
      return Math.atan2(l, r);
    case "==":
      keepFlag = l === r;
      return l;
    case "!=":
      keepFlag = l !== r;
      return l;
    case ">":
      keepFlag = l > r;
      return l;
    case "<":
      keepFlag = l < r;
      return l;
    case ">=":
      keepFlag = l >= r;
      return l;
    case "<=":
      keepFlag = l <= r;
      return l;
    default:
      throw evalError(`operator ${op} not allowed for float operations`);
  }
}

export function evalUnary(e: UnaryExpr, v: Value): Value {
  if (e.op === "+") return v;
  if (v.kind === "scalar") {
    const values = new Float64Array(v.values.length);
    for (let k = 0; k < values.length; k++) values[k] = -v.values[k]!;
    return { kind: "scalar", values };
  }
  if (v.kind === "vector") {
    const series: VSeries[] = v.series.map((s) => {
      const values = new Float64Array(s.values.length);
      for (let k = 0; k < values.length; k++) values[k] = -s.values[k]!;
      return { labels: s.labels, dropName: true, values, present: s.present };
    });
    return { kind: "vector", series };
  }
  throw evalError("unary operator on a string");
}

export async function evalBinary(e: BinaryExpr, ctx: StepCtx, env: Env): Promise<Value> {
  const n = ctx.times.length;
  const lhs = await evalExpr(e.lhs, ctx, env);
  const rhs = await evalExpr(e.rhs, ctx, env);
  const op = e.op;
  if (lhs.kind === "scalar" && rhs.kind === "scalar") {
    const values = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const r = elemBinop(op, lhs.values[k]!, rhs.values[k]!);
      values[k] = isComparison(op) ? (keepFlag ? 1 : 0) : r;
    }
    return { kind: "scalar", values } satisfies ScalarValue;
  }
  if (lhs.kind === "vector" && rhs.kind === "scalar") return vectorScalar(op, lhs, rhs.values, false, e.returnBool, n, env);
  if (lhs.kind === "scalar" && rhs.kind === "vector") return vectorScalar(op, rhs, lhs.values, true, e.returnBool, n, env);
  if (lhs.kind === "vector" && rhs.kind === "vector") {
    const matching: VectorMatching = e.matching ?? {
      card: op === "and" || op === "or" || op === "unless" ? "many-to-many" : "one-to-one",
      on: false,
      labels: [],
      include: [],
      fillLeft: undefined,
      fillRight: undefined,
    };
    switch (op) {
      case "and":
      case "or":
      case "unless":
        return setOp(op, lhs, rhs, matching, n, ctx, env);
      default:
        return vectorVector(op, lhs, rhs, matching, e.returnBool, n, ctx, env);
    }
  }
  throw evalError(`invalid operand types for binary operator ${op}`);
}

/**
 * `x op y` (`y op x` with `swap`) for `+ - * /` over whole columns: y is a scalar's column or
 * another series'. Absent steps are computed too (their values are meaningless either way);
 * `bool` does not apply to arithmetic.
 */
function arithColumn(op: "+" | "-" | "*" | "/", x: Float64Array, y: Float64Array, swap: boolean, out: Float64Array): void {
  const n = out.length;
  switch (op) {
    case "+":
      for (let k = 0; k < n; k++) out[k] = x[k]! + y[k]!;
      return;
    case "-":
      if (swap) for (let k = 0; k < n; k++) out[k] = y[k]! - x[k]!;
      else for (let k = 0; k < n; k++) out[k] = x[k]! - y[k]!;
      return;
    case "*":
      for (let k = 0; k < n; k++) out[k] = x[k]! * y[k]!;
      return;
    case "/":
      if (swap) for (let k = 0; k < n; k++) out[k] = y[k]! / x[k]!;
      else for (let k = 0; k < n; k++) out[k] = x[k]! / y[k]!;
      return;
    default:
      assertNever(op, "operator");
  }
}

function vectorScalar(op: BinaryOp, v: VectorValue, s: Float64Array, swap: boolean, returnBool: boolean, n: number, env: Env): VectorValue {
  const cmp = isComparison(op);
  const columnOp = op === "+" || op === "-" || op === "*" || op === "/";
  const out: VSeries[] = [];
  for (const ser of v.series) {
    if (columnOp) {
      let any = false;
      for (let k = 0; k < n && !any; k++) any = ser.present[k] === 1;
      if (!any) continue;
      const values = env.columns.values(n);
      arithColumn(op, ser.values, s, swap, values);
      out.push({ labels: ser.labels, dropName: true, values, present: ser.present });
      continue;
    }
    const values = env.columns.values(n);
    let present = ser.present;
    let copied = false;
    let any = false;
    for (let k = 0; k < n; k++) {
      if (ser.present[k] !== 1) continue;
      const x = ser.values[k]!;
      const y = s[k]!;
      let r = swap ? elemBinop(op, y, x) : elemBinop(op, x, y);
      if (cmp && swap) r = x;
      let keep = keepFlag;
      if (returnBool) {
        r = keep ? 1 : 0;
        keep = true;
      }
      if (!keep) {
        if (!copied) {
          present = new Uint8Array(ser.present);
          copied = true;
        }
        present[k] = 0;
        continue;
      }
      values[k] = r;
      any = true;
    }
    if (any) out.push({ labels: ser.labels, dropName: ser.dropName || returnBool || isArithmetic(op), values, present });
  }
  return { kind: "vector", series: out };
}

/** The keyer of a matching's signatures: `on (…)` keeps those labels, `ignoring (…)` all others but `__name__`. */
function signatureKeyer(m: VectorMatching): GroupKeyer {
  return new GroupKeyer(new Set(m.labels), !m.on);
}

/**
 * Signature (match key) per series, as small integer ids (interned label pairs, no key strings);
 * ids are dense from 0 in first-seen order over every call with the same `keyer`.
 */
function signatures(series: readonly VSeries[], keyer: GroupKeyer): Int32Array {
  const out = new Int32Array(series.length);
  for (let i = 0; i < series.length; i++) out[i] = keyer.id(series[i]!.labels);
  return out;
}

function matchLabels(labels: Labels, on: boolean, names: readonly string[]): Labels {
  const set = new Set(names);
  return labels.filter((l) => (on ? set.has(l.name) : !set.has(l.name) && l.name !== "__name__"));
}

/** Collects output series keyed by labels; two outputs with one label set at one step fail. */
class Output {
  readonly series: VSeries[] = [];
  /** Output series by the id of their whole label set (`__name__` included). */
  private readonly keyer = new GroupKeyer(new Set(), true, false);
  private readonly byId: (VSeries | undefined)[] = [];
  constructor(
    private readonly n: number,
    private readonly checkDup: boolean,
    private readonly columns: Columns,
  ) {}

  get(labels: Labels, dropName: boolean): VSeries {
    const id = this.keyer.id(labels);
    let s = this.byId[id];
    if (s === undefined) {
      s = { labels, dropName, values: this.columns.values(this.n), present: this.columns.present(this.n) };
      this.byId[id] = s;
      this.series.push(s);
    }
    return s;
  }

  /**
   * Takes `values`/`present` as the new series of `labels`; when that label set has a series
   * already, returns it (the caller merges step by step with `set`).
   */
  adopt(labels: Labels, dropName: boolean, values: Float64Array, present: Uint8Array): VSeries | undefined {
    const id = this.keyer.id(labels);
    const s = this.byId[id];
    if (s !== undefined) return s;
    const ns: VSeries = { labels, dropName, values, present };
    this.byId[id] = ns;
    this.series.push(ns);
    return undefined;
  }

  set(s: VSeries, k: number, v: number): void {
    if (s.present[k] === 1 && this.checkDup) throw evalError("vector cannot contain metrics with the same labelset");
    s.present[k] = 1;
    s.values[k] = v;
  }
}

function setOp(op: "and" | "or" | "unless", lhs: VectorValue, rhs: VectorValue, m: VectorMatching, n: number, ctx: StepCtx, env: Env): VectorValue {
  const keyer = signatureKeyer(m);
  const ls = signatures(lhs.series, keyer);
  const rs = signatures(rhs.series, keyer);
  const stamp = new Int32Array(keyer.size).fill(-1);
  const out = new Output(n, ctx.start !== ctx.end, env.columns);
  const lOut: (VSeries | undefined)[] = [];
  const rOut: (VSeries | undefined)[] = [];
  for (let k = 0; k < n; k++) {
    if (op === "or") {
      for (let i = 0; i < lhs.series.length; i++) {
        const s = lhs.series[i]!;
        if (s.present[k] !== 1) continue;
        stamp[ls[i]!] = k;
        const o = (lOut[i] ??= out.get(s.labels, s.dropName));
        out.set(o, k, s.values[k]!);
      }
      for (let j = 0; j < rhs.series.length; j++) {
        const s = rhs.series[j]!;
        if (s.present[k] !== 1 || stamp[rs[j]!] === k) continue;
        const o = (rOut[j] ??= out.get(s.labels, s.dropName));
        out.set(o, k, s.values[k]!);
      }
      continue;
    }
    for (let j = 0; j < rhs.series.length; j++) if (rhs.series[j]!.present[k] === 1) stamp[rs[j]!] = k;
    for (let i = 0; i < lhs.series.length; i++) {
      const s = lhs.series[i]!;
      if (s.present[k] !== 1) continue;
      const matched = stamp[ls[i]!] === k;
      if (matched !== (op === "and")) continue;
      const o = (lOut[i] ??= out.get(s.labels, s.dropName));
      out.set(o, k, s.values[k]!);
    }
  }
  return { kind: "vector", series: out.series };
}

/** Prometheus' resultMetric. `one` is undefined when the one side was filled. */
function resultMetric(many: Labels, one: Labels | undefined, op: BinaryOp, m: VectorMatching): Labels {
  let labels: Label[] = isArithmetic(op) ? [...dropMetricName(many)] : [...many];
  if (m.card === "one-to-one") {
    const set = new Set(m.labels);
    labels = labels.filter((l) => (m.on ? set.has(l.name) : !set.has(l.name)));
  }
  let out: Labels = labels;
  for (const ln of m.include) {
    let v = "";
    if (one !== undefined) for (const l of one) if (l.name === ln) v = l.value;
    out = setLabel(out, ln, v);
  }
  return out;
}

function vectorVector(
  op: BinaryOp,
  lhs: VectorValue,
  rhs: VectorValue,
  m: VectorMatching,
  returnBool: boolean,
  n: number,
  ctx: StepCtx,
  env: Env,
): VectorValue {
  if (m.card === "one-to-one" && m.fillLeft === undefined && m.fillRight === undefined) {
    const r = oneToOneColumns(op, lhs.series, rhs.series, m, returnBool, n, ctx, env);
    if (r !== undefined) return r;
  }
  const swapped = m.card === "one-to-many";
  const many = swapped ? rhs.series : lhs.series;
  const one = swapped ? lhs.series : rhs.series;
  // Prometheus applies fill_left to the "many" side and fill_right to the "one" side, also
  // for group_right (where the operands were swapped).
  const fillOne = m.fillRight;
  const fillMany = m.fillLeft;
  const keyer = signatureKeyer(m);
  const manySig = signatures(many, keyer);
  const oneSig = signatures(one, keyer);
  const S = keyer.size;
  const oneAt = new Int32Array(S).fill(-1);
  const oneIdx = new Int32Array(S);
  const matchedAt = new Int32Array(S).fill(-1);
  const out = new Output(n, ctx.start !== ctx.end, env.columns);
  // The output series of each "many" series' last pair (one-to-one matching pairs the same two
  // series at every step): an array lookup per sample instead of a Map lookup by pair.
  const pairOne = new Int32Array(many.length).fill(-1);
  const pairOut: (VSeries | undefined)[] = new Array<VSeries | undefined>(many.length);
  const pairCache = new Map<number, VSeries>();
  const fillCache = new Map<number, VSeries>();
  const dropName = returnBool || isArithmetic(op);
  const cmp = isComparison(op);
  const oneSide = swapped ? "left" : "right";
  const inserted = new Set<string>();
  const apply = (fl: number, fr: number): number | undefined => {
    let r = elemBinop(op, fl, fr);
    if (returnBool) r = keepFlag ? 1 : 0;
    else if (cmp && !keepFlag) return undefined;
    return r;
  };
  for (let k = 0; k < n; k++) {
    env.checkAbort();
    for (let j = 0; j < one.length; j++) {
      const s = one[j]!;
      if (s.present[k] !== 1) continue;
      const sid = oneSig[j]!;
      if (oneAt[sid] === k) {
        const dup = one[oneIdx[sid]!]!;
        throw evalError(
          `found duplicate series for the match group ${labelsString(matchLabels(s.labels, m.on, m.labels))} on the ${oneSide} hand-side of the operation: [${labelsString(dup.labels)}, ${labelsString(s.labels)}];many-to-many matching not allowed: matching labels must be unique on one side`,
        );
      }
      oneAt[sid] = k;
      oneIdx[sid] = j;
    }
    if (m.card !== "one-to-one") inserted.clear();
    for (let i = 0; i < many.length; i++) {
      const s = many[i]!;
      if (s.present[k] !== 1) continue;
      const sid = manySig[i]!;
      if (oneAt[sid] !== k) {
        if (fillOne === undefined) continue;
        const mv = s.values[k]!;
        const r = swapped ? apply(fillOne, mv) : apply(mv, fillOne);
        if (r === undefined) continue;
        let o = fillCache.get(i);
        if (o === undefined) {
          o = out.get(resultMetric(s.labels, undefined, op, m), dropName);
          fillCache.set(i, o);
        }
        out.set(o, k, r);
        continue;
      }
      const j = oneIdx[sid]!;
      const os = one[j]!;
      const mv = s.values[k]!;
      const ov = os.values[k]!;
      const r = swapped ? apply(ov, mv) : apply(mv, ov);
      const firstMatch = matchedAt[sid] !== k;
      matchedAt[sid] = k;
      if (r === undefined) {
        if (m.card === "one-to-one" && !firstMatch) {
          throw evalError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
        }
        continue;
      }
      let o = pairOne[i] === j ? pairOut[i] : undefined;
      if (o === undefined) {
        const pairKey = i * one.length + j;
        o = pairCache.get(pairKey);
        if (o === undefined) {
          o = out.get(resultMetric(s.labels, os.labels, op, m), dropName);
          pairCache.set(pairKey, o);
        }
        pairOne[i] = j;
        pairOut[i] = o;
      }
      if (m.card === "one-to-one") {
        if (!firstMatch) throw evalError("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
      } else {
        const key = `${sid}|${labelsKey(o.labels)}`;
        if (inserted.has(key)) throw evalError("multiple matches for labels: grouping labels must ensure unique matches");
        inserted.add(key);
      }
      out.set(o, k, r);
    }
    if (fillMany !== undefined) {
      for (let j = 0; j < one.length; j++) {
        const s = one[j]!;
        if (s.present[k] !== 1) continue;
        const sid = oneSig[j]!;
        if (matchedAt[sid] === k) continue;
        const ov = s.values[k]!;
        const r = swapped ? apply(ov, fillMany) : apply(fillMany, ov);
        if (r === undefined) continue;
        let o = fillCache.get(-1 - j);
        if (o === undefined) {
          o = out.get(matchLabels(s.labels, m.on, m.labels), dropName);
          fillCache.set(-1 - j, o);
        }
        out.set(o, k, r);
      }
    }
  }
  return { kind: "vector", series: out.series };
}

/** True when no two entries of `sig` are equal (ids are < `size`). */
function distinct(sig: Int32Array, size: number): boolean {
  const seen = new Uint8Array(size);
  for (let i = 0; i < sig.length; i++) {
    if (seen[sig[i]!] === 1) return false;
    seen[sig[i]!] = 1;
  }
  return true;
}

/**
 * One-to-one matching without fill when every match group has at most one series on each side:
 * then no step can hold a duplicate or a multiple match, so each pair is matched once (not per
 * step) and computed over its whole step columns. The output series come in the order the
 * step-by-step loop makes them (by first output step, then left-hand order), so what folds them
 * later adds in the same order. Undefined when a group has two series on one side (the
 * step-by-step loop then finds the errors where they occur).
 */
function oneToOneColumns(
  op: BinaryOp,
  lhs: readonly VSeries[],
  rhs: readonly VSeries[],
  m: VectorMatching,
  returnBool: boolean,
  n: number,
  ctx: StepCtx,
  env: Env,
): VectorValue | undefined {
  const keyer = signatureKeyer(m);
  const lSig = signatures(lhs, keyer);
  const rSig = signatures(rhs, keyer);
  if (!distinct(lSig, keyer.size) || !distinct(rSig, keyer.size)) return undefined;
  const rOf = new Int32Array(keyer.size).fill(-1);
  for (let j = 0; j < rhs.length; j++) rOf[rSig[j]!] = j;
  const cmp = isComparison(op);
  const dropName = returnBool || isArithmetic(op);
  // Per pair: its values and presence, and the first step with an output (n: none).
  const pairs: { i: number; first: number; values: Float64Array; present: Uint8Array }[] = [];
  let values = env.columns.values(n);
  let present = env.columns.present(n);
  for (let i = 0; i < lhs.length; i++) {
    const j = rOf[lSig[i]!]!;
    if (j < 0) continue;
    env.checkAbort();
    const first = pairColumns(op, cmp, returnBool, lhs[i]!, rhs[j]!, n, values, present);
    if (first === n) continue;
    pairs.push({ i, first, values, present });
    values = env.columns.values(n);
    present = env.columns.present(n);
  }
  pairs.sort((a, b) => a.first - b.first || a.i - b.i);
  // resultMetric keeps every label of the signature (`on`: exactly those; `ignoring`: those and
  // maybe __name__), so distinct signatures make distinct label sets — unless `on (__name__)`
  // while an arithmetic operator drops the name.
  if (!(m.on && isArithmetic(op) && m.labels.includes("__name__"))) {
    const series: VSeries[] = [];
    for (const p of pairs) {
      const labels = resultMetric(lhs[p.i]!.labels, rhs[rOf[lSig[p.i]!]!]!.labels, op, m);
      series.push({ labels, dropName, values: p.values, present: p.present });
    }
    return { kind: "vector", series };
  }
  const out = new Output(n, ctx.start !== ctx.end, env.columns);
  for (const p of pairs) {
    const s = lhs[p.i]!;
    const labels = resultMetric(s.labels, rhs[rOf[lSig[p.i]!]!]!.labels, op, m);
    const o = out.adopt(labels, dropName, p.values, p.present);
    if (o === undefined) continue;
    // Another pair made this label set already: merged step by step, as the loop would.
    for (let k = 0; k < n; k++) if (p.present[k] === 1) out.set(o, k, p.values[k]!);
  }
  return { kind: "vector", series: out.series };
}

/**
 * `l op r` over the steps where both are present, into `values`/`present` (zeroed); returns
 * the first step with an output (n: none, and `values`/`present` are left zeroed). A comparison
 * without `bool` keeps l where it holds.
 */
function pairColumns(
  op: BinaryOp,
  cmp: boolean,
  returnBool: boolean,
  l: VSeries,
  r: VSeries,
  n: number,
  values: Float64Array,
  present: Uint8Array,
): number {
  const lp = l.present;
  const rp = r.present;
  let first = n;
  for (let k = 0; k < n; k++) {
    const both = lp[k]! & rp[k]!;
    present[k] = both;
    if (both === 1 && first === n) first = k;
  }
  if (first === n) return n;
  if (op === "+" || op === "-" || op === "*" || op === "/") {
    arithColumn(op, l.values, r.values, false, values);
    return first;
  }
  first = n;
  for (let k = 0; k < n; k++) {
    if (present[k] === 0) continue;
    let v = elemBinop(op, l.values[k]!, r.values[k]!);
    if (returnBool) v = keepFlag ? 1 : 0;
    else if (cmp && !keepFlag) {
      present[k] = 0;
      continue;
    }
    values[k] = v;
    if (first === n) first = k;
  }
  return first;
}
