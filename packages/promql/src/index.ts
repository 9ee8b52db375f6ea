// Public API of @strata/promql. Both engineers append export lines here.
export * from "./ast.js";
export { parseExpr } from "./parser/parser.js";
export { ParseError } from "./parser/errors.js";
export { resolveDurations, type DurationContext } from "./parser/durations.js";
export { printExpr, printMatcher, formatDuration, formatFloat, goQuote } from "./printer.js";
