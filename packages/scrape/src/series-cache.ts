import type { SeriesRef } from "./remote-write.js";

/**
 * One target's series from earlier scrapes, keyed by the bytes of their series text (the part
 * of an exposition line before the value) — Prometheus' scrape cache: a line whose series bytes
 * equal a known one maps straight to its remote write labels, with no label parsing, no
 * relabeling and no string made.
 *
 * Everything lives in one arena per target and typed-array columns, no JS object per series:
 * entry `id` owns arena[off[id], off[id] + span[id]), which holds its key followed by its
 * encoded remote write labels (1.0 label bytes) for each remote write URL — once when the URLs
 * share a form. `labRel[id * forms + u]` / `labStored[id * forms + u]` place URL u's labels
 * (relative to off[id]); `labLen` is their length once expanded, -1 where that URL's
 * relabeling dropped the series. The target's own label fields (`shared`: job, instance, …,
 * the same bytes in every series of the target) are stored as one byte each — the marker k+1
 * for shared[k], where a label field starts with 0x0a — and expanded when a sample is encoded
 * (expandLabels), a third or more of a node_exporter series' label bytes. A series' `__name__`
 * field is stored the same way: the target's metric names are interned in `fields` after the
 * shared ones on first sight (one- or two-byte markers, see expandLabels), so the ~40 bytes of a
 * name field are kept once per metric instead of once per series. The key's metric name (the
 * series text up to `{`) is interned too (`keyNames`): a stored key starting with KEY_NAME is
 * that byte, the name's index (u16 little-endian) and the rest of the key. `kept[id]`
 * is 0 where metric relabeling dropped it (the decision is cached too). Entries are stored in id
 * order, so sweep() compacts the arena in place. The table is open addressing over typed arrays,
 * so a steady target allocates nothing per line.
 *
 * Entries are numbered 0..size-1; `seen[id]` is the number of the scrape that last had the
 * series and `live[id]` is 1 once a successful scrape wrote it (it needs a stale marker when it
 * goes). sweep() drops the entries a scrape did not see and renumbers the rest.
 */
export class SeriesCache {
  size = 0;
  seen = new Int32Array(INITIAL);
  live = new Uint8Array(INITIAL);
  kept = new Uint8Array(INITIAL);
  /** Start of entry `id` in `arena`. */
  off = new Int32Array(INITIAL);
  labRel: Int32Array<ArrayBuffer>;
  labLen: Int32Array<ArrayBuffer>;
  labStored: Int32Array<ArrayBuffer>;
  arena: Buffer = Buffer.allocUnsafeSlow(4096);
  /**
   * The fields markers stand for: `shared`, then interned `__name__` fields; index 9 (marker
   * 0x0a, which starts a plain field) is never used. Grows up to MAX_FIELDS; names seen after
   * that are stored in place.
   */
  readonly fields: Uint8Array[];
  private readonly nameIds = new Map<string, number>();
  private readonly keyNames: Uint8Array[] = [];
  private readonly keyNameIds = new Map<string, number>();
  private fieldBytes = 0;
  private span = new Int32Array(INITIAL);
  private keyLen = new Int32Array(INITIAL);
  private hashes = new Int32Array(INITIAL);
  private arenaLen = 0;
  private table = new Int32Array(INITIAL * 2).fill(-1);

  /**
   * `forms`: how many remote write URLs each series carries labels for; `shared`: at most
   * MAX_SHARED encoded label fields (encodeLabelsV1 of one label each) stored as one byte.
   */
  constructor(
    readonly forms = 1,
    readonly shared: readonly Uint8Array[] = [],
  ) {
    if (shared.length > MAX_SHARED) this.shared = shared.slice(0, MAX_SHARED);
    this.fields = [...this.shared];
    this.labRel = new Int32Array(INITIAL * forms);
    this.labLen = new Int32Array(INITIAL * forms);
    this.labStored = new Int32Array(INITIAL * forms);
  }

