import * as fs from "node:fs";
import * as path from "node:path";
import {
  DAY_MS,
  BadDataError,
  ExecutionError,
  type LabelMatcher,
  type Tenant,
  xxhash64,
  TwoGenCache,
  type CacheStats,
} from "@strata/core";
import { crc32 } from "node:zlib";
import { ByteBuffer, ByteReader, latin1, readU32, readU64, writeU32 } from "../bytes.js";
import { MAX_ITEM_SIZE } from "../mergeset/constants.js";
import { fsyncDir, writeFileAtomic } from "../fsutil.js";
import { type Cursor, type Snapshot, Table, type TableOptions } from "../mergeset/index.js";
import { EMPTY_SET, IdBitmap, type IdSet, IdSetBuilder, hasId, intersect, subtract } from "./idset.js";
import {
  INSTANCE_BYTES,
  JOB_BYTES,
  KIND_NAMES,
  LabelRanges,
  NAME_BYTES,
  NS_DAY_ALL,
  NS_DAY_TAG,
  NS_DELETED,
  NS_ID,
  NS_NAME_TO_TSID,
  NS_TAG,
  TAG_SEP,
  findSep,
  putEscaped,
  putEscapedString,
  putScope,
  tenantOfName,
  unescapeString,
  utf8,
} from "./keys.js";
import { cost, emptyStatus, equalBytes, inverseOf, sameKeyPrefix, scanValues, sortLimit, writeId } from "./scan.js";
import { type TsdbStatus, type TsdbStatusRequest, collectStatus } from "./status.js";
import { type TSID, TSID_SIZE, compareTSID, decodeTSID, encodeTSID } from "../tsid.js";

export { type TSID, TSID_SIZE, compareTSID, decodeTSID, encodeTSID } from "../tsid.js";
export type { TsdbStatus, TsdbStatusEntry, TsdbStatusRequest } from "./status.js";

export interface IndexDBOptions {
  /** Cap of the metricName → TSID cache (default 64 MiB). */
  readonly tsidCacheBytes?: number;
  /** Cap of the metricID → (TSID, metricName) cache (default 32 MiB). */
  readonly metricNameCacheBytes?: number;
  /** Cap of the matcher-result cache (default 32 MiB). */
  readonly tagFiltersCacheBytes?: number;
  /** Cap of the mergeset's decoded-block cache (default 64 MiB). */
  readonly blockCacheBytes?: number;
  /** Longest range (in days) searched through the per-day index; longer uses the global one (default 40). */
  readonly maxDaysForPerDaySearch?: number;
  /** metricIDs reserved (and persisted) at a time (default 65536). */
  readonly idReserve?: number;
  /** Periodic flush of the index to disk in ms; 0 disables (default 5000). */
  readonly flushIntervalMs?: number;
  /** Low-level mergeset options (tests use small buffers to exercise merges). */
  readonly table?: Omit<TableOptions, "keepItem" | "onPendingConverted" | "blockCacheBytes">;
  /** Background failures (default: console.error). */
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

interface NameEntry {
  readonly tsid: TSID;
  /** Last day whose per-day entries are known to exist (-1: none checked yet). */
  day: number;
  /** Created by this process and no per-day entries written yet. */
  fresh: boolean;
}

interface IdEntry {
  readonly tsid: TSID;
  readonly name: Uint8Array;
}

interface StateJson {
  readonly formatVersion: number;
  /** Every metricID handed out is below this. */
  readonly idHighWater: number;
  /** Per-day entries of days before this are dropped (retention). */
  readonly minDay: number;
}

const STATE_JSON = "state.json";
const TSID_CACHE_FILE = "tsid-cache.bin";
const PRUNE_FILE = "prune.bin";
/** "SPR1": Strata prune set, version 1. */
const PRUNE_MAGIC = 0x5350_5231;
/** Items scanned between yields to the event loop while computing the prune set. */
const PRUNE_SCAN_CHUNK = 65_536;
/** "STC1": Strata TSID cache, version 1. */
const TSID_CACHE_MAGIC = 0x5354_4331;
const TABLE_DIR = "table";
const MAX_DAY_BITMAPS = 8;
/** Longest metric name: its `02` item (name + 33 bytes) must fit a mergeset item. */
const MAX_NAME_BYTES = MAX_ITEM_SIZE - 64;


function keyOf(b: Uint8Array): string {
  return latin1(b, 0, b.length);
}

function hash32(b: Uint8Array): number {
  return Number(BigInt.asUintN(32, xxhash64(b)));
}

function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function dayOf(t: number): number {
  return Math.floor(t / DAY_MS);
}

/**
 * The inverted index of one storage node (VictoriaMetrics indexdb) on a mergeset Table.
 * See docs/format/indexdb.md for the items. Synchronous lookups run on the event loop over a
 * consistent snapshot of the table; only flush/merge/snapshot/close are asynchronous.
 */
export class IndexDB {
  private nextID: number;
  private idHighWater: number;
  private minDay: number;
  private readonly deleted = new Set<number>();
  /**
   * Series being pruned (no samples inside the retention): merges drop their global items and
   * lookups ignore them. Persisted in prune.bin until every part has been rewritten.
   */
  private pruned: IdBitmap | undefined;
  private readonly onPrune: (() => void) | undefined;
  private closed = false;
  private generation = 0;
  private readonly tsidCache: TwoGenCache<string, NameEntry>;
  /** Series created since the table last converted pending items (invisible to snapshot(false)). */
  private recent = new Map<string, NameEntry>();
  private readonly idCache: TwoGenCache<number, IdEntry>;
  private readonly filterCache: TwoGenCache<string, IdSet>;
  private readonly dayBitmaps = new Map<number, IdBitmap>();
  private readonly lr = new LabelRanges();
  private readonly kb = new ByteBuffer(256);
  private readonly maxPerDayDays: number;
  private readonly idReserve: number;
  private readonly namePathMax: number;
  private readonly nameFilterMax: number;
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
    this.namePathMax = opts.labelsByNameMaxSeries ?? 20_000;
    this.nameFilterMax = opts.nameFilterMaxSeries ?? 2000;
    this.onPrune = opts.onPrune;
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
    db.loadPruneSet(); // before the table opens: its merges must already drop pruned items
    const topts: TableOptions = {
      ...opts.table,
      ...(opts.blockCacheBytes !== undefined ? { blockCacheBytes: opts.blockCacheBytes } : {}),
      ...(opts.flushIntervalMs !== undefined ? { flushIntervalMs: opts.flushIntervalMs } : {}),
      ...(opts.onError !== undefined ? { onError: opts.onError } : {}),
      keepItem: (buf, start, end) => db.keepItem(buf, start, end),
      bloomNamespace: NS_NAME_TO_TSID,
      onPendingConverted: () => {
        db.recent = new Map();
      },
    };
    db.table = await Table.open(path.join(dir, TABLE_DIR), topts);
    db.loadDeleted();
    db.checkHighWater();
    db.loadTsidCache();
    if (db.pruned !== undefined) {
      // An interrupted prune: finish rewriting the parts without the pruned series.
      db.retentionMerge = db.finishPrune().finally(() => {
        db.retentionMerge = undefined;
      });
      db.retentionMerge.catch((err: unknown) => db.onBackgroundError(err));
    }
    return db;
  }

