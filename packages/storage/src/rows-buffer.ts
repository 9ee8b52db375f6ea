import { type SeriesTable, TSID_WORDS } from "./series-table.js";

export { TSID_WORDS } from "./series-table.js";

/**
 * Rows of a drain grouped by series in TSID order (scratch arrays, valid until the next drain):
 * the o-th series (o < count) has rows [starts[o], starts[o + 1]) of ts/vals, its TSID in
 * tsids[6o..6o+6) and was slot slots[o] of the buffer. A flush reads them front to back: at a
 * million series the arrays are far bigger than the CPU caches, and reading them in slot order
 * cost a cache miss per row.
 */
export interface DrainedRows {
  readonly count: number;
  readonly slots: Int32Array;
  readonly starts: Int32Array;
  readonly tsids: Uint32Array;
  /** Timestamps and values grouped by series in TSID order, arrival order within a series (may be reordered in place). */
  readonly ts: Float64Array;
  readonly vals: Float64Array;
}

/**
 * Rows waiting for the next flush, column-wise (no object per row): the series slot, the
 * timestamp and the value. Bounded by `maxRows` and `maxSeries` (the caller flushes when `full`).
 *
 * Series are refs into a SeriesTable (the series cache's columns), whose gen/slot/ord/ordPos
 * columns this buffer owns. Everything a flush needs per series is copied into slot-indexed
 * typed arrays when the series enters the buffer: the TSID words and its position in the last
 * TSID order, so a drain reads the table only for new series.
 */
export class RowsBuffer {
  n = 0;
  slots: Int32Array;
  ts: Float64Array;
  vals: Float64Array;
  /** Series refs of the buffered rows by slot: [0, seriesCount) (reused across drains). */
  series = new Int32Array(1024);
  seriesCount = 0;
  gen = 1;
  /** Per slot: TSID words, and the position in `order` (-1 = not in it). */
  private slotTsid = new Uint32Array(1024 * TSID_WORDS);
  private slotPos = new Int32Array(1024);
  /** The drained TSIDs in TSID order (read by a sliced flush while new rows arrive). */
  private drainedTsid = new Uint32Array(0);
  // drain scratch, reused (bounded by maxRows like the columns)
  private starts = new Int32Array(1024);
  private fill = new Int32Array(1024);
  private sortedTs = new Float64Array(0);
  private sortedVals = new Float64Array(0);
  private orderSlots = new Int32Array(1024);
  private present = new Int32Array(1024);
  private added = new Int32Array(1024);
  /**
   * The TSID order of every series the buffer has held that the cache still holds, with its
   * stamp (the table's ord/ordPos point into it). Drains with known series only pick from it;
   * a drain with new series merges them in.
   */
  private order = new Int32Array(0);
  private stamp = 1;
  /** The table's release counter when `order` was last checked for stale entries. */
  private releasesAtOrder = 0;

  constructor(
    readonly maxRows: number,
    private readonly table: SeriesTable,
    /** Series at which the buffer is `full` too (its drain scratch grows with the series of a drain). */
    readonly maxSeries = Infinity,
  ) {
    const cap = Math.min(maxRows, 64 * 1024);
    this.slots = new Int32Array(cap);
    this.ts = new Float64Array(cap);
    this.vals = new Float64Array(cap);
  }

  get full(): boolean {
    return this.n >= this.maxRows || this.seriesCount >= this.maxSeries;
  }

  /** Bytes held by the column arrays and scratch (capacity, not just the rows in use). */
  get sizeBytes(): number {
    return (
      this.slots.length * 20 +
      this.sortedTs.length * 16 +
      (this.starts.length + this.fill.length + this.orderSlots.length + this.present.length + this.slotPos.length) * 4 +
      (this.slotTsid.length + this.drainedTsid.length) * 4 +
      (this.series.length + this.order.length + this.added.length) * 4
    );
  }

  /** Buffers a row of series `ref` (tests; the write path uses addRow). */
  add(ref: number, t: number, v: number): void {
    this.addRow(ref, { timestamp: t, value: v });
  }

