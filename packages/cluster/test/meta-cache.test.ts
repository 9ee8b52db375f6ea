import { expect, it } from "vitest";
import { MetaCache } from "../src/meta-cache.js";

/**
 * Select's index-answer cache on a hand-driven clock: entries expire after the TTL, an entry
 * read when older than half of it is due for one refresh at a time, and a refreshed entry lives
 * a whole TTL from its refresh, while an invalidation still drops what a refresh brings back.
 */

function cacheAt(maxEntries = 10): { cache: MetaCache; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  return { cache: new MetaCache(maxEntries, 60_000, () => clock.t), clock };
}

it("claims a refresh only for an entry older than half the TTL, one at a time", () => {
  const { cache, clock } = cacheAt();
  expect(cache.claimRefresh("k")).toBe(false); // nothing cached
  cache.set("k", cache.epoch, ["a"]);
  clock.t += 30_000;
  expect(cache.get("k")).toEqual(["a"]);
  expect(cache.claimRefresh("k")).toBe(false); // exactly half: not yet
  clock.t += 1;
  expect(cache.claimRefresh("k")).toBe(true);
  expect(cache.claimRefresh("k")).toBe(false); // one refresh in flight
  cache.endRefresh("k");
  expect(cache.claimRefresh("k")).toBe(true); // a failed refresh is claimed again by a later hit
  expect(cache.refreshes).toBe(2);
});

it("keeps an entry read every half TTL and refreshed from ever expiring into a miss", () => {
  const { cache, clock } = cacheAt();
  cache.set("k", cache.epoch, ["v0"]);
  for (let i = 1; i <= 6; i++) {
    clock.t += 31_000;
    expect(cache.get("k")).toEqual([`v${i - 1}`]);
    expect(cache.claimRefresh("k")).toBe(true);
    const epoch = cache.epoch;
    clock.t += 1_000; // the background fetch
    cache.set("k", epoch, [`v${i}`]);
    cache.endRefresh("k");
  }
  expect(cache.misses).toBe(0);
  // Not read for a whole TTL: it expires as before.
  clock.t += 60_001;
  expect(cache.get("k")).toBeUndefined();
  expect(cache.misses).toBe(1);
});

it("drops a refresh fetched across an invalidation", () => {
  const { cache, clock } = cacheAt();
  cache.set("k", cache.epoch, ["old"]);
  clock.t += 40_000;
  expect(cache.claimRefresh("k")).toBe(true);
  const epoch = cache.epoch;
  cache.invalidate(); // a node reported a new series while the refresh ran
  cache.set("k", epoch, ["stale"]);
  cache.endRefresh("k");
  expect(cache.get("k")).toBeUndefined();
  expect(cache.claimRefresh("k")).toBe(false);
});

it("replaces a refreshed entry in place: a full cache evicts nothing else for it", () => {
  const { cache, clock } = cacheAt(2);
  cache.set("a", cache.epoch, [1]);
  cache.set("b", cache.epoch, [2]);
  clock.t += 40_000;
  cache.set("a", cache.epoch, [10]);
  expect(cache.size).toBe(2);
  expect(cache.get("b")).toEqual([2]);
  // "a" is now the newest: a third key evicts "b".
  cache.set("c", cache.epoch, [3]);
  expect(cache.get("a")).toEqual([10]);
  expect(cache.get("b")).toBeUndefined();
});

it("hands out an entry's list frozen, the same array on every hit, and a new array once replaced", () => {
  const { cache } = cacheAt();
  cache.set("k", cache.epoch, ["a", "b"]);
  const first = cache.get<string>("k")!;
  expect(first).toEqual(["a", "b"]);
  expect(Object.isFrozen(first)).toBe(true);
  expect(cache.get<string>("k")).toBe(first);
  cache.set("k", cache.epoch, ["a", "b"]);
  const second = cache.get<string>("k")!;
  expect(second).toEqual(["a", "b"]);
  expect(second).not.toBe(first);
  cache.invalidate();
  cache.set("k", cache.epoch, ["a", "b"]);
  expect(cache.get<string>("k")).not.toBe(second);
});
