import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { cluster, RpcClient, SearchFrameReader, SearchServiceDefinition } from "@strata/protocol";
import { clusterBuilt, type ApiBody, forceFlush, remoteWrite, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";

/**
 * select end to end: a real cluster (2 storage nodes, insert, select as processes), data written
 * with remote write, and the calls Grafana makes, checked for Prometheus' exact JSON shapes.
 */

const STEP = 15_000;
const END = Math.floor(Date.now() / STEP) * STEP;
const START = END - 40 * STEP;

function seriesData(): TestSeries[] {
  const out: TestSeries[] = [];
  for (const job of ["api", "db"]) {
    for (let i = 0; i < 3; i++) {
      const samples: [number, number][] = [];
      for (let t = START; t <= END; t += STEP) samples.push([t, (t - START) / 1000 + i]);
      out.push({ labels: { __name__: "http_requests_total", job, instance: `host-${i}:9100` }, samples });
    }
  }
  out.push({ labels: { __name__: "up", job: "api", instance: "host-0:9100" }, samples: [[END - STEP, 1], [END, 1]] });
  return out;
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("select over a real cluster", () => {
  let c: Cluster;
  const get = async (path: string) => {
    const r = await c.api(`/select/0/prometheus${path}`);
    return { status: r.status, body: r.json as ApiBody, text: r.text };
  };
  const post = async (path: string, form: Record<string, string>) => {
    const r = await c.api(`/select/0/prometheus${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });
    return { status: r.status, body: r.json as ApiBody };
  };

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1 });
    const w = await remoteWrite(c.insertUrl, seriesData());
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("answers Grafana's data source test (buildinfo, then 1+1 at time=4)", async () => {
    const b = await get("/api/v1/status/buildinfo");
    expect(b.status).toBe(200);
    const version = (b.body.data as { version: string }).version;
    const [maj = 0, min = 0] = version.split(".").map(Number);
    expect(maj * 100 + min).toBeGreaterThanOrEqual(224);
    const q = await post("/api/v1/query", { query: "1+1", time: "4" });
    expect(q.status).toBe(200);
    expect(q.body).toEqual({ status: "success", isPartial: false, data: { resultType: "scalar", result: [4, "2"] } });
  });

  it("lists labels, label values (with match[]), series and metadata", async () => {
    const range = `start=${START / 1000}&end=${END / 1000}`;
    const labels = await get(`/api/v1/labels?${range}`);
    expect(labels.body.data).toEqual(["__name__", "instance", "job"]);
    const names = await get(`/api/v1/label/__name__/values?${range}`);
    expect(names.body.data).toEqual(["http_requests_total", "up"]);
    const jobs = await get(`/api/v1/label/job/values?match[]=up&${range}`);
    expect(jobs.body.data).toEqual(["api"]);
    const series = await get(`/api/v1/series?match[]=${encodeURIComponent('http_requests_total{job="db"}')}&${range}`);
    expect(series.body.data).toEqual([0, 1, 2].map((i) => ({ __name__: "http_requests_total", instance: `host-${i}:9100`, job: "db" })));
    const meta = await get("/api/v1/metadata");
    expect(meta.body.status).toBe("success");
    const ex = await get(`/api/v1/query_exemplars?query=up&${range}`);
    expect(ex.body.data).toEqual([]);
  });

  it("answers instant and range queries like Prometheus", async () => {
    const q = await get(`/api/v1/query?query=${encodeURIComponent("sum by (job) (http_requests_total)")}&time=${END / 1000}`);
    expect(q.body.data).toEqual({
      resultType: "vector",
      result: [
        { metric: { job: "api" }, value: [END / 1000, String(3 * ((END - START) / 1000) + 3)] },
        { metric: { job: "db" }, value: [END / 1000, String(3 * ((END - START) / 1000) + 3)] },
      ],
    });
    const r = await post("/api/v1/query_range", {
      query: 'rate(http_requests_total{job="api",instance="host-0:9100"}[1m])',
      start: String((END - 10 * STEP) / 1000),
      end: String(END / 1000),
      step: "15",
    });
    const data = r.body.data as { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
    expect(data.resultType).toBe("matrix");
    expect(data.result).toHaveLength(1);
    expect(data.result[0]!.metric).toEqual({ instance: "host-0:9100", job: "api" });
    expect(data.result[0]!.values).toHaveLength(11);
    for (const [, v] of data.result[0]!.values) expect(Number(v)).toBeCloseTo(1, 9);
    // The same range again is served (partly) from the result cache and must be identical.
    const again = await post("/api/v1/query_range", {
      query: 'rate(http_requests_total{job="api",instance="host-0:9100"}[1m])',
      start: String((END - 10 * STEP) / 1000),
      end: String(END / 1000),
      step: "15",
    });
    expect(again.body.data).toEqual(r.body.data);
  });

  it.each([
    ["/api/v1/query?query=sum(", 400, "bad_data", /parse error/],
    ["/api/v1/query_range?query=up&start=10&end=1&step=1", 400, "bad_data", /end timestamp must not be before start time/],
    ["/api/v1/query_range?query=up&start=1&end=10&step=0", 400, "bad_data", /zero or negative query resolution step/],
    ["/api/v1/query_range?query=up&start=0&end=100000000&step=1", 400, "bad_data", /exceeded maximum resolution/],
    ["/api/v1/query?query=up&time=yesterday", 400, "bad_data", /invalid parameter "time"/],
    ["/api/v1/series", 400, "bad_data", /no match\[\] parameter/],
    ["/api/v1/nope", 404, "not_found", /unsupported path/],
  ])("%s → %d %s", async (path, status, type, msg) => {
    const r = await get(path);
    expect(r.status).toBe(status);
    expect(r.body.status).toBe("error");
    expect(r.body.errorType).toBe(type);
    expect(r.body.error).toMatch(msg);
  });

  it("exports JSON lines and federates the last samples", async () => {
    const ex = await get(`/api/v1/export?match[]=up&start=${START / 1000}&end=${END / 1000}`);
    expect(ex.status).toBe(200);
    expect(JSON.parse(ex.text.trim())).toEqual({ metric: { __name__: "up", job: "api", instance: "host-0:9100" }, values: [1, 1], timestamps: [END - STEP, END] });
    const fed = await c.api(`/select/0/prometheus/federate?match[]=up&time=${END / 1000}`);
    expect(fed.text).toBe(`# TYPE up untyped\nup{instance="host-0:9100",job="api"} 1 ${END}\n`);
  });

  it("streams searches of several frames per node intact (export, concurrently)", async () => {
    // Values that barely compress: each node sends a few MiB, so several Search_v1 frames.
    const wide: TestSeries[] = [];
    for (let k = 0; k < 300; k++) {
      const samples: [number, number][] = [];
      for (let i = 0; i < 1500; i++) samples.push([START - i * 1000, Math.sin(k * 7919 + i) * 1e6]);
      wide.push({ labels: { __name__: "wide", k: String(k).padStart(3, "0") }, samples: samples.reverse() });
    }
    const w = await remoteWrite(c.insertUrl, wide, "3");
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
    const exportAll = async () => {
      const r = await c.api(`/select/3/prometheus/api/v1/export?match[]=wide&start=${(START - 2_000_000) / 1000}&end=${END / 1000}`);
      expect(r.status).toBe(200);
      const lines = r.text.trim().split("\n").map((l) => JSON.parse(l) as { metric: { k: string }; values: number[]; timestamps: number[] });
      lines.sort((a, b) => (a.metric.k < b.metric.k ? -1 : 1));
      return lines;
    };
    for (const lines of await Promise.all([exportAll(), exportAll(), exportAll()])) {
      expect(lines).toHaveLength(300);
      lines.forEach((l, k) => {
        expect(l.timestamps).toEqual(wide[k]!.samples.map(([t]) => t));
        expect(l.values).toEqual(wide[k]!.samples.map(([, v]) => v));
      });
    }
    // Each node, asked directly: no frame passes 1 MiB (a series that would take a frame past
    // it starts the next), and every series comes once, its blocks in one frame.
    let series = 0;
    for (const node of c.storage) {
      const client = new RpcClient(SearchServiceDefinition, node.selectAddr);
      try {
        const req = create(cluster.SearchRequestSchema, {
          query: {
            tenant: { accountId: 3, projectId: 0 },
            minTimestampMs: BigInt(START - 2_000_000),
            maxTimestampMs: BigInt(END),
            matcherGroups: [{ matchers: [{ type: cluster.LabelMatcher_Type.EQ, name: "__name__", value: "wide" }] }],
          },
          acceptedEncodings: [cluster.BlockEncoding.STORAGE_V1],
        });
        const frames: number[] = [];
        const r = new SearchFrameReader();
        for await (const frame of client.rawStream("Search_v1", req) as AsyncIterable<Buffer>) {
          frames.push(frame.length);
          r.reset(frame);
          let first = true;
          while (r.next()) {
            // A frame starts with a named block: no series is split across frames.
            if (first) expect(r.metricName.length).toBeGreaterThan(0);
            if (r.metricName.length > 0) series++;
            first = false;
          }
        }
        expect(frames.length).toBeGreaterThan(1);
        for (const n of frames) expect(n).toBeLessThanOrEqual(1 << 20);
      } finally {
        client.close();
      }
    }
    expect(series).toBe(300);
  });

  it("keeps tenants apart", async () => {
    const r = await c.api(`/select/7/prometheus/api/v1/query?query=up&time=${END / 1000}`);
    expect((r.json as ApiBody).data).toEqual({ resultType: "vector", result: [] });
  });

  it("serves the UI's cardinality and query statistics: status/tsdb (topN, focusLabel, date, match[]), top_queries, active_queries", async () => {
    interface Tsdb {
      totalSeries: number;
      seriesCountByMetricName: { name: string; value: number }[];
      seriesCountByFocusLabelValue: { name: string; value: number }[];
      seriesCountByLabelValuePair: { name: string; value: number }[];
    }
    const today = new Date(END).toISOString().slice(0, 10);
    const all = await get(`/api/v1/status/tsdb?topN=5&focusLabel=job&date=${today}`);
    expect(all.status, all.text).toBe(200);
    const d = all.body.data as Tsdb;
    expect(d.totalSeries).toBe(7);
    expect(d.seriesCountByMetricName).toEqual([{ name: "http_requests_total", value: 6 }, { name: "up", value: 1 }]);
    expect(d.seriesCountByFocusLabelValue).toEqual([{ name: "api", value: 4 }, { name: "db", value: 3 }]);
    expect(d.seriesCountByLabelValuePair.length).toBeLessThanOrEqual(5);
    expect(((await get("/api/v1/status/tsdb?date=2000-01-01")).body.data as Tsdb).totalSeries).toBe(0);
    const up = (await get(`/api/v1/status/tsdb?match[]=${encodeURIComponent('{__name__="up"}')}&focusLabel=instance`)).body.data as Tsdb;
    expect([up.totalSeries, up.seriesCountByFocusLabelValue]).toEqual([1, [{ name: "host-0:9100", value: 1 }]]);

    const q = "sum by (job) (http_requests_total) # top_queries probe";
    for (let i = 0; i < 3; i++) expect((await get(`/api/v1/query?query=${encodeURIComponent(q)}&time=${END / 1000}`)).status).toBe(200);
    const top = await c.api("/select/0/prometheus/api/v1/status/top_queries?topN=100");
    const tq = top.json as { topByCount: { query: string; count: number }[] };
    expect(tq.topByCount.find((x) => x.query === q)?.count).toBe(3);
    const active = await c.api("/select/0/prometheus/api/v1/status/active_queries");
    expect(active.status).toBe(200);
    expect(active.json).toMatchObject({ status: "ok", data: [] });
  });

  it("marks answers partial when a node is down (RF=1), or fails them with deny_partial_response", async () => {
    await c.storage[1]!.proc.stop();
    try {
      const q = await get(`/api/v1/query?query=count(http_requests_total)&time=${END / 1000}`);
      expect(q.status).toBe(200);
      expect(q.body.isPartial).toBe(true);
      expect(q.body.warnings?.join(" ")).toMatch(/partial response/);
      const d = await get(`/api/v1/query?query=count(http_requests_total)&time=${END / 1000}&deny_partial_response=1`);
      expect(d.status).toBe(503);
      expect(d.body.errorType).toBe("unavailable");
    } finally {
      await c.storage[1]!.start();
    }
  });
});

describe.skipIf(!built)("select with replicationFactor=2", () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 2 });
    const w = await remoteWrite(c.insertUrl, seriesData());
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
  });
  afterAll(async () => {
    await c?.stop();
  });

  it("answers completely, without duplicates, with one node down", async () => {
    const path = `/select/0/prometheus/api/v1/query?query=count(http_requests_total)&time=${END / 1000}`;
    const full = await c.api(path);
    expect((full.json as ApiBody).data).toEqual({ resultType: "vector", result: [{ metric: {}, value: [END / 1000, "6"] }] });
    await c.storage[0]!.proc.stop();
    const one = await c.api(path);
    expect(one.status).toBe(200);
    expect((one.json as ApiBody).isPartial).toBe(false);
    expect((one.json as ApiBody).data).toEqual((full.json as ApiBody).data);
  });
});
