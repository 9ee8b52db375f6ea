import * as fs from "node:fs";
import * as path from "node:path";
import { BadDataError, type CacheStats, errorMessage, ExecutionError, type LabelMatcher, type Tenant, TwoGenCache } from "@strata/core";
import { ByteBuffer, latin1, readU32, readU64 } from "../bytes.js";
import { writeFileAtomic } from "../fsutil.js";
import { type Cursor, type Snapshot, Table, type TableOptions } from "../mergeset/index.js";
import { type SavedSeries, loadTsidCache, saveTsidCache } from "./cache-file.js";
import type { IdEntry, NameEntry } from "./entries.js";
import { GoneSeries } from "./gone.js";
import { IdBitmap, type IdSet } from "./idset.js";
import { SeriesWriter } from "./create.js";
import { LabelQueries } from "./labels.js";
import { loadPruneSet, removePruneSet, UnusedSeriesScan, writePruneSet } from "./prune.js";
import { daysFor, MatcherSearch, type IndexReader } from "./search.js";
import {
  KIND_NAMES,
  LabelRanges,
  NS_DAY_ALL,
  NS_DAY_TAG,
  NS_DELETED,
  NS_ID,
  NS_NAME_TO_TSID,
  NS_TAG,
  putScope,
} from "./keys.js";
import { emptyStatus, writeId } from "./scan.js";
import { type TsdbStatus, type TsdbStatusRequest, collectStatus } from "./status.js";
import { type TSID, TSID_SIZE, compareTSID, decodeTSID } from "../tsid.js";
import { defaultLog } from "../log.js";

export { type TSID, TSID_SIZE, compareTSID, decodeTSID, encodeTSID } from "../tsid.js";
export type { TsdbStatus, TsdbStatusEntry, TsdbStatusRequest } from "./status.js";

/**
 * A metric-name → TSID cache in front of the index on the write path (Storage's series cache).
 * With one, the index keeps no second copy of the names it resolves for writes, and the cache
 * saved on close and loaded on open is that cache's content.
 */
export interface WritePathCache {
  /** Every cached series (saved on a clean close). */
  saved(): Iterable<SavedSeries>;
  /** Adds a series saved by the previous clean close (on open; `name` is copied). */
  load(...e: SavedSeries): void;
  /** Forgets what was loaded (the saved file turned out damaged). */
  clear(): void;
}

export interface IndexDBOptions {
  /** Cap of the metricName → TSID cache (default 64 MiB). */
  readonly tsidCacheBytes?: number;
  /** The write path's own name → TSID cache, if any (see WritePathCache). */
  readonly writePathCache?: WritePathCache;
  /** Cap of the metricID → (TSID, metricName) cache (default 32 MiB). */
  readonly metricNameCacheBytes?: number;
  /** Cap of the matcher-result cache (default 32 MiB). */
  readonly tagFiltersCacheBytes?: number;
  /** Cap of the mergeset's decoded-block cache (default 64 MiB). */
  readonly blockCacheBytes?: number;
  /** The index's in-memory parts larger than this in total are flushed to disk at once (default 64 MiB). */
  readonly maxInmemoryPartsBytes?: number;
  /** Longest range (in days) searched through the per-day index; longer uses the global one (default 40). */
  readonly maxDaysForPerDaySearch?: number;
  /** metricIDs reserved (and persisted) at a time (default 65536). */
  readonly idReserve?: number;
  /** Periodic flush of the index to disk in ms; 0 disables (default 5000). */
  readonly flushIntervalMs?: number;
  /** Low-level mergeset options (tests use small buffers to exercise merges). */
  readonly table?: Omit<TableOptions, "keepItem" | "onPendingConverted" | "blockCacheBytes">;
  /** Background failures (default: logged as JSON through pino). */
  readonly onError?: (err: unknown) => void;
  /**
   * Called (synchronously) when series without samples inside the retention were pruned from
   * the index: their metricIDs are gone for good, so callers must forget cached TSIDs.
   */
  readonly onPrune?: () => void;
  /**
   * Label APIs with matchers read the metric names of at most this many matching series;
   * above it they scan the label index instead (default 20000).
   */
  readonly labelsByNameMaxSeries?: number;
  /**
   * Once a search has at most this many candidate series, matchers that would scan a label's
   * values are checked against the candidates' metric names instead (default 2000).
   */
  readonly nameFilterMaxSeries?: number;
}