  /**
   * Buffers the row (timestamp, value) of series `ref`. The doubles are read here from the
   * caller's cursor: passed as arguments to a call that is not inlined, two of them were boxed
   * per row.
   */
  addRow(ref: number, row: { readonly timestamp: number; readonly value: number }): void {
    const tb = this.table;
    if (tb.gen[ref] !== this.gen) this.addSeries(ref);
    if (this.n === this.slots.length) this.grow();
    this.slots[this.n] = tb.slot[ref]!;
    this.ts[this.n] = row.timestamp;
    this.vals[this.n] = row.value;
    this.n++;
  }

  private addSeries(ref: number): void {
    const tb = this.table;
    const slot = this.seriesCount++;
    tb.gen[ref] = this.gen;
    tb.slot[ref] = slot;
    if (slot === this.series.length) {
      const r = new Int32Array(2 * slot);
      r.set(this.series);
      this.series = r;
    }
    this.series[slot] = ref;
    if (slot === this.slotPos.length) {
      const p = new Int32Array(2 * slot);
      p.set(this.slotPos);
      this.slotPos = p;
      const w = new Uint32Array(2 * slot * TSID_WORDS);
      w.set(this.slotTsid);
      this.slotTsid = w;
    }
    this.slotPos[slot] = tb.ord[ref] === this.stamp ? tb.ordPos[ref]! : -1;
    const from = tb.tsid;
    const to = this.slotTsid;
    for (let w = 0; w < TSID_WORDS; w++) to[slot * TSID_WORDS + w] = from[ref * TSID_WORDS + w]!;
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
   * drain picks them out of it by position (no comparison, no table column read); otherwise
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
    if (this.drainedTsid.length < k * TSID_WORDS) this.drainedTsid = new Uint32Array(Math.max(k, 2 * (this.drainedTsid.length / TSID_WORDS)) * TSID_WORDS);
    const starts = this.starts;
    const fill = this.fill;
    const st = this.sortedTs;
    const sv = this.sortedVals;
    const slots = this.slots;
    const ts = this.ts;
    const vals = this.vals;
    this.orderSlotsByTSID(k);
    const order = this.orderSlots;
    const from = this.slotTsid;
    const to = this.drainedTsid;
    if (n === k) {
      // One row per series (high cardinality: every series of a drain got one sample): slots
      // were handed out row by row, so slot s holds row s — gather the rows in TSID order
      // instead of counting and scattering them.
      for (let o = 0; o < k; o++) {
        const s = order[o]!;
        starts[o] = o;
        st[o] = ts[s]!;
        sv[o] = vals[s]!;
        for (let w = 0; w < TSID_WORDS; w++) to[o * TSID_WORDS + w] = from[s * TSID_WORDS + w]!;
      }
      starts[k] = k;
      this.reset();
      return { count: k, slots: order, starts, tsids: to, ts: st, vals: sv };
    }
    // Rows per slot, then each slot's first position in TSID order (fill), then the rows.
    fill.fill(0, 0, k);
    for (let i = 0; i < n; i++) fill[slots[i]!]!++;
    let at = 0;
    for (let o = 0; o < k; o++) {
      const s = order[o]!;
      starts[o] = at;
      at += fill[s]!;
      fill[s] = starts[o]!;
      for (let w = 0; w < TSID_WORDS; w++) to[o * TSID_WORDS + w] = from[s * TSID_WORDS + w]!;
    }
    starts[k] = at;
    for (let i = 0; i < n; i++) {
      const p = fill[slots[i]!]!++;
      st[p] = ts[i]!;
      sv[p] = vals[i]!;
    }
    this.reset();
    return { count: k, slots: order, starts, tsids: to, ts: st, vals: sv };
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
    // New series: sort them and merge them into the kept order, which holds every series the
    // buffer has seen and the cache still holds (not only this drain's), so that the next
    // drains of known series take the fast path above.
    const tb = this.table;
    if (this.added.length < fresh) this.added = new Int32Array(Math.max(fresh, 2 * this.added.length));
    const added = this.added;
    let na = 0;
    for (let s = 0; s < k; s++) if (pos[s]! < 0) added[na++] = this.series[s]!;
    added.subarray(0, na).sort((a, b) => tb.compare(a, b));
    if (tb.releases === this.releasesAtOrder) this.insertFresh(na, out);
    else this.rebuildOrder(na, out);
    this.releasesAtOrder = tb.releases;
  }

