import { ExecutionError } from "@strata/core";

/**
 * The memory all running queries of a process may hold together (VictoriaMetrics' rollup
 * memory limiter). A query reserves its estimate before evaluation and more when its running
 * count outgrows the reservation; it gives everything back when it ends. One instance is shared
 * by every query of an engine.
 */
export class MemoryBudget {
  private held = 0;

  /** `limit` in bytes; 0 or less means unlimited (only counted). */
  constructor(readonly limit: number) {}

  /** Bytes reserved by running queries now. */
  get used(): number {
    return this.held;
  }

  /** Takes `bytes` if they fit under the limit; false (and nothing taken) otherwise. */
  tryReserve(bytes: number): boolean {
    if (this.limit > 0 && this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}

/** What a query's memory is checked against (all optional; a missing one does not limit). */
export interface MemoryLimits {
  /** Most bytes one query may hold (`-search.maxMemoryPerQuery`); 0 or undefined: no limit. */
  readonly maxMemoryPerQuery?: number | undefined;
  /** Shared budget of all running queries (`-search.maxMemoryTotal`). */
  readonly memoryBudget?: MemoryBudget | undefined;
}

/**
 * One query's memory: the reservation taken from the shared budget and the bytes charged so far
 * by evaluation. Charges only grow (values freed mid-query are not credited back), so the count
 * is an upper bound of what the query holds, like the estimate it starts from.
 */
export class QueryMemory {
  private reserved = 0;
  /** Bytes charged by evaluation so far. */
  charged = 0;
  /** The estimate the query was admitted with. */
  estimated = 0;

  constructor(
    private readonly limits: MemoryLimits,
    private readonly query: string,
  ) {}

  /**
   * Admits the query with `bytes` estimated (before evaluation). Fails with the limit's name when
   * the estimate exceeds the per-query limit or does not fit in the shared budget.
   */
  admit(bytes: number, what: string): void {
    this.estimated = Math.max(this.estimated, bytes);
    this.ensure(bytes, what);
  }

  /** Counts `bytes` more allocated by evaluation; fails when they exceed a limit. */
  charge(bytes: number): void {
    this.charged += bytes;
    if (this.charged > this.reserved) this.ensure(this.charged, "evaluation so far allocated about");
  }

  /** Gives the reservation back to the shared budget (idempotent). */
  release(): void {
    this.limits.memoryBudget?.release(this.reserved);
    this.reserved = 0;
  }

  private ensure(bytes: number, what: string): void {
    const max = this.limits.maxMemoryPerQuery;
    if (max !== undefined && max > 0 && bytes > max) {
      throw new ExecutionError(
        `not enough memory for processing ${this.query}: ${what} ${humanBytes(bytes)} according to -search.maxMemoryPerQuery=${max}; ` +
          "possible solutions are: reducing the number of matching series, increasing the step (also of subqueries), shortening the time range, increasing -search.maxMemoryPerQuery",
        "STRATA_LIMIT_EXCEEDED",
      );
    }
    const budget = this.limits.memoryBudget;
    if (budget === undefined || bytes <= this.reserved) return;
    // Grow by at least a quarter, so a query charging piece by piece does not ask per piece.
    const need = bytes - this.reserved;
    const grow = Math.max(need, Math.ceil(this.reserved / 4));
    const got = grow > need && budget.tryReserve(grow) ? grow : budget.tryReserve(need) ? need : 0;
    if (got > 0) {
      this.reserved += got;
      return;
    }
    throw new ExecutionError(
      `not enough memory for processing ${this.query}: ${what} ${humanBytes(bytes)}, but running queries already hold ${humanBytes(budget.used)} ` +
        `of the total -search.maxMemoryTotal=${budget.limit}; retry later, or make the query cheaper, or increase -search.maxMemoryTotal`,
      "STRATA_LIMIT_EXCEEDED",
    );
  }
}

/** "1.5 GiB", "12 MiB", "800 B": rounded sizes for messages (core's formatBytes writes exact flag values). */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} B`;
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(v)} B` : `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10} ${units[u]}`;
}
