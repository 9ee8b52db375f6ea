import { assertNever } from "@strata/core";
import type { Labels } from "@strata/core";
import type { Call, Expr, MatrixSelector, VectorSelector } from "../ast.js";
import { evalAggregate } from "./aggregate.js";
import { evalBinary, evalUnary } from "./binary.js";
import { SERIES_BYTES, SERIES_STEP_BYTES } from "./cost.js";
import { evalError } from "./env.js";
import type { Env } from "./env.js";
import { evalFunction } from "./functions.js";
import { evalInfo } from "./info.js";
import { RANGE_FUNCTIONS, evalRangeFunction, streamRangeFunction } from "./range-functions.js";
import type { SeriesSink } from "./range-functions.js";
import { checkModifiers, evalRangeArg, evalVectorSelector, matrixArg, selectionBatches, streamRollup, streamVectorSelector } from "./selectors.js";
import { matrixArgIndex } from "./select.js";
import type { ScalarValue, StepCtx, Value, VectorValue, VSeries } from "./types.js";

type ExprType = "scalar" | "string" | "vector" | "matrix";

export function typeOfExpr(e: Expr): ExprType {
  switch (e.kind) {
    case "NumberLiteral":
      return "scalar";
    case "StringLiteral":
      return "string";
    case "VectorSelector":
      return "vector";
    case "MatrixSelector":
    case "SubqueryExpr":
      return "matrix";
    case "Call":
      return e.func.returnType;
    case "AggregateExpr":
      return "vector";
    case "BinaryExpr":
      return typeOfExpr(e.lhs) === "scalar" && typeOfExpr(e.rhs) === "scalar" ? "scalar" : "vector";
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return typeOfExpr(e.expr);
    default:
      return assertNever(e, "expression");
  }
}

export function constScalar(v: number, n: number): ScalarValue {
  const values = new Float64Array(n);
  values.fill(v);
  return { kind: "scalar", values };
}

/** Evaluates an expression of type scalar, string or vector at every time of `ctx`. */
export async function evalExpr(e: Expr, ctx: StepCtx, env: Env): Promise<Value> {
  await env.yieldIfDue();
  const n = ctx.times.length;
  switch (e.kind) {
    case "NumberLiteral":
      return charge(constScalar(e.value, n), n, env);
    case "StringLiteral":
      return { kind: "string", value: e.value };
    case "VectorSelector":
      return charge(await evalVectorSelector(e, ctx, env, "value"), n, env);
    case "MatrixSelector":
    case "SubqueryExpr":
      throw evalError(`unexpected range vector ${e.kind} in an instant context`);
    case "Call":
      return charge(await evalCall(e, ctx, env), n, env);
    case "AggregateExpr":
      return charge(checkVector(await evalAggregate(e, ctx, env), n, env), n, env);
    case "BinaryExpr":
      return charge(await evalBinary(e, ctx, env), n, env);
    case "UnaryExpr":
      return charge(evalUnary(e, await evalExpr(e.expr, ctx, env)), n, env);
    case "ParenExpr":
    case "StepInvariantExpr":
      return await evalExpr(e.expr, ctx, env);
    default:
      return assertNever(e, "expression");
  }
}

/** Counts a node's output against the query's memory (see QueryMemory). */
function charge(v: Value, n: number, env: Env): Value {
  if (v.kind === "vector") env.memory.charge(v.series.length * (n * SERIES_STEP_BYTES + SERIES_BYTES));
  else if (v.kind === "scalar") env.memory.charge(n * 8);
  return v;
}

function checkVector(v: VectorValue, n: number, env: Env): VectorValue {
  if (env.opts.maxSamples !== undefined) {
    let points = 0;
    for (const s of v.series) for (let k = 0; k < n; k++) points += s.present[k]!;
    env.checkSamples(points);
  }
  return v;
}

/** Evaluates `e` and requires an instant vector. */
export async function evalVector(e: Expr, ctx: StepCtx, env: Env): Promise<VectorValue> {
  const v = await evalExpr(e, ctx, env);
  if (v.kind !== "vector") throw evalError(`expected instant vector, got ${v.kind}`);
  return v;
}

/** Evaluates `e` and requires a scalar. */
export async function evalScalar(e: Expr, ctx: StepCtx, env: Env): Promise<ScalarValue> {
  const v = await evalExpr(e, ctx, env);
  if (v.kind !== "scalar") throw evalError(`expected scalar, got ${v.kind}`);
  return v;
}

export function unwrap(e: Expr): Expr {
  while (e.kind === "ParenExpr" || e.kind === "StepInvariantExpr") e = e.expr;
  return e;
}

