import {
  METRIC_NAME_LABEL,
  RowsBatchReader,
  RowsBatchWriter,
  decodeMetricName,
  errorMessage,
  labelValue,
  validateLabels,
  type Counter,
  type LabelLimits,
  type Labels,
  type Logger,
  type MetricsRegistry,
} from "@strata/core";
import { MetricNameEncoder } from "@strata/formats";
import { loadRelabelConfigFile, type Relabeler } from "@strata/relabel";

/** A series transform for RowsBatchSink: the relabeled canonical labels, or null to drop. */
export type SeriesTransform = (labels: Labels) => Labels | null;

function hasName(labels: Labels): boolean {
  for (const l of labels) if (l.name === METRIC_NAME_LABEL && l.value !== "") return true;
  return false;
}

/**
 * The `-relabelConfig` of a running insert: the compiled rules, reloadable on SIGHUP.
 *
 * A reload compiles the file into a new Relabeler and swaps one reference; a request takes the
 * reference once when it starts (`transform`) and keeps it to its end, so requests in flight are
 * never dropped or relabeled half with the old and half with the new rules. A file that does
 * not read or compile is logged and the old rules stay (strata_relabel_config_reload_success 0).
 */
export class RelabelHook {
  private current: Relabeler | null = null;
  private readonly dropped = new Map<string, { series: Counter; rows: Counter }>();
  private readonly reloadOk;
  private readonly reloads;
  private readonly reloadErrors;
  private readonly lastOk;
  private readonly rules;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly metrics: MetricsRegistry,
  ) {
    this.reloadOk = metrics.gauge("strata_relabel_config_reload_success", "1 if the last load of -relabelConfig succeeded, 0 if it failed (the previous rules stay in use).");
    this.reloads = metrics.counter("strata_relabel_config_reloads_total", "Loads of -relabelConfig (at start and on SIGHUP).");
    this.reloadErrors = metrics.counter("strata_relabel_config_reload_errors_total", "Loads of -relabelConfig that failed.");
    this.lastOk = metrics.gauge("strata_relabel_config_last_reload_success_timestamp_seconds", "Unix time of the last successful load of -relabelConfig.");
    this.rules = metrics.gauge("strata_relabel_config_rules", "Relabel rules in use.");
    this.reloadOk.set(1);
  }

  /** Loads the file at start: a bad file fails the start (the operator sees it at once). */
  static async open(path: string, log: Logger, metrics: MetricsRegistry): Promise<RelabelHook> {
    const h = new RelabelHook(path, log, metrics);
    if (path !== "") {
      h.reloads.inc();
      h.swap(await loadRelabelConfigFile(path));
    }
    return h;
  }

  /** The rules in use (null: no -relabelConfig). */
  get relabeler(): Relabeler | null {
    return this.current;
  }

  private swap(r: Relabeler): void {
    this.current = r;
    this.rules.set(r.length);
    this.reloadOk.set(1);
    this.lastOk.set(Math.floor(Date.now() / 1000));
  }

  /** Re-reads the file; true when the new rules are in use. Never throws. */
  async reload(): Promise<boolean> {
    if (this.path === "") {
      this.log.info("SIGHUP: no -relabelConfig to reload");
      return true;
    }
    this.reloads.inc();
    try {
      const r = await loadRelabelConfigFile(this.path);
      this.swap(r);
      this.log.info({ path: this.path, rules: r.length }, "relabel config reloaded");
      return true;
    } catch (err) {
      this.reloadErrors.inc();
      this.reloadOk.set(0);
      this.log.error({ path: this.path, err: errorMessage(err) }, "cannot reload relabel config; keeping the previous rules");
      return false;
    }
  }

  /** Reloads on every SIGHUP until the returned function is called. */
  onSighup(): () => void {
    const handler = (): void => void this.reload();
    process.on("SIGHUP", handler);
    return () => process.off("SIGHUP", handler);
  }

  private counters(type: string): { series: Counter; rows: Counter } {
    let c = this.dropped.get(type);
    if (c === undefined) {
      const t = labelValue(type);
      c = {
        series: this.metrics.counter(`strata_relabel_series_dropped_total{type="${t}"}`, "Series (one per line or per remote-write series) dropped by -relabelConfig."),
        rows: this.metrics.counter(`strata_relabel_rows_dropped_total{type="${t}"}`, "Samples not stored because -relabelConfig dropped their series."),
      };
      this.dropped.set(type, c);
    }
    return c;
  }

  /** Counts rows a RowsBatchSink dropped (its `rowsDropped`) for `type`. */
  countDroppedRows(type: string, rows: number): void {
    if (rows > 0) this.counters(type).rows.add(rows);
  }

  /**
   * The transform for one request, bound to the rules in use now (undefined without rules).
   * Counts dropped series; a result without `__name__` counts as dropped (the sink drops it).
   */
  transform(type: string): SeriesTransform | undefined {
    const r = this.current;
    if (r === null) return undefined;
    const series = this.counters(type).series;
    return (labels) => {
      const out = r.apply(labels);
      if (out === null || !hasName(out)) {
        series.inc();
        return null;
      }
      return out;
    };
  }

  /**
   * A transform that looks up the rules in use at each series (for long-lived streams such as
   * a Graphite TCP connection, which must see a reload without reconnecting).
   */
  liveTransform(type: string): SeriesTransform {
    const series = this.counters(type).series;
    return (labels) => {
      const r = this.current;
      if (r === null) return labels;
      const out = r.apply(labels);
      if (out === null || !hasName(out)) {
        series.inc();
        return null;
      }
      return out;
    };
  }

  /**
   * Relabels a rows batch whose metric names are already canonical (remote write): each run of
   * rows with one metric name is decoded once, relabeled, validated with `limits` and
   * re-encoded. Returns the batch unchanged when there are no rules. Throws BadDataError (the
   * request is then rejected whole) when a relabeled series breaks a label limit.
   */
  rewriteBatch(batch: Uint8Array, type: string, limits: LabelLimits): Uint8Array {
    const r = this.current;
    if (r === null) return batch;
    const c = this.counters(type);
    const out = new RowsBatchWriter(Math.max(1024, batch.length));
    const enc = new MetricNameEncoder();
    const rd = new RowsBatchReader(batch);
    let name: Uint8Array | null = null;
    let droppedRows = 0;
    while (rd.next()) {
      if (!rd.sameAsPrevious) {
        const mn = decodeMetricName(rd.metricName);
        const labels = r.apply(mn.labels);
        if (labels === null || !hasName(labels)) {
          c.series.inc();
          name = null;
        } else {
          validateLabels(labels, limits);
          name = enc.encode(mn.tenant, labels);
        }
      }
      if (name === null) droppedRows++;
      else out.add(name, rd.timestamp, rd.value);
    }
    if (droppedRows > 0) c.rows.add(droppedRows);
    return out.view();
  }
}
