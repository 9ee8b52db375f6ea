/** File names, magic numbers and limits of the on-disk format (docs/format/storage.md). */

export const WAL_DIR = "wal";
export const DATA_DIR = "data";
export const INDEXDB_DIR = "indexdb";
export const SNAPSHOTS_DIR = "snapshots";
export const LOCK_FILE = "flock.lock";

export const PARTS_JSON = "parts.json";
export const METADATA_JSON = "metadata.json";
export const TIMESTAMPS_BIN = "timestamps.bin";
export const VALUES_BIN = "values.bin";
export const INDEX_BIN = "index.bin";
export const METAINDEX_BIN = "metaindex.bin";

/** Prefix of a part directory being written; removed on open when found. */
export const TMP_PREFIX = "tmp.";
/** Suffix of a partition directory being dropped; removed on open when found. */
export const DELETED_SUFFIX = ".deleted";

/** First 8 bytes of a WAL segment written before records could hold lz4 payloads (read only). */
export const WAL_MAGIC_V1 = new TextEncoder().encode("STRWAL01");
/** First 8 bytes of every WAL segment written now (docs/format/storage.md). */
export const WAL_MAGIC = new TextEncoder().encode("STRWAL02");
export const WAL_RECORD_HEADER = 8; // u32 length (+ lz4 flag in STRWAL02) + u32 crc32
/** STRWAL02: bit 31 of a record's length word marks an lz4 payload. */
export const WAL_LZ4_FLAG = 0x80000000;
/** Largest rows batch a compressed WAL record may decompress to. */
export const WAL_MAX_BATCH_BYTES = 512 * 1024 * 1024;
export const WAL_SEGMENT_SUFFIX = ".wal";

/** A block holds at most this many samples of one series. */
export const MAX_BLOCK_SAMPLES = 8192;
/**
 * Block headers per index block in index.bin (≈ 72 KiB raw, like VictoriaMetrics' 64 KiB index
 * blocks). Each block is one deflate call whose fixed cost (a new zlib stream) dominated at 256
 * headers: 1024 cost about half the CPU per header to deflate and a third to inflate. Readers
 * take any count the metaindex row gives (parts written with 256 read unchanged).
 */
export const MAX_HEADERS_PER_INDEX_BLOCK = 1024;

export const TSID_BYTES = 24;
/** Block header as stored in index.bin (see blockheader layout in docs/format/storage.md). */
export const BLOCK_HEADER_BYTES = 72;
/** Metaindex row as stored in metaindex.bin. */
export const METAINDEX_ROW_BYTES = 56;
/** Version byte of a block in its wire form (marshalBlock). */
export const BLOCK_WIRE_VERSION = 1;
export const BLOCK_WIRE_HEADER_BYTES = 55;

export const PART_FORMAT_VERSION = 1;
/**
 * Parts that hold inline one-sample blocks (fresh parts: in-memory and disk flushes, since
 * 2026-12-07); everything else of format 1 is unchanged, so readers take both, and a build
 * that knows only format 1 refuses such a part instead of misreading it.
 */
export const PART_FORMAT_INLINE = 2;

