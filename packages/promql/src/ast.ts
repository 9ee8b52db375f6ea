import type { LabelMatcher } from "@strata/core";

/**
 * The PromQL AST (Prometheus 3.x). Every node has a `readonly kind` discriminant and a `pos`
 * (byte offsets into the query); nodes are frozen once built. Dispatch over `Expr` exhaustively
 * (`switch` + `assertNever`, or `Record<Expr["kind"], …>`) so a new node kind fails to compile
 * until every consumer handles it.
 *
 * Durations are milliseconds. Duration expressions that only depend on literals (`[5m+1m]`,
 * `offset (1h*2)`) are folded by the parser; those that reference the query's `step()` or
 * `range()` keep the unresolved expression in `rangeExpr` / `offsetExpr` / `stepExpr` (the
 * numeric field is then 0) until `resolveDurations` (see ./durations.ts) fixes them for a
 * given query.
 */

export type ValueType = "scalar" | "string" | "vector" | "matrix";

export interface PosRange {
  readonly start: number;
  readonly end: number;
}

export interface NumberLiteral {
  readonly kind: "NumberLiteral";
  readonly value: number;
  /** Written as a duration (`5m` in a scalar position); printed back as one. */
  readonly duration: boolean;
  readonly pos: PosRange;
}

export interface StringLiteral {
  readonly kind: "StringLiteral";
  readonly value: string;
  readonly pos: PosRange;
}

export type AtModifier = "start" | "end";

export interface VectorSelector {
  readonly kind: "VectorSelector";
  /** The metric name when written as an identifier or `{"name"}`; "" when absent. */
  readonly name: string;
  /** All matchers, including the `__name__` equality matcher derived from `name`. */
  readonly matchers: readonly LabelMatcher[];
  /** Milliseconds, may be negative; 0 when absent. */
  readonly offset: number;
  /** Unresolved `offset` duration expression that uses step()/range(); see resolveDurations. */
  readonly offsetExpr: Expr | undefined;
  /** `@ <t>` in ms; undefined when absent or when `atModifier` is set. */
  readonly at: number | undefined;
  readonly atModifier: AtModifier | undefined;
  /** Prometheus 3 extended range selectors (`x[1m] anchored`, `x smoothed`). */
  readonly anchored: boolean;
  readonly smoothed: boolean;
  readonly pos: PosRange;
}

export interface MatrixSelector {
  readonly kind: "MatrixSelector";
  /** Carries matchers, offset, @ and the anchored/smoothed flags. */
  readonly vector: VectorSelector;
  /** Milliseconds. */
  readonly range: number;
  readonly rangeExpr: Expr | undefined;
  readonly pos: PosRange;
}

export interface SubqueryExpr {
  readonly kind: "SubqueryExpr";
  readonly expr: Expr;
  readonly range: number;
  readonly rangeExpr: Expr | undefined;
  /** Milliseconds; 0 = the engine's default evaluation interval. */
  readonly step: number;
  readonly stepExpr: Expr | undefined;
  readonly offset: number;
  readonly offsetExpr: Expr | undefined;
  readonly at: number | undefined;
  readonly atModifier: AtModifier | undefined;
  readonly pos: PosRange;
}

export interface FunctionDef {
  readonly name: string;
  readonly argTypes: readonly ValueType[];
  /**
   * Prometheus' convention: 0 = exactly `argTypes.length` args; n > 0 = the last arg type is
   * optional and may repeat so that at most `argTypes.length - 1 + n` args are given;
   * -1 = the last arg type is optional and may repeat without limit.
   */
  readonly variadic: number;
  readonly returnType: ValueType;
  /** Behind `--enable-feature=promql-experimental-functions` in Prometheus; we always allow. */
  readonly experimental: boolean;
}

export interface Call {
  readonly kind: "Call";
  readonly func: FunctionDef;
  readonly args: readonly Expr[];
  readonly pos: PosRange;
}

export type AggregateOp =
  | "sum"
  | "avg"
  | "count"
  | "min"
  | "max"
  | "group"
  | "stddev"
  | "stdvar"
  | "topk"
  | "bottomk"
  | "quantile"
  | "count_values"
  | "limitk"
  | "limit_ratio";

export const AGGREGATE_OPS: readonly AggregateOp[] = [
  "sum",
  "avg",
  "count",
  "min",
  "max",
  "group",
  "stddev",
  "stdvar",
  "topk",
  "bottomk",
  "quantile",
  "count_values",
  "limitk",
  "limit_ratio",
];

/** Aggregations that take a parameter before the expression, with the parameter's type. */
export const AGGREGATE_PARAM_TYPE: Readonly<Partial<Record<AggregateOp, ValueType>>> = {
  topk: "scalar",
  bottomk: "scalar",
  quantile: "scalar",
  limitk: "scalar",
  limit_ratio: "scalar",
  count_values: "string",
};

