import type { TSID } from "./tsid.js";

/** u32 words of a TSID per series: accountID, projectID, metricGroupID, jobInstanceID, metricID hi, lo. */
export const TSID_WORDS = 6;

/**
 * What the write path knows about each cached series, column-wise: a series is a dense number
 * (a "ref") into typed arrays, never a JS object. A million series then cost ~40 bytes each
 * here, outside the JS heap (a SeriesEntry object with a boxed metricID cost ~130 bytes of heap
 * that every full GC marked).
 *
 * Columns per ref: the TSID words, the last day the index was told about, and the rows
 * buffer's bookkeeping (`gen`/`slot`: the buffer generation and slot the series has in it;
 * `ord`/`ordPos`: the stamp of the kept TSID order that holds it and its position there).
 *
 * Lifetime: SeriesCache allocates a ref per cached name and releases it when the name leaves
 * the cache. A released ref may still sit in the rows buffer's current slots (and their TSID
 * order), so it is only reused after the buffer drained: `release` parks it, `recycle` (called
 * after each drain) makes the parked refs allocatable. `alloc` resets the bookkeeping, so a
 * reused ref is a new series to the rows buffer.
 */
export class SeriesTable {
  tsid = new Uint32Array(1024 * TSID_WORDS);
  day = new Int32Array(1024);
  gen = new Int32Array(1024);
  slot = new Int32Array(1024);
  ord = new Int32Array(1024);
  ordPos = new Int32Array(1024);
  /** Id of the newest SeriesCache generation holding the ref (-1: released). */
  owner = new Int32Array(1024);
  /**
   * Refs released so far (a counter that only grows): while it stays the same, no ref the rows
   * buffer's kept TSID order holds can have left the cache or been reused.
   */
  releases = 0;
  /** Refs handed out so far (the high-water mark; live = count - free - parked). */
  private count = 0;
  private free = new Int32Array(64);
  private freeLen = 0;
  private parked = new Int32Array(64);
  private parkedLen = 0;

  /** A ref for a new series (fresh rows-buffer bookkeeping). */
  alloc(t: TSID, day: number, owner: number): number {
    let r: number;
    if (this.freeLen > 0) r = this.free[--this.freeLen]!;
    else {
      r = this.count++;
      if (r === this.day.length) this.grow();
    }
    const w = this.tsid;
    const at = r * TSID_WORDS;
    w[at] = t.accountID;
    w[at + 1] = t.projectID;
    w[at + 2] = t.metricGroupID;
    w[at + 3] = t.jobInstanceID;
    w[at + 4] = Math.floor(t.metricID / 4294967296);
    w[at + 5] = t.metricID >>> 0;
    this.day[r] = day;
    this.gen[r] = 0;
    this.slot[r] = 0;
    this.ord[r] = 0;
    this.ordPos[r] = 0;
    this.owner[r] = owner;
    return r;
  }

  /** Parks ref r until the next recycle (the rows buffer may still hold it). */
  release(r: number): void {
    this.owner[r] = -1;
    this.releases++;
    if (this.parkedLen === this.parked.length) this.parked = grownInt32(this.parked, this.parkedLen * 2);
    this.parked[this.parkedLen++] = r;
  }

  /** Makes the parked refs reusable: call when no rows-buffer slot holds a ref allocated before. */
  recycle(): void {
    if (this.parkedLen === 0) return;
    if (this.freeLen + this.parkedLen > this.free.length) this.free = grownInt32(this.free, 2 * (this.freeLen + this.parkedLen));
    this.free.set(this.parked.subarray(0, this.parkedLen), this.freeLen);
    this.freeLen += this.parkedLen;
    this.parkedLen = 0;
  }

  metricID(r: number): number {
    const at = r * TSID_WORDS;
    return this.tsid[at + 4]! * 4294967296 + this.tsid[at + 5]!;
  }

  tsidOf(r: number): TSID {
    const w = this.tsid;
    const at = r * TSID_WORDS;
    return { accountID: w[at]!, projectID: w[at + 1]!, metricGroupID: w[at + 2]!, jobInstanceID: w[at + 3]!, metricID: this.metricID(r) };
  }

  /** TSID order of refs a and b (the order of the encoded TSID bytes, as compareTSID). */
  compare(a: number, b: number): number {
    const w = this.tsid;
    let i = a * TSID_WORDS;
    let j = b * TSID_WORDS;
    for (let k = 0; k < TSID_WORDS; k++, i++, j++) {
      if (w[i] !== w[j]) return w[i]! < w[j]! ? -1 : 1;
    }
    return 0;
  }

  /** Live refs (allocated and not released). */
  get live(): number {
    return this.count - this.freeLen - this.parkedLen;
  }

  /** Bytes of the columns and free lists (capacity). */
  get sizeBytes(): number {
    return this.day.length * (TSID_WORDS + 6) * 4 + (this.free.length + this.parked.length) * 4;
  }

  private grow(): void {
    const n = this.day.length * 2;
    const t = new Uint32Array(n * TSID_WORDS);
    t.set(this.tsid);
    this.tsid = t;
    this.day = grownInt32(this.day, n);
    this.gen = grownInt32(this.gen, n);
    this.slot = grownInt32(this.slot, n);
    this.ord = grownInt32(this.ord, n);
    this.ordPos = grownInt32(this.ordPos, n);
    this.owner = grownInt32(this.owner, n);
  }
}

function grownInt32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