interface StateJson {
  readonly formatVersion: number;
  /** Every metricID handed out is below this. */
  readonly idHighWater: number;
  /** Per-day entries of days before this are dropped (retention). */
  readonly minDay: number;
}

const STATE_JSON = "state.json";
const TABLE_DIR = "table";
function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function keyOf(b: Uint8Array): string {
  return latin1(b, 0, b.length);
}

function* savedOf(entries: Iterable<[string, NameEntry]>): Iterable<SavedSeries> {
  for (const [k, e] of entries) yield [Buffer.from(k, "latin1"), e.tsid, e.day];
}

export class IndexDB {
  private nextID: number;
  private idHighWater: number;
  private minDay: number;
  private readonly gone = new GoneSeries();
  private readonly onPrune: (() => void) | undefined;
  private readonly onError: ((err: unknown) => void) | undefined;
  private closed = false;
  private generation = 0;
  private readonly changeListeners: (() => void)[] = [];
  private readonly tsidCache: TwoGenCache<string, NameEntry>;
  private readonly writePathCache: WritePathCache | undefined;
  private readonly idCache: TwoGenCache<number, IdEntry>;
  private readonly filterCache: TwoGenCache<string, IdSet>;
  private readonly search: MatcherSearch;
  private readonly labels: LabelQueries;
  private readonly writer: SeriesWriter;
  private readonly lr = new LabelRanges();
  private readonly kb = new ByteBuffer(256);
  private readonly maxPerDayDays: number;
  private readonly idReserve: number;
  private table!: Table;
  private readonly stats = {
    created: 0,
    lookups: 0,
    indexLookups: 0,
    dayEntries: 0,
    searches: 0,
    deleted: 0,
    pruned: 0,
    pruneScanned: 0,
  };

  private constructor(
    readonly dir: string,
    state: StateJson,
    opts: IndexDBOptions,
  ) {
    this.nextID = state.idHighWater;
    this.idHighWater = state.idHighWater;
    this.minDay = state.minDay;
    this.tsidCache = new TwoGenCache(opts.tsidCacheBytes ?? 64 << 20, (k) => k.length + 160);
    this.idCache = new TwoGenCache(opts.metricNameCacheBytes ?? 32 << 20, (_k, v) => v.name.length + 160);
    this.filterCache = new TwoGenCache(opts.tagFiltersCacheBytes ?? 32 << 20, (k, v) => 2 * k.length + v.byteLength + 80);
    this.maxPerDayDays = opts.maxDaysForPerDaySearch ?? 40;
    this.idReserve = Math.max(1, opts.idReserve ?? 65536);
    this.onPrune = opts.onPrune;
    this.onError = opts.onError;
    this.writePathCache = opts.writePathCache;
    const generation = (): number => this.generation;
    const reader: IndexReader = {
      gone: this.gone,
      kb: this.kb,
      lr: this.lr,
      get generation() {
        return generation();
      },
      idEntry: (c, id) => this.idEntry(c, id),
    };
    this.search = new MatcherSearch(reader, this.filterCache, opts.nameFilterMaxSeries ?? 2000);
    this.labels = new LabelQueries(reader, this.search, opts.labelsByNameMaxSeries ?? 20_000);
    this.writer = new SeriesWriter({
      reader,
      table: () => this.table,
      allocID: () => this.allocID(),
      changed: () => this.changed(),
      stats: this.stats,
    });
  }

