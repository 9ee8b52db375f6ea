import { resolveDurations } from "../parser/durations.js";
import { parseExpr } from "../parser/parser.js";
import { createEngineWith } from "./engine.js";
import type { Engine, EngineOptions } from "./engine.js";

/**
 * A PromQL engine with Prometheus 3.x semantics. Stateless between queries: one engine serves
 * any number of concurrent queries, each over the Querier it is given.
 */
export function createEngine(opts: EngineOptions = {}): Engine {
  return createEngineWith({ parse: parseExpr, resolveDurations }, opts);
}
