import { compareStrings, type LabelMatcher } from "@strata/core";
import { readU64 } from "../bytes.js";
import type { Cursor } from "../mergeset/cursor.js";
import { hasId, type IdSet } from "./idset.js";
import { findSep, unescapeString } from "./keys.js";

export interface TsdbStatusEntry {
  readonly name: string;
  readonly value: number;
}

/** Cardinality statistics of one day of one tenant (Prometheus' /api/v1/status/tsdb). */
export interface TsdbStatus {
  readonly totalSeries: number;
  readonly totalLabelValuePairs: number;
  readonly seriesCountByMetricName: readonly TsdbStatusEntry[];
  readonly seriesCountByLabelName: readonly TsdbStatusEntry[];
  readonly seriesCountByFocusLabelValue: readonly TsdbStatusEntry[];
  /** name is "label=value" */
  readonly seriesCountByLabelValuePair: readonly TsdbStatusEntry[];
  readonly labelValueCountByLabelName: readonly TsdbStatusEntry[];
}

export interface TsdbStatusRequest {
  /** Day since the unix epoch (UTC). */
  readonly date: number;
  readonly topN: number;
  readonly focusLabel?: string;
  readonly matchers?: readonly LabelMatcher[];
}

/** Order of every list: by value desc, then name asc. */
function before(a: TsdbStatusEntry, b: TsdbStatusEntry): boolean {
  return a.value > b.value || (a.value === b.value && compareStrings(a.name, b.name) < 0);
}

/**
 * The best `n` entries (all when n <= 0) without holding every candidate: a candidate whose
 * value is below the current n-th is rejected before its name string is even built.
 */
export class TopN {
  private readonly items: TsdbStatusEntry[] = []; // sorted best first

  constructor(private readonly n: number) {}

  push(value: number, name: () => string): void {
    const items = this.items;
    const full = this.n > 0 && items.length >= this.n;
    if (full && value < items[items.length - 1]!.value) return;
    const e = { name: name(), value };
    if (full && !before(e, items[items.length - 1]!)) return;
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(items[mid]!, e)) lo = mid + 1;
      else hi = mid;
    }
    items.splice(lo, 0, e);
    if (this.n > 0 && items.length > this.n) items.pop();
  }

  result(): TsdbStatusEntry[] {
    return this.items;
  }
}

/**
 * Walks the per-day tag items of one (tenant, day) scope (`04 | scope | esc(label) 01 |
 * esc(value) 01 | metricID`, sorted by label then value) and counts series per pair, counting
 * only ids in `only` when given.
 */
export function collectStatus(
  c: Cursor,
  scope: Uint8Array,
  only: IdSet | undefined,
  topN: number,
  focusLabel: string | undefined,
): Omit<TsdbStatus, "totalSeries"> {
  const byName = new TopN(topN);
  const byLabel = new TopN(topN);
  const byFocus = new TopN(topN);
  const byPair = new TopN(topN);
  const valuesByLabel = new TopN(topN);
  let pairs = 0;
  c.seek(scope);
  let key: Uint8Array | undefined; // scope | label 01 | value 01 of the current pair
  let labelEnd = 0; // offset of the 01 after the label in `key`
  let label = "";
  let count = 0;
  let labelSeries = 0;
  let labelValues = 0;
  const value = (): string => unescapeString(key!, labelEnd + 1, key!.length - 1);
  const endPair = (): void => {
    if (count === 0) return;
    labelSeries += count;
    labelValues++;
    pairs += count;
    const n = count;
    byPair.push(n, () => `${label}=${value()}`);
    if (label === "__name__") byName.push(n, value);
    if (label === focusLabel) byFocus.push(n, value);
  };
  const endLabel = (): void => {
    if (labelValues === 0) return;
    const l = label;
    byLabel.push(labelSeries, () => l);
    valuesByLabel.push(labelValues, () => l);
    labelSeries = 0;
    labelValues = 0;
  };
  while (c.next()) {
    const idPos = c.end - 8;
    if (key === undefined || !sameRange(c.buf, c.start, idPos, key)) {
      endPair();
      count = 0;
      const ns = c.start + scope.length;
      const ne = findSep(c.buf, ns, idPos);
      const sameLabel = key !== undefined && ne - c.start === labelEnd && sameRange(c.buf, c.start, ne, key.subarray(0, labelEnd));
      if (!sameLabel) {
        endLabel();
        label = unescapeString(c.buf, ns, ne);
      }
      key = c.buf.slice(c.start, idPos);
      labelEnd = ne - c.start;
    }
    if (only === undefined || hasId(only, readU64(c.buf, idPos))) count++;
  }
  endPair();
  endLabel();
  return {
    totalLabelValuePairs: pairs,
    seriesCountByMetricName: byName.result(),
    seriesCountByLabelName: byLabel.result(),
    seriesCountByFocusLabelValue: byFocus.result(),
    seriesCountByLabelValuePair: byPair.result(),
    labelValueCountByLabelName: valuesByLabel.result(),
  };
}

function sameRange(b: Uint8Array, s: number, e: number, key: Uint8Array): boolean {
  if (e - s !== key.length) return false;
  for (let i = key.length - 1; i >= 0; i--) if (b[s + i] !== key[i]) return false;
  return true;
}
