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
/** Part format 2: columnar block payloads (common prefix, cpl column, length column, suffixes), brotli or none. Read only. */
export const PART_FORMAT_V2 = 2;
/** Part format 3: format 2's block payloads, each stored as none, lz4 or brotli. */
export const PART_FORMAT_V3 = 3;
/** The format new parts are written in. */
export const PART_FORMAT_VERSION = PART_FORMAT_V3;

/** Block payload codecs (one byte in each metaindex row). */
export const CODEC_NONE = 0;
/** lz4 block format with the u32le uncompressed size prepended (@strata/encoding lz4Compress); formats 1 and 3. */
export const CODEC_LZ4 = 1;
/** Brotli (RFC 7932, node:zlib brotliCompressSync); formats 2 and 3. */
export const CODEC_BROTLI = 2;

/** How a part's blocks are compressed: a codec and, for brotli, its quality. */
export interface BlockCodec {
  readonly codec: typeof CODEC_LZ4 | typeof CODEC_BROTLI;
  readonly quality: number;
}

/** Merged parts of fewer items than this are written with lz4, larger ones with brotli. */
export const LZ4_MAX_ITEMS = 1 << 20;
/** Merged parts of at least this many items get brotli quality 4, smaller ones quality 2. */
export const BROTLI_Q4_MIN_ITEMS = 1 << 23;

/**
 * The codec of a part of `items` items (like VictoriaMetrics' compress level by part size).
 * Flushes, and merges below 2^20 items, are parts that later merges rewrite: lz4, which on
 * 50k node_exporter-like series (191 payload bytes per series) took 0.32 cpu-µs per series
 * against 0.9–1.9 for brotli quality 1, at 50.8 bytes per series against 39.0. Bigger merged
 * parts are what stays on disk: brotli quality 2 (35.6 bytes per series, ≈ 1.8 cpu-µs) up to
 * 2^23 items (≈ 600k series of 13 items: a node's index at a million series merges such parts
 * while it ingests), quality 4 beyond (33.2 bytes per series, ≈ 3 cpu-µs). A flush is lz4
 * whatever its size: while a million series are created the in-memory cap (64 MiB) flushes
 * parts of more than 2^20 items every few seconds, and the next merge rewrites them anyway.
 */
export function codecFor(items: number, flush: boolean): BlockCodec {
  if (flush || items < LZ4_MAX_ITEMS) return { codec: CODEC_LZ4, quality: 0 };
  return { codec: CODEC_BROTLI, quality: items < BROTLI_Q4_MIN_ITEMS ? 2 : 4 };
}

/** Raw (uncompressed) bytes of items after which a block is closed. */
export const DEFAULT_BLOCK_SIZE = 16 * 1024;
/** A single item may not be larger than this. */
export const MAX_ITEM_SIZE = 64 * 1024;
export const BLOOM_BIN = "bloom.bin";
/** "SBF1": Strata bloom filter, version 1. */
export const BLOOM_MAGIC = 0x5342_4631;
