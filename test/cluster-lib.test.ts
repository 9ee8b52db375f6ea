import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { clusterBuilt, startCluster } from "./lib/cluster.js";

/** Pids whose command line contains `marker` (each process of the cluster is titled with it). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "latin1").includes(marker)) out.push(Number(d));
    } catch {
      // the process exited while listed
    }
  }
  return out;
}

describe.skipIf(!clusterBuilt())("test cluster launcher", () => {
  it("a cluster whose select cannot start stops the storage nodes and insert it started", async () => {
    const marker = `strata-cluster-lib-test-${process.pid}-${Date.now()}`;
    const title = [`--title=${marker}`];
    await expect(
      startCluster({ nodeArgs: { storage: title, insert: title, select: title }, selectFlags: ["-search.maxWorkersPerQuery="] }),
    ).rejects.toThrow(/maxWorkersPerQuery/);
    expect(pidsWith(marker)).toEqual([]);
  }, 60_000);
});