  private keepItem(buf: Uint8Array, start: number, end: number): boolean {
    const ns = buf[start];
    if ((ns === NS_DAY_TAG || ns === NS_DAY_ALL) && end - start >= 13) return readU32(buf, start + 9) >= this.minDay;
    const pr = this.pruned;
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
      while (c.next()) if (c.length === 9) this.deleted.add(readU64(c.buf, c.start + 1));
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
    const key = keyOf(metricName);
    let e = this.tsidCache.get(key);
    if (e === undefined) e = this.lookupOrCreate(metricName, key);
    if (e.day !== day) this.ensureDay(e, metricName, day < 0 ? 0 : day);
    return e.tsid;
  }

  private lookupOrCreate(name: Uint8Array, key: string): NameEntry {
    let e = this.recent.get(key);
    if (e === undefined) {
      this.stats.indexLookups++;
      const tsid = this.findByName(name);
      e = tsid !== undefined ? { tsid, day: -1, fresh: false } : this.create(name, key);
    }
    this.tsidCache.set(key, e);
    return e;
  }

  /**
   * `01 | xxhash64(name) u64` into kb (and the halves into h1/h2 for the bloom filters). The
   * item holds neither the name nor the TSID, only the metricID: a hit is confirmed against the
   * metricID's `02` item (64-bit hash collisions are resolved there), which holds both.
   */
  private nameKey(name: Uint8Array): void {
    const kb = this.kb;
    kb.reset();
    kb.byte(NS_NAME_TO_TSID);
    const h = xxhash64(name);
    this.h1 = Number(h >> 32n);
    this.h2 = Number(BigInt.asUintN(32, h));
    kb.u32(this.h1);
    kb.u32(this.h2);
  }

  private h1 = 0;
  private h2 = 0;

