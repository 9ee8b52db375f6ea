/** The counters of one store, shared by its parts (write path, flushes, merges, search); shown by Storage.metrics(). */
export interface Counters {
  rowsAdded: number;
  rowsDroppedTooOld: number;
  rowsDroppedTooNew: number;
  rowsDroppedDeleted: number;
  batchesAdded: number;
  rowsFlushed: number;
  inmemoryFlushes: number;
  diskFlushes: number;
  /** Bytes of in-memory parts dropped once a disk flush wrote them (StorageOptions.onBuffersFreed). */
  inmemoryBytesFreed: number;
  merges: number;
  mergeRowsIn: number;
  mergeRowsOut: number;
  /** Blocks that disk flushes and merges copied as they were (one source, nothing to redo). */
  mergeBlocksCopied: number;
  /** Blocks that disk flushes and merges decoded to write them again. */
  mergeBlocksDecoded: number;
  mergeErrors: number;
  /** Background merges started because a partition's fresh parts stopped coming (not by count). */
  freshPartMerges: number;
  backgroundErrors: number;
  partitionsDropped: number;
  searches: number;
  searchSeries: number;
  searchBlocks: number;
  /** readSync calls for the block payloads of searches (each reads ahead a window of a part file). */
  searchFileReads: number;
  /** Read-ahead buffers searches allocated (they reuse the ones they are done with). */
  searchReadBuffers: number;
  walReplayedRows: number;
  walReplayedBatches: number;
  walTornSegments: number;
  walDamagedRecords: number;
  walDamagedBytes: number;
  readOnlyRejects: number;
  snapshotsCreated: number;
  backpressureWaits: number;
  seriesCacheMisses: number;
  indexDayUpdates: number;
}

export function newCounters(): Counters {
  return {
    rowsAdded: 0,
    rowsDroppedTooOld: 0,
    rowsDroppedTooNew: 0,
    rowsDroppedDeleted: 0,
    batchesAdded: 0,
    rowsFlushed: 0,
    inmemoryFlushes: 0,
    diskFlushes: 0,
    inmemoryBytesFreed: 0,
    merges: 0,
    mergeRowsIn: 0,
    mergeRowsOut: 0,
    mergeBlocksCopied: 0,
    mergeBlocksDecoded: 0,
    mergeErrors: 0,
    freshPartMerges: 0,
    backgroundErrors: 0,
    partitionsDropped: 0,
    searches: 0,
    searchSeries: 0,
    searchBlocks: 0,
    searchFileReads: 0,
    searchReadBuffers: 0,
    walReplayedRows: 0,
    walReplayedBatches: 0,
    walTornSegments: 0,
    walDamagedRecords: 0,
    walDamagedBytes: 0,
    readOnlyRejects: 0,
    snapshotsCreated: 0,
    backpressureWaits: 0,
    seriesCacheMisses: 0,
    indexDayUpdates: 0,
  };
}
