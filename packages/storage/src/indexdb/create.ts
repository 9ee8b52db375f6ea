import { BadDataError, type Tenant, xxhash64 } from "@strata/core";
import { ByteBuffer, latin1, readU64 } from "../bytes.js";
import { MAX_ITEM_SIZE } from "../mergeset/constants.js";
import { PartSeek, type Snapshot, type Table } from "../mergeset/index.js";
import { type TSID, TSID_SIZE, decodeTSID, encodeTSID } from "../tsid.js";
import type { NameEntry } from "./entries.js";
import { IdBitmap } from "./idset.js";
import { INSTANCE_BYTES, JOB_BYTES, NAME_BYTES, NS_DAY_ALL, NS_DAY_TAG, NS_ID, NS_NAME_TO_TSID, NS_TAG, TAG_SEP, putEscaped, putScope, tenantOfName } from "./keys.js";
import { writeId } from "./scan.js";
import type { IndexReader } from "./search.js";

const MAX_DAY_BITMAPS = 8;
/** Longest metric name: its `02` item (name + 33 bytes) must fit a mergeset item. */
const MAX_NAME_BYTES = MAX_ITEM_SIZE - 64;

function hash32(b: Uint8Array): number {
  return Number(BigInt.asUintN(32, xxhash64(b)));
}

export interface SeriesWriterDeps {
  readonly reader: IndexReader;
  /** The index's mergeset (opened after the writer is made). */
  table(): Table;
  /** A new metricID (its high-water mark persisted first). */
  allocID(): number;
  /** Items were added: cached search results are stale. */
  changed(): void;
  readonly stats: { created: number; indexLookups: number; dayEntries: number };
}

/**
 * Series creation: finds a metric name's series in the index or creates it (its `01`, `02` and
 * `03` items), and writes the per-day items (`04`, `05`) of the days a series has samples on.
 */
export class SeriesWriter {
  /** Series created since the table last converted pending items (invisible to snapshot(false)). */
  private recent = new Map<string, NameEntry>();
  /** Per-day: the metricIDs whose per-day items this process wrote or found (the last few days). */
  readonly dayBitmaps = new Map<number, IdBitmap>();
  private h1 = 0;
  private h2 = 0;
  private readonly ps = new PartSeek();
  /** `02 | metricID` of the candidate being confirmed. */
  private readonly idKey = Uint8Array.of(NS_ID, 0, 0, 0, 0, 0, 0, 0, 0);
  private readonly candidates: number[] = [];
  /**
   * The escaped label pairs (`esc(name) 01 esc(value) 01`, back to back, pair i ends at
   * pairEnds[i]) of the series `pairsOf`: a new series' `03` items and its first day's `04`
   * items share them, so they are escaped once.
   */
  private readonly pairs = new ByteBuffer(256);
  private pairEnds = new Int32Array(16);
  private pairCount = 0;
  private pairsOf = -1;

  constructor(private readonly d: SeriesWriterDeps) {}

  get recentCount(): number {
    return this.recent.size;
  }

  /** Forgets the recently created series (their items are now visible to lookups, or they were deleted). */
  forgetRecent(): void {
    this.recent = new Map();
  }

  /**
   * The series of a metric name, created when the index has none. `key` is the name's latin1
   * form if the caller has it (made here only when recently created series must be checked).
   */
  lookupOrCreate(name: Uint8Array, key: string | undefined): NameEntry {
    if (this.recent.size > 0) {
      key ??= latin1(name, 0, name.length);
      const e = this.recent.get(key);
      if (e !== undefined) return e;
    }
    this.d.stats.indexLookups++;
    const tsid = this.findByName(name);
    return tsid !== undefined ? { tsid, day: -1, fresh: false } : this.create(name, key ?? latin1(name, 0, name.length));
  }

  /**
   * `01 | xxhash64(name) u64` into kb (and the halves into h1/h2 for the bloom filters). The
   * item holds neither the name nor the TSID, only the metricID: a hit is confirmed against the
   * metricID's `02` item (64-bit hash collisions are resolved there), which holds both.
   */
  private nameKey(name: Uint8Array): void {
    const h = xxhash64(name);
    this.h1 = Number(h >> 32n);
    this.h2 = Number(BigInt.asUintN(32, h));
    this.putNameKey();
  }

