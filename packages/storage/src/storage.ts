import { existsSync, linkSync, mkdirSync, readdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises";
import {
  DAY_MS,
  BadDataError,
  ExecutionError,
  type LabelMatcher,
  type Tenant,
  TwoGenCache,
  type CacheStats,
} from "@strata/core";
import type { BlockHeader, RawBlock } from "./block.js";
import {
  DATA_DIR,
  DELETED_SUFFIX,
  INDEXDB_DIR,
  INDEX_BIN,
  METADATA_JSON,
  METAINDEX_BIN,
  PARTS_JSON,
  SNAPSHOTS_DIR,
  TIMESTAMPS_BIN,
  TMP_PREFIX,
  VALUES_BIN,
  WAL_DIR,
} from "./constants.js";
import { deduplicateSamples, normalizeSamples } from "./dedup.js";
import { DiskSpace, type ReadOnlyEvent } from "./disk-space.js";
import { fsyncDir, removeDir, writeFileAtomic } from "./fsutil.js";
import { MergeAbortedError, mergeParts } from "./merge.js";
import { Part, PartWriter, ReadScratch, type IndexBlockCache } from "./part.js";
import { monthOf, monthStart, parsePartitionName, Partition, type PartsJson } from "./partition.js";
import { RowsBuffer, TSID_WORDS, type DrainedRows, type SeriesEntry } from "./rows-buffer.js";
import { RowsScanner } from "./rows-scan.js";
import { SeriesCache } from "./series-cache.js";
import { withMemoryCaps } from "./memory.js";
import type { SeriesIndex } from "./series-index.js";
import type { TsdbStatus, TsdbStatusRequest } from "./indexdb/status.js";
import { tsidBytes, tsidMetricID, type TSID } from "./tsid.js";
import { readSegment, segmentName, Wal } from "./wal.js";
import { IndexDB, type IndexDBOptions } from "./indexdb/index.js";

/** A periodic rows flush works this long before it lets the event loop run. */
const ROWS_FLUSH_SLICE_MS = 5;
/** Free disk space is checked this often (read-only mode). */
const FREE_SPACE_CHECK_MS = 1000;
/** A background merge that failed is not retried before this long. */
const MERGE_RETRY_MS = 5000;

/** A rows-buffer drain being written into in-memory parts (see Storage.flushRowsInSlices). */
interface RowsFlushJob {
  readonly drained: DrainedRows;
  readonly rowsTotal: number;
  /** Next position in drained.slots to write. */
  o: number;
  curStart: number;
  curEnd: number;
  curWriter: PartWriter | undefined;
  readonly writers: Map<number, PartWriter>;
}

/** Options of `Storage.open`. Every cache and buffer has a cap here and a gauge in `metrics()`. */
export interface StorageOptions {
  /** Samples older than now − retention are dropped (on ingest, at merge, whole partitions). Default 31 days. */
  retentionMs?: number;
  /** Samples newer than now + this are dropped on ingest (counted): no query reaches them. Default 2 days. */
  futureRetentionMs?: number;
  /** -dedup.minScrapeInterval in ms; 0 (default) keeps every distinct timestamp. */
  dedupIntervalMs?: number;
  /** fsync the WAL every this many ms (0 = fsync on every addRows). Default 1000. */
  walFsyncIntervalMs?: number;
  /** Start a new WAL segment past this size. Default 64 MiB. */
  walMaxSegmentBytes?: number;
  /** WAL bytes not yet covered by on-disk parts before writers wait for a flush. Default 512 MiB. */
  walMaxPendingBytes?: number;
  /** Rows buffered in memory before they become an in-memory part. Default 1M (≈ 20 MB). */
  maxRowsBuffer?: number;
  /** Rows buffer → searchable in-memory part interval. Default 1000 ms. */
  flushIntervalMs?: number;
  /** In-memory parts → on-disk part interval (WAL segments are dropped after). Default 5000 ms. */
  diskFlushIntervalMs?: number;
  /** In-memory parts larger than this in total are written to disk at once. Default 64 MiB. */
  maxInmemoryPartsBytes?: number;
  /**
   * Memory this node's caches and buffers may use together (-memory.allowedPercent /
   * -memory.allowedBytes): every cap not set here (or in `indexOptions`) is a share of it
   * (see MEMORY_SHARES in memory.ts). Unset: each cap has its fixed default.
   */
  allowedMemoryBytes?: number;
  /** Series lookup cache (metric-name bytes → TSID) cap in bytes. Default 64 MiB. */
  seriesCacheBytes?: number;
  /** Decompressed index-block cache cap in bytes. Default 32 MiB. */
  indexBlockCacheBytes?: number;
  /** Merge a partition's on-disk parts once there are more than this many. Default 8. */
  maxPartsPerPartition?: number;
  /** At most this many parts go into one merge (bounded fan-in). Default 16. */
  mergeFanIn?: number;
  /** Concurrent background merges. Default 1. */
  maxConcurrentMerges?: number;
  /** Parts with at least this many rows count as "big" in metrics. Default 10M. */
  bigPartRows?: number;
  /** Default series limit of a search. Default 1M. */
  maxSeriesPerSearch?: number;
  /** Clock (ms), injectable for retention tests. Default Date.now. */
  now?: () => number;
  /** The inverted index to use (tests). Default: IndexDB opened in `<dir>/indexdb`. */
  index?: SeriesIndex;
  /** Options passed to IndexDB.open when `index` is not given (its caches are capped there). */
  indexOptions?: IndexDBOptions;
  /**
   * Below this many free bytes on the data directory's filesystem the node is read-only:
   * addRows rejects with UnavailableError (STRATA_READ_ONLY) until space returns; searches,
   * flushes and merges go on. A write that fails with ENOSPC turns it read-only at once.
   * Default 0: no read-only mode (a WAL append failing with ENOSPC still rejects with
   * STRATA_DISK_FULL and leaves nothing behind).
   */
  minFreeDiskSpaceBytes?: number;
  /** Called with errors of background flushes and merges. Default: console.error. */
  onBackgroundError?: (err: unknown) => void;
  /**
   * Called with events an operator should see in the log: entering and leaving read-only
   * mode, damaged or torn WAL records skipped at replay. Default: console.warn.
   */
  onEvent?: (event: StorageEvent) => void;
}

/** Operator-visible events of a Storage (see StorageOptions.onEvent). */
export type StorageEvent =
  | ReadOnlyEvent
  | { readonly kind: "wal_damaged"; readonly file: string; readonly offset: number; readonly bytes: number }
  | { readonly kind: "wal_torn"; readonly file: string; readonly offset: number };

export interface SearchOptions {
  /** Fail with ExecutionError (STRATA_LIMIT_EXCEEDED) when more series match. */
  maxSeries?: number;
  /**
   * Block payloads (`timestamps`, `values`) are read into memory the cursor reuses: they are
   * valid only until the next `next()` or `close()`. For callers that copy or decode each
   * series before moving on; saves a buffer per block.
   */
  reuseBlockBuffers?: boolean;
}

/** One series found by `search`: its name and its blocks as stored (compressed). */
export interface SearchedSeries {
  readonly tsid: TSID;
  /** Canonical metric-name bytes (decodeMetricName from @strata/core). */
  readonly metricName: Uint8Array;
  /**
   * Blocks overlapping the searched range (they may hold samples outside it, and may overlap
   * each other when they come from different parts): decode with `mergeSeriesBlocks(blocks,
   * cursor.minT, cursor.maxT, dedupIntervalMs)`.
   */
  readonly blocks: readonly RawBlock[];
}

/**
 * Cursor over search results, in TSID order: `while (c.next()) use(c.at())`; `close()` when
 * stopping early (it is closed automatically at the end). The cursor holds references on the
 * parts it reads, so merges and retention never pull data from under it. Not for concurrent use.
 */
export interface SeriesCursor {
  /** Effective range: the requested one, with minT clamped to the retention. */
  readonly minT: number;
  readonly maxT: number;
  /** Number of series the index matched (some may turn out to have no blocks in range). */
  readonly seriesMatched: number;
  next(): boolean;
  at(): SearchedSeries;
  close(): void;
}

export interface SnapshotInfo {
  name: string;
  path: string;
}

/** Statistics returned by forceMerge. */
export interface MergeSummary {
  merges: number;
  rowsIn: number;
  rowsOut: number;
}

interface Counters {
  rowsAdded: number;
  rowsDroppedTooOld: number;
  rowsDroppedTooNew: number;
  rowsDroppedDeleted: number;
  batchesAdded: number;
  rowsFlushed: number;
  inmemoryFlushes: number;
  diskFlushes: number;
  merges: number;
  mergeRowsIn: number;
  mergeRowsOut: number;
  mergeErrors: number;
  backgroundErrors: number;
  partitionsDropped: number;
  searches: number;
  searchSeries: number;
  searchBlocks: number;
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

/**
 * One storage node's durable store (DESIGN.md §4). Open with `Storage.open`, always `close()`.
 * All methods must be called from one thread; reads are consistent with concurrent writes,
 * flushes and merges. See README.md for the contract of each method.
 */
export class Storage {
  private readonly retentionMs: number;
  readonly dedupIntervalMs: number;
  private readonly now: () => number;
  private readonly opts: Required<Omit<StorageOptions, "index" | "indexOptions" | "now" | "onBackgroundError" | "onEvent" | "allowedMemoryBytes">>;
  private readonly partitions = new Map<number, Partition>();
  private readonly seriesCache: SeriesCache;
  private readonly indexBlockCache: IndexBlockCache;
  private readonly rows: RowsBuffer;
  private readonly counters: Counters = {
    rowsAdded: 0,
    rowsDroppedTooOld: 0,
    rowsDroppedTooNew: 0,
    rowsDroppedDeleted: 0,
    batchesAdded: 0,
    rowsFlushed: 0,
    inmemoryFlushes: 0,
    diskFlushes: 0,
    merges: 0,
    mergeRowsIn: 0,
    mergeRowsOut: 0,
    mergeErrors: 0,
    backgroundErrors: 0,
    partitionsDropped: 0,
    searches: 0,
    searchSeries: 0,
    searchBlocks: 0,
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
  private nextPartSeq = 1;
  private closed = false;
  private closing = false;
  private diskFlushRunning: Promise<void> | undefined;
  private readonly runningMerges = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly onBackgroundError: (err: unknown) => void;
  private readonly onEvent: (event: StorageEvent) => void;
  private wal!: Wal;
  private readonly space: DiskSpace;
  /** Background merges wait until then after one failed (a full disk fails them all). */
  private mergeRetryAt = 0;
  private inmemoryBytes = 0;
  /** The drained rows being written into in-memory parts in slices, if any. */
  private rowsFlush: RowsFlushJob | undefined;

  private constructor(
    readonly dir: string,
    private readonly index: SeriesIndex,
    options: StorageOptions,
  ) {
    this.retentionMs = options.retentionMs ?? 31 * DAY_MS;
    this.dedupIntervalMs = options.dedupIntervalMs ?? 0;
    this.now = options.now ?? Date.now;
    this.onBackgroundError = options.onBackgroundError ?? ((err) => console.error("strata storage background error:", err));
    this.onEvent = options.onEvent ?? ((e) => console.warn("strata storage:", JSON.stringify(e)));
    this.opts = {
      retentionMs: this.retentionMs,
      futureRetentionMs: options.futureRetentionMs ?? 2 * DAY_MS,
      dedupIntervalMs: this.dedupIntervalMs,
      walFsyncIntervalMs: options.walFsyncIntervalMs ?? 1000,
      walMaxSegmentBytes: options.walMaxSegmentBytes ?? 64 << 20,
      walMaxPendingBytes: options.walMaxPendingBytes ?? 512 << 20,
      maxRowsBuffer: options.maxRowsBuffer ?? 1_000_000,
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      diskFlushIntervalMs: options.diskFlushIntervalMs ?? 5000,
      maxInmemoryPartsBytes: options.maxInmemoryPartsBytes ?? 64 << 20,
      seriesCacheBytes: options.seriesCacheBytes ?? 64 << 20,
      indexBlockCacheBytes: options.indexBlockCacheBytes ?? 32 << 20,
      maxPartsPerPartition: options.maxPartsPerPartition ?? 8,
      mergeFanIn: Math.max(2, options.mergeFanIn ?? 16),
      maxConcurrentMerges: Math.max(1, options.maxConcurrentMerges ?? 1),
      bigPartRows: options.bigPartRows ?? 10_000_000,
      maxSeriesPerSearch: options.maxSeriesPerSearch ?? 1_000_000,
      minFreeDiskSpaceBytes: Math.max(0, options.minFreeDiskSpaceBytes ?? 0),
    };
    this.seriesCache = new SeriesCache(this.opts.seriesCacheBytes);
    this.indexBlockCache = new TwoGenCache<number, Uint8Array>(this.opts.indexBlockCacheBytes, (_k, b) => b.length + 64);
    this.rows = new RowsBuffer(this.opts.maxRowsBuffer);
    this.space = new DiskSpace(dir, this.opts.minFreeDiskSpaceBytes, this.onEvent);
  }

  /**
   * Opens (or creates) the store in `dir`: removes leftovers of interrupted writes, loads the
   * parts listed in each partition's parts.json, replays the WAL into the rows buffer, drops
   * partitions past retention and starts the background flush/merge timers.
   */
  static async open(dir: string, opts: StorageOptions = {}): Promise<Storage> {
    const options = withMemoryCaps(opts);
    mkdirSync(join(dir, DATA_DIR), { recursive: true });
    mkdirSync(join(dir, SNAPSHOTS_DIR), { recursive: true });
    const owner: { storage?: Storage } = {};
    const iopts = options.indexOptions ?? {};
    const index =
      options.index ??
      (await openIndexDB(join(dir, INDEXDB_DIR), {
        ...iopts,
        // Pruned series lose their metricIDs: cached TSIDs of them must not be reused.
        onPrune: () => {
          iopts.onPrune?.();
          owner.storage?.seriesCache.clear();
        },
      }));
    const s = new Storage(dir, index, options);
    owner.storage = s;
    let opened: Wal | undefined;
    try {
      s.loadPartitions();
      const { wal, segments } = Wal.open(join(dir, WAL_DIR), s.opts.walFsyncIntervalMs, s.opts.walMaxSegmentBytes);
      s.wal = opened = wal;
      for (const seg of segments) {
        const r = readSegment(wal.dir, seg, (batch) => {
          s.counters.walReplayedBatches++;
          s.counters.walReplayedRows += s.ingest(batch);
        });
        const file = join(wal.dir, segmentName(seg));
        if (r.torn) {
          s.counters.walTornSegments++;
          s.onEvent({ kind: "wal_torn", file, offset: r.tornAt });
        }
        for (const d of r.damaged) {
          s.counters.walDamagedRecords++;
          s.counters.walDamagedBytes += d.bytes;
          s.onEvent({ kind: "wal_damaged", file, offset: d.offset, bytes: d.bytes });
        }
      }
      s.dropExpiredPartitions();
      s.space.check();
    } catch (err) {
      opened?.close();
      if (options.index === undefined) await index.close().catch(() => undefined);
      throw s.space.failed(err, "cannot start: replaying the WAL (it records new series in the index, which needs a little free space; free some and start again, nothing was lost)");
    }
    s.startTimers();
    return s;
  }

  private loadPartitions(): void {
    const dataDir = join(this.dir, DATA_DIR);
    for (const f of readdirSync(dataDir)) {
      if (f.endsWith(DELETED_SUFFIX) || f.startsWith(TMP_PREFIX)) {
        removeDir(join(dataDir, f));
        continue;
      }
      const month = parsePartitionName(f);
      if (month === undefined) continue;
      const p = Partition.open(dataDir, month, this.indexBlockCache);
      this.partitions.set(month, p);
      for (const part of p.disk) this.nextPartSeq = Math.max(this.nextPartSeq, parseInt(part.name, 16) + 1);
    }
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.flushIntervalMs, () => this.guard(() => this.flushRowsInSlices()));
    every(this.opts.diskFlushIntervalMs, () => void this.flushToDisk().catch((err: unknown) => this.backgroundError(err)));
    every(60_000, () => this.guard(() => this.dropExpiredPartitions()));
    every(FREE_SPACE_CHECK_MS, () => this.guard(() => this.space.check()));
  }

  /** True while writes are refused for lack of disk space (see StorageOptions.minFreeDiskSpaceBytes). */
  get readOnly(): boolean {
    return this.space.readOnly;
  }

  /** The window of timestamps this node stores (-retentionPeriod, -futureRetention), told to insert by Ping_v1. */
  get retention(): { readonly retentionMs: number; readonly futureRetentionMs: number } {
    return { retentionMs: this.retentionMs, futureRetentionMs: this.opts.futureRetentionMs };
  }

  private guard(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.backgroundError(err);
    }
  }

  private backgroundError(err: unknown): void {
    if (err instanceof MergeAbortedError) return;
    this.counters.backgroundErrors++;
    this.onBackgroundError(err);
  }

  private checkOpen(): void {
    if (this.closed || this.closing) throw new StrataErrorClosed();
  }

  // ---- write path ---------------------------------------------------------------------------

  /**
   * Adds a rows batch v1 (@strata/core RowsBatchWriter). Resolves once the batch is written to
   * the WAL (write(2) done; fsync follows within walFsyncIntervalMs) and buffered; the rows are
   * searchable after the next flush (≈ flushIntervalMs). Rejects with BadDataError when the batch
   * is malformed (nothing of it is written). Rows older than the retention or newer than
   * now + futureRetentionMs are dropped (counted in rows_dropped_too_{old,new}_total).
   * `lz4`, when given, is the batch as an lz4 block (@strata/encoding lz4Compress layout, e.g.
   * the WriteRows_v1 payload) that decompresses to exactly `batch`: the WAL stores it instead.
   */
  async addRows(batch: Uint8Array, lz4?: Uint8Array): Promise<void> {
    this.addRowsSync(batch, lz4);
    // Backpressure: when flushing to disk falls behind, writers wait for it (bounds memory and
    // the WAL; a busy event loop would otherwise starve the flush). A flush that fails leaves
    // the rows in memory and in the WAL: this batch is stored, but the caller learns that the
    // node cannot keep up (and reroutes).
    if (this.inmemoryBytes > this.opts.maxInmemoryPartsBytes || this.wal.pendingBytes > this.opts.walMaxPendingBytes) {
      this.counters.backpressureWaits++;
      try {
        await (this.diskFlushRunning ?? this.flushToDisk());
      } catch (err) {
        throw this.space.failed(err, "flushing to disk");
      }
    }
    // Likewise when merges fall behind and on-disk parts pile up.
    while (this.runningMerges.size > 0 && this.maxDiskParts() > 4 * this.opts.maxPartsPerPartition) {
      this.counters.backpressureWaits++;
      await Promise.race(this.runningMerges);
    }
  }

  private maxDiskParts(): number {
    let n = 0;
    for (const p of this.partitions.values()) if (p.disk.length > n) n = p.disk.length;
    return n;
  }

  /** Synchronous form of addRows (same contract): returns the number of rows accepted. */
  addRowsSync(batch: Uint8Array, lz4?: Uint8Array): number {
    this.checkOpen();
    validateBatch(batch);
    if (this.space.readOnly) {
      this.counters.readOnlyRejects++;
      throw this.space.readOnlyError();
    }
    if (batch.length === 0) return 0;
    try {
      this.wal.append(batch, lz4);
    } catch (err) {
      // Nothing of the batch is in the WAL (Wal.append undoes a partial record).
      throw this.space.failed(err, "WAL write");
    }
    this.counters.batchesAdded++;
    try {
      return this.ingest(batch);
    } catch (err) {
      // A new series' id could not be made durable (ENOSPC): the batch is in the WAL, so the
      // rows that are not buffered come back at replay; the caller is not told it succeeded.
      throw this.space.failed(err, "indexing new series");
    }
  }

  /** Resolves series and buffers rows. The batch must already be in the WAL. */
  private ingest(batch: Uint8Array): number {
    // RowsScanner: metric names as offsets into the batch, looked up in the series cache
    // straight from the batch bytes — nothing is allocated per row for known series.
    const r = new RowsScanner(batch);
    const minT = this.retentionMinT();
    const maxT = this.now() + this.opts.futureRetentionMs;
    let entry: SeriesEntry | undefined;
    let accepted = 0;
    while (r.next()) {
      const t = r.timestamp;
      if (t < minT) {
        this.counters.rowsDroppedTooOld++;
        continue;
      }
      if (t > maxT) {
        this.counters.rowsDroppedTooNew++;
        continue;
      }
      const day = Math.floor(t / DAY_MS);
      if (!r.sameAsPrevious || entry === undefined) entry = this.resolveSeries(r, day);
      else if (entry.day !== day) entry = this.touchDay(entry, r.name(), day);
      this.rows.add(entry, t, r.value);
      accepted++;
      if (this.rows.full) this.flushRows();
    }
    this.counters.rowsAdded += accepted;
    return accepted;
  }

  private resolveSeries(r: RowsScanner, day: number): SeriesEntry {
    let e = this.seriesCache.getRange(r.dv, r.nameStart, r.nameEnd);
    if (e === undefined) {
      this.counters.seriesCacheMisses++;
      // The index and the cache copy what they keep: a view into the batch is enough.
      const name = r.name();
      e = newSeriesEntry(this.index.getOrCreateTSID(name, day), day);
      this.seriesCache.set(name, e);
    } else if (e.day !== day) {
      e = this.touchDay(e, r.name(), day);
    }
    return e;
  }

  private touchDay(e: SeriesEntry, name: Uint8Array, day: number): SeriesEntry {
    // The index records (day, series) for the per-day index; it dedups repeated calls.
    const tsid = this.index.getOrCreateTSID(name, day);
    this.counters.indexDayUpdates++;
    e.day = day;
    if (tsid.metricID === e.metricID) return e;
    // The index no longer knows the cached id (pruned past retention): use the new one.
    const fresh = newSeriesEntry(tsid, day);
    this.seriesCache.set(name, fresh);
    return fresh;
  }

  private retentionMinT(): number {
    return this.now() - this.retentionMs;
  }

  /**
   * Turns the rows buffer into searchable in-memory parts (one per partition touched), now:
   * finishes a sliced flush still running first (its rows were buffered earlier).
   */
  private flushRows(): void {
    const running = this.rowsFlush;
    if (running !== undefined) this.runRowsFlush(running, Infinity);
    if (this.rows.n === 0) return;
    this.runRowsFlush(this.startRowsFlush(), Infinity);
  }

  /**
   * The periodic flush: flushRows in slices of at most ROWS_FLUSH_SLICE_MS with the event loop
   * served in between (a second of rows is ~100 ms of work that would otherwise stall every
   * WriteRows_v1 call). The drained rows are searchable once the last slice pushed the parts,
   * as with flushRows; anything that needs them (a disk flush, close, a full buffer) runs the
   * rest synchronously through flushRows.
   */
  private flushRowsInSlices(): void {
    if (this.rowsFlush !== undefined || this.rows.n === 0) return;
    const job = this.startRowsFlush();
    const step = (): void => {
      if (this.rowsFlush !== job || this.closed) return; // finished by flushRows meanwhile
      try {
        if (!this.runRowsFlush(job, performance.now() + ROWS_FLUSH_SLICE_MS)) setImmediate(step);
      } catch (err) {
        this.backgroundError(err);
      }
    };
    step();
  }

  /**
   * flushRows in slices with the event loop served in between: resolves once every row
   * buffered when it was called is in an in-memory part (a running sliced flush is finished
   * first, then the buffer is drained once).
   */
  private async flushRowsSliced(): Promise<void> {
    for (let job = this.rowsFlush; job !== undefined; job = this.rowsFlush) {
      // Someone else's job (the periodic one): step it here too; flushRows may also finish it.
      if (!this.runRowsFlush(job, performance.now() + ROWS_FLUSH_SLICE_MS)) await yieldToLoop();
    }
    if (this.rows.n === 0) return;
    const job = this.startRowsFlush();
    // Stop stepping once it is finished, here or by a synchronous flushRows meanwhile.
    while (this.rowsFlush === job && !this.runRowsFlush(job, performance.now() + ROWS_FLUSH_SLICE_MS)) await yieldToLoop();
  }

  private startRowsFlush(): RowsFlushJob {
    const rowsTotal = this.rows.n;
    const job: RowsFlushJob = {
      drained: this.rows.drain(),
      rowsTotal,
      o: 0,
      curStart: 0,
      curEnd: -1,
      curWriter: undefined,
      writers: new Map(),
    };
    this.rowsFlush = job;
    return job;
  }

  /** Works on job until it is done (true: its parts are pushed) or past `deadline` (false). */
  private runRowsFlush(job: RowsFlushJob, deadline: number): boolean {
    try {
      if (!this.writeDrainedRows(job, deadline)) return false;
    } catch (err) {
      this.rowsFlush = undefined; // its rows stay in the WAL only, like a failed flush before
      throw err;
    }
    this.rowsFlush = undefined;
    for (const [month, w] of job.writers) {
      const written = w.finish();
      const part = Part.fromMemory(this.newPartName(), written, this.indexBlockCache);
      this.partitionFor(month).inmem.push(part);
      this.inmemoryBytes += part.sizeBytes;
      this.counters.rowsFlushed += written.meta.rows;
    }
    this.counters.inmemoryFlushes++;
    if (this.inmemoryBytes > this.opts.maxInmemoryPartsBytes && this.diskFlushRunning === undefined) {
      void this.flushToDisk().catch((err: unknown) => this.backgroundError(err));
    }
    return true;
  }

  /** Writes the drained series from job.o on; false when it stopped at the deadline. */
  private writeDrainedRows(job: RowsFlushJob, deadline: number): boolean {
    const { count, slots, starts, tsids, ts, vals } = job.drained;
    const dedup = this.dedupIntervalMs;
    let curStart = job.curStart;
    let curEnd = job.curEnd;
    let curWriter = job.curWriter;
    let o = job.o;
    for (; o < count; o++) {
      if ((o & 255) === 255 && performance.now() > deadline) break;
      const slot = slots[o]!;
      const a = starts[slot]!;
      let b = starts[slot + 1]!;
      // Common case: one row per scrape, in order — nothing to sort or deduplicate.
      let clean = dedup === 0;
      for (let i = a + 1; clean && i < b; i++) clean = ts[i]! > ts[i - 1]!;
      if (!clean) {
        const t = ts.subarray(a, b);
        const v = vals.subarray(a, b);
        let n = normalizeSamples(t, v, b - a);
        n = deduplicateSamples(t, v, n, dedup);
        b = a + n;
      }
      let i = a;
      while (i < b) {
        const t = ts[i]!;
        if (t < curStart || t > curEnd || curWriter === undefined) {
          const month = monthOf(t);
          curStart = monthStart(month);
          curEnd = monthStart(month + 1) - 1;
          curWriter = job.writers.get(month);
          if (curWriter === undefined) {
            curWriter = new PartWriter(undefined, dedup, false, { rows: job.rowsTotal, blocks: count });
            job.writers.set(month, curWriter);
          }
        }
        let j = b;
        if (ts[b - 1]! > curEnd) {
          j = i + 1;
          while (j < b && ts[j]! <= curEnd) j++;
        }
        curWriter.writeSamplesFast(tsids, slot * TSID_WORDS, ts, vals, i, j);
        i = j;
      }
    }
    job.o = o;
    job.curStart = curStart;
    job.curEnd = curEnd;
    job.curWriter = curWriter;
    return o >= count;
  }

  private newPartName(): string {
    return (this.nextPartSeq++).toString(16).padStart(16, "0");
  }

  private partitionFor(month: number): Partition {
    let p = this.partitions.get(month);
    if (p === undefined) {
      p = Partition.create(join(this.dir, DATA_DIR), month);
      this.partitions.set(month, p);
    }
    return p;
  }

  /**
   * Writes every acknowledged row into on-disk parts, then drops the WAL segments that held
   * them. Order: seal the WAL segment → rows to in-memory parts → merge them into a part in a temp dir →
   * fsync → rename → indexdb.flush() → parts.json → drop WAL segments.
   */
  private flushToDisk(): Promise<void> {
    if (this.diskFlushRunning !== undefined) {
      // Chain: a caller that wants everything up to now on disk waits for a fresh run.
      return this.diskFlushRunning.then(() => this.flushToDisk());
    }
    const run = this.doFlushToDisk().finally(() => {
      this.diskFlushRunning = undefined;
    });
    this.diskFlushRunning = run;
    return run;
  }

  private async doFlushToDisk(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flushToDiskOnce();
    } catch (err) {
      this.space.failed(err, "flushing to disk");
      throw err;
    }
  }

  /**
   * One disk flush. When a part cannot be written (ENOSPC …) the error propagates before the
   * WAL segments are touched: the rows stay in in-memory parts and in the WAL, and the next
   * flush retries them.
   */
  private async flushToDiskOnce(): Promise<void> {
    const walSeq = this.wal.seal();
    // Every row appended before the rotation becomes an in-memory part, in slices.
    await this.flushRowsSliced();
    for (const p of [...this.partitions.values()]) {
      // In chunks of at most mergeFanIn in-memory parts (bounded fan-in and memory).
      const pending = [...p.inmem];
      while (pending.length > 0 && !p.dropped) await this.flushInmemoryParts(p, pending.splice(0, this.opts.mergeFanIn));
    }
    await this.wal.removeSegmentsBefore(walSeq);
    this.counters.diskFlushes++;
    this.scheduleMerges();
  }

  /** Writes in-memory parts of p as one on-disk part and lists it (index flushed first). */
  private async flushInmemoryParts(p: Partition, sources: readonly Part[]): Promise<void> {
    // Fresh small parts keep cheap layouts: a background merge encodes them fully, with
    // more samples per block (encoding ~1 s of one series per block costs more than it saves).
    const part = await this.writeMergedPart(p, sources, false);
    try {
      await this.index.flush();
    } catch (err) {
      dropUnlisted(part);
      throw err;
    }
    await p.withLock(async () => {
      let next: Part[] | undefined;
      if (!p.dropped) {
        next = part === undefined ? p.disk : [...p.disk, part];
        // fsyncs off the event loop; the part becomes visible (and the sources go) together below.
        try {
          await writePartsJsonUnlessDropped(p, next);
        } catch (err) {
          // Not listed: the part goes, its rows stay in the in-memory sources (and the WAL).
          dropUnlisted(part);
          throw err;
        }
      }
      if (p.dropped) {
        // Retention dropped the partition meanwhile: the new part goes with it.
        if (part !== undefined) {
          part.removeOnFree = true;
          part.release();
        }
      } else {
        p.disk = next!;
      }
      for (const s of sources) {
        const i = p.inmem.indexOf(s);
        if (i < 0) continue; // released by the retention drop already
        p.inmem.splice(i, 1);
        this.inmemoryBytes -= s.sizeBytes;
        s.release();
      }
    });
  }

  /** Merges `sources` into a new on-disk part of partition p (undefined when nothing is left). */
  private async writeMergedPart(p: Partition, sources: readonly Part[], fullCodecs = true): Promise<Part | undefined> {
    const name = this.newPartName();
    const tmp = join(p.dir, TMP_PREFIX + name);
    // The partition directory is made by its first on-disk part (in-memory parts need none).
    mkdirSync(p.dir, { recursive: true });
    mkdirSync(tmp);
    let w: PartWriter;
    try {
      w = new PartWriter(tmp, this.dedupIntervalMs, fullCodecs);
    } catch (err) {
      removeDir(tmp);
      throw err;
    }
    let stats;
    try {
      stats = await mergeParts(sources, w, {
        dedupIntervalMs: this.dedupIntervalMs,
        minTimestamp: this.retentionMinT(),
        isDeleted: (id) => this.index.isDeleted(id),
        aborted: () => this.closed,
      });
      await w.finishAsync();
    } catch (err) {
      w.abort();
      removeDir(tmp);
      throw err;
    }
    this.counters.mergeRowsIn += stats.rowsIn;
    this.counters.rowsDroppedDeleted += stats.rowsDeleted;
    if (stats.rowsOut === 0) {
      removeDir(tmp);
      return undefined;
    }
    const final = join(p.dir, name);
    try {
      renameSync(tmp, final);
      fsyncDir(p.dir);
      const part = Part.open(final, name, this.indexBlockCache);
      this.counters.mergeRowsOut += stats.rowsOut;
      return part;
    } catch (err) {
      removeDir(tmp);
      removeDir(final);
      throw err;
    }
  }

  // ---- merges & retention --------------------------------------------------------------------

  private scheduleMerges(): void {
    if (this.closed || this.closing || Date.now() < this.mergeRetryAt) return;
    for (const p of this.partitions.values()) {
      if (this.runningMerges.size >= this.opts.maxConcurrentMerges) return;
      const free = p.disk.filter((x) => !p.merging.has(x));
      if (free.length <= this.opts.maxPartsPerPartition) continue;
      free.sort((a, b) => a.meta.rows - b.meta.rows);
      this.startMerge(p, pickMergeSources(free, this.opts.mergeFanIn));
    }
  }

  private startMerge(p: Partition, sources: Part[]): Promise<void> {
    for (const s of sources) {
      s.acquire();
      p.merging.add(s);
    }
    const run = this.mergeInto(p, sources)
      .catch((err: unknown) => {
        if (!(err instanceof MergeAbortedError)) {
          this.counters.mergeErrors++;
          // The sources stay as they are; retrying at once would fail the same way.
          this.mergeRetryAt = Date.now() + MERGE_RETRY_MS;
          this.space.failed(err, "merging parts");
        }
        this.backgroundError(err);
      })
      .finally(() => {
        for (const s of sources) {
          p.merging.delete(s);
          s.release();
        }
        this.runningMerges.delete(run);
        this.scheduleMerges();
      });
    this.runningMerges.add(run);
    return run;
  }

  private async mergeInto(p: Partition, sources: Part[]): Promise<void> {
    const part = await this.writeMergedPart(p, sources);
    await p.withLock(async () => {
      if (!p.dropped) {
        const next = p.disk.filter((x) => !sources.includes(x));
        if (part !== undefined) next.push(part);
        // fsyncs off the event loop; the swap below is synchronous.
        try {
          await writePartsJsonUnlessDropped(p, next);
        } catch (err) {
          dropUnlisted(part);
          throw err;
        }
        if (!p.dropped) {
          for (const s of sources) {
            if (p.disk.includes(s)) {
              s.removeOnFree = true;
              s.release();
            }
          }
          p.disk = next;
          return;
        }
      }
      // Retention dropped the partition meanwhile: the new part goes with it.
      if (part !== undefined) {
        part.removeOnFree = true;
        part.release();
      }
    });
    this.counters.merges++;
  }

  /** Drops partitions entirely older than the retention, and parts entirely past it. */
  private dropExpiredPartitions(): void {
    const minT = this.retentionMinT();
    const minDay = Math.floor(minT / DAY_MS);
    for (const [month, p] of this.partitions) {
      if (p.maxT >= minT) continue;
      p.dropped = true;
      this.partitions.delete(month);
      const gone = p.dir + DELETED_SUFFIX;
      const onDisk = existsSync(p.dir); // a partition with in-memory parts only has no directory yet
      if (onDisk) {
        renameSync(p.dir, gone);
        fsyncDir(join(this.dir, DATA_DIR));
      }
      for (const part of [...p.inmem, ...p.disk]) this.inmemoryBytes -= part.inMemory ? part.sizeBytes : 0;
      // Parts still read by a search stay open (unlinked files remain readable on Linux).
      p.releaseAll(false);
      removeDir(gone);
      this.counters.partitionsDropped++;
    }
    void this.index.dropDaysBefore(minDay).catch((err: unknown) => this.backgroundError(err));
  }

  // ---- read path -----------------------------------------------------------------------------

  /**
   * Finds the series of `tenant` matching every matcher with samples in [minT, maxT] and returns
   * a cursor over them with their blocks. Deleted series never appear. Throws ExecutionError
   * (STRATA_LIMIT_EXCEEDED) when more than `opts.maxSeries` series match.
   */
  search(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, opts: SearchOptions = {}): SeriesCursor {
    this.checkOpen();
    this.counters.searches++;
    const effMinT = Math.max(minT, this.retentionMinT());
    const maxSeries = opts.maxSeries ?? this.opts.maxSeriesPerSearch;
    if (effMinT > maxT) return new StorageCursor(this, [], [], effMinT, maxT, 0);
    const tsids = this.index.searchTSIDs(tenant, matchers, effMinT, maxT, maxSeries);
    // Blocks up to maxT + dedup interval: a reader deduplicating needs the whole last interval.
    const fetchMaxT = this.dedupIntervalMs > 0 ? maxT + this.dedupIntervalMs : maxT;
    const parts: Part[] = [];
    for (const p of this.partitions.values()) {
      if (p.maxT < effMinT || p.minT > fetchMaxT) continue;
      p.acquireParts(effMinT, fetchMaxT, parts);
    }
    return new StorageCursor(this, tsids, parts, effMinT, maxT, fetchMaxT, opts.reuseBlockBuffers === true);
  }

  /** @internal used by the cursor */
  metricNameOf(metricID: number): Uint8Array | undefined {
    return this.index.metricNameByID(metricID);
  }

  /** @internal used by the cursor */
  countSearched(series: number, blocks: number): void {
    this.counters.searchSeries += series;
    this.counters.searchBlocks += blocks;
  }

  /** Label names of the matching series with samples on the days of [minT, maxT]. */
  labelNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit = 100_000): string[] {
    this.checkOpen();
    return this.index.labelNames(tenant, matchers, Math.max(minT, this.retentionMinT()), maxT, limit);
  }

  /** Values of `labelName` over the matching series with samples on the days of [minT, maxT]. */
  labelValues(tenant: Tenant, labelName: string, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit = 100_000): string[] {
    this.checkOpen();
    return this.index.labelValues(tenant, labelName, matchers, Math.max(minT, this.retentionMinT()), maxT, limit);
  }

  /** Number of (not deleted) series of the tenant. */
  seriesCount(tenant: Tenant): number {
    this.checkOpen();
    return this.index.seriesCount(tenant);
  }

  /** Cardinality statistics of one day (see TsdbStatus). */
  tsdbStatus(tenant: Tenant, req: TsdbStatusRequest): TsdbStatus {
    this.checkOpen();
    return this.index.tsdbStatus(tenant, req);
  }

  /**
   * Deletes the matching series of the tenant; returns how many. First writes all acknowledged
   * rows to disk (so a WAL replay can never resurrect them), then marks them deleted in the
   * index. Deleted series never come back (merges drop their blocks); new samples for the same
   * name create a new series.
   */
  async deleteSeries(tenant: Tenant, matchers: readonly LabelMatcher[]): Promise<number> {
    this.checkOpen();
    if (matchers.length === 0) throw new BadDataError("deleteSeries: at least one matcher is required");
    await this.flushToDisk();
    const n = this.index.deleteSeries(tenant, matchers);
    await this.index.flush();
    this.seriesCache.clear();
    return n;
  }

  // ---- maintenance ---------------------------------------------------------------------------

  /** Makes every acknowledged row searchable and durable in on-disk parts; drops WAL segments. */
  async forceFlush(): Promise<void> {
    this.checkOpen();
    await this.flushToDisk();
  }

  /**
   * Flushes, then merges each partition's on-disk parts down to one (in rounds of at most
   * mergeFanIn parts), applying dedup, retention and deletes. `partitionPrefix` (e.g. "2026_11")
   * limits it to matching partitions; without one the index is merged to one part as well.
   */
  async forceMerge(partitionPrefix = ""): Promise<MergeSummary> {
    this.checkOpen();
    await this.flushToDisk();
    const before = { merges: this.counters.merges, rowsIn: this.counters.mergeRowsIn, rowsOut: this.counters.mergeRowsOut };
    this.dropExpiredPartitions();
    for (const p of [...this.partitions.values()]) {
      if (!p.name.startsWith(partitionPrefix)) continue;
      for (;;) {
        while (p.merging.size > 0) await Promise.race([...this.runningMerges, sleep(50)]);
        if (p.dropped || this.closed) break;
        if (p.disk.length === 0) break;
        if (p.disk.length === 1 && !this.partNeedsRewrite(p.disk[0]!)) break;
        const sorted = [...p.disk].sort((a, b) => a.meta.rows - b.meta.rows);
        const errors = this.counters.mergeErrors;
        await this.startMerge(p, sorted.slice(0, this.opts.mergeFanIn));
        // A failing merge would fail again: report instead of retrying forever.
        if (this.counters.mergeErrors !== errors) throw new ExecutionError(`forceMerge: merging partition ${p.name} failed (see background errors)`, "STRATA_INTERNAL");
      }
    }
    if (partitionPrefix === "") await this.index.forceMerge(); // the whole index, like the data: one part
    return {
      merges: this.counters.merges - before.merges,
      rowsIn: this.counters.mergeRowsIn - before.rowsIn,
      rowsOut: this.counters.mergeRowsOut - before.rowsOut,
    };
  }

  /** A lone part still needs a rewrite when it holds expired samples or deleted series. */
  private partNeedsRewrite(part: Part): boolean {
    if (part.meta.fastLayouts === true || part.meta.minT < this.retentionMinT()) return true;
    if (part.meta.dedupIntervalMs % Math.max(1, this.dedupIntervalMs) !== 0 || part.meta.dedupIntervalMs < this.dedupIntervalMs) return true;
    const c = part.cursor();
    let prev = -1;
    while (c.next()) {
      const id = tsidMetricID(c.header!.tsid, 0);
      if (id === prev) continue;
      prev = id;
      if (this.index.isDeleted(id)) return true;
    }
    return false;
  }

  /**
   * Creates a snapshot: flushes, then hard-links every on-disk part (and the index's immutable
   * parts) under `<dir>/snapshots/<name>`. Returns the name (`YYYYMMDDhhmmss-<seq>`).
   */
  async createSnapshot(): Promise<string> {
    this.checkOpen();
    await this.flushToDisk();
    const d = new Date(this.now());
    const stamp = d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
    const name = `${stamp}-${(this.nextPartSeq++).toString(16).padStart(8, "0")}`;
    const root = join(this.dir, SNAPSHOTS_DIR, name);
    const tmp = join(this.dir, SNAPSHOTS_DIR, TMP_PREFIX + name);
    mkdirSync(join(tmp, DATA_DIR), { recursive: true });
    const held: Part[] = [];
    try {
      for (const p of this.partitions.values()) {
        const parts = [...p.disk];
        for (const part of parts) {
          part.acquire();
          held.push(part);
        }
        const pdir = join(tmp, DATA_DIR, p.name);
        mkdirSync(pdir);
        for (const part of parts) {
          const dst = join(pdir, part.name);
          mkdirSync(dst);
          for (const f of [METADATA_JSON, TIMESTAMPS_BIN, VALUES_BIN, INDEX_BIN, METAINDEX_BIN]) linkSync(join(part.dir!, f), join(dst, f));
        }
        const pj: PartsJson = { version: 1, parts: parts.map((x) => x.name) };
        writeFileAtomic(pdir, PARTS_JSON, JSON.stringify(pj));
      }
      await this.index.snapshot(join(tmp, INDEXDB_DIR));
      renameSync(tmp, root);
      fsyncDir(join(this.dir, SNAPSHOTS_DIR));
    } catch (err) {
      removeDir(tmp);
      throw err;
    } finally {
      for (const part of held) part.release();
    }
    this.counters.snapshotsCreated++;
    return name;
  }

  /** Names of the existing snapshots, oldest first. */
  listSnapshots(): string[] {
    const root = join(this.dir, SNAPSHOTS_DIR);
    if (!existsSync(root)) return [];
    return readdirSync(root)
      .filter((f) => !f.startsWith(TMP_PREFIX))
      .sort();
  }

  /** Path of a snapshot directory (a storage dir that Storage.open can read). */
  snapshotPath(name: string): string {
    validateSnapshotName(name);
    return join(this.dir, SNAPSHOTS_DIR, name);
  }

  /** Deletes a snapshot; NotFound-like BadDataError when it does not exist. */
  deleteSnapshot(name: string): void {
    validateSnapshotName(name);
    const path = join(this.dir, SNAPSHOTS_DIR, name);
    if (!existsSync(path)) throw new BadDataError(`snapshot ${JSON.stringify(name)} does not exist`, "STRATA_NOT_FOUND");
    removeDir(path);
  }

  /**
   * Gauges and counters for /metrics (flat names, no prefix; services add `strata_storage_`).
   * Includes every cap next to its current size, and the index's metrics as `indexdb_*`.
   */
  /** Every bounded cache of the node (the index's included) by `strata_cache_*` type. */
  caches(): Readonly<Record<string, CacheStats>> {
    return { "storage/tsid": this.seriesCache, "storage/indexBlocks": this.indexBlockCache, ...this.index.caches?.() };
  }

  metrics(): Record<string, number> {
    let smallParts = 0;
    let bigParts = 0;
    let diskBytes = 0;
    let diskRows = 0;
    let inmemParts = 0;
    let inmemRows = 0;
    let blocks = 0;
    for (const p of this.partitions.values()) {
      for (const part of p.disk) {
        if (part.meta.rows >= this.opts.bigPartRows) bigParts++;
        else smallParts++;
        diskBytes += part.sizeBytes;
        diskRows += part.meta.rows;
        blocks += part.meta.blocks;
      }
      inmemParts += p.inmem.length;
      for (const part of p.inmem) inmemRows += part.meta.rows;
    }
    const c = this.counters;
    const m: Record<string, number> = {
      rows_added_total: c.rowsAdded,
      batches_added_total: c.batchesAdded,
      rows_dropped_too_old_total: c.rowsDroppedTooOld,
      rows_dropped_too_new_total: c.rowsDroppedTooNew,
      rows_dropped_deleted_total: c.rowsDroppedDeleted,
      rows_flushed_total: c.rowsFlushed,
      rows_buffer_rows: this.rows.n,
      rows_buffer_max_rows: this.rows.maxRows,
      rows_buffer_bytes: this.rows.sizeBytes,
      inmemory_parts: inmemParts,
      inmemory_rows: inmemRows,
      inmemory_parts_bytes: this.inmemoryBytes,
      inmemory_parts_max_bytes: this.opts.maxInmemoryPartsBytes,
      small_parts: smallParts,
      big_parts: bigParts,
      disk_parts_bytes: diskBytes,
      disk_rows: diskRows,
      disk_blocks: blocks,
      partitions: this.partitions.size,
      partitions_dropped_total: c.partitionsDropped,
      inmemory_flushes_total: c.inmemoryFlushes,
      disk_flushes_total: c.diskFlushes,
      merges_total: c.merges,
      merges_running: this.runningMerges.size,
      merge_rows_in_total: c.mergeRowsIn,
      merge_rows_out_total: c.mergeRowsOut,
      merge_errors_total: c.mergeErrors,
      background_errors_total: c.backgroundErrors,
      searches_total: c.searches,
      search_series_total: c.searchSeries,
      search_blocks_total: c.searchBlocks,
      series_cache_entries: this.seriesCache.entries,
      series_cache_bytes: this.seriesCache.sizeBytes,
      series_cache_max_bytes: this.seriesCache.maxBytes,
      series_cache_hits_total: this.seriesCache.hits,
      series_cache_misses_total: this.seriesCache.misses,
      index_block_cache_bytes: this.indexBlockCache.sizeBytes,
      index_block_cache_max_bytes: this.indexBlockCache.maxBytes,
      index_block_cache_hits_total: this.indexBlockCache.hits,
      index_block_cache_misses_total: this.indexBlockCache.misses,
      index_day_updates_total: c.indexDayUpdates,
      wal_bytes_written_total: this.wal.bytesWritten,
      wal_pending_bytes: this.wal.pendingBytes,
      wal_max_pending_bytes: this.opts.walMaxPendingBytes,
      wal_appends_total: this.wal.appends,
      wal_fsyncs_total: this.wal.fsyncs,
      wal_replayed_rows_total: c.walReplayedRows,
      wal_replayed_batches_total: c.walReplayedBatches,
      wal_torn_segments_total: c.walTornSegments,
      wal_damaged_records_total: c.walDamagedRecords,
      wal_damaged_bytes_total: c.walDamagedBytes,
      wal_append_errors_total: this.wal.appendErrors,
      wal_segments_sealed_after_error_total: this.wal.sealedAfterError,
      is_read_only: this.space.readOnly ? 1 : 0,
      read_only_rejected_batches_total: c.readOnlyRejects,
      free_disk_space_bytes: this.space.freeBytes,
      min_free_disk_space_bytes: this.space.minFreeBytes,
      snapshots_created_total: c.snapshotsCreated,
      backpressure_waits_total: c.backpressureWaits,
      retention_ms: this.retentionMs,
      dedup_interval_ms: this.dedupIntervalMs,
    };
    for (const [k, v] of Object.entries(this.index.metrics())) m[`indexdb_${k}`] = v;
    return m;
  }

  /** Bytes used by the data directory's parts on disk (for benchmarks and /metrics). */
  diskUsageBytes(): number {
    return dirSize(join(this.dir, DATA_DIR));
  }

  /**
   * Stops background work, writes every acknowledged row to disk, closes the WAL, the parts and
   * the index. Pending searches keep their parts open until they close. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    try {
      await this.flushToDisk();
    } finally {
      this.closed = true;
      await Promise.allSettled([...this.runningMerges]);
      this.wal.close();
      for (const p of this.partitions.values()) p.releaseAll(false);
      this.partitions.clear();
      await this.index.close();
    }
  }
}

class StrataErrorClosed extends ExecutionError {
  constructor() {
    super("storage is closed", "STRATA_CLOSED");
  }
}

/** The search cursor: walks TSIDs, collecting each one's blocks from every part. */
class StorageCursor implements SeriesCursor {
  private i = -1;
  private current: SearchedSeries | undefined;
  private released = false;
  private readonly headers: BlockHeader[] = [];
  private scratch: ReadScratch | undefined;

