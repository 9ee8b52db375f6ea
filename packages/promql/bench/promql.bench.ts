/**
 * PromQL engine benchmark (`pnpm bench:promql`): in-memory data, 10k counter series × 24 h at
 * 15 s (57.6M samples) plus 1k classic-histogram bucket series; range queries over 24 h at a
 * 60 s step. Prints ms per query (median of the runs) and samples per second, counted two ways:
 * samples selected from the querier (each stored sample once) and samples scanned by range
 * functions (every window's samples, Prometheus' way of counting).
 */
import { cpus, loadavg } from "node:os";
import { MemoryQuerier, createEngine } from "@strata/promql";
import type { QueryResult } from "@strata/promql";

const HOUR = 3_600_000;
const SCRAPE = 15_000;
const SPAN = 24 * HOUR;
const STEP = 60_000;
const SERIES = 10_000;
const MODES = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice", "guest", "guest_nice"];
const BUCKETS = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
const HIST_INSTANCES = 100;
const RUNS = Number(process.env["BENCH_RUNS"] ?? 3);

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function build(): { querier: MemoryQuerier; samples: number } {
  const n = SPAN / SCRAPE + 1;
  const ts = new Float64Array(n);
  for (let i = 0; i < n; i++) ts[i] = i * SCRAPE;
  const q = new MemoryQuerier();
  const rnd = mulberry32(42);
  let samples = 0;
  for (let s = 0; s < SERIES; s++) {
    const vs = new Float64Array(n);
    let v = Math.floor(rnd() * 1000);
    for (let i = 0; i < n; i++) {
      v += Math.floor(rnd() * 100);
      // A counter reset now and then, as after a restart.
      if (rnd() < 0.0002) v = 0;
      vs[i] = v;
    }
    q.adoptSeries(
      { __name__: "node_cpu_seconds_total", instance: `host-${Math.floor(s / MODES.length)}`, mode: MODES[s % MODES.length]! },
      ts,
      vs,
    );
    samples += n;
  }
  for (let h = 0; h < HIST_INSTANCES; h++) {
    const base = new Float64Array(n);
    let c = 0;
    for (let i = 0; i < n; i++) {
      c += Math.floor(rnd() * 50);
      base[i] = c;
    }
    for (let b = 0; b < BUCKETS.length; b++) {
      const vs = new Float64Array(n);
      const frac = (b + 1) / BUCKETS.length;
      for (let i = 0; i < n; i++) vs[i] = Math.floor(base[i]! * frac);
      q.adoptSeries({ __name__: "http_request_duration_seconds_bucket", instance: `web-${h}`, le: BUCKETS[b]! }, ts, vs);
      samples += n;
    }
  }
  return { querier: q, samples };
}

interface Case {
  readonly name: string;
  readonly query: string;
  readonly instant?: boolean;
}

const CASES: readonly Case[] = [
  { name: "rate + sum by", query: "sum by (mode) (rate(node_cpu_seconds_total[5m]))" },
  { name: "histogram_quantile", query: "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))" },
  { name: "topk(10, rate)", query: "topk(10, rate(node_cpu_seconds_total[5m]))" },
  { name: "regex selector", query: 'sum(rate(node_cpu_seconds_total{instance=~"host-1.*", mode=~"idle|user"}[5m]))' },
  { name: "increase 1h", query: "sum(increase(node_cpu_seconds_total[1h]))" },
  { name: "avg_over_time", query: "avg(avg_over_time(node_cpu_seconds_total[5m]))" },
  { name: "instant rate", query: "sum by (mode) (rate(node_cpu_seconds_total[5m]))", instant: true },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fmtRate(perSec: number): string {
  return perSec >= 1e6 ? `${(perSec / 1e6).toFixed(1)}M/s` : `${(perSec / 1e3).toFixed(1)}k/s`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const { querier, samples } = build();
  console.log(
    `data: ${SERIES} counter series + ${HIST_INSTANCES * BUCKETS.length} bucket series × ${SPAN / HOUR} h at ${SCRAPE / 1000} s = ${(samples / 1e6).toFixed(1)}M samples (built in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  console.log(`range queries over ${SPAN / HOUR} h at ${STEP / 1000} s step (${SPAN / STEP + 1} steps); median of ${RUNS} runs; node ${process.version}`);
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")} on ${cpus().length} cores (rates use process CPU time, so they are per core)`);
  const engine = createEngine();
  console.log("");
  console.log("| query | wall ms | CPU ms | series out | samples selected | selected/s (CPU) | samples scanned | scanned/s (CPU) |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const c of CASES) {
    const times: number[] = [];
    const cpuMs: number[] = [];
    let last: QueryResult | undefined;
    for (let r = 0; r < RUNS; r++) {
      const start = performance.now();
      const cpu0 = process.cpuUsage();
      last = c.instant ? await engine.instantQuery(querier, c.query, SPAN) : await engine.rangeQuery(querier, c.query, 0, SPAN, STEP);
      const cpu = process.cpuUsage(cpu0);
      times.push(performance.now() - start);
      cpuMs.push((cpu.user + cpu.system) / 1000);
    }
    const wall = median(times);
    const ms = median(cpuMs);
    const stats = last!.stats!;
    const out = last!.type === "matrix" ? last!.series.length : last!.type === "vector" ? last!.labels.length : 1;
    console.log(
      `| ${c.instant ? "instant " : ""}\`${c.query}\` | ${wall.toFixed(0)} | ${ms.toFixed(0)} | ${out} | ${(stats.samplesSelected / 1e6).toFixed(2)}M | ${fmtRate((stats.samplesSelected / ms) * 1000)} | ${(stats.samplesScanned / 1e6).toFixed(1)}M | ${fmtRate((stats.samplesScanned / ms) * 1000)} |`,
    );
  }
}

await main();
