import type { CacheStats } from "@strata/core";
import { SeriesTable, TSID_WORDS } from "./series-table.js";
import type { TSID } from "./tsid.js";

/**
 * metric-name bytes → series ref (a dense number into SeriesTable's columns), bounded (two generations like VictoriaMetrics'
 * workingsetcache) and allocation-free on a hit: the key is hashed straight from the batch
 * bytes and compared four bytes at a time, so the hot path creates no string or Buffer per row.
 *
 * Layout of a generation: keys are records `u32 LE length | u32 LE series ref | key bytes` in
 * an arena of fixed-size chunks (KeyArena), in insertion order; the open-addressing table is 2 int32 per slot in one
 * typed array (hash, record offset + 1): the key's length and ref are read from its record, which
 * a hit reads anyway to compare the key (a slot of 4 words held both again: 16 more bytes a
 * series at load ½). A lookup touches one table slot and the key bytes, never a per-key object
 * (per-key Uint8Arrays cost several cache misses per row). A key promoted from the previous generation keeps its ref; a rotation releases the refs
 * that only the dropped generation held.
 *
 * Sequential prediction: batches carry series in much the same order every time (one scrape
 * after another), and keys enter the arena in first-seen order. So before hashing, a lookup
 * compares the name with the record that follows the previous hit; when it matches (verified
 * byte for byte, so a wrong guess only costs one comparison) the ref is found by reading
 * the arena sequentially, with no hash and no random access to the table.
 */
class Generation {
  /** Per slot: [hash, record offset + 1 (0 = empty)]. */
  meta: Int32Array;
  size = 0;
  /** Accounted bytes (keys + per-entry overhead), compared against the cache cap. */
  bytes = 0;
  /** Offset of the record the last successful `matchRecord` read. */
  matched = 0;
  constructor(
    /** Generation id: SeriesTable.owner of the refs this generation holds newest. */
    readonly id: number,
    readonly cap: number,
    readonly arena: KeyArena,
  ) {
    this.meta = new Int32Array(cap * 2);
  }

  /** Doubles the table (keeps the load factor ≤ 1/2); the arena is moved, not copied. */
  grown(): Generation {
    const g = new Generation(this.id, this.cap * 2, this.arena);
    const mask = g.cap - 1;
    const src = this.meta;
    const dst = g.meta;
    for (let i = 0; i < this.cap; i++) {
      const m = i << 1;
      if (src[m + 1] === 0) continue;
      let j = src[m]! & mask;
      while (dst[(j << 1) + 1] !== 0) j = (j + 1) & mask;
      const d = j << 1;
      dst[d] = src[m]!;
      dst[d + 1] = src[m + 1]!;
    }
    g.size = this.size;
    g.bytes = this.bytes;
    return g;
  }

