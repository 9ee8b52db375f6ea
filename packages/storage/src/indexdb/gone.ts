import type { IdBitmap, IdSet } from "./idset.js";

/** Series that are never shown nor handed out again: deleted, or being pruned. */
export class GoneSeries {
  readonly deleted = new Set<number>();
  /**
   * Series being pruned (no samples inside the retention): merges drop their global items and
   * lookups ignore them. Persisted in prune.bin until every part has been rewritten.
   */
  pruned: IdBitmap | undefined;

  has(id: number): boolean {
    return this.deleted.has(id) || (this.pruned !== undefined && this.pruned.has(id));
  }

  any(): boolean {
    return this.deleted.size > 0 || this.pruned !== undefined;
  }

  /** `ids` without the gone ones (the same set when none is gone). */
  remove(ids: IdSet): IdSet {
    if (!this.any()) return ids;
    const out = new Float64Array(ids.length);
    let n = 0;
    for (let i = 0; i < ids.length; i++) if (!this.has(ids[i]!)) out[n++] = ids[i]!;
    return n === ids.length ? ids : out.slice(0, n);
  }
}
