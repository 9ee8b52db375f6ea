// pnpm bench:alert [--hosts=40] [--rules=1000] [--groupSize=20] [--interval=30] [--seconds=90] [--noVM] [--alertFlags=-a=1,-b=2] [--nodeArgs=--a,--b] [--nodeDefaults]
//
// Loads the query benchmark's node_exporter-like dataset (test/bench/node-exporter-data.ts, ~100
// series per host; here the last 10 minutes up to now, so rules see current data) into a Strata
// cluster, writes 1000 rules (recording rules, alerts that fire, alerts that do not, absent()
// alerts) in groups of 20, then runs strata-alert and, one after the other in the same run,
// Debian's vmalert with the same rule file against the same select, each writing its results to
// its own tenant and notifying the same stub Alertmanager. Prints per evaluator: CPU seconds per
// minute of evaluation, p50/p99 group duration (see groupDuration), peak and final RSS, alerts
// firing, rules with errors; then the ratios strata / vmalert. strata-alert runs as its systemd
// unit runs it (--max-semi-space-size=1, MALLOC_ARENA_MAX=2; --nodeArgs replaces the node flags);
// --nodeDefaults runs plain node.
// Requires `pnpm build` first.
import { createServer } from "node:http";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { clusterBuilt, forceFlush, MALLOC_ENV, startCluster } from "../lib/cluster.js";
import { freePort, hasCommand, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "../lib/procs.js";
import { generateDataset } from "./node-exporter-data.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    return eq < 0 ? ([body, "true"] as const) : ([body.slice(0, eq), body.slice(eq + 1)] as const);
  }),
);
const HOSTS = Number(args.get("hosts") ?? 40);
const RULES = Number(args.get("rules") ?? 1000);
const GROUP_SIZE = Number(args.get("groupSize") ?? 20);
const INTERVAL_S = Number(args.get("interval") ?? 30);
const SECONDS = Number(args.get("seconds") ?? 90);
const WITH_VM = !args.has("noVM") && hasCommand("vmalert");
const STEP = 15_000;

/**
 * The query benchmark's node_exporter-like dataset from 10 minutes ago to well past the end of
 * the run, so both evaluators (one after the other) see the same amount of current data.
 */