  /** Slot of the key bytes [s, e) of `dv` (≥ 0) or ~(free slot) when absent. */
  find(dv: DataView, s: number, e: number, h: number): number {
    const mask = this.cap - 1;
    const meta = this.meta;
    const a = this.arena;
    const n = e - s;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const m = i << 1;
      const off1 = meta[m + 1]!;
      if (off1 === 0) return ~i;
      if (meta[m] === h) {
        const rec = off1 - 1;
        const adv = a.views[rec >>> a.shift]!;
        const p = rec & a.mask;
        if (adv.getUint32(p, true) === n && equalRange(adv, p + 8, dv, s, e)) return i;
      }
    }
  }

  /**
   * Series ref of the record at `rec` (or, when `rec` is the end of its chunk, of the first
   * record of the next chunk) when its key is the bytes [s, e) of `dv`, else -1. Sets `matched`.
   */
  matchRecord(rec: number, dv: DataView, s: number, e: number): number {
    if (rec < 0) return -1;
    const a = this.arena;
    let c = rec >>> a.shift;
    let p = rec & a.mask;
    if (c >= a.chunks.length) return -1;
    if (p >= a.fill[c]!) {
      if (++c >= a.chunks.length) return -1;
      p = 0;
    }
    const adv = a.views[c]!;
    if (adv.getUint32(p, true) !== e - s || !equalRange(adv, p + 8, dv, s, e)) return -1;
    this.matched = (c << a.shift) | p;
    return adv.getUint32(p + 4, true);
  }

  /** Offset of slot i's record. */
  recordAt(i: number): number {
    return this.meta[(i << 1) + 1]! - 1;
  }

  /** The key bytes stored in slot i (a view into the arena). */
  keyAt(i: number): Uint8Array {
    const rec = this.recordAt(i);
    const a = this.arena;
    const p = rec & a.mask;
    const n = a.views[rec >>> a.shift]!.getUint32(p, true);
    return a.chunks[rec >>> a.shift]!.subarray(p + 8, p + 8 + n);
  }

  /** The series ref stored in slot i. */
  refAt(i: number): number {
    const rec = this.recordAt(i);
    const a = this.arena;
    return a.views[rec >>> a.shift]!.getUint32((rec & a.mask) + 4, true);
  }

  /** Points slot i's record at another series ref. */
  setRef(i: number, ref: number): void {
    const rec = this.recordAt(i);
    const a = this.arena;
    a.views[rec >>> a.shift]!.setUint32((rec & a.mask) + 4, ref, true);
  }

  /** Stores key (copied into the arena) and its series ref in the free slot ~find(key, h). */
  put(freeSlot: number, key: Uint8Array, h: number, ref: number): void {
    const n = key.length;
    const a = this.arena;
    const rec = a.alloc(8 + n);
    const c = rec >>> a.shift;
    const p = rec & a.mask;
    const dv = a.views[c]!;
    dv.setUint32(p, n, true);
    dv.setUint32(p + 4, ref, true);
    a.chunks[c]!.set(key, p + 8);
    const m = freeSlot << 1;
    this.meta[m] = h;
    this.meta[m + 1] = rec + 1;
    this.size++;
  }

  /** Every record's key and ref, in insertion order (replaced refs included). */
  *records(): Generator<[Uint8Array, number]> {
    const a = this.arena;
    for (let c = 0; c < a.chunks.length; c++) {
      const dv = a.views[c]!;
      for (let p = 0; p < a.fill[c]!; ) {
        const n = dv.getUint32(p, true);
        yield [a.chunks[c]!.subarray(p + 8, p + 8 + n), dv.getUint32(p + 4, true)];
        p += 8 + n;
      }
    }
  }

  /** Bytes actually held: table and arena chunks. */
  get heldBytes(): number {
    return this.cap * 8 + this.arena.held;
  }
}

/**
 * A generation's records in a list of arena chunks of 2^shift bytes: the arena grows a chunk at
 * a time, never by copying (a doubling arena holds the old and the new copy at once while it
 * grows), and dropping the generation releases every chunk. A record never straddles two
 * chunks: one that does not fit in the rest of the last chunk starts a new one, and one larger
 * than a chunk gets a chunk of its own size. A record's offset is (chunk << shift) | position.
 */
class KeyArena {
  readonly chunks: Uint8Array[] = [];
  readonly views: DataView[] = [];
  /** Bytes used in each chunk. */
  readonly fill: number[] = [];
  readonly mask: number;
  /** Bytes of all chunks. */
  held = 0;

  constructor(readonly shift: number) {
    this.mask = 2 ** shift - 1;
  }

  /** Whether another chunk would take offsets past int32 (record offset + 1 is a table word). */
  get full(): boolean {
    return this.chunks.length + 1 >= 2 ** 31 / (this.mask + 1);
  }

  /** Offset of `need` new bytes (one record). */
  alloc(need: number): number {
    const last = this.chunks.length - 1;
    const size = this.mask + 1;
    if (last >= 0 && this.fill[last]! + need <= size) {
      const p = this.fill[last]!;
      this.fill[last] = p + need;
      return (last << this.shift) | p;
    }
    const chunk = new Uint8Array(Math.max(size, need));
    this.chunks.push(chunk);
    this.views.push(new DataView(chunk.buffer));
    this.fill.push(need);
    this.held += chunk.length;
    return (last + 1) << this.shift;
  }

