import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BadDataError, type CacheStats, DAY_MS, errorMessage, ExecutionError, type LabelMatcher, type Tenant, TwoGenCache } from "@strata/core";
import { DATA_DIR, INDEXDB_DIR, SNAPSHOTS_DIR, WAL_DIR } from "./constants.js";
import { newCounters, type Counters } from "./counters.js";
import { DiskSpace, type ReadOnlyEvent } from "./disk-space.js";
import type { TsdbStatus, TsdbStatusRequest } from "./indexdb/status.js";
import { IndexDB, type IndexDBOptions, type WritePathCache } from "./indexdb/index.js";
import { MergeAbortedError } from "./merge.js";
import { MergeScheduler } from "./merge-scheduler.js";
import type { IndexBlockCache } from "./part.js";
import { RowsBuffer } from "./rows-buffer.js";
import { RowsFlusher } from "./rows-flush.js";
import { RowsScanner } from "./rows-scan.js";
import { StorageCursor, type SearchOptions, type SeriesCursor } from "./search.js";
import { SeriesCache } from "./series-cache.js";
import { withMemoryCaps } from "./memory.js";
import type { SeriesIndex } from "./series-index.js";
import { createSnapshot, deleteSnapshot, listSnapshots, snapshotName, snapshotPath } from "./snapshot.js";
import { Table } from "./table.js";
import { readSegment, segmentName, Wal } from "./wal.js";
import { defaultLog } from "./log.js";

export type { SearchOptions, SearchedSeries, SeriesCursor } from "./search.js";

/** Free disk space is checked this often (read-only mode). */
const FREE_SPACE_CHECK_MS = 1000;

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
  /**
   * Series in the rows buffer at which a flush into an in-memory part starts before the interval
   * is up (in slices, as the periodic one); at twice this many the flush runs at once. The
   * buffer's drain scratch (the series' TSIDs in TSID order, row offsets: ~70 bytes a series)
   * is sized by the series of one drain: without this bound a node with 500k series that fall
   * behind by a few seconds drained them all at once and kept ~60 MiB of scratch. Default 65536.
   */
  maxSeriesPerRowsFlush?: number;
  /** Rows buffer → searchable in-memory part interval. Default 1000 ms. */
  flushIntervalMs?: number;
  /**
   * In-memory parts → on-disk part interval (WAL segments are dropped after), counted from the
   * end of the previous disk flush, whatever started it. Default 5000 ms.
   */
  diskFlushIntervalMs?: number;
  /**
   * In-memory parts larger than this in total make writers wait for the disk flush; the flush
   * starts at half of it. Default 64 MiB.
   */
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
  /**
   * A partition's fresh on-disk parts (cheap layouts) are merged once none has come for this
   * long (ms), even below maxPartsPerPartition. Default 30 s; 0: never.
   */
  freshPartsMaxAgeMs?: number;
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
  /** Called with errors of background flushes and merges (also counted in background_errors_total). Default: logged as JSON (pino). */
  onBackgroundError?: (err: unknown) => void;
  /**
   * Called when a disk flush dropped in-memory parts, with their bytes: their ArrayBuffers are
   * garbage from then on, and V8 frees buffers that old only at a full GC, so a caller may run
   * one (the storage service does, through GcAfterFreed of @strata/core). Default: nothing.
   */
  onBuffersFreed?: (bytes: number) => void;
  /**
   * Called with events an operator should see in the log: entering and leaving read-only
   * mode, damaged or torn WAL records skipped at replay. Default: logged as JSON (pino).
   */
  onEvent?: (event: StorageEvent) => void;
}

/** Operator-visible events of a Storage (see StorageOptions.onEvent). */
export type StorageEvent =
  | ReadOnlyEvent
  | { readonly kind: "wal_damaged"; readonly file: string; readonly offset: number; readonly bytes: number }
  | { readonly kind: "wal_torn"; readonly file: string; readonly offset: number };

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