async function evalCall(e: Call, ctx: StepCtx, env: Env): Promise<Value> {
  const name = e.func.name;
  const n = ctx.times.length;
  if (RANGE_FUNCTIONS.has(name)) {
    let mi = e.func.argTypes.indexOf("matrix");
    if (mi < 0) mi = 0;
    const m = unwrap(e.args[mi]!);
    if (m.kind === "MatrixSelector" && env.streams.has(m.vector) && name !== "absent_over_time") {
      return checkVector(await collectRangeFunction(e, m, mi, ctx, env), n, env);
    }
    const arg = await evalRangeArg(e.args[mi]!, ctx, env, name);
    const scalars: Float64Array[] = [];
    for (let i = 0; i < e.args.length; i++) if (i !== mi) scalars.push((await evalScalar(e.args[i]!, ctx, env)).values);
    const out = await evalRangeFunction(e, arg, scalars, ctx, env);
    if (name === "absent_over_time") return absentOverTime(e, out, n);
    return checkVector(out, n, env);
  }
  if (name === "info") {
    const base = await evalVector(e.args[0]!, ctx, env);
    return checkVector(evalInfo(e, base, ctx, env, env.selections.get(e) ?? []), n, env);
  }
  if (name === "timestamp") {
    const a = unwrap(e.args[0]!);
    if (a.kind === "VectorSelector") {
      const v = await evalVectorSelector(a, ctx, env, "timestamp");
      for (const s of v.series) s.dropName = true;
      return v;
    }
  }
  if (name === "start_timestamp") {
    // Start timestamps only exist on selected data: over any other expression there is none.
    const a = unwrap(e.args[0]!);
    if (a.kind !== "VectorSelector") {
      await evalVector(a, ctx, env);
      return { kind: "vector", series: [] };
    }
    const v = await evalVectorSelector(a, ctx, env, "start");
    for (const s of v.series) s.dropName = true;
    return v;
  }
  const args: Value[] = [];
  for (const a of e.args) args.push(await evalExpr(a, ctx, env));
  const out = evalFunction(e, args, ctx, env);
  return out.kind === "vector" ? checkVector(out, n, env) : out;
}

/**
 * A range function over a streamed matrix selector (`m`, argument `mi` of `call`): the querier
 * computes the function, or it runs over one batch at a time. The arrays given to `sink` may be
 * shared between calls (the sink must copy what it keeps).
 */
async function streamSelection(call: Call, m: MatrixSelector, mi: number, ctx: StepCtx, env: Env, sink: SeriesSink): Promise<void> {
  checkModifiers(m, call.func.name);
  if (await streamRollup(call, m, ctx, env, sink)) return;
  const scalars: Float64Array[] = [];
  for (let i = 0; i < call.args.length; i++) if (i !== mi) scalars.push((await evalScalar(call.args[i]!, ctx, env)).values);
  for await (const batch of selectionBatches(m.vector, env)) {
    await streamRangeFunction(call, matrixArg(m, batch, ctx, env, call.func.name), scalars, ctx, env, sink, true);
  }
}

/**
 * A range function over a streamed matrix selector as a whole vector (an operand of a binary
 * operator): only its step values are kept, never the selection's samples. The series are those
 * of evalRangeFunction over the whole selection, in the same order, with the same values where
 * present and zero elsewhere (as its fresh arrays have).
 */
async function collectRangeFunction(call: Call, m: MatrixSelector, mi: number, ctx: StepCtx, env: Env): Promise<VectorValue> {
  const n = ctx.times.length;
  const series: VSeries[] = [];
  await streamSelection(call, m, mi, ctx, env, (labels, dropName, values, present) => {
    const v = env.columns.values(n);
    const p = env.columns.present(n);
    for (let k = 0; k < n; k++) {
      if (present[k] !== 1) continue;
      v[k] = values[k]!;
      p[k] = 1;
    }
    series.push({ labels, dropName, values: v, present: p });
  });
  return { kind: "vector", series };
}

/**
 * Feeds the series of an instant-vector expression to `sink`. Range functions stream with
 * reused arrays (the sink must copy what it keeps); everything else is evaluated first.
 */
export async function streamVector(e: Expr, ctx: StepCtx, env: Env, sink: SeriesSink): Promise<void> {
  const u = unwrap(e);
  if (u.kind === "Call" && RANGE_FUNCTIONS.has(u.func.name) && u.func.name !== "absent_over_time") {
    const mi = matrixArgIndex(u);
    const m = unwrap(u.args[mi]!);
    if (m.kind === "MatrixSelector" && env.streams.has(m.vector)) {
      await streamSelection(u, m, mi, ctx, env, sink);
      return;
    }
    const arg = await evalRangeArg(u.args[mi]!, ctx, env, u.func.name);
    const scalars: Float64Array[] = [];
    for (let i = 0; i < u.args.length; i++) if (i !== mi) scalars.push((await evalScalar(u.args[i]!, ctx, env)).values);
    await streamRangeFunction(u, arg, scalars, ctx, env, sink, true);
    return;
  }
  if (u.kind === "VectorSelector") {
    await streamVectorSelector(u, ctx, env, "value", true, sink);
    return;
  }
  const v = await evalVector(e, ctx, env);
  for (const s of v.series) sink(s.labels, s.dropName, s.values, s.present);
}

function absentOverTime(e: Call, v: VectorValue, n: number): VectorValue {
  const values = new Float64Array(n);
  const present = new Uint8Array(n);
  let any = false;
  for (let k = 0; k < n; k++) {
    let found = false;
    for (const s of v.series) {
      if (s.present[k] === 1) {
        found = true;
        break;
      }
    }
    if (!found) {
      values[k] = 1;
      present[k] = 1;
      any = true;
    }
  }
  if (!any) return { kind: "vector", series: [] };
  return { kind: "vector", series: [{ labels: absentLabels(e.args[0]!), dropName: false, values, present }] };
}

/** Prometheus' createLabelsForAbsentFunction. */
export function absentLabels(arg: Expr): Labels {
  let sel: VectorSelector | undefined;
  if (arg.kind === "VectorSelector") sel = arg;
  else if (arg.kind === "MatrixSelector") sel = arg.vector;
  if (sel === undefined) return [];
  const has = new Set<string>();
  const m = new Map<string, string>();
  for (const ma of sel.matchers) {
    if (ma.name === "__name__") continue;
    if (ma.type === "=" && !has.has(ma.name)) {
      m.set(ma.name, ma.value);
      has.add(ma.name);
    } else {
      m.delete(ma.name);
    }
  }
  const out: { name: string; value: string }[] = [];
  for (const [name, value] of m) if (value !== "") out.push({ name, value });
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}
