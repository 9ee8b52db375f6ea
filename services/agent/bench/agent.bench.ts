// pnpm bench:agent [--targets=1000] [--series=500] [--interval=10s] [--duration=60] [--noVM] [--cpuProf=DIR] [--agentFlags=-a=1,-b=2] [--nodeArgs=--a,--b] [--nodeDefaults]
//
// A local exporter process serves --targets node_exporter-like targets of --series series each
// on loopback; strata-agent and Debian's vmagent scrape all of them at --interval with the same
// scrape config, at the same time, each writing to its own null receiver. After one interval of
// warm-up, for --duration seconds: CPU seconds per million scraped samples, peak RSS, p99 of the
// targets' last scrape durations (sampled every interval from /api/v1/targets) and the largest
// queue size seen; then the ratios agent / vmagent. Requires `pnpm build` first. The agent runs
// as systemd/strata-agent.service runs it (node --max-semi-space-size=1, MALLOC_ARENA_MAX=2,
// MALLOC_MMAP_THRESHOLD_=131072; --nodeArgs replaces the node flags); --nodeDefaults runs plain node.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const s = a.replace(/^--?/, "");
    const eq = s.indexOf("=");
    return eq < 0 ? ([s, "true"] as const) : ([s.slice(0, eq), s.slice(eq + 1)] as const);
  }),
);
const TARGETS = Number(args.get("targets") ?? 1000);
const SERIES = Number(args.get("series") ?? 500);
const INTERVAL = args.get("interval") ?? "10s";
const INTERVAL_S = Number(INTERVAL.replace(/s$/, ""));
const DURATION_S = Number(args.get("duration") ?? 60);
const WITH_VM = !args.has("noVM");
const root = resolve(import.meta.dirname, "..", "..", "..");
const agentMain = join(root, "services", "agent", "dist", "main.js");
if (!existsSync(agentMain)) throw new Error("services/agent is not built: run pnpm build first");
if (WITH_VM && !existsSync("/usr/bin/vmagent")) throw new Error("vmagent not found: apt-get install victoria-metrics (or pass --noVM)");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freePort = (): Promise<number> =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => res(typeof a === "object" && a ? a.port : 0));
    });
  });

const children: ChildProcess[] = [];
function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; ready: Promise<void>; output: () => string } {
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], env });
  children.push(child);
  let out = "";
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
      if (out.includes("ready")) res();
    });
    child.stderr!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
    });
    child.on("exit", (code) => rej(new Error(`${cmd} exited (${code}):\n${out.slice(-2000)}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, output: () => out };
}
const stopAll = async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  for (let i = 0; i < 100 && children.some((c) => c.exitCode === null && c.signalCode === null); i++) await sleep(100);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
};
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime + stime, clock ticks (100/s)
}
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}
async function healthy(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not yet
    }
    await sleep(100);
  }
  throw new Error(`${url} not healthy`);
}
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const l of text.split("\n")) if (l.startsWith(name) && (l[name.length] === " " || l[name.length] === "{")) sum += Number(l.slice(l.lastIndexOf(" ") + 1));
  return sum;
}
async function scrapeDurations(url: string): Promise<number[]> {
  const j = (await (await fetch(`${url}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: { lastScrapeDuration: number; health: string }[] } };
  return j.data.activeTargets.filter((t) => t.health === "up").map((t) => t.lastScrapeDuration);
}
const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
};

