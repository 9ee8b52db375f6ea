import { compareTSID, type TSID } from "./tsid.js";

/**
 * A cached series: what the write path needs per row, without touching the index. The TSID
 * fields sit in the entry itself (no TSID object or 24-byte array behind it).
 */
export interface SeriesEntry extends TSID {
  /** Last day the index was told about for this series. */
  day: number;
  /** Rows-buffer generation and slot this series has in it (avoids a Map per flush). */
  gen: number;
  slot: number;
  /** Stamp of the RowsBuffer TSID order that holds this series, and its position in it. */
  ord: number;
  ordPos: number;
}

/** u32 words of a TSID per slot: accountID, projectID, metricGroupID, jobInstanceID, metricID hi, lo. */
export const TSID_WORDS = 6;

/**
 * Rows of a drain grouped by series (scratch arrays, valid until the next drain): the series
 * `slots[0..count)` in TSID order; slot s has rows [starts[s], starts[s + 1]) of ts/vals and its
 * TSID in tsids[6s..6s+6).
 */
export interface DrainedRows {
  readonly count: number;
  readonly slots: Int32Array;
  readonly starts: Int32Array;
  readonly tsids: Uint32Array;
  /** Timestamps and values grouped by series, arrival order within a series (may be reordered in place). */
  readonly ts: Float64Array;
  readonly vals: Float64Array;
}

/**
 * Rows waiting for the next flush, column-wise (no object per row): the series slot, the
 * timestamp and the value. Bounded by `maxRows` (the caller flushes when `full`).
 *
 * Everything a flush needs per series is copied into slot-indexed typed arrays when the series
 * enters the buffer (its entry is hot then): the TSID words and its position in the last TSID
 * order. A flush then never touches the SeriesEntry objects — 100k scattered heap objects cost
 * a cache miss each, more than the rest of the flush.
 */
export class RowsBuffer {
  n = 0;
  slots: Int32Array;
  ts: Float64Array;
  vals: Float64Array;
  /** Series of the buffered rows by slot: [0, seriesCount) (the array is reused across drains). */
  series: SeriesEntry[] = [];
  seriesCount = 0;
  gen = 1;
  /** Per slot: TSID words, and the position in `order` (-1 = not in it). */
  private slotTsid = new Uint32Array(1024 * TSID_WORDS);
  /** The slotTsid of the previous drain (still read by its flush), reused by the next. */
  private spareTsid = new Uint32Array(0);
  private slotPos = new Int32Array(1024);
  // drain scratch, reused (bounded by maxRows like the columns)
  private starts = new Int32Array(1024);
  private fill = new Int32Array(1024);
  private sortedTs = new Float64Array(0);
  private sortedVals = new Float64Array(0);
  private orderSlots = new Int32Array(1024);
  private present = new Int32Array(1024);
  /**
   * The TSID order of the series of the last drain that brought new series, with its stamp
   * (SeriesEntry.ord/ordPos point into it). Drains with known series only reuse it as is.
   */
  private order: SeriesEntry[] = [];
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

  /** Bytes held by the column arrays and scratch (capacity, not just the rows in use). */
  get sizeBytes(): number {
    return (
      this.slots.length * 20 +
      this.sortedTs.length * 16 +
      (this.starts.length + this.fill.length + this.orderSlots.length + this.present.length + this.slotPos.length) * 4 +
      (this.slotTsid.length + this.spareTsid.length) * 4 +
      this.order.length * 8
    );
  }

  add(e: SeriesEntry, t: number, v: number): void {
    if (e.gen !== this.gen) this.addSeries(e);
    if (this.n === this.slots.length) this.grow();
    this.slots[this.n] = e.slot;
    this.ts[this.n] = t;
    this.vals[this.n] = v;
    this.n++;
  }

