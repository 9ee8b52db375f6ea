import type { CacheStats, LabelMatcher, Tenant } from "@strata/core";
import type { TsdbStatus, TsdbStatusRequest } from "./indexdb/status.js";
import type { TSID } from "./tsid.js";

/**
 * What the data path needs from the inverted index. `IndexDB` (./indexdb) implements it; tests
 * may pass a double through `StorageOptions.index`.
 */

export interface SeriesIndex {
  /** `metricName` may be a view into a rows batch that is reused after the call: copy what you keep. */
  getOrCreateTSID(metricName: Uint8Array, day: number): TSID;
  searchTSIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): TSID[];
  /** Metric names of the series searchTSIDs would find (shared arrays: do not modify). */
  searchMetricNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): Uint8Array[];
  metricNameByID(metricID: number): Uint8Array | undefined;
  labelNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[];
  labelValues(
    tenant: Tenant,
    labelName: string,
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    limit: number,
  ): string[];
  seriesCount(tenant: Tenant): number;
  tsdbStatus(tenant: Tenant, req: TsdbStatusRequest): TsdbStatus;
  deleteSeries(tenant: Tenant, matchers: readonly LabelMatcher[]): number;
  isDeleted(metricID: number): boolean;
  /** `listener` runs synchronously after every change that can alter a label, label value or series answer. */
  onChange(listener: () => void): void;
  flush(): Promise<void>;
  /** Merges the on-disk index into one part (the storage's forceMerge). */
  forceMerge(): Promise<void>;
  dropDaysBefore(minDay: number): Promise<void>;
  snapshot(dir: string): Promise<void>;
  metrics(): Record<string, number>;
  /** The index's bounded caches by `strata_cache_*` type (none when absent). */
  caches?(): Readonly<Record<string, CacheStats>>;
  close(): Promise<void>;
}
