/**
 * @strata/storage — one storage node's durable store (DESIGN.md §4, docs/format/storage.md).
 *
 * The API services/storage wraps:
 * - `Storage.open(dir, options)` → `Storage`: addRows / search / labelNames / labelValues /
 *   seriesCount / tsdbStatus / deleteSeries / snapshots / forceFlush / forceMerge / metrics / close.
 * - Search results carry blocks as stored (`RawBlock`); `marshalBlock` / `unmarshalBlock` give
 *   their self-describing wire form, `decodeBlock` / `mergeSeriesBlocks` decode them on the
 *   query side, where `deduplicateSamples` applies -dedup.minScrapeInterval again.
 *
 * The inverted index lives in ./indexdb (IndexDB), inside the log-structured ./mergeset.
 */
export {
  Storage,
  type StorageOptions,
  type StorageEvent,
  type SearchOptions,
  type SeriesCursor,
  type SearchedSeries,
  type SnapshotInfo,
  type MergeSummary,
} from "./storage.js";
export { type RawBlock, BlockCutter, marshalBlock, marshalBlockAt, marshaledBlockSize, unmarshalBlock, decodeBlock, decodeBlockTimestamps, decodeBlockTimestampsNear, decodeBlockValues, blockTimestampsProgression, blockProgression } from "./block.js";
export {
  type Samples,
  mergeSeriesBlocks,
  normalizeSamples,
  deduplicateSamples,
  compareDuplicateValues,
  isStaleNaN,
  STALE_NAN,
} from "./dedup.js";
export { ByteBuffer } from "./bytes.js";
export { MEMORY_SHARES, memoryCaps, withMemoryCaps, type MemoryCaps } from "./memory.js";
export type { SeriesIndex } from "./series-index.js";
export { type TSID, TSID_SIZE, compareTSID, decodeTSID, encodeTSID } from "./tsid.js";
export type { TsdbStatus, TsdbStatusEntry, TsdbStatusRequest } from "./indexdb/status.js";
export { MAX_BLOCK_SAMPLES } from "./constants.js";
export { IndexDB, type IndexDBOptions } from "./indexdb/index.js";
