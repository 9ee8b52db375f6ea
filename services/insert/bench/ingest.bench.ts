// pnpm bench:ingest [--series=100000] [--points=360] [--perRequest=10000] [--concurrency=4] [--replicationFactor=1] [--noVM] [--tls] [--storageFlags="-flag=v …"]
//
// Pre-generates Prometheus remote write 1.0 bodies for a node_exporter-like workload (series ×
// points at a 15 s interval, ~perRequest samples per request), then replays them at full speed
// with bounded concurrency into (a) strata-insert + 2 strata-storage processes (RF=1, or
// --replicationFactor=2: every sample stored twice, and bytes/sample count both copies) and
// (b) Debian's victoria-metrics single node, one after the other on this machine. A strata-select
// over the storage nodes runs too (one query after the ingest) so its RSS counts. Prints
// samples/s, CPU seconds per million samples per process, peak RSS of every process and their
// sum, RSS per active series, the cache counters of insert and storage, and bytes per sample on
// disk after a forced merge, with the ratios. `--series=1000000 --points=12` is the
// high-cardinality case (docs/benchmarks.md). --tls runs Strata a second time with mTLS on the
// insert → storage links (-cluster.tls, certificates made with openssl) and prints the CPU cost
// of TLS per million samples. Requires `pnpm build` first.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { BodyWriter } from "../../../test/bench/node-exporter-data.js";
import { makeClusterCerts, type ClusterCerts } from "../../../test/lib/certs.js";
import { selectServiceEnv, UNIT_NODE_ARGS } from "../../../test/lib/cluster.js";
import { cpuSeconds } from "../../../test/lib/procs.js";
import { freePort, Proc, removeDir, startInsert, startStorage, tempDir, assertBuilt, type StorageNode } from "../test/cluster-harness.js";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const kv = a.replace(/^--?/, "");
    const eq = kv.indexOf("=");
    return eq < 0 ? ([kv, "true"] as const) : ([kv.slice(0, eq), kv.slice(eq + 1)] as const);
  }),
);
const SERIES = Number(args.get("series") ?? 100_000);
const POINTS = Number(args.get("points") ?? 360);
const PER_REQUEST = Number(args.get("perRequest") ?? 10_000);
const CONCURRENCY = Number(args.get("concurrency") ?? 4);
const RF = Number(args.get("replicationFactor") ?? 1);
if (RF !== 1 && RF !== 2) throw new Error(`--replicationFactor must be 1 or 2 (2 storage nodes), got ${RF}`);
const WITH_VM = !args.has("noVM");
const WITH_TLS = args.has("tls");
/** Extra storage-node flags, space-separated (e.g. --storageFlags="-inmemoryDataFlushInterval=30s"). */
const STORAGE_FLAGS = (args.get("storageFlags") ?? "").split(" ").filter((f) => f !== "");
const VM_BIN = "/usr/bin/victoria-metrics";
const SERIES_PER_HOST = 200;
const STEP = 15_000;

// ---- workload -------------------------------------------------------------------------------

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

/** Encoded `repeated Label labels = 1` of every series (constant over time). */
function seriesLabels(i: number): Uint8Array {
  const host = Math.floor(i / SERIES_PER_HOST);
  const j = i % SERIES_PER_HOST;
  const labels: [string, string][] = [
    ["__name__", NAMES[j % NAMES.length]!],
    ["cpu", String(Math.floor(j / NAMES.length))],
    ["instance", `host-${host}.example.com:9100`],
    ["job", "node"],
    ["region", `region-${host % 4}`],
  ];
  const w = new BinaryWriter();
  for (const [n, v] of labels) w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(n).tag(2, WireType.LengthDelimited).string(v).join();
  return w.finish();
}