/**
 * One storage node's durable store (DESIGN.md §4). Open with `Storage.open`, always `close()`.
 * All methods must be called from one thread; reads are consistent with concurrent writes,
 * flushes and merges. See README.md for the contract of each method.
 *
 * The facade over the engine's parts: the write path (WAL → series resolution → rows buffer)
 * lives here; partitions and retention in Table (table.ts), the sliced rows flush in
 * RowsFlusher (rows-flush.ts), disk flushes and merges in MergeScheduler (merge-scheduler.ts),
 * search cursors in search.ts, snapshots in snapshot.ts, the inverted index in ./indexdb.
 */
export class Storage {
  private readonly retentionMs: number;
  readonly dedupIntervalMs: number;
  private readonly now: () => number;
  private readonly opts: Required<Omit<StorageOptions, "index" | "indexOptions" | "now" | "onBackgroundError" | "onEvent" | "onBuffersFreed" | "allowedMemoryBytes">>;
  private readonly table: Table;
  private readonly indexBlockCache: IndexBlockCache;
  private readonly rows: RowsBuffer;
  private readonly rowsFlusher: RowsFlusher;
  private readonly merges: MergeScheduler;
  private readonly counters: Counters = newCounters();
  private closed = false;
  private closing = false;
  private diskFlushRunning: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** The periodic disk flush, armed when a disk flush ends (undefined while one runs, and before open ends). */
  private diskFlushTimer: NodeJS.Timeout | undefined;
  private timersStarted = false;
  private readonly onBackgroundError: (err: unknown) => void;
  private readonly onEvent: (event: StorageEvent) => void;
  private wal!: Wal;
  private readonly space: DiskSpace;