  /** `01 | h1 | h2` into kb: the key nameKey made last (create reuses the lookup's hash). */
  private putNameKey(): void {
    const kb = this.d.reader.kb;
    kb.reset();
    kb.byte(NS_NAME_TO_TSID);
    kb.u32(this.h1);
    kb.u32(this.h2);
  }

  /**
   * The live (non-deleted) TSID of a metric name among converted items. A series' `01` and `02`
   * items are added together, so they almost always sit in the same part: each candidate is
   * confirmed against its `02` item in that part alone, and only when the `02` item is elsewhere
   * (the pending items were converted between the two adds) in all parts. Point seeks into the
   * parts' blocks with reused key buffers; the name is compared in the block, and only the
   * matching item is decoded.
   */
  private findByName(name: Uint8Array): TSID | undefined {
    const r = this.d.reader;
    this.nameKey(name);
    const key = r.kb.buf;
    const keyLen = r.kb.len;
    const snap = this.d.table().snapshot(false);
    try {
      const parts = snap.parts;
      const ps = this.ps;
      let best: TSID | undefined;
      for (let pi = 0; pi < parts.length; pi++) {
        const part = parts[pi]!;
        if (!part.mayContainKey(this.h1, this.h2)) continue;
        // Candidates first: confirming one moves the seek.
        const ids = this.candidates;
        ids.length = 0;
        for (let ok = ps.seek(part, key, keyLen); ok && ps.hasPrefix(key, keyLen); ok = ps.next()) {
          // `01 | hash | metricID`; parts of an older format hold `01 | hash | TSID` (both end with the id)
          const len = ps.end - ps.start;
          if (len !== keyLen + 8 && len !== keyLen + TSID_SIZE) continue;
          const id = readU64(ps.buf, ps.end - 8);
          if (!r.gone.has(id) && (best === undefined || id < best.metricID)) ids.push(id);
        }
        for (const id of ids) {
          const t = this.confirm(part, id, name) ?? this.confirmAnywhere(parts, pi, id, name);
          if (t !== undefined) {
            best = t;
            break; // ids ascend within a part
          }
        }
      }
      return best;
    } finally {
      snap.release();
    }
  }

  /** The TSID in the `02` item of `id` in `part` when that item holds `name`. */
  private confirm(part: Snapshot["parts"][number], id: number, name: Uint8Array): TSID | undefined {
    const key = this.idKey;
    writeId(key, 1, id);
    const ps = this.ps;
    if (!ps.seek(part, key, key.length) || !ps.hasPrefix(key, key.length)) return undefined;
    const s = ps.start + key.length + TSID_SIZE;
    if (ps.end - s !== name.length) return undefined;
    const b = ps.buf;
    for (let i = name.length - 1; i >= 0; i--) if (b[s + i] !== name[i]) return undefined;
    return decodeTSID(b, ps.start + key.length);
  }

