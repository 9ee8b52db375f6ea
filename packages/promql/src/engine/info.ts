import { newMatcher } from "@strata/core";
import type { Label, LabelMatcher, Labels } from "@strata/core";
import type { Call, Expr } from "../ast.js";
import type { Env, LoadedSeries } from "./env.js";
import { evalError, isStaleSample } from "./env.js";
import type { StepCtx, VectorValue, VSeries } from "./types.js";
import { getLabel, labelsKey } from "./types.js";

const IDENTIFYING = ["instance", "job"];

/** How an expression maps an evaluation time to the time its samples are read at. */
export interface RefTime {
  readonly at: number | undefined;
  readonly offset: number;
}

function atOf(at: number | undefined, mod: "start" | "end" | undefined, env: Env): number | undefined {
  if (mod === "start") return env.start;
  if (mod === "end") return env.end;
  return at;
}

/** Follows the first vector argument down to its selector, composing `@` and `offset`. */
export function refTimeOf(e: Expr, env: Env): RefTime {
  switch (e.kind) {
    case "VectorSelector":
      return { at: atOf(e.at, e.atModifier, env), offset: e.offset };
    case "MatrixSelector":
      return { at: atOf(e.vector.at, e.vector.atModifier, env), offset: e.vector.offset };
    case "SubqueryExpr": {
      const inner = refTimeOf(e.expr, env);
      if (inner.at !== undefined) return inner;
      return { at: atOf(e.at, e.atModifier, env), offset: e.offset + inner.offset };
    }
    case "Call": {
      const a = e.args.find((x) => {
        const k = x.kind;
        return k !== "NumberLiteral" && k !== "StringLiteral";
      });
      return a === undefined ? { at: undefined, offset: 0 } : refTimeOf(a, env);
    }
    case "AggregateExpr":
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return refTimeOf(e.expr, env);
    case "BinaryExpr":
      return refTimeOf(e.lhs.kind === "NumberLiteral" ? e.rhs : e.lhs, env);
    default:
      return { at: undefined, offset: 0 };
  }
}

interface InfoArgs {
  /** Matchers on `__name__` (default `__name__="target_info"`). */
  readonly nameMatchers: readonly LabelMatcher[];
  /** Matchers on other labels, by label name. */
  readonly dataMatchers: ReadonlyMap<string, LabelMatcher[]>;
  /** All matchers used to select info series. */
  readonly select: readonly LabelMatcher[];
}

export function infoArgs(call: Call): InfoArgs {
  const sel = call.args[1];
  const nameMatchers: LabelMatcher[] = [];
  const dataMatchers = new Map<string, LabelMatcher[]>();
  const select: LabelMatcher[] = [];
  if (sel !== undefined && sel.kind === "VectorSelector") {
    for (const m of sel.matchers) {
      select.push(m);
      if (m.name === "__name__") nameMatchers.push(m);
      else {
        const list = dataMatchers.get(m.name) ?? [];
        list.push(m);
        dataMatchers.set(m.name, list);
      }
    }
  }
  // Without a positive name matcher the info metrics are target_info (no name matchers at all)
  // or any `*_info` metric the negative ones leave.
  if (!nameMatchers.some((m) => m.type === "=" || m.type === "=~")) {
    const m = nameMatchers.length === 0 ? newMatcher("=", "__name__", "target_info") : newMatcher("=~", "__name__", ".+_info");
    nameMatchers.push(m);
    select.unshift(m);
  }
  return { nameMatchers, dataMatchers, select };
}

/** Per info series: the timestamp of the sample in effect at each step (NaN when none). */
function sampleTimes(s: LoadedSeries, ctx: StepCtx, ref: RefTime, lookback: number): Float64Array {
  const n = ctx.times.length;
  const out = new Float64Array(n).fill(NaN);
  const ts = s.ts;
  let j = 0;
  for (let k = 0; k < n; k++) {
    // Reference times never decrease, so j only moves forward.
    const t = (ref.at ?? ctx.times[k]!) - ref.offset;
    while (j < ts.length && ts[j]! <= t) j++;
    const i = j - 1;
    if (i < 0 || ts[i]! <= t - lookback || isStaleSample(s, i)) continue;
    out[k] = ts[i]!;
  }
  return out;
}