  private addSeries(e: SeriesEntry): void {
    const slot = this.seriesCount++;
    e.gen = this.gen;
    e.slot = slot;
    if (slot < this.series.length) this.series[slot] = e;
    else this.series.push(e);
    if (slot === this.slotPos.length) {
      const p = new Int32Array(2 * slot);
      p.set(this.slotPos);
      this.slotPos = p;
      const w = new Uint32Array(2 * slot * TSID_WORDS);
      w.set(this.slotTsid);
      this.slotTsid = w;
    }
    this.slotPos[slot] = e.ord === this.stamp ? e.ordPos : -1;
    const w = this.slotTsid;
    const at = slot * TSID_WORDS;
    w[at] = e.accountID;
    w[at + 1] = e.projectID;
    w[at + 2] = e.metricGroupID;
    w[at + 3] = e.jobInstanceID;
    w[at + 4] = Math.floor(e.metricID / 4294967296);
    w[at + 5] = e.metricID >>> 0;
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
   * The TSID order is kept from drain to drain: when every series was in the kept order, the
   * drain picks them out of it by position (no comparison, no SeriesEntry touched); otherwise
   * the new series are sorted and merged in and the order is rebuilt.
   */
  drain(): DrainedRows {
    const n = this.n;
    const k = this.seriesCount;
    if (this.starts.length < k + 1) this.starts = new Int32Array(Math.max(k + 1, 2 * this.starts.length));
    if (this.fill.length < k) this.fill = new Int32Array(Math.max(k, 2 * this.fill.length));
    if (this.orderSlots.length < k) this.orderSlots = new Int32Array(Math.max(k, 2 * this.orderSlots.length));
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
    this.orderSlotsByTSID(k);
    // The drained TSIDs must outlive the rows added after this drain (a flush may write them in
    // slices): new slots go into a second array.
    const tsids = this.slotTsid;
    this.slotTsid = this.spareTsid.length === tsids.length ? this.spareTsid : new Uint32Array(tsids.length);
    this.spareTsid = tsids;
    this.reset();
    return { count: k, slots: this.orderSlots, starts, tsids, ts: st, vals: sv };
  }

  /** Fills orderSlots[0..k) with the slots in TSID order (see drain). */
  private orderSlotsByTSID(k: number): void {
    const r = this.order.length;
    if (this.present.length < r) this.present = new Int32Array(Math.max(r, 2 * this.present.length));
    const present = this.present;
    present.fill(-1, 0, r);
    const pos = this.slotPos;
    let fresh = 0;
    for (let s = 0; s < k; s++) {
      const p = pos[s]!;
      if (p >= 0) present[p] = s;
      else fresh++;
    }
    const out = this.orderSlots;
    if (fresh === 0) {
      let o = 0;
      for (let p = 0; p < r; p++) {
        const s = present[p]!;
        if (s >= 0) out[o++] = s;
      }
      return;
    }
    // New series: sort them, merge them into the known ones, and make that the kept order.
    const kept: SeriesEntry[] = [];
    for (let p = 0; p < r; p++) if (present[p]! >= 0) kept.push(this.order[p]!);
    const added: SeriesEntry[] = [];
    for (let s = 0; s < k; s++) if (pos[s]! < 0) added.push(this.series[s]!);
    // Same order as the encoded TSID bytes (all fields are unsigned).
    added.sort(compareTSID);
    const order = new Array<SeriesEntry>(k);
    let i = 0;
    let j = 0;
    let o = 0;
    while (i < kept.length && j < added.length) order[o++] = compareTSID(kept[i]!, added[j]!) <= 0 ? kept[i++]! : added[j++]!;
    while (i < kept.length) order[o++] = kept[i++]!;
    while (j < added.length) order[o++] = added[j++]!;
    const stamp = ++this.stamp;
    for (let p = 0; p < k; p++) {
      const e = order[p]!;
      e.ord = stamp;
      e.ordPos = p;
      out[p] = e.slot;
    }
    this.order = order;
  }

  reset(): void {
    this.n = 0;
    this.seriesCount = 0;
    this.gen++;
    // Capacity is kept (bounded by maxRows): regrowing every second would churn the GC.
  }
}