  /** Offset right after the record of `n` bytes at `rec` (the next chunk's start past the end of its chunk). */
  after(rec: number, n: number): number {
    return (rec & this.mask) + n > this.mask ? ((rec >>> this.shift) + 1) << this.shift : rec + n;
  }

  /** Offset where the next record is likely to go. */
  get end(): number {
    const last = this.chunks.length - 1;
    return last < 0 ? 0 : this.after(last << this.shift, this.fill[last]!);
  }
}

/** bytes [a, a + (e - s)) of `adv` equal bytes [s, e) of `dv` (4 bytes at a time, then the tail). */
function equalRange(adv: DataView, a: number, dv: DataView, s: number, e: number): boolean {
  let j = s;
  const words = e - 3;
  while (j < words) {
    if (adv.getInt32(a, true) !== dv.getInt32(j, true)) return false;
    j += 4;
    a += 4;
  }
  while (j < e) {
    if (adv.getUint8(a) !== dv.getUint8(j)) return false;
    j++;
    a++;
  }
  return true;
}

function viewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Hash of the bytes [s, e) of `dv`: little-endian 32-bit words, then the tail bytes. */
export function hashRange(dv: DataView, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  let i = s;
  for (; i + 4 <= e; i += 4) {
    h = Math.imul(h ^ dv.getInt32(i, true), 0x01000193);
    h ^= h >>> 15;
  }
  for (; i < e; i++) h = Math.imul(h ^ dv.getUint8(i), 0x01000193);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  return h ^ (h >>> 15);
}

export function hashBytes(b: Uint8Array): number {
  return hashRange(viewOf(b), 0, b.length);
}

/**
 * Per-entry overhead beyond the key bytes: the record header, two table slots (load ≤ 1/2) and
 * the entry's SeriesTable columns.
 */
const ENTRY_OVERHEAD = 8 + 16 + (TSID_WORDS + 6) * 4;
const DEFAULT_CHUNK_BYTES = 4 << 20;
/** The smallest chunk: 4 KiB. */
const MIN_CHUNK_SHIFT = 12;

export class SeriesCache implements CacheStats {
  /** The cached series' columns (TSID, day, rows-buffer bookkeeping), by ref. */
  readonly table = new SeriesTable();
  private genIds = 0;
  /** log2 of the arena chunk size. */
  private readonly shift: number;
  private cur: Generation;
  private prev: Generation;
  /** Record offset in `cur` predicted to hold the next key looked up (-1: none). */
  private next = -1;
  hits = 0;
  misses = 0;
  /** Hits found by sequential prediction (no hash computed). */
  predicted = 0;
  rotations = 0;

  /**
   * `chunkBytes` (rounded down to a power of two; default 4 MiB, at most a sixteenth of the
   * cap, at least 4 KiB) is the arenas' unit of growth.
   */
  constructor(
    readonly maxBytes: number,
    opts: { readonly chunkBytes?: number } = {},
  ) {
    const chunk = Math.min(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, maxBytes / 16);
    this.shift = Math.max(MIN_CHUNK_SHIFT, Math.floor(Math.log2(chunk)));
    this.cur = this.generation(4096);
    this.prev = this.generation(16);
  }

  private generation(slots: number): Generation {
    return new Generation(++this.genIds, slots, new KeyArena(this.shift));
  }

  /** The series ref of `key`, or -1. */
  get(key: Uint8Array): number {
    return this.getRange(viewOf(key), 0, key.length);
  }

  /**
   * The series ref of the key bytes [s, e) of `dv` (e.g. a metric name inside a rows batch, see
   * RowsScanner), or -1: the write path's per-row lookup, which allocates nothing.
   */
  getRange(dv: DataView, s: number, e: number): number {
    const cur = this.cur;
    const p = this.next;
    const ref = cur.matchRecord(p, dv, s, e);
    if (ref >= 0) {
      this.next = cur.arena.after(cur.matched, 8 + (e - s));
      this.hits++;
      this.predicted++;
      return ref;
    }
    const h = hashRange(dv, s, e);
    const i = cur.find(dv, s, e, h);
    if (i >= 0) {
      this.next = cur.arena.after(cur.recordAt(i), 8 + (e - s));
      this.hits++;
      return cur.refAt(i);
    }
    const j = this.prev.find(dv, s, e, h);
    if (j >= 0) {
      this.hits++;
      // Promote: the key moves to the current generation with the same ref.
      return this.insert(this.prev.keyAt(j), h, this.prev.refAt(j));
    }
    this.misses++;
    return -1;
  }

