import type { InsertCluster } from "@strata/cluster";
import { labelValue, type MetricsRegistry, type SampleWindow } from "@strata/core";

/**
 * The window of timestamps insert sends on: each bound from insert's own flag when it is set
 * (> 0), else the widest the storage nodes told in Ping_v1, else open (storage alone decides).
 * So -retentionPeriod and -futureRetention are set once, on storage.
 */
export function retentionWindow(cluster: Pick<InsertCluster, "retention">, retentionMs: number, futureRetentionMs: number): () => SampleWindow {
  return () => {
    const told = cluster.retention();
    const back = retentionMs > 0 ? retentionMs : told.retentionMs;
    const ahead = futureRetentionMs > 0 ? futureRetentionMs : told.futureRetentionMs;
    const now = Date.now();
    return { minT: back > 0 ? now - back : -Infinity, maxT: ahead > 0 ? now + ahead : Infinity };
  };
}

/** Counts rows left out because their timestamps are outside the retention window. */
export type RowsIgnored = (type: string, tooOld: number, tooNew: number) => void;

/**
 * `strata_rows_ignored_total{type,reason}` with VictoriaMetrics' reasons: `small_timestamp`
 * (older than -retentionPeriod) and `big_timestamp` (more than -futureRetention ahead).
 */
export function rowsIgnoredCounter(m: MetricsRegistry): RowsIgnored {
  const counter = (type: string, reason: string) =>
    m.counter(
      `strata_rows_ignored_total{type="${labelValue(type)}",reason="${reason}"}`,
      "Samples not stored because their timestamp is outside -retentionPeriod (small_timestamp) or more than -futureRetention ahead (big_timestamp).",
    );
  return (type, tooOld, tooNew) => {
    if (tooOld > 0) counter(type, "small_timestamp").add(tooOld);
    if (tooNew > 0) counter(type, "big_timestamp").add(tooNew);
  };
}
