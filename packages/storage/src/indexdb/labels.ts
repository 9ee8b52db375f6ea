import type { LabelMatcher, Tenant } from "@strata/core";
import { readU64 } from "../bytes.js";
import type { Snapshot } from "../mergeset/index.js";
import { hasId, type IdSet } from "./idset.js";
import { NS_DAY_TAG, NS_TAG, TAG_SEP, findSep, putScope, unescapeString, utf8 } from "./keys.js";
import { sameKeyPrefix, scanValues, sortLimit } from "./scan.js";
import type { IndexReader, MatcherSearch } from "./search.js";

/**
 * Label names and values of a scope. Without matchers they come from the label items; with
 * matchers, from the metric names of the matching series while there are at most
 * `namePathMax` of them, else from the label items filtered by the matching ids.
 */
export class LabelQueries {
  constructor(
    private readonly r: IndexReader,
    private readonly search: MatcherSearch,
    private readonly namePathMax: number,
  ) {}

  names(snap: Snapshot, tenant: Tenant, matchers: readonly LabelMatcher[], days: number[] | undefined, limit: number): string[] {
    const scopes: (number | undefined)[] = days ?? [undefined];
    const names = new Set<string>();
    if (matchers.length === 0) {
      for (const d of scopes) this.scanNames(snap, tenant, d, undefined, names);
    } else {
      const ids = this.search.ids(snap, tenant, matchers, days);
      if (ids.length <= this.namePathMax) {
        const c = snap.cursor(true); // sparse: see searchEntries
        const lr = this.r.lr;
        for (let i = 0; i < ids.length; i++) {
          const e = this.r.idEntry(c, ids[i]!);
          if (e === undefined) continue;
          lr.parse(e.name);
          for (let j = 0; j < lr.count; j++) {
            names.add(utf8.dec.decode(e.name.subarray(lr.ranges[j * 4], lr.ranges[j * 4 + 1])));
          }
        }
      } else {
        for (const d of scopes) this.scanNames(snap, tenant, d, ids, names);
      }
    }
    return sortLimit(names, limit);
  }

  values(snap: Snapshot, tenant: Tenant, labelName: string, matchers: readonly LabelMatcher[], days: number[] | undefined, limit: number): string[] {
    const scopes: (number | undefined)[] = days ?? [undefined];
    const values = new Set<string>();
    if (matchers.length === 0) {
      for (const d of scopes) this.scanValues(snap, tenant, d, labelName, undefined, values);
    } else {
      const ids = this.search.ids(snap, tenant, matchers, days);
      if (ids.length <= this.namePathMax) {
        const c = snap.cursor(true); // sparse: see searchEntries
        const lr = this.r.lr;
        const want = utf8.enc.encode(labelName);
        for (let i = 0; i < ids.length; i++) {
          const e = this.r.idEntry(c, ids[i]!);
          if (e === undefined) continue;
          lr.parse(e.name);
          const j = lr.find(e.name, want);
          if (j >= 0) values.add(utf8.dec.decode(e.name.subarray(lr.ranges[j * 4 + 2], lr.ranges[j * 4 + 3])));
        }
      } else {
        for (const d of scopes) this.scanValues(snap, tenant, d, labelName, ids, values);
      }
    }
    return sortLimit(values, limit);
  }

  /** Adds label names of the scope that have a live series (in `filter` when given). */
  private scanNames(snap: Snapshot, tenant: Tenant, day: number | undefined, filter: IdSet | undefined, out: Set<string>): void {
    const kb = this.r.kb;
    kb.reset();
    putScope(kb, day === undefined ? NS_TAG : NS_DAY_TAG, tenant, day);
    const scope = kb.toBytes();
    const c = snap.cursor();
    c.seek(scope);
    const gone = this.r.gone;
    const check = filter !== undefined || gone.any();
    let have = c.next();
    while (have) {
      const ns = c.start + scope.length;
      const ne = findSep(c.buf, ns, c.end);
      const name = unescapeString(c.buf, ns, ne);
      const nameKey = c.buf.slice(c.start, ne + 1);
      let found = !check;
      while (!found && have && sameKeyPrefix(c, nameKey)) {
        const id = readU64(c.buf, c.end - 8);
        found = !gone.has(id) && (filter === undefined || hasId(filter, id));
        if (!found) have = c.next();
      }
      if (found) out.add(name);
      // skip to the next label name: name + 0x02 sorts after every `name 0x01 …`
      nameKey[nameKey.length - 1] = TAG_SEP + 1;
      c.seekForward(nameKey);
      have = c.next();
    }
  }

  private scanValues(snap: Snapshot, tenant: Tenant, day: number | undefined, label: string, filter: IdSet | undefined, out: Set<string>): void {
    const lp = this.search.labelPrefix(tenant, day, label);
    const c = snap.cursor();
    const gone = this.r.gone;
    const check = filter !== undefined || gone.any();
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
        if (!gone.has(id) && (filter === undefined || hasId(filter, id))) out.add(cur!);
      },
    );
  }
}
