import { DAY_MS as DAY, defineFlags, flag, flagsPageFlags } from "@strata/core";
import { httpSecurityFlags } from "@strata/httpsec";
import { clusterTlsServerFlags } from "@strata/protocol";


export const storageFlags = defineFlags({
  // The process flag with storage's own default: its live JS heap is small (20–30 MiB; samples,
  // parts and caches live in ArrayBuffers), and an ArrayBuffer that died (a request's batch, a
  // flushed part's blocks) is freed only by a full GC. At 300% a node held 50 MiB and more of
  // dead buffers at its peak; 100% collects them at 2x the live heap for no measurable CPU
  // (docs/benchmarks.md, "Launch settings and the storage peak").
  "memory.heapGrowthPercent": flag.int(100, "How far (percent) the JS heap may grow past its live size before the next full GC, like Go's GOGC (0: V8's own heuristics)."),
  // In-memory parts live seconds, long enough to be old when a disk flush drops them: V8 frees
  // such ArrayBuffers only at a full GC, which it starts on its own ~64 MiB of external memory
  // later. The node runs one itself each time this much was dropped (docs/benchmarks.md, "A
  // storage node's high-water mark").
  "memory.gcAfterFreedBytes": flag.bytes(
    16 << 20,
    "Run a full JS garbage collection once in-memory parts of this many bytes were written to disk and dropped, so that their memory is freed at once rather than at V8's next full GC (0: leave it to V8).",
  ),
  storageDataPath: flag.string("strata-storage-data", "Path to the directory with the node's data (WAL, parts, index, snapshots, metadata)."),
  retentionPeriod: flag.duration("1", "How long to keep data. A bare number means months (31 days); units: h, d, w, y (e.g. 30d, 1y).", {
    bareNumberMs: 31 * DAY,
  }),
  futureRetention: flag.duration("2d", "Samples with timestamps more than this ahead of now are dropped on ingest (counted in strata_storage_rows_dropped_too_new_total)."),
  "dedup.minScrapeInterval": flag.duration("0s", "Keep one sample per series per this interval (0 keeps every distinct timestamp)."),
  vminsertAddr: flag.string(":8400", "gRPC address that insert nodes write to (WriteRows_v1)."),
  vmselectAddr: flag.string(":8401", "gRPC address that select nodes search (Search_v1 and friends)."),
  httpListenAddr: flag.string(":8482", "HTTP address for /metrics, /health, /-/ready, /snapshot/* and /internal/*."),
  walFsyncInterval: flag.duration("1s", "fsync the WAL this often; 0 fsyncs on every write before acknowledging it."),
  "storage.maxRowsBuffer": flag.int(1_000_000, "Rows buffered in memory before they become an in-memory part."),
  inmemoryDataFlushInterval: flag.duration(
    "5s",
    "Write in-memory parts to disk this long after the previous disk flush ended, or sooner when they pass half of -storage.maxInmemoryPartsSize (then the WAL segments that held their rows are dropped; rows are durable in the WAL before that). Bigger intervals make fewer, bigger fresh parts: fewer merges.",
  ),
  "storage.maxInmemoryPartsSize": flag.bytes(0, "In-memory parts larger than this in total are flushed to disk at once (0: 2% of -memory.allowedPercent's memory, at most 64 MiB)."),
  "storage.maxIndexInmemoryPartsSize": flag.bytes(
    0,
    "The index's in-memory parts larger than this in total are flushed to disk at once (0: 2% of -memory.allowedPercent's memory, at most 64 MiB).",
  ),
  "storage.minFreeDiskSpaceBytes": flag.bytes(
    10_000_000,
    "Below this much free space on -storageDataPath the node turns read-only: it refuses writes (insert reroutes them) and takes them again once space returns. 0 disables read-only mode (a write that hits ENOSPC still fails on its own and leaves nothing behind).",
  ),
  "storage.cacheSizeStorageTSID": flag.bytes(0, "Cap of the metric name → TSID cache (0: 30% of the memory -memory.allowedPercent / -memory.allowedBytes allow)."),
  "storage.cacheSizeIndexDBDataBlocks": flag.bytes(0, "Cap of the decompressed data index-block cache (0: 5% of the allowed memory)."),
  "search.maxUniqueTimeseries": flag.int(1_000_000, "Fail a search that matches more series than this."),
  "metadata.maxEntries": flag.int(1_000_000, "Maximum metric-metadata entries kept (type/help/unit per family and tenant)."),
  loggerLevel: flag.string("INFO", "Minimum log level: DEBUG, INFO, WARN, ERROR."),
  snapshotAuthKey: flag.string("", "Key that /snapshot/* want as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
  forceMergeAuthKey: flag.string("", "Key that /internal/force_merge wants as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
  forceFlushAuthKey: flag.string("", "Key that /internal/force_flush wants as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
  ...flagsPageFlags,
  ...httpSecurityFlags,
  ...clusterTlsServerFlags,
});
