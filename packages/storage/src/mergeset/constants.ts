/** File names, magic numbers and limits of the mergeset on-disk format (docs/format/indexdb.md). */

export const PARTS_JSON = "parts.json";
export const PARTS_DIR = "parts";
export const TMP_DIR = "tmp";
export const METADATA_JSON = "metadata.json";
export const ITEMS_BIN = "items.bin";
export const METAINDEX_BIN = "metaindex.bin";

/** "SMS1": Strata MergeSet metaindex (its version field says the part format). */
export const METAINDEX_MAGIC = 0x534d_5331;
/** parts.json layout. */
export const PARTS_JSON_VERSION = 1;
/** Part format 1: row-wise block payloads (cpl, suffix length, suffix per item), lz4 or none. Read only. */
export const PART_FORMAT_V1 = 1;
/** Part format 2: columnar block payloads (common prefix, cpl column, length column, suffixes), brotli or none. */
export const PART_FORMAT_V2 = 2;
/** The format new parts are written in. */
export const PART_FORMAT_VERSION = PART_FORMAT_V2;

/** Block payload codecs (one byte in each metaindex row). */
export const CODEC_NONE = 0;
/** lz4 block format with the u32le uncompressed size prepended (@strata/encoding lz4Compress); format 1 only. */
export const CODEC_LZ4 = 1;
/** Brotli (RFC 7932, node:zlib brotliCompressSync); format 2 only. */
export const CODEC_BROTLI = 2;
/**
 * Brotli quality of CODEC_BROTLI for a part of `items` items (like VictoriaMetrics' compress
 * level by part size): small parts, which merges soon rewrite, are written fast; parts of 2^20
 * items and more are written smaller. On 100k node_exporter-like series (blocks of 22 MB
 * before compression): quality 2 → 43.7 bytes/series in 205 cpu-ms, quality 4 → 40.5 in
 * 362 cpu-ms (deflate level 6: 43.8 in 491); all decode as fast as inflate. Quality 1 costs
 * about half of quality 2 per block: flush-sized parts (< 2^18 items) use it, and merges up to
 * 2^20 items quality 2 (at 2^18 they ran at 4 and took ~7% of a storage node's CPU while a
 * million new series arrived).
 */
export function brotliQualityFor(items: number): number {
  return items < 1 << 18 ? 1 : items < 1 << 20 ? 2 : 4;
}

/** Raw (uncompressed) bytes of items after which a block is closed. */
export const DEFAULT_BLOCK_SIZE = 16 * 1024;
/** A single item may not be larger than this. */
export const MAX_ITEM_SIZE = 64 * 1024;
export const BLOOM_BIN = "bloom.bin";
/** "SBF1": Strata bloom filter, version 1. */
export const BLOOM_MAGIC = 0x5342_4631;
