import type { SeriesRef } from "./remote-write.js";

/**
 * One target's series from earlier scrapes, keyed by the bytes of their series text (the part
 * of an exposition line before the value) — Prometheus' scrape cache: a line whose series bytes
 * equal a known one maps straight to its prepared remote write series, with no label parsing,
 * no relabeling and no string made. Keys live in one byte arena; the table is open addressing
 * over typed arrays, so a steady target allocates nothing per line.
 *
 * Entries are numbered 0..size-1; `seen[id]` is the number of the scrape that last had the
 * series and `live[id]` is 1 once a successful scrape wrote it (it needs a stale marker when it
 * goes). sweep() drops the entries a scrape did not see and renumbers the rest.
 */
export class SeriesCache {
  size = 0;
  seen = new Int32Array(256);
  live = new Uint8Array(256);
  /** Prepared series; null where metric relabeling dropped it (the decision is cached too). */
  refs: (SeriesRef | null)[] = [];
  private keyOff = new Int32Array(256);
  private keyLen = new Int32Array(256);
  private hashes = new Int32Array(256);
  private arena = Buffer.allocUnsafe(16 * 1024);
  private arenaLen = 0;
  private table = new Int32Array(512).fill(-1);

  /** The entry whose key is buf[start, end) with hash `h`, or -1. */
  find(buf: Uint8Array, start: number, end: number, h: number): number {
    const mask = this.table.length - 1;
    const len = end - start;
    const a = this.arena;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const id = this.table[slot]!;
      if (id < 0) return -1;
      if (this.hashes[id] !== h || this.keyLen[id] !== len) continue;
      let i = 0;
      const off = this.keyOff[id]!;
      while (i < len && a[off + i] === buf[start + i]) i++;
      if (i === len) return id;
    }
  }

  /** Adds buf[start, end) (not present) with its series; returns its id. */
  add(buf: Uint8Array, start: number, end: number, h: number, ref: SeriesRef | null, seen: number): number {
    const id = this.size;
    if (id === this.seen.length) this.grow(id * 2);
    if ((id + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    const len = end - start;
    if (this.arenaLen + len > this.arena.length) {
      const next = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaLen + len));
      this.arena.copy(next, 0, 0, this.arenaLen);
      this.arena = next;
    }
    this.arena.set(buf.subarray(start, end), this.arenaLen);
    this.keyOff[id] = this.arenaLen;
    this.keyLen[id] = len;
    this.arenaLen += len;
    this.hashes[id] = h;
    this.seen[id] = seen;
    this.live[id] = 0;
    this.refs[id] = ref;
    this.size++;
    this.insert(id);
    return id;
  }

  /**
   * Keeps the entries seen in scrape `no` (marking them live) and drops the others, calling
   * `gone` for each dropped one that was live. With `keep` false every entry is dropped.
   */
  sweep(no: number, keep: boolean, gone: (ref: SeriesRef) => void): void {
    let n = 0;
    const oldArena = this.arena;
    let arenaLen = 0;
    for (let id = 0; id < this.size; id++) {
      const ref = this.refs[id]!;
      if (keep && this.seen[id] === no) {
        if (n !== id) {
          // Keys move down within the same arena: the target range never overlaps a later key.
          oldArena.copy(oldArena, arenaLen, this.keyOff[id]!, this.keyOff[id]! + this.keyLen[id]!);
          this.keyLen[n] = this.keyLen[id]!;
          this.hashes[n] = this.hashes[id]!;
          this.seen[n] = no;
          this.refs[n] = ref;
        } else if (this.keyOff[id] !== arenaLen) oldArena.copy(oldArena, arenaLen, this.keyOff[id]!, this.keyOff[id]! + this.keyLen[id]!);
        this.keyOff[n] = arenaLen;
        arenaLen += this.keyLen[n]!;
        this.live[n] = 1;
        n++;
        continue;
      }
      if (ref !== null && this.live[id] === 1) gone(ref);
    }
    if (n === this.size) return;
    this.size = n;
    this.arenaLen = arenaLen;
    this.refs.length = n;
    this.rehash(this.table.length);
  }

  /** Every entry that a successful scrape wrote (for stale markers when the target goes). */
  forEachLive(fn: (ref: SeriesRef) => void): void {
    for (let id = 0; id < this.size; id++) {
      const ref = this.refs[id]!;
      if (ref !== null && this.live[id] === 1) fn(ref);
    }
  }

  clear(): void {
    this.size = 0;
    this.arenaLen = 0;
    this.refs = [];
    this.table.fill(-1);
  }

  private insert(id: number): void {
    const mask = this.table.length - 1;
    let slot = this.hashes[id]! & mask;
    while (this.table[slot]! >= 0) slot = (slot + 1) & mask;
    this.table[slot] = id;
  }

  private rehash(slots: number): void {
    this.table = new Int32Array(slots).fill(-1);
    for (let id = 0; id < this.size; id++) this.insert(id);
  }

  private grow(n: number): void {
    const g32 = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    this.seen = g32(this.seen);
    this.keyOff = g32(this.keyOff);
    this.keyLen = g32(this.keyLen);
    this.hashes = g32(this.hashes);
    const l = new Uint8Array(n);
    l.set(this.live);
    this.live = l;
  }
}

/** FNV-1a over buf[start, end) as a signed 32-bit integer. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}
