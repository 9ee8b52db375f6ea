/**
 * Sets of metricIDs as sorted, duplicate-free Float64Arrays (metricIDs are safe integers):
 * no object per id, merges by linear walks.
 */
export type IdSet = Float64Array;

export const EMPTY_SET: IdSet = new Float64Array(0);

/** Collects ids (in any order) and produces an IdSet. */
export class IdSetBuilder {
  private arr = new Float64Array(64);
  private n = 0;
  private sorted = true;
  private last = -1;

  get size(): number {
    return this.n;
  }

  push(id: number): void {
    if (this.n === this.arr.length) {
      const a = new Float64Array(this.arr.length * 2);
      a.set(this.arr);
      this.arr = a;
    }
    if (id <= this.last) this.sorted = false;
    this.last = id;
    this.arr[this.n++] = id;
  }

  pushSet(s: IdSet): void {
    for (let i = 0; i < s.length; i++) this.push(s[i]!);
  }

  finish(): IdSet {
    let a = this.arr.subarray(0, this.n);
    if (!this.sorted) {
      a.sort();
      let w = 0;
      for (let i = 0; i < a.length; i++) if (w === 0 || a[i] !== a[w - 1]) a[w++] = a[i]!;
      a = a.subarray(0, w);
    }
    return a.slice();
  }
}

export function intersect(a: IdSet, b: IdSet): IdSet {
  if (a.length > b.length) [a, b] = [b, a];
  const out = new Float64Array(a.length);
  let n = 0;
  if (a.length * 16 < b.length) {
    // galloping: binary-search each element of the small set
    let lo = 0;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      let hi = b.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (b[mid]! < x) lo = mid + 1;
        else hi = mid;
      }
      if (lo < b.length && b[lo] === x) out[n++] = x;
    }
    return out.slice(0, n);
  }
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x < y) i++;
    else if (x > y) j++;
    else {
      out[n++] = x;
      i++;
      j++;
    }
  }
  return out.slice(0, n);
}

export function union(a: IdSet, b: IdSet): IdSet {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    if (x < y) {
      out[n++] = x;
      i++;
    } else if (x > y) {
      out[n++] = y;
      j++;
    } else {
      out[n++] = x;
      i++;
      j++;
    }
  }
  while (i < a.length) out[n++] = a[i++]!;
  while (j < b.length) out[n++] = b[j++]!;
  return out.slice(0, n);
}

/** a minus b. */
export function subtract(a: IdSet, b: IdSet): IdSet {
  if (a.length === 0 || b.length === 0) return a;
  const out = new Float64Array(a.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length) {
    const x = a[i]!;
    while (j < b.length && b[j]! < x) j++;
    if (j < b.length && b[j] === x) {
      i++;
      continue;
    }
    out[n++] = x;
    i++;
  }
  return n === a.length ? a : out.slice(0, n);
}

export function hasId(a: IdSet, id: number): boolean {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < a.length && a[lo] === id;
}

/** A growable bitmap of ids (for "has per-day entries" checks on the hot path). */
export class IdBitmap {
  private words = new Uint32Array(1024);

  has(id: number): boolean {
    const w = Math.floor(id / 32);
    return w < this.words.length && (this.words[w]! & (1 << (id & 31))) !== 0;
  }

  add(id: number): void {
    const w = Math.floor(id / 32);
    if (w >= this.words.length) {
      let n = this.words.length * 2;
      while (n <= w) n *= 2;
      const a = new Uint32Array(n);
      a.set(this.words);
      this.words = a;
    }
    this.words[w]! |= 1 << (id & 31);
  }

  delete(id: number): void {
    const w = Math.floor(id / 32);
    if (w < this.words.length) this.words[w]! &= ~(1 << (id & 31));
  }

  /** Removes every id of `other` from this bitmap. */
  andNot(other: IdBitmap): void {
    const a = this.words;
    const b = other.words;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) a[i]! &= ~b[i]!;
  }

  /** Number of ids in the bitmap. */
  count(): number {
    let n = 0;
    const a = this.words;
    for (let i = 0; i < a.length; i++) {
      let x = a[i]!;
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      n += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
    }
    return n;
  }

  /** Calls fn for every id, ascending. */
  forEach(fn: (id: number) => void): void {
    const a = this.words;
    for (let i = 0; i < a.length; i++) {
      let x = a[i]!;
      while (x !== 0) {
        const low = x & -x;
        fn(i * 32 + 31 - Math.clz32(low));
        x ^= low;
      }
    }
  }

  /** The words, little-endian bit order within each (for persisting). */
  get raw(): Uint32Array {
    return this.words;
  }

  static fromWords(words: Uint32Array<ArrayBuffer>): IdBitmap {
    const b = new IdBitmap();
    b.words = words.length > 0 ? words : new Uint32Array(1);
    return b;
  }

  get bytes(): number {
    return this.words.byteLength;
  }
}
