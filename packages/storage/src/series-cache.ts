import type { CacheStats } from "@strata/core";
import type { SeriesEntry } from "./rows-buffer.js";

/**
 * metric-name bytes → SeriesEntry, bounded (two generations like VictoriaMetrics'
 * workingsetcache) and allocation-free on a hit: the key is hashed straight from the batch
 * bytes and compared four bytes at a time, so the hot path creates no string or Buffer per row.
 *
 * Layout of a generation: keys are records `u32 LE length | u32 LE entry index | key bytes` in
 * one contiguous arena, in insertion order; the open-addressing table is 4 int32 per slot in one
 * typed array (hash, record offset + 1, key length, entry index); entries sit in a dense array
 * by insertion index. A lookup touches one table slot and the key bytes, never a per-key object
 * (per-key Uint8Arrays cost several cache misses per row).
 *
 * Sequential prediction: batches carry series in much the same order every time (one scrape
 * after another), and keys enter the arena in first-seen order. So before hashing, a lookup
 * compares the name with the record that follows the previous hit; when it matches (verified
 * byte for byte, so a wrong guess only costs one comparison) the entry is found by reading
 * the arena sequentially, with no hash and no random access to the table.
 */
class Generation {
  /** Per slot: [hash, record offset + 1 (0 = empty), key length, entry index]. */
  meta: Int32Array;
  /** Entries by insertion index (shared with the grown table). */
  entries: SeriesEntry[];
  arena: Uint8Array;
  arenaDv: DataView;
  arenaLen = 0;
  size = 0;
  /** Accounted bytes (keys + per-entry overhead), compared against the cache cap. */
  bytes = 0;
  constructor(
    readonly cap: number,
    arena?: Uint8Array,
    entries?: SeriesEntry[],
  ) {
    this.meta = new Int32Array(cap * 4);
    this.entries = entries ?? [];
    this.arena = arena ?? new Uint8Array(64 * 1024);
    this.arenaDv = new DataView(this.arena.buffer, this.arena.byteOffset, this.arena.byteLength);
  }

  /** Doubles the table (keeps the load factor ≤ 1/2); arena and entries are moved, not copied. */
  grown(): Generation {
    const g = new Generation(this.cap * 2, this.arena, this.entries);
    g.arenaLen = this.arenaLen;
    const mask = g.cap - 1;
    const src = this.meta;
    const dst = g.meta;
    for (let i = 0; i < this.cap; i++) {
      const m = i << 2;
      if (src[m + 1] === 0) continue;
      let j = src[m]! & mask;
      while (dst[(j << 2) + 1] !== 0) j = (j + 1) & mask;
      const d = j << 2;
      dst[d] = src[m]!;
      dst[d + 1] = src[m + 1]!;
      dst[d + 2] = src[m + 2]!;
      dst[d + 3] = src[m + 3]!;
    }
    g.size = this.size;
    g.bytes = this.bytes;
    return g;
  }

