// pnpm bench:soak [-- --minutes=5] [--hosts=240] [--churn=2] [--warmup=N] [--refresh=10] [--range=30] [--sample=10] [--backfill=35] [--logDir=DIR] [--nodeArgs='--trace-gc …']
//
// Long-running proof that memory stays flat: a Strata cluster (2 storage + insert + select
// processes, RF=1) takes steady remote write ingest at real time for --minutes while a Grafana-like
// dashboard refreshes against select. Ingest: --hosts node_exporter-like hosts (~91 series each,
// test/bench/node-exporter-data.ts; 240 hosts ≈ 21.8k series), each scraped every 15 s at the
// current time, scrapes spread over the interval and sent once a second in bodies of ≤ 2000
// samples (Prometheus' max_samples_per_send); every minute --churn hosts are replaced by new ones
// (new instance label: new series, the old ones go stale). Before the clock starts, --backfill
// minutes of history (default --range + 5) are written so range queries read full ranges. Queries: every --refresh seconds the
// dashboard's panels go out at once (range queries over the last --range minutes at a 15 s step,
// an instant query, labels, label values, series). Every minute it prints per-process RSS, JS heap
// and external memory, ingested samples/s, errors and p50/p99 per query kind; at the end the
// RSS, heap and external slope after --warmup minutes (linear fit over samples every --sample
// seconds, as % of the fitted value at the end of warm-up over the rest of the run) per process,
// and the native rest (RSS − V8 heap committed − external: malloc'd memory of zlib, http2, …).
// Requires `pnpm build` first. --logDir keeps each service's output (pino logs, --trace-gc).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterBuilt, MALLOC_ENV, startCluster, type Cluster } from "../lib/cluster.js";
import type { Proc } from "../lib/procs.js";
import { BodyWriter, encodeLabels, hostSeries, mulberry32, stepValues, type SeriesDef } from "./node-exporter-data.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--?/, "").split("=");
    return [k!, v.length > 0 ? v.join("=") : "true"] as const;
  }),
);
const num = (name: string, def: number): number => {
  const v = Number(args.get(name) ?? def);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}=${args.get(name)}: want a non-negative number`);
  return v;
};
const MINUTES = num("minutes", 5);
const HOSTS = num("hosts", 240);
const CHURN = num("churn", 2);
const WARMUP = num("warmup", Math.min(5, Math.max(1, Math.round(MINUTES / 5))));
const REFRESH_S = num("refresh", 10);
const RANGE_MIN = num("range", 30);
const SAMPLE_S = num("sample", 10);
const LOG_DIR = args.get("logDir");
/** Node.js options for every service, space-separated (e.g. `--heapsnapshot-signal=SIGUSR2`). */
const NODE_ARGS = (args.get("nodeArgs") ?? "").split(" ").filter((a) => a !== "");
/** Minutes of history written before the clock starts, so range queries read full ranges from the first minute on. */
const BACKFILL_MIN = num("backfill", RANGE_MIN + 5);
const INTERVAL = 15_000;
const MAX_SAMPLES_PER_SEND = 2000;
if (WARMUP >= MINUTES) throw new Error(`--warmup=${WARMUP} must be shorter than --minutes=${MINUTES}`);

// ---- ingest -----------------------------------------------------------------------------------

interface Host {
  readonly id: number;
  readonly defs: SeriesDef[];
  readonly labels: Uint8Array[];
  readonly state: Float64Array;
  /** Second of the 15 s interval at which this host is scraped. */
  readonly slot: number;
}

const rnd = mulberry32(7);
let nextHostId = 0;
function newHost(): Host {
  const id = nextHostId++;
  const defs = hostSeries(id);
  return { id, defs, labels: defs.map((d) => encodeLabels(d.labels)), state: Float64Array.from(defs, (d) => d.base), slot: id % (INTERVAL / 1000) };
}

const hosts: Host[] = Array.from({ length: HOSTS }, newHost);
const seriesCount = hosts.reduce((s, h) => s + h.defs.length, 0);

interface Stats {
  samples: number;
  ingestErrors: number;
  ingestRequests: number;
  queryErrors: number;
  readonly latency: Map<string, number[]>;
}
const newStats = (): Stats => ({ samples: 0, ingestErrors: 0, ingestRequests: 0, queryErrors: 0, latency: new Map() });
let minute = newStats();
const total = newStats();
const errorExamples: string[] = [];
function noteError(what: string): void {
  if (errorExamples.length < 10) errorExamples.push(`${new Date().toISOString()} ${what}`);
}

async function send(url: string, body: Uint8Array, samples: number): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    minute.ingestRequests++;
    total.ingestRequests++;
    try {
      const r = await fetch(url, {
        method: "POST",
        body: body as Uint8Array<ArrayBuffer>,
        headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
        signal: AbortSignal.timeout(30_000),
      });
      const text = await r.text();
      if (r.status === 204 || r.status === 200) {
        minute.samples += samples;
        total.samples += samples;
        return;
      }
      noteError(`remote write: HTTP ${r.status}: ${text.slice(0, 200)}`);
      if (r.status < 500 && r.status !== 429) break;
    } catch (err) {
      noteError(`remote write: ${err instanceof Error ? err.message : String(err)}`);
    }
    minute.ingestErrors++;
    total.ingestErrors++;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

/** Scrapes the hosts whose slot is this second, at the current time, and sends them. */
function scrapeTick(url: string, second: number, pending: Set<Promise<void>>): void {
  const ts = Math.floor(Date.now() / 1000) * 1000;
  const w = new BodyWriter(MAX_SAMPLES_PER_SEND);
  let samples = 0;
  for (const h of hosts) {
    if (h.slot !== second % (INTERVAL / 1000)) continue;
    stepValues(h.defs, h.state, rnd, INTERVAL);
    for (let i = 0; i < h.defs.length; i++) w.add(h.labels[i]!, ts, h.state[i]!);
    samples += h.defs.length;
  }
  const bodies = w.finish();
  // Samples per body: MAX_SAMPLES_PER_SEND except the last.
  bodies.forEach((b, i) => {
    const n = i < bodies.length - 1 ? MAX_SAMPLES_PER_SEND : samples - MAX_SAMPLES_PER_SEND * (bodies.length - 1);
    const p = send(url, b, n).finally(() => pending.delete(p));
    pending.add(p);
  });
}

/** Writes BACKFILL_MIN minutes of every host's history up to now (10k samples per body, 2 at a time). */
async function backfill(url: string): Promise<void> {
  const points = Math.floor((BACKFILL_MIN * 60_000) / INTERVAL);
  const now = Math.floor(Date.now() / 1000) * 1000;
  const w = new BodyWriter(10_000);
  for (let p = points; p > 0; p--) {
    for (const h of hosts) {
      stepValues(h.defs, h.state, rnd, INTERVAL);
      const ts = now - p * INTERVAL - h.slot * 1000;
      for (let i = 0; i < h.defs.length; i++) w.add(h.labels[i]!, ts, h.state[i]!);
    }
  }
  const bodies = w.finish();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < bodies.length) await send(url, bodies[next++]!, 0);
  };
  await Promise.all([worker(), worker()]);
}

function churn(): void {
  for (let i = 0; i < CHURN; i++) hosts.splice(Math.floor(rnd() * hosts.length), 1, newHost());
}

// ---- queries ----------------------------------------------------------------------------------

const enc = encodeURIComponent;

/** One dashboard refresh: path per query kind (below the API root, with time parameters). */
function dashboard(now: number): [kind: string, path: string][] {
  const end = Math.floor(now / 1000);
  const start = end - RANGE_MIN * 60;
  const r = `&start=${start}&end=${end}&step=15`;
  const host = hosts[Math.floor(rnd() * hosts.length)]!;
  const instance = `host-${host.id}.example.com:9100`;
  return [
    ["rate", `/api/v1/query_range?query=${enc(`rate(node_network_receive_bytes_total{instance="${instance}"}[1m])`)}${r}`],
    ["sum_by", `/api/v1/query_range?query=${enc('sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))')}${r}`],
    ["histogram_quantile", `/api/v1/query_range?query=${enc("histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))")}${r}`],
    ["topk", `/api/v1/query_range?query=${enc("topk(5, rate(node_disk_written_bytes_total[1m]))")}${r}`],
    ["instant", `/api/v1/query?query=${enc("count by (job) (up)")}&time=${end}`],
    ["labels", `/api/v1/labels?start=${start}&end=${end}`],
    ["label_values", `/api/v1/label/instance/values?match[]=${enc('up{job="node"}')}&start=${start}&end=${end}`],
    ["series", `/api/v1/series?match[]=${enc(`node_uname_info{instance="${instance}"}`)}&start=${start}&end=${end}`],
  ];
}
const KINDS = dashboard(Date.now()).map(([k]) => k);

async function query(api: string, kind: string, path: string): Promise<void> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${api}${path}`, { signal: AbortSignal.timeout(60_000) });
    const text = await r.text();
    const ms = performance.now() - t0;
    if (r.status !== 200) {
      minute.queryErrors++;
      total.queryErrors++;
      noteError(`${kind}: HTTP ${r.status}: ${text.slice(0, 200)}`);
      return;
    }
    for (const s of [minute, total]) {
      let xs = s.latency.get(kind);
      if (xs === undefined) s.latency.set(kind, (xs = []));
      xs.push(ms);
    }
  } catch (err) {
    minute.queryErrors++;
    total.queryErrors++;
    noteError(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

// ---- memory -----------------------------------------------------------------------------------

interface Watched {
  readonly name: string;
  readonly metricsUrl: string;
  readonly proc: Proc;
  /** Seconds since start, RSS, heap used, external (incl. ArrayBuffers) in bytes. */
  readonly t: number[];
  readonly rss: number[];
  readonly heap: number[];
  readonly ext: number[];
  /** RSS − V8 heap committed − external: native memory outside both (malloc, code, stacks). */
  readonly rest: number[];
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** The gauges of a /metrics text that size something held (bytes, entries, items, parts, rows). */
async function sizeGauges(url: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  for (const line of text.split("\n")) {
    const m = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m === null || /_(total|bucket|sum|count|seconds|max_bytes|cap_bytes|max_rows)\b/.test(m[1]!)) continue;
    if (/(bytes|entries|items|parts|rows|series|bitmaps)(\{|$)/.test(m[1]!)) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Gauges that grew between two sizeGauges snapshots by > 10% and > 1 MiB (bytes) or > 100 (counts). */
function grown(before: Map<string, number>, after: Map<string, number>): string[] {
  const out: string[] = [];
  for (const [k, v1] of after) {
    const v0 = before.get(k) ?? 0;
    const isBytes = k.includes("bytes");
    if (v1 - v0 > (isBytes ? 2 ** 20 : 100) && v1 > v0 * 1.1) out.push(`${k} ${isBytes ? `${mib(v0)} → ${mib(v1)} MiB` : `${v0} → ${v1}`}`);
  }
  return out;
}

async function sampleMemory(w: Watched, t: number): Promise<void> {
  try {
    const text = await (await fetch(w.metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
    w.t.push(t);
    w.rss.push(metricValue(text, "process_resident_memory_bytes"));
    w.heap.push(metricValue(text, "nodejs_heap_size_used_bytes"));
    w.ext.push(metricValue(text, "nodejs_external_memory_bytes"));
    w.rest.push(w.rss.at(-1)! - metricValue(text, "nodejs_heap_size_total_bytes") - w.ext.at(-1)!);
  } catch (err) {
    noteError(`${w.name} /metrics: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Least-squares line through (xs, ys): growth over [x0, last x] as % of the fitted value at x0. */
function slopePercent(xs: readonly number[], ys: readonly number[], x0: number): { pct: number; from: number; to: number } {
  const idx = xs.map((x, i) => [x, i] as const).filter(([x, i]) => x >= x0 && Number.isFinite(ys[i]!));
  const n = idx.length;
  if (n < 2) return { pct: NaN, from: NaN, to: NaN };
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const [x, i] of idx) {
    const y = ys[i]!;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const a = (sy - b * sx) / n;
  const x1 = idx[n - 1]![0];
  const from = a + b * x0;
  const to = a + b * x1;
  return { pct: ((to - from) / from) * 100, from, to };
}

// ---- reporting --------------------------------------------------------------------------------

const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}
function loadAvg(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}
function latencyLine(s: Stats): string {
  return KINDS.map((k) => {
    const xs = s.latency.get(k) ?? [];
    return `${k} ${pct(xs, 50).toFixed(0)}/${pct(xs, 99).toFixed(0)}`;
  }).join(", ");
}

function printMinute(m: number, watched: readonly Watched[], seconds: number): void {
  const mem = watched
    .map((w) => {
      const i = w.rss.length - 1;
      return `${w.name} rss ${mib(w.rss[i]!)} heap ${mib(w.heap[i]!)} ext ${mib(w.ext[i]!)} rest ${mib(w.rest[i]!)}`;
    })
    .join(" | ");
  console.log(
    `[${String(m).padStart(3)} min] ${Math.round(minute.samples / seconds).toLocaleString("en-US")} samples/s, ${hosts.reduce((s, h) => s + h.defs.length, 0)} live series, ` +
      `errors ingest ${minute.ingestErrors}/${minute.ingestRequests} query ${minute.queryErrors}; load ${loadAvg()}\n` +
      `          MiB: ${mem}\n          ms p50/p99: ${latencyLine(minute)}`,
  );
}

// ---- main -------------------------------------------------------------------------------------

if (!clusterBuilt()) throw new Error("services are not built: run `pnpm build` first");
console.log(
  `soak: ${MINUTES} min (warm-up ${WARMUP} min), ${HOSTS} hosts = ${seriesCount} series at 15 s (${Math.round(seriesCount / 15)} samples/s), churn ${CHURN} hosts/min, ` +
    `dashboard of ${KINDS.length} queries every ${REFRESH_S} s over the last ${RANGE_MIN} min; node ${process.version}; load ${loadAvg()}; ` +
    `services' malloc env: ${Object.keys(MALLOC_ENV).map((k) => `${k}=${process.env[k] ?? MALLOC_ENV[k]}`).join(" ")}`,
);
const c: Cluster = await startCluster({ storageNodes: 2, replicationFactor: 1, nodeArgs: { storage: NODE_ARGS, insert: NODE_ARGS, select: NODE_ARGS } });
const watched: Watched[] = [
  ...c.storage.map((s) => ({ name: s.name, metricsUrl: `http://${s.httpAddr}/metrics`, proc: s.proc })),
  { name: "insert", metricsUrl: `${c.insertUrl}/metrics`, proc: c.insert },
  { name: "select", metricsUrl: `${c.selectUrl}/metrics`, proc: c.select },
].map((w) => ({ ...w, t: [], rss: [], heap: [], ext: [], rest: [] }));
const writeUrl = `${c.insertUrl}/insert/0/prometheus/api/v1/write`;
const api = `${c.selectUrl}/select/0/prometheus`;
const pending = new Set<Promise<void>>();
const gaugesAtWarmup: Map<string, number>[] = [];
if (BACKFILL_MIN > 0) {
  const b0 = Date.now();
  await backfill(writeUrl);
  console.log(`backfilled ${BACKFILL_MIN} min of history in ${((Date.now() - b0) / 1000).toFixed(0)} s, ingest errors ${total.ingestErrors}`);
  total.ingestErrors = total.ingestRequests = 0;
}
minute = newStats();
const t0 = Date.now();
const timers: NodeJS.Timeout[] = [];
try {
  let second = 0;
  let minuteStart = t0;
  await Promise.all(watched.map((w) => sampleMemory(w, 0)));
  await new Promise<void>((resolve) => {
    timers.push(
      setInterval(() => scrapeTick(writeUrl, second++, pending), 1000),
      setInterval(() => {
        for (const [kind, path] of dashboard(Date.now())) {
          const p = query(api, kind, path).finally(() => pending.delete(p));
          pending.add(p);
        }
      }, REFRESH_S * 1000),
      setInterval(() => void Promise.all(watched.map((w) => sampleMemory(w, (Date.now() - t0) / 1000))), SAMPLE_S * 1000),
      setInterval(() => {
        const now = Date.now();
        const m = Math.round((now - t0) / 60_000);
        printMinute(m, watched, (now - minuteStart) / 1000);
        minute = newStats();
        minuteStart = now;
        for (const w of watched) if (w.proc.child.exitCode !== null || w.proc.child.signalCode !== null) noteError(`${w.name} exited`);
        if (m === WARMUP) void Promise.all(watched.map(async (w, i) => (gaugesAtWarmup[i] = await sizeGauges(w.metricsUrl))));
        if (m >= MINUTES) resolve();
        else churn();
      }, 60_000),
    );
  });
  for (const t of timers) clearInterval(t);
  await Promise.all(pending);
  const runS = (Date.now() - t0) / 1000;
  console.log(
    `\ntotal: ${(runS / 60).toFixed(1)} min, ${total.samples.toLocaleString("en-US")} samples (${Math.round(total.samples / runS).toLocaleString("en-US")}/s), ` +
      `${nextHostId - HOSTS} hosts churned; errors: ingest ${total.ingestErrors} of ${total.ingestRequests} requests, queries ${total.queryErrors}`,
  );
  console.log(`query ms p50/p99 over the run: ${latencyLine(total)}`);
  if (errorExamples.length > 0) console.log(`first errors:\n  ${errorExamples.join("\n  ")}`);
  console.log(`\nmemory slope after ${WARMUP} min warm-up (linear fit, samples every ${SAMPLE_S} s; target RSS within ±10%):`);
  console.log("| process | RSS at warm-up → end (fit) | RSS slope | heap used (fit) | heap slope | external (fit) | external slope | native rest (fit) | rest slope |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  let flat = true;
  for (const w of watched) {
    const [r, h, e, n] = [w.rss, w.heap, w.ext, w.rest].map((ys) => slopePercent(w.t, ys, WARMUP * 60));
    if (!(Math.abs(r!.pct) <= 10)) flat = false;
    const cell = (s: { pct: number; from: number; to: number }): string => `${mib(s.from)} → ${mib(s.to)} MiB | ${s.pct >= 0 ? "+" : ""}${s.pct.toFixed(1)}%`;
    console.log(`| ${w.name} | ${cell(r!)} | ${cell(h!)} | ${cell(e!)} | ${cell(n!)} |`);
  }
  console.log(`\nsize gauges that grew after warm-up (> 10% and > 1 MiB or > 100):`);
  for (const [i, w] of watched.entries()) {
    const g = grown(gaugesAtWarmup[i] ?? new Map(), await sizeGauges(w.metricsUrl));
    console.log(`  ${w.name}: ${g.length === 0 ? "none" : g.join(", ")}`);
  }
  console.log(flat ? "RSS flat within ±10% on every process" : "RSS NOT flat within ±10% on every process");
  console.log(`load ${loadAvg()}`);
} finally {
  for (const t of timers) clearInterval(t);
  if (LOG_DIR !== undefined) {
    mkdirSync(LOG_DIR, { recursive: true });
    for (const w of watched) writeFileSync(join(LOG_DIR, `${w.name}.log`), w.proc.output());
  }
  await c.stop();
}