function generate(): { bodies: Uint8Array[]; rawBytes: number; samples: number } {
  const t0 = performance.now();
  const labels = Array.from({ length: SERIES }, (_, i) => seriesLabels(i));
  const rnd = mulberry32(42);
  const state = new Float64Array(SERIES).map(() => Math.floor(rnd() * 1e6));
  const start = Math.floor((Date.now() - POINTS * STEP - 3_600_000) / STEP) * STEP;
  const w = new BodyWriter(PER_REQUEST);
  const bodies: Uint8Array[] = [];
  for (let p = 0; p < POINTS; p++) {
    const ts = start + p * STEP;
    for (let i = 0; i < SERIES; i++) {
      const kind = i % 3;
      if (kind === 0) state[i]! += Math.floor(rnd() * 100); // counter
      else if (kind === 1) state[i] = Math.round((state[i]! + (rnd() - 0.5) * 10) * 100) / 100; // gauge
      w.add(labels[i]!, ts, state[i]!);
    }
    bodies.push(...w.finish()); // a point's last body is cut there (SERIES % PER_REQUEST samples)
  }
  const rawBytes = w.rawBytes;
  const compressed = bodies.reduce((s, b) => s + b.length, 0);
  console.log(
    `generated ${bodies.length} bodies, ${(SERIES * POINTS / 1e6).toFixed(2)}M samples, ${(rawBytes / 1e6).toFixed(0)} MB raw, ` +
      `${(compressed / 1e6).toFixed(0)} MB snappy in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
  );
  return { bodies, rawBytes, samples: SERIES * POINTS };
}

// ---- measurement ----------------------------------------------------------------------------

function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}
function dirBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

async function replay(url: string, bodies: Uint8Array[]): Promise<number> {
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const b = bodies[next++]!;
      for (let attempt = 0; ; attempt++) {
        const r = await fetch(url, {
          method: "POST",
          body: b as Uint8Array<ArrayBuffer>,
          headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
        });
        const text = await r.text();
        if (r.status === 204 || r.status === 200) break;
        failures++;
        if (r.status < 500 && r.status !== 429) throw new Error(`${url}: ${r.status} ${text}`);
        if (attempt > 20) throw new Error(`${url}: giving up after ${attempt} retries: ${r.status} ${text}`);
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (failures > 0) console.log(`  (${failures} retried requests)`);
  return (performance.now() - t0) / 1000;
}

const SELECT_MAIN = join(import.meta.dirname, "../../select/dist/main.js");

async function startSelect(nodes: readonly StorageNode[]): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const proc = new Proc(
    spawn(process.execPath, [...UNIT_NODE_ARGS.select, SELECT_MAIN, `-httpListenAddr=127.0.0.1:${port}`, `-storageNode=${nodes.map((n) => n.searchAddr).join(",")}`, "-loggerLevel=WARN"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: selectServiceEnv(), // as systemd/strata-select.service: jemalloc when installed
    }),
    `select ${port}`,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health`, proc);
  return { proc, url };
}

/** Sums `name{type="…"}`-style samples of a /metrics page by their first label value (or "" without labels). */
async function scrape(url: string, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await (await fetch(`${url}/metrics`)).text()).split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const m = /^([a-z_]+)(?:\{[a-z_]+="([^"]*)"\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const key = m[2] === undefined ? m[1]! : `${m[1]!}{${m[2]}}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

/**
 * Where the replay's wall time went: each process's CPU over the replay's wall time (busy share
 * of one core; GC threads count too), insert's mean request time against the storage nodes'
 * mean WriteRows_v1 handling time, and how often the storage nodes rewrote each row they took
 * (rows read by disk flushes and merges per row added) before the forced merge.
 */