  constructor(
    private readonly storage: Storage,
    private readonly tsids: readonly TSID[],
    private readonly parts: Part[],
    readonly minT: number,
    readonly maxT: number,
    private readonly fetchMaxT: number,
    reuseBuffers = false,
  ) {
    if (reuseBuffers) this.scratch = scratches.pop() ?? new ReadScratch();
    if (tsids.length === 0) this.close();
  }

  get seriesMatched(): number {
    return this.tsids.length;
  }

  next(): boolean {
    if (this.released) return false;
    try {
      for (;;) {
        this.i++;
        if (this.i >= this.tsids.length) {
          this.close();
          return false;
        }
        const tsid = this.tsids[this.i]!;
        const key = tsidBytes(tsid);
        const blocks: RawBlock[] = [];
        const scratch = this.scratch;
        scratch?.reset();
        for (const part of this.parts) {
          this.headers.length = 0;
          part.findBlocks(key, this.minT, this.fetchMaxT, this.headers);
          for (const h of this.headers) {
            blocks.push({
              tsid,
              count: h.count,
              minT: h.minT,
              maxT: h.maxT,
              tsTag: h.tsTag,
              valTag: h.valTag,
              timestamps: part.readTimestamps(h, scratch),
              values: part.readValues(h, scratch),
            });
          }
        }
        if (blocks.length === 0) continue;
        const metricName = this.storage.metricNameOf(tsid.metricID);
        if (metricName === undefined) continue;
        this.storage.countSearched(1, blocks.length);
        this.current = { tsid, metricName, blocks };
        return true;
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  at(): SearchedSeries {
    if (this.current === undefined) throw new Error("SeriesCursor.at() before a successful next()");
    return this.current;
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.parts) p.release();
    this.parts.length = 0;
    if (this.scratch !== undefined && scratches.length < MAX_POOLED_SCRATCHES) scratches.push(this.scratch);
    this.scratch = undefined;
  }
}

/** Read buffers of closed cursors, for the next searches. */
const scratches: ReadScratch[] = [];
const MAX_POOLED_SCRATCHES = 8;

/**
 * The parts of one background merge, from `free` sorted by rows ascending: the smallest
 * `fanIn`, less the largest ones while a largest holds more rows than all the others together
 * (rewriting it would cost more than the merge gains: the result would not even be twice its
 * size). So fresh parts merge among themselves and big parts are rewritten only when they have
 * company of about their size — write amplification O(log n) instead of every merge rewriting
 * all data so far. Never fewer than the two smallest.
 */
export function pickMergeSources(free: readonly Part[], fanIn: number): Part[] {
  const pick = free.slice(0, fanIn);
  let rest = 0;
  for (const x of pick) rest += x.meta.rows;
  while (pick.length > 2) {
    const largest = pick[pick.length - 1]!.meta.rows;
    rest -= largest;
    if (largest <= rest) break;
    pick.pop();
  }
  return pick;
}

/** Removes a written part that did not make it into parts.json. */
function dropUnlisted(part: Part | undefined): void {
  if (part === undefined) return;
  part.removeOnFree = true;
  part.release();
}

/** p.writePartsJsonAsync; a failure because retention dropped p meanwhile is no error. */
async function writePartsJsonUnlessDropped(p: Partition, next: readonly Part[]): Promise<void> {
  try {
    await p.writePartsJsonAsync(next);
  } catch (err) {
    if (!p.dropped) throw err;
  }
}

function validateBatch(batch: Uint8Array): void {
  const r = new RowsScanner(batch);
  let prevEmpty = true;
  while (r.next()) {
    if (prevEmpty || !r.sameAsPrevious) {
      const n = r.nameEnd - r.nameStart;
      if (n < 8) throw new BadDataError(`rows batch: metric name of ${n} bytes, want >= 8`, "STRATA_CORRUPT_DATA");
    }
    prevEmpty = false;
    const t = r.timestamp;
    if (!Number.isSafeInteger(t)) throw new BadDataError(`rows batch: timestamp ${t} is not a safe integer`, "STRATA_INVALID_TIMESTAMP");
  }
}

function validateSnapshotName(name: string): void {
  if (!/^[0-9]{14}-[0-9a-f]+$/.test(name)) throw new BadDataError(`invalid snapshot name ${JSON.stringify(name)}`);
}

function dirSize(path: string): number {
  let total = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

function newSeriesEntry(tsid: TSID, day: number): SeriesEntry {
  return {
    accountID: tsid.accountID,
    projectID: tsid.projectID,
    metricGroupID: tsid.metricGroupID,
    jobInstanceID: tsid.jobInstanceID,
    metricID: tsid.metricID,
    day,
    gen: 0,
    slot: 0,
    ord: 0,
    ordPos: 0,
  };
}

async function openIndexDB(dir: string, opts: IndexDBOptions): Promise<SeriesIndex> {
  return IndexDB.open(dir, opts);
}

