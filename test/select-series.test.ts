import { DAY_MS } from "@strata/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type ApiBody, type Cluster, type TestSeries } from "./lib/cluster.js";
import { metricSum } from "./lib/procs.js";

/**
 * /api/v1/series through SearchMetricNames_v1: names from the storage nodes' per-day indexes, no
 * block read (as VictoriaMetrics' vmselect asks vmstorage). A real cluster of 2 storage nodes
 * with replicationFactor=2 (every series answered twice), `-search.maxSeries=20`.
 */

const NOW = Math.floor(Date.now() / 1000) * 1000;
const OLD = NOW - 3 * DAY_MS;
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("series from the storage nodes' indexes", () => {
  let c: Cluster;
  const enc = encodeURIComponent;
  const lastHour = `start=${NOW / 1000 - 3600}&end=${NOW / 1000}`;
  const series = async (tenant: string, query: string): Promise<{ status: number; body: ApiBody }> => {
    const r = await c.api(`/select/${tenant}/prometheus/api/v1/series?${query}`);
    return { status: r.status, body: r.json as ApiBody };
  };
  const write = async (tenant: string, list: TestSeries[]) => {
    const w = await remoteWrite(c.insertUrl, list, tenant);
    expect(w.status, w.text).toBe(204);
  };
  const blocksRead = async () => {
    let n = 0;
    for (const s of c.storage) n += await metricSum(`http://${s.httpAddr}`, "strata_storage_search_blocks_total");
    return n;
  };

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 2, selectFlags: ["-search.maxSeries=20"] });
    await write("0", [
      ...[3, 1, 4, 0, 2].map((i) => ({ labels: { __name__: "ser_a", i: String(i) }, samples: [[NOW - 1000, i]] as [number, number][] })),
      { labels: { __name__: "ser_old", x: "1" }, samples: [[OLD, 1]] },
      ...Array.from({ length: 25 }, (_, i) => ({ labels: { __name__: "ser_wide", i: String(i) }, samples: [[NOW - 1000, i]] as [number, number][] })),
    ]);
    await write("7", [{ labels: { __name__: "ser_a", i: "99" }, samples: [[NOW - 1000, 1]] }]);
    await forceFlush(c);
  }, 120_000);
  afterAll(async () => {
    await c?.stop();
  });

  const a = (i: number) => ({ __name__: "ser_a", i: String(i) });
  it.each([
    ["every series once (2 replicas each), sorted", "0", `match[]=ser_a&${lastHour}`, [0, 1, 2, 3, 4].map(a)],
    ["two match[] sets overlapping", "0", `match[]=${enc('ser_a{i=~"[01]"}')}&match[]=${enc('ser_a{i=~"[12]"}')}&${lastHour}`, [0, 1, 2].map(a)],
    ["another tenant's series only", "7", `match[]=ser_a&${lastHour}`, [a(99)]],
    ["a tenant with nothing", "7:1", `match[]=ser_a&${lastHour}`, []],
    ["a series whose samples are days older than the range: not listed", "0", `match[]=ser_old&${lastHour}`, []],
    ["the same series over a range holding its day", "0", `match[]=ser_old&start=${OLD / 1000 - 60}&end=${OLD / 1000 + 60}`, [{ __name__: "ser_old", x: "1" }]],
    ["default range (all time up to now)", "0", "match[]=ser_old", [{ __name__: "ser_old", x: "1" }]],
  ])("%s", async (_name, tenant, query, want) => {
    const r = await series(tenant, query);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data).toEqual(want);
    expect(r.body.warnings).toBeUndefined();
  });

  it("reads no block: the nodes answer from their indexes", async () => {
    const before = await blocksRead();
    for (let i = 0; i < 5; i++) expect((await series("0", `match[]=${enc(`ser_a{i="${i}"}`)}&${lastHour}`)).body.data).toEqual([a(i)]);
    expect(await blocksRead()).toBe(before);
  });

  it("cuts at limit= with Prometheus' warning", async () => {
    const r = await series("0", `match[]=ser_a&limit=2&${lastHour}`);
    expect(r.status).toBe(200);
    expect((r.body.data as unknown[]).length).toBe(2);
    expect(r.body.warnings).toEqual(["results truncated due to limit"]);
  });

  it("fails past -search.maxSeries, naming the flag", async () => {
    const r = await series("0", `match[]=ser_wide&${lastHour}`);
    expect(r.status).toBe(422);
    expect(r.body.error).toMatch(/more than 20 series \(-search\.maxSeries\)/);
  });

  it("lists a series written a moment ago, and drops a deleted one, in the very next call", async () => {
    expect((await series("0", `match[]=ser_new&${lastHour}`)).body.data).toEqual([]);
    await write("0", [{ labels: { __name__: "ser_new", j: "1" }, samples: [[NOW - 500, 1]] }]);
    expect((await series("0", `match[]=ser_new&${lastHour}`)).body.data).toEqual([{ __name__: "ser_new", j: "1" }]);
    const d = await c.api(`/select/0/prometheus/api/v1/admin/tsdb/delete_series?match[]=ser_new`, { method: "POST" });
    expect(d.status, d.text).toBe(204);
    expect((await series("0", `match[]=ser_new&${lastHour}`)).body.data).toEqual([]);
  });
});
