import { fmix32 } from "@strata/core";

/**
 * Canonical metric names of label sets seen before, keyed by the raw protobuf bytes of the
 * labels as they arrived (plus the tenant). A sender encodes the labels of a series the same
 * way in every request, so after the first request a series costs one hash and one byte
 * comparison instead of label parsing, UTF-8 checks, sorting, validation and re-encoding.
 *
 * Everything lives in typed arrays: one byte arena holds each entry's key (raw label bytes)
 * followed by its canonical name; an open-addressing table of (hash, arena offset) indexes them. When
 * the arena or the table is full the cache is cleared as a whole (a generation reset, as
 * VictoriaMetrics does with its caches); the next requests fill it again.
 *
 * Only valid label sets are ever added, and a decoder's limits never change, so a hit needs no
 * validation.
 */
export class RawLabelsCache {
  private arena: Uint8Array;
  private arenaView: DataView;
  private arenaPos = 0;
  /** Open addressing, two words per slot: hash, entry offset in the arena + 1 (0 = empty). */
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private readonly maxEntries: number;
  private readonly arenaCap: number;
  private lastHash = 0;
  /** Arena offset of the entry found or added last (-1: none). */
  private prev = -1;
  private lastBuf: Uint8Array | undefined;
  private lastView: DataView = EMPTY_VIEW;
  hits = 0;
  /** Hits found as the successor of the previous entry, without hashing. */
  predicted = 0;
  misses = 0;
  resets = 0;
  /** Arena offset and length of the name found by the last successful `find`, and its series hash. */
  nameOff = 0;
  nameLen = 0;
  hashLo = 0;
  hashHi = 0;

  /** `maxBytes` bounds the arena and the index together. */
  constructor(maxBytes: number) {
    maxBytes = Math.max(1 << 16, maxBytes);
    // ~200 arena bytes per typical entry; the table keeps a load factor ≤ 0.5.
    this.maxEntries = Math.max(256, 2 ** Math.floor(Math.log2(maxBytes / 256)));
    const slots = this.maxEntries * 2;
    this.table = new Int32Array(slots * 2);
    this.mask = slots - 1;
    this.arenaCap = Math.max(1 << 15, maxBytes - this.table.byteLength);
    this.arena = new Uint8Array(Math.min(this.arenaCap, 1 << 20));
    this.arenaView = new DataView(this.arena.buffer);
  }

  /** Bytes held now (arena and index). */
  get bytes(): number {
    return this.arena.length + this.table.byteLength;
  }

  get entries(): number {
    return this.count;
  }

  /** The arena (names found by `find` are at [nameOff, nameOff + nameLen)). */
  get buffer(): Uint8Array {
    return this.arena;
  }

  /**
   * Looks up the label bytes buf[start, end) of a tenant. On a hit sets nameOff/nameLen and
   * returns true. An entry is one run of arena bytes — a 28-byte header (key length, name
   * length, account, project, successor offset + 1, the name's series hash lo and hi; u32 LE)
   * then the key, then the name — so a
   * lookup touches at most one table slot and one place in the arena.
   */
  find(buf: Uint8Array, start: number, end: number, account: number, project: number): boolean {
    const a = this.arena;
    // Senders repeat their series in the same order: try the entry that followed the previous
    // one last time before hashing (no hash, no random table access).
    if (this.prev >= 0) {
      const next = u32(a, this.prev + 16) - 1;
      if (next >= 0 && this.matches(next, buf, start, end, account, project)) {
        this.prev = next;
        this.predicted++;
        this.hits++;
        return true;
      }
    }
    const h = hashRange(buf, start, end, account, project);
    this.lastHash = h;
    const table = this.table;
    let slot = h & this.mask;
    for (;;) {
      const off = table[2 * slot + 1]! - 1;
      if (off < 0) break;
      if (table[2 * slot] === h && this.matches(off, buf, start, end, account, project)) {
        this.link(off);
        this.hits++;
        return true;
      }
      slot = (slot + 1) & this.mask;
    }
    this.misses++;
    return false;
  }

