import { type LabelMatcher, type MatchType, compareStrings, newMatcher } from "@strata/core";
import { readU64 } from "../bytes.js";
import type { Cursor } from "../mergeset/cursor.js";
import { TAG_SEP } from "./keys.js";
import type { TsdbStatus } from "./status.js";

/** Scans of label values and small helpers shared by IndexDB's search paths. */

/** Items of a non-matching value read before seeking past it. */
const SKIP_SCAN = 8;

const INVERSE: Record<MatchType, MatchType> = { "=": "!=", "!=": "=", "=~": "!~", "!~": "=~" };

export function inverseOf(m: LabelMatcher): LabelMatcher {
  return newMatcher(INVERSE[m.type], m.name, m.value);
}

/** Rough cost of resolving a matcher through the index: 0–1 seek values, 2 scan a prefix, 3 scan all values. */
export function cost(m: LabelMatcher): number {
  if (m.type === "=") return 0;
  if (m.type === "=~" && m.setMatches !== undefined) return 1;
  if (m.type === "=~" && m.prefix !== "") return 2;
  return 3;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

export function writeId(b: Uint8Array, p: number, id: number): void {
  const hi = Math.floor(id / 0x1_0000_0000);
  const lo = id >>> 0;
  b[p] = hi >>> 24;
  b[p + 1] = (hi >>> 16) & 0xff;
  b[p + 2] = (hi >>> 8) & 0xff;
  b[p + 3] = hi & 0xff;
  b[p + 4] = lo >>> 24;
  b[p + 5] = (lo >>> 16) & 0xff;
  b[p + 6] = (lo >>> 8) & 0xff;
  b[p + 7] = lo & 0xff;
}

export function sameKeyPrefix(c: Cursor, key: Uint8Array): boolean {
  if (c.length < key.length) return false;
  for (let i = key.length - 1; i >= 0; i--) if (c.buf[c.start + i] !== key[i]) return false;
  return true;
}

export function sortLimit(s: Set<string>, limit: number): string[] {
  const out = [...s].sort(compareStrings);
  return limit > 0 && out.length > limit ? out.slice(0, limit) : out;
}

export function emptyStatus(): TsdbStatus {
  return {
    totalSeries: 0,
    totalLabelValuePairs: 0,
    seriesCountByMetricName: [],
    seriesCountByLabelName: [],
    seriesCountByFocusLabelValue: [],
    seriesCountByLabelValuePair: [],
    labelValueCountByLabelName: [],
  };
}

/**
 * Walks the values of one label (items `lp | esc(value) 01 | metricID`) starting at `from`.
 * For each new value `test` decides: true → every id of the value goes to `onId`; false → the
 * value is skipped (a seek past it after a few items); undefined → stop (past a prefix).
 */
export function scanValues(
  c: Cursor,
  lp: Uint8Array,
  from: Uint8Array,
  test: (buf: Uint8Array, vs: number, ve: number) => boolean | undefined,
  onId: (id: number) => void,
): void {
  c.seek(lp, from);
  let valKey: Uint8Array | undefined; // lp | esc(value) 01 of the current value
  let match = false;
  let skipped = 0;
  while (c.next()) {
    if (valKey !== undefined && sameKeyPrefix(c, valKey) && c.length === valKey.length + 8) {
      if (match) onId(readU64(c.buf, c.end - 8));
      else if (++skipped >= SKIP_SCAN) {
        valKey[valKey.length - 1] = TAG_SEP + 1;
        c.seekForward(valKey);
        valKey = undefined;
      }
      continue;
    }
    const vs = c.start + lp.length;
    const ve = c.end - 9;
    if (ve < vs || c.buf[ve] !== TAG_SEP) continue; // not a well-formed tag item
    const t = test(c.buf, vs, ve);
    if (t === undefined) return;
    match = t;
    skipped = 0;
    valKey = c.buf.slice(c.start, ve + 1);
    if (match) onId(readU64(c.buf, c.end - 8));
  }
}
