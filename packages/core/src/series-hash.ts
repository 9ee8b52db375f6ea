/**
 * The 64-bit hash of canonical metric-name bytes that insert shards series by (see
 * @strata/cluster rendezvous.ts). It lives here, below the decoders, so a decoder can compute
 * it once per series and keep it next to the canonical name in its caches: routing a row then
 * costs no pass over the name.
 */

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
 * buf): two 32-bit lanes over the bytes 4 at a time (MurmurHash3 x86_32 rounds with seeds 0
 * and 0x9747b28c, each finished with its fmix32), so no BigInt, no native call and no
 * subarray per series.
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

/** MurmurHash3's 32-bit finalizer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
