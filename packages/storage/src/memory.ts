import { cacheCap } from "@strata/core";
import type { IndexDBOptions } from "./indexdb/index.js";
import type { StorageOptions } from "./storage.js";

/**
 * Shares of a node's allowed memory (-memory.allowedPercent / -memory.allowedBytes) each cache
 * and buffer gets when its own option is not set, after VictoriaMetrics' vmstorage (TSID cache
 * ~37%, metric names 10%, index blocks 10–25%). Caches fill lazily: a share is a cap, not an
 * allocation. Together they stay under 65% of the allowed memory, leaving the rest to the rows
 * buffer, merges and searches.
 */
export const MEMORY_SHARES = {
  /** metric-name bytes → TSID on the write path (Storage's SeriesCache): the working set of series. */
  seriesCache: 0.3,
  /**
   * The index's own name → TSID cache. A Storage gives the index its series cache as the write
   * path's cache (WritePathCache), so this one stays empty on a node (it had 0 hits behind the
   * series cache while holding 300 MiB); it serves an index used on its own (bench:index).
   */
  indexTsidCache: 0.005,
  /** metricID → metric name, for searches. */
  metricNameCache: 0.1,
  /** Matcher → metricIDs, for searches. */
  tagFiltersCache: 0.03,
  /** Decoded blocks of the inverted index. */
  indexDataBlocks: 0.1,
  /** Decompressed block headers of data parts. */
  indexBlockCache: 0.05,
  /** In-memory parts before a flush to disk (at most 64 MiB: bigger only delays the flush). */
  inmemoryParts: 0.02,
  /** The index's in-memory parts (mergeset) before a flush to disk, with the same ceiling. */
  indexInmemoryParts: 0.02,
} as const;

/**
 * Ceiling of both in-memory part caps: above it a node only flushes later. 3200 MiB × 2% is
 * 64 MiB (not `3200 << 20`: that overflows int32 to a negative number, and every node got the
 * 4 MiB floor — a disk flush every ~50k rows).
 */
const INMEMORY_PARTS_BASE = 3200 * 2 ** 20;
/** Floor of both in-memory part caps: smaller makes a disk part of a few thousand rows. */
const INMEMORY_PARTS_FLOOR = 4 << 20;

/** Caps that a flag or option may set explicitly (`0` or unset: the share). */
export type ExplicitCaps = Partial<Record<"seriesCacheBytes" | "indexBlockCacheBytes" | "maxInmemoryPartsBytes" | "maxIndexInmemoryPartsBytes", number>>;

export interface MemoryCaps {
  readonly seriesCacheBytes: number;
  readonly indexBlockCacheBytes: number;
  readonly maxInmemoryPartsBytes: number;
  readonly indexOptions: Pick<IndexDBOptions, "tsidCacheBytes" | "metricNameCacheBytes" | "tagFiltersCacheBytes" | "blockCacheBytes" | "maxInmemoryPartsBytes">;
}

/** Caps derived from `allowed` bytes; a set (> 0) value in `explicit` wins for that cap. */
export function memoryCaps(allowed: number, explicit: ExplicitCaps = {}): MemoryCaps {
  const s = MEMORY_SHARES;
  const partsBase = Math.min(allowed, INMEMORY_PARTS_BASE);
  return {
    seriesCacheBytes: cacheCap(explicit.seriesCacheBytes ?? 0, allowed, s.seriesCache),
    indexBlockCacheBytes: cacheCap(explicit.indexBlockCacheBytes ?? 0, allowed, s.indexBlockCache),
    maxInmemoryPartsBytes: cacheCap(explicit.maxInmemoryPartsBytes ?? 0, partsBase, s.inmemoryParts, INMEMORY_PARTS_FLOOR),
    indexOptions: {
      tsidCacheBytes: cacheCap(0, allowed, s.indexTsidCache),
      metricNameCacheBytes: cacheCap(0, allowed, s.metricNameCache),
      tagFiltersCacheBytes: cacheCap(0, allowed, s.tagFiltersCache),
      blockCacheBytes: cacheCap(0, allowed, s.indexDataBlocks),
      maxInmemoryPartsBytes: cacheCap(explicit.maxIndexInmemoryPartsBytes ?? 0, partsBase, s.indexInmemoryParts, INMEMORY_PARTS_FLOOR),
    },
  };
}

/**
 * `options` with every cap it leaves unset derived from `options.allowedMemoryBytes` (unchanged
 * when that is unset: then each cap has its fixed default).
 */
export function withMemoryCaps(options: StorageOptions): StorageOptions {
  const allowed = options.allowedMemoryBytes;
  if (allowed === undefined) return options;
  const caps = memoryCaps(allowed, { ...options, maxIndexInmemoryPartsBytes: options.indexOptions?.maxInmemoryPartsBytes ?? 0 });
  const io = options.indexOptions ?? {};
  return {
    ...options,
    seriesCacheBytes: caps.seriesCacheBytes,
    indexBlockCacheBytes: caps.indexBlockCacheBytes,
    maxInmemoryPartsBytes: caps.maxInmemoryPartsBytes,
    indexOptions: {
      ...io,
      tsidCacheBytes: io.tsidCacheBytes ?? caps.indexOptions.tsidCacheBytes!,
      metricNameCacheBytes: io.metricNameCacheBytes ?? caps.indexOptions.metricNameCacheBytes!,
      tagFiltersCacheBytes: io.tagFiltersCacheBytes ?? caps.indexOptions.tagFiltersCacheBytes!,
      blockCacheBytes: io.blockCacheBytes ?? caps.indexOptions.blockCacheBytes!,
      maxInmemoryPartsBytes: caps.indexOptions.maxInmemoryPartsBytes!,
    },
  };
}
