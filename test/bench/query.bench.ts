// pnpm bench:query [--shape=default|100k|7d] [--hosts=25] [--hours=6] [--queryHours=H] [--step=60] [--runs=5] [--warmup=3] [--only=NAME] [--noVM] [--profile=DIR] [--tls] [--cpu] [--hold] [--selectFlags=-a=1,-b=2] [--selectFlagsB=-a=0] [--selectMainB=PATH]
//
// Shapes (flags given beside --shape override its values):
//   default  25 hosts (2275 series) × 6 h, queries over the 6 h at a 60 s step;
//   100k     1099 hosts (100k series) × 360 points (90 min), queries over the last hour at 15 s;
//   7d       22 hosts (2002 series) × 7 days (80.9M samples; merged parts, many blocks per
//            series), queries over the 7 days at a 2016 s step (≈ 34 min, 300 points).
// On the wide shapes the query that returns every CPU series raw is narrowed to `host-1…`.
//
// Loads one node_exporter-like dataset (test/bench/node-exporter-data.ts: 91 series per host,
// 15 s interval; generated body by body while both sides load it) into a Strata cluster (insert + 2 storage + select processes, RF=1) and into
// Debian's victoria-metrics single node, forces flush and merge on both, then runs Grafana
// "Node Exporter Full"-style queries against both, alternating, several times each, and prints
// the median ms per query, the ratio per query and the total ratio. Range queries are sent with
// nocache=1 so both sides evaluate every run (their result caches would otherwise answer the
// repeats), and with `accept-encoding: identity` so neither side spends time on gzip. Every
// answer's series count is compared between both sides. --tls puts mTLS on every Strata cluster
// link (insert → storage, select → storage); compare its ratio with a run without. Requires
// `pnpm build` first.
import { existsSync, readFileSync } from "node:fs";
import { PerformanceObserver } from "node:perf_hooks";
import { makeClusterCerts } from "../lib/certs.js";
import { clusterBuilt, serviceEnv, startCluster, type Cluster } from "../lib/cluster.js";
import { cpuSeconds, freePort, metricSum, serviceMain, startProcess, tempDir, waitHealthy } from "../lib/procs.js";
import { datasetBodies, datasetShape } from "./node-exporter-data.js";
import { startVictoriaMetrics, VM_BIN, type BenchTarget } from "./victoria-metrics.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const kv = a.replace(/^--?/, "");
    const eq = kv.indexOf("=");
    return eq < 0 ? ([kv, "true"] as const) : ([kv.slice(0, eq), kv.slice(eq + 1)] as const);
  }),
);
const SHAPES = {
  default: { hosts: 25, hours: 6, queryHours: 6, step: 60 },
  "100k": { hosts: 1099, hours: 1.5, queryHours: 1, step: 15 },
  "7d": { hosts: 22, hours: 168, queryHours: 168, step: 2016 },
} as const;
const SHAPE_NAME = args.get("shape") ?? "default";
if (!(SHAPE_NAME in SHAPES)) throw new Error(`--shape=${SHAPE_NAME}: unknown shape; use one of ${Object.keys(SHAPES).join(", ")}`);
const SHAPE = SHAPES[SHAPE_NAME as keyof typeof SHAPES];
const HOSTS = Number(args.get("hosts") ?? SHAPE.hosts);
const HOURS = Number(args.get("hours") ?? SHAPE.hours);
const QUERY_HOURS = Math.min(HOURS, Number(args.get("queryHours") ?? (args.has("hours") ? HOURS : SHAPE.queryHours)));
const STEP_S = Number(args.get("step") ?? SHAPE.step);
/** More than this many hosts: the raw query over every CPU series is narrowed to host-1…. */
const WIDE_HOSTS = 100;
const RUNS = Number(args.get("runs") ?? 5);
/** Unmeasured passes over every query on every target before the measured ones. */
const WARMUP = Math.max(1, Number(args.get("warmup") ?? 3));
const WITH_VM = !args.has("noVM");
const WITH_TLS = args.has("tls");
const PROFILE = args.get("profile");
/** Only the queries whose name contains this, or one of these `|`-separated parts (for profiling a few queries). */
const ONLY = args.get("only");
/** Print CPU ms per query and process (select, each storage node; the VM process). */
const CPU_TABLE = args.has("cpu");
/** After loading, print each target's API URL and wait for SIGINT/SIGTERM (for profiling by hand). */
const HOLD = args.has("hold");
/** Extra select flags, comma-separated (e.g. --selectFlags=-search.maxWorkersPerQuery=0), for A/B runs. */
const EXTRA_SELECT_FLAGS = (args.get("selectFlags") ?? "").split(",").filter((f) => f !== "");
/**
 * A second select over the same storage nodes with these flags instead (target "strata B",
 * measured in the same passes as the first, so both see the same load), for A/B runs.
 */
