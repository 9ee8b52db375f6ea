import { BadDataError, METRIC_NAME_LABEL, RowsBatchWriter, compareStrings, labelsEqual, validateLabels } from "@strata/core";
import type { Label, LabelLimits, Labels, SampleWindow, Tenant } from "@strata/core";
import type { RowSink } from "./common.js";
import { float64Bits } from "./floats.js";
import { MetricNameEncoder } from "./metricname.js";

export interface RowsBatchSinkOptions {
  readonly tenant: Tenant;
  /** Where rows go; a new writer when omitted (read it back from `sink.writer`). */
  readonly writer?: RowsBatchWriter;
  /**
   * Applied to every series after normalization (sorted, empty values dropped), e.g. a
   * relabeler. Returning null, or a set without `__name__`, drops the series and its samples
   * (counted in `rowsDropped`).
   */
  readonly transform?: (labels: Labels) => Labels | null;
  /** Validation of the final label set (validateLabels); a failing series rejects the input. */
  readonly limits?: LabelLimits;
  /** Timestamps storage keeps; samples outside are counted (rowsTooOld, rowsTooNew), not written. */
  readonly window?: SampleWindow;
}

/**
 * A RowSink that writes rows batch v1 (@strata/core RowsBatchWriter): per series it
 * normalizes the labels, applies `transform`, validates, and encodes the canonical metric
 * name once; per sample it appends (name, timestamp, value) to the batch.
 */
export class RowsBatchSink implements RowSink {
  readonly writer: RowsBatchWriter;
  /** Samples written to the batch. */
  rowsWritten = 0;
  /** Samples of series dropped by `transform`. */
  rowsDropped = 0;
  /** Samples before the window (older than the retention). */
  rowsTooOld = 0;
  /** Samples after the window (further ahead than -futureRetention). */
  rowsTooNew = 0;
  private minT: number;
  private maxT: number;
  private current: Uint8Array | null = null;
  private lastLabels: Labels | null = null;
  private lastName: Uint8Array | null = null;
  private readonly encoder = new MetricNameEncoder();

  constructor(private readonly opts: RowsBatchSinkOptions) {
    this.writer = opts.writer ?? new RowsBatchWriter();
    this.minT = opts.window?.minT ?? -Infinity;
    this.maxT = opts.window?.maxT ?? Infinity;
  }

  /** Moves the window (a long-lived sink, e.g. a Graphite connection, as time passes). */
  setWindow(w: SampleWindow): void {
    this.minT = w.minT;
    this.maxT = w.maxT;
  }

  series(labels: readonly Label[]): void {
    const norm = canonicalLabels(labels);
    const out = this.opts.transform ? this.opts.transform(norm) : norm;
    // A relabeling that removes every label (or just __name__) drops the series, as in
    // VictoriaMetrics; it does not make the request invalid.
    if (out === null || (out !== norm && !out.some((l) => l.name === METRIC_NAME_LABEL && l.value !== ""))) {
      this.current = null;
      return;
    }
    // Consecutive rows of one series (text formats) reuse the previous encoding.
    if (this.lastLabels !== null && this.lastName !== null && labelsEqual(out, this.lastLabels)) {
      this.current = this.lastName;
      return;
    }
    validateLabels(out, this.opts.limits);
    this.current = this.encoder.encode(this.opts.tenant, out);
    this.lastLabels = out;
    this.lastName = this.current;
  }

  sample(timestampMs: number, value: number): void {
    if (this.current === null) {
      this.rowsDropped++;
      return;
    }
    if (timestampMs < this.minT) {
      this.rowsTooOld++;
      return;
    }
    if (timestampMs > this.maxT) {
      this.rowsTooNew++;
      return;
    }
    this.writer.add(this.current, timestampMs, value);
    this.rowsWritten++;
  }
}

/**
 * Canonical form of parsed labels: empty values dropped, sorted by name in UTF-8 order.
 * Duplicate names are a BadDataError (a series cannot have two values for one label).
 * Insertion sort: parsed label sets are small and usually nearly sorted.
 */
export function canonicalLabels(labels: readonly Label[]): Label[] {
  const out: Label[] = [];
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l.value === "") continue;
    let j = out.length;
    out.push(l);
    while (j > 0) {
      const prev = out[j - 1]!;
      const c = prev.name === l.name ? 0 : compareStrings(prev.name, l.name);
      if (c === 0) {
        throw new BadDataError(`duplicate label name ${JSON.stringify(l.name)}`, "STRATA_DUPLICATE_LABEL");
      }
      if (c < 0) break;
      out[j] = prev;
      j--;
    }
    out[j] = l;
  }
  return out;
}

/**
 * A RowSink that keeps everything in memory as plain objects: for tests and small tools.
 * `valueBits` keeps each value's exact 64 bits (a `number[]` would quiet signaling NaNs such
 * as the stale marker).
 */
export class CollectingSink implements RowSink {
  readonly series_: { labels: Label[]; timestamps: number[]; values: number[]; valueBits: bigint[] }[] = [];

  series(labels: readonly Label[]): void {
    this.series_.push({ labels: canonicalLabels(labels), timestamps: [], values: [], valueBits: [] });
  }

  sample(timestampMs: number, value: number): void {
    const s = this.series_[this.series_.length - 1];
    if (s === undefined) throw new BadDataError("sample before series");
    s.timestamps.push(timestampMs);
    s.valueBits.push(float64Bits(value));
    s.values.push(value);
  }
}