  /**
   * Caches `key` (copied: the caller may reuse its memory afterwards) as a new series with this
   * TSID and day, and returns its ref. A ref the key had before is released.
   */
  set(key: Uint8Array, tsid: TSID, day: number): number {
    const h = hashBytes(key);
    const kv = viewOf(key);
    const i = this.cur.find(kv, 0, key.length, h);
    if (i >= 0) {
      const old = this.cur.refAt(i);
      if (this.table.owner[old] === this.cur.id) this.table.release(old);
      const r = this.table.alloc(tsid, day, this.cur.id);
      this.cur.setRef(i, r);
      return r;
    }
    return this.insert(key, h, -1, tsid, day);
  }

  /** Inserts key into `cur` (which has no record of it) with ref, or with a new ref of tsid/day when ref < 0. */
  private insert(key: Uint8Array, h: number, ref: number, tsid?: TSID, day = 0): number {
    const size = key.length + ENTRY_OVERHEAD;
    const t = this.table;
    // A promoted ref must survive the rotation below, which may drop the generation it came from.
    if (ref >= 0) t.owner[ref] = this.cur.id;
    if (this.cur.bytes + size > this.maxBytes / 2 || this.cur.arena.full) this.rotate();
    else if ((this.cur.size + 1) * 2 > this.cur.cap) this.cur = this.cur.grown();
    let r = ref;
    if (r >= 0) t.owner[r] = this.cur.id;
    else r = t.alloc(tsid!, day, this.cur.id);
    const kv = viewOf(key);
    this.cur.put(~this.cur.find(kv, 0, key.length, h), key, h, r);
    this.cur.bytes += size;
    // The next key looked up is likely the next one inserted (first batch of new series).
    this.next = this.cur.arena.end;
    return r;
  }

  /** `cur` becomes `prev`; the refs only the dropped `prev` held are released. */
  private rotate(): void {
    this.releaseHeld(this.prev);
    this.prev = this.cur;
    this.cur = this.generation(4096);
    this.next = -1;
    this.rotations++;
  }

  private releaseHeld(g: Generation): void {
    const t = this.table;
    const a = g.arena;
    for (let c = 0; c < a.chunks.length; c++) {
      const dv = a.views[c]!;
      for (let p = 0; p < a.fill[c]!; p += 8 + dv.getUint32(p, true)) {
        const r = dv.getUint32(p + 4, true);
        if (t.owner[r] === g.id) t.release(r);
      }
    }
  }

  /** Each cached key (a view into the cache: copy it to keep it) with its ref, older entries first. */
  *all(): Generator<[Uint8Array, number]> {
    const t = this.table;
    for (const g of [this.prev, this.cur]) {
      for (const [k, r] of g.records()) {
        if (t.owner[r] === g.id && (g === this.cur || this.cur.find(viewOf(k), 0, k.length, hashBytes(k)) < 0)) yield [k, r];
      }
    }
  }

  /** Makes the refs released so far reusable: call after the rows buffer drained. */
  recycle(): void {
    this.table.recycle();
  }

  clear(): void {
    this.releaseHeld(this.prev);
    this.releaseHeld(this.cur);
    this.cur = this.generation(4096);
    this.prev = this.generation(16);
    this.next = -1;
  }

  get entries(): number {
    return this.cur.size + this.prev.size;
  }

  /** Bytes held: both generations' tables and arenas, and the series columns. */
  get sizeBytes(): number {
    return this.cur.heldBytes + this.prev.heldBytes + this.table.sizeBytes;
  }
}