export interface AggregateExpr {
  readonly kind: "AggregateExpr";
  readonly op: AggregateOp;
  readonly expr: Expr;
  readonly param: Expr | undefined;
  /** Label names of `by (…)` / `without (…)`, in the order written. */
  readonly grouping: readonly string[];
  readonly without: boolean;
  readonly pos: PosRange;
}

/** `</` and `>/` are Prometheus 3 native-histogram trim operators (TRIM_UPPER / TRIM_LOWER). */
export type ArithmeticOp = "+" | "-" | "*" | "/" | "%" | "^" | "atan2" | "</" | ">/";
export type ComparisonOp = "==" | "!=" | ">" | "<" | ">=" | "<=";
export type SetOp = "and" | "or" | "unless";
export type BinaryOp = ArithmeticOp | ComparisonOp | SetOp;

export const COMPARISON_OPS: readonly BinaryOp[] = ["==", "!=", ">", "<", ">=", "<="];
export const SET_OPS: readonly BinaryOp[] = ["and", "or", "unless"];

export function isComparisonOp(op: BinaryOp): op is ComparisonOp {
  return COMPARISON_OPS.includes(op);
}

export function isSetOp(op: BinaryOp): op is SetOp {
  return SET_OPS.includes(op);
}

export type Cardinality = "one-to-one" | "many-to-one" | "one-to-many" | "many-to-many";

export interface VectorMatching {
  readonly card: Cardinality;
  /** true for `on(…)`, false for `ignoring(…)` or no clause. */
  readonly on: boolean;
  readonly labels: readonly string[];
  /** Labels listed in `group_left(…)` / `group_right(…)`. */
  readonly include: readonly string[];
  /**
   * Prometheus 3 fill modifiers: `fill(v)` sets both, `fill_left(v)` the value used for a
   * missing left-hand sample, `fill_right(v)` for a missing right-hand one.
   */
  readonly fillLeft: number | undefined;
  readonly fillRight: number | undefined;
}

export interface BinaryExpr {
  readonly kind: "BinaryExpr";
  readonly op: BinaryOp;
  readonly lhs: Expr;
  readonly rhs: Expr;
  /** The `bool` modifier of comparison operators. */
  readonly returnBool: boolean;
  /**
   * Set when both sides are instant vectors (as in Prometheus: one-to-one by default,
   * many-to-many for set operators); undefined when either side is a scalar.
   */
  readonly matching: VectorMatching | undefined;
  readonly pos: PosRange;
}

export interface UnaryExpr {
  readonly kind: "UnaryExpr";
  readonly op: "-" | "+";
  readonly expr: Expr;
  readonly pos: PosRange;
}

export interface ParenExpr {
  readonly kind: "ParenExpr";
  readonly expr: Expr;
  readonly pos: PosRange;
}

/** Marks a subtree whose value is the same at every step (Prometheus' engine optimisation). */
export interface StepInvariantExpr {
  readonly kind: "StepInvariantExpr";
  readonly expr: Expr;
  readonly pos: PosRange;
}

export type Expr =
  | NumberLiteral
  | StringLiteral
  | VectorSelector
  | MatrixSelector
  | SubqueryExpr
  | Call
  | AggregateExpr
  | BinaryExpr
  | UnaryExpr
  | ParenExpr
  | StepInvariantExpr;

export type ExprKind = Expr["kind"];

export function typeOf(e: Expr): ValueType {
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
      return typeOf(e.lhs) === "scalar" && typeOf(e.rhs) === "scalar" ? "scalar" : "vector";
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return typeOf(e.expr);
  }
}

/** Prometheus' API name for a value type ("instant vector", "range vector", …). */
export function describeType(t: ValueType): string {
  switch (t) {
    case "scalar":
      return "scalar";
    case "string":
      return "string";
    case "vector":
      return "instant vector";
    case "matrix":
      return "range vector";
  }
}

/** Builds a frozen node; the only way nodes are made. */
export function node<T extends Expr>(n: T): T {
  return Object.freeze(n);
}

function fn(
  name: string,
  argTypes: readonly ValueType[],
  returnType: ValueType,
  variadic = 0,
  experimental = false,
): FunctionDef {
  return Object.freeze({ name, argTypes: Object.freeze([...argTypes]), variadic, returnType, experimental });
}

const V: ValueType = "vector";
const M: ValueType = "matrix";
const S: ValueType = "scalar";
const STR: ValueType = "string";

