// Public API of @strata/promql. Both engineers append export lines here.
export * from "./ast.js";
