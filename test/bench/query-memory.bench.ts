// pnpm bench:query-memory [--series=20000] [--points=360] [--only=NAME] [--noVM] [--fresh] [--selectEnv="NAME=VALUE …"] [--selectFlags=-a=b,…] [--selectNodeArgs=--cpu-prof,…]
//
// select's memory around heavy queries: loads `series` series × `points` samples (15 s apart)
// into a Strata cluster (2 storage nodes, insert, select as processes), then prints select's RSS
// (from /proc), V8 heap and external memory (from its /metrics):
//   idle     after one small query;
//   during   peak while heavy queries run (sampled every 100 ms), and the slowest /health answer
//            meanwhile (polled every 100 ms from a worker thread);
//   after    5 s and 20 s after the last heavy query ended.
// The heavy queries: issue 18's `sum(count_over_time({__name__!=""}[2h]))`, two range queries
// returning every series at every step (raw and rate), and issue 14's `count_over_time(vector(1)[100y:1s])`
// (refused at once); each prints select's peak RSS while it ran. Debian's victoria-metrics single
// node gets the same data, and the issue 18 query is run against it too, with its peak RSS beside
// select's (--noVM skips it). `--only` runs the heavy queries whose name contains it. `--selectEnv` sets environment variables of the select process only (e.g.
// MALLOC_ARENA_MAX=2 to compare allocator settings). Requires `pnpm build` first.
import { existsSync, readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { clusterBuilt, forceFlush, remoteWriteBody, startCluster, type TestSeries } from "../lib/cluster.js";
import { startVictoriaMetrics, VM_BIN, type BenchTarget } from "./victoria-metrics.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const i = a.indexOf("=");
    return [a.slice(0, i < 0 ? undefined : i).replace(/^--?/, ""), i < 0 ? "true" : a.slice(i + 1)] as const;
  }),
);
const SERIES = Number(args.get("series") ?? 20_000);
const POINTS = Number(args.get("points") ?? 360);
const STEP = 15_000;
const list = (s: string | undefined) => (s === undefined || s === "" ? [] : s.split(","));
// Space-separated: values such as MALLOC_CONF hold commas.
const selectEnv = Object.fromEntries(
  (args.get("selectEnv") ?? "")
    .split(" ")
    .filter((kv) => kv !== "")
    .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);

if (!clusterBuilt()) throw new Error("services are not built: run pnpm build first");