async function printWritePath(insertUrl: string, nodes: readonly StorageNode[], seconds: number, cpu: readonly { name: string; cpu: number }[]): Promise<void> {
  console.log(`  busy (CPU / replay wall time): ${cpu.map((p) => `${p.name} ${((p.cpu / seconds) * 100).toFixed(0)}%`).join(", ")}`);
  const ins = await scrape(insertUrl, "strata_insert_request_duration_seconds_");
  const mean = (m: Map<string, number>, f: string): string => `${(((m.get(`${f}_sum`) ?? 0) / Math.max(1, m.get(`${f}_count`) ?? 0)) * 1000).toFixed(1)} ms`;
  const per: string[] = [];
  for (const [i, n] of nodes.entries()) {
    const rpc = await scrape(n.http, "strata_storage_rpc_write_duration_seconds_");
    const st = await scrape(n.http, "strata_storage_");
    const added = st.get("strata_storage_rows_added_total") ?? 0;
    const merged = st.get("strata_storage_merge_rows_in_total") ?? 0;
    per.push(
      `storage-${i + 1} WriteRows_v1 ${mean(rpc, "strata_storage_rpc_write_duration_seconds")} (${rpc.get("strata_storage_rpc_write_duration_seconds_count") ?? 0} calls), ` +
        `rows rewritten ${(merged / Math.max(1, added)).toFixed(2)}× by ${st.get("strata_storage_disk_flushes_total") ?? 0} disk flushes + ${st.get("strata_storage_merges_total") ?? 0} merges`,
    );
  }
  console.log(`  insert request ${mean(ins, "strata_insert_request_duration_seconds")} mean; ${per.join("; ")}`);
}

/** One line per cache: hits, misses, rotations, size and cap (storage nodes summed). */
async function printCaches(insertUrl: string, nodes: readonly StorageNode[]): Promise<void> {
  const ins = await scrape(insertUrl, "strata_insert_labels_cache_");
  const get = (k: string): number => ins.get(k) ?? 0;
  console.log(
    `  cache insert/rawLabels: ${get("strata_insert_labels_cache_hits_total")} hits (${get("strata_insert_labels_cache_fingerprint_hits_total")} by fingerprint), ${get("strata_insert_labels_cache_misses_total")} misses, ` +
      `${get("strata_insert_labels_cache_resets_total")} rotations, ${get("strata_insert_labels_cache_entries")} entries, ${(get("strata_insert_labels_cache_bytes") / 2 ** 20).toFixed(0)} MiB`,
  );
  const sum = new Map<string, number>();
  for (const n of nodes) for (const [k, v] of await scrape(n.http, "strata_cache_")) sum.set(k, (sum.get(k) ?? 0) + v);
  const types = new Set([...sum.keys()].map((k) => /\{(.*)\}/.exec(k)?.[1] ?? "").filter((t) => t !== ""));
  for (const t of [...types].sort()) {
    const g = (f: string): number => sum.get(`strata_cache_${f}{${t}}`) ?? 0;
    if (g("hits_total") + g("misses_total") === 0) continue;
    console.log(
      `  cache ${t} (storage nodes): ${g("hits_total")} hits, ${g("misses_total")} misses, ${g("rotations_total")} rotations, ${g("entries")} entries, ` +
        `${(g("size_bytes") / 2 ** 20).toFixed(0)} of ${(g("size_max_bytes") / 2 ** 20).toFixed(0)} MiB`,
    );
  }
}

/**
 * Where a process's resident bytes go right after the replay (its /metrics): the V8 heap (used
 * and reserved), ArrayBuffers (typed arrays: caches' arenas and tables, buffers) and the rest
 * of the RSS (code, thread stacks, malloc arenas, freed pages not yet returned), per active series.
 */
async function printMemory(procs: readonly { name: string; url: string }[]): Promise<void> {
  const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;
  const per = (b: number): string => `${(b / SERIES).toFixed(0)} B/series`;
  for (const p of procs) {
    const m = await scrape(p.url, "");
    const g = (k: string): number => m.get(k) ?? 0;
    const rss = g("process_resident_memory_bytes");
    const used = g("nodejs_heap_size_used_bytes");
    const total = g("nodejs_heap_size_total_bytes");
    const ab = g("nodejs_array_buffers_bytes");
    const caches = [...m].filter(([k]) => k.startsWith("strata_cache_size_bytes{") || k === "strata_insert_labels_cache_bytes");
    console.log(
      `  memory ${p.name.padEnd(17)} RSS ${mib(rss)} (${per(rss)}): heap used ${mib(used)} (${per(used)}), heap reserved ${mib(total - used)}, ` +
        `ArrayBuffers ${mib(ab)} (${per(ab)}), rest ${mib(rss - total - ab)}` +
        (caches.length > 0 ? `; caches ${caches.map(([k, v]) => `${/\{(.*)\}/.exec(k)?.[1] ?? "insert/rawLabels"} ${mib(v)}`).join(", ")}` : ""),
    );
  }
}

