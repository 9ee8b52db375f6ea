import type { LabelMatcher, Labels, Tenant } from "@strata/core";
import type { Querier } from "@strata/promql";
import type { TsdbStatus } from "@strata/storage";

/**
 * What select needs from the storage side. ClusterSelectBackend (select-backend.ts) implements
 * it over gRPC fan-out to every storage node; tests may implement it over local storage. Every call
 * carries a deadline and the partial-response policy; an answer says whether it is partial
 * (some storage nodes did not answer and replication could not cover them).
 */
export interface SearchOptions {
  /** Absolute deadline, ms since the epoch. */
  readonly deadline: number;
  /** Fail (UnavailableError) instead of answering partially. */
  readonly denyPartialResponse: boolean;
  /** Most series one search may select (ExecutionError past it). */
  readonly maxSeries: number;
  /** The flag that sets maxSeries, named in the error (default -search.maxSeries). */
  readonly maxSeriesFlag?: string;
  readonly signal?: AbortSignal;
}

export interface Answer<T> {
  readonly value: T;
  readonly isPartial: boolean;
  readonly warnings: readonly string[];
}

/**
 * A querier for one query that remembers whether any selection was partial. `close()` once the
 * answer is written: the memory of the selected samples is reused by later queries.
 */
export interface SelectQuerier extends Querier {
  readonly isPartial: boolean;
  readonly warnings: readonly string[];
}

export interface TsdbStatusRequest {
  /** Day (days since the unix epoch, UTC) the statistics are for. */
  readonly date: number;
  readonly topN: number;
  readonly focusLabel: string;
  readonly matchers: readonly LabelMatcher[];
}

/** Cardinality statistics: one definition, the storage engine's. */
export type { TsdbStatus, TsdbStatusEntry as NameValue } from "@strata/storage";

export interface MetricMetadata {
  readonly metricFamilyName: string;
  /** counter, gauge, histogram, gaugehistogram, summary, info, stateset, unknown. */
  readonly type: string;
  readonly help: string;
  readonly unit: string;
}

/** A series with its raw samples, for export and federation. */
export interface RawSeries {
  readonly labels: Labels;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

/**
 * The list answers (labelNames, labelValues, series, metadata) may come from select's
 * index-answer cache: such a list is frozen and the same array on every hit of its entry.
 */
export interface SelectBackend {
  querier(tenant: Tenant, opts: SearchOptions): SelectQuerier;
  labelNames(tenant: Tenant, matcherSets: readonly (readonly LabelMatcher[])[], minT: number, maxT: number, limit: number, opts: SearchOptions): Promise<Answer<readonly string[]>>;
  labelValues(
    tenant: Tenant,
    name: string,
    matcherSets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    limit: number,
    opts: SearchOptions,
  ): Promise<Answer<readonly string[]>>;
  series(tenant: Tenant, matcherSets: readonly (readonly LabelMatcher[])[], minT: number, maxT: number, limit: number, opts: SearchOptions): Promise<Answer<readonly Labels[]>>;
  seriesCount(tenant: Tenant, opts: SearchOptions): Promise<Answer<number>>;
  tsdbStatus(tenant: Tenant, req: TsdbStatusRequest, opts: SearchOptions): Promise<Answer<TsdbStatus>>;
  metadata(tenant: Tenant, metric: string, limit: number, opts: SearchOptions): Promise<Answer<readonly MetricMetadata[]>>;
  deleteSeries(tenant: Tenant, matcherSets: readonly (readonly LabelMatcher[])[], opts: SearchOptions): Promise<number>;
  /**
   * Raw samples of matching series in [minT, maxT], merged across nodes and deduplicated. A
   * series' arrays are valid until exportSeries settles (their memory is reused afterwards):
   * `onSeries` copies what it keeps.
   */
  exportSeries(
    tenant: Tenant,
    matcherSets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    opts: SearchOptions,
    onSeries: (s: RawSeries) => void | Promise<void>,
  ): Promise<Answer<number>>;
  /** Node health for /metrics and /health. */
  nodes(): readonly { readonly addr: string; readonly healthy: boolean }[];
  close(): Promise<void>;
}