  /** The entry whose key is buf[start, end) with hash `h`, or -1. */
  find(buf: Uint8Array, start: number, end: number, h: number): number {
    const mask = this.table.length - 1;
    const len = end - start;
    const a = this.arena;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const id = this.table[slot]!;
      if (id < 0) return -1;
      if (this.hashes[id] !== h || this.keyLen[id] !== len) continue;
      let off = this.off[id]!;
      let i = 0;
      if (a[off] === KEY_NAME) {
        const name = this.keyNames[a[off + 1]! | (a[off + 2]! << 8)]!;
        while (i < name.length && name[i] === buf[start + i]) i++;
        if (i < name.length) continue;
        off += 3 - i;
      }
      while (i < len && a[off + i] === buf[start + i]) i++;
      if (i === len) return id;
    }
  }

  /**
   * Adds buf[start, end) (not present) with its series (copied in: `ref` is not kept; null when
   * metric relabeling dropped it); returns its id.
   */
  add(buf: Uint8Array, start: number, end: number, h: number, ref: SeriesRef | null, seen: number): number {
    const id = this.size;
    if (id === this.seen.length) this.grow(id * 2);
    if ((id + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    const len = end - start;
    const forms = this.forms;
    let need = len;
    if (ref !== null) {
      for (let u = 0; u < forms; u++) {
        const p = ref.perUrl[u];
        if (p !== null && p !== undefined && !sharedBefore(ref, u)) need += p.length; // an upper bound
      }
    }
    if (this.arenaLen + need > this.arena.length) this.resizeArena(Math.max(this.arena.length + (this.arena.length >> 1), this.arenaLen + need));
    const off = this.arenaLen;
    const a = this.arena;
    let pos = off;
    const name = this.keyName(buf, start, end);
    if (name >= 0) {
      a[pos] = KEY_NAME;
      a[pos + 1] = name & 0xff;
      a[pos + 2] = name >> 8;
      pos += 3;
      start += this.keyNames[name]!.length;
    }
    a.set(buf.subarray(start, end), pos);
    pos += end - start;
    const base = id * forms;
    for (let u = 0; u < forms; u++) {
      const p = ref === null ? null : (ref.perUrl[u] ?? null);
      if (p === null) {
        this.labRel[base + u] = 0;
        this.labLen[base + u] = -1;
        continue;
      }
      const prev = ref === null ? -1 : sharedIndex(ref, u);
      if (prev >= 0) {
        this.labRel[base + u] = this.labRel[base + prev]!;
        this.labStored[base + u] = this.labStored[base + prev]!;
      } else {
        const stored = this.compact(p, a, pos);
        this.labRel[base + u] = pos - off;
        this.labStored[base + u] = stored;
        pos += stored;
      }
      this.labLen[base + u] = p.length;
    }
    this.off[id] = off;
    this.span[id] = pos - off;
    this.keyLen[id] = len;
    this.arenaLen = pos;
    this.hashes[id] = h;
    this.seen[id] = seen;
    this.live[id] = 0;
    this.kept[id] = ref === null ? 0 : 1;
    this.size++;
    this.insert(id);
    return id;
  }

  /**
   * Keeps the entries seen in scrape `no` (marking them live) and drops the others, calling
   * `gone(id)` (before renumbering; the entry's bytes are still in place) for each dropped one
   * that was written. With `keep` false every entry is dropped.
   */
  sweep(no: number, keep: boolean, gone: (id: number) => void): void {
    let n = 0;
    const a = this.arena;
    const forms = this.forms;
    let arenaLen = 0;
    for (let id = 0; id < this.size; id++) {
      if (keep && this.seen[id] === no) {
        const off = this.off[id]!;
        const span = this.span[id]!;
        // Entries move down within the same arena: the target range never overlaps a later entry.
        if (off !== arenaLen) a.copy(a, arenaLen, off, off + span);
        if (n !== id) {
          this.span[n] = span;
          this.keyLen[n] = this.keyLen[id]!;
          this.hashes[n] = this.hashes[id]!;
          this.kept[n] = this.kept[id]!;
          this.labRel.copyWithin(n * forms, id * forms, id * forms + forms);
          this.labLen.copyWithin(n * forms, id * forms, id * forms + forms);
          this.labStored.copyWithin(n * forms, id * forms, id * forms + forms);
        }
        this.seen[n] = no;
        this.off[n] = arenaLen;
        arenaLen += span;
        this.live[n] = 1;
        n++;
        continue;
      }
      if (this.kept[id] === 1 && this.live[id] === 1) gone(id);
    }
    this.arenaLen = arenaLen;
    // A target that shrank, or a scrape that grew the arena in steps (by half), gives the slack
    // back, keeping 1/32 for churn: a few new series per scrape fit without a resize.
    if (this.arena.length - arenaLen > (arenaLen >> 4) + 1024) this.resizeArena(arenaLen + (arenaLen >> 5) + 256);
    if (n === this.size) return;
    this.size = n;
    if (this.seen.length > INITIAL && n * 4 < this.seen.length) this.grow(Math.max(INITIAL, n * 2));
    this.rehash(Math.max(INITIAL * 2, this.table.length > n * 8 ? nextPow2(n * 2) : this.table.length));
  }

  /** Every entry that a successful scrape wrote (for stale markers when the target goes). */
  forEachLive(fn: (id: number) => void): void {
    for (let id = 0; id < this.size; id++) if (this.kept[id] === 1 && this.live[id] === 1) fn(id);
  }

  clear(): void {
    this.size = 0;
    this.arenaLen = 0;
    this.table.fill(-1);
    this.fields.length = this.shared.length;
    this.nameIds.clear();
    this.keyNames.length = 0;
    this.keyNameIds.clear();
    this.fieldBytes = 0;
  }

  /** Bytes held (arena, columns and interned names), for /metrics. */
  get bytes(): number {
    return this.arena.length + this.seen.length * (4 * 5 + 2 + 12 * this.forms) + this.table.length * 4 + this.fieldBytes;
  }

  /** URL u's labels of entry `id`, expanded (a copy; for tests and pages, not the hot path). */
  labels(id: number, u: number): Uint8Array | null {
    const k = id * this.forms + u;
    const len = this.labLen[k]!;
    if (len < 0) return null;
    const out = new Uint8Array(len);
    expandLabels(this.arena, this.off[id]! + this.labRel[k]!, this.labStored[k]!, this.fields, out, 0);
    return out;
  }

  /**
   * Writes label run p into `a` at `pos` with the shared fields and the metric name as markers;
   * returns the bytes written (at most p.length: a marker is shorter than its field).
   */
  private compact(p: Uint8Array, a: Uint8Array, pos: number): number {
    const shared = this.shared;
    const start = pos;
    let i = 0;
    while (i < p.length) {
      const end = fieldEnd(p, i);
      let k = 0;
      for (; k < shared.length; k++) {
        const f = shared[k]!;
        if (f.length !== end - i) continue;
        let x = 0;
        while (x < f.length && f[x] === p[i + x]) x++;
        if (x === f.length) break;
      }
      const name = k < shared.length ? -1 : this.nameField(p, i, end);
      if (k < shared.length) a[pos++] = k + 1;
      else if (name >= 0) pos = writeMarker(a, pos, name);
      else {
        a.set(p.subarray(i, end), pos);
        pos += end - i;
      }
      i = end;
    }
    return pos - start;
  }

  /**
   * The index in `keyNames` of the metric name that key buf[start, end) starts with (the bytes
   * before `{`, interned on first sight), or -1 when it is too short to pay or the table is full.
   */
  private keyName(buf: Uint8Array, start: number, end: number): number {
    let e = start;
    while (e < end && buf[e] !== 0x7b /* { */) e++;
    if (e - start < 4) return -1;
    const key = Buffer.from(buf.buffer, buf.byteOffset + start, e - start).toString("latin1");
    const known = this.keyNameIds.get(key);
    if (known !== undefined) return known;
    if (this.keyNames.length >= MAX_KEY_NAMES) return -1;
    this.keyNames.push(buf.slice(start, e));
    this.keyNameIds.set(key, this.keyNames.length - 1);
    this.fieldBytes += 2 * (e - start) + 64;
    return this.keyNames.length - 1;
  }

  /** The index in `fields` of p[i, end) when it is a `__name__` field (interned on first sight), else -1. */
  private nameField(p: Uint8Array, i: number, end: number): number {
    // 0x0a len 0x0a 0x08 "__name__" 0x12 …, with a one-byte field length (a name of at most 115 bytes).
    if (end - i > 129 || p[i + 2] !== 0x0a || p[i + 3] !== 8) return -1;
    for (let x = 0; x < 8; x++) if (p[i + 4 + x] !== NAME_LABEL[x]) return -1;
    const key = Buffer.from(p.buffer, p.byteOffset + i, end - i).toString("latin1");
    const known = this.nameIds.get(key);
    if (known !== undefined) return known;
    const fields = this.fields;
    if (fields.length === 9) fields.push(UNUSED_FIELD);
    if (fields.length >= MAX_FIELDS) return -1;
    const id = fields.length;
    fields.push(p.slice(i, end));
    this.nameIds.set(key, id);
    this.fieldBytes += 2 * (end - i) + 64;
    return id;
  }

  private insert(id: number): void {
    const mask = this.table.length - 1;
    let slot = this.hashes[id]! & mask;
    while (this.table[slot]! >= 0) slot = (slot + 1) & mask;
    this.table[slot] = id;
  }

  private rehash(slots: number): void {
    if (slots === this.table.length) this.table.fill(-1);
    else this.table = new Int32Array(slots).fill(-1);
    for (let id = 0; id < this.size; id++) this.insert(id);
  }

  private resizeArena(n: number): void {
    const next = Buffer.allocUnsafeSlow(n);
    this.arena.copy(next, 0, 0, this.arenaLen);
    this.arena = next;
  }

  /** Resizes the columns to `n` entries (n ≥ size). */
  private grow(n: number): void {
    const size = this.size;
    const i32 = (a: Int32Array<ArrayBuffer>, per = 1): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(n * per);
      b.set(a.subarray(0, size * per));
      return b;
    };
    const u8 = (a: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> => {
      const b = new Uint8Array(n);
      b.set(a.subarray(0, size));
      return b;
    };
    this.seen = i32(this.seen);
    this.off = i32(this.off);
    this.span = i32(this.span);
    this.keyLen = i32(this.keyLen);
    this.hashes = i32(this.hashes);
    this.labRel = i32(this.labRel, this.forms);
    this.labLen = i32(this.labLen, this.forms);
    this.labStored = i32(this.labStored, this.forms);
    this.live = u8(this.live);
    this.kept = u8(this.kept);
  }
}

const INITIAL = 64;
/** Shared fields a cache elides: their markers 1..MAX_SHARED never start a label field (0x0a). */
export const MAX_SHARED = 8;
/** Fields with a one-byte marker (index + 1 ≤ 0xef); two-byte markers 0xf0–0xff + one byte cover 4096 more. */
const ONE_BYTE = 0xef;
const MAX_FIELDS = ONE_BYTE + 4096;
const UNUSED_FIELD = new Uint8Array(0);
/** First byte of a stored key whose metric name is in keyNames (a series text never starts with it). */
const KEY_NAME = 0x01;
const MAX_KEY_NAMES = 0x10000;
const NAME_LABEL = Buffer.from("__name__");

/** Writes the marker of fields[k] at a[pos]; returns the position after it. */
function writeMarker(a: Uint8Array, pos: number, k: number): number {
  if (k < ONE_BYTE) {
    a[pos] = k + 1;
    return pos + 1;
  }
  const x = k - ONE_BYTE;
  a[pos] = 0xf0 + (x >> 8);
  a[pos + 1] = x & 0xff;
  return pos + 2;
}

/** The end of the label field at buf[i]: 0x0a, a varint length, the Label message. */
function fieldEnd(buf: Uint8Array, i: number): number {
  let n = 0;
  let mul = 1;
  let j = i + 1;
  for (;;) {
    const b = buf[j++]!;
    n += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 0x80;
  }
  return j + n;
}

/**
 * Copies the stored label run buf[off, off + stored) into out at `pos`, markers replaced by
 * their fields; returns the position after it. A byte other than 0x0a (which starts a plain
 * field) is a marker: c ≤ 0xef stands for fields[c - 1], c ≥ 0xf0 and the next byte b for
 * fields[0xef + (c - 0xf0) * 256 + b].
 */
export function expandLabels(buf: Uint8Array, off: number, stored: number, fields: readonly Uint8Array[], out: Uint8Array, pos: number): number {
  const end = off + stored;
  let i = off;
  while (i < end) {
    const c = buf[i]!;
    if (c !== 0x0a) {
      let f: Uint8Array;
      if (c <= ONE_BYTE) {
        f = fields[c - 1]!;
        i++;
      } else {
        f = fields[ONE_BYTE + ((c - 0xf0) << 8) + buf[i + 1]!]!;
        i += 2;
      }
      out.set(f, pos);
      pos += f.length;
      continue;
    }
    // A run of plain fields up to the next marker (or the end), copied at once.
    let j = i;
    while (j < end && buf[j] === 0x0a) j = fieldEnd(buf, j);
    pos = copyBytes(buf, i, j, out, pos);
    i = j;
  }
  return pos;
}

/**
 * Copies src[from, to) into out at `pos`; returns the position after it. For the short runs of
 * a sample's labels (tens of bytes): `out.set(src.subarray(…))` would allocate a view per call —
 * per sample, the agent's largest source of garbage (~40 young-generation GCs a second at 50k
 * samples/s).
 */
export function copyBytes(src: Uint8Array, from: number, to: number, out: Uint8Array, pos: number): number {
  if (to - from > 256) {
    out.set(src.subarray(from, to), pos);
    return pos + to - from;
  }
  for (let k = from; k < to; k++) out[pos++] = src[k]!;
  return pos;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** The first URL before `u` whose form is the same bytes object as u's, or -1. */
function sharedIndex(ref: SeriesRef, u: number): number {
  const p = ref.perUrl[u];
  for (let j = 0; j < u; j++) if (ref.perUrl[j] === p) return j;
  return -1;
}

function sharedBefore(ref: SeriesRef, u: number): boolean {
  return sharedIndex(ref, u) >= 0;
}

/** FNV-1a over buf[start, end) as a signed 32-bit integer. */
export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}
