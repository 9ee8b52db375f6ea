import { describe, expect, it } from "vitest";
import { RowsBuffer, TSID_WORDS } from "../src/rows-buffer.js";
import { SeriesTable } from "../src/series-table.js";
import { compareTSID as compareTSIDs } from "../src/tsid.js";

/** Deterministic PRNG (the test must not depend on Math.random). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
}

describe("RowsBuffer.drain", () => {
  it("groups rows by series in TSID order across drains with changing series sets", () => {
    const rand = rng(7);
    const table = new SeriesTable();
    const pool: number[] = [];
    for (let i = 0; i < 300; i++) {
      pool.push(table.alloc({ accountID: Math.floor(rand() * 3), projectID: 0, metricGroupID: Math.floor(rand() * 5), jobInstanceID: Math.floor(rand() * 4), metricID: 1000 + i }, 0, 1));
    }
    const buf = new RowsBuffer(100_000, table);
    let prevActive: number[] = [];
    for (let round = 0; round < 40; round++) {
      // Mostly the same series as before, some leave, some (re)appear, sometimes a fresh ref for
      // a known TSID (series cache cleared; the old ref is released and reused later).
      const want = new Map<number, Array<[number, number]>>();
      // Every third round repeats the previous set (the steady state: no new series).
      const active = round % 3 === 1 && prevActive.length > 0 ? prevActive : pool.filter(() => rand() < 0.7);
      prevActive = active;
      if (round % 9 === 8 && active.length > 0) {
        const i = pool.indexOf(active[0]!);
        table.release(pool[i]!);
        pool[i] = table.alloc(table.tsidOf(pool[i]!), 0, 1);
        active[0] = pool[i]!;
      }
      if (round % 9 === 5) {
        const ref = table.alloc({ accountID: Math.floor(rand() * 3), projectID: 0, metricGroupID: Math.floor(rand() * 5), jobInstanceID: Math.floor(rand() * 4), metricID: 5000 + round }, 0, 1);
        pool.push(ref);
        active.push(ref);
      }
      // Every fifth round one row per series, in a shuffled order (high cardinality: a drain's
      // series got one sample each).
      const oneEach = round % 5 === 2;
      const shuffled = [...active].sort(() => rand() - 0.5);
      const nRows = oneEach ? active.length : Math.floor(rand() * 2000);
      for (let r = 0; r < nRows && active.length > 0; r++) {
        const e = oneEach ? shuffled[r]! : active[Math.floor(rand() * active.length)]!;
        const t = Math.floor(rand() * 1e6);
        const v = rand();
        buf.add(e, t, v);
        let l = want.get(e);
        if (l === undefined) want.set(e, (l = []));
        l.push([t, v]);
      }
      if (round % 9 === 4 && active.length > 1) {
        // A series leaves the cache while its rows wait in the buffer; the drain below
        // recycles its ref, and the next round reuses it for another series with another
        // TSID: its old place in the kept TSID order is stale then.
        const i = pool.indexOf(active[1]!);
        table.release(pool[i]!);
        pool[i] = table.alloc(table.tsidOf(pool[i]!), 0, 1);
      }
      const d = buf.drain();
      expect(buf.n).toBe(0);
      expect(d.count).toBe(want.size);
      const slot = (ref: number): number => table.slot[ref]!;
      const bySlot = new Map<number, number>();
      for (const e of want.keys()) bySlot.set(slot(e), e);
      const order: number[] = [];
      for (let o = 0; o < d.count; o++) order.push(bySlot.get(d.slots[o]!)!);
      expect(new Set(order).size).toBe(want.size);
      for (let i = 1; i < order.length; i++) expect(compareTSIDs(table.tsidOf(order[i - 1]!), table.tsidOf(order[i]!))).toBeLessThanOrEqual(0);
      // The o-th series' rows and TSID words are the o-th in the drained arrays.
      for (const [o, e] of order.entries()) {
        const a = d.starts[o]!;
        const b = d.starts[o + 1]!;
        const got: Array<[number, number]> = [];
        for (let i = a; i < b; i++) got.push([d.ts[i]!, d.vals[i]!]);
        expect(got).toEqual(want.get(e));
        const w = Array.from(d.tsids.subarray(o * TSID_WORDS, o * TSID_WORDS + TSID_WORDS));
        const t = table.tsidOf(e);
        expect(w).toEqual([t.accountID, t.projectID, t.metricGroupID, t.jobInstanceID, Math.floor(t.metricID / 2 ** 32), t.metricID >>> 0]);
      }
    }
  });

  it("keeps the TSID order while new series come every drain and none leaves the cache", () => {
    // The creation phase of a high-cardinality replay: each drain brings new series (placed
    // before, between and after the kept ones) next to known ones; no ref is released, so the
    // new series are inserted into the kept order instead of rebuilding it.
    const rand = rng(11);
    const table = new SeriesTable();
    const buf = new RowsBuffer(100_000, table);
    const known: number[] = [];
    let id = 0;
    for (let round = 0; round < 30; round++) {
      const fresh = round % 4 === 3 ? 0 : 1 + Math.floor(rand() * 400);
      const rows: number[] = [];
      for (let i = 0; i < fresh; i++) {
        // Few metric groups: new series often tie with kept ones on the leading words.
        const ref = table.alloc({ accountID: 0, projectID: 0, metricGroupID: Math.floor(rand() * 4), jobInstanceID: Math.floor(rand() * 3), metricID: 1 + id++ }, 0, 1);
        rows.push(ref);
      }
      for (const ref of known) if (rand() < 0.5) rows.push(ref);
      known.push(...rows.slice(0, fresh));
      rows.sort(() => rand() - 0.5);
      for (const ref of rows) buf.add(ref, round, ref);
      const d = buf.drain();
      expect(d.count).toBe(rows.length);
      const got: number[] = [];
      for (let o = 0; o < d.count; o++) got.push(d.vals[d.starts[o]!]!);
      const want = [...rows].sort((a, b) => compareTSIDs(table.tsidOf(a), table.tsidOf(b)));
      expect(got).toEqual(want);
      for (const [o, ref] of want.entries()) expect(table.slot[ref]).toBe(d.slots[o]);
    }
  });
});
