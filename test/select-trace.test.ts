import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";

/**
 * Issue 18: `trace=1` on query and query_range returns, beside the data, VictoriaMetrics' trace
 * tree of where the time went; `-search.logSlowQueryDuration` logs and counts slow queries. A
 * real cluster (2 storage nodes, insert, select) with a tiny slow-query threshold.
 */

const STEP = 15_000;
const POINTS = 40;
const END = Math.floor(Date.now() / STEP) * STEP;
const START = END - (POINTS - 1) * STEP;

interface TraceNode {
  duration_msec: number;
  message: string;
  children: TraceNode[];
}

interface Answer {
  status: string;
  data: unknown;
  trace?: TraceNode;
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

/** Every node of the tree, depth first. */
function nodes(t: TraceNode): TraceNode[] {
  return [t, ...t.children.flatMap(nodes)];
}

/**
 * Durations are non-negative; the children of a step add up to at most its duration, except under
 * a step that says its children ran `in parallel`, where each child is at most the parent.
 */
function checkDurations(t: TraceNode): void {
  expect(t.duration_msec, t.message).toBeGreaterThanOrEqual(0);
  const eps = 1e-6;
  if (t.message.includes("in parallel")) {
    for (const c of t.children) expect(c.duration_msec, `${c.message} under ${t.message}`).toBeLessThanOrEqual(t.duration_msec + eps);
  } else {
    const sum = t.children.reduce((a, c) => a + c.duration_msec, 0);
    expect(sum, `children of ${t.message}`).toBeLessThanOrEqual(t.duration_msec + eps);
  }
  t.children.forEach(checkDurations);
}

describe.skipIf(!built)("query tracing and the slow query log", () => {
  let c: Cluster;
  const enc = encodeURIComponent;
  const get = async (path: string): Promise<Answer> => {
    const r = await fetch(`${c.selectUrl}/select/0/prometheus/api/v1/${path}`);
    expect(r.status).toBe(200);
    return (await r.json()) as Answer;
  };

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, selectFlags: ["-search.logSlowQueryDuration=1ms"] });
    const batch: TestSeries[] = [];
    for (let i = 0; i < 50; i++) {
      const samples: [number, number][] = [];
      for (let k = 0; k < POINTS; k++) samples.push([START + k * STEP, k * (i + 1)]);
      batch.push({ labels: { __name__: "req_total", job: `j${i % 3}`, instance: `i${i}` }, samples });
    }
    const w = await remoteWrite(c.insertUrl, batch);
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
  }, 120_000);

  afterAll(async () => {
    await c?.stop();
  });

  const t = END / 1000;
  const range = `start=${START / 1000}&end=${t}&step=60s&nocache=1`;
  it.each([
    ["streamed aggregation, instant", `query?query=${enc("sum by (job) (rate(req_total[5m]))")}&time=${t}`, "stream {"],
    ["whole selection, instant", `query?query=${enc("req_total")}&time=${t}`, "select {"],
    ["streamed aggregation, range", `query_range?query=${enc("sum(rate(req_total[5m]))")}&${range}`, "stream {"],
    ["whole selection, range", `query_range?query=${enc("req_total")}&${range}`, "select {"],
    // A range function outside an aggregation streams too (its rollup keeps only step values).
    ["streamed range function, range", `query_range?query=${enc("rate(req_total[5m])")}&${range}`, "stream {"],
  ])("%s: trace=1 adds the tree, the data stay the same", async (_name, path, selection) => {
    const plain = await get(path);
    expect(plain.trace).toBeUndefined();
    const traced = await get(`${path}&trace=1`);
    expect(traced.data).toEqual(plain.data);
    const root = traced.trace!;
    expect(root.message).toMatch(/^\/select\/0\/prometheus\/api\/v1\/query(_range)?: query=/);
    checkDurations(root);
    const top = root.children.map((n) => n.message.split(":")[0]);
    expect(top).toEqual(expect.arrayContaining(["parse query", "select series in parallel"]));
    expect(root.children.some((n) => n.message.startsWith("evaluate at "))).toBe(true);
    const all = nodes(root);
    const sel = all.find((n) => n.message.startsWith(selection))!;
    expect(sel, JSON.stringify(root, null, 1)).toBeDefined();
    const fan = sel.children.find((n) => n.message.startsWith("search 2 storage nodes in parallel"))!;
    expect(fan.children.map((n) => n.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^storage node 127\.0\.0\.1:\d+: \d+ series$/)]));
    expect(fan.children).toHaveLength(2);
    // Each node's own timings travel back in the Search_v1 trailer: index search, block read,
    // bytes sent (equal to what select received), then the transfer seen from select.
    let series = 0;
    for (const node of fan.children) {
      const [remote, transfer] = node.children;
      expect(node.children).toHaveLength(2);
      const sent = /^on the storage node: (\d+) series, (\d+) blocks, (\d+) bytes sent$/.exec(remote!.message);
      expect(sent, remote!.message).not.toBeNull();
      expect(transfer!.message).toBe(`transfer (gRPC) and receive ${sent![2]} blocks, ${sent![3]} bytes`);
      expect(remote!.children.map((n) => n.message)).toEqual([
        "index search (matchers → series)",
        `read ${sent![2]} blocks of ${sent![1]} series`,
        "encode frames",
        "wait for the transport to drain (select reads slower than the node sends)",
      ]);
      expect(Number(sent![1])).toBeGreaterThan(0);
      expect(node.message).toBe(`storage node ${/^storage node (\S+):/.exec(node.message)![1]}: ${sent![1]} series`);
      series += Number(sent![1]);
    }
    expect(series).toBe(50);
    expect(sel.children.some((n) => n.message.startsWith("merge series across nodes: 50 series"))).toBe(true);
    if (selection === "select {") expect(sel.children.some((n) => n.message.startsWith("decode blocks of 50 series"))).toBe(true);
    else expect(all.some((n) => /^wait for decoded batches of \{.*\}: \d+ batches, 50 series, \d+ samples$/.test(n.message))).toBe(true);
  });

  it("logs and counts queries slower than -search.logSlowQueryDuration", async () => {
    const q = 'count(req_total{job="j1"})';
    await get(`query?query=${enc(q)}&time=${t}`);
    const find = () =>
      c.select
        .output()
        .split("\n")
        .filter((l) => l.includes('"slow query'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l["query"] === q);
    // The line is written once the answer is sent; it reaches this process through a pipe.
    for (let i = 0; i < 100 && find() === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    const line = find();
    expect(line).toMatchObject({ query: q, start: END, end: END, step: 0, tenant: "0:0", level: expect.anything() });
    expect(line!["durationMs"]).toEqual(expect.any(Number));
    const metrics = await (await fetch(`${c.selectUrl}/metrics`)).text();
    expect(Number(/^strata_select_slow_queries_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
  });
});
