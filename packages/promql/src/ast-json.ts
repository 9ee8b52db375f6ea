import type { LabelMatcher } from "@strata/core";
import type { AtModifier, Expr } from "./ast.js";

/**
 * The AST as Prometheus' `/api/v1/parse_query` writes it (`translateAST` in its web API): one
 * object per node with a `type` (`vectorSelector`, `matrixSelector`, `subquery`, `call`,
 * `aggregation`, `binaryExpr`, `unaryExpr`, `parenExpr`, `numberLiteral`, `stringLiteral`),
 * durations and offsets in ms, `@` timestamps in ms or null, and `startOrEnd` for `@ start()`.
 */
export type AstJson = { readonly [key: string]: AstJsonValue };
export type AstJsonValue = string | number | boolean | null | AstJson | readonly AstJsonValue[];

export function astJson(e: Expr): AstJson {
  switch (e.kind) {
    case "AggregateExpr":
      return {
        type: "aggregation",
        op: e.op,
        expr: astJson(e.expr),
        param: e.param === undefined ? null : astJson(e.param),
        grouping: [...e.grouping],
        without: e.without,
      };
    case "BinaryExpr": {
      const m = e.matching;
      return {
        type: "binaryExpr",
        op: e.op,
        lhs: astJson(e.lhs),
        rhs: astJson(e.rhs),
        matching: m === undefined ? null : { card: m.card, labels: [...m.labels], on: m.on, include: [...m.include] },
        bool: e.returnBool,
      };
    }
    case "Call":
      return {
        type: "call",
        func: { name: e.func.name, argTypes: [...e.func.argTypes], variadic: e.func.variadic, returnType: e.func.returnType },
        args: e.args.map(astJson),
      };
    case "MatrixSelector": {
      const v = e.vector;
      return {
        type: "matrixSelector",
        name: v.name,
        range: e.range,
        offset: v.offset,
        matchers: matchersJson(v.matchers),
        timestamp: v.at ?? null,
        startOrEnd: startOrEnd(v.atModifier),
      };
    }
    case "SubqueryExpr":
      return {
        type: "subquery",
        expr: astJson(e.expr),
        range: e.range,
        offset: e.offset,
        step: e.step,
        timestamp: e.at ?? null,
        startOrEnd: startOrEnd(e.atModifier),
      };
    case "NumberLiteral":
      return { type: "numberLiteral", val: formatFloatF(e.value) };
    case "ParenExpr":
      return { type: "parenExpr", expr: astJson(e.expr) };
    case "StringLiteral":
      return { type: "stringLiteral", val: e.value };
    case "UnaryExpr":
      return { type: "unaryExpr", op: e.op, expr: astJson(e.expr) };
    case "VectorSelector":
      return {
        type: "vectorSelector",
        name: e.name,
        offset: e.offset,
        matchers: matchersJson(e.matchers),
        timestamp: e.at ?? null,
        startOrEnd: startOrEnd(e.atModifier),
      };
    case "StepInvariantExpr":
      return astJson(e.expr);
  }
}

function matchersJson(ms: readonly LabelMatcher[]): AstJson[] {
  return ms.map((m) => ({ name: m.name, value: m.value, type: m.type }));
}

function startOrEnd(m: AtModifier | undefined): string | null {
  return m ?? null;
}

/** Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent. */
export function formatFloatF(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  const s = String(Math.abs(v));
  const sign = v < 0 || Object.is(v, -0) ? "-" : "";
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return sign + s;
  const digits = m[1]! + (m[2] ?? "");
  const exp = Number(m[3]);
  // JavaScript writes an exponent only from 1e21 up (more places than the 17 digits) and below 1e-6.
  if (exp >= 0) return sign + digits.padEnd(exp + 1, "0");
  return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
}
