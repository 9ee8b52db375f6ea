import type { LabelMatcher } from "@strata/core";
import type { AggregateExpr, Expr, VectorMatching, VectorSelector } from "./ast.js";
import { goQuote } from "./parser/strings.js";

export { goQuote };

/**
 * AST → PromQL text in Prometheus' canonical form (`Expr.String()` in Go): single spaces around
 * binary operators, `sum by (job) (x)`, matchers sorted, durations as `1h30m`, `@ 100.000`.
 * The output parses back to an equivalent AST.
 */
export function printExpr(e: Expr): string {
  switch (e.kind) {
    case "NumberLiteral":
      return e.duration && Number.isFinite(e.value) && Number.isInteger(e.value * 1000)
        ? (e.value < 0 ? "-" : "") + formatDuration(Math.abs(e.value * 1000))
        : formatFloat(e.value);
    case "StringLiteral":
      return goQuote(e.value);
    case "VectorSelector":
      return printSelector(e) + printModifiers(e.at, e.atModifier, e.offset, e.offsetExpr) + printExtended(e);
    case "MatrixSelector": {
      const v = e.vector;
      const range = e.rangeExpr === undefined ? formatDuration(e.range) : printExpr(e.rangeExpr);
      return `${printSelector(v)}[${range}]${printModifiers(v.at, v.atModifier, v.offset, v.offsetExpr)}${printExtended(v)}`;
    }
    case "SubqueryExpr": {
      const range = e.rangeExpr === undefined ? formatDuration(e.range) : printExpr(e.rangeExpr);
      let step = "";
      if (e.stepExpr !== undefined) step = printExpr(e.stepExpr);
      else if (e.step !== 0) step = formatDuration(e.step);
      return `${printExpr(e.expr)}[${range}:${step}]${printModifiers(e.at, e.atModifier, e.offset, e.offsetExpr)}`;
    }
    case "Call":
      return `${e.func.name}(${e.args.map(printExpr).join(", ")})`;
    case "AggregateExpr": {
      let s = printAggregateHead(e) + "(";
      if (e.param !== undefined) s += `${printExpr(e.param)}, `;
      return `${s}${printExpr(e.expr)})`;
    }
    case "BinaryExpr": {
      let lhs = printExpr(e.lhs);
      // `+Inf ^ x` would parse back as +(Inf ^ x): a signed literal left of `^` (which binds
      // tighter than unary operators) needs parentheses.
      if (e.op === "^" && e.lhs.kind === "NumberLiteral" && (lhs.startsWith("+") || lhs.startsWith("-"))) lhs = `(${lhs})`;
      return `${lhs} ${e.op}${e.returnBool ? " bool" : ""}${printMatching(e.matching)} ${printExpr(e.rhs)}`;
    }
    case "UnaryExpr":
      return `${e.op}${printExpr(e.expr)}`;
    case "ParenExpr":
      return `(${printExpr(e.expr)})`;
    case "StepInvariantExpr":
      return printExpr(e.expr);
  }
}

/** `sum`, `sum by (job) `, `sum without (a, b) `: an aggregation up to its `(`. */
export function printAggregateHead(e: AggregateExpr): string {
  if (e.without) return `${e.op} without (${e.grouping.map(labelName).join(", ")}) `;
  if (e.grouping.length > 0) return `${e.op} by (${e.grouping.map(labelName).join(", ")}) `;
  return e.op;
}

/** A binary operator's modifiers after the operator: ` on (a) group_left (b)`, fill. */
export function printMatching(m: VectorMatching | undefined): string {
  if (m === undefined) return "";
  let s = "";
  if (m.labels.length > 0 || m.on) {
    s = ` ${m.on ? "on" : "ignoring"} (${m.labels.map(labelName).join(", ")})`;
    if (m.card === "many-to-one" || m.card === "one-to-many") {
      s += ` group_${m.card === "many-to-one" ? "left" : "right"} (${m.include.map(labelName).join(", ")})`;
    }
  }
  const l = m.fillLeft;
  const r = m.fillRight;
  if (l !== undefined && r !== undefined && Object.is(l, r)) s += ` fill(${formatFloat(l)})`;
  else {
    if (l !== undefined) s += ` fill_left(${formatFloat(l)})`;
    if (r !== undefined) s += ` fill_right(${formatFloat(r)})`;
  }
  return s;
}

function printModifiers(at: number | undefined, atMod: "start" | "end" | undefined, offset: number, offsetExpr: Expr | undefined): string {
  let s = "";
  if (atMod !== undefined) s += ` @ ${atMod}()`;
  else if (at !== undefined) s += ` @ ${(at / 1000).toFixed(3)}`;
  if (offsetExpr !== undefined) {
    const k = offsetExpr.kind;
    const atom = k === "NumberLiteral" || k === "ParenExpr" || k === "Call";
    s += ` offset ${atom ? printExpr(offsetExpr) : `(${printExpr(offsetExpr)})`}`;
  } else if (offset > 0) s += ` offset ${formatDuration(offset)}`;
  else if (offset < 0) s += ` offset -${formatDuration(-offset)}`;
  return s;
}

function printExtended(v: VectorSelector): string {
  return v.anchored ? " anchored" : v.smoothed ? " smoothed" : "";
}

/** Names that, written bare, would parse as something other than a selector. */
const RESERVED_NAMES = new Set(["inf", "nan", "on", "ignoring", "group_left", "group_right", "bool", "atan2"]);

const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function labelName(n: string): string {
  return LEGACY_LABEL.test(n) ? n : goQuote(n);
}

export function printMatcher(m: LabelMatcher): string {
  return `${labelName(m.name)}${m.type}${goQuote(m.value)}`;
}

function printSelector(v: VectorSelector): string {
  // A bare name only where it parses back as this selector's name; otherwise it stays a
  // __name__ matcher inside the braces (Prometheus also leaves Name empty for {"x.y"}).
  const bare = v.name !== "" && LEGACY_METRIC.test(v.name) && !RESERVED_NAMES.has(v.name.toLowerCase());
  const parts: string[] = [];
  for (const m of v.matchers) {
    if (bare && m.name === "__name__" && m.type === "=" && m.value === v.name) continue;
    parts.push(printMatcher(m));
  }
  parts.sort();
  const name = bare ? v.name : "";
  if (parts.length === 0) return name;
  return `${name}{${parts.join(",")}}`;
}

/** Prometheus' model.Duration String(): 1h30m, 5m, 1d, 2w, 1y, 100ms, 0s. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let r = "";
  let rest = ms;
  const f = (unit: string, mult: number, exact: boolean): void => {
    if (exact && rest % mult !== 0) return;
    const v = Math.floor(rest / mult);
    if (v > 0) {
      r += `${v}${unit}`;
      rest -= v * mult;
    }
  };
  f("y", 365 * 24 * 3600_000, true);
  f("w", 7 * 24 * 3600_000, true);
  f("d", 24 * 3600_000, false);
  f("h", 3600_000, false);
  f("m", 60_000, false);
  f("s", 1000, false);
  f("ms", 1, false);
  return r;
}

/** Go's strconv.FormatFloat(v, 'f', -1, 64) with Prometheus' spelling of infinities and NaN. */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Object.is(v, -0)) return "-0";
  const s = String(v);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (m === null) return s;
  const sign = m[1]!;
  const digits = m[2]! + (m[3] ?? "");
  const exp = Number(m[4]);
  if (exp >= 0) {
    const intLen = 1 + exp;
    return sign + (digits.length <= intLen ? digits + "0".repeat(intLen - digits.length) : `${digits.slice(0, intLen)}.${digits.slice(intLen)}`);
  }
  return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
}
