import type { RawBlock } from "./block.js";
import { decodeBlock } from "./block.js";
import { isStaleNaN, STALE_NAN } from "@strata/core";

export { isStaleNaN, STALE_NAN };

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/**
 * Sample-level rules shared by merges and the query side (pure functions over typed arrays).
 *
 * - One sample per timestamp: among samples with equal timestamps the "largest" value wins, by
 *   the total order of `compareDuplicateValues` (any non-stale value beats a stale marker, a
 *   number beats NaN, then larger value, then larger bit pattern). Because it is a max, the
 *   result does not depend on arrival order or on how data was split into parts.
 * - `-dedup.minScrapeInterval=d`: the samples in each interval (k·d − d, k·d] collapse to the
 *   one with the largest timestamp (ties as above), like VictoriaMetrics.
 */


/** Total order used to pick one of several samples with the same timestamp (>0: a wins). */
export function compareDuplicateValues(a: number, b: number): number {
  const aStale = isStaleNaN(a);
  const bStale = isStaleNaN(b);
  if (aStale !== bStale) return aStale ? -1 : 1;
  const aNaN = a !== a;
  const bNaN = b !== b;
  if (aNaN !== bNaN) return aNaN ? -1 : 1;
  if (!aNaN && a !== b) return a > b ? 1 : -1;
  f64[0] = a;
  const ah = u32[1]!;
  const al = u32[0]!;
  f64[0] = b;
  const bh = u32[1]!;
  const bl = u32[0]!;
  return ah !== bh ? ah - bh : al - bl;
}

let perm = new Uint32Array(1024);
let tmpT = new Float64Array(1024);
let tmpV = new Float64Array(1024);
/** Keys of the running permutation sort (a module comparator, not a closure per call). */
let sortKeys: Float64Array = tmpT;

function byKey(a: number, b: number): number {
  return sortKeys[a]! - sortKeys[b]!;
}

/**
 * Insertion sort of ts[from..n) (carrying vals), ts[0..from) already sorted, giving up once
 * it has moved more than `budget` samples (returns false, ts/vals then still hold a
 * permutation of the input). Rows of a series arrive nearly in order (a few concurrent
 * requests), so this is usually a handful of moves.
 */
function insertionSort(ts: Float64Array, vals: Float64Array, from: number, n: number, budget: number): boolean {
  for (let i = from; i < n; i++) {
    const t = ts[i]!;
    if (t >= ts[i - 1]!) continue;
    const v = vals[i]!;
    let j = i - 1;
    while (j >= 0 && ts[j]! > t) {
      ts[j + 1] = ts[j]!;
      vals[j + 1] = vals[j]!;
      j--;
      if (--budget < 0) {
        ts[j + 1] = t;
        vals[j + 1] = v;
        return false;
      }
    }
    ts[j + 1] = t;
    vals[j + 1] = v;
  }
  return true;
}

/**
 * Sorts ts[0..n) by time (carrying vals) and keeps one sample per timestamp. In place; returns
 * the new length. Allocation-free when the input is already or nearly sorted.
 */
export function normalizeSamples(ts: Float64Array, vals: Float64Array, n: number): number {
  let first = 1;
  while (first < n && ts[first]! >= ts[first - 1]!) first++;
  if (first < n && !insertionSort(ts, vals, first, n, 4 * n + 16)) {
    if (perm.length < n) {
      perm = new Uint32Array(n);
      tmpT = new Float64Array(n);
      tmpV = new Float64Array(n);
    }
    const p = perm.subarray(0, n);
    for (let i = 0; i < n; i++) p[i] = i;
    sortKeys = ts;
    p.sort(byKey);
    sortKeys = tmpT;
    for (let i = 0; i < n; i++) {
      tmpT[i] = ts[p[i]!]!;
      tmpV[i] = vals[p[i]!]!;
    }
    ts.set(tmpT.subarray(0, n));
    vals.set(tmpV.subarray(0, n));
  }
  if (n < 2) return n;
  let w = 0;
  for (let i = 1; i < n; i++) {
    if (ts[i] === ts[w]) {
      if (compareDuplicateValues(vals[i]!, vals[w]!) > 0) vals[w] = vals[i]!;
    } else {
      w++;
      ts[w] = ts[i]!;
      vals[w] = vals[i]!;
    }
  }
  return w + 1;
}

/**
 * Applies `-dedup.minScrapeInterval` to normalized samples (sorted, one per timestamp): keeps
 * the last sample of each interval (k·d − d, k·d]. In place; returns the new length.
 * `intervalMs <= 0` keeps everything.
 */
export function deduplicateSamples(ts: Float64Array, vals: Float64Array, n: number, intervalMs: number): number {
  if (intervalMs <= 0 || n < 2) return n;
  let w = 0;
  let groupEnd = Math.ceil(ts[0]! / intervalMs) * intervalMs;
  for (let i = 1; i < n; i++) {
    const t = ts[i]!;
    if (t > groupEnd) {
      w++;
      groupEnd = Math.ceil(t / intervalMs) * intervalMs;
    }
    ts[w] = t;
    vals[w] = vals[i]!;
  }
  return w + 1;
}

/** Decoded samples of one series. */
export interface Samples {
  timestamps: Float64Array;
  values: Float64Array;
}

/**
 * Decodes the blocks of one series (from any number of parts or nodes, in any order, possibly
 * overlapping), merges them with one sample per timestamp, applies dedup with `dedupIntervalMs`
 * (0 = off), then keeps samples in [minT, maxT]. This is what a reader of `search` results does.
 */
export function mergeSeriesBlocks(blocks: readonly RawBlock[], minT: number, maxT: number, dedupIntervalMs = 0): Samples {
  let total = 0;
  for (const b of blocks) total += b.count;
  const ts = new Float64Array(total);
  const vals = new Float64Array(total);
  let off = 0;
  const ordered = blocks.length > 1 ? [...blocks].sort((a, b) => a.minT - b.minT) : blocks;
  for (const b of ordered) off += decodeBlock(b, ts, vals, off);
  let n = normalizeSamples(ts, vals, total);
  n = deduplicateSamples(ts, vals, n, dedupIntervalMs);
  let lo = 0;
  while (lo < n && ts[lo]! < minT) lo++;
  let hi = n;
  while (hi > lo && ts[hi - 1]! > maxT) hi--;
  return { timestamps: ts.slice(lo, hi), values: vals.slice(lo, hi) };
}
