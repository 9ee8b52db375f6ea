import { describe, expect, it } from "vitest";
import { allowedMemoryBytes, cacheCap, fullGc, GcAfterFreed, MetricsRegistry, registerCacheMetrics, TwoGenCache } from "@strata/core";

/** Entries of 100 estimated bytes: a cap of 10_000 holds 50 per generation. */
const cache = (): TwoGenCache<number, string> => new TwoGenCache<number, string>(10_000, () => 100);

describe("TwoGenCache", () => {
  it("finds what it holds, counts hits and misses", () => {
    const c = cache();
    c.set(1, "a");
    c.set(2, "b");
    expect([c.get(1), c.get(2), c.get(3)]).toEqual(["a", "b", undefined]);
    expect([c.hits, c.misses, c.entries, c.sizeBytes]).toEqual([2, 1, 2, 200]);
  });

  it("stays under its cap whatever is added", () => {
    const c = cache();
    for (let i = 0; i < 10_000; i++) c.set(i, "v");
    expect(c.sizeBytes).toBeLessThanOrEqual(c.maxBytes);
    expect(c.entries).toBeLessThanOrEqual(100);
    expect(c.rotations).toBeGreaterThan(100);
  });

  it("degrades gradually: a rotation drops only the older generation, never everything", () => {
    const c = cache();
    for (let i = 0; i < 50; i++) c.set(i, "v");
    c.set(50, "v"); // the 51st entry rotates: 0..49 become the previous generation
    expect(c.rotations).toBe(1);
    expect(c.entries).toBe(51);
    for (let i = 0; i <= 50; i++) expect(c.get(i)).toBe("v");
  });

  it("keeps a working set that is used between rotations (hits in the older generation are promoted)", () => {
    const c = cache();
    const hot = [1, 2, 3, 4, 5];
    for (const k of hot) c.set(k, "hot");
    for (let i = 100; i < 5000; i++) {
      c.set(i, "cold");
      if (i % 40 === 0) for (const k of hot) expect(c.get(k)).toBe("hot");
    }
    expect(c.rotations).toBeGreaterThan(50);
    expect(c.get(100)).toBeUndefined();
  });

  it("replaces a key's value and its size, in either generation", () => {
    const c = new TwoGenCache<string, string>(1000, (k, v) => k.length + v.length);
    c.set("k", "1234");
    c.set("k", "12");
    expect([c.get("k"), c.sizeBytes, c.entries]).toEqual(["12", 3, 1]);
    for (let i = 0; i < 200; i++) c.set(`x${i}`, "");
    c.delete("k");
    expect(c.peek("k")).toBeUndefined();
  });

  it("does not store an entry larger than half its cap", () => {
    const c = new TwoGenCache<number, number>(100, (_k, v) => v);
    c.set(1, 51);
    c.set(2, 50);
    expect([c.peek(1), c.peek(2)]).toEqual([undefined, 50]);
  });

  it("is exported as strata_cache_* with a type label", () => {
    const r = new MetricsRegistry();
    const c = cache();
    c.set(1, "a");
    c.get(1);
    c.get(2);
    registerCacheMetrics(r, { "storage/tsid": c });
    const text = r.render();
    for (const line of [
      'strata_cache_entries{type="storage/tsid"} 1',
      'strata_cache_size_bytes{type="storage/tsid"} 100',
      'strata_cache_size_max_bytes{type="storage/tsid"} 10000',
      'strata_cache_hits_total{type="storage/tsid"} 1',
      'strata_cache_misses_total{type="storage/tsid"} 1',
      'strata_cache_rotations_total{type="storage/tsid"} 0',
    ]) {
      expect(text).toContain(line);
    }
  });
});

describe("allowed memory", () => {
  const GiB = 2 ** 30;
  it.each([
    ["60% of 8 GiB", 60, 0, 8 * GiB, Math.floor(0.6 * 8 * GiB)],
    ["allowedBytes wins", 60, 2 * GiB, 8 * GiB, 2 * GiB],
    ["100%", 100, 0, GiB, GiB],
  ])("%s", (_, pct, bytes, total, want) => {
    expect(allowedMemoryBytes(pct, bytes, total)).toBe(want);
  });

  it.each([0, -5, 201, Number.NaN])("rejects -memory.allowedPercent=%s naming the flag", (pct) => {
    expect(() => allowedMemoryBytes(pct, 0, GiB)).toThrow(/-memory\.allowedPercent/);
  });

  it("a cache's own flag wins over its share, and a share never falls below the floor", () => {
    expect(cacheCap(5 << 20, GiB, 0.3)).toBe(5 << 20);
    expect(cacheCap(0, GiB, 0.3)).toBe(Math.floor(0.3 * GiB));
    expect(cacheCap(0, 1000, 0.3)).toBe(1 << 20);
  });
});

describe("GcAfterFreed", () => {
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

  it("runs a full GC once the freed bytes reach the threshold: an old dead buffer is gone at once", async () => {
    const gc = fullGc();
    expect(gc).toBeDefined();
    const g = new GcAfterFreed(32 << 20, gc);
    let held: Uint8Array | undefined = new Uint8Array(16 << 20);
    const ref = new WeakRef(held);
    await tick(); // a WeakRef's target is kept until the job that made it (or deref'd it) ends
    gc!(); // the buffer survives a full GC: it is old now, as a flushed in-memory part is
    held = undefined;
    g.freed(16 << 20);
    expect([g.runs, g.pendingBytes]).toEqual([0, 16 << 20]);
    await tick();
    g.freed(16 << 20);
    expect([g.runs, g.pendingBytes]).toEqual([1, 0]);
    expect(ref.deref() === undefined).toBe(true); // (not toBeUndefined: a failure would print 16 MiB)
  });

  it.each([
    ["no threshold", 0, true],
    ["no GC to run", 1, false],
  ])("does nothing with %s", (_what, threshold, withGc) => {
    let calls = 0;
    const g = new GcAfterFreed(threshold, withGc ? () => calls++ : undefined);
    g.freed(1 << 30);
    expect([g.runs, calls]).toEqual([0, 0]);
  });
});
