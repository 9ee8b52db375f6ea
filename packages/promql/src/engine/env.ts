import { CanceledError, ExecutionError, TimeoutError, Trace } from "@strata/core";
import type { Labels } from "@strata/core";
import type { Call, PosRange, VectorSelector } from "../ast.js";
import { QueryMemory } from "./budget.js";
import type { MemoryBudget } from "./budget.js";
import type { SeriesStream } from "../querier.js";
import { bitsView, isStaleAt } from "./types.js";
import { Columns } from "./columns.js";
import { PartitionCache } from "./group-keys.js";

/** Longest stretch (ms) evaluation runs before letting the event loop serve others. */
const YIELD_MS = 20;

/** Engine options; every limit is off when undefined. */
export interface EngineOptions {
  /** Lookback delta of instant-vector selectors in ms (Prometheus default 5m). */
  readonly lookbackDelta?: number;
  /** Step of subqueries written without one (`x[1h:]`), in ms (Prometheus: evaluation interval, 1m). */
  readonly defaultSubqueryStep?: number;
  /** Most series one query may select (all selectors together). */
  readonly maxSeries?: number;
  /** Most samples one query may hold in memory at once (selected samples plus result points). */
  readonly maxSamples?: number;
  /** Most points (steps) per series of a range query. */
  readonly maxPointsPerSeries?: number;
  /** Query timeout in ms. */
  readonly timeout?: number;
  /** Most steps per series a subquery may evaluate (VictoriaMetrics' -search.maxPointsSubqueryPerTimeseries). */
  readonly maxPointsSubqueryPerSeries?: number;
  /** Most bytes one query may hold by estimate and by count while it runs (-search.maxMemoryPerQuery). */
  readonly maxMemoryPerQuery?: number;
  /** Memory shared by all running queries (-search.maxMemoryTotal); one instance per engine. */
  readonly memoryBudget?: MemoryBudget;
}

/** A selected series: raw samples (stale markers included) plus lazily built stale-free copies. */
export interface LoadedSeries {
  readonly labels: Labels;
  readonly ts: Float64Array;
  readonly vs: Float64Array;
  /** 32-bit view of `vs` for stale-marker checks, made on the first NaN (see isStaleSample). */
  bits: Uint32Array | undefined;
  /** Start timestamps (ms, 0 = unknown), when the querier has them. */
  readonly st: Float64Array | undefined;
  clean: { ts: Float64Array; vs: Float64Array; st: Float64Array | undefined } | undefined;
}

/** Per-query state shared by all evaluation functions. */
/** True when sample i of `s` is a stale marker; only NaNs are looked at bit by bit. */
export function isStaleSample(s: LoadedSeries, i: number): boolean {
  const v = s.vs[i]!;
  if (v === v) return false;
  s.bits ??= bitsView(s.vs);
  return isStaleAt(s.bits, i);
}

export class Env {
  readonly warnings = new Set<string>();
  readonly infos = new Set<string>();
  readonly selections = new Map<VectorSelector | Call, LoadedSeries[]>();
  /**
   * Selections consumed batch by batch (select.ts `streamedSelectors`): an aggregation folds
   * each batch and drops it, so only the batch in hand counts against the limits.
   */
  readonly streams = new Map<VectorSelector, SeriesStream>();
  /** Samples selected, streamed ones included (the query's stats). */
  selectedSamples = 0;
  /** Samples held now: whole selections plus the streamed batches in hand (counted against maxSamples). */
  heldSamples = 0;
  /** Samples read by range functions, summed over windows (Prometheus' "samples scanned"). */
  samplesScanned = 0;
  seriesSelected = 0;
  /** Per-step columns of the query's intermediate values, cut from shared chunks. */
  readonly columns = new Columns();
  /** Group partitions of the query's series lists (the cost estimate's and the fold's, built once). */
  readonly partitions = new PartitionCache();
  /** The query's trace step being run (Trace.off unless the query is traced). */
  trace: Trace = Trace.off;
  private ops = 0;
  /** performance.now() after which the query times out (from `opts.timeout`). */
  readonly deadline: number | undefined;
  /** The query's memory estimate, reservation and running count. */
  readonly memory: QueryMemory;