const defs: FunctionDef[] = [
  fn("abs", [V], V),
  fn("absent", [V], V),
  fn("absent_over_time", [M], V),
  fn("acos", [V], V),
  fn("acosh", [V], V),
  fn("asin", [V], V),
  fn("asinh", [V], V),
  fn("atan", [V], V),
  fn("atanh", [V], V),
  fn("avg_over_time", [M], V),
  fn("ceil", [V], V),
  fn("changes", [M], V),
  fn("clamp", [V, S, S], V),
  fn("clamp_max", [V, S], V),
  fn("clamp_min", [V, S], V),
  fn("cos", [V], V),
  fn("cosh", [V], V),
  fn("count_over_time", [M], V),
  fn("days_in_month", [V], V, 1),
  fn("day_of_month", [V], V, 1),
  fn("day_of_week", [V], V, 1),
  fn("day_of_year", [V], V, 1),
  fn("deg", [V], V),
  fn("delta", [M], V),
  fn("deriv", [M], V),
  fn("double_exponential_smoothing", [M, S, S], V, 0, true),
  fn("end", [], S, 0, true),
  fn("exp", [V], V),
  fn("first_over_time", [M], V, 0, true),
  fn("floor", [V], V),
  fn("histogram_avg", [V], V),
  fn("histogram_count", [V], V),
  fn("histogram_fraction", [S, S, V], V),
  fn("histogram_quantile", [S, V], V),
  fn("histogram_quantiles", [V, STR, S], V, -1, true),
  fn("histogram_stddev", [V], V),
  fn("histogram_stdvar", [V], V),
  fn("histogram_sum", [V], V),
  fn("hour", [V], V, 1),
  fn("idelta", [M], V),
  fn("increase", [M], V),
  fn("info", [V, V], V, 1, true),
  fn("irate", [M], V),
  fn("label_join", [V, STR, STR, STR], V, -1),
  fn("label_replace", [V, STR, STR, STR, STR], V),
  fn("last_over_time", [M], V),
  fn("ln", [V], V),
  fn("log10", [V], V),
  fn("log2", [V], V),
  fn("mad_over_time", [M], V, 0, true),
  fn("max_of", [S, S], S, 0, true),
  fn("max_over_time", [M], V),
  fn("min_of", [S, S], S, 0, true),
  fn("min_over_time", [M], V),
  fn("minute", [V], V, 1),
  fn("month", [V], V, 1),
  fn("pi", [], S),
  fn("predict_linear", [M, S], V),
  fn("present_over_time", [M], V),
  fn("quantile_over_time", [S, M], V),
  fn("rad", [V], V),
  fn("range", [], S, 0, true),
  fn("rate", [M], V),
  fn("resets", [M], V),
  fn("round", [V, S], V, 1),
  fn("scalar", [V], S),
  fn("sgn", [V], V),
  fn("sin", [V], V),
  fn("sinh", [V], V),
  fn("sort", [V], V),
  fn("sort_by_label", [V, STR], V, -1, true),
  fn("sort_by_label_desc", [V, STR], V, -1, true),
  fn("sort_desc", [V], V),
  fn("sqrt", [V], V),
  fn("start", [], S, 0, true),
  fn("start_timestamp", [V], V, 0, true),
  fn("stddev_over_time", [M], V),
  fn("stdvar_over_time", [M], V),
  fn("step", [], S, 0, true),
  fn("sum_over_time", [M], V),
  fn("tan", [V], V),
  fn("tanh", [V], V),
  fn("time", [], S),
  fn("timestamp", [V], V),
  fn("ts_of_first_over_time", [M], V, 0, true),
  fn("ts_of_last_over_time", [M], V, 0, true),
  fn("ts_of_max_over_time", [M], V, 0, true),
  fn("ts_of_min_over_time", [M], V, 0, true),
  fn("vector", [S], V),
  fn("year", [V], V, 1),
];

/** Every PromQL function of Prometheus 3 (incl. experimental ones), by name. */
export const FUNCTIONS: Readonly<Record<string, FunctionDef>> = Object.freeze(
  Object.fromEntries(defs.map((d) => [d.name, d])),
);

/**
 * Functions allowed inside duration expressions (`x[min_of(step(), 1m)]`, `offset max_of(…)`).
 * They are ordinary scalar functions too (`start()`, `end()`, `step()`, `range()` are the
 * query's start, end, step and end-start in seconds; 0 step/range for an instant query). Their
 * names are keywords, matched case-insensitively (`STEP()`).
 */
export const DURATION_FUNCTIONS: Readonly<Record<string, FunctionDef>> = Object.freeze({
  min_of: FUNCTIONS["min_of"]!,
  max_of: FUNCTIONS["max_of"]!,
  step: FUNCTIONS["step"]!,
  range: FUNCTIONS["range"]!,
});

/** Functions whose range argument may carry the `anchored` modifier. */
export const ANCHORED_FUNCTIONS: readonly string[] = ["changes", "delta", "increase", "rate", "resets"];
/** Functions whose range argument may carry the `smoothed` modifier. */
export const SMOOTHED_FUNCTIONS: readonly string[] = ["delta", "increase", "rate"];