interface ProcFigures {
  name: string;
  cpu: number;
  peakRss: number;
}
interface Result {
  name: string;
  seconds: number;
  procs: ProcFigures[];
  dataBytes: number;
  indexBytes: number;
  /** Strata only: items.bin bytes and items per index item kind (both nodes together), after and before the forced merge. */
  indexKinds?: Map<string, { items: number; bytes: number }>;
  indexKindsBeforeMerge?: Map<string, { items: number; bytes: number }>;
}

/** Sums the storage nodes' `strata_storage_indexdb_disk_{items,bytes}_<kind>` gauges. */
async function indexKinds(https: string[]): Promise<Map<string, { items: number; bytes: number }>> {
  const out = new Map<string, { items: number; bytes: number }>();
  for (const h of https) {
    const text = await (await fetch(`${h}/metrics`)).text();
    for (const line of text.split("\n")) {
      const m = /^strata_storage_indexdb_disk_(items|bytes)_([a-z_]+) (\S+)$/.exec(line);
      if (m === null) continue;
      const e = out.get(m[2]!) ?? { items: 0, bytes: 0 };
      e[m[1] as "items" | "bytes"] += Number(m[3]);
      out.set(m[2]!, e);
    }
  }
  return out;
}

async function waitHttp(url: string, proc: Proc): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (!proc.alive) throw new Error(`${proc.name} exited: ${proc.log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

async function runStrata(bodies: Uint8Array[], certs?: ClusterCerts): Promise<Result> {
  assertBuilt();
  const storageFlags = [...(certs?.storageFlags ?? []), ...STORAGE_FLAGS];
  const nodes = await Promise.all([startStorage(undefined, undefined, storageFlags), startStorage(undefined, undefined, storageFlags)]);
  const ins = await startInsert(nodes.map((n) => n.insertAddr), [`-replicationFactor=${RF}`, ...(certs?.clientFlags ?? [])]);
  const sel = await startSelect(nodes);
  const procs = [
    { name: "strata-insert", proc: ins.proc },
    ...nodes.map((n, i) => ({ name: `strata-storage-${i + 1}`, proc: n.proc })),
    { name: "strata-select", proc: sel.proc },
  ];
  const pid = (p: Proc): number => p.child.pid!;
  const cpu0 = procs.map((p) => cpuSeconds(pid(p.proc)));
  const seconds = await replay(`${ins.url}/insert/0/prometheus/api/v1/write`, bodies);
  const warnings = ins.proc.log().split("\n").filter((l) => l.includes('"level":"warn"'));
  if (warnings.length > 0) console.log(`  insert logged ${warnings.length} warnings, e.g.\n    ${warnings.slice(0, 3).map((l) => l.slice(0, 300)).join("\n    ")}`);
  const cpu1 = procs.map((p) => cpuSeconds(pid(p.proc)));
  await printWritePath(ins.url, nodes, seconds, procs.map((p, i) => ({ name: p.name, cpu: cpu1[i]! - cpu0[i]! })));
  await printCaches(ins.url, nodes);
  await printMemory([{ name: "strata-insert", url: ins.url }, ...nodes.map((n, i) => ({ name: `strata-storage-${i + 1}`, url: n.http }))]);
  // One query through select (a sum over every host's series of one metric), so its memory counts too.
  const q = await fetch(`${sel.url}/select/0/prometheus/api/v1/query?query=${encodeURIComponent("count(node_load1)")}`);
  console.log(`  select count(node_load1): ${q.status} ${(await q.text()).slice(0, 120)}`);
  const figures = procs.map((p, i) => ({ name: p.name, cpu: cpu1[i]! - cpu0[i]!, peakRss: peakRssBytes(pid(p.proc)) }));
  const t0 = performance.now();
  await Promise.all(nodes.map((n) => fetch(`${n.http}/internal/force_flush`).then((r) => r.text())));
  const kindsBeforeMerge = await indexKinds(nodes.map((n) => n.http));
  await Promise.all(nodes.map((n) => fetch(`${n.http}/internal/force_merge`).then((r) => r.text())));
  console.log(`  strata flush + merge took ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  const dataBytes = nodes.reduce((s, n) => s + dirBytes(join(n.dir, "data")), 0);
  const indexBytes = nodes.reduce((s, n) => s + dirBytes(join(n.dir, "indexdb")), 0);
  const kinds = await indexKinds(nodes.map((n) => n.http));
  await sel.proc.stop();
  await ins.proc.stop();
  await Promise.all(nodes.map((n) => n.proc.stop()));
  for (const n of nodes) removeDir(n.dir);
  return { name: `strata (insert + 2 storage, RF=${RF}${certs ? ", mTLS insert → storage" : ""})`, seconds, procs: figures, dataBytes, indexBytes, indexKinds: kinds, indexKindsBeforeMerge: kindsBeforeMerge };
}

