import type { Expr } from "./ast.js";
import { printAggregateHead, printExpr, printMatching } from "./printer.js";

/** Prometheus' `maxCharactersPerLine`: a node whose one-line form is longer is split. */
const MAX_LINE = 100;
const INDENT = "  ";

/**
 * The expression laid out over lines as Prometheus' `parser.Prettify` does (what
 * `/api/v1/format_query` answers): a node that fits in 100 characters stays on one line in its
 * canonical form; a longer one puts its operands on their own lines, indented two spaces per
 * level, and closes its parentheses on a line of their own.
 */
export function prettify(e: Expr): string {
  return pretty(e, 0);
}

function pretty(e: Expr, level: number): string {
  const ind = INDENT.repeat(level);
  const one = printExpr(e);
  const split = one.length > MAX_LINE;
  switch (e.kind) {
    case "NumberLiteral":
    case "StringLiteral":
    case "VectorSelector":
    case "MatrixSelector":
      return ind + one;
    case "AggregateExpr": {
      if (!split) return ind + one;
      let s = `${ind}${printAggregateHead(e)}(\n`;
      if (e.param !== undefined) s += `${pretty(e.param, level + 1)},\n`;
      return `${s}${pretty(e.expr, level + 1)}\n${ind})`;
    }
    case "BinaryExpr": {
      if (!split) return ind + one;
      return `${pretty(e.lhs, level + 1)}\n${ind}${e.op}${e.returnBool ? " bool" : ""}${printMatching(e.matching)}\n${pretty(e.rhs, level + 1)}`;
    }
    case "Call": {
      if (!split) return ind + one;
      return `${ind}${e.func.name}(\n${e.args.map((a) => pretty(a, level + 1)).join(",\n")}\n${ind})`;
    }
    case "ParenExpr":
      if (!split) return ind + one;
      return `${ind}(\n${pretty(e.expr, level + 1)}\n${ind})`;
    case "SubqueryExpr": {
      // Prometheus indents neither a short subquery nor the time suffix of a long one.
      if (!split) return one;
      const inner = printExpr(e.expr);
      return pretty(e.expr, level) + one.slice(inner.length);
    }
    case "UnaryExpr":
      return `${ind}${e.op}${pretty(e.expr, level).trim()}`;
    case "StepInvariantExpr":
      return pretty(e.expr, level);
  }
}