  static async open(dir: string, opts: IndexDBOptions = {}): Promise<IndexDB> {
    fs.mkdirSync(dir, { recursive: true });
    const sf = path.join(dir, STATE_JSON);
    let state: StateJson = { formatVersion: 1, idHighWater: 1, minDay: 0 };
    if (fs.existsSync(sf)) {
      try {
        state = JSON.parse(fs.readFileSync(sf, "utf8")) as StateJson;
      } catch (err) {
        throw new BadDataError(`indexdb ${sf}: ${String(err)}`, "STRATA_CORRUPT_DATA");
      }
      if (state.formatVersion !== 1 || !Number.isSafeInteger(state.idHighWater) || state.idHighWater < 1) {
        throw new BadDataError(`indexdb ${sf}: unknown format`, "STRATA_CORRUPT_DATA");
      }
    } else {
      writeFileAtomic(dir, STATE_JSON, JSON.stringify(state));
    }
    const db = new IndexDB(dir, state, opts);
    db.gone.pruned = loadPruneSet(dir); // before the table opens: its merges must already drop pruned items
    const topts: TableOptions = {
      ...opts.table,
      ...(opts.blockCacheBytes !== undefined ? { blockCacheBytes: opts.blockCacheBytes } : {}),
      ...(opts.maxInmemoryPartsBytes !== undefined ? { maxInMemoryBytes: opts.maxInmemoryPartsBytes } : {}),
      ...(opts.flushIntervalMs !== undefined ? { flushIntervalMs: opts.flushIntervalMs } : {}),
      onError: (err) => db.onBackgroundError(err),
      keepItem: (buf, start, end) => db.keepItem(buf, start, end),
      bloomNamespace: NS_NAME_TO_TSID,
      onPendingConverted: () => db.writer.forgetRecent(),
    };
    db.table = await Table.open(path.join(dir, TABLE_DIR), topts);
    db.loadDeleted();
    db.checkHighWater();
    db.loadTsidCache();
    if (db.gone.pruned !== undefined) {
      // An interrupted prune: finish rewriting the parts without the pruned series.
      db.retentionMerge = db.runRetention();
      db.retentionMerge.catch((err: unknown) => db.onBackgroundError(err));
    }
    return db;
  }

  private keepItem(buf: Uint8Array, start: number, end: number): boolean {
    const ns = buf[start];
    if ((ns === NS_DAY_TAG || ns === NS_DAY_ALL) && end - start >= 13) return readU32(buf, start + 9) >= this.minDay;
    const pr = this.gone.pruned;
    if (pr !== undefined && end - start >= 9) {
      // 01 (…TSID) and 03 end with the metricID; 02 and 06 start with it.
      if (ns === NS_NAME_TO_TSID || ns === NS_TAG) return !pr.has(readU64(buf, end - 8));
      if (ns === NS_ID || ns === NS_DELETED) return !pr.has(readU64(buf, start + 1));
    }
    return true;
  }

  private loadDeleted(): void {
    const snap = this.table.snapshot(true);
    try {
      const c = snap.cursor();
      c.seek(new Uint8Array([NS_DELETED]));
      while (c.next()) if (c.length === 9) this.gone.deleted.add(readU64(c.buf, c.start + 1));
    } finally {
      snap.release();
    }
  }

  /**
   * Defence in depth: ids in the index must be below the persisted high-water mark (a lost or
   * stale state.json would otherwise let ids be reused). The largest id is the last `02` item.
   */
  private checkHighWater(): void {
    const snap = this.table.snapshot(true);
    try {
      const last = snap.lastBefore(new Uint8Array([NS_ID + 1]));
      if (last === undefined || last[0] !== NS_ID || last.length < 9) return;
      const maxID = readU64(last, 1);
      if (maxID >= this.idHighWater) {
        this.nextID = maxID + 1;
        this.idHighWater = maxID + 1;
        this.writeState();
      }
    } finally {
      snap.release();
    }
  }

  private writeState(): void {
    const st: StateJson = { formatVersion: 1, idHighWater: this.idHighWater, minDay: this.minDay };
    writeFileAtomic(this.dir, STATE_JSON, JSON.stringify(st));
  }

  private allocID(): number {
    if (this.nextID >= this.idHighWater) {
      // Persist the new high-water mark before any id below it is handed out: after a crash
      // the next id is at least this, so ids are never reused. When the write fails (ENOSPC)
      // the mark stays where it is on disk, so the next call must try again.
      const prev = this.idHighWater;
      this.idHighWater = this.nextID + this.idReserve;
      try {
        this.writeState();
      } catch (err) {
        this.idHighWater = prev;
        throw err;
      }
    }
    return this.nextID++;
  }

  // ---- write path --------------------------------------------------------------------------

