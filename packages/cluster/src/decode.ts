import type { SelectWindows } from "@strata/promql";
import { BlockRefs } from "./block-refs.js";
import { blockProgression, blockTimestampsProgression, decodeBlockTimestamps, decodeBlockTimestampsNear, decodeBlockValues, deduplicateSamples, marshalBlockAt, marshaledBlockSize, normalizeSamples, unmarshalBlock, type RawBlock } from "@strata/storage";

/**
 * Turns the blocks of one series (from any number of nodes and parts, in any order, possibly
 * overlapping replicas) into time-ordered samples within [minT, maxT]: decode, one sample per
 * timestamp (storage's rule), -dedup.minScrapeInterval, trim. Unlike storage's
 * mergeSeriesBlocks it does not copy the trimmed result: it returns views of the decoded arrays
 * unless trimming dropped most of them (then a copy releases the rest).
 */
export interface DecodedSamples {
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

const EMPTY = new Float64Array(0);

function lowerBound(a: Float64Array, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** True when ts[0..n) is strictly increasing: already normalized (the common case). */
function strictlyIncreasing(ts: Float64Array, n: number): boolean {
  for (let i = 1; i < n; i++) if (!(ts[i]! > ts[i - 1]!)) return false;
  return true;
}

/** A module function, not an arrow per call (V8 re-optimized every such closure). */
function byMinT(a: RawBlock, b: RawBlock): number {
  return a.minT - b.minT;
}

/**
 * Decodes into ts/vals at [0, total) and returns the [lo, hi) window that lies in [minT, maxT].
 *
 * With `windows` that leave gaps between them (steps longer than the range, or one window),
 * [lo, hi) holds only the samples inside the windows, in order (compactWindows). When the
 * blocks' timestamps are already in order with nothing for dedup to drop (one block, or blocks
 * of disjoint parts: the common case) the windows are found on the timestamps first and only
 * the values inside them are decoded (decodeBlockValues skips whole bit-packed groups); with
 * dedup off and blocks that do not overlap, only the timestamps near the windows are unpacked
 * too (decodeBlockTimestampsNear).
 */
export function decodeSeriesInto(
  blocks: readonly RawBlock[],
  ts: Float64Array,
  vals: Float64Array,
  minT: number,
  maxT: number,
  dedupIntervalMs: number,
  windows?: SelectWindows,
): { lo: number; hi: number } {
  const ordered = blocks.length > 1 ? [...blocks].sort(byMinT) : blocks;
  const gaps = windows !== undefined && (windows.count === 1 || windows.step > windows.range) ? windows : undefined;
  let off = 0;
  // Blocks hold ascending unique timestamps (docs/format/storage.md): when they do not overlap
  // (one block, or blocks of merged parts) the series is in order as it is.
  const inOrder = disjoint(ordered);
  if (gaps !== undefined && dedupIntervalMs <= 0 && inOrder) {
    // Blocks on a perfect scrape grid: the windows' indexes are computed, nothing else is read.
    if (onGrid(ordered)) return decodeGridWindows(ordered, ts, vals, minT, maxT, gaps);
    // Only the timestamps near the windows need decoding.
    for (const b of ordered) {
      decodeBlockTimestampsNear(b, ts, off, gaps);
      off += b.count;
    }
    return decodeWindowValues(ordered, ts, vals, off, minT, maxT, gaps);
  }
  for (const b of ordered) {
    decodeBlockTimestamps(b, ts, off);
    off += b.count;
  }
  // Overlapping blocks (replicas, parts not merged yet) are often in order too: checking that
  // is a read; normalizing rewrites every sample.
  const ordinary = (inOrder || strictlyIncreasing(ts, off)) && !dedupDrops(ts, off, dedupIntervalMs);
  if (gaps !== undefined && ordinary) return decodeWindowValues(ordered, ts, vals, off, minT, maxT, gaps);
  off = 0;
  for (const b of ordered) {
    decodeBlockValues(b, vals, off);
    off += b.count;
  }
  let n = ordinary ? off : normalizeSamples(ts, vals, off);
  n = deduplicateSamples(ts, vals, n, dedupIntervalMs);
  const { lo, hi } = trim(ts, n, minT, maxT);
  return gaps === undefined ? { lo, hi } : { lo, hi: lo + compactWindows(ts, vals, lo, hi, gaps) };
}

/** Whether blocks sorted by minT lie one after another in time. */
function disjoint(ordered: readonly RawBlock[]): boolean {
  for (let k = 1; k < ordered.length; k++) if (!(ordered[k - 1]!.maxT < ordered[k]!.minT)) return false;
  return true;
}

/** The [lo, hi) of ts[0..n) (ascending) inside [minT, maxT]. */
function trim(ts: Float64Array, n: number, minT: number, maxT: number): { lo: number; hi: number } {
  if (n === 0) return { lo: 0, hi: 0 };
  const lo = ts[0]! >= minT ? 0 : lowerBound(ts, n, minT);
  const hi = ts[n - 1]! <= maxT ? n : lowerBound(ts, n, maxT + 1);
  return { lo, hi: Math.max(lo, hi) };
}

/** Whether deduplicateSamples would drop any of ts[0..n) (ascending): a read of its rule. */
function dedupDrops(ts: Float64Array, n: number, intervalMs: number): boolean {
  if (intervalMs <= 0 || n < 2) return false;
  let groupEnd = Math.ceil(ts[0]! / intervalMs) * intervalMs;
  for (let i = 1; i < n; i++) {
    const t = ts[i]!;
    if (t <= groupEnd) return true;
    groupEnd = Math.ceil(t / intervalMs) * intervalMs;
  }
  return false;
}

/** One block's share of the segments, in its own indexes (grown as needed). */
let blockWant = new Uint32Array(64);

/**
 * With ts[0..n) ascending and exact inside the windows (outside them they may be placeholders
 * that fall in no window): finds the windows' samples, decodes only their values block by
 * block, and moves them to [lo, lo + kept).
 */
function decodeWindowValues(
  ordered: readonly RawBlock[],
  ts: Float64Array,
  vals: Float64Array,
  n: number,
  minT: number,
  maxT: number,
  w: SelectWindows,
): { lo: number; hi: number } {
  const { lo, hi } = trim(ts, n, minT, maxT);
  const kept = windowSegments(ts, lo, hi, w);
  segmentValues(ordered, ts, vals, lo);
  return { lo, hi: lo + kept };
}

/** Decodes the values at the segments (windowSegments, gridSegments) block by block and moves the kept samples to ts/vals[lo...). */
function segmentValues(ordered: readonly RawBlock[], ts: Float64Array, vals: Float64Array, lo: number): void {
  let s = 0;
  let off = 0;
  for (const b of ordered) {
    const end = off + b.count;
    while (s < segmentCount && segments[2 * s + 1]! <= off) s++;
    let k = 0;
    for (let j = s; j < segmentCount && segments[2 * j]! < end; j++) {
      if (2 * k + 2 > blockWant.length) {
        const grown = new Uint32Array(blockWant.length * 2);
        grown.set(blockWant);
        blockWant = grown;
      }
      blockWant[2 * k] = Math.max(segments[2 * j]!, off) - off;
      blockWant[2 * k + 1] = Math.min(segments[2 * j + 1]!, end) - off;
      k++;
    }
    if (k > 0) decodeBlockValues(b, vals, off, blockWant, k);
    off = end;
  }
  moveSegments(ts, vals, lo);
}

/** First timestamps and steps of the blocks onGrid accepted. */
let gridX0 = new Float64Array(16);
let gridStep = new Float64Array(16);

/** Whether every block's timestamps are an ascending arithmetic progression (kept in gridX0/gridStep). */
function onGrid(ordered: readonly RawBlock[]): boolean {
  if (gridX0.length < ordered.length) {
    gridX0 = new Float64Array(ordered.length * 2);
    gridStep = new Float64Array(ordered.length * 2);
  }
  for (let k = 0; k < ordered.length; k++) {
    const b = ordered[k]!;
    if (!blockTimestampsProgression(b)) return false;
    const { x0, step } = blockProgression;
    if (b.count > 1 && !(step > 0)) return false;
    gridX0[k] = x0;
    gridStep[k] = step;
  }
  return true;
}

/**
 * decodeSeriesInto's windowed read for blocks on a grid (onGrid; in order, dedup off): the
 * indexes inside each window and [minT, maxT] follow from each block's first timestamp and step,
 * so only the kept timestamps are written and only their values decoded (with `w.last` one per
 * window, the last one across the blocks); the samples end at
 * ts/vals[0..kept) — what decodeWindowValues keeps from the whole timestamps.
 */
function decodeGridWindows(ordered: readonly RawBlock[], ts: Float64Array, vals: Float64Array, minT: number, maxT: number, w: SelectWindows): { lo: number; hi: number } {
  segmentCount = 0;
  const nb = ordered.length;
  const tFirst = Math.max(ordered[0]!.minT, minT);
  const tLast = Math.min(ordered[nb - 1]!.maxT, maxT);
  let kept = 0;
  let k = 0;
  if (w.step > 0 && w.first < tFirst) k = Math.floor((tFirst - w.first) / w.step);
  let bi = 0;
  let off = 0;
  for (; k < w.count; k++) {
    const end = w.first + k * w.step;
    const start = end - w.range;
    if (start >= tLast) break;
    if (end >= tFirst) {
      // Samples t with t > start, t >= minT, t <= end and t <= maxT.
      const hiT = Math.min(end, maxT);
      while (bi < nb && ordered[bi]!.maxT <= start) off += ordered[bi++]!.count;
      let lastAt = -1;
      let lastT = 0;
      for (let j = bi, o = off; j < nb && ordered[j]!.minT <= hiT; o += ordered[j]!.count, j++) {
        const x0 = gridX0[j]!;
        const step = gridStep[j]!;
        const count = ordered[j]!.count;
        let a = 0;
        let b = 1;
        if (count > 1) {
          a = Math.max(0, Math.floor((start - x0) / step) + 1, Math.ceil((minT - x0) / step));
          while (a > 0 && x0 + (a - 1) * step > start && x0 + (a - 1) * step >= minT) a--;
          while (a < count && (x0 + a * step <= start || x0 + a * step < minT)) a++;
          b = Math.min(count, Math.max(a, Math.floor((hiT - x0) / step) + 1));
          while (b > a && x0 + (b - 1) * step > hiT) b--;
          while (b < count && x0 + b * step <= hiT) b++;
        } else if (!(x0 > start && x0 >= minT && x0 <= hiT)) continue;
        if (b <= a) continue;
        if (w.last === true) {
          lastAt = o + b - 1;
          lastT = x0 + (b - 1) * step;
          continue;
        }
        for (let i = a; i < b; i++) ts[o + i] = x0 + i * step;
        kept += b - a;
        addSegment(o + a, o + b);
      }
      if (lastAt >= 0) {
        ts[lastAt] = lastT;
        kept++;
        addSegment(lastAt, lastAt + 1);
      }
    }
    if (w.step === 0) break;
  }
  segmentValues(ordered, ts, vals, 0);
  return { lo: 0, hi: kept };
}
/** Elements per arena chunk (1 MiB). */
const CHUNK_LENGTH = 1 << 17;
/** Released chunks kept for the next queries (at most 64 MiB). */
const POOL_MAX = 64;
const pool: Float64Array[] = [];

/**
 * Float64Arrays carved out of a few large uninitialized buffers: every decoded series of a query
 * gets exact-size arrays (the engine may keep them until the query ends) without an ArrayBuffer
 * per series and without zero-filling memory that is overwritten at once.
 *
 * `release()` (when the query is over: its answer written, nothing refers to its samples any
 * more) returns the chunks to a process-wide pool, so a dashboard's stream of wide queries
 * reuses the same memory instead of allocating tens of MB of external memory per query (which
 * V8 answers with full garbage collections). After release the arena hands out fresh,
 * unpooled memory, so a late decode of an abandoned query can never write into a chunk that
 * another query uses.
 */
export class SampleArena {
  private chunk: Float64Array = EMPTY;
  private pos = 0;
  private readonly chunks: Float64Array[] = [];
  private released = false;

  /** An array of `n` elements whose contents are undefined until written. */
  take(n: number): Float64Array {
    if (n === 0) return EMPTY;
    if (this.pos + n > this.chunk.length) {
      if (n > CHUNK_LENGTH >> 2) return uninitialized(n);
      if (this.released) {
        this.chunk = uninitialized(CHUNK_LENGTH);
      } else {
        this.chunk = pool.pop() ?? uninitialized(CHUNK_LENGTH);
        this.chunks.push(this.chunk);
      }
      this.pos = 0;
    }
    const a = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    return a;
  }

  /** Gives the chunks back to the pool: every array taken from this arena is invalid after this. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const c of this.chunks) if (pool.length < POOL_MAX) pool.push(c);
    this.chunks.length = 0;
    this.chunk = EMPTY;
    this.pos = 0;
  }
}

function uninitialized(n: number): Float64Array {
  const b = Buffer.allocUnsafeSlow(n * 8);
  return new Float64Array(b.buffer, b.byteOffset, n);
}

const SCRATCH_LENGTH = 1 << 14;
/** Reused decode buffers of the (single-threaded) inline decoder; grown as needed, shrunk by trimDecodeMemory. */
let scratchT = new Float64Array(SCRATCH_LENGTH);
let scratchV = new Float64Array(SCRATCH_LENGTH);

/**
 * Gives back what decoding keeps between queries: the pooled arena chunks (up to 64 MiB) and
 * scratch buffers grown by a wide series. For an idle process; the next queries allocate anew.
 */
export function trimDecodeMemory(): void {
  pool.length = 0;
  if (scratchT.length > SCRATCH_LENGTH) {
    scratchT = new Float64Array(SCRATCH_LENGTH);
    scratchV = new Float64Array(SCRATCH_LENGTH);
  }
}

/**
 * Decodes one series into exact-size arrays from `arena`. When the blocks lie within [minT,
 * maxT] (a range query over stored data) they decode straight into the arena; otherwise (an
 * instant query reading a few minutes of blocks that span hours) into shared scratch buffers
 * and only the window is copied out, so the query allocates only what it keeps.
 *
 * With `windows` (the engine reads only those samples, promql's SelectHints) that leave gaps
 * between them — steps longer than the window, an instant query — only the samples inside the
 * windows are copied out: a 5-minute rate at a 34-minute step keeps 15 % of the samples, and
 * the engine scans only those. Samples are decoded, put in order and deduplicated whole first,
 * so every kept sample is the one the whole selection would hold.
 */
export function decodeSeries(
  blocks: readonly RawBlock[],
  minT: number,
  maxT: number,
  dedupIntervalMs: number,
  arena = new SampleArena(),
  windows?: SelectWindows,
): DecodedSamples {
  let total = 0;
  let inside = true;
  for (const b of blocks) {
    total += b.count;
    if (b.minT < minT || b.maxT > maxT) inside = false;
  }
  if (total === 0) return { timestamps: EMPTY, values: EMPTY };
  const gaps = windows !== undefined && (windows.count === 1 || windows.step > windows.range) ? windows : undefined;
  if (inside && gaps === undefined) {
    const ts = arena.take(total);
    const vals = arena.take(total);
    const { lo, hi } = decodeSeriesInto(blocks, ts, vals, minT, maxT, dedupIntervalMs);
    return lo === 0 && hi === total ? { timestamps: ts, values: vals } : { timestamps: ts.subarray(lo, hi), values: vals.subarray(lo, hi) };
  }
  if (scratchT.length < total) {
    const len = Math.max(total, scratchT.length * 2);
    scratchT = new Float64Array(len);
    scratchV = new Float64Array(len);
  }
  const { lo, hi } = decodeSeriesInto(blocks, scratchT, scratchV, minT, maxT, dedupIntervalMs, gaps);
  const timestamps = arena.take(hi - lo);
  const values = arena.take(hi - lo);
  timestamps.set(scratchT.subarray(lo, hi));
  values.set(scratchV.subarray(lo, hi));
  return { timestamps, values };
}

/** [from, to) index pairs of the samples windowSegments keeps (grown as needed). */
let segments = new Uint32Array(512);
let segmentCount = 0;

/**
 * First index in ts[from..to) whose timestamp is > t (to if none). Gallops from `from`: the
 * windows move forward a step at a time, so the answer is usually near, and a query with many
 * narrow windows costs O(log distance) per window, not O(log n).
 */
function firstAfter(ts: Float64Array, from: number, to: number, t: number): number {
  let lo = from;
  let gap = 1;
  while (lo + gap < to && ts[lo + gap - 1]! <= t) {
    lo += gap;
    gap *= 2;
  }
  let hi = Math.min(lo + gap, to);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Finds the runs of ts[lo..hi) (ascending) inside the windows (e - range, e], e = first +
 * k·step — with `w.last` only the last sample of each window — into `segments`; returns how
 * many samples they hold. Windows may come in any order of
 * k only when step is 0 (one window).
 */
export function windowSegments(ts: Float64Array, lo: number, hi: number, w: SelectWindows): number {
  segmentCount = 0;
  if (hi <= lo) return 0;
  const tFirst = ts[lo]!;
  const tLast = ts[hi - 1]!;
  let k = 0;
  // Skip the windows that end before the first sample.
  if (w.step > 0 && w.first < tFirst) k = Math.floor((tFirst - w.first) / w.step);
  let pos = lo;
  let kept = 0;
  for (; k < w.count; k++) {
    const end = w.first + k * w.step;
    const start = end - w.range;
    if (start >= tLast) break;
    if (end < tFirst) continue;
    let a = firstAfter(ts, pos, hi, start);
    const b = firstAfter(ts, a, hi, end);
    pos = b;
    if (b <= a) continue;
    if (w.last === true) a = b - 1;
    kept += b - a;
    addSegment(a, b);
    if (w.step === 0) break;
  }
  return kept;
}

/** Appends [a, b) to `segments`, joined to the last one when they touch. */
function addSegment(a: number, b: number): void {
  if (segmentCount > 0 && segments[2 * segmentCount - 1] === a) {
    segments[2 * segmentCount - 1] = b;
    return;
  }
  if (2 * segmentCount + 2 > segments.length) {
    const grown = new Uint32Array(segments.length * 2);
    grown.set(segments);
    segments = grown;
  }
  segments[2 * segmentCount] = a;
  segments[2 * segmentCount + 1] = b;
  segmentCount++;
}

/**
 * Moves the samples of ts/vs[lo..hi) inside the windows to ts/vs[lo..lo+kept) (in place, order
 * kept) and returns kept; hi - lo when the windows leave no gaps.
 */
export function compactWindows(ts: Float64Array, vs: Float64Array, lo: number, hi: number, w: SelectWindows): number {
  if (w.count !== 1 && w.step <= w.range) return hi - lo;
  const kept = windowSegments(ts, lo, hi, w);
  moveSegments(ts, vs, lo);
  return kept;
}

/**
 * Runs up to this long are moved element by element: a copyWithin call costs more than that
 * many stores (a query's `last` windows move one sample per window).
 */
const SHORT_MOVE = 32;

/** Moves the runs windowSegments found to ts/vs[lo...), in order. */
function moveSegments(ts: Float64Array, vs: Float64Array, lo: number): void {
  let o = lo;
  for (let s = 0; s < segmentCount; s++) {
    const b = segments[2 * s + 1]!;
    const a = segments[2 * s]!;
    if (a !== o) {
      if (b - a <= SHORT_MOVE) {
        // o < a: moving down, front to back, never overwrites a sample not yet moved.
        for (let i = a, j = o; i < b; i++, j++) {
          ts[j] = ts[i]!;
          vs[j] = vs[i]!;
        }
      } else {
        ts.copyWithin(o, a, b);
        vs.copyWithin(o, a, b);
      }
    }
    o += b - a;
  }
}

/** The windows (ends[k] - range, ends[k]] as SelectWindows when the ends are evenly spaced. */
export function windowsOfEnds(ends: Float64Array, range: number): SelectWindows | undefined {
  const n = ends.length;
  if (n === 0) return undefined;
  const first = ends[0]!;
  const step = n > 1 ? ends[1]! - first : 0;
  if (n > 1 && !(step > 0)) return undefined;
  for (let k = 2; k < n; k++) if (ends[k] !== first + k * step) return undefined;
  return { first, step, count: n, range };
}

// ---- decoding off the event loop ----------------------------------------------------------------

/**
 * A job for a worker: the blocks of several series packed into two transferable buffers,
 * so posting it copies nothing per block. `meta` is, as float64s: minT, maxT, dedupIntervalMs,
 * seriesCount, then per series its block count; `data` holds every block's wire
 * form (storage's marshalBlock: header, timestamp bytes, value bytes) in order, as they came
 * off the storage streams. The worker reads the headers: the event loop copies bytes and
 * builds no object per block.
 */
export interface DecodeJob {
  readonly id: number;
  readonly meta: Float64Array<ArrayBuffer>;
  readonly data: Uint8Array<ArrayBuffer>;
}

const META_HEAD = 4;

/** Packs series given as their blocks' wire forms (tests, benchmarks), as packRefsJob. */
export function packWireJob(id: number, series: readonly (readonly Uint8Array[])[], minT: number, maxT: number, dedupIntervalMs: number): DecodeJob {
  const { refs, firsts } = BlockRefs.ofWire(series);
  return packRefsJob(id, refs, firsts, minT, maxT, dedupIntervalMs);
}

/**
 * Packs series given as chains of block rows in the frames they arrived in (select's
 * StreamEntry.first): each block's bytes are copied once, from its frame, into the job's buffer
 * (from `buffer`: the pool hands out buffers the workers gave back; `data` covers its first bytes).
 */
export function packRefsJob(
  id: number,
  refs: BlockRefs,
  firsts: ArrayLike<number>,
  minT: number,
  maxT: number,
  dedupIntervalMs: number,
  buffer: (bytes: number) => ArrayBuffer = (bytes) => new ArrayBuffer(bytes),
): DecodeJob {
  const n = firsts.length;
  const meta = new Float64Array(META_HEAD + n);
  meta[0] = minT;
  meta[1] = maxT;
  meta[2] = dedupIntervalMs;
  meta[3] = n;
  let dataLen = 0;
  for (let i = 0; i < n; i++) {
    meta[META_HEAD + i] = refs.chainBlocks(firsts[i]!);
    dataLen += refs.chainBytes;
  }
  const data = new Uint8Array(buffer(dataLen), 0, dataLen);
  let d = 0;
  for (let i = 0; i < n; i++) d = refs.copyChain(firsts[i]!, data, d);
  return { id, meta, data };
}

/** Packs series given as decoded block headers (tests, benchmarks): their wire forms, as packWireJob. */
export function packJob(id: number, series: readonly (readonly RawBlock[])[], minT: number, maxT: number, dedupIntervalMs: number): DecodeJob {
  return packWireJob(id, series.map((blocks) => blocks.map(wireOf)), minT, maxT, dedupIntervalMs);
}

function wireOf(b: RawBlock): Uint8Array {
  const out = new Uint8Array(marshaledBlockSize(b));
  marshalBlockAt(b, out, 0);
  return out;
}

/**
 * Calls `each(s, blocks, count)` for every series of a packed job, in order: its blocks as views
 * into `data` (the array is reused between calls) and their sample count.
 */
export function forEachPackedSeries(meta: Float64Array, data: Uint8Array, each: (s: number, blocks: readonly RawBlock[], count: number) => void): void {
  const nSeries = meta[3]!;
  let m = META_HEAD;
  let d = 0;
  const blocks: RawBlock[] = [];
  for (let s = 0; s < nSeries; s++) {
    const nb = meta[m++]!;
    blocks.length = 0;
    let count = 0;
    for (let k = 0; k < nb; k++) {
      const { block, next } = unmarshalBlock(data, d);
      d = next;
      count += block.count;
      blocks.push(block);
    }
    each(s, blocks, count);
  }
}
