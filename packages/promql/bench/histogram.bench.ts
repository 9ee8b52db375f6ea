/**
 * Many-group aggregations and histogram_quantile in process (`pnpm bench:promql-histogram`): the
 * 100k shape's application histogram (test/bench/node-exporter-data.ts: per host two handlers ×
 * 11 `le` buckets) over 1 h at a 15 s step (241 steps), through promql's in-memory querier. Prints
 * CPU ms per query (median of the runs) for the bench:query histogram queries and the
 * aggregation under them alone, so the engine's share (group keys, the fold into thousands of
 * groups, histogram_quantile) is measured without the cluster. `HOSTS=…` and `BENCH_RUNS=…` in
 * the environment change the size and the runs.
 */
import { cpus, loadavg } from "node:os";
import { MemoryQuerier, createEngine } from "@strata/promql";

const SCRAPE = 15_000;
const POINTS = 360;
const STEP = 15_000;
const HOSTS = Number(process.env["HOSTS"] ?? 1099);
const RUNS = Number(process.env["BENCH_RUNS"] ?? 7);
const LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];

function build(): { querier: MemoryQuerier; series: number } {
  const ts = new Float64Array(POINTS);
  for (let i = 0; i < POINTS; i++) ts[i] = i * SCRAPE;
  const q = new MemoryQuerier();
  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let series = 0;
  for (let h = 0; h < HOSTS; h++) {
    for (const handler of ["/api", "/metrics"]) {
      for (let b = 0; b < LE.length; b++) {
        const vs = new Float64Array(POINTS);
        let v = 0;
        for (let i = 0; i < POINTS; i++) {
          v += Math.floor(rnd() * (2 + b * 3));
          vs[i] = v;
        }
        q.adoptSeries({ __name__: "http_request_duration_seconds_bucket", handler, instance: `host-${h}.example.com:9100`, job: "app", le: LE[b]! }, ts, vs);
        series++;
      }
    }
  }
  return { querier: q, series };
}

const CASES = [
  { name: "histogram_quantile p90 by instance", query: "histogram_quantile(0.9, sum by (instance, le) (rate(http_request_duration_seconds_bucket[5m])))" },
  { name: "sum by (instance, le)", query: "sum by (instance, le) (rate(http_request_duration_seconds_bucket[5m]))" },
  { name: "histogram_quantile p99 by le", query: "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))" },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const { querier, series } = build();
const end = (POINTS - 1) * SCRAPE;
const start = end - 3_600_000;
console.log(`${series} bucket series (${HOSTS} hosts) × ${POINTS} points; range ${(end - start) / STEP + 1} steps; ${RUNS} runs; node ${process.version}; load ${loadavg().map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} cores`);
console.log("| query | CPU ms (median) | CPU ms (min) | series out |");
console.log("|---|---:|---:|---:|");
const engine = createEngine();
for (const c of CASES) {
  const cpuMs: number[] = [];
  let out = 0;
  for (let r = 0; r < RUNS + 1; r++) {
    const cpu0 = process.cpuUsage();
    const res = await engine.rangeQuery(querier, c.query, start, end, STEP);
    const cpu = process.cpuUsage(cpu0);
    if (r > 0) cpuMs.push((cpu.user + cpu.system) / 1000);
    out = res.type === "matrix" ? res.series.length : 0;
  }
  console.log(`| \`${c.name}\` | ${median(cpuMs).toFixed(1)} | ${Math.min(...cpuMs).toFixed(1)} | ${out} |`);
}
