/** File names, magic numbers and limits of the mergeset on-disk format (docs/format/indexdb.md). */

export const PARTS_JSON = "parts.json";
export const PARTS_DIR = "parts";
export const TMP_DIR = "tmp";
export const METADATA_JSON = "metadata.json";
export const ITEMS_BIN = "items.bin";
export const METAINDEX_BIN = "metaindex.bin";

/** "SMS1": Strata MergeSet metaindex, version 1. */
export const METAINDEX_MAGIC = 0x534d_5331;
export const FORMAT_VERSION = 1;

/** Block payload codecs (one byte in each metaindex row). */
export const CODEC_NONE = 0;
/** lz4 block format with the u32le uncompressed size prepended (@strata/encoding lz4Compress). */
export const CODEC_LZ4 = 1;

/** Raw (uncompressed) bytes of items after which a block is closed. */
export const DEFAULT_BLOCK_SIZE = 16 * 1024;
/** A single item may not be larger than this. */
export const MAX_ITEM_SIZE = 64 * 1024;
export const BLOOM_BIN = "bloom.bin";
/** "SBF1": Strata bloom filter, version 1. */
export const BLOOM_MAGIC = 0x5342_4631;
