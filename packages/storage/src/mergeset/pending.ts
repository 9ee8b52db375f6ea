import type { Block } from "./block.js";
import { BloomKeys } from "./bloom.js";
import { InMemoryPart } from "./part.js";

/** Most items one PendingItems holds: the sort packs an item's index into 17 bits of its key. */
export const MAX_PENDING_ITEMS = 1 << 17;
const IDX_MASK = MAX_PENDING_ITEMS - 1;
/** Bytes of an item compared per sort round (a 40-bit digit). */
const DIGIT = 5;
/** Which u32 of a u64 sort key holds its high half (platform byte order). */
const HI = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1 ? 1 : 0;
const LO = 1 - HI;
/** Runs shorter than this are ordered by insertion sort with a byte compare. */
const SMALL = 12;

/**
 * Items added to a mergeset table and not yet sorted: their bytes back to back in one buffer,
 * item i is data[start[i], start[i + 1]). Reused across conversions (no object per item).
 */
export class PendingItems {
  private data = new Uint8Array(1 << 16);
  private start = new Uint32Array(1024);
  private bytes = 0;
  count = 0;
  /** Sort scratch: order of item indices, and one u64 key per item (written through a u32 view). */
  private order = new Uint32Array(0);
  private keys = new BigUint64Array(0);
  private kv = new Uint32Array(0);
  private stack: number[] = [];

  /** Bytes the pending items take, with their offsets. */
  get sizeBytes(): number {
    return this.bytes + 4 * this.count;
  }

  reset(): void {
    this.count = 0;
    this.bytes = 0;
  }

  /** Copies b[s, e) in as the next item. */
  add(b: Uint8Array, s: number, e: number): void {
    const n = e - s;
    if (this.bytes + n > this.data.length) {
      const d = new Uint8Array(Math.max(this.data.length * 2, this.bytes + n));
      d.set(this.data.subarray(0, this.bytes));
      this.data = d;
    }
    if (this.count + 2 > this.start.length) {
      const st = new Uint32Array(this.start.length * 2);
      st.set(this.start);
      this.start = st;
    }
    const d = this.data;
    let p = this.bytes;
    if (n < 64) for (let i = s; i < e; i++) d[p++] = b[i]!;
    else {
      d.set(b.subarray(s, e), p);
      p += n;
    }
    this.start[this.count++] = this.bytes;
    this.bytes = p;
    this.start[this.count] = p;
  }

  /**
   * The items in byte order, duplicates dropped, as an in-memory part of blocks of about
   * `blockSize` bytes; empties this buffer.
   */
  toPart(blockSize: number, bloomNs: number | undefined): InMemoryPart {
    const order = this.sorted();
    const n = this.count;
    const st = this.start;
    const src = this.data;
    // Unique items and their total bytes first: the part's blocks share one allocation.
    let total = 0;
    let u = 0;
    for (let i = 0; i < n; i++) {
      const it = order[i]!;
      if (u > 0 && this.equal(order[u - 1]!, it)) continue;
      order[u++] = it;
      total += st[it + 1]! - st[it]!;
    }
    const all = new Uint8Array(total);
    const bk = bloomNs === undefined ? undefined : new BloomKeys(bloomNs);
    const blocks: Block[] = [];
    let pos = 0;
    let i = 0;
    while (i < u) {
      let j = i;
      let bytes = 0;
      while (j < u && bytes < blockSize) {
        const it = order[j++]!;
        bytes += st[it + 1]! - st[it]!;
      }
      const offs = new Uint32Array(j - i + 1);
      const base = pos;
      for (let k = i; k < j; k++) {
        const it = order[k]!;
        const s = st[it]!;
        const e = st[it + 1]!;
        offs[k - i] = pos - base;
        if (e - s < 64) for (let x = s; x < e; x++) all[pos++] = src[x]!;
        else {
          all.set(src.subarray(s, e), pos);
          pos += e - s;
        }
        bk?.addItem(all, pos - (e - s), pos);
      }
      offs[j - i] = pos - base;
      blocks.push({ data: all.subarray(base, pos), offs, n: j - i });
      i = j;
    }
    this.reset();
    return new InMemoryPart(blocks, bk?.build());
  }

  private equal(a: number, b: number): boolean {
    const st = this.start;
    const d = this.data;
    const as = st[a]!;
    const bs = st[b]!;
    const n = st[a + 1]! - as;
    if (st[b + 1]! - bs !== n) return false;
    // from the end: neighbours in order share their beginnings and differ last (metricIDs)
    for (let i = n - 1; i >= 0; i--) if (d[as + i] !== d[bs + i]) return false;
    return true;
  }