  /** The live (non-deleted) TSID of a metric name among converted items. */
  private findByName(name: Uint8Array): TSID | undefined {
    this.nameKey(name);
    const prefix = this.kb.toBytes();
    const snap = this.table.snapshot(false);
    try {
      const c = snap.keyedCursor(this.h1, this.h2);
      if (c === undefined) return undefined;
      c.seek(prefix);
      while (c.next()) {
        // `01 | hash | metricID`, or `01 | hash | TSID` as written before (both end with the id)
        if (c.length !== prefix.length + 8 && c.length !== prefix.length + TSID_SIZE) continue;
        const id = readU64(c.buf, c.end - 8);
        if (this.isGone(id)) continue;
        const e = this.idEntry(snap.sharedCursor(), id);
        if (e !== undefined && equalBytes(e.name, name)) return e.tsid;
      }
    } finally {
      snap.release();
    }
    return undefined;
  }

  private create(name: Uint8Array, key: string): NameEntry {
    if (name.length > MAX_NAME_BYTES) {
      throw new BadDataError(`metric name of ${name.length} bytes is longer than ${MAX_NAME_BYTES}`, "STRATA_LABEL_TOO_LONG");
    }
    const lr = this.lr;
    lr.parse(name); // validates before anything is written
    const tenant = tenantOfName(name);
    const r = lr.ranges;
    const ni = lr.find(name, NAME_BYTES);
    const metricGroupID = ni < 0 ? 0 : hash32(name.subarray(r[ni * 4 + 2], r[ni * 4 + 3]));
    const ji = lr.find(name, JOB_BYTES);
    const ii = lr.find(name, INSTANCE_BYTES);
    let jobInstanceID = 0;
    if (ji >= 0 || ii >= 0) {
      const kb = this.kb;
      kb.reset();
      if (ji >= 0) kb.bytes(name, r[ji * 4 + 2], r[ji * 4 + 3]);
      kb.byte(0xff); // never inside UTF-8, so (job, instance) pairs cannot collide by concatenation
      if (ii >= 0) kb.bytes(name, r[ii * 4 + 2], r[ii * 4 + 3]);
      jobInstanceID = hash32(kb.view());
    }
    const metricID = this.allocID();
    const tsid: TSID = { accountID: tenant.accountID, projectID: tenant.projectID, metricGroupID, jobInstanceID, metricID };

    const kb = this.kb;
    this.nameKey(name);
    kb.u64(metricID); // the TSID is in the `02` item a lookup reads anyway to confirm the name
    this.table.addRange(kb.buf, 0, kb.len);
    kb.reset();
    kb.byte(NS_ID);
    kb.u64(metricID);
    kb.ensure(TSID_SIZE);
    encodeTSID(tsid, kb.buf, kb.len);
    kb.len += TSID_SIZE;
    kb.bytes(name);
    this.table.addRange(kb.buf, 0, kb.len);
    this.addTagItems(NS_TAG, tenant, undefined, name, metricID);
    this.generation++;
    this.stats.created++;
    const e: NameEntry = { tsid, day: -1, fresh: true };
    this.recent.set(key, e);
    return e;
  }

  /** Adds `ns | scope | esc(name) 01 | esc(value) 01 | metricID` for every label of `name`. */
  private addTagItems(ns: number, tenant: Tenant, day: number | undefined, name: Uint8Array, metricID: number): void {
    const lr = this.lr;
    lr.parse(name);
    const r = lr.ranges;
    const kb = this.kb;
    for (let i = 0; i < lr.count; i++) {
      kb.reset();
      putScope(kb, ns, tenant, day);
      putEscaped(kb, name, r[i * 4]!, r[i * 4 + 1]!);
      kb.byte(TAG_SEP);
      putEscaped(kb, name, r[i * 4 + 2]!, r[i * 4 + 3]!);
      kb.byte(TAG_SEP);
      kb.u64(metricID);
      this.table.addRange(kb.buf, 0, kb.len);
    }
  }

  private dayBitmap(day: number): IdBitmap {
    let bm = this.dayBitmaps.get(day);
    if (bm === undefined) {
      bm = new IdBitmap();
      this.dayBitmaps.set(day, bm);
      if (this.dayBitmaps.size > MAX_DAY_BITMAPS) {
        let min = Infinity;
        for (const d of this.dayBitmaps.keys()) min = Math.min(min, d);
        this.dayBitmaps.delete(min);
      }
    }
    return bm;
  }

  private ensureDay(e: NameEntry, name: Uint8Array, day: number): void {
    const id = e.tsid.metricID;
    const bm = this.dayBitmap(day);
    if (!bm.has(id)) {
      const tenant: Tenant = e.tsid;
      if (e.fresh || !this.dayEntryExists(tenant, day, id)) {
        const kb = this.kb;
        kb.reset();
        putScope(kb, NS_DAY_ALL, tenant, day);
        kb.u64(id);
        this.table.addRange(kb.buf, 0, kb.len);
        this.addTagItems(NS_DAY_TAG, tenant, day, name, id);
        this.generation++;
        this.stats.dayEntries++;
      }
      bm.add(id);
    }
    e.fresh = false;
    e.day = day;
  }

