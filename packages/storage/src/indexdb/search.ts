import { DAY_MS, type LabelMatcher, type Tenant } from "@strata/core";
import { readU64, type ByteBuffer } from "../bytes.js";
import type { Cursor } from "../mergeset/cursor.js";
import type { Snapshot } from "../mergeset/index.js";
import type { TwoGenCache } from "@strata/core";
import type { IdEntry } from "./entries.js";
import type { GoneSeries } from "./gone.js";
import { EMPTY_SET, type IdSet, IdSetBuilder, intersect, subtract } from "./idset.js";
import { type LabelRanges, NS_DAY_ALL, NS_DAY_TAG, NS_TAG, TAG_SEP, putEscapedString, putScope, unescapeString, utf8 } from "./keys.js";
import { cost, inverseOf, scanValues } from "./scan.js";

/** What the searches of one IndexDB share: its gone series, scratch buffers and id lookup. */
export interface IndexReader {
  readonly gone: GoneSeries;
  /** Scratch of the owning IndexDB (every operation is synchronous, on one thread). */
  readonly kb: ByteBuffer;
  readonly lr: LabelRanges;
  /** Bumped whenever items are added or removed: cached matcher results of older ones are stale. */
  readonly generation: number;
  /** The TSID and name of a metricID, through the metricID cache. */
  idEntry(c: Cursor, id: number): IdEntry | undefined;
}

function dayOf(t: number): number {
  return Math.floor(t / DAY_MS);
}

/** Days to search per-day, or undefined for the global index (ranges longer than maxPerDayDays). */
export function daysFor(minT: number, maxT: number, minDay: number, maxPerDayDays: number): number[] | undefined {
  if (!Number.isFinite(minT) || !Number.isFinite(maxT)) return undefined;
  if (minT > maxT) return [];
  const lo = Math.max(dayOf(minT), minDay, 0);
  const hi = dayOf(maxT);
  if (hi < lo) return [];
  if (hi - lo + 1 > maxPerDayDays) return undefined;
  const out: number[] = [];
  for (let d = lo; d <= hi; d++) out.push(d);
  return out;
}

/**
 * Resolves label matchers to sorted metricIDs over the `03` (global) or `04` (per-day) items, with
 * the results of single matchers cached per generation.
 */
export class MatcherSearch {
  constructor(
    private readonly r: IndexReader,
    private readonly filterCache: TwoGenCache<string, IdSet>,
    /** Below this many candidates, costly matchers are checked against metric names instead. */
    private readonly nameFilterMax: number,
  ) {}

  /** Live series of `tenant` matching all matchers on `days` (undefined: the global index). */
  ids(snap: Snapshot, tenant: Tenant, matchers: readonly LabelMatcher[], days: number[] | undefined): IdSet {
    let ids: IdSet;
    if (days === undefined) ids = this.scope(snap, tenant, undefined, matchers);
    else if (days.length === 1) ids = this.scope(snap, tenant, days[0], matchers);
    else {
      const b = new IdSetBuilder();
      for (const d of days) b.pushSet(this.scope(snap, tenant, d, matchers));
      ids = b.finish();
    }
    return this.r.gone.remove(ids);
  }

  /**
   * Prometheus semantics: a matcher that does not match "" selects the union of the series of
   * the label values it matches; one that matches "" (also series without the label) removes
   * the series of the values it does not match (set subtraction).
   */
  private scope(snap: Snapshot, tenant: Tenant, day: number | undefined, matchers: readonly LabelMatcher[]): IdSet {
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
    const c = snap.cursor(true);
    const lr = this.r.lr;
    const names = ms.map((m) => utf8.enc.encode(m.name));
    const out = new Float64Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const e = this.r.idEntry(c, ids[i]!);
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
    return `${this.r.generation}|${tenant.accountID}:${tenant.projectID}|${day ?? "g"}`;
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

  /** `ns | scope | esc(label) 01`: the prefix of a label's items in a scope. */
  labelPrefix(tenant: Tenant, day: number | undefined, label: string): Uint8Array {
    const kb = this.r.kb;
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
    const kb = this.r.kb;
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
  allIDs(snap: Snapshot, tenant: Tenant, day: number | undefined): IdSet {
    const key = `${this.scopeKey(tenant, day)}|*`;
    let s = this.filterCache.get(key);
    if (s !== undefined) return s;
    const b = new IdSetBuilder();
    const c = snap.cursor();
    if (day === undefined) {
      c.seek(this.labelPrefix(tenant, undefined, "__name__"));
    } else {
      const kb = this.r.kb;
      kb.reset();
      putScope(kb, NS_DAY_ALL, tenant, day);
      c.seek(kb.toBytes());
    }
    while (c.next()) b.push(readU64(c.buf, c.end - 8));
    s = b.finish();
    this.filterCache.set(key, s);
    return s;
  }
}
