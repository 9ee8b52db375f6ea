// pnpm bench:alert [--series=4000] [--rules=1000] [--groupSize=20] [--interval=30] [--seconds=90] [--noVM] [--alertFlags=-a=1,-b=2]
//
// Loads node_exporter-like series shaped as the ingest benchmark's (services/insert/bench:
// 20 metric names, cpu/instance/job/region labels, 200 series per host, 15 s interval; here the
// last 10 minutes up to now, so rules see current data) into a Strata cluster, writes 1000 rules
// (recording rules, threshold alerts that fire, rate alerts that do not, absent() alerts) in
// groups of 20, then runs strata-alert and, one after the other in the same run, Debian's
// vmalert with the same rule file against the same select, each writing its results to its own
// tenant and notifying the same stub Alertmanager. Prints per evaluator: CPU seconds per minute
// of evaluation, p99 group duration (from /api/v1/rules: the sum of a group's rule evaluation
// times at each evaluation), peak and final RSS, alerts firing, rules with errors; then the
// ratios strata / vmalert. Requires `pnpm build` first.
import { createServer } from "node:http";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type TestSeries } from "../lib/cluster.js";
import { freePort, hasCommand, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "../lib/procs.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    return eq < 0 ? ([body, "true"] as const) : ([body.slice(0, eq), body.slice(eq + 1)] as const);
  }),
);
const SERIES = Number(args.get("series") ?? 4000);
const RULES = Number(args.get("rules") ?? 1000);
const GROUP_SIZE = Number(args.get("groupSize") ?? 20);
const INTERVAL_S = Number(args.get("interval") ?? 30);
const SECONDS = Number(args.get("seconds") ?? 90);
const WITH_VM = !args.has("noVM") && hasCommand("vmalert");
const SERIES_PER_HOST = 200;
const STEP = 15_000;
const POINTS = 41;

const NAMES = [
  "node_cpu_seconds_total", "node_memory_MemFree_bytes", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
  "node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_filesystem_avail_bytes", "node_load1",
  "node_context_switches_total", "node_intr_total", "node_netstat_Tcp_CurrEstab", "node_vmstat_pgfault",
  "node_disk_io_time_seconds_total", "node_filesystem_files_free", "node_memory_Cached_bytes", "node_procs_running",
  "node_sockstat_TCP_inuse", "node_timex_offset_seconds", "node_entropy_available_bits", "node_forks_total",
];

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

function seriesLabels(i: number): Record<string, string> {
  const host = Math.floor(i / SERIES_PER_HOST);
  const j = i % SERIES_PER_HOST;
  return { __name__: NAMES[j % NAMES.length]!, cpu: String(Math.floor(j / NAMES.length)), instance: `host-${host}.example.com:9100`, job: "node", region: `region-${host % 4}` };
}

