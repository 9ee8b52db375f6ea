import { compareLabels, normalizeLabels, RE2JS, type Label, type Labels } from "@strata/core";
import type { QueryResult } from "../engine/result.js";
import { formatFloat } from "../printer.js";
import type { EvalCommand, Expectation, ExpectedSeries } from "./script.js";

/**
 * Result checks of Prometheus' promqltest: float tolerance (relative 1e-6, NaN equals NaN),
 * label sets compared exactly (metric name included), order only for `expect ordered`, matrix
 * points at start + i*step with `_` meaning no sample, annotation and failure expectations.
 */

const DEFAULT_EPSILON = 0.000001;
const MIN_NORMAL = 2.2250738585072014e-308;

export function almostEqual(a: number, b: number, epsilon = DEFAULT_EPSILON): boolean {
  if (Number.isNaN(a) && Number.isNaN(b)) return true;
  if (a === b) return true;
  const absSum = Math.abs(a) + Math.abs(b);
  const diff = Math.abs(a - b);
  if (a === 0 || b === 0 || absSum < MIN_NORMAL) return diff < epsilon * MIN_NORMAL;
  return diff / Math.min(absSum, Number.MAX_VALUE) < epsilon;
}

function labelsKey(labels: readonly Label[]): string {
  const sorted = normalizeLabels(labels);
  let s = "";
  for (const l of sorted) s += `${l.name}\u0000${l.value}\u0001`;
  return s;
}

export function formatLabelSet(labels: readonly Label[]): string {
  const name = labels.find((l) => l.name === "__name__")?.value ?? "";
  const rest = labels.filter((l) => l.name !== "__name__").map((l) => `${l.name}=${JSON.stringify(l.value)}`);
  return `${name}{${rest.join(", ")}}`;
}

/** A result that does not match the expectations; its message says how. */
export class Mismatch extends Error {}

function matches(exp: Expectation, s: string): boolean {
  if (exp.match === undefined) return true;
  if (exp.match.type === "msg") return exp.match.text === s;
  return RE2JS.compile(exp.match.text).matcher(s).find();
}

/** promqltest's checkExpectedFailure: legacy fail messages all match, then the first `expect fail`. */
export function checkFailure(cmd: EvalCommand, err: unknown): void {
  const msg = errMessage(err);
  const fails = cmd.expectations.filter((e) => e.kind === "fail");
  const check = [...fails.filter((e) => e.source === "legacy"), ...fails.filter((e) => e.source === "expect").slice(0, 1)];
  for (const f of check) {
    if (f.match !== undefined && !matches(f, msg)) {
      throw new Mismatch(`expected error ${f.match.type === "msg" ? "" : "matching "}${JSON.stringify(f.match.text)}, but got: ${msg}`);
    }
  }
}

export function checkAnnotations(cmd: EvalCommand, res: QueryResult): void {
  for (const [kind, none, list] of [
    ["warn", "no_warn", res.warnings],
    ["info", "no_info", res.infos],
  ] as const) {
    const exps = cmd.expectations.filter((e) => e.kind === kind);
    if (cmd.expectations.some((e) => e.kind === none) && list.length > 0) {
      throw new Mismatch(`unexpected ${kind} annotations: ${JSON.stringify(list)}`);
    }
    if (exps.length === 0) continue;
    if (list.length === 0) throw new Mismatch(`expected ${kind} annotations but got none`);
    for (const a of list) {
      if (!exps.some((e) => matches(e, a))) throw new Mismatch(`unexpected ${kind} annotation ${JSON.stringify(a)}`);
    }
    for (const e of exps) {
      if (!list.some((a) => matches(e, a))) {
        throw new Mismatch(`expected ${kind} annotation ${JSON.stringify(e.match?.text ?? "")} but got ${JSON.stringify(list)}`);
      }
    }
  }
}

export function assertMatrixSorted(series: readonly { labels: Labels }[]): void {
  for (let i = 1; i < series.length; i++) {
    if (compareLabels(normalizeLabels(series[i - 1]!.labels), normalizeLabels(series[i]!.labels)) > 0) {
      throw new Mismatch(
        `matrix results should always be sorted by labels, but matrix is not sorted: series at index ${i - 1} with labels ${formatLabelSet(series[i - 1]!.labels)} sorts after series at index ${i} with labels ${formatLabelSet(series[i]!.labels)}`,
      );
    }
  }
}

export interface Vec {
  readonly labels: readonly Labels[];
  readonly values: ArrayLike<number>;
}

