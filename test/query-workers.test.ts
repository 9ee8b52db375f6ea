import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STALE_NAN } from "@strata/core";
import { SIMPLE_ROLLUPS } from "@strata/promql";
import { mulberry32 } from "./bench/node-exporter-data.js";
import { clusterBuilt, forceFlush, remoteWrite, serviceEnv, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";
import { freePort, metricSum, serviceMain, startProcess, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * select's worker threads (-search.maxWorkersPerQuery) compute rollups under folding
 * aggregations beside the decoding: the answers must be byte-identical to the event loop's own
 * evaluation. Two select processes over the same two storage nodes, one with workers for every
 * selection (-search.workerMinSamples=1) and one without any, answer the same queries over
 * random data (counters with resets, fractions, NaN, stale markers, irregular intervals,
 * replicas and gaps); every answer's text must be equal, and the worker select must have run
 * rollup jobs.
 */

const HOUR = 3_600_000;
/** Three hours ago, on the hour (inside the default retention). */
const T0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;

function randomSeries(seed: number): TestSeries[] {
  const r = mulberry32(seed);
  const out: TestSeries[] = [];
  for (let i = 0; i < 60; i++) {
    const counter = i % 2 === 0;
    const samples: [number, number][] = [];
    let t = T0 + Math.floor(r() * 60_000);
    let v = counter ? Math.floor(r() * 1000) : r() * 100 - 50;
    while (t < T0 + 2 * HOUR) {
      const x = r();
      if (x < 0.01) samples.push([t, STALE_NAN]);
      else if (x < 0.015) samples.push([t, NaN]);
      else {
        if (counter) v = x < 0.04 ? r() * 10 : v + r() * 37.5;
        else v = x < 0.1 ? v : r() * 200 - 100;
        samples.push([t, v]);
      }
      // Mostly 15 s apart, sometimes a gap of minutes (windows without samples).
      t += r() < 0.02 ? 300_000 + Math.floor(r() * 600_000) : 10_000 + Math.floor(r() * 10_000);
    }
    out.push({ labels: { __name__: counter ? "c_total" : "g", i: String(i), grp: String(i % 3), k: String(i % 20) }, samples });
  }
  return out;
}

const queries: string[] = [];
for (const f of SIMPLE_ROLLUPS) {
  queries.push(`sum by (grp) (${f}(c_total[5m]))`, `max(${f}(g[3m] offset 2m))`, `count(${f}({__name__=~"c_total|g"}[10m]))`);
}
queries.push("avg by (grp) (rate(g[5m]))", "stddev(deriv(g[7m]))", "min by (i) (last_over_time(c_total[1m]))", "group(present_over_time(g[30s]))");
// Many groups of several series (`k`: 20 groups of 3 series per name): folded and finished on the workers.
for (const op of ["sum", "avg", "count", "min", "max", "group", "stddev", "stdvar"]) {
  queries.push(`${op} by (k) (rate(c_total[5m]))`, `${op} without (i, grp) (avg_over_time({__name__=~"c_total|g"}[4m]))`);
}

// Range functions outside folding aggregations (collected from the workers' rollups): as the
// answer, under topk, as operands of binary operators, and an aggregation over such an operator.
queries.push(
  "rate(c_total[5m])",
  "topk(3, deriv(g[5m]))",
  "max by (grp) (rate(c_total[5m]) + irate(c_total[3m]))",
  "avg_over_time(g[5m]) - on (i) max_over_time(g[2m] offset 1m)",
  "increase(c_total[10m]) / ignoring (grp) group_left delta(g[5m])",
  "100 * (1 - min_over_time(g[4m]) / max_over_time(g[4m]))",
  "time() - last_over_time(c_total[2m])",
  "count by (k) (changes(g[5m]) > bool 2)",
);

describe.skipIf(!clusterBuilt())("select: rollups on worker threads", () => {
  let c: Cluster;
  let inline: Proc;
  let inlineUrl = "";

  beforeAll(async () => {
    c = await startCluster({
      storageNodes: 2,
      replicationFactor: 2,
      selectFlags: ["-search.maxWorkersPerQuery=2", "-search.workerMinSamples=1", "-search.disableCache"],
    });
    const port = await freePort();
    inlineUrl = `http://127.0.0.1:${port}`;
    inline = startProcess(process.execPath, [
      serviceMain("select"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`,
      "-replicationFactor=2",
      "-search.maxWorkersPerQuery=0",
      "-search.disableCache",
    ], serviceEnv());
    await waitHealthy(`${inlineUrl}/health`, inline);
    for (const seed of [1, 2]) {
      const w = await remoteWrite(c.insertUrl, randomSeries(seed), String(seed));
      expect(w.status, w.text).toBe(204);
    }
    await forceFlush(c);
  }, 120_000);

  afterAll(async () => {
    await inline?.stop();
    await c?.stop();
  });

  const get = async (base: string, path: string): Promise<string> => {
    const r = await fetch(`${base}${path}`);
    const text = await r.text();
    expect(r.status, text).toBe(200);
    return text;
  };

  it.each([1, 2])("answers of tenant %i are byte-identical with and without workers", async (tenant) => {
    let answers = 0;
    let nonEmpty = 0;
    for (const q of queries) {
      const range = `/select/${tenant}/prometheus/api/v1/query_range?query=${encodeURIComponent(q)}&start=${(T0 + 300_000) / 1000}&end=${(T0 + 2 * HOUR) / 1000}&step=47`;
      const instant = `/select/${tenant}/prometheus/api/v1/query?query=${encodeURIComponent(q)}&time=${(T0 + HOUR + 12_345) / 1000}`;
      for (const path of [range, instant]) {
        const [a, b] = await Promise.all([get(c.selectUrl, path), get(inlineUrl, path)]);
        expect(a, `${q}: ${path}`).toBe(b);
        answers++;
        if (!a.includes('"result":[]')) nonEmpty++;
      }
    }
    expect(answers).toBe(queries.length * 2);
    expect(nonEmpty).toBeGreaterThan(queries.length);
    expect(await metricSum(c.selectUrl, "strata_select_rollup_jobs_total")).toBeGreaterThan(0);
    expect(await metricSum(inlineUrl, "strata_select_rollup_jobs_total")).toBe(0);
  }, 300_000);

  it("the data holds stale markers that the answers depend on", async () => {
    // count_over_time counts NaN samples but not stale markers: the comparison above covers the
    // workers' stale-marker removal only if markers arrived as markers.
    const series = randomSeries(1);
    const bits = new Uint32Array(new Float64Array(1).buffer);
    const isStale = (v: number): boolean => {
      new Float64Array(bits.buffer)[0] = v;
      return bits[0] === 2 && (bits[1] === 0x7ff00000 || bits[1] === 0x7ff80000);
    };
    const total = series.reduce((a, s) => a + s.samples.length, 0);
    const stale = series.reduce((a, s) => a + s.samples.filter(([, v]) => isStale(v)).length, 0);
    expect(stale).toBeGreaterThan(0);
    const q = encodeURIComponent('sum(count_over_time({__name__=~"c_total|g"}[3h]))');
    const text = await get(c.selectUrl, `/select/1/prometheus/api/v1/query?query=${q}&time=${(T0 + 2 * HOUR) / 1000}`);
    const got = Number((JSON.parse(text) as { data: { result: { value: [number, string] }[] } }).data.result[0]!.value[1]);
    expect(got).toBe(total - stale);
  });
});