async function load(insertUrl: string): Promise<void> {
  const t0 = performance.now();
  const rnd = mulberry32(42);
  const end = Math.floor(Date.now() / STEP) * STEP;
  const start = end - (POINTS - 1) * STEP;
  for (let s0 = 0; s0 < SERIES; s0 += 1000) {
    const batch: TestSeries[] = [];
    for (let i = s0; i < Math.min(SERIES, s0 + 1000); i++) {
      let v = Math.floor(rnd() * 1e6);
      const samples: [number, number][] = [];
      for (let p = 0; p < POINTS; p++) {
        if (i % 3 === 0) v += Math.floor(rnd() * 100);
        else if (i % 3 === 1) v = Math.round((v + (rnd() - 0.5) * 10) * 100) / 100;
        samples.push([start + p * STEP, v]);
      }
      batch.push({ labels: seriesLabels(i), samples });
    }
    const r = await remoteWrite(insertUrl, batch);
    if (r.status !== 204) throw new Error(`remote write: ${r.status} ${r.text}`);
  }
  console.log(`loaded ${SERIES} series x ${POINTS} points in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
}

function ruleFile(): string {
  let out = "groups:\n";
  for (let i = 0; i < RULES; i++) {
    if (i % GROUP_SIZE === 0) out += `  - name: bench-${i / GROUP_SIZE}\n    interval: ${INTERVAL_S}s\n    rules:\n`;
    const m = NAMES[i % NAMES.length]!;
    const region = `region-${i % 4}`;
    switch (i % 5) {
      case 0:
        out += `      - record: bench_r${i}:${m}:rate5m\n        expr: sum by (instance) (rate(${m}{region="${region}"}[5m]))\n`;
        break;
      case 1:
        out += `      - record: bench_r${i}:${m}:avg\n        expr: avg by (region, cpu) (${m})\n`;
        break;
      case 2:
        out += `      - alert: BenchHigh${i}\n        expr: ${m}{region="${region}",cpu="0"} > 900000\n        for: 30s\n        labels: {severity: warning}\n        annotations:\n          summary: '{{ $labels.instance }} {{ $labels.__name__ }} is {{ $value | humanize }}'\n`;
        break;
      case 3:
        out += `      - alert: BenchRate${i}\n        expr: rate(${m}{region="${region}"}[5m]) > 1000\n        for: 1m\n        annotations: {summary: 'rate {{ printf "%.2f" $value }}'}\n`;
        break;
      default:
        out += `      - alert: BenchAbsent${i}\n        expr: absent(${m}{region="nowhere-${i}"})\n        annotations: {summary: 'absent on {{ $labels.region }}'}\n`;
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
  rules: RuleJson[];
}

interface RulesAnswer {
  data: { groups: GroupJson[] };
}

/**
 * Wall time of a group's last evaluation (ms) and when it started, from its rules' lastEvaluation
 * (wall time each rule started, in both evaluators) and evaluationTime; undefined while an
 * evaluation is running (its rules' start times then span more than one interval).
 */
function groupDuration(g: GroupJson): { start: number; ms: number } | undefined {
  let start = Infinity;
  let end = 0;
  let lastStart = 0;
  for (const r of g.rules) {
    const t = Date.parse(r.lastEvaluation);
    start = Math.min(start, t);
    lastStart = Math.max(lastStart, t);
    end = Math.max(end, t + r.evaluationTime * 1000);
  }
  if (!Number.isFinite(start) || start < 0 || lastStart - start >= INTERVAL_S * 1000) return undefined;
  return { start, ms: end - start };
}

interface Result {
  readonly name: string;
  readonly cpuPerMin: number;
  readonly p99Ms: number;
  readonly p50Ms: number;
  readonly peakRss: number;
  readonly rss: number;
  readonly firing: number;
  readonly errors: number;
  readonly firstError: string;
  readonly evaluations: number;
}

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
  while (Date.now() - t0 < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 500));
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
  const elapsed = (Date.now() - t0) / 1000;
  const rules = last?.data.groups.flatMap((g) => g.rules) ?? [];
  return {
    name,
    cpuPerMin: (cpu / elapsed) * 60,
    p99Ms: quantile(durations, 0.99),
    p50Ms: quantile(durations, 0.5),
    peakRss: statusKb(pid, "VmHWM"),
    rss: statusKb(pid, "VmRSS"),
    firing: rules.reduce((n, r) => n + (r.alerts ?? []).filter((a) => a.state === "firing").length, 0),
    errors: rules.filter((r) => r.health !== "ok").length,
    firstError: rules.find((r) => r.health !== "ok")?.lastError ?? "",
    evaluations: durations.length,
  };
}

async function main(): Promise<void> {
  if (!clusterBuilt() || !existsSync(serviceMain("alert"))) throw new Error("run pnpm build first");
  console.log(`bench:alert: ${RULES} rules in groups of ${GROUP_SIZE} every ${INTERVAL_S}s over ${SERIES} series; ${SECONDS}s measured per evaluator; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
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
      const p = startProcess(process.execPath, [serviceMain("alert"), `-httpListenAddr=127.0.0.1:${port}`, ...common(1), ...extra]);
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
  console.log("\nevaluator       CPU s/min  p50 group  p99 group  peak RSS  RSS     firing  errors  evaluations");
  for (const r of results) {
    console.log(
      `${r.name.padEnd(15)} ${r.cpuPerMin.toFixed(2).padStart(9)}  ${r.p50Ms.toFixed(1).padStart(7)} ms ${r.p99Ms.toFixed(1).padStart(7)} ms  ${mb(r.peakRss).padStart(8)}  ${mb(r.rss).padStart(6)}  ${String(r.firing).padStart(6)}  ${String(r.errors).padStart(6)}  ${r.evaluations}`,
    );
  }
  for (const r of results) if (r.firstError !== "") console.log(`${r.name}: first rule error: ${r.firstError}`);
  if (results.length === 2) {
    const [s, v] = results as [Result, Result];
    console.log(`\nratios (strata / vmalert): CPU ${(s.cpuPerMin / v.cpuPerMin).toFixed(2)}x, p99 group duration ${(s.p99Ms / v.p99Ms).toFixed(2)}x, peak RSS ${(s.peakRss / v.peakRss).toFixed(2)}x, RSS ${(s.rss / v.rss).toFixed(2)}x (target: CPU and RSS at most 1.5x)`);
  } else console.log("\nvmalert comparison skipped (--noVM or vmalert not installed: apt-get install victoria-metrics)");
  console.log(`load after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}

await main();