  constructor(
    readonly query: string,
    readonly start: number,
    readonly end: number,
    readonly step: number,
    readonly lookback: number,
    readonly defaultSubqueryStep: number,
    readonly opts: EngineOptions,
    readonly signal: AbortSignal | undefined,
  ) {
    this.deadline = opts.timeout === undefined ? undefined : performance.now() + opts.timeout;
    this.memory = new QueryMemory({ maxMemoryPerQuery: opts.maxMemoryPerQuery, memoryBudget: opts.memoryBudget }, query === "" ? "the query" : query);
  }

  private queryBytes: Buffer | undefined;

  /** " (line:col)" as Prometheus renders annotation positions (byte offsets, 1-based column). */
  private position(pos: PosRange | undefined): string {
    if (pos === undefined || this.query === "") return "";
    this.queryBytes ??= Buffer.from(this.query, "utf8");
    const buf = this.queryBytes;
    const p = Math.min(pos.start, buf.length);
    let line = 1;
    let lastNl = -1;
    for (let i = 0; i < p; i++) {
      if (buf[i] === 10) {
        line++;
        lastNl = i;
      }
    }
    return ` (${line}:${p - lastNl})`;
  }

  warn(msg: string, pos: PosRange | undefined): void {
    this.warnings.add(`PromQL warning: ${msg}${this.position(pos)}`);
  }

  info(msg: string, pos: PosRange | undefined): void {
    this.infos.add(`PromQL info: ${msg}${this.position(pos)}`);
  }

  private lastYield = performance.now();

  /**
   * True when evaluation has held the event loop for YIELD_MS: the caller then awaits
   * `yieldNow()`, so other requests, timers and abort signals get their turn. Cheap enough to
   * call per series.
   */
  yieldDue(): boolean {
    return (++this.ops & 15) === 0 && performance.now() - this.lastYield >= YIELD_MS;
  }

  /** True when evaluation has held the event loop for YIELD_MS (no call counting: for loops that count themselves). */
  sliceUsedUp(): boolean {
    return performance.now() - this.lastYield >= YIELD_MS;
  }

  /** Lets the event loop run once, then checks the deadline and the signal. */
  async yieldNow(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.lastYield = performance.now();
    this.checkAbortNow();
  }

  /** Yields if due (per expression node), else only checks for abort. */
  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.lastYield >= YIELD_MS) await this.yieldNow();
    else this.checkAbortNow();
  }

  /** Throws the typed error for an aborted signal; cheap enough to call per series. */
  checkAbort(): void {
    if ((++this.ops & 63) !== 0) return;
    this.checkAbortNow();
  }

  checkAbortNow(): void {
    // Evaluation is synchronous, so a timer-based signal cannot fire while it runs: the
    // deadline is checked directly.
    if (this.deadline !== undefined && performance.now() > this.deadline) {
      throw new TimeoutError(`query timed out in query execution (timeout ${this.opts.timeout} ms)`);
    }
    const s = this.signal;
    if (s === undefined || !s.aborted) return;
    throw abortError(s);
  }

  /** Fails when `n` more points would exceed maxSamples. */
  checkSamples(points: number): void {
    const max = this.opts.maxSamples;
    if (max !== undefined && this.heldSamples + points > max) {
      throw new ExecutionError(
        `query processing would load too many samples into memory in query execution (limit ${max} samples)`,
        "STRATA_LIMIT_EXCEEDED",
      );
    }
  }
}

export function abortError(s: AbortSignal): Error {
  const r: unknown = s.reason;
  if (r instanceof TimeoutError || r instanceof CanceledError) return r;
  if (r instanceof Error && r.name === "TimeoutError") return new TimeoutError("query timed out in query execution", { cause: r });
  return new CanceledError("query was canceled in query execution", { cause: r });
}

/** Error raised by query evaluation (Prometheus' ev.errorf): an execution error. */
export function evalError(msg: string): ExecutionError {
  return new ExecutionError(msg);
}