  private dayEntryExists(tenant: Tenant, day: number, id: number): boolean {
    const kb = this.kb;
    kb.reset();
    putScope(kb, NS_DAY_ALL, tenant, day);
    kb.u64(id);
    const key = kb.toBytes();
    const snap = this.table.snapshot(false);
    try {
      const c = snap.sharedCursor();
      c.seek(key);
      return c.next();
    } finally {
      snap.release();
    }
  }

  // ---- search ------------------------------------------------------------------------------

  /** Days to search per-day, or undefined for the global index. */
  private daysFor(minT: number, maxT: number): number[] | undefined {
    if (!Number.isFinite(minT) || !Number.isFinite(maxT)) return undefined;
    if (minT > maxT) return [];
    const lo = Math.max(dayOf(minT), this.minDay, 0);
    const hi = dayOf(maxT);
    if (hi < lo) return [];
    if (hi - lo + 1 > this.maxPerDayDays) return undefined;
    const out: number[] = [];
    for (let d = lo; d <= hi; d++) out.push(d);
    return out;
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
    let ids: IdSet;
    if (days === undefined) ids = this.searchScope(snap, tenant, undefined, matchers);
    else if (days.length === 1) ids = this.searchScope(snap, tenant, days[0], matchers);
    else {
      const b = new IdSetBuilder();
      for (const d of days) b.pushSet(this.searchScope(snap, tenant, d, matchers));
      ids = b.finish();
    }
    return this.removeDeleted(ids);
  }

  /** Deleted, or being pruned: never shown, never handed out again. */
  private isGone(id: number): boolean {
    return this.deleted.has(id) || (this.pruned !== undefined && this.pruned.has(id));
  }

  private anyGone(): boolean {
    return this.deleted.size > 0 || this.pruned !== undefined;
  }

