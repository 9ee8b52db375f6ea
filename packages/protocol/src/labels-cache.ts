import { type CacheStats, fmix32, writeRecordsName } from "@strata/core";

/** What RawLabelsCache.findRoute found. */
export const MISS = 0;
export const HIT_NAME = 1;
export const HIT_RECORDS = 2;

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
  /**
   * Label sets whose raw bytes spell their canonical name (see RawLabelsCache), no arena bytes:
   * fingerprint records in insertion order — the 31-bit hash, a second 32-bit hash of the same
   * bytes, the series hash lo and hi; 16 bytes each, in chunks the arena's size — and an
   * open-addressing index over them, one word a slot (record number + 1, 0 = empty; a record
   * holds its hash, so the slot needs no copy of it): 4 bytes a slot at load ≤ ½ instead of 8,
   * 8 MiB less at a million series. The record read on a collision is rare next to the
   * in-order path below, which skips the index.
   * Records in insertion order let a sender that repeats its series in order be answered from
   * the record after the previous one, without a random index access.
   */
  readonly fpChunks: Int32Array[] = [];
  fpIndex = new Int32Array(MIN_SLOTS);
  fpMask = MIN_SLOTS - 1;
  fpCount = 0;

  /** log2 of the fingerprint records per chunk, and that count − 1. */
  private readonly fpShift: number;
  private readonly fpPos: number;

  constructor(readonly shift: number) {
    this.top = 2 ** shift;
    this.fpShift = shift - 4;
    this.fpPos = (1 << this.fpShift) - 1;
  }

  get bytes(): number {
    return this.chunks.length * 2 ** this.shift + this.table.byteLength + this.fpChunks.length * 2 ** this.shift + this.fpIndex.byteLength;
  }

  /** Room for one more fingerprint record within `budget` bytes (chunks + tables)? */
  fitsFingerprint(budget: number): boolean {
    // Without a new chunk or a bigger index, a record takes no bytes (the usual case).
    if ((this.fpCount + 1) * 2 <= this.fpMask + 1 && this.fpCount < this.fpChunks.length << this.fpShift) return true;
    const index = (this.fpCount + 1) * 2 > this.fpMask + 1 ? this.fpIndex.byteLength * 2 : this.fpIndex.byteLength;
    const fpChunks = this.fpCount === this.fpChunks.length << this.fpShift ? this.fpChunks.length + 1 : this.fpChunks.length;
    return (this.chunks.length + fpChunks) * 2 ** this.shift + this.table.byteLength + index <= budget;
  }

  /** Whether fingerprint record r holds (h1, h2). */
  fingerprintIs(r: number, h1: number, h2: number): boolean {
    const c = this.fpChunks[r >>> this.fpShift]!;
    const p = 4 * (r & this.fpPos);
    return c[p] === h1 && c[p + 1] === h2;
  }

  /** Series hash word (0: lo, 1: hi) of fingerprint record r. */
  fingerprintHash(r: number, word: number): number {
    return this.fpChunks[r >>> this.fpShift]![4 * (r & this.fpPos) + 2 + word]! >>> 0;
  }

  /** Record number of fingerprint (h1, h2), or -1. */
  findFingerprint(h1: number, h2: number): number {
    const t = this.fpIndex;
    for (let slot = h1 & this.fpMask; ; slot = (slot + 1) & this.fpMask) {
      const r = t[slot]! - 1;
      if (r < 0) return -1;
      if (this.fingerprintIs(r, h1, h2)) return r;
    }
  }

  /** Appends a fingerprint record with its series hash and indexes it (doubling the index at load 1/2); returns its number. */
  addFingerprint(h1: number, h2: number, hashLo: number, hashHi: number): number {
    const r = this.fpCount;
    if (r === this.fpChunks.length << this.fpShift) this.fpChunks.push(new Int32Array(4 << this.fpShift));
    const c = this.fpChunks[r >>> this.fpShift]!;
    const p = 4 * (r & this.fpPos);
    c[p] = h1;
    c[p + 1] = h2;
    c[p + 2] = hashLo;
    c[p + 3] = hashHi;
    if ((r + 1) * 2 > this.fpMask + 1) this.growFingerprintIndex();
    putRecord(this.fpIndex, this.fpMask, h1, r);
    this.fpCount++;
    return r;
  }

  /** Doubles the fingerprint index, placing each record again by the hash it holds. */
  private growFingerprintIndex(): void {
    const t = new Int32Array(2 * this.fpIndex.length);
    const mask = t.length - 1;
    for (let r = 0; r < this.fpCount; r++) putRecord(t, mask, this.fpChunks[r >>> this.fpShift]![4 * (r & this.fpPos)]!, r);
    this.fpIndex = t;
    this.fpMask = mask;
  }

  /** Room for an entry of `need` bytes (≤ one chunk) within `budget` bytes (chunks + both tables)? */
  fits(need: number, budget: number): boolean {
    const chunk = 2 ** this.shift;
    const slots = this.mask + 1;
    const table = (this.count + 1) * 2 > slots ? this.table.byteLength * 2 : this.table.byteLength;
    const chunks = this.top + need > chunk ? this.chunks.length + 1 : this.chunks.length;
    // Offsets (+ 1) are int32 table words.
    return (chunks + this.fpChunks.length) * chunk + table + this.fpIndex.byteLength <= budget && chunks < 2 ** 31 / chunk;
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
    put(this.table, this.mask, h, off);
    this.count++;
  }

  private grow(): void {
    this.table = doubled(this.table);
    this.mask = this.mask * 2 + 1;
  }

}