const END = Math.floor(Date.now() / STEP) * STEP;
const START = END - (POINTS - 1) * STEP;
const ONLY = args.get("only");
const c = await startCluster({ storageNodes: 2, selectFlags: list(args.get("selectFlags")), selectEnv, nodeArgs: { select: list(args.get("selectNodeArgs")) } });
let vm: BenchTarget | undefined;
try {
  if (args.has("noVM")) console.log("victoria-metrics comparison skipped (--noVM)");
  else if (!existsSync(VM_BIN)) console.log(`victoria-metrics comparison skipped: ${VM_BIN} not found (apt-get install -y victoria-metrics)`);
  else vm = await startVictoriaMetrics("vm-query-memory-bench");
  const post = async (url: string, body: Uint8Array): Promise<void> => {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
      body: Buffer.from(body),
    });
    const text = await r.text();
    if (r.status !== 204 && r.status !== 200) throw new Error(`remote write to ${url}: ${r.status} ${text}`);
  };
  // ---- load ----------------------------------------------------------------------------------
  const t0 = performance.now();
  const BATCH = Math.max(1, Math.floor(200_000 / POINTS));
  for (let from = 0; from < SERIES; from += BATCH) {
    const batch: TestSeries[] = [];
    for (let i = from; i < Math.min(SERIES, from + BATCH); i++) {
      const samples: [number, number][] = [];
      for (let k = 0; k < POINTS; k++) samples.push([START + k * STEP, k * (1 + (i % 7))]);
      batch.push({ labels: { __name__: `m${i % 50}_total`, instance: `host-${Math.floor(i / 50)}`, job: "bench", n: String(i % 50) }, samples });
    }
    const body = remoteWriteBody(batch);
    await Promise.all([post(`${c.insertUrl}/insert/0/prometheus/api/v1/write`, body), vm ? post(vm.writeUrl, body) : undefined]);
  }
  await forceFlush(c);
  await vm?.flush();
  console.log(`loaded ${SERIES} series × ${POINTS} points in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // Freshly flushed parts keep the cheap layouts (RawFloat values, ~11 bytes a sample on the wire
  // against ~1–3 after a merge) until more than 8 parts trigger a merge, i.e. until the load took
  // more than ~40 s of 5 s disk flushes: select holds every received frame for the whole query, so
  // without this its peak depended on how long the load took (275–290 vs 675–735 MiB at 100k × 360).
  // --fresh measures the unmerged case on purpose.
  if (!args.has("fresh")) await Promise.all(c.storage.map((s) => fetch(`http://${s.httpAddr}/internal/force_merge`).then((r) => r.text())));
  const parts = await Promise.all(
    c.storage.map(async (s) => {
      const text = await (await fetch(`http://${s.httpAddr}/metrics`)).text();
      const g = (n: string) => new RegExp(`^strata_storage_${n} (\\S+)$`, "m").exec(text)?.[1] ?? "?";
      return `${s.name} ${g("small_parts")} small + ${g("big_parts")} big parts`;
    }),
  );
  console.log(`storage ${args.has("fresh") ? "as flushed (--fresh)" : "after force_merge"}: ${parts.join(", ")}`);

  // ---- measure -------------------------------------------------------------------------------
  const pid = c.select.child.pid!;
  const rssOf = (p: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))![1]) * 1024;
  const rss = () => rssOf(pid);
  const gauges = async () => {
    const text = await (await fetch(`${c.selectUrl}/metrics`)).text();
    const g = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    return { heap: g("nodejs_heap_size_used_bytes"), heapTotal: g("nodejs_heap_size_total_bytes"), external: g("nodejs_external_memory_bytes") };
  };
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  const report = async (label: string) => {
    const g = await gauges();
    console.log(`  ${label.padEnd(9)} RSS ${mib(rss()).padStart(9)}   heap used ${mib(g.heap).padStart(8)} of ${mib(g.heapTotal).padStart(8)}   external ${mib(g.external).padStart(8)}`);
  };
  const api = async (path: string, root = `${c.selectUrl}/select/0/prometheus`) => {
    const t = performance.now();
    const r = await fetch(`${root}/api/v1/${path}`, { headers: { "accept-encoding": "identity" } });
    const body = await r.text();
    return { status: r.status, bytes: body.length, ms: performance.now() - t, error: r.status === 200 ? "" : body.slice(0, 200), body };
  };
  const t = END / 1000;
  await api(`query?query=up&time=${t}`);
  await new Promise((r) => setTimeout(r, 2000));
  console.log(`select memory (load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}):`);
  await report("idle");

  // /health is polled from a worker thread: this thread reads the large answers, which would
  // delay its own polls and blame select for it.
  const poller = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
    let stop = false;
    parentPort.on("message", () => (stop = true));
    (async () => {
      while (!stop) {
        const t = performance.now();
        const r = await fetch(workerData + "/health");
        await r.text();
        parentPort.postMessage(performance.now() - t);
        await new Promise((r) => setTimeout(r, 100));
      }
      parentPort.close();
    })();`,
    { eval: true, workerData: c.selectUrl },
  );
  let peak = 0;
  let queryPeak = 0;
  let slowestHealth = 0;
  let slowestAll = 0;
  poller.on("error", () => undefined); // select gone (a crash shows in the answers)
  poller.on("message", (ms: number) => {
    slowestHealth = Math.max(slowestHealth, ms);
  });
  const sampler = setInterval(() => {
    const r = rss();
    peak = Math.max(peak, r);
    queryPeak = Math.max(queryPeak, r);
  }, 100);
  const heavy: [string, string][] = [
    ["sum(count_over_time(all[2h]))", `query?query=${encodeURIComponent('sum(count_over_time({__name__!=""}[2h]))')}&time=${t}`],
    ["every series, every step", `query_range?query=${encodeURIComponent('{__name__!=""}')}&start=${START / 1000}&end=${t}&step=15s&nocache=1`],
    ["rate of every series", `query_range?query=${encodeURIComponent('rate({__name__!=""}[5m])')}&start=${START / 1000}&end=${t}&step=15s&nocache=1`],
    ["count_over_time(vector(1)[100y:1s])", `query?query=${encodeURIComponent("count_over_time(vector(1)[100y:1s])")}&time=${t}`],
  ];
  let issueAnswer = "";
  for (const [name, path] of heavy) {
    if (ONLY !== undefined && !name.includes(ONLY)) continue;
    slowestHealth = 0;
    queryPeak = rss();
    const r = await api(path);
    queryPeak = Math.max(queryPeak, rss());
    if (name === heavy[0]![0]) issueAnswer = r.body;
    console.log(
      `  query ${name}: HTTP ${r.status}, ${(r.bytes / 2 ** 20).toFixed(1)} MiB answer in ${r.ms.toFixed(0)} ms, select peak RSS ${mib(queryPeak)}, slowest /health meanwhile ${slowestHealth.toFixed(0)} ms${r.error ? ` (${r.error})` : ""}`,
    );
    slowestAll = Math.max(slowestAll, slowestHealth);
  }
  clearInterval(sampler);
  poller.postMessage("stop");
  await new Promise((r) => poller.once("exit", r));
  const g = await gauges();
  console.log(`  during    RSS ${mib(peak).padStart(9)} (peak)   slowest /health ${slowestAll.toFixed(0)} ms   (heap now ${mib(g.heap)})`);
  await new Promise((r) => setTimeout(r, 5000));
  await report("after 5s");
  await new Promise((r) => setTimeout(r, 15_000));
  await report("after 20s");
  if (vm !== undefined && issueAnswer !== "") {
    // The same query on victoria-metrics: its whole process' peak RSS while it runs.
    const vmPid = vm.pids[0]!;
    const before = rssOf(vmPid);
    let vmPeak = before;
    const vmSampler = setInterval(() => (vmPeak = Math.max(vmPeak, rssOf(vmPid))), 100);
    const r = await api(heavy[0]![1], vm.api);
    clearInterval(vmSampler);
    vmPeak = Math.max(vmPeak, rssOf(vmPid));
    const value = (body: string) => (JSON.parse(body) as { data?: { result?: { value?: [number, string] }[] } }).data?.result?.[0]?.value?.[1];
    console.log(
      `  victoria-metrics ${heavy[0]![0]}: HTTP ${r.status} in ${r.ms.toFixed(0)} ms, RSS ${mib(before)} before, ${mib(vmPeak)} peak; ` +
        `answer ${value(r.body)} (strata ${value(issueAnswer)})`,
    );
  }
} finally {
  await vm?.stop();
  await c.stop();
}