async function vmMetric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  return sum;
}

async function runVM(bodies: Uint8Array[]): Promise<Result> {
  const dir = tempDir("vm-bench-");
  const port = await freePort();
  const proc = new Proc(
    spawn(VM_BIN, [`-storageDataPath=${dir}`, `-httpListenAddr=127.0.0.1:${port}`, "-retentionPeriod=100y", "-loggerLevel=ERROR"], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
    "victoria-metrics",
  );
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/health`, proc);
  const pid = proc.child.pid!;
  const cpu0 = cpuSeconds(pid);
  const seconds = await replay(`${base}/api/v1/write`, bodies);
  const cpu = cpuSeconds(pid) - cpu0;
  const peakRss = peakRssBytes(pid);
  const t0 = performance.now();
  await (await fetch(`${base}/internal/force_flush`)).text();
  await (await fetch(`${base}/internal/force_merge`)).text();
  // force_merge runs in the background: wait until no merge is active twice in a row.
  for (let quiet = 0, i = 0; quiet < 2 && i < 600; i++) {
    await new Promise((r) => setTimeout(r, 500));
    quiet = (await vmMetric(base, "vm_active_merges")) === 0 ? quiet + 1 : 0;
  }
  console.log(`  victoria-metrics flush + merge took ${((performance.now() - t0) / 1000).toFixed(1)}s`);
  const dataBytes = dirBytes(join(dir, "data"));
  const indexBytes = dirBytes(join(dir, "indexdb"));
  await proc.stop();
  removeDir(dir);
  return { name: "victoria-metrics single node", seconds, procs: [{ name: "victoria-metrics", cpu, peakRss }], dataBytes, indexBytes };
}

function report(r: Result, samples: number): { rate: number; cpuPerM: number; rss: number; storageRss: number; bps: number; totalBps: number; indexPerSeries: number } {
  const rate = samples / r.seconds;
  const cpu = r.procs.reduce((s, p) => s + p.cpu, 0);
  const rss = r.procs.reduce((s, p) => s + p.peakRss, 0);
  const bps = r.dataBytes / samples;
  console.log(`\n${r.name}`);
  console.log(`  ingest: ${r.seconds.toFixed(1)}s, ${Math.round(rate).toLocaleString("en-US")} samples/s`);
  for (const p of r.procs) {
    console.log(`  ${p.name.padEnd(20)} CPU ${p.cpu.toFixed(1)}s = ${((p.cpu / samples) * 1e6).toFixed(2)} CPU s per million samples, peak RSS ${(p.peakRss / 2 ** 20).toFixed(0)} MiB`);
  }
  console.log(`  total                CPU ${((cpu / samples) * 1e6).toFixed(2)} s per million samples, peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB = ${(rss / SERIES).toFixed(0)} bytes per active series`);
  const storage = r.procs.filter((p) => p.name.startsWith("strata-storage"));
  const storageRss = storage.length > 0 ? storage.reduce((s, p) => s + p.peakRss, 0) : rss;
  if (storage.length > 0) console.log(`  storage nodes        peak RSS ${(storageRss / 2 ** 20).toFixed(0)} MiB together`);
  console.log(
    `  on disk after merge: data ${(r.dataBytes / 2 ** 20).toFixed(1)} MiB = ${bps.toFixed(3)} bytes/sample; index ${(r.indexBytes / 2 ** 20).toFixed(1)} MiB; total ${((r.dataBytes + r.indexBytes) / samples).toFixed(3)} bytes/sample`,
  );
  // every stored copy of a series has its own index entries: per series means per copy
  const copies = r.indexKinds === undefined ? SERIES : SERIES * RF;
  const indexPerSeries = r.indexBytes / copies;
  console.log(`  index after merge: ${indexPerSeries.toFixed(1)} bytes per series${r.indexKinds === undefined ? "" : " (per stored copy)"}`);
  const byKind = (what: string, kinds: Map<string, { items: number; bytes: number }> | undefined): void => {
    if (kinds === undefined) return;
    const cols = [...kinds].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k} ${(v.bytes / copies).toFixed(1)} (${(v.items / copies).toFixed(1)} items)`);
    console.log(`  index bytes per series by item kind, ${what}: ${cols.join(", ")}`);
  };
  byKind("before merge", r.indexKindsBeforeMerge);
  byKind("after merge", r.indexKinds);
  return { rate, cpuPerM: (cpu / samples) * 1e6, rss, storageRss, bps, totalBps: (r.dataBytes + r.indexBytes) / samples, indexPerSeries };
}