/**
 * Canonical metric names of label sets seen before, keyed by the raw protobuf bytes of the
 * labels as they arrived (plus the tenant). A sender encodes the labels of a series the same
 * way in every request, so after the first request a series costs one hash and one byte
 * comparison instead of label parsing, UTF-8 checks, sorting, validation and re-encoding.
 *
 * Everything lives in typed arrays. When the raw bytes are exactly what the canonical name
 * spells in protobuf (the usual case: a sender's labels sorted, none empty, none relabeled,
 * short), the name is the raw bytes with the protobuf tags left out, so the cache keeps no bytes
 * of the series at all: a fingerprint record maps a 63-bit hash of the raw bytes and the tenant
 * to the series hash (16 bytes, plus 4-byte index slots at load ≤ ½: 24–32 bytes a series,
 * against ~150 for a stored name), and on a hit (findRoute's HIT_RECORDS) the name is written
 * from the request's bytes straight into the rows batch of each storage node the series goes to
 * (@strata/core RowsSink.addRecordsName), never built in between. A fingerprint is not the key: two label sets whose fingerprints collide (odds
 * ~n²/2⁶⁴, ~3·10⁻⁸ for a million series) would give the second one the first one's series hash,
 * so its rows would be routed to the first one's storage node and stored there under their own
 * (right) name — nothing is lost or mislabeled, the series sits on another node than the ring
 * says, which select's fan-out reads anyway — and its labels would skip validation (their
 * structure is still checked before the name is written from them). Other label sets keep a full entry: a
 * generation's byte arena (fixed-size chunks, see Generation) holds the key (raw label bytes)
 * followed by the canonical name; an open-addressing table of (hash, arena offset) indexes them.
 * Two generations, like @strata/core TwoGenCache: entries go to the current one; when it has
 * used half of `maxBytes` it becomes the previous one and the old previous one is dropped. A hit in the previous generation is copied into the current one, so a working set
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
  /** The second hash of the bytes looked up last (hashRange's out-parameter). */
  private readonly h2 = new Int32Array(1);
  /** The fingerprint record (in `cur`) found or added last (-1: none). */
  private fpPrev = -1;
  /** Where find() builds a fingerprint hit's name (valid until the next `find`). */
  private scratch = new Uint8Array(256);
  private scratchView = new DataView(this.scratch.buffer);
  /** Offset (in `cur`) of the entry found or added last (-1: none), and its chunk and position. */
  private prev = -1;
  private prevChunk: Uint8Array = EMPTY;
  private prevPos = 0;
  private lastBuf: Uint8Array | undefined;
  private lastView: DataView = EMPTY_VIEW;
  hits = 0;
  /** Hits found as the successor of the previous entry, without hashing. */
  predicted = 0;
  /** Hits in the fingerprint tables (label records that spell their name). */
  fingerprintHits = 0;
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
    return this.cur.count + this.old.count + this.cur.fpCount + this.old.fpCount;
  }

  /**
   * The bytes holding the name found by the last successful `find` (at [nameOff, nameOff +
   * nameLen)): an arena chunk, or the scratch buffer find() built a fingerprint hit's name in, which
   * the next `find` overwrites.
   */
  get buffer(): Uint8Array {
    return this.nameChunk;
  }

  /**
   * Looks up the label bytes buf[start, end) of a tenant. On a hit sets nameOff/nameLen (the
   * name in `buffer`) and the series hash, and returns true. See findRoute, which answers a
   * fingerprint hit without building the name.
   */
  find(buf: Uint8Array, start: number, end: number, account: number, project: number): boolean {
    const r = this.findRoute(buf, start, end, account, project, recordsNameLength(buf, start, end));
    if (r !== HIT_RECORDS) return r === HIT_NAME;
    if (this.scratch.length < 8 + (end - start)) {
      this.scratch = new Uint8Array(Math.max(256, 2 * (end - start)));
      this.scratchView = new DataView(this.scratch.buffer);
    }
    this.nameChunk = this.scratch;
    this.nameOff = 0;
    this.nameLen = writeRecordsName(this.bufView(buf), start, end, account, project, this.scratchView, 0);
    return true;
  }

  /**
   * Looks up the label bytes buf[start, end) of a tenant, setting the series hash on a hit.
   * `spelled` is recordsNameLength of those bytes (the caller's walk over them knows it).
   * Returns HIT_NAME when the name is in `buffer` at [nameOff, nameOff + nameLen), HIT_RECORDS
   * when the label bytes are records that spell the name (@strata/core RowsSink.addRecordsName;
   * nameLen is set, the name is not built), MISS otherwise. An entry is one run of arena bytes —
   * a 28-byte header (key length, name length, account, project, successor offset + 1, the
   * name's series hash lo and hi; u32 LE) then the key, then the name — so a lookup touches at
   * most one table slot and one place in the arena of a generation.
   */
  findRoute(buf: Uint8Array, start: number, end: number, account: number, project: number, spelled: number): number {
    const cur = this.cur;
    // Senders repeat their series in the same order: try the entry that followed the previous
    // one last time before hashing (no hash, no random table access).
    if (this.prev >= 0) {
      const next = u32(this.prevChunk, this.prevPos + 16) - 1;
      if (next >= 0 && this.matches(cur, next, buf, start, end, account, project)) {
        this.setPrev(next);
        this.predicted++;
        this.hits++;
        return HIT_NAME;
      }
    }
    const h = hashRange(this.bufView(buf), start, end, account, project, this.h2);
    const h2 = this.h2[0]!;
    this.lastHash = h;
    if (spelled >= 0 && cur.fpCount > 0) {
      // The record after the previous fingerprint hit first (a sender's usual order), then the index.
      const next = this.fpPrev + 1;
      const r = next > 0 && next < cur.fpCount && cur.fingerprintIs(next, h, h2) ? next : cur.findFingerprint(h, h2);
      if (r >= 0) {
        this.fingerprintHit(cur, r, spelled);
        if (r === next) this.predicted++;
        this.fpPrev = r;
        return HIT_RECORDS;
      }
    }
    const off = this.lookup(cur, h, buf, start, end, account, project);
    if (off >= 0) {
      this.link(off);
      this.hits++;
      return HIT_NAME;
    }
    const old = this.old;
    const r = spelled >= 0 && old.fpCount > 0 ? old.findFingerprint(h, h2) : -1;
    if (r >= 0) {
      this.fingerprintHit(old, r, spelled);
      // Promote: the record into the current generation.
      if (!this.cur.fitsFingerprint(this.genBudget)) this.rotate();
      this.fpPrev = this.cur.addFingerprint(h, h2, this.hashLo, this.hashHi);
      return HIT_RECORDS;
    }
    const o = old.count === 0 ? -1 : this.lookup(old, h, buf, start, end, account, project);
    if (o >= 0) {
      // Promote: copy the entry into the current generation (its name is then read from there).
      const a = old.chunks[o >>> this.shift]!;
      const p = o & this.posMask;
      const nameAt = p + HEADER + u32(a, p);
      const nameLen = u32(a, p + 4);
      this.hits++;
      this.add(buf, start, end, account, project, a.subarray(nameAt, nameAt + nameLen), u32(a, p + 20), u32(a, p + 24));
      this.nameChunk = this.prevChunk;
      this.nameOff = this.prevPos + HEADER + u32(this.prevChunk, this.prevPos);
      this.nameLen = nameLen;
      return HIT_NAME;
    }
    this.misses++;
    return MISS;
  }

  /** A hit on fingerprint record r of generation g for label records that spell a name of `len` bytes. */
  private fingerprintHit(g: Generation, r: number, len: number): void {
    this.forgetPrev();
    this.nameLen = len;
    this.hashLo = g.fingerprintHash(r, 0);
    this.hashHi = g.fingerprintHash(r, 1);
    this.fingerprintHits++;
    this.hits++;
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
    // 4 bytes per step through DataViews (unaligned reads), then the tail.
    const ad = g.views[c]!;
    const bd = this.bufView(buf);
    let i = 0;
    for (; i + 4 <= len; i += 4) if (ad.getInt32(k + i) !== bd.getInt32(start + i)) return false;
    for (; i < len; i++) if (a[k + i] !== buf[start + i]) return false;
    this.nameOff = k + len;
    this.nameLen = u32(a, p + 4);
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
    if (spellsName(buf, start, end, name, 8, name.length)) {
      this.addSpelled(hashLo, hashHi);
      return;
    }
    const need = HEADER + len + name.length;
    if (need > this.posMask + 1) return; // a giant label set is not worth caching
    if (!this.cur.fits(need, this.genBudget)) this.rotate();
    const g = this.cur;
    const off = g.alloc(need);
    const a = g.chunks[off >>> this.shift]!;
    const p = off & this.posMask;
    putU32(a, p, len);
    putU32(a, p + 4, name.length);
    putU32(a, p + 8, account);
    putU32(a, p + 12, project);
    putU32(a, p + 16, 0);
    putU32(a, p + 20, hashLo);
    putU32(a, p + 24, hashHi);
    a.set(buf.subarray(start, end), p + HEADER);
    a.set(name, p + HEADER + len);
    this.link(off);
    g.index(this.lastHash, off);
  }

  /**
   * Adds the label bytes that the last findRoute missed as a fingerprint record, with the
   * series hash of their name, when the caller knows that they spell it (the check `add` makes
   * with spellsName).
   */
  addSpelled(hashLo: number, hashHi: number): void {
    if (!this.cur.fitsFingerprint(this.genBudget)) this.rotate();
    this.forgetPrev();
    this.fpPrev = this.cur.addFingerprint(this.lastHash, this.h2[0]!, hashLo, hashHi);
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
    this.fpPrev = -1;
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

/** Puts (h, v + 1) in the first empty slot from h of an open-addressing table of word pairs. */
function put(t: Int32Array, mask: number, h: number, v: number): void {
  let slot = h & mask;
  while (t[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
  t[2 * slot] = h;
  t[2 * slot + 1] = v + 1;
}

/** Puts r + 1 in the first empty slot from h of an open-addressing table of one word a slot. */
function putRecord(t: Int32Array, mask: number, h: number, r: number): void {
  let slot = h & mask;
  while (t[slot] !== 0) slot = (slot + 1) & mask;
  t[slot] = r + 1;
}

/** An open-addressing table of (hash, value + 1) word pairs (0 = empty) with twice the slots, rehashed. */
function doubled(old: Int32Array): Int32Array<ArrayBuffer> {
  const t = new Int32Array(2 * old.length);
  const mask = old.length - 1;
  for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== 0) put(t, mask, old[i]!, old[i + 1]! - 1);
  return t;
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

/**
 * The length of the canonical name that label records buf[start, end) spell (see spellsName;
 * @strata/core writeRecordsName builds it), or -1 when the bytes are not such records (every
 * length one byte).
 */
function recordsNameLength(buf: Uint8Array, start: number, end: number): number {
  let n = 8 + end - start;
  let i = start;
  while (i < end) {
    const rec = buf[i + 1]!;
    if (buf[i] !== 0x0a || rec >= 0x80 || i + 2 + rec > end || buf[i + 2] !== 0x0a) return -1;
    const ln = buf[i + 3]!;
    const lv = buf[i + 5 + ln];
    if (ln >= 0x80 || 4 + ln > rec || buf[i + 4 + ln] !== 0x12 || lv === undefined || lv >= 0x80 || 4 + ln + lv !== rec) return -1;
    n -= 4;
    i += 2 + rec;
  }
  return n;
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

/**
 * Two 32-bit hashes of the bytes [start, end) of `dv` and a tenant in one pass, 4 bytes per step
 * (little-endian reads), each lane a multiply and a rotate or shift per word (different
 * constants and seeds), finished by murmur3's fmix32: returns the first (31 bits), the second
 * goes to h2[0]. Together they are the 63-bit fingerprint of the fingerprint records.
 */
function hashRange(dv: DataView, start: number, end: number, account: number, project: number, h2: Int32Array): number {
  let h = Math.imul(account ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(project ^ 0x7f4a7c15, 0xc2b2ae35) ^ (end - start);
  let g = Math.imul(account ^ 0x3c6ef372, 0xcc9e2d51) ^ Math.imul(project ^ 0xa54ff53a, 0x1b873593) ^ Math.imul(end - start, 0x27d4eb2f);
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = dv.getInt32(i, true);
    h = Math.imul(h ^ w, 0x9e3779b1);
    h = (h << 13) | (h >>> 19);
    g = Math.imul(g + w, 0x85ebca77);
    g ^= g >>> 16;
  }
  let k = 0;
  for (let s = 0; i < end; i++, s += 8) k |= dv.getUint8(i) << s;
  h2[0] = fmix32(Math.imul(g + k, 0x85ebca77));
  return fmix32(Math.imul(h ^ k, 0x9e3779b1)) & 0x7fffffff;
}
