import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";
import { freePort, serviceMain, startProcess, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Issue 14: one query must not exhaust select. A real cluster (2 storage nodes, insert, select)
 * plus a second select over the same storage nodes with -search.maxMemoryPerQuery set.
 */

const SERIES = 1000;
const STEP = 60_000;
const POINTS = 480; // 8 hours
const END = Math.floor(Date.now() / STEP) * STEP;
const START = END - (POINTS - 1) * STEP;

interface ApiError {
  status: string;
  errorType?: string;
  error?: string;
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("query limits over a real cluster", () => {
  let c: Cluster;
  let limited: Proc;
  let limitedUrl = "";

  const rssOf = (p: Proc) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p.child.pid}/status`, "utf8"))![1]) * 1024;
  const query = (base: string, path: string, init?: RequestInit) => fetch(`${base}/select/0/prometheus/api/v1/${path}`, init);
  const enc = encodeURIComponent;

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2 });
    for (let from = 0; from < SERIES; from += 100) {
      const batch: TestSeries[] = [];
      for (let i = from; i < from + 100; i++) {
        const samples: [number, number][] = [];
        for (let k = 0; k < POINTS; k++) samples.push([START + k * STEP, (k * 7 + i) % 101]);
        batch.push({ labels: { __name__: "x", i: String(i) }, samples });
      }
      const w = await remoteWrite(c.insertUrl, batch);
      expect(w.status, w.text).toBe(204);
    }
    await forceFlush(c);
    const port = await freePort();
    limitedUrl = `http://127.0.0.1:${port}`;
    limited = startProcess(process.execPath, [
      serviceMain("select"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`,
      "-search.maxMemoryPerQuery=64MiB",
    ]);
    await waitHealthy(`${limitedUrl}/health`, limited);
  }, 120_000);

  afterAll(async () => {
    await limited?.stop();
    await c?.stop();
  });

  it("refuses count_over_time(vector(1)[100y:1s]) at once with 422 naming the limit, and its memory does not grow", async () => {
    const before = rssOf(c.select);
    const r = await query(c.selectUrl, `query?query=${enc("count_over_time(vector(1)[100y:1s])")}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await r.json()) as ApiError;
    expect(r.status).toBe(422);
    expect(body.errorType).toBe("execution");
    expect(body.error).toContain("-search.maxPointsSubqueryPerTimeseries=100000");
    expect(rssOf(c.select) - before).toBeLessThan(100 * 2 ** 20);
    expect((await fetch(`${c.selectUrl}/health`)).status).toBe(200);
  });

  it("a storage node over -search.maxSeries answers 422 at once, not when the deadline fires", async () => {
    // Each storage node holds ~500 of the 1000 series: both trip the limit themselves while
    // searching. An error ending a search stream must reach select as a status right away
    // (it once left the stream open until the query deadline, 120 s here).
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const sel = startProcess(process.execPath, [
      serviceMain("select"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`,
      "-search.maxSeries=100",
      "-search.maxExportSeries=100",
      "-search.maxQueryDuration=120s",
    ]);
    try {
      await waitHealthy(`${url}/health`, sel);
      for (const [path, flag] of [
        [`query?query=${enc("count(x)")}&time=${END / 1000}`, "-search.maxSeries"],
        ["export?match[]=x", "-search.maxExportSeries"],
      ] as const) {
        const r = await query(url, path, { signal: AbortSignal.timeout(20_000) });
        const text = await r.text();
        expect(r.status, text.slice(0, 300)).toBe(422);
        expect((JSON.parse(text) as ApiError).error).toContain(flag);
      }
    } finally {
      await sel.stop();
    }
  });

  it("refuses a query whose estimate exceeds -search.maxMemoryPerQuery, and answers its cheaper form", async () => {
    // 1000 series × 28741 steps: ~260 MB of values and ~460 MB of answer by estimate.
    const range = `start=${START / 1000}&end=${END / 1000}&step=1s`;
    const r = await query(limitedUrl, `query_range?query=${enc("avg_over_time(x[10m])")}&${range}`, { signal: AbortSignal.timeout(30_000) });
    const body = (await r.json()) as ApiError;
    expect(r.status).toBe(422);
    expect(body.error).toMatch(/it selects 1000 series .* which needs about [\d.]+ MiB according to -search.maxMemoryPerQuery=67108864/);
    // The aggregation streams its input series: one series of 28741 points fits.
    const ok = await query(limitedUrl, `query_range?query=${enc("sum(avg_over_time(x[10m]))")}&${range}`, { signal: AbortSignal.timeout(60_000) });
    expect(ok.status, await ok.clone().text()).toBe(200);
    const data = ((await ok.json()) as { data: { result: { values: unknown[] }[] } }).data;
    expect(data.result).toHaveLength(1);
    expect(data.result[0]!.values).toHaveLength(28741);
  }, 90_000);

  it("answers /health while a heavy query runs, and cuts that query at its deadline with 503", async () => {
    // 28 801 steps × 1000 series, each step sorting a window of up to 480 samples: far longer than
    // its 4 s timeout, and allowed by every limit. One series alone takes ~0.6 s of CPU, so
    // evaluation has to yield inside a series, not only between series.
    const heavy = query(
      c.selectUrl,
      `query_range?query=${enc("sum(quantile_over_time(0.5, x[8h]))")}&start=${(END - 8 * 3600_000) / 1000}&end=${END / 1000}&step=1s&timeout=4s`,
    ).then(async (r) => ({ status: r.status, body: (await r.json()) as ApiError }));
    let done = false;
    void heavy.finally(() => (done = true));
    const latencies: number[] = [];
    while (!done) {
      const t = performance.now();
      const h = await fetch(`${c.selectUrl}/health`, { signal: AbortSignal.timeout(10_000) });
      expect(h.status).toBe(200);
      await h.text();
      if (!done) latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await heavy;
    expect(r.status).toBe(503);
    expect(r.body.errorType).toBe("timeout");
    expect(r.body.error).toContain("timed out");
    // Polled all along the query (it ran for seconds), every answer within 1 s.
    expect(latencies.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...latencies), latencies.map((l) => l.toFixed(0)).join(" ")).toBeLessThan(1000);
  }, 60_000);

  it("cuts an answer still being written at the deadline: the connection is closed before the body ends", async () => {
    // 1000 series × 1921 points ≈ 34 MB of JSON, more than the socket buffers hold; evaluation
    // takes well under the timeout, writing waits for a client that does not read.
    const r = await query(c.selectUrl, `query_range?query=x&start=${(END - 8 * 3600_000) / 1000}&end=${END / 1000}&step=15s&timeout=8s&nocache=1`);
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    await new Promise((res) => setTimeout(res, 12_000));
    let received = 0;
    let failed: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
      }
    } catch (err) {
      failed = err;
    }
    expect(failed, `read ${received} bytes without an error`).toBeDefined();
    expect((await fetch(`${c.selectUrl}/health`)).status).toBe(200);
  }, 60_000);
});
