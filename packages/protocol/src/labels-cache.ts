import { type CacheStats, fmix32 } from "@strata/core";

/**
 * One generation: entries in a list of fixed-size arena chunks and an open-addressing table over
 * them. The arena grows a chunk at a time, never by copying, so growing it never holds two copies
 * of what it has (a doubling arena of 128 MiB would need 384 MiB for a moment); dropping the
 * generation releases every chunk. An entry never straddles two chunks: one that does not fit in
 * the rest of the last chunk starts a new one. An entry's offset is (chunk << shift) | position.
 */
class Generation {
  readonly chunks: Uint8Array[] = [];
  readonly views: DataView[] = [];
  /** Next free position in the last chunk (chunkBytes when there is none). */
  top: number;
  /** Arena bytes taken by entries (the unused tails of chunks not counted). */
  used = 0;
  /** Two words per slot: hash, entry offset + 1 (0 = empty). */
  table = new Int32Array(2 * MIN_SLOTS);
  mask = MIN_SLOTS - 1;
  count = 0;

  constructor(readonly shift: number) {
    this.top = 2 ** shift;
  }

  get bytes(): number {
    return this.chunks.length * 2 ** this.shift + this.table.byteLength;
  }

  /** Room for an entry of `need` bytes (≤ one chunk) within `budget` bytes (chunks + table)? */
  fits(need: number, budget: number): boolean {
    const chunk = 2 ** this.shift;
    const slots = this.mask + 1;
    const table = (this.count + 1) * 2 > slots ? this.table.byteLength * 2 : this.table.byteLength;
    const chunks = this.top + need > chunk ? this.chunks.length + 1 : this.chunks.length;
    // Offsets (+ 1) are int32 table words.
    return chunks * chunk + table <= budget && chunks < 2 ** 31 / chunk;
  }

  /** Takes `need` bytes (≤ one chunk) of arena, in a new chunk when the last one is too full, and returns their offset. */
  alloc(need: number): number {
    const chunk = 2 ** this.shift;
    if (this.top + need > chunk) {
      const a = new Uint8Array(chunk);
      this.chunks.push(a);
      this.views.push(new DataView(a.buffer));
      this.top = 0;
    }
    const off = ((this.chunks.length - 1) << this.shift) | this.top;
    this.top += need;
    this.used += need;
    return off;
  }

  /** Indexes the entry at `off` under hash h (doubling the table at load 1/2). */
  index(h: number, off: number): void {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const t = this.table;
    let slot = h & this.mask;
    while (t[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask;
    t[2 * slot] = h;
    t[2 * slot + 1] = off + 1;
    this.count++;
  }

  private grow(): void {
    const old = this.table;
    const slots = (this.mask + 1) * 2;
    const t = new Int32Array(2 * slots);
    const mask = slots - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i + 1] === 0) continue;
      let slot = old[i]! & mask;
      while (t[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
      t[2 * slot] = old[i]!;
      t[2 * slot + 1] = old[i + 1]!;
    }
    this.table = t;
    this.mask = mask;
  }
}

/**
 * Canonical metric names of label sets seen before, keyed by the raw protobuf bytes of the
 * labels as they arrived (plus the tenant). A sender encodes the labels of a series the same
 * way in every request, so after the first request a series costs one hash and one byte
 * comparison instead of label parsing, UTF-8 checks, sorting, validation and re-encoding.
 *
 * Everything lives in typed arrays: a generation's byte arena (fixed-size chunks, see
 * Generation) holds each entry's key (raw label bytes) followed by its canonical name; an
 * open-addressing table of (hash, arena offset) indexes them. When the raw bytes are exactly what the canonical name spells in protobuf (the
 * usual case: a sender's labels sorted, none empty, none relabeled, short), the entry keeps the
 * name only and a lookup compares the raw bytes against the protobuf form read off the name:
 * each name is then held once, not twice (~45% of the bytes per series at a million series). Two generations, like @strata/core TwoGenCache: entries go to the current one;
 * when it has used half of `maxBytes` it becomes the previous one and the old previous one is
 * dropped. A hit in the previous generation is copied into the current one, so a working set
 * that fits in half the cap survives every rotation, and one that does not fit loses only its
 * coldest entries: the cache degrades gradually, it is never emptied at once.
 *
 * Only valid label sets are ever added, and a decoder's limits never change, so a hit needs no
 * validation.
 */
export class RawLabelsCache implements CacheStats {
  private cur: Generation;
  private old: Generation;
  /** Bytes (chunks + table) one generation may use. */
  private readonly genBudget: number;
  /** log2 of the arena chunk size. */
  private readonly shift: number;
  private readonly posMask: number;
  private lastHash = 0;
  /** Offset (in `cur`) of the entry found or added last (-1: none), and its chunk and position. */
  private prev = -1;
  private prevChunk: Uint8Array = EMPTY;
  private prevPos = 0;
  private lastBuf: Uint8Array | undefined;
  private lastView: DataView = EMPTY_VIEW;
  hits = 0;
  /** Hits found as the successor of the previous entry, without hashing. */
  predicted = 0;
  misses = 0;
  rotations = 0;
  /** The chunk holding the name found by the last successful `find`, its offset and length there, and its series hash. */
  private nameChunk: Uint8Array = EMPTY;
  nameOff = 0;
  nameLen = 0;
  hashLo = 0;
  hashHi = 0;

