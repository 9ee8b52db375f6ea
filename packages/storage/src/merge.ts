import { setImmediate as yieldToLoop } from "node:timers/promises";
import { compareHeaderTSIDs, keysMetricID, ReusedBlockHeader, writeKeysTSID } from "./block.js";
import { decodeTimestampsAt, decodeValuesAt } from "./codec.js";
import { deduplicateSamples, normalizeSamples } from "./dedup.js";
import type { Part, PartCursor, PartWriter } from "./part.js";

export interface MergeOptions {
  /** -dedup.minScrapeInterval in ms (0 = off). */
  dedupIntervalMs: number;
  /** Samples older than this are dropped (retention); -Infinity keeps all. */
  minTimestamp: number;
  isDeleted(metricID: number): boolean;
  /** Checked between series; returning true abandons the merge (storage closing). */
  aborted(): boolean;
}

export interface MergeStats {
  rowsIn: number;
  rowsOut: number;
  rowsDeleted: number;
  /** Blocks written as they were read. */
  blocksCopied: number;
  /** Blocks decoded (and their samples encoded again). */
  blocksDecoded: number;
}

export class MergeAbortedError extends Error {
  constructor() {
    super("merge aborted");
  }
}

/** Work for ~this long, then let the event loop run (ingestion must not stall during merges). */
const SLICE_MS = 8;

/** True when c's current block belongs to the series whose keys `key` holds. */
function sameSeries(c: PartCursor, key: ReusedBlockHeader): boolean {
  const h = c.header;
  return h !== undefined && h.k3 === key.k3 && h.k2 === key.k2 && h.k1 === key.k1 && h.k0 === key.k0;
}

function byMinT(a: Part, b: Part): number {
  return a.meta.minT - b.meta.minT;
}

/** Decodes the cursor's current block into ts/vals[at..at + count). */
function readBlock(c: PartCursor, ts: Float64Array, vals: Float64Array, at: number): void {
  const h = c.header!;
  if (h.inline) {
    ts[at] = h.minT;
    vals[at] = h.value;
    return;
  }
  // locate first: it may replace the buffer.
  const tp = c.locateTimestamps();
  decodeTimestampsAt(h.tsTag, c.tsBuf, tp, h.tsSize, h.count, ts, at);
  const vp = c.locateValues();
  decodeValuesAt(h.valTag, c.valBuf, vp, h.valSize, h.count, vals, at);
}

/**
 * Merges parts into `w` series by series: blocks of a series found in one source only, inside
 * retention and already deduplicated, are copied unchanged; otherwise the series' samples are
 * decoded, ordered, made unique per timestamp, deduplicated, trimmed and re-encoded. Deleted
 * series are dropped. Memory: one read-ahead window per source plus one series' samples.
 */
