// An InsertCluster stand-in for in-process tests of insert's app: every write of rows (routed
// or not) goes through `write`; metadata is accepted and dropped.
import { RoutedRows, type InsertCluster } from "@strata/cluster";

export function stubCluster(write: () => Promise<unknown>, healthyCount = (): number => 1): InsertCluster {
  return {
    write,
    writeRouted: write,
    routedRows: () => {
      const r = new RoutedRows([{ lo: 0, hi: 0 }], 1, 1);
      r.reset(1);
      return r;
    },
    releaseRouted: () => undefined,
    writeMetadata: async () => 0,
    healthyCount,
    retention: () => ({ retentionMs: 0, futureRetentionMs: 2 * 86_400_000 }),
  } as unknown as InsertCluster;
}