/**
 * Prometheus' info(): adds the data labels of matching info series (joined on the identifying
 * labels `instance` and `job` that the base series has) to every base series, step by step.
 */
export function evalInfo(call: Call, base: VectorValue, ctx: StepCtx, env: Env, infoList: readonly LoadedSeries[]): VectorValue {
  const n = ctx.times.length;
  const args = infoArgs(call);
  const ref = refTimeOf(call.args[0]!, env);
  const infoTimes = infoList.map((s) => sampleTimes(s, ctx, ref, env.lookback));
  const infoNames = infoList.map((s) => getLabel(s.labels, "__name__"));
  const ignored = base.series.map((s) => {
    const name = getLabel(s.labels, "__name__");
    return args.nameMatchers.every((m) => m.matches(name));
  });
  let dropWithoutMatch = false;
  for (const ms of args.dataMatchers.values()) for (const m of ms) if (!m.matches("")) dropWithoutMatch = true;
  const out: VSeries[] = [];
  const byKey = new Map<string, VSeries>();
  const emit = (labels: Labels, s: VSeries, k: number): void => {
    const key = labelsKey(labels);
    let o = byKey.get(key);
    if (o === undefined) {
      o = { labels, dropName: s.dropName, values: new Float64Array(n), present: new Uint8Array(n) };
      byKey.set(key, o);
      out.push(o);
    }
    if (o.present[k] === 1) throw evalError("vector cannot contain metrics with the same labelset");
    o.present[k] = 1;
    o.values[k] = s.values[k]!;
  };
  // Candidate info series per base series (identifying labels agree), computed once.
  const candidates: number[][] = base.series.map((s) => {
    const ids = IDENTIFYING.map((l) => [l, getLabel(s.labels, l)] as const).filter(([, v]) => v !== "");
    if (ids.length === 0) return [];
    const list: number[] = [];
    for (let j = 0; j < infoList.length; j++) {
      if (ids.every(([l, v]) => getLabel(infoList[j]!.labels, l) === v)) list.push(j);
    }
    return list;
  });
  for (let i = 0; i < base.series.length; i++) {
    const s = base.series[i]!;
    for (let k = 0; k < n; k++) {
      if (s.present[k] !== 1) continue;
      if (ignored[i]) {
        emit(s.labels, s, k);
        continue;
      }
      // Newest info sample per info metric name.
      const chosen = new Map<string, number>();
      for (const j of candidates[i]!) {
        const t = infoTimes[j]![k]!;
        if (Number.isNaN(t)) continue;
        const name = infoNames[j]!;
        const prev = chosen.get(name);
        if (prev === undefined) {
          chosen.set(name, j);
          continue;
        }
        const pt = infoTimes[prev]![k]!;
        if (t > pt) chosen.set(name, j);
        else if (t === pt) {
          throw evalError(
            `found duplicate series for info metric: existing ${labelsStr(infoList[prev]!.labels)} @ ${pt}, new ${labelsStr(infoList[j]!.labels)} @ ${t}`,
          );
        }
      }
      if (chosen.size === 0) {
        if (dropWithoutMatch) continue;
        emit(s.labels, s, k);
        continue;
      }
      const added = new Map<string, string>();
      const names = [...chosen.keys()].sort();
      for (const name of names) {
        for (const l of infoList[chosen.get(name)!]!.labels) {
          if (l.name === "__name__") continue;
          if (args.dataMatchers.size > 0 && !args.dataMatchers.has(l.name)) continue;
          const have = added.get(l.name);
          if (have !== undefined && have !== l.value) throw evalError(`conflicting label: ${l.name}`);
          if (getLabel(s.labels, l.name) !== "") continue;
          added.set(l.name, l.value);
        }
      }
      if (added.size === 0) {
        emit(s.labels, s, k);
        continue;
      }
      const labels: Label[] = [...s.labels];
      for (const [name, value] of added) labels.push({ name, value });
      labels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      emit(labels, s, k);
    }
  }
  return { kind: "vector", series: out };
}

function labelsStr(labels: Labels): string {
  return `{${labels.map((l) => `${l.name}=${JSON.stringify(l.value)}`).join(", ")}}`;
}
