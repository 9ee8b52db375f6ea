import { compareTSIDs, type TSID } from "./series-index.js";

/** A cached series: what the write path needs per row, without touching the index. */
export interface SeriesEntry {
  readonly tsid: TSID;
  /** 24-byte big-endian TSID (sort key of blocks). */
  readonly tsidBytes: Uint8Array;
  /** Last day the index was told about for this series. */
  day: number;
  /** Rows-buffer generation and slot this series has in it (avoids a Map per flush). */
  gen: number;
  slot: number;
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
    return this.slots.length * 20;
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
   * Takes the buffered rows grouped by series in TSID order and resets the buffer. `emit` gets
   * each series' rows (arrival order) as views it may reorder in place.
   */
  drain(emit: (e: SeriesEntry, ts: Float64Array, vals: Float64Array) => void): void {
    const n = this.n;
    const k = this.series.length;
    if (n === 0) {
      this.reset();
      return;
    }
    const starts = new Int32Array(k + 1);
    for (let i = 0; i < n; i++) starts[this.slots[i]! + 1]!++;
    for (let s = 0; s < k; s++) starts[s + 1]! += starts[s]!;
    const fill = starts.slice(0, k);
    const st = new Float64Array(n);
    const sv = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const at = fill[this.slots[i]!]!++;
      st[at] = this.ts[i]!;
      sv[at] = this.vals[i]!;
    }
    const order = this.series.slice();
    // Same order as the big-endian tsidBytes (all fields are unsigned), without a native
    // Buffer.compare call per comparison.
    order.sort((a, b) => compareTSIDs(a.tsid, b.tsid));
    this.reset();
    for (const e of order) {
      const a = starts[e.slot]!;
      const b = starts[e.slot + 1]!;
      emit(e, st.subarray(a, b), sv.subarray(a, b));
    }
  }

  reset(): void {
    this.n = 0;
    this.series = [];
    this.gen++;
    // Capacity is kept (bounded by maxRows): regrowing every second would churn the GC.
  }
}