  private constructor(
    readonly dir: string,
    private readonly index: SeriesIndex,
    options: StorageOptions,
    private readonly seriesCache: SeriesCache,
  ) {
    this.retentionMs = options.retentionMs ?? 31 * DAY_MS;
    this.dedupIntervalMs = options.dedupIntervalMs ?? 0;
    this.now = options.now ?? Date.now;
    this.onBackgroundError = options.onBackgroundError ?? ((err) => defaultLog("strata-storage").error({ err: errorMessage(err) }, "background flush/merge failed"));
    this.onEvent = options.onEvent ?? ((e) => defaultLog("strata-storage").warn({ event: e }, "storage event"));
    this.opts = {
      retentionMs: this.retentionMs,
      futureRetentionMs: options.futureRetentionMs ?? 2 * DAY_MS,
      dedupIntervalMs: this.dedupIntervalMs,
      walFsyncIntervalMs: options.walFsyncIntervalMs ?? 1000,
      walMaxSegmentBytes: options.walMaxSegmentBytes ?? 64 << 20,
      walMaxPendingBytes: options.walMaxPendingBytes ?? 512 << 20,
      maxRowsBuffer: options.maxRowsBuffer ?? 1_000_000,
      maxSeriesPerRowsFlush: Math.max(1, options.maxSeriesPerRowsFlush ?? 65_536),
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      diskFlushIntervalMs: options.diskFlushIntervalMs ?? 5000,
      maxInmemoryPartsBytes: options.maxInmemoryPartsBytes ?? 64 << 20,
      seriesCacheBytes: options.seriesCacheBytes ?? DEFAULT_SERIES_CACHE_BYTES,
      indexBlockCacheBytes: options.indexBlockCacheBytes ?? 32 << 20,
      maxPartsPerPartition: options.maxPartsPerPartition ?? 8,
      mergeFanIn: Math.max(2, options.mergeFanIn ?? 16),
      maxConcurrentMerges: Math.max(1, options.maxConcurrentMerges ?? 1),
      freshPartsMaxAgeMs: Math.max(0, options.freshPartsMaxAgeMs ?? 30_000),
      bigPartRows: options.bigPartRows ?? 10_000_000,
      maxSeriesPerSearch: options.maxSeriesPerSearch ?? 1_000_000,
      minFreeDiskSpaceBytes: Math.max(0, options.minFreeDiskSpaceBytes ?? 0),
    };
    this.indexBlockCache = new TwoGenCache<number, Uint8Array>(this.opts.indexBlockCacheBytes, (_k, b) => b.length + 64);
    this.rows = new RowsBuffer(this.opts.maxRowsBuffer, this.seriesCache.table, 2 * this.opts.maxSeriesPerRowsFlush);
    this.space = new DiskSpace(dir, this.opts.minFreeDiskSpaceBytes, this.onEvent);
    this.table = new Table(dir, this.indexBlockCache);
    const backgroundError = (err: unknown): void => this.backgroundError(err);
    this.rowsFlusher = new RowsFlusher({
      rows: this.rows,
      table: this.table,
      dedupIntervalMs: this.dedupIntervalMs,
      counters: this.counters,
      partsPushed: () => {
        // The disk flush starts at half the cap: the parts that rows flushes push while it
        // writes (seconds at a million series) pile up on top of those it writes, and starting
        // at the cap took the node to 1.5× the cap at each flush. Writers wait only at the cap.
        if (this.table.inmemoryBytes > this.opts.maxInmemoryPartsBytes / 2 && this.diskFlushRunning === undefined) {
          void this.flushToDisk().catch(backgroundError);
        }
      },
      isClosed: () => this.closed,
      backgroundError,
    });
    this.merges = new MergeScheduler({
      table: this.table,
      index,
      space: this.space,
      counters: this.counters,
      dedupIntervalMs: this.dedupIntervalMs,
      opts: this.opts,
      retentionMinT: () => this.retentionMinT(),
      isClosed: () => this.closed,
      isStopping: () => this.closed || this.closing,
      backgroundError,
      buffersFreed: options.onBuffersFreed ?? (() => undefined),
    });
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
    const seriesCache = new SeriesCache(options.seriesCacheBytes ?? DEFAULT_SERIES_CACHE_BYTES);
    const index =
      options.index ??
      (await IndexDB.open(join(dir, INDEXDB_DIR), {
        ...iopts,
        // The series cache is the index's name → TSID cache on the write path (one copy of each name).
        writePathCache: writePathCache(seriesCache),
        // Pruned series lose their metricIDs: cached TSIDs of them must not be reused.
        onPrune: () => {
          iopts.onPrune?.();
          seriesCache.clear();
        },
        // The index's background failures count and are reported like the store's own.
        onError: (err) => {
          if (iopts.onError !== undefined) iopts.onError(err);
          else if (owner.storage !== undefined) owner.storage.backgroundError(err);
          else defaultLog("strata-storage").error({ err: errorMessage(err) }, "index background work failed");
        },
      }));
    const s = new Storage(dir, index, options, seriesCache);
    owner.storage = s;
    let opened: Wal | undefined;
    try {
      s.table.load();
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

  private startTimers(): void {
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.flushIntervalMs, () => this.guard(() => this.rowsFlusher.flushInSlices()));
    this.timersStarted = true;
    this.armDiskFlushTimer();
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
   * `expectedRows`, when given, is the row count the sender declared: a batch with another
   * count is rejected as malformed (checked in the same pass as the framing).
   */
  async addRows(batch: Uint8Array, lz4?: Uint8Array, expectedRows?: number): Promise<void> {
    this.addRowsSync(batch, lz4, expectedRows);
    // Backpressure: when flushing to disk falls behind, writers wait for it (bounds memory and
    // the WAL; a busy event loop would otherwise starve the flush). A flush that fails leaves
    // the rows in memory and in the WAL: this batch is stored, but the caller learns that the
    // node cannot keep up (and reroutes).
    if (this.table.inmemoryBytes > this.opts.maxInmemoryPartsBytes || this.wal.pendingBytes > this.opts.walMaxPendingBytes) {
      this.counters.backpressureWaits++;
      try {
        await (this.diskFlushRunning ?? this.flushToDisk());
      } catch (err) {
        throw this.space.failed(err, "flushing to disk");
      }
    }
    // Likewise when merges fall behind and on-disk parts pile up.
    while (this.merges.runningCount > 0 && this.table.maxDiskParts() > 4 * this.opts.maxPartsPerPartition) {
      this.counters.backpressureWaits++;
      await this.merges.waitAny();
    }
  }

  /** Synchronous form of addRows (same contract): returns the number of rows accepted. */
  addRowsSync(batch: Uint8Array, lz4?: Uint8Array, expectedRows?: number): number {
    this.checkOpen();
    const rows = validateBatch(batch);
    if (expectedRows !== undefined && rows !== expectedRows) {
      throw new BadDataError(`rows batch holds ${rows} rows, the request says ${expectedRows}`, "STRATA_CORRUPT_DATA");
    }
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
      const accepted = this.ingest(batch);
      // Many series waiting: drain them now rather than at the interval (a no-op while a sliced
      // flush runs; the buffer is `full`, and flushed at once, at twice as many).
      if (this.rows.seriesCount >= this.opts.maxSeriesPerRowsFlush) this.rowsFlusher.flushInSlices();
      return accepted;
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
    let ref = -1;
    let accepted = 0;
    while (r.next()) {
      const t = r.timestamp;
      // A dropped row's series is not resolved, so `ref` no longer belongs to the previous row:
      // the next row must not take it on the strength of sameAsPrevious.
      if (t < minT) {
        this.counters.rowsDroppedTooOld++;
        ref = -1;
        continue;
      }
      if (t > maxT) {
        this.counters.rowsDroppedTooNew++;
        ref = -1;
        continue;
      }
      const day = Math.floor(t / DAY_MS);
      // The table's columns are read through it: a new series may grow them into new arrays.
      if (!r.sameAsPrevious || ref < 0) ref = this.resolveSeries(r, day);
      else if (this.seriesCache.table.day[ref] !== day) ref = this.touchDay(ref, r.name(), day);
      this.rows.addRow(ref, r);
      accepted++;
      if (this.rows.full) this.rowsFlusher.flush();
    }
    this.counters.rowsAdded += accepted;
    return accepted;
  }

  /** The series ref (SeriesCache) of the row's metric name, resolved through the index on a miss. */
  private resolveSeries(r: RowsScanner, day: number): number {
    const ref = this.seriesCache.getRange(r.dv, r.nameStart, r.nameEnd);
    if (ref < 0) {
      this.counters.seriesCacheMisses++;
      // The index and the cache copy what they keep: a view into the batch is enough.
      const name = r.name();
      return this.seriesCache.set(name, this.index.getOrCreateTSID(name, day), day);
    }
    return this.seriesCache.table.day[ref] !== day ? this.touchDay(ref, r.name(), day) : ref;
  }

  private touchDay(ref: number, name: Uint8Array, day: number): number {
    // The index records (day, series) for the per-day index; it dedups repeated calls.
    const tsid = this.index.getOrCreateTSID(name, day);
    this.counters.indexDayUpdates++;
    const t = this.seriesCache.table;
    t.day[ref] = day;
    if (tsid.metricID === t.metricID(ref)) return ref;
    // The index no longer knows the cached id (pruned past retention): a new series for the rows buffer.
    return this.seriesCache.set(name, tsid, day);
  }

  private retentionMinT(): number {
    return this.now() - this.retentionMs;
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
    clearTimeout(this.diskFlushTimer);
    this.diskFlushTimer = undefined;
    const run = this.doFlushToDisk().finally(() => {
      this.diskFlushRunning = undefined;
      this.armDiskFlushTimer();
    });
    this.diskFlushRunning = run;
    return run;
  }

  /**
   * Schedules the periodic disk flush diskFlushIntervalMs from now (called when a disk flush
   * ends). Counting from the last flush, not on a fixed grid: a flush that the in-memory parts
   * started (at half the cap) is not followed a moment later by the timer's, which would write
   * a tiny part (and the merges to absorb it) — with a fixed grid, a rate that fills half the
   * cap in just under the interval made twice the disk parts.
   */
  private armDiskFlushTimer(): void {
    if (!this.timersStarted || this.closing || this.closed || this.diskFlushRunning !== undefined) return;
    clearTimeout(this.diskFlushTimer);
    const t = setTimeout(() => {
      this.diskFlushTimer = undefined;
      void this.flushToDisk().catch((err: unknown) => this.backgroundError(err));
    }, this.opts.diskFlushIntervalMs);
    t.unref();
    this.diskFlushTimer = t;
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
    await this.rowsFlusher.flushSliced();
    for (const p of [...this.table.partitions.values()]) {
      // In chunks of at most mergeFanIn in-memory parts (bounded fan-in and memory).
      const pending = [...p.inmem];
      while (pending.length > 0 && !p.dropped) await this.merges.flushInmemoryParts(p, pending.splice(0, this.opts.mergeFanIn));
    }
    await this.wal.removeSegmentsBefore(walSeq);
    this.counters.diskFlushes++;
    this.merges.schedule();
  }

  /** Drops partitions entirely older than the retention, and the index's days before it. */
  private dropExpiredPartitions(): void {
    const minT = this.retentionMinT();
    this.counters.partitionsDropped += this.table.dropBefore(minT);
    void this.index.dropDaysBefore(Math.floor(minT / DAY_MS)).catch((err: unknown) => this.backgroundError(err));
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
    if (effMinT > maxT) return new StorageCursor(this.cursorSource, [], [], effMinT, maxT, 0);
    const tsids = this.index.searchTSIDs(tenant, matchers, effMinT, maxT, maxSeries);
    // Blocks up to maxT + dedup interval: a reader deduplicating needs the whole last interval.
    const past = Math.max(this.dedupIntervalMs, opts.readPastMs ?? 0);
    const fetchMaxT = past > 0 ? maxT + past : maxT;
    const parts = this.table.acquireParts(effMinT, fetchMaxT);
    return new StorageCursor(this.cursorSource, tsids, parts, effMinT, maxT, fetchMaxT, opts.reuseBlockBuffers === true);
  }

  /**
   * Metric names of the matching series of `tenant` with samples on the days of [minT, maxT], by
   * the index alone (no block is read; VictoriaMetrics answers /api/v1/series this way). Throws
   * like `search` past `maxSeries`. Do not modify the arrays.
   */
  searchMetricNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries?: number): Uint8Array[] {
    this.checkOpen();
    this.counters.searches++;
    const effMinT = Math.max(minT, this.retentionMinT());
    if (effMinT > maxT) return [];
    return this.index.searchMetricNames(tenant, matchers, effMinT, maxT, maxSeries ?? this.opts.maxSeriesPerSearch);
  }

  private readonly cursorSource = {
    metricNameOf: (metricID: number): Uint8Array | undefined => this.index.metricNameByID(metricID),
    countSearched: (series: number, blocks: number, fileReads: number, readBuffers: number): void => {
      this.counters.searchSeries += series;
      this.counters.searchBlocks += blocks;
      this.counters.searchFileReads += fileReads;
      this.counters.searchReadBuffers += readBuffers;
    },
  };

  /**
   * `listener` runs synchronously after every index change that can alter a labelNames,
   * labelValues or search answer (new series, a series' first sample of a day, deletes,
   * retention): watchers of the index learn of a new series before its write is acknowledged.
   */
  onIndexChange(listener: () => void): void {
    this.index.onChange(listener);
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
    for (const p of [...this.table.partitions.values()]) {
      if (p.name.startsWith(partitionPrefix)) await this.merges.mergePartition(p);
    }
    if (partitionPrefix === "") await this.index.forceMerge(); // the whole index, like the data: one part
    return {
      merges: this.counters.merges - before.merges,
      rowsIn: this.counters.mergeRowsIn - before.rowsIn,
      rowsOut: this.counters.mergeRowsOut - before.rowsOut,
    };
  }

  /**
   * Creates a snapshot: flushes, then hard-links every on-disk part (and the index's immutable
   * parts) under `<dir>/snapshots/<name>`. Returns the name (`YYYYMMDDhhmmss-<seq>`).
   */
  async createSnapshot(): Promise<string> {
    this.checkOpen();
    await this.flushToDisk();
    const name = snapshotName(this.now(), this.table.nextSequence());
    await createSnapshot(this.dir, name, this.table, this.index);
    this.counters.snapshotsCreated++;
    return name;
  }

  /** Names of the existing snapshots, oldest first. */
  listSnapshots(): string[] {
    return listSnapshots(this.dir);
  }

  /** Path of a snapshot directory (a storage dir that Storage.open can read). */
  snapshotPath(name: string): string {
    return snapshotPath(this.dir, name);
  }

  /** Deletes a snapshot; NotFoundError when it does not exist. */
  deleteSnapshot(name: string): void {
    deleteSnapshot(this.dir, name);
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
    const t = this.table.stats(this.opts.bigPartRows);
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
      rows_buffer_series: this.rows.seriesCount,
      rows_buffer_max_series: this.rows.maxSeries,
      rows_buffer_bytes: this.rows.sizeBytes,
      inmemory_parts: t.inmemParts,
      inmemory_rows: t.inmemRows,
      inmemory_parts_bytes: this.table.inmemoryBytes,
      inmemory_parts_max_bytes: this.opts.maxInmemoryPartsBytes,
      small_parts: t.smallParts,
      big_parts: t.bigParts,
      disk_parts_bytes: t.diskBytes,
      disk_rows: t.diskRows,
      disk_blocks: t.blocks,
      partitions: this.table.partitions.size,
      partitions_dropped_total: c.partitionsDropped,
      inmemory_flushes_total: c.inmemoryFlushes,
      disk_flushes_total: c.diskFlushes,
      inmemory_parts_freed_bytes_total: c.inmemoryBytesFreed,
      merges_total: c.merges,
      merges_running: this.merges.runningCount,
      merge_rows_in_total: c.mergeRowsIn,
      merge_rows_out_total: c.mergeRowsOut,
      merge_blocks_copied_total: c.mergeBlocksCopied,
      merge_blocks_decoded_total: c.mergeBlocksDecoded,
      merge_errors_total: c.mergeErrors,
      fresh_part_merges_total: c.freshPartMerges,
      background_errors_total: c.backgroundErrors,
      searches_total: c.searches,
      search_series_total: c.searchSeries,
      search_blocks_total: c.searchBlocks,
      search_file_reads_total: c.searchFileReads,
      search_read_buffers_total: c.searchReadBuffers,
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
    clearTimeout(this.diskFlushTimer);
    this.diskFlushTimer = undefined;
    try {
      await this.flushToDisk();
    } finally {
      this.closed = true;
      await this.merges.settle();
      this.wal.close();
      this.table.close();
      await this.index.close();
    }
  }
}

class StrataErrorClosed extends ExecutionError {
  constructor() {
    super("storage is closed", "STRATA_CLOSED");
  }
}

/** Checks a batch's framing, names and timestamps; returns its row count. */
function validateBatch(batch: Uint8Array): number {
  const r = new RowsScanner(batch);
  let prevEmpty = true;
  let rows = 0;
  while (r.next()) {
    rows++;
    if (prevEmpty || !r.sameAsPrevious) {
      const n = r.nameEnd - r.nameStart;
      if (n < 8) throw new BadDataError(`rows batch: metric name of ${n} bytes, want >= 8`, "STRATA_CORRUPT_DATA");
    }
    prevEmpty = false;
    const t = r.timestamp;
    if (!Number.isSafeInteger(t)) throw new BadDataError(`rows batch: timestamp ${t} is not a safe integer`, "STRATA_INVALID_TIMESTAMP");
  }
  return rows;
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

const DEFAULT_SERIES_CACHE_BYTES = 64 << 20;

/** The series cache as the index's WritePathCache: what it saves on close and loads on open. */
function writePathCache(c: SeriesCache): WritePathCache {
  return {
    *saved() {
      for (const [name, ref] of c.all()) yield [name, c.table.tsidOf(ref), c.table.day[ref]!] as const;
    },
    load: (name, tsid, day) => c.set(name, tsid, day),
    clear: () => c.clear(),
  };
}
