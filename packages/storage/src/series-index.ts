import type { CacheStats, LabelMatcher, Tenant } from "@strata/core";

/**
 * What the data path needs from the inverted index. `IndexDB` (./indexdb, the INDEX engineer's
 * work) implements it; tests may pass a double through `StorageOptions.index`. Keeping the data
 * path on this interface lets both halves of the package evolve in parallel.
 */

/** Sort key of a series. All fields uint32 except metricID (safe integer, monotonic, never reused). */
export interface TSID {
  readonly accountID: number;
  readonly projectID: number;
  readonly metricGroupID: number;
  readonly jobInstanceID: number;
  readonly metricID: number;
}

export interface TsdbStatus {
  totalSeries: number;
  totalLabelValuePairs: number;
  seriesCountByMetricName: { name: string; value: number }[];
  seriesCountByLabelName: { name: string; value: number }[];
  seriesCountByFocusLabelValue: { name: string; value: number }[];
  seriesCountByLabelValuePair: { name: string; value: number }[];
  labelValueCountByLabelName: { name: string; value: number }[];
}

export interface TsdbStatusRequest {
  /** Day since the unix epoch (UTC). */
  date: number;
  topN: number;
  focusLabel?: string;
  matchers?: readonly LabelMatcher[];
}

export interface SeriesIndex {
  /** `metricName` may be a view into a rows batch that is reused after the call: copy what you keep. */
  getOrCreateTSID(metricName: Uint8Array, day: number): TSID;
  searchTSIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): TSID[];
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

/** Writes a TSID in its fixed 24-byte big-endian form (byte order = compareTSID order). */
export function putTSID(t: TSID, buf: Uint8Array, pos: number): void {
  put32(buf, pos, t.accountID);
  put32(buf, pos + 4, t.projectID);
  put32(buf, pos + 8, t.metricGroupID);
  put32(buf, pos + 12, t.jobInstanceID);
  put32(buf, pos + 16, Math.floor(t.metricID / 4294967296));
  put32(buf, pos + 20, t.metricID);
}

function put32(buf: Uint8Array, p: number, n: number): void {
  buf[p] = n >>> 24;
  buf[p + 1] = (n >>> 16) & 0xff;
  buf[p + 2] = (n >>> 8) & 0xff;
  buf[p + 3] = n & 0xff;
}

export function getTSID(buf: Uint8Array, pos: number): TSID {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    accountID: dv.getUint32(pos),
    projectID: dv.getUint32(pos + 4),
    metricGroupID: dv.getUint32(pos + 8),
    jobInstanceID: dv.getUint32(pos + 12),
    metricID: dv.getUint32(pos + 16) * 4294967296 + dv.getUint32(pos + 20),
  };
}

/** metricID of a TSID stored at buf[pos..pos+24). */
export function getMetricID(buf: Uint8Array, pos: number): number {
  const hi = ((buf[pos + 16]! << 24) | (buf[pos + 17]! << 16) | (buf[pos + 18]! << 8) | buf[pos + 19]!) >>> 0;
  const lo = ((buf[pos + 20]! << 24) | (buf[pos + 21]! << 16) | (buf[pos + 22]! << 8) | buf[pos + 23]!) >>> 0;
  return hi * 4294967296 + lo;
}

export function tsidBytes(t: TSID): Uint8Array {
  const b = new Uint8Array(24);
  putTSID(t, b, 0);
  return b;
}

export function compareTSIDs(a: TSID, b: TSID): number {
  return (
    a.accountID - b.accountID ||
    a.projectID - b.projectID ||
    a.metricGroupID - b.metricGroupID ||
    a.jobInstanceID - b.jobInstanceID ||
    a.metricID - b.metricID
  );
}
