import type { Answer } from "@strata/cluster";

/**
 * List answers (labels, label values, series, metadata) are cut by the caller's `limit=` or by a
 * server cap, never silently. Prometheus' rule for `limit=`: at most `limit` items and the warning
 * "results truncated due to limit". A server cap (a `-search.*` flag) cuts the same way but also
 * marks the answer partial, since the caller did not ask for a shorter list.
 */
export interface ListLimit {
  /** The caller's `limit=` (0: none). */
  readonly limit: number;
  /** The server cap (0: none) and the flag that sets it, for the warning. */
  readonly cap: number;
  readonly capFlag: string;
}

export const TRUNCATED_BY_LIMIT = "results truncated due to limit";

/** The largest limit the storage RPCs carry (a uint32 field). */
const MAX_RPC_LIMIT = 0xffff_ffff;

/** How many items to ask the backend for: one more than kept, so a cut can be seen. */
export function fetchLimit(l: ListLimit): number {
  const keep = keepCount(l);
  return keep === 0 ? 0 : Math.min(keep + 1, MAX_RPC_LIMIT);
}

function keepCount(l: ListLimit): number {
  if (l.limit > 0 && l.cap > 0) return Math.min(l.limit, l.cap);
  return l.limit > 0 ? l.limit : l.cap;
}

/** The answer cut to the kept count, with the warning (and `isPartial`) that says so. */
export function applyLimit<T>(a: Answer<readonly T[]>, l: ListLimit, what: string): Answer<readonly T[]> {
  const keep = keepCount(l);
  if (keep === 0 || a.value.length <= keep) return a;
  const byCaller = l.limit > 0 && (l.cap === 0 || l.limit <= l.cap);
  const warning = byCaller
    ? TRUNCATED_BY_LIMIT
    : `results truncated due to ${l.capFlag}=${l.cap}: more than ${l.cap} ${what} match; narrow the request with match[], start and end`;
  return {
    value: a.value.slice(0, keep),
    isPartial: a.isPartial || !byCaller,
    warnings: a.warnings.includes(warning) ? a.warnings : [...a.warnings, warning],
  };
}