  /**
   * Item indices in byte order (equal items adjacent). A most-significant-digit sort: a run of
   * items equal in their first `depth` bytes skips the bytes all of them share, then is ordered
   * by the next 5 bytes with the item's remaining length (capped at 5) as a tiebreak, packed with
   * the item index into one u64 and sorted natively (a BigUint64Array written through a u32
   * view: no BigInt is made); runs still tied go another round.
   * Index items of one batch share long prefixes per kind (`03 | tenant | __name__ …`), which is
   * why the shared bytes are skipped instead of walked digit by digit.
   */
  private sorted(): Uint32Array {
    const n = this.count;
    if (this.order.length < n) {
      this.order = new Uint32Array(Math.max(n, this.order.length * 2));
      this.keys = new BigUint64Array(this.order.length);
      this.kv = new Uint32Array(this.keys.buffer);
    }
    const order = this.order;
    for (let i = 0; i < n; i++) order[i] = i;
    const stack = this.stack;
    stack.length = 0;
    stack.push(0, n, 0);
    while (stack.length > 0) {
      const depth = stack.pop()!;
      const hi = stack.pop()!;
      const lo = stack.pop()!;
      this.sortRun(lo, hi, depth);
    }
    return order;
  }

  /** Orders order[lo, hi), whose items share their first `depth` bytes; pushes tied runs. */
  private sortRun(lo: number, hi: number, depth: number): void {
    const order = this.order;
    const st = this.start;
    const d = this.data;
    // Items that end at `depth` are equal and come first.
    let j = lo;
    for (let i = lo; i < hi; i++) {
      const it = order[i]!;
      if (st[it + 1]! - st[it]! <= depth) {
        order[i] = order[j]!;
        order[j++] = it;
      }
    }
    lo = j;
    if (hi - lo < 2 || this.inOrder(lo, hi, depth)) return;
    if (hi - lo < SMALL) {
      this.insertionSort(lo, hi, depth);
      return;
    }
    // Skip the bytes every item of the run shares.
    const f = order[lo]!;
    const fs = st[f]! + depth;
    let cp = st[f + 1]! - fs;
    for (let i = lo + 1; i < hi && cp > 0; i++) {
      const s = st[order[i]!]! + depth;
      const m = Math.min(cp, st[order[i]! + 1]! - s);
      let k = 0;
      while (k < m && d[s + k] === d[fs + k]) k++;
      cp = k;
    }
    if (cp > 0) {
      this.stack.push(lo, hi, depth + cp);
      return;
    }
    // key: bytes [depth, depth + 5) (zeros past the end) | remaining length capped at 5 | index
    const kv = this.kv;
    for (let i = lo; i < hi; i++) {
      const it = order[i]!;
      const s = st[it]! + depth;
      const rem = st[it + 1]! - s;
      if (rem >= DIGIT) {
        kv[2 * i + HI] = ((d[s]! << 24) | (d[s + 1]! << 16) | (d[s + 2]! << 8) | d[s + 3]!) >>> 0;
        kv[2 * i + LO] = (d[s + 4]! << 20) | (DIGIT << 17) | it;
      } else {
        let k = 0;
        for (let x = 0; x < 4; x++) k = k * 256 + (x < rem ? d[s + x]! : 0);
        kv[2 * i + HI] = k;
        kv[2 * i + LO] = (rem << 17) | it;
      }
    }
    this.keys.subarray(lo, hi).sort();
    let runStart = lo;
    let runHi = kv[2 * lo + HI]!;
    let runLo = kv[2 * lo + LO]! >>> 17;
    order[lo] = kv[2 * lo + LO]! & IDX_MASK;
    for (let i = lo + 1; i <= hi; i++) {
      const kh = i < hi ? kv[2 * i + HI]! : -1;
      const kl = i < hi ? kv[2 * i + LO]! : 0;
      if (i < hi) order[i] = kl & IDX_MASK;
      if (kh !== runHi || kl >>> 17 !== runLo) {
        // a tied run whose items are longer than the digit continues; shorter ones are equal
        if (i - runStart > 1 && (runLo & 7) === DIGIT) this.stack.push(runStart, i, depth + DIGIT);
        runStart = i;
        runHi = kh;
        runLo = kl >>> 17;
      }
    }
  }

  /**
   * True when order[lo, hi) is already in byte order. Ties of a round keep the order items were
   * added in, and a run of one label's items added series by series is often sorted already
   * (metricIDs ascend): then it costs one pass instead of more rounds.
   */
  private inOrder(lo: number, hi: number, depth: number): boolean {
    const order = this.order;
    for (let i = lo + 1; i < hi; i++) if (this.compare(order[i - 1]!, order[i]!, depth) > 0) return false;
    return true;
  }

  private insertionSort(lo: number, hi: number, depth: number): void {
    const order = this.order;
    for (let i = lo + 1; i < hi; i++) {
      const it = order[i]!;
      let j = i - 1;
      while (j >= lo && this.compare(order[j]!, it, depth) > 0) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = it;
    }
  }

  private compare(a: number, b: number, depth: number): number {
    const st = this.start;
    const d = this.data;
    const as = st[a]! + depth;
    const bs = st[b]! + depth;
    const la = st[a + 1]! - as;
    const lb = st[b + 1]! - bs;
    const n = la < lb ? la : lb;
    for (let i = 0; i < n; i++) {
      const x = d[as + i]! - d[bs + i]!;
      if (x !== 0) return x;
    }
    return la - lb;
  }
}