  /** Slot of the key bytes [s, e) of `dv` (≥ 0) or ~(free slot) when absent. */
  find(dv: DataView, s: number, e: number, h: number): number {
    const mask = this.cap - 1;
    const meta = this.meta;
    const n = e - s;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const m = i << 2;
      const off1 = meta[m + 1]!;
      if (off1 === 0) return ~i;
      if (meta[m] === h && meta[m + 2] === n && equalRange(this.arenaDv, off1 + 7, dv, s, e)) return i;
    }
  }

  /** Entry index of the record at `rec` when its key is the bytes [s, e) of `dv`, else -1. */
  matchRecord(rec: number, dv: DataView, s: number, e: number): number {
    if (rec < 0 || rec >= this.arenaLen) return -1;
    const adv = this.arenaDv;
    if (adv.getUint32(rec, true) !== e - s || !equalRange(adv, rec + 8, dv, s, e)) return -1;
    return adv.getUint32(rec + 4, true);
  }

  /** The key bytes stored in slot i (a view into the arena). */
  keyAt(i: number): Uint8Array {
    const m = i << 2;
    const off = this.meta[m + 1]! + 7;
    return this.arena.subarray(off, off + this.meta[m + 2]!);
  }

  /** Stores key (copied into the arena) and v in the free slot ~find(key, h). */
  put(freeSlot: number, key: Uint8Array, h: number, v: SeriesEntry): void {
    const n = key.length;
    const need = this.arenaLen + 8 + n;
    if (need > this.arena.length) {
      let len = Math.max(this.arena.length * 2, 1024);
      while (len < need) len *= 2;
      const a = new Uint8Array(len);
      a.set(this.arena.subarray(0, this.arenaLen));
      this.arena = a;
      this.arenaDv = new DataView(a.buffer);
    }
    const rec = this.arenaLen;
    const idx = this.entries.length;
    this.entries.push(v);
    this.arenaDv.setUint32(rec, n, true);
    this.arenaDv.setUint32(rec + 4, idx, true);
    this.arena.set(key, rec + 8);
    const m = freeSlot << 2;
    this.meta[m] = h;
    this.meta[m + 1] = rec + 1;
    this.meta[m + 2] = n;
    this.meta[m + 3] = idx;
    this.arenaLen = need;
    this.size++;
  }

  /** Bytes actually held: table, entries array and arena capacity. */
  get heldBytes(): number {
    return this.cap * 16 + this.entries.length * 8 + this.arena.length;
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

/** Per-entry overhead beyond the key bytes: table slots and the SeriesEntry (TSID fields inline). */
const ENTRY_OVERHEAD = 160;

export class SeriesCache implements CacheStats {
  private cur = new Generation(4096);
  private prev = new Generation(16, new Uint8Array(0));
  /** Record offset in `cur` predicted to hold the next key looked up (-1: none). */
  private next = -1;
  hits = 0;
  misses = 0;
  /** Hits found by sequential prediction (no hash computed). */
  predicted = 0;
  rotations = 0;

  constructor(readonly maxBytes: number) {}

  get(key: Uint8Array): SeriesEntry | undefined {
    return this.getRange(viewOf(key), 0, key.length);
  }

  /**
   * The entry of the key bytes [s, e) of `dv` (e.g. a metric name inside a rows batch, see
   * RowsScanner): the write path's per-row lookup, which allocates nothing on a hit.
   */
  getRange(dv: DataView, s: number, e: number): SeriesEntry | undefined {
    const cur = this.cur;
    const p = this.next;
    const idx = cur.matchRecord(p, dv, s, e);
    if (idx >= 0) {
      this.next = p + 8 + (e - s);
      this.hits++;
      this.predicted++;
      return cur.entries[idx];
    }
    const h = hashRange(dv, s, e);
    const i = cur.find(dv, s, e, h);
    if (i >= 0) {
      const m = i << 2;
      this.next = cur.meta[m + 1]! + 7 + (e - s);
      this.hits++;
      return cur.entries[cur.meta[m + 3]!];
    }
    const j = this.prev.find(dv, s, e, h);
    if (j >= 0) {
      this.hits++;
      const v = this.prev.entries[this.prev.meta[(j << 2) + 3]!]!;
      this.insert(this.prev.keyAt(j), h, v);
      return v;
    }
    this.misses++;
    return undefined;
  }

  /** Stores `v` under a copy of `key` (the caller may reuse `key`'s memory afterwards). */
  set(key: Uint8Array, v: SeriesEntry): void {
    this.insert(key, hashBytes(key), v);
  }

  private insert(key: Uint8Array, h: number, v: SeriesEntry): void {
    const kv = viewOf(key);
    const size = key.length + ENTRY_OVERHEAD;
    if (this.cur.bytes + size > this.maxBytes / 2) {
      this.prev = this.cur;
      this.cur = new Generation(4096);
      this.rotations++;
    } else if ((this.cur.size + 1) * 2 > this.cur.cap) {
      this.cur = this.cur.grown();
    }
    const i = this.cur.find(kv, 0, key.length, h);
    if (i >= 0) {
      this.cur.entries[this.cur.meta[(i << 2) + 3]!] = v;
      return;
    }
    this.cur.put(~i, key, h, v);
    this.cur.bytes += size;
    // The next key looked up is likely the next one inserted (first batch of new series).
    this.next = this.cur.arenaLen;
  }

  clear(): void {
    this.cur = new Generation(4096);
    this.prev = new Generation(16, new Uint8Array(0));
    this.next = -1;
  }

  get entries(): number {
    return this.cur.size + this.prev.size;
  }

  get sizeBytes(): number {
    return this.cur.bytes + this.prev.bytes + this.cur.heldBytes + this.prev.heldBytes - this.cur.arenaLen - this.prev.arenaLen;
  }
}
