import type { Labels, LabelMatcher, Trace } from "@strata/core";

/**
 * What the engine knows about a selection, passed to `Querier.select` so a storage backend can
 * prune (e.g. skip decoding blocks outside the window, or pre-aggregate). Advisory only: a
 * querier may ignore every hint and must still return all matching samples in [minT, maxT].
 */
export interface SelectHints {
  /** Start and end (ms) of the query evaluation, before offsets and windows are applied. */
  readonly start: number;
  readonly end: number;
  /** Evaluation step in ms (0 for instant queries). */
  readonly step: number;
  /** Range of a matrix selector in ms (0 for an instant-vector selector). */
  readonly range: number;
  /** Name of the function the selection feeds, e.g. "rate" ("" when none). */
  readonly func: string;
  /** The step of a traced query (`trace=1`) this selection is; the querier records its work under it. */
  readonly trace?: Trace;
  /**
   * The only samples the evaluation reads, when the engine knows them (a selector evaluated at
   * the query's steps): those in the windows of `SelectWindows`. A querier may then leave out
   * every other sample of [minT, maxT] (the samples it returns are what counts against the
   * sample limits). Absent under subqueries and for anchored or smoothed selectors.
   */
  readonly windows?: SelectWindows;
}

/**
 * Windows (e - range, e] for e = first + k·step, k = 0 … count-1 (step 0: one window), in ms.
 * Samples at e itself are inside, samples at e - range are not (Prometheus' left-open ranges).
 */
export interface SelectWindows {
  readonly first: number;
  readonly step: number;
  readonly count: number;
  readonly range: number;
  /**
   * Only the last sample of each window is read (an instant-vector selector: the latest sample
   * within the lookback, a stale marker included). A querier may leave out the others too.
   */
  readonly last?: boolean;
}

/**
 * One series of a selection. `timestamps` (ms, strictly increasing) and `values` have equal
 * length and hold every sample of the series in the selected window, stale markers included
 * (NaN with the bit pattern 0x7ff0000000000002).
 *
 * Lifetime and reuse: the arrays stay valid and unchanged until the query that selected them
 * has finished (its promise settled). The engine never writes into them, so a querier may hand
 * out views of its own memory (zero copy); a querier that decodes into reusable buffers must
 * give each series its own arrays.
 */
export interface Series {
  readonly labels: Labels;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
  /**
   * Optional start (created) timestamps in ms, one per sample (0 = unknown), as Prometheus 3.14
   * stores them: a start timestamp after the previous sample marks a counter reset, and one
   * inside a rate window replaces extrapolation towards the window start.
   */
  readonly startTimestamps?: Float64Array;
}

/**
 * A cursor over the series of a selection, in canonical label order (as `compareLabels` sorts),
 * each label set at most once.
 *
 * Usage: `while (set.next()) use(set.at()); if (set.err()) throw set.err();`. `at()` is only
 * valid after `next()` returned true. `err()` is checked once `next()` returns false: the
 * iteration may have stopped early because of it. Not safe for concurrent use; one consumer
 * iterates a set once.
 */
export interface SeriesSet {
  next(): boolean;
  at(): Series;
  err(): Error | undefined;
  /** Non-fatal problems, e.g. "partial response: storage node b:8401 unavailable". */
  readonly warnings: readonly string[];
}

/**
 * A selection handed out in batches (`Querier.selectStream`), for a consumer that uses each series
 * once and keeps nothing of its sample arrays (an aggregation over a selector or over a range
 * function of one): the querier decodes a batch while the engine folds the previous one, so a
 * query never holds every series' samples at once.
 *
 * Order: the series of all batches together are in canonical label order, each label set at most
 * once, exactly as `select` returns them (aggregations give identical answers either way).
 *
 * Lifetime: a batch's arrays are valid until the next `nextBatch()` call or `close()`; the
 * querier may reuse their memory after that. Labels stay valid until the query has finished.
 * Not safe for concurrent use; `close()` is idempotent and must be called when the consumer stops
 * early (an error, a limit).
 */
export interface SeriesStream {
  /**
   * Labels of every series the selection may yield, in order, known before any sample is
   * decoded (limits and estimates use them). A series without samples in the window is not
   * yielded by `nextBatch`.
   */
  readonly labels: readonly Labels[];
  /**
   * Most samples the stream holds decoded at once (the batch in hand plus any decoded ahead):
   * the query's memory estimate counts this, not the selection's total.
   */
  readonly heldSamples: number;
  /** The next batch (never empty), or undefined after the last one. Rejects on errors. */
  nextBatch(): Promise<readonly Series[] | undefined>;
  /** Non-fatal problems, e.g. "partial response: storage node b:8401 unavailable". */
  readonly warnings: readonly string[];
  close(): void;
  /**
   * Optional: the stream computes a range function over its series itself (e.g. on worker
   * threads, next to the decoding) and hands out step values instead of samples. Returns the
   * batch cursor, or undefined when it does not (the consumer then reads `nextBatch`). Asked at
   * most once, before any `nextBatch`. The values must be bit-identical to the engine's own
   * (promql `rollupSeries` computes them).
   */
  rollup?(spec: RollupSpec): (() => Promise<RollupBatch | undefined>) | undefined;
  /**
   * Optional: like `rollup`, and the stream also folds the step values into the aggregation
   * `fold` describes (e.g. on the workers that computed them), so only per-group accumulators
   * come back. Every group's series must be folded by promql's `foldSeries` in stream order
   * (one thread per group), so the accumulators are bit-identical to the engine's own fold.
   * Batches then carry no values (only `labels` and `got` of their rows), and the last batch
   * carries `folded`. `fold` is called only when the stream folds. Asked at most once, before
   * any `nextBatch` or `rollup`.
   */
  rollupFold?(spec: RollupSpec, fold: () => RollupFold): (() => Promise<RollupBatch | undefined>) | undefined;
}

