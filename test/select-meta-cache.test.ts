import { create, toBinary } from "@bufbuild/protobuf";
import { prompbRemote, snappyEncode } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, remoteWrite, startCluster, type ApiBody, type Cluster } from "./lib/cluster.js";
import { metricSum } from "./lib/procs.js";

/**
 * select's cache of label names, label values and metadata answers (invalidated by the storage
 * nodes' WatchIndex_v1 streams), over a real cluster: repeated calls are answered from it, and
 * yet a series written a moment ago is listed by the very next call, a deleted one disappears at
 * once, metadata writes show, and tenants never see each other's entries.
 */

const NOW = Math.floor(Date.now() / 1000) * 1000;
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("select's label / label values / metadata cache", () => {
  let c: Cluster;
  const get = async (tenant: string, path: string): Promise<unknown> => {
    const r = await c.api(`/select/${tenant}/prometheus/api/v1/${path}`);
    expect(r.status, r.text).toBe(200);
    return (r.json as ApiBody).data;
  };
  const write = async (tenant: string, labels: Record<string, string>) => {
    const w = await remoteWrite(c.insertUrl, [{ labels, samples: [[NOW - 1000, 1]] }], tenant);
    expect(w.status, w.text).toBe(204);
  };
  const hits = () => metricSum(c.selectUrl, "strata_select_meta_cache_hits_total");
  const range = `start=${NOW / 1000 - 3600}&end=${NOW / 1000}`;

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1 });
    await write("0", { __name__: "cache_a", job: "one" });
    await write("7", { __name__: "other_tenant_metric", job: "seven" });
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("answers a repeated call from the cache", async () => {
    await get("0", `labels?${range}`);
    const before = await hits();
    expect(await get("0", `labels?${range}`)).toEqual(["__name__", "job"]);
    expect(await get("0", "label/job/values")).toEqual(["one"]);
    expect(await get("0", "label/job/values")).toEqual(["one"]);
    expect(await hits()).toBeGreaterThanOrEqual(before + 2);
  });

  it("lists a series written a moment ago in the very next labels / label values call", async () => {
    // Warm the entries, then write; every answer after the write's acknowledgement has it.
    for (let i = 0; i < 5; i++) {
      const job = `new-${i}`;
      expect(await get("0", "label/job/values")).not.toContain(job);
      expect(await get("0", `labels?${range}`)).not.toContain(`extra${i}`);
      await write("0", { __name__: "cache_b", job, [`extra${i}`]: "x" });
      expect(await get("0", "label/job/values")).toContain(job);
      expect(await get("0", `labels?${range}`)).toContain(`extra${i}`);
      expect(await get("0", `label/__name__/values?match[]=${encodeURIComponent(`{job="${job}"}`)}`)).toEqual(["cache_b"]);
    }
  });

  it("drops a deleted series from the very next call", async () => {
    await write("0", { __name__: "doomed_metric", job: "doomed" });
    expect(await get("0", "label/__name__/values")).toContain("doomed_metric");
    expect(await get("0", "label/__name__/values")).toContain("doomed_metric");
    const r = await c.api(`/select/0/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed_metric`, { method: "POST" });
    expect(r.status, r.text).toBe(204);
    expect(await get("0", "label/__name__/values")).not.toContain("doomed_metric");
    expect(await get("0", "label/job/values")).not.toContain("doomed");
  });

  it("shows new metadata in the very next metadata call", async () => {
    expect(await get("0", "metadata")).toEqual({});
    const body = create(prompbRemote.WriteRequestSchema, {
      metadata: [{ type: 1 /* COUNTER */, metricFamilyName: "cache_a", help: "A counter.", unit: "" }],
    });
    const r = await fetch(`${c.insertUrl}/insert/0/prometheus/api/v1/write`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
      body: Buffer.from(snappyEncode(toBinary(prompbRemote.WriteRequestSchema, body))),
    });
    expect(r.status, await r.text()).toBe(204);
    expect(await get("0", "metadata")).toEqual({ cache_a: [{ type: "counter", help: "A counter.", unit: "" }] });
  });

  it("keeps tenants' entries apart", async () => {
    expect(await get("7", "label/__name__/values")).toEqual(["other_tenant_metric"]);
    const zero = (await get("0", "label/__name__/values")) as string[];
    expect(zero).not.toContain("other_tenant_metric");
    expect(await get("7", "label/__name__/values")).toEqual(["other_tenant_metric"]);
    expect(await get("7:1", "label/__name__/values")).toEqual([]);
    await write("7", { __name__: "seven_more", job: "seven" });
    expect(await get("7", "label/__name__/values")).toEqual(["other_tenant_metric", "seven_more"]);
    expect(await get("0", "label/__name__/values")).toEqual(zero);
  });
});
