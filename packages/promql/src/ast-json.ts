import type { LabelMatcher } from "@strata/core";
import type { AtModifier, Expr } from "./ast.js";
import { formatFloat } from "./printer.js";

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
        matching: m === undefined
          ? null
          : { card: m.card, labels: [...m.labels], on: m.on, include: [...m.include], fillValues: { lhs: m.fillLeft ?? null, rhs: m.fillRight ?? null } },
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
        anchored: v.anchored,
        smoothed: v.smoothed,
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
        // Strata has no aligned subqueries (Prometheus' experimental `[range:step] aligned`).
        alignEvalTime: false,
      };
    case "NumberLiteral":
      // strconv.FormatFloat(v, 'f', -1, 64), as Prometheus writes it here.
      return { type: "numberLiteral", val: formatFloat(e.value) };
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
        anchored: e.anchored,
        smoothed: e.smoothed,
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