  /**
   * Merges the sorted added[0..na) into the kept order when no ref left the cache since it was
   * built (no kept entry can be stale): each new series' place is found by galloping from the
   * previous one (a few TSID compares, not one per kept entry), the kept runs in between are
   * copied whole, and only the kept entries that moved get their position rewritten. Writes
   * the drain's slots in TSID order to out.
   */
  private insertFresh(na: number, out: Int32Array): void {
    const tb = this.table;
    const prev = this.order;
    const r = prev.length;
    const present = this.present;
    const added = this.added;
    const ordPos = tb.ordPos;
    const stamp = this.stamp;
    const order = new Int32Array(r + na);
    let i = 0;
    let o = 0;
    let q = 0;
    for (let j = 0; j <= na; j++) {
      // prev[i, end) go before added[j]: the first kept entry greater than it (ties: kept first).
      let end = r;
      if (j < na) {
        const a = added[j]!;
        let lo = i;
        let hi = i;
        let step = 1;
        while (hi < r && tb.compare(prev[hi]!, a) <= 0) {
          lo = hi + 1;
          hi = lo + step;
          step *= 2;
        }
        if (hi > r) hi = r;
        while (lo < hi) {
          const m = (lo + hi) >>> 1;
          if (tb.compare(prev[m]!, a) <= 0) lo = m + 1;
          else hi = m;
        }
        end = lo;
      }
      if (end > i) {
        order.set(prev.subarray(i, end), o);
        for (let p = i; p < end; p++) {
          const s = present[p]!;
          if (s >= 0) out[q++] = s;
        }
        const shift = o - i;
        if (shift !== 0) for (let p = i; p < end; p++) ordPos[prev[p]!] = p + shift;
        o += end - i;
        i = end;
      }
      if (j < na) {
        const a = added[j]!;
        order[o] = a;
        tb.ord[a] = stamp;
        ordPos[a] = o;
        out[q++] = tb.slot[a]!;
        o++;
      }
    }
    this.order = order;
  }

  /** Merges added[0..na) into the kept order dropping stale entries, under a new stamp (see insertFresh). */
  private rebuildOrder(na: number, out: Int32Array): void {
    const tb = this.table;
    const prev = this.order;
    const r = prev.length;
    const present = this.present;
    const added = this.added;
    const stamp = this.stamp;
    const order = new Int32Array(r + na);
    let i = 0;
    let j = 0;
    let o = 0;
    for (;;) {
      // Skip kept entries whose ref left the cache (released, or reused for another series),
      // unless this drain holds it (released after its rows arrived).
      while (i < r && present[i]! < 0 && (tb.owner[prev[i]!] === -1 || tb.ord[prev[i]!] !== stamp || tb.ordPos[prev[i]!] !== i)) i++;
      if (i < r && j < na) order[o++] = tb.compare(prev[i]!, added[j]!) <= 0 ? prev[i++]! : added[j++]!;
      else if (i < r) order[o++] = prev[i++]!;
      else if (j < na) order[o++] = added[j++]!;
      else break;
    }
    const next = ++this.stamp;
    const gen = this.gen;
    let q = 0;
    for (let p = 0; p < o; p++) {
      const ref = order[p]!;
      tb.ord[ref] = next;
      tb.ordPos[ref] = p;
      if (tb.gen[ref] === gen) out[q++] = tb.slot[ref]!;
    }
    this.order = o === order.length ? order : order.slice(0, o);
  }

  reset(): void {
    this.n = 0;
    this.seriesCount = 0;
    this.gen++;
    // No slot holds a ref any more: the refs the series cache released can be reused.
    this.table.recycle();
    // Capacity is kept (bounded by maxRows): regrowing every second would churn the GC.
  }
}
