// strata-storage's caches take their caps from -memory.allowedBytes (shares in
// @strata/storage MEMORY_SHARES) unless their own flag sets one; /metrics shows each cache as
// strata_cache_*{type="…"}. Requires `pnpm build` first.
import { MEMORY_SHARES } from "@strata/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertBuilt, removeDir, startStorage, type StorageNode } from "../../insert/test/cluster-harness.js";

const GiB = 2 ** 30;
let derived: StorageNode;
let explicit: StorageNode;

beforeAll(async () => {
  assertBuilt();
  [derived, explicit] = await Promise.all([
    startStorage(undefined, undefined, ["-memory.allowedBytes=1GiB"]),
    startStorage(undefined, undefined, ["-memory.allowedBytes=1GiB", "-storage.cacheSizeStorageTSID=10MiB", "-storage.maxIndexInmemoryPartsSize=8MiB"]),
  ]);
});
afterAll(async () => {
  for (const n of [derived, explicit]) {
    await n?.proc.stop();
    if (n) removeDir(n.dir);
  }
});

const metric = async (node: StorageNode, line: string): Promise<number> => {
  const text = await (await fetch(`${node.http}/metrics`)).text();
  const m = new RegExp(`^${line.replace(/[{}"/]/g, (c) => `\\${c}`)} (\\S+)$`, "m").exec(text);
  if (m === null) throw new Error(`no ${line} in /metrics`);
  return Number(m[1]);
};

describe("storage caches under -memory.allowedBytes", () => {
  it.each([
    ["storage/tsid", MEMORY_SHARES.seriesCache],
    ["storage/indexBlocks", MEMORY_SHARES.indexBlockCache],
    ["indexdb/tsid", MEMORY_SHARES.indexTsidCache],
    ["indexdb/metricName", MEMORY_SHARES.metricNameCache],
    ["indexdb/tagFilters", MEMORY_SHARES.tagFiltersCache],
    ["indexdb/dataBlocks", MEMORY_SHARES.indexDataBlocks],
  ])("%s takes its share of the allowed memory and shows size, hits and misses", async (type, share) => {
    expect(await metric(derived, `strata_cache_size_max_bytes{type="${type}"}`)).toBe(Math.floor(GiB * share));
    for (const f of ["size_bytes", "entries", "hits_total", "misses_total", "rotations_total"]) {
      expect(await metric(derived, `strata_cache_${f}{type="${type}"}`)).toBeGreaterThanOrEqual(0);
    }
  });

  it("a cache's own flag wins over its share", async () => {
    expect(await metric(explicit, 'strata_cache_size_max_bytes{type="storage/tsid"}')).toBe(10 * 2 ** 20);
    expect(await metric(explicit, 'strata_cache_size_max_bytes{type="indexdb/metricName"}')).toBe(Math.floor(GiB * MEMORY_SHARES.metricNameCache));
  });

  it("the data's and the index's in-memory parts take their shares (or their flags) and show them", async () => {
    expect(await metric(derived, "strata_storage_inmemory_parts_max_bytes")).toBe(Math.floor(GiB * MEMORY_SHARES.inmemoryParts));
    expect(await metric(derived, "strata_storage_indexdb_mergeset_inmemory_max_bytes")).toBe(Math.floor(GiB * MEMORY_SHARES.indexInmemoryParts));
    expect(await metric(explicit, "strata_storage_indexdb_mergeset_inmemory_max_bytes")).toBe(8 * 2 ** 20);
    expect(await metric(derived, "strata_storage_indexdb_mergeset_inmemory_bytes")).toBeGreaterThanOrEqual(0);
  });

  it("exports the allowed memory and V8's heap limit", async () => {
    expect(await metric(derived, "strata_memory_allowed_bytes")).toBe(GiB);
    expect(await metric(derived, "nodejs_heap_size_limit_bytes")).toBeGreaterThan(0);
  });
});
