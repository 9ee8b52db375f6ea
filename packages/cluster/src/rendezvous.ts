import { xxhash64String } from "@strata/core";

/**
 * Rendezvous (highest random weight) hashing of series over storage nodes. A series' hash is a
 * 64-bit hash of its canonical metric-name bytes (tenant + sorted labels; seriesHashRange: two
 * MurmurHash3-style 32-bit lanes, computed in JS straight from the batch bytes); each node has
 * a seed, xxhash64 of its address as given in -storageNode. The node ranking of a series is the
 * nodes sorted by a 32-bit mix of (series hash, node seed), best first: the first
 * replicationFactor nodes hold the series, and when one of them is down its share goes to the
 * next node in that series' ranking — so a dead node's series spread evenly over the others,
 * and adding or removing a node moves only the series whose ranking it enters or leaves.
 */

const MASK32 = 0xffffffffn;

export interface SeriesHash {
  lo: number;
  hi: number;
}

/** The series hash of metric-name bytes (written into `out`). */
export function seriesHash(metricName: Uint8Array, out: SeriesHash): SeriesHash {
  return seriesHashRange(new DataView(metricName.buffer, metricName.byteOffset, metricName.byteLength), metricName, 0, metricName.length, out);
}

/**
 * The series hash of the metric-name bytes buf[start, end) (`dv` is a DataView of exactly
 * buf): two 32-bit lanes over the bytes 4
 * at a time (MurmurHash3 x86_32 rounds with seeds 0 and 0x9747b28c, each finished with its
 * fmix32), so no BigInt, no native call and no subarray per series.
 */
export function seriesHashRange(dv: DataView, buf: Uint8Array, start: number, end: number, out: SeriesHash): SeriesHash {
  let h1 = 0;
  let h2 = 0x9747b28c;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    let k = dv.getInt32(i, true);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h1 ^= k;
    h1 = (h1 << 13) | (h1 >>> 19);
    h1 = (Math.imul(h1, 5) + 0xe6546b64) | 0;
    h2 ^= k;
    h2 = (h2 << 15) | (h2 >>> 17);
    h2 = (Math.imul(h2, 5) + 0x561ccd1b) | 0;
  }
  let k = 0;
  for (let sh = 0; i < end; i++, sh += 8) k |= buf[i]! << sh;
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  const len = end - start;
  out.lo = fmix32((h1 ^ k ^ len) >>> 0);
  out.hi = fmix32((h2 ^ k ^ len) >>> 0);
  return out;
}

export function nodeSeed(address: string): SeriesHash {
  const h = xxhash64String(address);
  return { lo: Number(h & MASK32), hi: Number(h >> 32n) };
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weight of a node for a series. */
export function weight(lo: number, hi: number, seed: SeriesHash): number {
  return fmix32((lo ^ seed.lo) ^ fmix32((hi ^ seed.hi) + 0x9e3779b9));
}

/**
 * Writes the node ranking of a series into out[offset .. offset+seeds.length): node indexes by
 * descending weight (ties by index). Allocation-free; node counts are small (selection sort).
 */
export function rankNodes(lo: number, hi: number, seeds: readonly SeriesHash[], out: Int32Array, offset: number, scratch: Float64Array): void {
  const n = seeds.length;
  for (let i = 0; i < n; i++) {
    scratch[i] = weight(lo, hi, seeds[i]!);
    out[offset + i] = i;
  }
  for (let i = 0; i < n; i++) {
    let best = i;
    for (let j = i + 1; j < n; j++) {
      const a = out[offset + j]!;
      const b = out[offset + best]!;
      if (scratch[a]! > scratch[b]! || (scratch[a] === scratch[b] && a < b)) best = j;
    }
    const t = out[offset + i]!;
    out[offset + i] = out[offset + best]!;
    out[offset + best] = t;
  }
}