  /**
   * Resolves canonical metric-name bytes (see @strata/core encodeMetricName) to a TSID, creating
   * the series when new, and records that it has samples on `day` (days since the epoch, UTC).
   * Hot path: one cache lookup when the series and the day are known.
   */
  getOrCreateTSID(metricName: Uint8Array, day: number): TSID {
    this.stats.lookups++;
    let e: NameEntry | undefined;
    if (this.writePathCache !== undefined) {
      // The write path's cache missed: no string key unless a recently created series may match.
      e = this.writer.lookupOrCreate(metricName, undefined);
    } else {
      const key = keyOf(metricName);
      e = this.tsidCache.get(key) ?? this.lookupOrCreate(metricName, key);
    }
    if (e.day !== day) this.writer.ensureDay(e, metricName, day < 0 ? 0 : day);
    return e.tsid;
  }

  private lookupOrCreate(name: Uint8Array, key: string): NameEntry {
    const e = this.writer.lookupOrCreate(name, key);
    this.tsidCache.set(key, e);
    return e;
  }

  // ---- search ------------------------------------------------------------------------------

  private daysFor(minT: number, maxT: number): number[] | undefined {
    return daysFor(minT, maxT, this.minDay, this.maxPerDayDays);
  }

  /** Sorted metricIDs of live series of `tenant` matching all matchers in [minT, maxT]. */
  searchMetricIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number): IdSet {
    const days = this.daysFor(minT, maxT);
    const snap = this.table.snapshot(true);
    try {
      return this.searchIDsIn(snap, tenant, matchers, days);
    } finally {
      snap.release();
    }
  }

  private searchIDsIn(snap: Snapshot, tenant: Tenant, matchers: readonly LabelMatcher[], days: number[] | undefined): IdSet {
    this.stats.searches++;
    return this.search.ids(snap, tenant, matchers, days);
  }

  /**
   * TSIDs of the live series of `tenant` matching every matcher with samples in [minT, maxT]
   * (by the per-day index; the global index for long ranges), sorted by compareTSID. Throws
   * ExecutionError (STRATA_LIMIT_EXCEEDED) past maxSeries.
   */
  searchTSIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): TSID[] {
    return this.searchEntries(tenant, matchers, minT, maxT, maxSeries).map((e) => e.tsid).sort(compareTSID);
  }

  /**
   * Canonical metric names of the series searchTSIDs finds, in metricID order (no block is read:
   * /api/v1/series). The arrays are shared with the index cache: do not modify them.
   */
  searchMetricNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): Uint8Array[] {
    return this.searchEntries(tenant, matchers, minT, maxT, maxSeries).map((e) => e.name);
  }

  private searchEntries(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): IdEntry[] {
    const days = this.daysFor(minT, maxT);
    const snap = this.table.snapshot(true);
    try {
      const ids = this.searchIDsIn(snap, tenant, matchers, days);
      if (ids.length > maxSeries) {
        throw new ExecutionError(
          `the query matches ${ids.length} series, more than the limit of ${maxSeries}; narrow the selector or raise -search.maxSeries`,
          "STRATA_LIMIT_EXCEEDED",
        );
      }
      const out: IdEntry[] = [];
      // Sparse: one id → name item of each block; the entries go to idCache, not the blocks.
      const c = snap.cursor(true);
      for (let i = 0; i < ids.length; i++) {
        const e = this.idEntry(c, ids[i]!);
        if (e !== undefined) out.push(e);
      }
      return out;
    } finally {
      snap.release();
    }
  }

  private idEntry(c: Cursor, id: number): IdEntry | undefined {
    if (this.gone.pruned?.has(id) === true) return undefined;
    let e = this.idCache.get(id);
    if (e !== undefined) return e;
    const key = new Uint8Array(9);
    key[0] = NS_ID;
    writeId(key, 1, id);
    c.seek(key);
    if (!c.next() || c.length < 9 + TSID_SIZE) return undefined;
    e = { tsid: decodeTSID(c.buf, c.start + 9), name: c.buf.slice(c.start + 9 + TSID_SIZE, c.end) };
    this.idCache.set(id, e);
    return e;
  }

  /** Canonical metric-name bytes of a metricID (undefined when unknown). Do not modify them. */
  metricNameByID(metricID: number): Uint8Array | undefined {
    const cached = this.idCache.get(metricID);
    if (cached !== undefined) return cached.name;
    const snap = this.table.snapshot(true);
    try {
      return this.idEntry(snap.sharedCursor(), metricID)?.name;
    } finally {
      snap.release();
    }
  }

  /** TSID of a metricID (undefined when unknown). */
  tsidByID(metricID: number): TSID | undefined {
    const snap = this.table.snapshot(true);
    try {
      return this.idEntry(snap.sharedCursor(), metricID)?.tsid;
    } finally {
      snap.release();
    }
  }

  /**
   * Calls `listener` synchronously after every change that can alter a labelNames, labelValues
   * or searchTSIDs answer: a new series, a series' first entry of a day, a delete, a retention
   * drop or prune. (Select's metadata cache is dropped on it.)
   */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private changed(): void {
    this.generation++;
    for (const l of this.changeListeners) l();
  }

  isDeleted(metricID: number): boolean {
    return this.gone.deleted.has(metricID);
  }

  // ---- labels ------------------------------------------------------------------------------

  labelNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[] {
    const days = this.daysFor(minT, maxT);
    const snap = this.table.snapshot(true);
    try {
      if (matchers.length > 0) this.stats.searches++;
      return this.labels.names(snap, tenant, matchers, days, limit);
    } finally {
      snap.release();
    }
  }

  labelValues(tenant: Tenant, labelName: string, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[] {
    if (labelName === "") return [];
    const days = this.daysFor(minT, maxT);
    const snap = this.table.snapshot(true);
    try {
      if (matchers.length > 0) this.stats.searches++;
      return this.labels.values(snap, tenant, labelName, matchers, days, limit);
    } finally {
      snap.release();
    }
  }

  /** Number of live series of the tenant (global index). */
  seriesCount(tenant: Tenant): number {
    const snap = this.table.snapshot(true);
    try {
      return this.gone.remove(this.search.allIDs(snap, tenant, undefined)).length;
    } finally {
      snap.release();
    }
  }

  // ---- status ------------------------------------------------------------------------------

  /** Cardinality of the series with samples on `req.date` (like /api/v1/status/tsdb). */
  tsdbStatus(tenant: Tenant, req: TsdbStatusRequest): TsdbStatus {
    const day = req.date;
    if (day < this.minDay || day < 0) return emptyStatus();
    const snap = this.table.snapshot(true);
    try {
      const filter =
        req.matchers !== undefined && req.matchers.length > 0 ? this.searchIDsIn(snap, tenant, req.matchers, [day]) : undefined;
      const all = filter ?? this.gone.remove(this.search.allIDs(snap, tenant, day));
      const check = filter !== undefined || this.gone.any();
      const kb = this.kb;
      kb.reset();
      putScope(kb, NS_DAY_TAG, tenant, day);
      const st = collectStatus(snap.cursor(), kb.toBytes(), check ? all : undefined, req.topN, req.focusLabel);
      return { totalSeries: all.length, ...st };
    } finally {
      snap.release();
    }
  }

  // ---- deletes, retention, lifecycle ---------------------------------------------------------

  /**
   * Marks matching live series deleted and returns their count. Searches and label APIs never
   * show them again; the same metric name added later gets a new metricID. The marks are
   * durable after the next flush() (one is started right away).
   */
  deleteSeries(tenant: Tenant, matchers: readonly LabelMatcher[]): number {
    if (matchers.length === 0) {
      throw new BadDataError("deleteSeries needs at least one matcher", "STRATA_BAD_REQUEST");
    }
    const ids = this.searchMetricIDs(tenant, matchers, -Infinity, Infinity);
    if (ids.length === 0) return 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const item = new Uint8Array(9);
      item[0] = NS_DELETED;
      writeId(item, 1, id);
      this.table.add(item);
      this.gone.deleted.add(id);
    }
    this.changed();
    this.stats.deleted += ids.length;
    this.tsidCache.clear();
    this.writer.forgetRecent();
    this.table.flush().catch((err: unknown) => this.onBackgroundError(err));
    return ids.length;
  }

  private onBackgroundError(err: unknown): void {
    if (this.onError !== undefined) this.onError(err);
    else defaultLog("strata-indexdb").error({ err: errorMessage(err) }, "index background work failed");
  }

  /**
   * Drops per-day entries of days before `minDay` (retention): they are hidden at once. Then the
   * series left without per-day entries (no samples inside the retention) are pruned from the
   * global index too, as VictoriaMetrics' indexdb rotation does, so churned series do not grow
   * the index forever. The returned promise resolves after every part was rewritten without
   * them (a full merge, so callers usually do not await it).
   */
  async dropDaysBefore(minDay: number): Promise<void> {
    if (minDay <= this.minDay) return;
    this.minDay = minDay;
    this.writeState();
    for (const d of [...this.writer.dayBitmaps.keys()]) if (d < minDay) this.writer.dayBitmaps.delete(d);
    this.changed();
    // A retention merge already running takes this step too (it loops while steps arrive),
    // so no step is skipped: before, a step that came during a merge was never pruned.
    this.pruneWanted = true;
    this.retentionMerge ??= this.runRetention();
    await this.retentionMerge;
  }

  private retentionMerge: Promise<void> | undefined;
  /** A retention step arrived that the running (or next) retention merge has not pruned yet. */
  private pruneWanted = false;

  /**
   * Prunes and merges until no retention step is pending. Clears retentionMerge in the same
   * microtask as its last check of pruneWanted, so a step can never arrive unseen in between.
   */
  private async runRetention(): Promise<void> {
    try {
      do {
        this.pruneWanted = false;
        await this.pruneAndMerge();
      } while (this.pruneWanted && !this.closed);
    } finally {
      this.retentionMerge = undefined;
    }
  }

  private async pruneAndMerge(): Promise<void> {
    if (this.gone.pruned === undefined) await this.markPruned();
    if (this.gone.pruned !== undefined) await this.finishPrune();
    else await this.table.forceMerge();
  }

  /**
   * Finds the series with no per-day entry on or after minDay, among those that existed when
   * the scan began, and makes them invisible at once (the set is persisted first).
   * Runs in chunks so the event loop keeps serving; series seen on any day ≥ minDay while it
   * ran (the day bitmaps record every per-day entry this process writes) are kept.
   */
  private async markPruned(): Promise<void> {
    const minDay = this.minDay;
    const snap = this.table.snapshot(true);
    let dead: IdBitmap;
    try {
      const scan = new UnusedSeriesScan(snap, minDay, this.nextID, () => this.stats.pruneScanned++);
      while (!scan.step(UnusedSeriesScan.CHUNK)) {
        await yieldToLoop();
        if (this.closed) return;
      }
      dead = scan.result;
    } finally {
      snap.release();
    }
    if (minDay !== this.minDay) return; // retention moved on meanwhile; the next call redoes it
    for (const [day, bm] of this.writer.dayBitmaps) if (day >= minDay) dead.andNot(bm);
    const count = dead.count();
    if (count === 0) return;
    writePruneSet(dead, this.dir);
    this.gone.pruned = dead;
    this.stats.pruned += count;
    this.changed();
    this.tsidCache.clear();
    this.writer.forgetRecent();
    this.idCache.clear();
    this.filterCache.clear();
    this.onPrune?.();
  }

  /** Rewrites every part without the pruned series, then forgets the set. */
  private async finishPrune(): Promise<void> {
    await this.table.forceMerge();
    const pr = this.gone.pruned;
    if (pr === undefined || this.closed) return;
    pr.forEach((id) => this.gone.deleted.delete(id));
    this.gone.pruned = undefined;
    removePruneSet(this.dir);
  }

  /** Makes everything added so far durable on disk. */
  async flush(): Promise<void> {
    await this.table.flush();
  }

  /** Merges all parts into one (also removes dropped per-day entries). */
  /** Merges the index to one part; a retention prune in progress finishes first (it rewrites every part). */
  async forceMerge(): Promise<void> {
    if (this.retentionMerge !== undefined) await this.retentionMerge;
    await this.table.forceMerge();
  }

  /** Hard-links the current immutable index parts into `dir` (for snapshots). */
  async snapshot(dir: string): Promise<void> {
    await this.table.linkSnapshot(path.join(dir, TABLE_DIR));
    // After the link: the high-water mark only grows, so it covers every id in the linked parts.
    const st: StateJson = { formatVersion: 1, idHighWater: this.idHighWater, minDay: this.minDay };
    writeFileAtomic(dir, STATE_JSON, JSON.stringify(st));
    // Some linked parts may already be rewritten without the pruned series and others not yet:
    // the snapshot carries the set, so it opens consistent and finishes the prune itself.
    if (this.gone.pruned !== undefined) writePruneSet(this.gone.pruned, dir);
  }

  /**
   * Items and on-disk bytes (share of items.bin) per item kind, named as in KIND_NAMES; parts
   * written before format 2 are counted under "old".
   */
  kindSizes(): Record<string, { items: number; bytes: number }> {
    const out: Record<string, { items: number; bytes: number }> = {};
    for (const [k, v] of Object.entries(this.table.kindSizes())) out[KIND_NAMES[k] ?? k] = v;
    return out;
  }

  /** The index's bounded caches by `strata_cache_*` type. */
  caches(): Readonly<Record<string, CacheStats>> {
    return {
      "indexdb/tsid": this.tsidCache,
      "indexdb/metricName": this.idCache,
      "indexdb/tagFilters": this.filterCache,
      "indexdb/dataBlocks": this.table.blockCache,
    };
  }

  metrics(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.table.metrics())) out[`mergeset_${k}`] = v;
    for (const [k, v] of Object.entries(this.kindSizes())) {
      out[`disk_items_${k}`] = v.items;
      out[`disk_bytes_${k}`] = v.bytes;
    }
    let bitmapBytes = 0;
    for (const bm of this.writer.dayBitmaps.values()) bitmapBytes += bm.bytes;
    Object.assign(out, {
      tsid_cache_bytes: this.tsidCache.sizeBytes,
      tsid_cache_cap_bytes: this.tsidCache.maxBytes,
      tsid_cache_entries: this.tsidCache.entries,
      tsid_cache_hits_total: this.tsidCache.hits,
      tsid_cache_misses_total: this.tsidCache.misses,
      metric_name_cache_bytes: this.idCache.sizeBytes,
      metric_name_cache_cap_bytes: this.idCache.maxBytes,
      metric_name_cache_entries: this.idCache.entries,
      metric_name_cache_hits_total: this.idCache.hits,
      metric_name_cache_misses_total: this.idCache.misses,
      tag_filters_cache_bytes: this.filterCache.sizeBytes,
      tag_filters_cache_cap_bytes: this.filterCache.maxBytes,
      tag_filters_cache_entries: this.filterCache.entries,
      tag_filters_cache_hits_total: this.filterCache.hits,
      tag_filters_cache_misses_total: this.filterCache.misses,
      recent_series: this.writer.recentCount,
      day_bitmaps: this.writer.dayBitmaps.size,
      day_bitmaps_bytes: bitmapBytes,
      deleted_series: this.gone.deleted.size,
      series_created_total: this.stats.created,
      series_lookups_total: this.stats.lookups,
      index_lookups_total: this.stats.indexLookups,
      per_day_entries_created_total: this.stats.dayEntries,
      searches_total: this.stats.searches,
      series_deleted_total: this.stats.deleted,
      series_pruned_total: this.stats.pruned,
      prune_scanned_day_items_total: this.stats.pruneScanned,
      prune_pending: this.gone.pruned === undefined ? 0 : 1,
      next_metric_id: this.nextID,
      metric_id_high_water: this.idHighWater,
      min_day: this.minDay,
    });
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.table.close();
    try {
      saveTsidCache(this.dir, this.idHighWater, this.writePathCache?.saved() ?? savedOf(this.tsidCache.all()), this.gone.deleted);
    } catch (err) {
      this.onBackgroundError(err); // a lost cache only costs index lookups after restart
    }
  }

  private loadTsidCache(): void {
    const wc = this.writePathCache;
    const whole = loadTsidCache(this.dir, this.idHighWater, this.gone.deleted, (name, tsid, day) => {
      if (wc !== undefined) wc.load(name, tsid, day);
      else this.tsidCache.set(keyOf(name), { tsid, day, fresh: false });
    });
    // Unreadable: start cold rather than trust part of it.
    if (!whole) {
      this.tsidCache.clear();
      wc?.clear();
    }
  }
}