const SELECT_FLAGS_B_ARG = args.has("selectFlagsB") ? (args.get("selectFlagsB") ?? "").split(",").filter((f) => f !== "") : undefined;
/**
 * Another build's select for "strata B" (its dist/main.js, e.g. of a base worktree), over the
 * same storage nodes: an A/B of select code changes in the same passes (implies --selectFlagsB).
 */
const SELECT_MAIN_B = args.get("selectMainB");
const SELECT_FLAGS_B = SELECT_FLAGS_B_ARG ?? (SELECT_MAIN_B === undefined ? undefined : []);
const INTERVAL = 15_000;

// ---- queries ----------------------------------------------------------------------------------

interface Query {
  readonly name: string;
  /** Path below the API root (`/api/v1/…?…`) without time parameters. */
  readonly path: string;
  readonly kind: "range" | "instant" | "meta";
}

const enc = encodeURIComponent;
const range = (name: string, q: string): Query => ({ name, path: `/api/v1/query_range?query=${enc(q)}`, kind: "range" });
const instant = (name: string, q: string): Query => ({ name, path: `/api/v1/query?query=${enc(q)}`, kind: "instant" });
const meta = (name: string, path: string): Query => ({ name, path, kind: "meta" });

const ALL_QUERIES: Query[] = [
  range("CPU busy % by instance", '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))'),
  range("CPU seconds by mode", "sum by (mode) (rate(node_cpu_seconds_total[5m]))"),
  range("CPU rate by instance (non-idle)", 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))'),
  HOSTS > WIDE_HOSTS
    ? range("CPU raw rate (host-1…)", 'rate(node_cpu_seconds_total{instance=~"host-1.*"}[5m])')
    : range("CPU raw rate (all series)", "rate(node_cpu_seconds_total[5m])"),
  range("memory used", "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes"),
  range("memory used %", "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"),
  range("topk 5 network receive", 'topk(5, rate(node_network_receive_bytes_total{device!="lo"}[5m]))'),
  range("network transmit, regex instance", 'rate(node_network_transmit_bytes_total{instance=~"host-1.*",device=~"eth.*"}[5m])'),
  range("disk io time", "rate(node_disk_io_time_seconds_total[5m])"),
  range("disk read+write by instance", "max by (instance) (rate(node_disk_read_bytes_total[5m]) + rate(node_disk_written_bytes_total[5m]))"),
  range("filesystem used %", '100 - node_filesystem_avail_bytes{fstype="ext4"} / node_filesystem_size_bytes{fstype="ext4"} * 100'),
  range("load1 raw", "node_load1"),
  range("avg_over_time load5", "avg_over_time(node_load5[10m])"),
  range("histogram_quantile p99 by le", "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
  range("histogram_quantile p90 by instance", "histogram_quantile(0.9, sum by (instance, le) (rate(http_request_duration_seconds_bucket[5m])))"),
  range("count up by job", "count by (job) (up == 1)"),
  range("uptime", "time() - node_boot_time_seconds"),
  instant("instant CPU by instance", "sum by (instance) (rate(node_cpu_seconds_total[5m]))"),
  instant("instant topk 10 context switches", "topk(10, rate(node_context_switches_total[5m]))"),
  meta("label values instance (match up)", `/api/v1/label/instance/values?match[]=${enc('up{job="node"}')}`),
  meta("label values __name__", "/api/v1/label/__name__/values"),
  meta("labels", "/api/v1/labels"),
  meta("series node_uname_info", `/api/v1/series?match[]=${enc("node_uname_info")}`),
  meta("series one host's CPU", `/api/v1/series?match[]=${enc('node_cpu_seconds_total{instance="host-1.example.com:9100"}')}`),
  meta("label values mode (match one host)", `/api/v1/label/mode/values?match[]=${enc('node_cpu_seconds_total{instance="host-1.example.com:9100"}')}`),
  meta("metadata", "/api/v1/metadata?limit=100"),
];

const QUERIES = ONLY === undefined ? ALL_QUERIES : ALL_QUERIES.filter((q) => ONLY.split("|").some((o) => q.name.includes(o)));