export function compareVector(cmd: EvalCommand, v: Vec, ordered: boolean): void {
  if (cmd.expectScalar !== undefined) throw new Mismatch(`expected scalar result, but got vector`);
  if (cmd.expectString !== undefined) throw new Mismatch(`expected string result, but got vector`);
  const byKey = new Map<string, ExpectedSeries>();
  for (const s of cmd.expected) byKey.set(labelsKey(s.labels), s);
  const seen = new Set<string>();
  for (let pos = 0; pos < v.labels.length; pos++) {
    const labels = v.labels[pos]!;
    const got = v.values[pos]!;
    const key = labelsKey(labels);
    const exp = byKey.get(key);
    if (exp === undefined) throw new Mismatch(`unexpected metric ${formatLabelSet(labels)} in result, has value ${formatFloat(got)}`);
    if (ordered && exp.pos !== pos + 1) {
      throw new Mismatch(`expected metric ${formatLabelSet(labels)} at position ${exp.pos} but was at ${pos + 1}`);
    }
    const e0 = exp.values[0];
    if (e0 === undefined || e0.omitted) throw new Mismatch(`expected no value for ${formatLabelSet(labels)} but got ${formatFloat(got)}`);
    if (e0.histogram !== undefined) throw new Mismatch(`expected histogram ${e0.histogram} for ${formatLabelSet(labels)} but got float ${formatFloat(got)}`);
    if (!almostEqual(e0.value, got)) {
      throw new Mismatch(`expected ${formatFloat(e0.value)} for ${formatLabelSet(labels)} but got ${formatFloat(got)}`);
    }
    seen.add(key);
  }
  for (const [key, exp] of byKey) {
    if (!seen.has(key)) throw new Mismatch(`expected metric ${formatLabelSet(exp.labels)} with ${exp.values.map((x) => formatFloat(x.value)).join(" ")} not found`);
  }
}

export function compareMatrix(cmd: EvalCommand, res: Extract<QueryResult, { type: "matrix" }>, start: number, end: number, step: number): void {
  if (cmd.ordered) throw new Mismatch("expected ordered result, but query returned a matrix");
  if (cmd.expectScalar !== undefined) throw new Mismatch("expected scalar result, but got matrix");
  if (cmd.expectString !== undefined) throw new Mismatch("expected string result, but got matrix");
  assertMatrixSorted(res.series);
  const byKey = new Map<string, ExpectedSeries>();
  for (const s of cmd.expected) byKey.set(labelsKey(s.labels), s);
  const seen = new Set<string>();
  for (const s of res.series) {
    const key = labelsKey(s.labels);
    const exp = byKey.get(key);
    if (exp === undefined) throw new Mismatch(`unexpected metric ${formatLabelSet(s.labels)} in result, has ${describePoints(s.timestamps, s.values)}`);
    seen.add(key);
    const ts: number[] = [];
    const vs: number[] = [];
    for (let i = 0; i < exp.values.length; i++) {
      const t = start + i * step;
      if (t > end) throw new Mismatch(`expected ${exp.values.length} points for ${formatLabelSet(exp.labels)}, but query time range cannot return this many points`);
      const e = exp.values[i]!;
      if (e.histogram !== undefined) throw new Mismatch(`expected histogram points for ${formatLabelSet(exp.labels)} (native histograms are not supported)`);
      if (!e.omitted) {
        ts.push(t);
        vs.push(e.value);
      }
    }
    if (ts.length !== s.timestamps.length) {
      throw new Mismatch(`expected ${ts.length} float points for ${formatLabelSet(exp.labels)}, but got ${describePoints(s.timestamps, s.values)}`);
    }
    for (let i = 0; i < ts.length; i++) {
      if (ts[i] !== s.timestamps[i]) {
        throw new Mismatch(`expected float value at index ${i} for ${formatLabelSet(exp.labels)} to have timestamp ${ts[i]}, but it had timestamp ${s.timestamps[i]} (result has ${describePoints(s.timestamps, s.values)})`);
      }
      if (!almostEqual(vs[i]!, s.values[i]!)) {
        throw new Mismatch(`expected float value at index ${i} (t=${ts[i]}) for ${formatLabelSet(exp.labels)} to be ${formatFloat(vs[i]!)}, but got ${formatFloat(s.values[i]!)} (result has ${describePoints(s.timestamps, s.values)})`);
      }
    }
  }
  for (const [key, exp] of byKey) {
    if (!seen.has(key)) throw new Mismatch(`expected metric ${formatLabelSet(exp.labels)} not found`);
  }
}

function describePoints(ts: ArrayLike<number>, vs: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < ts.length && i < 20; i++) parts.push(`${formatFloat(vs[i]!)} @[${ts[i]}]`);
  if (ts.length > 20) parts.push("…");
  return `${ts.length} float points [${parts.join(", ")}]`;
}

/** Compares an instant query's result with the eval's expectations. */
export function compareInstantResult(cmd: EvalCommand, res: QueryResult, ordered = cmd.ordered): void {
  switch (res.type) {
    case "vector":
      compareVector(cmd, res, ordered);
      return;
    case "scalar":
      if (cmd.expectScalar === undefined) throw new Mismatch(`expected vector or matrix result, but got scalar ${formatFloat(res.value)}`);
      if (!almostEqual(cmd.expectScalar, res.value)) throw new Mismatch(`expected scalar ${formatFloat(cmd.expectScalar)} but got ${formatFloat(res.value)}`);
      return;
    case "string":
      // Like promqltest: without `expect string` the expected string is "".
      if ((cmd.expectString ?? "") !== res.value) throw new Mismatch(`expected string ${JSON.stringify(cmd.expectString ?? "")} but got ${JSON.stringify(res.value)}`);
      return;
    case "matrix": {
      const rv = cmd.expectRangeVector;
      if (rv === undefined) throw new Mismatch("received range result on instant evaluation");
      compareMatrix(cmd, res, rv.start, rv.end, rv.step);
      return;
    }
  }
}


export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
