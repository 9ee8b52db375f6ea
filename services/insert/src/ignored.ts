import { labelValue, type MetricsRegistry } from "@strata/core";

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