  /**
   * `maxBytes` bounds the arenas and tables of both generations together. `chunkBytes` (a power
   * of two, default 4 MiB, at most a quarter of a generation) is the arena's unit of growth; a
   * label set whose entry does not fit in one chunk is not cached.
   */
  constructor(
    readonly maxBytes: number,
    opts: { readonly chunkBytes?: number } = {},
  ) {
    this.genBudget = Math.max(1 << 16, Math.floor(maxBytes / 2));
    const chunk = Math.min(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES, this.genBudget / 4);
    this.shift = Math.max(MIN_CHUNK_SHIFT, Math.floor(Math.log2(chunk)));
    this.posMask = 2 ** this.shift - 1;
    this.cur = new Generation(this.shift);
    this.old = new Generation(this.shift);
  }

  /** Times the older generation was dropped (the name VictoriaMetrics' counters use is rotations). */
  get resets(): number {
    return this.rotations;
  }

  /** Bytes held now (arenas and tables of both generations). */
  get bytes(): number {
    return this.cur.bytes + this.old.bytes;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get entries(): number {
    return this.cur.count + this.old.count;
  }

  /** The arena chunk holding the name found by the last successful `find` (at [nameOff, nameOff + nameLen)). */
  get buffer(): Uint8Array {
    return this.nameChunk;
  }

  /**
   * Looks up the label bytes buf[start, end) of a tenant. On a hit sets nameOff/nameLen and
   * returns true. An entry is one run of arena bytes — a 28-byte header (key length, name
   * length, account, project, successor offset + 1, the name's series hash lo and hi; u32 LE)
   * then the key, then the name — so a lookup touches at most one table slot and one place in
   * the arena of a generation.
   */
  find(buf: Uint8Array, start: number, end: number, account: number, project: number): boolean {
    const cur = this.cur;
    // Senders repeat their series in the same order: try the entry that followed the previous
    // one last time before hashing (no hash, no random table access).
    if (this.prev >= 0) {
      const next = u32(this.prevChunk, this.prevPos + 16) - 1;
      if (next >= 0 && this.matches(cur, next, buf, start, end, account, project)) {
        this.setPrev(next);
        this.predicted++;
        this.hits++;
        return true;
      }
    }
    const h = hashRange(buf, start, end, account, project);
    this.lastHash = h;
    const off = this.lookup(cur, h, buf, start, end, account, project);
    if (off >= 0) {
      this.link(off);
      this.hits++;
      return true;
    }
    const old = this.old;
    const o = old.count === 0 ? -1 : this.lookup(old, h, buf, start, end, account, project);
    if (o >= 0) {
      // Promote: copy the entry into the current generation (its name is then read from there).
      const a = old.chunks[o >>> this.shift]!;
      const p = o & this.posMask;
      const nameAt = nameStart(a, p);
      const nameLen = u32(a, p + 4) & NAME_LEN_MASK;
      this.hits++;
      this.add(buf, start, end, account, project, a.subarray(nameAt, nameAt + nameLen), u32(a, p + 20), u32(a, p + 24));
      this.nameChunk = this.prevChunk;
      this.nameOff = nameStart(this.prevChunk, this.prevPos);
      this.nameLen = nameLen;
      return true;
    }
    this.misses++;
    return false;
  }

  /** Offset of the entry of these label bytes of this tenant (hash h) in generation g, or -1. */
  private lookup(g: Generation, h: number, buf: Uint8Array, start: number, end: number, account: number, project: number): number {
    const t = g.table;
    for (let slot = h & g.mask; ; slot = (slot + 1) & g.mask) {
      const off = t[2 * slot + 1]! - 1;
      if (off < 0) return -1;
      if (t[2 * slot] === h && this.matches(g, off, buf, start, end, account, project)) return off;
    }
  }

  /** Entry at `off` of generation g holds these label bytes of this tenant: sets nameChunk/nameOff/nameLen. */
  private matches(g: Generation, off: number, buf: Uint8Array, start: number, end: number, account: number, project: number): boolean {
    const c = off >>> this.shift;
    const a = g.chunks[c]!;
    const p = off & this.posMask;
    const len = end - start;
    if (u32(a, p) !== len || u32(a, p + 8) !== account || u32(a, p + 12) !== project) return false;
    const k = p + HEADER;
    const nl = u32(a, p + 4);
    if ((nl & COMPACT) !== 0) {
      if (!spellsName(buf, start, end, a, k + 8, k + (nl & NAME_LEN_MASK))) return false;
      this.nameOff = k;
      this.nameLen = nl & NAME_LEN_MASK;
    } else {
      // 4 bytes per step through DataViews (unaligned reads), then the tail.
      const ad = g.views[c]!;
      const bd = this.bufView(buf);
      let i = 0;
      for (; i + 4 <= len; i += 4) if (ad.getInt32(k + i) !== bd.getInt32(start + i)) return false;
      for (; i < len; i++) if (a[k + i] !== buf[start + i]) return false;
      this.nameOff = k + len;
      this.nameLen = nl;
    }
    this.nameChunk = a;
    this.hashLo = u32(a, p + 20);
    this.hashHi = u32(a, p + 24);
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

  /** Records that entry `off` (in `cur`) followed the previous one, and makes it the previous one. */
  private link(off: number): void {
    if (this.prev >= 0) putU32(this.prevChunk, this.prevPos + 16, off + 1);
    this.setPrev(off);
  }

  private setPrev(off: number): void {
    this.prev = off;
    this.prevChunk = this.cur.chunks[off >>> this.shift]!;
    this.prevPos = off & this.posMask;
  }

  /**
   * Adds the canonical name of label bytes buf[start, end) of a tenant, with the name's series
   * hash (@strata/core seriesHash), right after its `find` missed.
   */
  add(buf: Uint8Array, start: number, end: number, account: number, project: number, name: Uint8Array, hashLo: number, hashHi: number): void {
    const len = end - start;
    const compact = spellsName(buf, start, end, name, 8, name.length);
    const need = HEADER + (compact ? 0 : len) + name.length;
    if (need > this.posMask + 1) return; // a giant label set is not worth caching
    if (!this.cur.fits(need, this.genBudget)) this.rotate();
    const g = this.cur;
    const off = g.alloc(need);
    const a = g.chunks[off >>> this.shift]!;
    const p = off & this.posMask;
    putU32(a, p, len);
    putU32(a, p + 4, compact ? (name.length | COMPACT) >>> 0 : name.length);
    putU32(a, p + 8, account);
    putU32(a, p + 12, project);
    putU32(a, p + 16, 0);
    putU32(a, p + 20, hashLo);
    putU32(a, p + 24, hashHi);
    if (compact) a.set(name, p + HEADER);
    else {
      a.set(buf.subarray(start, end), p + HEADER);
      a.set(name, p + HEADER + len);
    }
    this.link(off);
    g.index(this.lastHash, off);
  }

  /** The current generation becomes the previous one; the old previous one is dropped, chunks and all. */
  private rotate(): void {
    // Fresh chunks: views of names handed out before (a batch writer compares the next name
    // with the previous one) keep their bytes.
    this.old = this.cur;
    this.cur = new Generation(this.shift);
    this.forgetPrev();
    this.rotations++;
  }

  private forgetPrev(): void {
    this.prev = -1;
    this.prevChunk = EMPTY;
    this.prevPos = 0;
  }

  clear(): void {
    this.cur = new Generation(this.shift);
    this.old = new Generation(this.shift);
    this.forgetPrev();
  }
}

const DEFAULT_CHUNK_BYTES = 4 << 20;
/** The smallest chunk: 4 KiB. */
const MIN_CHUNK_SHIFT = 12;
const EMPTY = new Uint8Array(0);
const MIN_SLOTS = 1024;
const HEADER = 28;
/** Flag in an entry's name-length word: the entry holds no key, the name spells it (spellsName). */
const COMPACT = 0x8000_0000;
const NAME_LEN_MASK = 0x7fff_ffff;

/** Position of the name of the entry at position `off` of its chunk `a`. */
function nameStart(a: Uint8Array, off: number): number {
  return (u32(a, off + 4) & COMPACT) !== 0 ? off + HEADER : off + HEADER + u32(a, off);
}

/**
 * Whether the raw label records buf[start, end) are exactly the protobuf form of the labels of
 * the canonical name n[from, to) (its labels after the tenant; docs/format/metric-name.md): per
 * label `0a <4 + ln + lv> 0a <ln> name 12 <lv> value`, every length one byte.
 */
function spellsName(buf: Uint8Array, start: number, end: number, n: Uint8Array, from: number, to: number): boolean {
  let i = start;
  let j = from;
  while (j < to) {
    const ln = n[j]!;
    if (ln >= 0x80 || j + 1 + ln >= to) return false;
    const lv = n[j + 1 + ln]!;
    const rec = 4 + ln + lv;
    if (lv >= 0x80 || rec >= 0x80 || j + 2 + ln + lv > to || i + 2 + rec > end) return false;
    if (buf[i] !== 0x0a || buf[i + 1] !== rec || buf[i + 2] !== 0x0a || buf[i + 3] !== ln) return false;
    i += 4;
    j++;
    for (let e = j + ln; j < e; ) if (buf[i++] !== n[j++]) return false;
    if (buf[i] !== 0x12 || buf[i + 1] !== lv) return false;
    i += 2;
    j++;
    for (let e = j + lv; j < e; ) if (buf[i++] !== n[j++]) return false;
  }
  return i === end;
}
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