// ---- targets ----------------------------------------------------------------------------------

type Target = BenchTarget;

/** The cluster startStrata started (its storage nodes serve the "strata B" select too). */
let strataCluster: Cluster | undefined;

async function startStrata(): Promise<Target> {
  if (!clusterBuilt()) throw new Error("services are not built: run `pnpm build` first");
  const prof = PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`];
  const certDir = tempDir("bench-certs");
  const certs = WITH_TLS ? makeClusterCerts(certDir.path) : { storageFlags: [], clientFlags: [] };
  const c: Cluster = await startCluster({
    storageNodes: 2,
    replicationFactor: 1,
    storageFlags: ["-retentionPeriod=100y", ...certs.storageFlags],
    insertFlags: ["-retentionPeriod=100y", ...certs.clientFlags],
    selectFlags: ["-search.maxQueryDuration=120s", ...certs.clientFlags, ...EXTRA_SELECT_FLAGS],
    nodeArgs: { select: prof, storage: prof },
  });
  strataCluster = c;
  return {
    name: WITH_TLS ? "strata (mTLS)" : "strata",
    api: `${c.selectUrl}/select/0/prometheus`,
    writeUrl: `${c.insertUrl}/insert/0/prometheus/api/v1/write`,
    pids: [c.select.child.pid!, ...c.storage.map((s) => s.proc.child.pid!)],
    async flush() {
      await Promise.all(c.storage.map(async (s) => (await fetch(`http://${s.httpAddr}/internal/force_flush`)).text()));
      await Promise.all(c.storage.map(async (s) => (await fetch(`http://${s.httpAddr}/internal/force_merge`)).text()));
    },
    async stop() {
      await c.stop();
      certDir.remove();
    },
  };
}