async function load(insertUrl: string): Promise<number> {
  const t0 = performance.now();
  const start = Math.floor(Date.now() / STEP) * STEP - 600_000;
  const POINTS = Math.ceil((600_000 + 2 * (3 * INTERVAL_S + SECONDS + 120) * 1000) / STEP);
  const data = generateDataset({ hosts: HOSTS, start, points: POINTS, intervalMs: STEP, samplesPerBody: 10_000 });
  for (const body of data.bodies) {
    const r = await fetch(`${insertUrl}/insert/0/prometheus/api/v1/write`, { method: "POST", headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" }, body: Buffer.from(body) });
    if (r.status !== 204) throw new Error(`remote write: ${r.status} ${await r.text()}`);
  }
  console.log(`loaded ${HOSTS} hosts, ${data.series} series x ${POINTS} points (15 s, from 10 minutes ago) in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  return data.series;
}

function ruleFile(): string {
  let out = "groups:\n";
  for (let i = 0; i < RULES; i++) {
    if (i % GROUP_SIZE === 0) out += `  - name: bench-${i / GROUP_SIZE}\n    interval: ${INTERVAL_S}s\n    rules:\n`;
    const hosts = `instance=~"host-${i % 10}[.0-9].*"`;
    switch (i % 5) {
      case 0:
        out += `      - record: bench_r${i}:cpu_busy:rate5m\n        expr: sum by (instance) (rate(node_cpu_seconds_total{mode!="idle",${hosts}}[5m]))\n`;
        break;
      case 1:
        out += `      - record: bench_r${i}:memory_used:ratio\n        expr: 1 - node_memory_MemAvailable_bytes{${hosts}} / on(instance, job) node_memory_MemTotal_bytes\n`;
        break;
      case 2:
        out += `      - alert: BenchUp${i}\n        expr: up{${hosts}} == 1\n        for: 30s\n        labels: {severity: info}\n        annotations:\n          summary: '{{ $labels.instance }} of {{ $labels.job }} is up ({{ $value | humanize }})'\n`;
        break;
      case 3:
        out += `      - alert: BenchDiskBusy${i}\n        expr: rate(node_disk_io_time_seconds_total{${hosts}}[5m]) > 1e9\n        for: 1m\n        annotations: {summary: 'disk busy {{ printf "%.2f" $value }}'}\n`;
        break;
      default:
        out += `      - alert: BenchAbsent${i}\n        expr: absent(node_uname_info{nodename="nowhere-${i}"})\n        annotations: {summary: 'absent {{ $labels.nodename }}'}\n`;
    }
  }
  return out;
}

const TICKS = 100;
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
function statusKb(pid: number, key: string): number {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

interface RuleJson {
  evaluationTime: number;
  lastEvaluation: string;
  health: string;
  lastError?: string;
  alerts?: { state: string }[];
}

interface GroupJson {
  name: string;
  lastEvaluation?: string;
  evaluationTime?: number;
  rules: RuleJson[];
}

interface RulesAnswer {
  data: { groups: GroupJson[] };
}

/**
 * Strata's groups report each evaluation's wall time (evaluationTime, with lastEvaluation the
 * start, both set when it ends), sampled here at every new lastEvaluation. vmalert's API has no
 * group duration (and its rules' times do not tell a finished evaluation from a running one), so
 * its figures are its own vmalert_iteration_duration_seconds summaries: the median over groups
 * of their 0.5 quantile, and the largest 0.99 quantile.
 */
function groupDuration(g: GroupJson): { start: number; ms: number } | undefined {
  if (g.evaluationTime === undefined || g.lastEvaluation === undefined) return undefined;
  const start = Date.parse(g.lastEvaluation);
  return start > 0 ? { start, ms: g.evaluationTime * 1000 } : undefined;
}

async function vmalertQuantiles(url: string): Promise<{ p50: number; p99: number; groups: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const q = (quantile: string): number[] =>
    [...text.matchAll(new RegExp(`^vmalert_iteration_duration_seconds\\{[^}]*quantile="${quantile}"\\} (\\S+)$`, "gm"))].map((m) => Number(m[1]) * 1000).filter((v) => Number.isFinite(v));
  const p50s = q("0.5");
  return { p50: quantile(p50s, 0.5), p99: Math.max(...q("0.99")), groups: p50s.length };
}

interface Result {
  readonly name: string;
  readonly cpuPerMin: number;
  readonly p99Ms: number;
  readonly p50Ms: number;
  readonly peakRss: number;
  readonly rss: number;
  /** RSS without file-backed pages (the executable and libraries, shared and reclaimable). */
  readonly anonRss: number;
  readonly firing: number;
  readonly errors: number;
  readonly firstError: string;
  readonly evaluations: number;
  /** strata-alert only: the largest V8 heap used and committed seen in its /metrics, and the brk heap (malloc) at the end. */
  readonly heap?: { readonly usedMax: number; readonly totalMax: number; readonly externalMax: number; readonly brk: number };
}

/** Sums the sizes (kB) of the mappings in /proc/<pid>/smaps named `name` (e.g. [heap]: glibc's brk arena). */
function smapsKb(pid: number, name: string): number {
  let total = 0;
  let inside = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inside = line.trimEnd().endsWith(name);
    else if (inside && line.startsWith("Rss:")) total += Number(/(\d+)/.exec(line)![1]);
  }
  return total * 1024;
}

const metricValue = (text: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function measure(name: string, proc: Proc, url: string): Promise<Result> {
  await waitHealthy(`${url}/health`, proc, 30_000);
  // Warm up: two intervals (JIT, connections, first evaluations of every group).
  await new Promise((r) => setTimeout(r, 2 * INTERVAL_S * 1000 + 2000));
  const pid = proc.child.pid!;
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  const durations: number[] = [];
  const seen = new Map<string, number>();
  let last: RulesAnswer | undefined;
  const heap = { usedMax: 0, totalMax: 0, externalMax: 0 };
  for (let i = 0; Date.now() - t0 < SECONDS * 1000; i++) {
    await new Promise((r) => setTimeout(r, 500));
    if (name !== "vmalert" && i % 4 === 0) {
      const text = await (await fetch(`${url}/metrics`)).text();
      heap.usedMax = Math.max(heap.usedMax, metricValue(text, "nodejs_heap_size_used_bytes"));
      heap.totalMax = Math.max(heap.totalMax, metricValue(text, "nodejs_heap_size_total_bytes"));
      heap.externalMax = Math.max(heap.externalMax, metricValue(text, "nodejs_external_memory_bytes"));
    }
    last = (await (await fetch(`${url}/api/v1/rules`)).json()) as RulesAnswer;
    for (const g of last.data.groups) {
      const d = groupDuration(g);
      // Only evaluations that started after the measurement did (and each once).
      if (d === undefined || d.start < t0 || (seen.get(g.name) ?? 0) >= d.start) continue;
      seen.set(g.name, d.start);
      durations.push(d.ms);
    }
  }
  const cpu = cpuSeconds(pid) - cpu0;
  const vm = name === "vmalert" ? await vmalertQuantiles(url) : undefined;
  const elapsed = (Date.now() - t0) / 1000;
  const rules = last?.data.groups.flatMap((g) => g.rules) ?? [];
  return {
    name,
    cpuPerMin: (cpu / elapsed) * 60,
    p99Ms: vm?.p99 ?? quantile(durations, 0.99),
    p50Ms: vm?.p50 ?? quantile(durations, 0.5),
    peakRss: statusKb(pid, "VmHWM"),
    rss: statusKb(pid, "VmRSS"),
    anonRss: statusKb(pid, "RssAnon"),
    firing: rules.reduce((n, r) => n + (r.alerts ?? []).filter((a) => a.state === "firing").length, 0),
    errors: rules.filter((r) => r.health !== "ok").length,
    firstError: rules.find((r) => r.health !== "ok")?.lastError ?? "",
    evaluations: vm?.groups ?? durations.length,
    ...(name === "vmalert" ? {} : { heap: { ...heap, brk: smapsKb(pid, "[heap]") } }),
  };
}

async function main(): Promise<void> {
  if (!clusterBuilt() || !existsSync(serviceMain("alert"))) throw new Error("run pnpm build first");
  console.log(`bench:alert: ${RULES} rules in groups of ${GROUP_SIZE} every ${INTERVAL_S}s over ${HOSTS} node_exporter hosts; ${SECONDS}s measured per evaluator; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const dir = tempDir("bench-alert");
  const c = await startCluster({ storageNodes: 2 });
  const am = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200).end());
  });
  const amPort = await freePort();
  await new Promise<void>((r) => am.listen(amPort, "127.0.0.1", r));
  const results: Result[] = [];
  try {
    await load(c.insertUrl);
    await forceFlush(c);
    const rulesPath = join(dir.path, "rules.yml");
    writeFileSync(rulesPath, ruleFile());
    const common = (tenant: number) => [
      `-rule=${rulesPath}`,
      `-datasource.url=${c.selectUrl}/select/0/prometheus`,
      `-remoteWrite.url=${c.insertUrl}/insert/${tenant}/prometheus`,
      `-notifier.url=http://127.0.0.1:${amPort}`,
      `-evaluationInterval=${INTERVAL_S}s`,
      "-loggerLevel=ERROR",
    ];
    {
      const port = await freePort();
      const extra = (args.get("alertFlags") ?? "").split(",").filter((f) => f !== "");
      // As systemd/strata-alert.service runs it: its node flag and malloc environment.
      const nodeArgs = args.has("nodeDefaults") ? [] : (args.get("nodeArgs") ?? "--max-semi-space-size=1").split(",").filter((a) => a !== "");
      const env = args.has("nodeDefaults") ? process.env : { ...MALLOC_ENV, ...process.env };
      const p = startProcess(process.execPath, [...nodeArgs, serviceMain("alert"), `-httpListenAddr=127.0.0.1:${port}`, ...common(1), ...extra], env);
      try {
        results.push(await measure("strata-alert", p, `http://127.0.0.1:${port}`));
      } finally {
        await p.stop();
      }
    }
    if (WITH_VM) {
      const port = await freePort();
      const p = startProcess("vmalert", [`-httpListenAddr=127.0.0.1:${port}`, ...common(2)]);
      try {
        results.push(await measure("vmalert", p, `http://127.0.0.1:${port}`));
      } finally {
        await p.stop();
      }
    }
  } finally {
    am.close();
    await c.stop();
    dir.remove();
  }
  const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;
  console.log("\nevaluator       CPU s/min  p50 group  p99 group  peak RSS  RSS     anon RSS  firing  errors  evaluations (vmalert: groups in its summaries)");
  for (const r of results) {
    console.log(
      `${r.name.padEnd(15)} ${r.cpuPerMin.toFixed(2).padStart(9)}  ${r.p50Ms.toFixed(1).padStart(7)} ms ${r.p99Ms.toFixed(1).padStart(7)} ms  ${mb(r.peakRss).padStart(8)}  ${mb(r.rss).padStart(6)}  ${mb(r.anonRss).padStart(8)}  ${String(r.firing).padStart(6)}  ${String(r.errors).padStart(6)}  ${r.evaluations}`,
    );
  }
  for (const r of results) if (r.firstError !== "") console.log(`${r.name}: first rule error: ${r.firstError}`);
  for (const r of results) {
    if (r.heap !== undefined) console.log(`${r.name} memory: V8 heap used max ${mb(r.heap.usedMax)}, committed max ${mb(r.heap.totalMax)}, external max ${mb(r.heap.externalMax)}; malloc brk heap at end ${mb(r.heap.brk)}`);
  }
  if (results.length === 2) {
    const [s, v] = results as [Result, Result];
    console.log(`\nratios (strata / vmalert): CPU ${(s.cpuPerMin / v.cpuPerMin).toFixed(2)}x, p99 group duration ${(s.p99Ms / v.p99Ms).toFixed(2)}x, peak RSS ${(s.peakRss / v.peakRss).toFixed(2)}x, RSS ${(s.rss / v.rss).toFixed(2)}x, anon RSS ${(s.anonRss / v.anonRss).toFixed(2)}x (target: CPU and RSS at most 1.5x)`);
  } else console.log("\nvmalert comparison skipped (--noVM or vmalert not installed: apt-get install victoria-metrics)");
  console.log(`load after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}

await main();