  private confirmAnywhere(parts: Snapshot["parts"], skip: number, id: number, name: Uint8Array): TSID | undefined {
    for (let pi = 0; pi < parts.length; pi++) {
      if (pi === skip) continue;
      const t = this.confirm(parts[pi]!, id, name);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** Creates the series of `name`; called right after findByName(name) missed (h1/h2 are its hash). */
  private create(name: Uint8Array, key: string): NameEntry {
    if (name.length > MAX_NAME_BYTES) {
      throw new BadDataError(`metric name of ${name.length} bytes is longer than ${MAX_NAME_BYTES}`, "STRATA_LABEL_TOO_LONG");
    }
    const { lr, kb } = this.d.reader;
    lr.parse(name); // validates before anything is written
    const tenant = tenantOfName(name);
    const r = lr.ranges;
    const ni = lr.find(name, NAME_BYTES);
    const metricGroupID = ni < 0 ? 0 : hash32(name.subarray(r[ni * 4 + 2], r[ni * 4 + 3]));
    const ji = lr.find(name, JOB_BYTES);
    const ii = lr.find(name, INSTANCE_BYTES);
    let jobInstanceID = 0;
    if (ji >= 0 || ii >= 0) {
      kb.reset();
      if (ji >= 0) kb.bytes(name, r[ji * 4 + 2], r[ji * 4 + 3]);
      kb.byte(0xff); // never inside UTF-8, so (job, instance) pairs cannot collide by concatenation
      if (ii >= 0) kb.bytes(name, r[ii * 4 + 2], r[ii * 4 + 3]);
      jobInstanceID = hash32(kb.view());
    }
    const metricID = this.d.allocID();
    const tsid: TSID = { accountID: tenant.accountID, projectID: tenant.projectID, metricGroupID, jobInstanceID, metricID };

    const table = this.d.table();
    this.putNameKey(); // findByName(name) hashed it just before
    kb.u64(metricID); // the TSID is in the `02` item a lookup reads anyway to confirm the name
    table.addRange(kb.buf, 0, kb.len);
    kb.reset();
    kb.byte(NS_ID);
    kb.u64(metricID);
    kb.ensure(TSID_SIZE);
    encodeTSID(tsid, kb.buf, kb.len);
    kb.len += TSID_SIZE;
    kb.bytes(name);
    table.addRange(kb.buf, 0, kb.len);
    this.addTagItems(NS_TAG, tenant, undefined, name, metricID);
    this.d.changed();
    this.d.stats.created++;
    const e: NameEntry = { tsid, day: -1, fresh: true };
    this.recent.set(key, e);
    return e;
  }

  /** Adds `ns | scope | esc(name) 01 | esc(value) 01 | metricID` for every label of `name`. */
  private addTagItems(ns: number, tenant: Tenant, day: number | undefined, name: Uint8Array, metricID: number): void {
    if (this.pairsOf !== metricID) this.escapePairs(name, metricID);
    const kb = this.d.reader.kb;
    const table = this.d.table();
    const pb = this.pairs.buf;
    const ends = this.pairEnds;
    kb.reset();
    putScope(kb, ns, tenant, day);
    const scope = kb.len;
    for (let i = 0, s = 0; i < this.pairCount; i++) {
      const e = ends[i]!;
      kb.len = scope;
      kb.ensure(e - s + 8);
      const b = kb.buf;
      let p = scope;
      for (let j = s; j < e; j++) b[p++] = pb[j]!;
      kb.len = p;
      kb.u64(metricID);
      table.addRange(b, 0, kb.len);
      s = e;
    }
  }

  /** Fills pairs with the escaped label pairs of `name`, the series `metricID`. */
  private escapePairs(name: Uint8Array, metricID: number): void {
    this.pairsOf = -1; // until filled (parse may throw)
    const lr = this.d.reader.lr;
    lr.parse(name);
    const r = lr.ranges;
    const pairs = this.pairs;
    pairs.reset();
    if (this.pairEnds.length < lr.count) this.pairEnds = new Int32Array(lr.count * 2);
    for (let i = 0; i < lr.count; i++) {
      putEscaped(pairs, name, r[i * 4]!, r[i * 4 + 1]!);
      pairs.byte(TAG_SEP);
      putEscaped(pairs, name, r[i * 4 + 2]!, r[i * 4 + 3]!);
      pairs.byte(TAG_SEP);
      this.pairEnds[i] = pairs.len;
    }
    this.pairCount = lr.count;
    this.pairsOf = metricID;
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

  /** Writes the per-day items of `day` for the series unless they exist; records the day in `e`. */
  ensureDay(e: NameEntry, name: Uint8Array, day: number): void {
    const id = e.tsid.metricID;
    const bm = this.dayBitmap(day);
    if (!bm.has(id)) {
      const tenant: Tenant = e.tsid;
      if (e.fresh || !this.dayEntryExists(tenant, day, id)) {
        const kb = this.d.reader.kb;
        kb.reset();
        putScope(kb, NS_DAY_ALL, tenant, day);
        kb.u64(id);
        this.d.table().addRange(kb.buf, 0, kb.len);
        this.addTagItems(NS_DAY_TAG, tenant, day, name, id);
        this.d.changed();
        this.d.stats.dayEntries++;
      }
      bm.add(id);
    }
    e.fresh = false;
    e.day = day;
  }

  private dayEntryExists(tenant: Tenant, day: number, id: number): boolean {
    const kb = this.d.reader.kb;
    kb.reset();
    putScope(kb, NS_DAY_ALL, tenant, day);
    kb.u64(id);
    const snap = this.d.table().snapshot(false);
    try {
      const ps = this.ps;
      for (const part of snap.parts) {
        if (ps.seek(part, kb.buf, kb.len) && ps.end - ps.start === kb.len && ps.hasPrefix(kb.buf, kb.len)) return true;
      }
      return false;
    } finally {
      snap.release();
    }
  }
}