/** A second select process over `c`'s storage nodes with `flags` (instead of EXTRA_SELECT_FLAGS). */
async function startSelectB(c: Cluster, flags: readonly string[]): Promise<Target> {
  const port = await freePort();
  const proc = startProcess(process.execPath, [
    ...(PROFILE === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`]),
    SELECT_MAIN_B ?? serviceMain("select"),
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`,
    "-replicationFactor=1",
    "-search.maxQueryDuration=120s",
    ...flags,
  ], serviceEnv());
  await waitHealthy(`http://127.0.0.1:${port}/health`, proc);
  return {
    name: "strata B",
    api: `http://127.0.0.1:${port}/select/0/prometheus`,
    writeUrl: "",
    pids: [proc.child.pid!, ...c.storage.map((s) => s.proc.child.pid!)],
    flush: async () => undefined,
    async stop() {
      await proc.stop();
    },
  };
}

/**
 * Sends every body to every target (`concurrency` bodies in flight, each to all targets at once),
 * pulling bodies from the generator as they are needed.
 */
async function load(targets: readonly Target[], bodies: Iterator<Uint8Array>, concurrency = 4): Promise<number> {
  const t0 = performance.now();
  const send = async (t: Target, b: Uint8Array): Promise<void> => {
    {
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(t.writeUrl, {
          method: "POST",
          body: b as Uint8Array<ArrayBuffer>,
          headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
        });
        const text = await r.text();
        if (r.status === 204 || r.status === 200) break;
        if ((r.status < 500 && r.status !== 429) || attempt > 30) throw new Error(`${t.name}: ${r.status} ${text}`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  };
  const worker = async (): Promise<void> => {
    for (let n = bodies.next(); n.done !== true; n = bodies.next()) await Promise.all(targets.map((t) => send(t, n.value)));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - t0) / 1000;
}

interface Answer {
  /** performance.now() when the request was sent. */
  readonly t0: number;
  readonly ms: number;
  readonly bytes: number;
  /** Series (range/instant) or items (meta) in the answer. */
  readonly items: number;
}

async function run(t: Target, q: Query, start: number, end: number): Promise<Answer> {
  let url = `${t.api}${q.path}${q.path.includes("?") ? "" : "?"}`;
  if (q.kind === "range") url += `&start=${start / 1000}&end=${end / 1000}&step=${STEP_S}&nocache=1`;
  else if (q.kind === "instant") url += `&time=${end / 1000}&nocache=1`;
  else url += `&start=${start / 1000}&end=${end / 1000}`;
  const t0 = performance.now();
  const r = await fetch(url, { headers: { "accept-encoding": "identity" } });
  const text = await r.text();
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${t.name} ${q.name}: HTTP ${r.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text) as { data: unknown };
  const d = body.data as { result?: unknown[] } | unknown[];
  const items = Array.isArray(d) ? d.length : (d.result?.length ?? 0);
  return { t0, ms, bytes: text.length, items };
}

/**
 * The bench client's own garbage collections (it parses every answer: ~10 MB a pass at 7d, ~170 MB
 * at 100k), so that a pause of the client inside a timed call is not read as the server's time.
 */
const clientGcs: { start: number; end: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) clientGcs.push({ start: e.startTime, end: e.startTime + e.duration });
});
gcObserver.observe({ entryTypes: ["gc"] });

/** Milliseconds of the client's GC pauses inside [t0, t0 + ms]. */
function clientGcWithin(t0: number, ms: number): number {
  let sum = 0;
  for (const g of clientGcs) sum += Math.max(0, Math.min(g.end, t0 + ms) - Math.max(g.start, t0));
  return sum;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function loadAvg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

// ---- main -------------------------------------------------------------------------------------

const points = SHAPE_NAME === "100k" && !args.has("hours") ? 360 : Math.round((HOURS * 3_600_000) / INTERVAL) + 1;
const end = Math.floor((Date.now() - 5 * 60_000) / INTERVAL) * INTERVAL;
const dataStart = end - (points - 1) * INTERVAL;
const start = end - QUERY_HOURS * 3_600_000;
const dataOpts = { hosts: HOSTS, start: dataStart, points, intervalMs: INTERVAL, samplesPerBody: 10_000 };
const data = datasetShape(dataOpts);
console.log(`shape ${SHAPE_NAME}: ${HOSTS} hosts, ${data.series} series × ${points} points (15 s) = ${(data.samples / 1e6).toFixed(2)}M samples`);
console.log(
  `queries: range over the last ${QUERY_HOURS} h with step ${STEP_S}s, instant at the end; median of ${RUNS} runs after ${WARMUP} warm-up passes; node ${process.version}; load average ${loadAvg()}`,
);

const targets: Target[] = [];
try {
  targets.push(await startStrata());
  const vmAvailable = existsSync(VM_BIN);
  if (WITH_VM && vmAvailable) targets.push(await startVictoriaMetrics("vm-query-bench"));
  else console.log(WITH_VM ? `victoria-metrics comparison skipped: ${VM_BIN} not found (apt-get install -y victoria-metrics)` : "victoria-metrics comparison skipped (--noVM)");
  const s = await load(targets, datasetBodies(dataOpts));
  console.log(`generated and loaded into ${targets.map((t) => t.name).join(" and ")} in ${s.toFixed(1)} s (${Math.round(data.samples / s).toLocaleString("en-US")} samples/s each)`);
  for (const t of targets) {
    const f0 = performance.now();
    await t.flush();
    console.log(`${t.name}: flush + merge ${((performance.now() - f0) / 1000).toFixed(1)} s`);
  }
  if (SELECT_FLAGS_B !== undefined) {
    targets.push(await startSelectB(strataCluster!, SELECT_FLAGS_B));
    console.log(`strata B: a second select${SELECT_MAIN_B === undefined ? "" : ` (${SELECT_MAIN_B})`} over the same storage nodes with ${SELECT_FLAGS_B.join(" ") || "no extra flags"} (strata: ${EXTRA_SELECT_FLAGS.join(" ") || "no extra flags"})`);
  }
  if (HOLD) {
    for (const t of targets) console.log(`${t.name}: ${t.api} (pids ${t.pids.join(" ")})`);
    console.log("holding: SIGINT or SIGTERM stops the targets");
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
    for (const t of targets.splice(0)) await t.stop();
    process.exit(0);
  }
  // WARMUP unmeasured passes (caches of parsed regexes, index blocks, and V8's JIT: a select
  // that has served a dashboard for a while runs optimised code — with one pass grpc-js and
  // the handlers mostly still run unoptimised), then RUNS measured passes, alternating targets
  // per query (the first one rotating with the pass) so that load changes on the machine hit
  // both alike.
  const times = targets.map(() => QUERIES.map(() => [] as number[]));
  /** Each measured call's start (performance.now()), for matching the client's GC pauses. */
  const starts = targets.map(() => QUERIES.map(() => [] as number[]));
  const items = targets.map(() => QUERIES.map(() => 0));
  const cpu = targets.map(() => 0);
  // CPU seconds per query per process of each target (Strata: select, then each storage node).
  const cpuBy = targets.map((t) => QUERIES.map(() => t.pids.map(() => 0)));
  const bytes = targets.map(() => QUERIES.map(() => 0));
  // Select's index-answer cache over the measured passes (a miss asks the storage nodes).
  const selects = targets.filter((t) => t.name.startsWith("strata")).map((t) => ({ name: t.name, base: t.api.replace(/\/select\/0\/prometheus$/, "") }));
  const metaCacheCounts = () =>
    Promise.all(selects.map(async (s) => Promise.all(["hits", "misses", "refreshes"].map((k) => metricSum(s.base, `strata_select_meta_cache_${k}_total`)))));
  let metaCache0: number[][] = [];
  for (let pass = 1 - WARMUP; pass <= RUNS; pass++) {
    if (pass === 1) metaCache0 = await metaCacheCounts();
    for (let qi = 0; qi < QUERIES.length; qi++) {
      // Which target goes first rotates with the pass: a call right after the other side's call
      // of the same query shares the machine with whatever that side still does in the
      // background (a GC, a merge), so neither side is always the one that follows.
      for (let k = 0; k < targets.length; k++) {
        const ti = (k + pass + WARMUP + targets.length) % targets.length;
        const t = targets[ti]!;
        const cpu0 = t.pids.map(cpuSeconds);
        const a = await run(t, QUERIES[qi]!, start, end);
        if (pass > 0) {
          times[ti]![qi]!.push(a.ms);
          starts[ti]![qi]!.push(a.t0);
          t.pids.forEach((pid, pi) => {
            const d = cpuSeconds(pid) - cpu0[pi]!;
            cpu[ti] = cpu[ti]! + d;
            cpuBy[ti]![qi]![pi] = cpuBy[ti]![qi]![pi]! + d;
          });
        }
        items[ti]![qi] = a.items;
        bytes[ti]![qi] = a.bytes;
      }
    }
  }
  const metaCache1 = await metaCacheCounts();
  // PerformanceObserver delivers entries asynchronously: let the last ones arrive.
  await new Promise((resolve) => setTimeout(resolve, 50));
  gcObserver.disconnect();
  /** The client's GC ms inside each measured call, per target, query and pass. */
  const gcIn = targets.map((_, ti) => QUERIES.map((_q, qi) => starts[ti]![qi]!.map((t0, pi) => clientGcWithin(t0, times[ti]![qi]![pi]!))));
  selects.forEach((s, i) => {
    const [h, m, r] = metaCache1[i]!.map((v, k) => v - metaCache0[i]![k]!);
    console.log(`${s.name}: index-answer cache over the measured passes: ${h} hits, ${m} misses, ${r} background refreshes`);
  });
  const med = times.map((perQ) => perQ.map(median));
  const w = Math.max(...QUERIES.map((q) => q.name.length));
  const header = `| ${"query".padEnd(w)} | ${targets.map((t) => `${t.name} ms`.padStart(18)).join(" | ")} |${targets.length > 1 ? " ratio | series |" : " series |"}`;
  console.log(`\n${header}`);
  console.log(`| ${"-".repeat(w)} | ${targets.map(() => `${"-".repeat(17)}:`).join(" | ")} |${targets.length > 1 ? " ----: | -----: |" : " -----: |"}`);
  const mismatches: string[] = [];
  QUERIES.forEach((q, qi) => {
    const cols = targets.map((_, ti) => med[ti]![qi]!.toFixed(1).padStart(18));
    let row = `| ${q.name.padEnd(w)} | ${cols.join(" | ")} |`;
    if (targets.length > 1) row += ` ${(med[0]![qi]! / med[1]![qi]!).toFixed(2).padStart(5)} |`;
    row += ` ${String(items[0]![qi]).padStart(6)} |`;
    console.log(row);
    if (targets.length > 1 && items[0]![qi] !== items[1]![qi]) mismatches.push(`${q.name}: strata ${items[0]![qi]}, victoria-metrics ${items[1]![qi]}`);
  });
  const totals = med.map((m) => m.reduce((a, b) => a + b, 0));
  console.log(`| ${"**total**".padEnd(w)} | ${totals.map((x) => x.toFixed(1).padStart(18)).join(" | ")} |${targets.length > 1 ? ` ${(totals[0]! / totals[1]!).toFixed(2).padStart(5)} |` : ""}${" ".repeat(8)} |`);
  if (targets.length > 1) {
    const dash = QUERIES.map((q, qi) => [q, qi] as const).filter(([q]) => q.kind !== "meta");
    const dashTotal = (ti: number) => dash.reduce((a, [, qi]) => a + med[ti]![qi]!, 0);
    const metaRatios = QUERIES.map((q, qi) => (q.kind === "meta" ? med[0]![qi]! / med[1]![qi]! : 0));
    const worstMeta = Math.max(...metaRatios);
    console.log(`\ntotal latency strata / victoria-metrics: ${(totals[0]! / totals[1]!).toFixed(2)}×`);
    console.log(`dashboard queries (range + instant): ${dashTotal(0).toFixed(1)} / ${dashTotal(1).toFixed(1)} ms = ${(dashTotal(0) / dashTotal(1)).toFixed(2)}× (target ≤ 1.2×)`);
    if (worstMeta > 0) console.log(`slowest metadata call relative to victoria-metrics: ${worstMeta.toFixed(2)}× (${QUERIES[metaRatios.indexOf(worstMeta)]!.name}; target ≤ 2×)`);
    console.log(mismatches.length === 0 ? "every answer has the same number of series/items on both sides" : `answers differ in size:\n  ${mismatches.join("\n  ")}`);
  }
  const bi = targets.findIndex((t) => t.name === "strata B");
  if (bi > 0) {
    const dash = QUERIES.map((q, qi) => [q, qi] as const).filter(([q]) => q.kind !== "meta");
    const dashTotal = (ti: number) => dash.reduce((a, [, qi]) => a + med[ti]![qi]!, 0);
    console.log(`strata / strata B: total ${(totals[0]! / totals[bi]!).toFixed(2)}×, dashboard queries ${dashTotal(0).toFixed(1)} / ${dashTotal(bi).toFixed(1)} ms = ${(dashTotal(0) / dashTotal(bi)).toFixed(2)}×`);
    QUERIES.forEach((q, qi) => {
      if (items[0]![qi] !== items[bi]![qi]) console.log(`  ${q.name}: strata ${items[0]![qi]} series, strata B ${items[bi]![qi]}`);
    });
  }
  // CPU ticks are 10 ms: only the sum over every measured query means something.
  if (CPU_TABLE) {
    console.log(`\nCPU ms per query (mean of ${RUNS} runs; strata: select + storage nodes)`);
    QUERIES.forEach((q, qi) => {
      const cols = targets.map((t, ti) => {
        const per = cpuBy[ti]![qi]!.map((c) => ((c / RUNS) * 1000).toFixed(1));
        return `${t.name} ${per.join(" + ")}`;
      });
      console.log(`  ${q.name.padEnd(w)}  ${cols.join("  |  ")}`);
    });
  }
  if (CPU_TABLE && QUERIES.some((q) => q.kind === "meta")) {
    console.log("\nmetadata calls, ms in each measured pass (a cache miss asks the storage nodes; [g] = ms of the bench client's own GC inside the call)");
    const cell = (ti: number, qi: number, pi: number): string => {
      const g = gcIn[ti]![qi]![pi]!;
      return `${times[ti]![qi]![pi]!.toFixed(1)}${g >= 0.05 ? `[${g.toFixed(1)}]` : ""}`;
    };
    QUERIES.forEach((q, qi) => {
      if (q.kind === "meta") console.log(`  ${q.name.padEnd(w)}  ${targets.map((t, ti) => `${t.name} ${times[ti]![qi]!.map((_, pi) => cell(ti, qi, pi)).join(" ")}`).join("  |  ")}`);
    });
  }
  targets.forEach((t, ti) => {
    let calls = 0;
    let ms = 0;
    for (const perQ of gcIn[ti]!) {
      for (const g of perQ) {
        if (g > 0) {
          calls++;
          ms += g;
        }
      }
    }
    console.log(`${t.name}: the bench client's own GC paused inside ${calls} of ${RUNS * QUERIES.length} measured calls, ${ms.toFixed(1)} ms in all`);
  });
  console.log(`CPU per query (mean over ${RUNS} × ${QUERIES.length} queries): ${targets.map((t, ti) => `${t.name} ${((cpu[ti]! / (RUNS * QUERIES.length)) * 1000).toFixed(1)} ms`).join(", ")}`);
  console.log(`response bytes (strata, last run): ${bytes[0]!.reduce((a, b) => a + b, 0).toLocaleString("en-US")}; load average ${loadAvg()}`);
} finally {
  for (const t of targets) await t.stop();
}
