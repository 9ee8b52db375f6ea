import type { SeriesEntry } from "./rows-buffer.js";

/**
 * metric-name bytes → SeriesEntry, bounded (two generations like VictoriaMetrics'
 * workingsetcache) and allocation-free on a hit: the key is hashed straight from the batch
 * bytes and compared byte by byte, so the hot path creates no string or Buffer per row.
 */
class Generation {
  keys: (Uint8Array | undefined)[];
  vals: (SeriesEntry | undefined)[];
  hashes: Int32Array;
  size = 0;
  bytes = 0;
  constructor(readonly cap: number) {
    // Filled by push: `new Array(n)` for large n gives slow dictionary-mode elements.
    this.keys = [];
    this.vals = [];
    for (let i = 0; i < cap; i++) {
      this.keys.push(undefined);
      this.vals.push(undefined);
    }
    this.hashes = new Int32Array(cap);
  }
  /** Doubles the table (keeps the load factor ≤ 1/2). */
  grown(): Generation {
    const g = new Generation(this.cap * 2);
    for (let i = 0; i < this.cap; i++) {
      const k = this.keys[i];
      if (k === undefined) continue;
      const at = ~g.find(k, this.hashes[i]!);
      g.keys[at] = k;
      g.vals[at] = this.vals[i];
      g.hashes[at] = this.hashes[i]!;
    }
    g.size = this.size;
    g.bytes = this.bytes;
    return g;
  }

  find(key: Uint8Array, h: number): number {
    const mask = this.cap - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = this.keys[i];
      if (k === undefined) return ~i;
      if (this.hashes[i] === h && equal(k, key)) return i;
    }
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  for (let i = n - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

export function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5 ^ b.length;
  const n = b.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    h = Math.imul(h ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)), 0x01000193);
    h ^= h >>> 15;
  }
  for (; i < n; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  return h ^ (h >>> 15);
}

const ENTRY_OVERHEAD = 160;

export class SeriesCache {
  private cur = new Generation(4096);
  private prev = new Generation(16);
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get(key: Uint8Array): SeriesEntry | undefined {
    const h = hashBytes(key);
    const i = this.cur.find(key, h);
    if (i >= 0) {
      this.hits++;
      return this.cur.vals[i];
    }
    const j = this.prev.find(key, h);
    if (j >= 0) {
      this.hits++;
      const v = this.prev.vals[j]!;
      this.insert(this.prev.keys[j]!, h, v);
      return v;
    }
    this.misses++;
    return undefined;
  }

  /** Stores a copy-owned key (the caller must not reuse `key`'s memory). */
  set(key: Uint8Array, v: SeriesEntry): void {
    this.insert(key, hashBytes(key), v);
  }

  private insert(key: Uint8Array, h: number, v: SeriesEntry): void {
    const size = key.length + ENTRY_OVERHEAD;
    if (this.cur.bytes + size > this.maxBytes / 2) {
      this.prev = this.cur;
      this.cur = new Generation(4096);
    } else if ((this.cur.size + 1) * 2 > this.cur.cap) {
      this.cur = this.cur.grown();
    }
    const i = this.cur.find(key, h);
    if (i >= 0) {
      this.cur.vals[i] = v;
      return;
    }
    const at = ~i;
    this.cur.keys[at] = key;
    this.cur.vals[at] = v;
    this.cur.hashes[at] = h;
    this.cur.size++;
    this.cur.bytes += size;
  }

  clear(): void {
    this.cur = new Generation(4096);
    this.prev = new Generation(16);
  }

  get entries(): number {
    return this.cur.size + this.prev.size;
  }

  get sizeBytes(): number {
    return this.cur.bytes + this.prev.bytes + (this.cur.cap + this.prev.cap) * 16;
  }
}