  /** Entry at `off` holds these label bytes of this tenant: sets nameOff/nameLen. */
  private matches(off: number, buf: Uint8Array, start: number, end: number, account: number, project: number): boolean {
    const a = this.arena;
    const len = end - start;
    if (u32(a, off) !== len || u32(a, off + 8) !== account || u32(a, off + 12) !== project) return false;
    const k = off + HEADER;
    // 4 bytes per step through DataViews (unaligned reads), then the tail.
    const ad = this.arenaView;
    const bd = this.bufView(buf);
    let i = 0;
    for (; i + 4 <= len; i += 4) if (ad.getInt32(k + i) !== bd.getInt32(start + i)) return false;
    for (; i < len; i++) if (a[k + i] !== buf[start + i]) return false;
    this.nameOff = k + len;
    this.nameLen = u32(a, off + 4);
    this.hashLo = u32(a, off + 20);
    this.hashHi = u32(a, off + 24);
    return true;
  }

  /** A DataView over buf, kept for the buffer seen last (one body is looked up many times). */
  private bufView(buf: Uint8Array): DataView {
    if (buf !== this.lastBuf) {
      this.lastBuf = buf;
      this.lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    return this.lastView;
  }

  /** Forgets the request body seen last (so the cache does not keep it alive). */
  release(): void {
    this.lastBuf = undefined;
    this.lastView = EMPTY_VIEW;
  }

  /** Records that entry `off` followed the previous one, and makes it the previous one. */
  private link(off: number): void {
    if (this.prev >= 0) putU32(this.arena, this.prev + 16, off + 1);
    this.prev = off;
  }

  /**
   * Adds the canonical name of label bytes buf[start, end) of a tenant, with the name's series
   * hash (@strata/core seriesHash), right after its `find` missed.
   */
  add(buf: Uint8Array, start: number, end: number, account: number, project: number, name: Uint8Array, hashLo: number, hashHi: number): void {
    const len = end - start;
    const need = HEADER + len + name.length;
    if (need > this.arenaCap / 4) return; // a giant label set is not worth caching
    if (this.count >= this.maxEntries || this.arenaPos + need > this.arenaCap) {
      this.clear();
      this.resets++;
    }
    if (this.arenaPos + need > this.arena.length) {
      let cap = this.arena.length * 2;
      while (cap < this.arenaPos + need) cap *= 2;
      const next = new Uint8Array(Math.min(cap, this.arenaCap));
      next.set(this.arena.subarray(0, this.arenaPos));
      this.arena = next;
      this.arenaView = new DataView(next.buffer);
    }
    const a = this.arena;
    const off = this.arenaPos;
    putU32(a, off, len);
    putU32(a, off + 4, name.length);
    putU32(a, off + 8, account);
    putU32(a, off + 12, project);
    putU32(a, off + 16, 0);
    putU32(a, off + 20, hashLo);
    putU32(a, off + 24, hashHi);
    a.set(buf.subarray(start, end), off + HEADER);
    a.set(name, off + HEADER + len);
    this.arenaPos += need;
    this.count++;
    this.link(off);
    const h = this.lastHash;
    let slot = h & this.mask;
    while (this.table[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask;
    this.table[2 * slot] = h;
    this.table[2 * slot + 1] = off + 1;
  }

  clear(): void {
    this.prev = -1;
    this.table.fill(0);
    this.count = 0;
    this.arenaPos = 0;
    // A fresh arena: views of names handed out before (a batch writer compares the next name
    // with the previous one) must keep their bytes.
    this.arena = new Uint8Array(this.arena.length);
    this.arenaView = new DataView(this.arena.buffer);
  }
}

const HEADER = 28;
const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0));

function u32(a: Uint8Array, off: number): number {
  return (a[off]! | (a[off + 1]! << 8) | (a[off + 2]! << 16) | (a[off + 3]! << 24)) >>> 0;
}

function putU32(a: Uint8Array, off: number, v: number): void {
  a[off] = v & 0xff;
  a[off + 1] = (v >>> 8) & 0xff;
  a[off + 2] = (v >>> 16) & 0xff;
  a[off + 3] = v >>> 24;
}

/** A 32-bit multiplicative hash of buf[start, end) and a tenant, 4 bytes per step. */
function hashRange(buf: Uint8Array, start: number, end: number, account: number, project: number): number {
  let h = Math.imul(account ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(project ^ 0x7f4a7c15, 0xc2b2ae35) ^ (end - start);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    let k = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let s = 0; i < end; i++, s += 8) k |= buf[i]! << s;
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  return fmix32(h) & 0x7fffffff;
}
