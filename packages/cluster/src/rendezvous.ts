import { fmix32, xxhash64String, type SeriesHash } from "@strata/core";

export { seriesHash, seriesHashRange, type SeriesHash } from "@strata/core";

/**
 * Rendezvous (highest random weight) hashing of series over storage nodes. A series' hash is a
 * 64-bit hash of its canonical metric-name bytes (tenant + sorted labels; @strata/core seriesHashRange,
 * which decoders compute once per series and cache with its canonical name); each node has
 * a seed, xxhash64 of its address as given in -storageNode. The node ranking of a series is the
 * nodes sorted by a 32-bit mix of (series hash, node seed), best first: the first
 * replicationFactor nodes hold the series, and when one of them is down its share goes to the
 * next node in that series' ranking — so a dead node's series spread evenly over the others,
 * and adding or removing a node moves only the series whose ranking it enters or leaves.
 */

const MASK32 = 0xffffffffn;

export function nodeSeed(address: string): SeriesHash {
  const h = xxhash64String(address);
  return { lo: Number(h & MASK32), hi: Number(h >> 32n) };
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