export async function mergeParts(parts: readonly Part[], w: PartWriter, opts: MergeOptions): Promise<MergeStats> {
  const cursors: PartCursor[] = [];
  // Oldest data first: a series' samples are then gathered nearly in time order (sources
  // overlap only by a few rows that arrived late), which normalizeSamples sorts in a few moves;
  // in the callers' order (by size) a big old part after fresh ones would need a full sort.
  const byTime = [...parts].sort(byMinT);
  for (const p of byTime) {
    const c = p.cursor();
    if (c.next()) cursors.push(c);
  }
  const stats: MergeStats = { rowsIn: 0, rowsOut: 0, rowsDeleted: 0, blocksCopied: 0, blocksDecoded: 0 };
  let ts = new Float64Array(8192);
  let vals = new Float64Array(8192);
  const live: PartCursor[] = [];
  let nLive = 0;
  const minBuf = new Uint8Array(24);
  const key = new ReusedBlockHeader();
  let sliceStart = performance.now();
  let series = 0;
  let rowsChecked = 0;
  while (cursors.length > 0) {
    // The clock costs about as much as copying a small series: read it every 32 series, or
    // sooner after many rows (long series).
    if ((++series & 31) === 0 || stats.rowsIn - rowsChecked > 65_536) {
      rowsChecked = stats.rowsIn;
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        if (opts.aborted()) throw new MergeAbortedError();
        sliceStart = performance.now();
      }
    }
    let minH = cursors[0]!.header!;
    for (let i = 1; i < cursors.length; i++) {
      const h = cursors[i]!.header!;
      if (compareHeaderTSIDs(h, minH) < 0) minH = h;
    }
    // The series being merged (the headers move on below).
    key.k0 = minH.k0;
    key.k1 = minH.k1;
    key.k2 = minH.k2;
    key.k3 = minH.k3;
    // The TSID bytes are made only for the writer calls that take them (an inline block is
    // copied with its header).
    let minReady = false;
    const min = minBuf;
    nLive = 0;
    for (let i = 0; i < cursors.length; i++) {
      const c = cursors[i]!;
      if (sameSeries(c, key)) live[nLive++] = c;
    }
    const deleted = opts.isDeleted(keysMetricID(key));
    if (deleted) {
      for (let i = 0; i < nLive; i++) {
        const c = live[i]!;
        do stats.rowsDeleted += c.header!.count;
        while (c.next() && sameSeries(c, key));
      }
    } else if (
      nLive === 1 &&
      // A block in the cheap layouts may be copied into a part that keeps them (a disk flush).
      (live[0]!.part.meta.fastLayouts !== true || !w.compress) &&
      live[0]!.part.meta.dedupIntervalMs % Math.max(1, opts.dedupIntervalMs) === 0 &&
      live[0]!.part.meta.dedupIntervalMs >= opts.dedupIntervalMs
    ) {
      // One source: its blocks are already sorted, unique and deduplicated (an in-memory part's
      // too: normalized and deduplicated when flushed from the rows buffer).
      const c = live[0]!;
      do {
        const h = c.header!;
        stats.rowsIn += h.count;
        if (h.maxT < opts.minTimestamp) continue;
        if (h.minT >= opts.minTimestamp) {
          if (!minReady && !h.inline) {
            writeKeysTSID(key, min, 0);
            minReady = true;
          }
          w.copyBlock(min, c);
          stats.rowsOut += h.count;
          stats.blocksCopied++;
          continue;
        }
        if (ts.length < h.count) {
          ts = new Float64Array(h.count);
          vals = new Float64Array(h.count);
        }
        stats.blocksDecoded++;
        readBlock(c, ts, vals, 0);
        let lo = 0;
        while (lo < h.count && ts[lo]! < opts.minTimestamp) lo++;
        if (lo < h.count) {
          if (!minReady) {
            writeKeysTSID(key, min, 0);
            minReady = true;
          }
          w.writeSamples(min, ts.subarray(lo), vals.subarray(lo), h.count - lo);
          stats.rowsOut += h.count - lo;
        }
      } while (c.next() && sameSeries(c, key));
    } else {
      let n = 0;
      for (let li = 0; li < nLive; li++) {
        const c = live[li]!;
        do {
          const h = c.header!;
          stats.rowsIn += h.count;
          if (h.maxT < opts.minTimestamp) continue;
          if (n + h.count > ts.length) {
            const cap = Math.max(ts.length * 2, n + h.count);
            const nt = new Float64Array(cap);
            const nv = new Float64Array(cap);
            nt.set(ts.subarray(0, n));
            nv.set(vals.subarray(0, n));
            ts = nt;
            vals = nv;
          }
          stats.blocksDecoded++;
          readBlock(c, ts, vals, n);
          n += h.count;
        } while (c.next() && sameSeries(c, key));
      }
      n = normalizeSamples(ts, vals, n);
      n = deduplicateSamples(ts, vals, n, opts.dedupIntervalMs);
      let lo = 0;
      while (lo < n && ts[lo]! < opts.minTimestamp) lo++;
      if (lo < n) {
        writeKeysTSID(key, min, 0);
        w.writeSamples(min, lo === 0 ? ts : ts.subarray(lo), lo === 0 ? vals : vals.subarray(lo), n - lo);
        stats.rowsOut += n - lo;
      }
    }
    for (let i = cursors.length - 1; i >= 0; i--) if (cursors[i]!.header === undefined) cursors.splice(i, 1);
  }
  return stats;
}