const { bodies, samples } = generate();
console.log(`workload: ${SERIES} series × ${POINTS} points (15 s), ${PER_REQUEST} samples/request, concurrency ${CONCURRENCY}, ${process.platform} ${process.arch}, node ${process.version}`);
const ours = report(await runStrata(bodies), samples);
if (WITH_TLS) {
  const certDir = tempDir("bench-certs-");
  const tls = report(await runStrata(bodies, makeClusterCerts(certDir)), samples);
  removeDir(certDir);
  console.log("\nTLS cost (mTLS run − plain run, same workload)");
  console.log(`  CPU per M samples    ${(tls.cpuPerM - ours.cpuPerM).toFixed(2)} s (${((tls.cpuPerM / ours.cpuPerM - 1) * 100).toFixed(0)}%)`);
  console.log(`  samples/s            ${(tls.rate / ours.rate).toFixed(2)}×`);
}
if (WITH_VM && existsSync(VM_BIN)) {
  const vm = report(await runVM(bodies), samples);
  console.log("\nratios (strata / victoria-metrics)");
  console.log(`  samples/s            ${(ours.rate / vm.rate).toFixed(2)}× (target ≥ 0.5×)`);
  console.log(`  CPU per M samples    ${(ours.cpuPerM / vm.cpuPerM).toFixed(2)}× (target ≤ 2×)`);
  console.log(`  peak RSS total       ${(ours.rss / vm.rss).toFixed(2)}× (per active series, target ≤ 1.5×)`);
  console.log(`  peak RSS storage     ${(ours.storageRss / vm.rss).toFixed(2)}× (storage nodes together / VM's single node; target ≤ 1.5× at 100k × 360)`);
  console.log(`  bytes/sample (data)  ${(ours.bps / vm.bps).toFixed(2)}×`);
  console.log(`  bytes/sample (data + index) ${(ours.totalBps / vm.totalBps).toFixed(2)}× (target ≤ 1.0×)`);
  console.log(`  index bytes/series   ${(ours.indexPerSeries / vm.indexPerSeries).toFixed(2)}× (target ≤ 1.2×)`);
} else {
  console.log(`\nvictoria-metrics comparison skipped (${WITH_VM ? `${VM_BIN} not found: apt-get install -y victoria-metrics` : "--noVM"})`);
}
