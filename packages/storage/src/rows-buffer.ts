import { compareTSIDs, type TSID } from "./series-index.js";

/**
 * A cached series: what the write path needs per row, without touching the index. The TSID
 * fields sit in the entry itself (no TSID object or 24-byte array behind it): a flush reads them
 * for every series, and one heap object per series is one cache miss, not three.
 */
export interface SeriesEntry extends TSID {
  /** Last day the index was told about for this series. */
  day: number;
  /** Rows-buffer generation and slot this series has in it (avoids a Map per flush). */
  gen: number;
  slot: number;
  /** Stamp of the last drain whose TSID order included this series (RowsBuffer keeps that order). */
  ord: number;
}

/** Rows of a drain grouped by series: series `order[i]` has rows [starts[slot], starts[slot + 1]). */
export interface DrainedRows {
  /** Series in TSID order. */
  readonly order: readonly SeriesEntry[];
  /** Row ranges by series slot (scratch: valid until the next drain). */
  readonly starts: Int32Array;
  /** Timestamps and values grouped by series, arrival order within a series (may be reordered in place). */
  readonly ts: Float64Array;
  readonly vals: Float64Array;
}

/**
 * Rows waiting for the next flush, column-wise (no object per row): the series slot, the
 * timestamp and the value. Bounded by `maxRows` (the caller flushes when `full`).
 */
export class RowsBuffer {
  n = 0;
  slots: Int32Array;
  ts: Float64Array;
  vals: Float64Array;
  series: SeriesEntry[] = [];
  gen = 1;
  // drain scratch, reused (bounded by maxRows like the columns)
  private starts = new Int32Array(1024);
  private fill = new Int32Array(1024);
  private sortedTs = new Float64Array(0);
  private sortedVals = new Float64Array(0);
  /** TSID order of the previous drain's series, and its stamp (SeriesEntry.ord). */
  private lastOrder: SeriesEntry[] = [];
  private stamp = 1;

  constructor(readonly maxRows: number) {
    const cap = Math.min(maxRows, 64 * 1024);
    this.slots = new Int32Array(cap);
    this.ts = new Float64Array(cap);
    this.vals = new Float64Array(cap);
  }

  get full(): boolean {
    return this.n >= this.maxRows;
  }

  /** Bytes held by the column arrays (capacity, not just the rows in use). */
  get sizeBytes(): number {
    return this.slots.length * 20 + this.sortedTs.length * 16 + (this.starts.length + this.fill.length) * 4;
  }

  add(e: SeriesEntry, t: number, v: number): void {
    if (e.gen !== this.gen) {
      e.gen = this.gen;
      e.slot = this.series.length;
      this.series.push(e);
    }
    if (this.n === this.slots.length) this.grow();
    this.slots[this.n] = e.slot;
    this.ts[this.n] = t;
    this.vals[this.n] = v;
    this.n++;
  }

  private grow(): void {
    const cap = this.slots.length * 2;
    const s = new Int32Array(cap);
    s.set(this.slots);
    const t = new Float64Array(cap);
    t.set(this.ts);
    const v = new Float64Array(cap);
    v.set(this.vals);
    this.slots = s;
    this.ts = t;
    this.vals = v;
  }

  /**
   * Takes the buffered rows grouped by series in TSID order and resets the buffer. The result
   * lives in scratch arrays reused by the next drain.
   *
   * The TSID order is kept from drain to drain: series seen in the previous drain come out in
   * that order (a filter, no comparisons), only series new to this drain are sorted and merged
   * in. Batches carry much the same series every second, so a flush sorts almost nothing.
   */
  drain(): DrainedRows {
    const n = this.n;
    const k = this.series.length;
    if (this.starts.length < k + 1) this.starts = new Int32Array(Math.max(k + 1, 2 * this.starts.length));
    if (this.fill.length < k) this.fill = new Int32Array(Math.max(k, 2 * this.fill.length));
    if (this.sortedTs.length < n) {
      this.sortedTs = new Float64Array(Math.max(n, 2 * this.sortedTs.length));
      this.sortedVals = new Float64Array(this.sortedTs.length);
    }
    const starts = this.starts;
    const fill = this.fill;
    const st = this.sortedTs;
    const sv = this.sortedVals;
    const slots = this.slots;
    const ts = this.ts;
    const vals = this.vals;
    starts.fill(0, 0, k + 1);
    for (let i = 0; i < n; i++) starts[slots[i]! + 1]!++;
    for (let s = 0; s < k; s++) {
      starts[s + 1]! += starts[s]!;
      fill[s] = starts[s]!;
    }
    for (let i = 0; i < n; i++) {
      const at = fill[slots[i]!]!++;
      st[at] = ts[i]!;
      sv[at] = vals[i]!;
    }
    const order = this.orderSeries();
    this.reset();
    return { order, starts, ts: st, vals: sv };
  }

  /** The current series in TSID order (see drain). */
  private orderSeries(): SeriesEntry[] {
    const gen = this.gen;
    const prevStamp = this.stamp;
    const stamp = ++this.stamp;
    const kept: SeriesEntry[] = [];
    for (const e of this.lastOrder) if (e.gen === gen) kept.push(e);
    let order = kept;
    if (kept.length !== this.series.length) {
      const fresh: SeriesEntry[] = [];
      for (const e of this.series) if (e.ord !== prevStamp) fresh.push(e);
      // Same order as the big-endian tsidBytes (all fields are unsigned), without a native
      // Buffer.compare call per comparison.
      fresh.sort((a, b) => compareTSIDs(a, b));
      if (kept.length === 0) order = fresh;
      else {
        order = new Array<SeriesEntry>(kept.length + fresh.length);
        let i = 0;
        let j = 0;
        let o = 0;
        while (i < kept.length && j < fresh.length) order[o++] = compareTSIDs(kept[i]!, fresh[j]!) <= 0 ? kept[i++]! : fresh[j++]!;
        while (i < kept.length) order[o++] = kept[i++]!;
        while (j < fresh.length) order[o++] = fresh[j++]!;
      }
    }
    for (const e of order) e.ord = stamp;
    this.lastOrder = order;
    return order;
  }

  reset(): void {
    this.n = 0;
    this.series = [];
    this.gen++;
    // Capacity is kept (bounded by maxRows): regrowing every second would churn the GC.
  }
}