/** A folding aggregation over a rollup (`sum by (mode) (rate(x[5m]))`), for SeriesStream.rollupFold. */
export interface RollupFold {
  /** sum, avg, count, min, max, group, stddev or stdvar (fold.ts foldSeries). */
  readonly op: string;
  /** Group of every series of the stream (index into `labels`), numbered from 0. */
  readonly groupOf: Int32Array;
  readonly groups: number;
}

/**
 * A group folded by the stream and finished (promql's `finishFold` over its accumulators): its
 * step values, present where it has one, and the stream index of its first series with output.
 */
export interface FoldedGroup {
  readonly group: number;
  readonly first: number;
  readonly values: Float64Array;
  readonly present: Uint8Array;
}

/**
 * A range function over a streamed matrix selector: `func` (one of promql's SIMPLE_ROLLUPS) over
 * the windows (ends[k] - range, ends[k]] of every step k, stale markers removed first.
 */
export interface RollupSpec {
  readonly func: string;
  readonly ends: Float64Array;
  readonly range: number;
}

/**
 * Step values of a batch of series (in stream order; only series with samples in the selected
 * window): row i's values are values[i*steps .. (i+1)*steps), present where present[..] is 1;
 * got[i] counts its steps with output. `samples` is the samples selected (stale markers
 * included, as the raw selection counts them), `scanned` those the windows covered.
 */
export interface RollupBatch {
  readonly labels: readonly Labels[];
  readonly values: Float64Array;
  readonly present: Uint8Array;
  readonly got: Uint32Array;
  readonly samples: number;
  readonly scanned: number;
  /** rollupFold: the groups folded (on the last batch only). */
  readonly folded?: readonly FoldedGroup[];
}

/**
 * The engine's only view of storage (Prometheus' storage.Querier). Implemented by the in-memory
 * querier (tests, benchmarks), local storage, and the cluster fan-out in select.
 *
 * Concurrency: the engine may call `select` several times concurrently for one query (once per
 * selector); an implementation must allow that. Calls after `close()` are a bug.
 */
export interface Querier {
  /**
   * Series matching all `matchers` (a label absent from a series has the value "") with their
   * samples whose timestamps lie in [minT, maxT] (ms, both inclusive). Series without samples
   * in the window may be left out. Fails by rejecting, or by returning a set whose `err()` is
   * set. Honours `signal`: rejects with the signal's reason once it is aborted.
   */
  select(
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    hints: SelectHints,
    signal?: AbortSignal,
  ): Promise<SeriesSet>;
  /**
   * The same selection as `select`, as a stream of batches (see SeriesStream). Optional: the
   * engine uses it where it consumes series one by one, and `select` everywhere else.
   */
  selectStream?(
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    hints: SelectHints,
    signal?: AbortSignal,
  ): Promise<SeriesStream>;
  /** Sorted unique label names of series matching `matchers` in [minT, maxT]. */
  labelNames?(matchers: readonly LabelMatcher[], minT: number, maxT: number, signal?: AbortSignal): Promise<string[]>;
  /** Sorted unique values of label `name` of series matching `matchers` in [minT, maxT]. */
  labelValues?(
    name: string,
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    signal?: AbortSignal,
  ): Promise<string[]>;
  /** Releases resources; the arrays handed out stay valid until then. */
  close?(): Promise<void>;
}

class ListSeriesSet implements SeriesSet {
  private i = -1;
  constructor(
    private readonly list: readonly Series[],
    readonly warnings: readonly string[] = [],
  ) {}
  next(): boolean {
    if (this.i >= this.list.length) return false;
    this.i++;
    return this.i < this.list.length;
  }
  at(): Series {
    const s = this.list[this.i];
    if (s === undefined) throw new RangeError("SeriesSet.at() called without a successful next()");
    return s;
  }
  err(): Error | undefined {
    return undefined;
  }
}

/**
 * A stream over an array of series (already sorted and unique), `batchSeries` series per batch;
 * the arrays are the caller's (no copy).
 */
export function seriesStreamOf(series: readonly Series[], batchSeries: number, warnings: readonly string[] = []): SeriesStream {
  let i = 0;
  let maxBatch = 0;
  for (let j = 0; j < series.length; j += batchSeries) {
    let n = 0;
    for (const s of series.slice(j, j + batchSeries)) n += s.timestamps.length;
    maxBatch = Math.max(maxBatch, n);
  }
  return {
    labels: series.map((s) => s.labels),
    heldSamples: maxBatch,
    warnings,
    nextBatch: () => {
      if (i >= series.length) return Promise.resolve(undefined);
      const b = series.slice(i, i + batchSeries);
      i += batchSeries;
      return Promise.resolve(b);
    },
    close: () => {
      i = series.length;
    },
  };
}

/** A set over an array of series (already sorted and unique). */
export function seriesSetOf(series: readonly Series[], warnings: readonly string[] = []): SeriesSet {
  return new ListSeriesSet(series, warnings);
}

/** The set without series (null object). */
export const emptySeriesSet: SeriesSet = Object.freeze({
  next: () => false,
  at: (): Series => {
    throw new RangeError("emptySeriesSet has no series");
  },
  err: () => undefined,
  warnings: [],
});

/** A set that yields no series and reports `err` (null object for a failed selection). */
export function errSeriesSet(err: Error): SeriesSet {
  return {
    next: () => false,
    at: (): Series => {
      throw err;
    },
    err: () => err,
    warnings: [],
  };
}