  private removeDeleted(ids: IdSet): IdSet {
    if (!this.anyGone()) return ids;
    const out = new Float64Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) if (!this.isGone(ids[i]!)) out[n++] = ids[i]!;
    return n === ids.length ? ids : out.slice(0, n);
  }

  /**
   * Prometheus semantics: a matcher that does not match "" selects the union of the series of
   * the label values it matches; one that matches "" (also series without the label) removes
   * the series of the values it does not match (set subtraction).
   */
  private searchScope(snap: Snapshot, tenant: Tenant, day: number | undefined, matchers: readonly LabelMatcher[]): IdSet {
    const pos: LabelMatcher[] = [];
    const neg: LabelMatcher[] = [];
    for (const m of matchers) (m.matches("") ? neg : pos).push(m);
    pos.sort((a, b) => cost(a) - cost(b));
    // Once few candidates are left, matchers that would scan a label's values are checked
    // against the candidates' metric names instead (VictoriaMetrics does the same).
    const late: LabelMatcher[] = [];
    let base: IdSet | undefined;
    for (const m of pos) {
      if (base !== undefined && base.length <= this.nameFilterMax && cost(m) >= 2) {
        late.push(m);
        continue;
      }
      const s = this.matcherIDs(snap, tenant, day, m, false);
      base = base === undefined ? s : intersect(base, s);
      if (base.length === 0) return EMPTY_SET;
    }
    if (base === undefined) base = this.allIDs(snap, tenant, day);
    for (const m of neg) {
      if (base.length === 0) break;
      if (base.length <= this.nameFilterMax && cost(inverseOf(m)) >= 2) {
        late.push(m);
        continue;
      }
      base = subtract(base, this.matcherIDs(snap, tenant, day, m, true));
    }
    if (late.length > 0 && base.length > 0) base = this.filterByNames(snap, base, late);
    return base;
  }

  /** The ids whose metric names satisfy every matcher (an absent label is ""). */
  private filterByNames(snap: Snapshot, ids: IdSet, ms: readonly LabelMatcher[]): IdSet {
    const c = snap.cursor();
    const lr = this.lr;
    const names = ms.map((m) => utf8.enc.encode(m.name));
    const out = new Float64Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const e = this.idEntry(c, ids[i]!);
      if (e === undefined) continue;
      lr.parse(e.name);
      let ok = true;
      for (let j = 0; j < ms.length && ok; j++) {
        const k = lr.find(e.name, names[j]!);
        const v = k < 0 ? "" : utf8.dec.decode(e.name.subarray(lr.ranges[k * 4 + 2], lr.ranges[k * 4 + 3]));
        ok = ms[j]!.matches(v);
      }
      if (ok) out[n++] = ids[i]!;
    }
    return out.slice(0, n);
  }

  private scopeKey(tenant: Tenant, day: number | undefined): string {
    return `${this.generation}|${tenant.accountID}:${tenant.projectID}|${day ?? "g"}`;
  }

  /** Ids of the values `m` matches (or, with `inverse`, does not match); cached per generation. */
  private matcherIDs(snap: Snapshot, tenant: Tenant, day: number | undefined, m: LabelMatcher, inverse: boolean): IdSet {
    const key = `${this.scopeKey(tenant, day)}|${inverse ? "!" : ""}${m.toString()}`;
    let s = this.filterCache.get(key);
    if (s === undefined) {
      const mm = inverse ? inverseOf(m) : m;
      s = this.valuesUnion(snap, tenant, day, mm);
      this.filterCache.set(key, s);
    }
    return s;
  }

  private labelPrefix(tenant: Tenant, day: number | undefined, label: string): Uint8Array {
    const kb = this.kb;
    kb.reset();
    putScope(kb, day === undefined ? NS_TAG : NS_DAY_TAG, tenant, day);
    putEscapedString(kb, label);
    kb.byte(TAG_SEP);
    return kb.toBytes();
  }

  private valuesUnion(snap: Snapshot, tenant: Tenant, day: number | undefined, m: LabelMatcher): IdSet {
    const lp = this.labelPrefix(tenant, day, m.name);
    const b = new IdSetBuilder();
    const c = snap.cursor();
    const kb = this.kb;
    if ((m.type === "=" || m.type === "=~") && m.setMatches !== undefined) {
      for (const v of m.setMatches) {
        if (v === "") continue;
        kb.reset();
        kb.bytes(lp);
        putEscapedString(kb, v);
        kb.byte(TAG_SEP);
        c.seek(kb.toBytes());
        while (c.next()) b.push(readU64(c.buf, c.end - 8));
      }
      return b.finish();
    }
    const prefix = m.type === "=~" ? m.prefix : "";
    kb.reset();
    kb.bytes(lp);
    putEscapedString(kb, prefix);
    const from = kb.toBytes();
    const escPrefixLen = from.length - lp.length;
    scanValues(c, lp, from, (buf, vs, ve) => {
      if (ve - vs < escPrefixLen) return undefined;
      for (let i = 0; i < escPrefixLen; i++) if (buf[vs + i] !== from[lp.length + i]) return undefined;
      return m.matches(unescapeString(buf, vs, ve));
    }, (id) => b.push(id));
    return b.finish();
  }

  /** All series ids of a scope: the (tenant, day) items, or every series' `__name__` item. */
  private allIDs(snap: Snapshot, tenant: Tenant, day: number | undefined): IdSet {
    const key = `${this.scopeKey(tenant, day)}|*`;
    let s = this.filterCache.get(key);
    if (s !== undefined) return s;
    const b = new IdSetBuilder();
    const c = snap.cursor();
    if (day === undefined) {
      c.seek(this.labelPrefix(tenant, undefined, "__name__"));
    } else {
      const kb = this.kb;
      kb.reset();
      putScope(kb, NS_DAY_ALL, tenant, day);
      c.seek(kb.toBytes());
    }
    while (c.next()) b.push(readU64(c.buf, c.end - 8));
    s = b.finish();
    this.filterCache.set(key, s);
    return s;
  }

  /**
   * TSIDs of the live series of `tenant` matching every matcher with samples in [minT, maxT]
   * (by the per-day index; the global index for long ranges), sorted by compareTSID. Throws
   * ExecutionError (STRATA_LIMIT_EXCEEDED) past maxSeries.
   */
  searchTSIDs(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, maxSeries: number): TSID[] {
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
      const out: TSID[] = new Array<TSID>(ids.length);
      const c = snap.cursor();
      let n = 0;
      for (let i = 0; i < ids.length; i++) {
        const e = this.idEntry(c, ids[i]!);
        if (e !== undefined) out[n++] = e.tsid;
      }
      out.length = n;
      out.sort(compareTSID);
      return out;
    } finally {
      snap.release();
    }
  }

  private idEntry(c: Cursor, id: number): IdEntry | undefined {
    if (this.pruned?.has(id) === true) return undefined;
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

  isDeleted(metricID: number): boolean {
    return this.deleted.has(metricID);
  }

  // ---- labels ------------------------------------------------------------------------------

  labelNames(tenant: Tenant, matchers: readonly LabelMatcher[], minT: number, maxT: number, limit: number): string[] {
    const days = this.daysFor(minT, maxT);
    const scopes: (number | undefined)[] = days ?? [undefined];
    const names = new Set<string>();
    const snap = this.table.snapshot(true);
    try {
      if (matchers.length === 0) {
        for (const d of scopes) this.scanLabelNames(snap, tenant, d, undefined, names);
      } else {
        const ids = this.searchIDsIn(snap, tenant, matchers, days);
        if (ids.length <= this.namePathMax) {
          const c = snap.cursor();
          const lr = this.lr;
          for (let i = 0; i < ids.length; i++) {
            const e = this.idEntry(c, ids[i]!);
            if (e === undefined) continue;
            lr.parse(e.name);
            for (let j = 0; j < lr.count; j++) {
              names.add(utf8.dec.decode(e.name.subarray(lr.ranges[j * 4], lr.ranges[j * 4 + 1])));
            }
          }
        } else {
          for (const d of scopes) this.scanLabelNames(snap, tenant, d, ids, names);
        }
      }
    } finally {
      snap.release();
    }
    return sortLimit(names, limit);
  }

  /** Adds label names of the scope that have a live series (in `filter` when given). */
  private scanLabelNames(snap: Snapshot, tenant: Tenant, day: number | undefined, filter: IdSet | undefined, out: Set<string>): void {
    const kb = this.kb;
    kb.reset();
    putScope(kb, day === undefined ? NS_TAG : NS_DAY_TAG, tenant, day);
    const scope = kb.toBytes();
    const c = snap.cursor();
    c.seek(scope);
    const check = filter !== undefined || this.anyGone();
    let have = c.next();
    while (have) {
      const ns = c.start + scope.length;
      const ne = findSep(c.buf, ns, c.end);
      const name = unescapeString(c.buf, ns, ne);
      const nameKey = c.buf.slice(c.start, ne + 1);
      let found = !check;
      while (!found && have && sameKeyPrefix(c, nameKey)) {
        const id = readU64(c.buf, c.end - 8);
        found = !this.isGone(id) && (filter === undefined || hasId(filter, id));
        if (!found) have = c.next();
      }
      if (found) out.add(name);
      // skip to the next label name: name + 0x02 sorts after every `name 0x01 …`
      nameKey[nameKey.length - 1] = TAG_SEP + 1;
      c.seekForward(nameKey);
      have = c.next();
    }
  }

  labelValues(
    tenant: Tenant,
    labelName: string,
    matchers: readonly LabelMatcher[],
    minT: number,
    maxT: number,
    limit: number,
  ): string[] {
    const days = this.daysFor(minT, maxT);
    const scopes: (number | undefined)[] = days ?? [undefined];
    const values = new Set<string>();
    if (labelName === "") return [];
    const snap = this.table.snapshot(true);
    try {
      if (matchers.length === 0) {
        for (const d of scopes) this.scanLabelValues(snap, tenant, d, labelName, undefined, values);
      } else {
        const ids = this.searchIDsIn(snap, tenant, matchers, days);
        if (ids.length <= this.namePathMax) {
          const c = snap.cursor();
          const lr = this.lr;
          const want = utf8.enc.encode(labelName);
          for (let i = 0; i < ids.length; i++) {
            const e = this.idEntry(c, ids[i]!);
            if (e === undefined) continue;
            lr.parse(e.name);
            const j = lr.find(e.name, want);
            if (j >= 0) values.add(utf8.dec.decode(e.name.subarray(lr.ranges[j * 4 + 2], lr.ranges[j * 4 + 3])));
          }
        } else {
          for (const d of scopes) this.scanLabelValues(snap, tenant, d, labelName, ids, values);
        }
      }
    } finally {
      snap.release();
    }
    return sortLimit(values, limit);
  }

  private scanLabelValues(
    snap: Snapshot,
    tenant: Tenant,
    day: number | undefined,
    label: string,
    filter: IdSet | undefined,
    out: Set<string>,
  ): void {
    const lp = this.labelPrefix(tenant, day, label);
    const c = snap.cursor();
    const check = filter !== undefined || this.anyGone();
    let cur: string | undefined;
    scanValues(
      c,
      lp,
      lp,
      (buf, vs, ve) => {
        cur = unescapeString(buf, vs, ve);
        if (!check) {
          out.add(cur);
          return false; // seen: skip the rest of this value
        }
        return !out.has(cur);
      },
      (id) => {
        if (!this.isGone(id) && (filter === undefined || hasId(filter, id))) out.add(cur!);
      },
    );
  }

  /** Number of live series of the tenant (global index). */
  seriesCount(tenant: Tenant): number {
    const snap = this.table.snapshot(true);
    try {
      return this.removeDeleted(this.allIDs(snap, tenant, undefined)).length;
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
      const all = filter ?? this.removeDeleted(this.allIDs(snap, tenant, day));
      const check = filter !== undefined || this.anyGone();
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
      this.deleted.add(id);
    }
    this.generation++;
    this.stats.deleted += ids.length;
    this.tsidCache.clear();
    this.recent = new Map();
    this.table.flush().catch((err: unknown) => this.onBackgroundError(err));
    return ids.length;
  }

  private onBackgroundError(err: unknown): void {
    console.error("indexdb background error", err);
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
    for (const d of [...this.dayBitmaps.keys()]) if (d < minDay) this.dayBitmaps.delete(d);
    this.generation++;
    this.retentionMerge ??= this.pruneAndMerge().finally(() => {
      this.retentionMerge = undefined;
    });
    await this.retentionMerge;
  }

  private retentionMerge: Promise<void> | undefined;

  private async pruneAndMerge(): Promise<void> {
    if (this.pruned === undefined) await this.markPruned();
    if (this.pruned !== undefined) await this.finishPrune();
    else await this.table.forceMerge();
  }

  /**
   * Finds the series with no per-day entry on or after minDay, among those that existed when
   * the scan began, and makes them invisible at once (the set is persisted first).
   * Runs in chunks so the event loop keeps serving; series seen on any day ≥ minDay while it
   * ran (the day bitmaps record every per-day entry this process writes) are kept.
   */
  private async markPruned(): Promise<void> {
    const below = this.nextID;
    const minDay = this.minDay;
    const live = new IdBitmap();
    const dead = new IdBitmap();
    const snap = this.table.snapshot(true);
    try {
      let c = snap.cursor();
      c.seek(new Uint8Array([NS_DAY_ALL]));
      let n = 0;
      // `05 | tenant | day | id` sorts by tenant, then day: in each tenant, seek past the days
      // before minDay (merges drop them later) instead of reading them.
      const skip = new Uint8Array(13);
      while (c.next()) {
        this.stats.pruneScanned++;
        if (c.length === 21) {
          if (readU32(c.buf, c.start + 9) < minDay) {
            skip.set(c.buf.subarray(c.start, c.start + 9));
            writeU32(skip, 9, minDay);
            c.seekForward(skip);
          } else live.add(readU64(c.buf, c.end - 8));
        }
        if (++n % PRUNE_SCAN_CHUNK === 0) await yieldToLoop();
        if (this.closed) return;
      }
      c = snap.cursor();
      c.seek(new Uint8Array([NS_ID]));
      while (c.next()) {
        if (c.buf[c.start] !== NS_ID) break;
        if (c.length >= 9) {
          const id = readU64(c.buf, c.start + 1);
          if (id < below && !live.has(id)) dead.add(id);
        }
        if (++n % PRUNE_SCAN_CHUNK === 0) await yieldToLoop();
        if (this.closed) return;
      }
    } finally {
      snap.release();
    }
    if (minDay !== this.minDay) return; // retention moved on meanwhile; the next call redoes it
    for (const [day, bm] of this.dayBitmaps) if (day >= minDay) dead.andNot(bm);
    const count = dead.count();
    if (count === 0) return;
    this.writePruneSet(dead);
    this.pruned = dead;
    this.stats.pruned += count;
    this.generation++;
    this.tsidCache.clear();
    this.recent = new Map();
    this.idCache.clear();
    this.filterCache.clear();
    this.onPrune?.();
  }

  /** Rewrites every part without the pruned series, then forgets the set. */
  private async finishPrune(): Promise<void> {
    await this.table.forceMerge();
    const pr = this.pruned;
    if (pr === undefined || this.closed) return;
    pr.forEach((id) => this.deleted.delete(id));
    this.pruned = undefined;
    fs.rmSync(path.join(this.dir, PRUNE_FILE), { force: true });
    fsyncDir(this.dir);
  }

  /** prune.bin: `u32 magic "SPR1" | u32 words | u32 word* | u32 crc32` (big-endian). */
  private writePruneSet(bm: IdBitmap, dir = this.dir): void {
    const w = bm.raw;
    let last = w.length;
    while (last > 0 && w[last - 1] === 0) last--;
    const bb = new ByteBuffer(12 + last * 4);
    bb.u32(PRUNE_MAGIC);
    bb.u32(last);
    for (let i = 0; i < last; i++) bb.u32(w[i]!);
    bb.u32(crc32(bb.view()) >>> 0);
    writeFileAtomic(dir, PRUNE_FILE, bb.view());
  }

  private loadPruneSet(): void {
    const file = path.join(this.dir, PRUNE_FILE);
    if (!fs.existsSync(file)) return;
    const data = fs.readFileSync(file);
    const b = new Uint8Array(data.buffer, data.byteOffset, data.length);
    const ok = b.length >= 12 && readU32(b, 0) === PRUNE_MAGIC && b.length === 12 + readU32(b, 4) * 4 &&
      (crc32(b.subarray(0, b.length - 4)) >>> 0) === readU32(b, b.length - 4);
    if (!ok) {
      // Written atomically, so this is damage from outside: pruning is only an optimisation and
      // the next retention step recomputes the set, so dropping the file loses nothing.
      fs.rmSync(file);
      fsyncDir(this.dir);
      return;
    }
    const words = new Uint32Array(readU32(b, 4));
    for (let i = 0; i < words.length; i++) words[i] = readU32(b, 8 + i * 4);
    this.pruned = IdBitmap.fromWords(words);
  }

  /** Makes everything added so far durable on disk. */
  async flush(): Promise<void> {
    await this.table.flush();
  }

  /** Merges all parts into one (also removes dropped per-day entries). */
  async forceMerge(): Promise<void> {
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
    if (this.pruned !== undefined) this.writePruneSet(this.pruned, dir);
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
    for (const bm of this.dayBitmaps.values()) bitmapBytes += bm.bytes;
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
      recent_series: this.recent.size,
      day_bitmaps: this.dayBitmaps.size,
      day_bitmaps_bytes: bitmapBytes,
      deleted_series: this.deleted.size,
      series_created_total: this.stats.created,
      series_lookups_total: this.stats.lookups,
      index_lookups_total: this.stats.indexLookups,
      per_day_entries_created_total: this.stats.dayEntries,
      searches_total: this.stats.searches,
      series_deleted_total: this.stats.deleted,
      series_pruned_total: this.stats.pruned,
      prune_scanned_day_items_total: this.stats.pruneScanned,
      prune_pending: this.pruned === undefined ? 0 : 1,
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
      this.saveTsidCache();
    } catch (err) {
      this.onBackgroundError(err); // a lost cache only costs index lookups after restart
    }
  }

  /**
   * Saves the metricName → TSID cache on a clean close (like VictoriaMetrics' cache/ dir), so
   * that a restart does not resolve every active series through the index again. Layout:
   * `u32 magic "STC1" | u64 idHighWater | u32 count | { uvarint len | name | TSID | u32 day }* |
   * u32 crc32`. Entries are valid only for the index state they were saved with: the file is
   * deleted (and the deletion made durable) as soon as it is read.
   */
  private saveTsidCache(): void {
    const bb = new ByteBuffer(1 << 16);
    bb.u32(TSID_CACHE_MAGIC);
    bb.u64(this.idHighWater);
    bb.u32(0);
    let n = 0;
    for (const [k, e] of this.tsidCache.all()) {
      if (this.deleted.has(e.tsid.metricID) || e.day < 0) continue;
      bb.uvarint(k.length);
      bb.ensure(k.length);
      bb.len += Buffer.from(bb.buf.buffer, bb.buf.byteOffset, bb.buf.byteLength).write(k, bb.len, "latin1");
      bb.ensure(TSID_SIZE);
      encodeTSID(e.tsid, bb.buf, bb.len);
      bb.len += TSID_SIZE;
      bb.u32(e.day);
      n++;
    }
    if (n === 0) return;
    const b = bb.buf;
    b[12] = n >>> 24;
    b[13] = (n >>> 16) & 0xff;
    b[14] = (n >>> 8) & 0xff;
    b[15] = n & 0xff;
    bb.u32(crc32(bb.view()) >>> 0);
    writeFileAtomic(this.dir, TSID_CACHE_FILE, bb.view());
  }

  private loadTsidCache(): void {
    const file = path.join(this.dir, TSID_CACHE_FILE);
    if (!fs.existsSync(file)) return;
    const data = fs.readFileSync(file);
    fs.rmSync(file);
    fsyncDir(this.dir);
    const b = new Uint8Array(data.buffer, data.byteOffset, data.length);
    if (b.length < 20 || (crc32(b.subarray(0, b.length - 4)) >>> 0) !== readU32(b, b.length - 4)) return;
    if (readU32(b, 0) !== TSID_CACHE_MAGIC || readU64(b, 4) !== this.idHighWater) return;
    const n = readU32(b, 12);
    const r = new ByteReader(b, 16, b.length - 4, () => {
      throw new BadDataError("tsid cache truncated", "STRATA_CORRUPT_DATA");
    });
    try {
      for (let i = 0; i < n; i++) {
        const len = r.uvarint();
        const key = latin1(b, r.pos, r.pos + len);
        r.pos += len;
        const tsid = decodeTSID(r.bytes(TSID_SIZE), 0);
        const day = r.u32();
        if (!this.deleted.has(tsid.metricID)) this.tsidCache.set(key, { tsid, day, fresh: false });
      }
    } catch {
      this.tsidCache.clear(); // unreadable: start cold rather than trust part of it
    }
  }
}