interface Scraper {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly samplesMetric: string;
  readonly queueMetric: string;
  durations: number[];
  maxQueue: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "strata-bench-agent-"));
  // Below the ephemeral range (32768+), so the free ports picked for the scrapers cannot collide;
  // another base when some port of the range is taken.
  let base = 0;
  for (let attempt = 0; ; attempt++) {
    base = 10_000 + Math.floor(Math.random() * (22_000 - TARGETS));
    const exporter = start(process.execPath, [join(import.meta.dirname, "exporter.mjs"), String(TARGETS), String(SERIES), String(base)]);
    try {
      await exporter.ready;
      break;
    } catch (err) {
      if (attempt >= 4 || !String(err).includes("EADDRINUSE")) throw err;
    }
  }
  console.log(`bench:agent: ${TARGETS} targets × ${SERIES} series, scrape_interval ${INTERVAL}, ${DURATION_S}s measured after ${INTERVAL_S}s warm-up; load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const targets = Array.from({ length: TARGETS }, (_, i) => `"127.0.0.1:${base + i}"`).join(", ");
  const cfg = join(dir, "scrape.yml");
  writeFileSync(cfg, `global:\n  scrape_interval: ${INTERVAL}\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [${targets}]\n`);

  const scrapers: Scraper[] = [];
  const receivers: string[] = [];
  const agentPort = await freePort();
  const rcvA = await freePort();
  const ra = start(process.execPath, [join(import.meta.dirname, "null-receiver.mjs"), String(rcvA)]);
  await ra.ready;
  receivers.push(`http://127.0.0.1:${rcvA}`);
  const cpuProf = args.get("cpuProf");
  const nodeDefaults = args.has("nodeDefaults");
  const nodeArgs = nodeDefaults ? [] : (args.get("nodeArgs") ?? "--max-semi-space-size=1").split(",").filter((a) => a !== "");
  const agentEnv = nodeDefaults ? process.env : { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072", ...process.env };
  console.log(`strata-agent runs as: ${nodeDefaults ? "" : "MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 "}node ${nodeArgs.join(" ")}`.trimEnd());
  const agent = start(process.execPath, [
    ...nodeArgs,
    ...(cpuProf !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${cpuProf}`] : []),
    agentMain,
    `-httpListenAddr=127.0.0.1:${agentPort}`,
    `-promscrape.config=${cfg}`,
    `-remoteWrite.url=http://127.0.0.1:${rcvA}/api/v1/write`,
    `-remoteWrite.tmpDataPath=${join(dir, "agent-queue")}`,
    "-loggerLevel=WARN",
    ...(args.get("agentFlags")?.split(",") ?? []),
  ], agentEnv);
  await healthy(`http://127.0.0.1:${agentPort}/health`);
  scrapers.push({ name: "strata-agent", url: `http://127.0.0.1:${agentPort}`, pid: agent.child.pid!, samplesMetric: "strata_agent_scraped_samples_total", queueMetric: "strata_agent_remotewrite_pending_bytes", durations: [], maxQueue: 0 });
  if (WITH_VM) {
    const vmPort = await freePort();
    const rcvV = await freePort();
    const rv = start(process.execPath, [join(import.meta.dirname, "null-receiver.mjs"), String(rcvV)]);
    await rv.ready;
    receivers.push(`http://127.0.0.1:${rcvV}`);
    const vm = start("/usr/bin/vmagent", [
      `-httpListenAddr=127.0.0.1:${vmPort}`,
      `-promscrape.config=${cfg}`,
      `-remoteWrite.url=http://127.0.0.1:${rcvV}/api/v1/write`,
      `-remoteWrite.tmpDataPath=${join(dir, "vmagent-queue")}`,
      "-loggerLevel=ERROR",
    ]);
    await healthy(`http://127.0.0.1:${vmPort}/health`);
    scrapers.push({ name: "vmagent", url: `http://127.0.0.1:${vmPort}`, pid: vm.child.pid!, samplesMetric: "vm_promscrape_scraped_samples_sum", queueMetric: "vmagent_remotewrite_pending_data_bytes", durations: [], maxQueue: 0 });
  }
  await sleep(INTERVAL_S * 1000 + 2000);
  const start0 = await Promise.all(scrapers.map(async (s) => ({ cpu: cpuSeconds(s.pid), samples: await metric(`${s.url}/metrics`, s.samplesMetric) })));
  const t0 = Date.now();
  while (Date.now() - t0 < DURATION_S * 1000) {
    await sleep(Math.min(INTERVAL_S * 1000, 5000));
    for (const s of scrapers) {
      s.durations.push(...(await scrapeDurations(s.url)));
      s.maxQueue = Math.max(s.maxQueue, await metric(`${s.url}/metrics`, s.queueMetric));
    }
  }
  const rows = await Promise.all(
    scrapers.map(async (s, i) => {
      const cpu = cpuSeconds(s.pid) - start0[i]!.cpu;
      const samples = (await metric(`${s.url}/metrics`, s.samplesMetric)) - start0[i]!.samples;
      return { name: s.name, samples, cpuPerM: cpu / (samples / 1e6), rss: peakRssMiB(s.pid), p99: p99(s.durations), queue: s.maxQueue };
    }),
  );
  const a0 = scrapers[0]!;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const heap = await metric(`${a0.url}/metrics`, "nodejs_heap_size_used_bytes");
  const heapTotal = await metric(`${a0.url}/metrics`, "nodejs_heap_size_total_bytes");
  const ext = await metric(`${a0.url}/metrics`, "nodejs_external_memory_bytes");
  const arrayBuffers = await metric(`${a0.url}/metrics`, "nodejs_array_buffers_bytes");
  const status = readFileSync(`/proc/${a0.pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  console.log(
    `strata-agent at the end: heap used ${mib(heap)} of ${mib(heapTotal)}, external ${mib(ext)} (array buffers ${mib(arrayBuffers)}); RSS ${mib(kb("VmRSS"))} = anon ${mib(kb("RssAnon"))} + file ${mib(kb("RssFile"))}`,
  );
  console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  console.log("scraper        samples     CPU s/M samples   peak RSS MiB   scrape p99 s   max queue bytes");
  for (const r of rows) {
    console.log(`${r.name.padEnd(14)} ${String(r.samples).padStart(9)}   ${r.cpuPerM.toFixed(3).padStart(15)}   ${r.rss.toFixed(1).padStart(12)}   ${r.p99.toFixed(4).padStart(12)}   ${String(r.queue).padStart(15)}`);
  }
  if (rows.length === 2) {
    const [a, v] = rows as [(typeof rows)[0], (typeof rows)[0]];
    console.log(`ratios agent/vmagent: CPU per sample ${(a.cpuPerM / v.cpuPerM).toFixed(2)}×, peak RSS ${(a.rss / v.rss).toFixed(2)}×, scrape p99 ${(a.p99 / v.p99).toFixed(2)}× (target: CPU and RSS ≤ 2×)`);
  }
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
