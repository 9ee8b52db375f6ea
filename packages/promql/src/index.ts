// Public API of @strata/promql. Both engineers append export lines here.
export * from "./ast.js";
export { parseExpr, parseMetricSelector } from "./parser/parser.js";
export { ParseError } from "./parser/errors.js";
export { resolveDurations, type DurationContext } from "./parser/durations.js";
export { printExpr, printMatcher, formatDuration, formatFloat, goQuote } from "./printer.js";
export type { Querier, SelectHints, Series, SeriesSet } from "./querier.js";
export { emptySeriesSet, errSeriesSet, seriesSetOf } from "./querier.js";
export { MemoryQuerier } from "./memory-querier.js";
export type { QueryStats, QueryResult, ScalarResult, StringResult, VectorResult, MatrixResult, MatrixSeries } from "./engine/result.js";
export { formatPromValue } from "./engine/result.js";
export type { Engine, EngineOptions, EngineDeps, ParseFn, ResolveFn } from "./engine/engine.js";
export { createEngineWith } from "./engine/engine.js";
export { createEngine } from "./engine/create.js";
export { STALE_NAN } from "./engine/types.js";
export { parseScript, ScriptError, type Command, type EvalCommand, type LoadCommand, type ClearCommand, type Expectation, type ExpectKind, type ExpectedSeries } from "./testscript/script.js";
export { parseSeriesLine, parseSequence, parseMetric, type SeriesDesc, type SequenceValue } from "./testscript/series.js";
export { runScript, runEval, addAtModifiers, type ScriptTarget, type EvalOutcome } from "./testscript/runner.js";
export { compareInstantResult, almostEqual } from "./testscript/compare.js";
