/**
 * pnpm bench:storage [--series=100000] [--points=360] [--no-vm] [--prof=ingest.cpuprofile]
 *
 * node_exporter-like dataset (hosts × 100 metrics: counters with resets, random-walk gauges with
 * 2 decimals, constants) at a 10 s interval. Prints Strata ingest rows/s (one process), CPU s per
 * million rows, bytes/sample after a full merge, index bytes per series, peak RSS and search
 * latencies; then imports the same data into Debian's victoria-metrics (if installed) and prints
 * the ratios. --prof writes a CPU profile (main thread) of the ingest phase only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { setImmediate as yieldLoop } from "node:timers/promises";
import { DEFAULT_TENANT, encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter, type LabelMatcher } from "@strata/core";
import { mergeSeriesBlocks, Storage } from "@strata/storage";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--?/, "").split("=");
    return [k!, v ?? "true"] as const;
  }),
);
const SERIES = Number(args.get("series") ?? 100_000);
const POINTS = Number(args.get("points") ?? 360);
const STEP = 10_000;
const PER_HOST = 100;
const HOSTS = Math.ceil(SERIES / PER_HOST);
const FAMILIES = ["cpu", "disk", "network", "memory", "filesystem", "netstat", "vmstat", "sockstat", "schedstat", "pressure"];
const T_START = Math.floor((Date.now() - POINTS * STEP) / STEP) * STEP;

// ---- dataset ---------------------------------------------------------------------------------

type Kind = 0 | 1 | 2; // counter, gauge, constant
interface SeriesDef {
  labels: Record<string, string>;
  kind: Kind;
}

function seriesDef(i: number): SeriesDef {
  const host = Math.floor(i / PER_HOST);
  const m = i % PER_HOST;
  const fam = FAMILIES[Math.floor(m / 10)]!;
  const kind: Kind = m % 10 < 4 ? 0 : m % 10 < 8 ? 1 : 2;
  const suffix = kind === 0 ? "_total" : kind === 1 ? "_bytes" : "_info";
  return {
    labels: { __name__: `node_${fam}_m${m % 10}${suffix}`, job: "node", instance: `host-${host}.example.com:9100`, env: host % 3 === 0 ? "prod" : "dev" },
    kind,
  };
}

/** Deterministic per-series state so Strata and VictoriaMetrics get identical samples. */
class Gen {
  private readonly val = new Float64Array(SERIES);
  private readonly inc = new Float64Array(SERIES);
  private seed = 12345;
  constructor() {
    for (let i = 0; i < SERIES; i++) {
      const k = seriesDef(i).kind;
      this.val[i] = k === 2 ? Math.floor(this.rand() * 64) : k === 0 ? Math.floor(this.rand() * 1e9) : Math.round(this.rand() * 1e6) / 100;
      this.inc[i] = 1 + Math.floor(this.rand() * 5000);
    }
  }
  private rand(): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
    return this.seed / 4294967296;
  }
  next(i: number, kind: Kind): number {
    let v = this.val[i]!;
    if (kind === 0) v = this.rand() < 0.002 ? Math.floor(this.rand() * 100) : v + Math.floor(this.inc[i]! * (0.5 + this.rand()));
    else if (kind === 1) v = Math.round((v + (this.rand() - 0.5) * 20) * 100) / 100;
    this.val[i] = v;
    return v;
  }
}

const defs = Array.from({ length: SERIES }, (_, i) => seriesDef(i));
const names = defs.map((d) => encodeMetricName({ tenant: DEFAULT_TENANT, labels: normalizeLabels(Object.entries(d.labels).map(([name, value]) => ({ name, value }))) }));

function dirSize(p: string): number {
  let total = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const q = join(p, e.name);
    if (e.isDirectory()) total += dirSize(q);
    else if (e.isFile()) total += statSync(q).size;
  }
  return total;
}

const fmt = (n: number, d = 2): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---- Strata ----------------------------------------------------------------------------------

async function benchStrata(): Promise<{ bytesPerSample: number; dataBytes: number; indexBytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), "strata-bench-"));
  const s = await Storage.open(dir, { retentionMs: 365 * 86_400_000, walFsyncIntervalMs: 1000 });
  const gen = new Gen();
  const w = new RowsBatchWriter(16 << 20);
  const BATCH = 10_000;
  let genMs = 0;
  let rows = 0;
  const profPath = args.get("prof");
  const session = profPath === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let p = 0; p < POINTS; p++) {
    const ts = T_START + p * STEP;
    for (let off = 0; off < SERIES; off += BATCH) {
      const g0 = performance.now();
      w.reset();
      const end = Math.min(SERIES, off + BATCH);
      for (let i = off; i < end; i++) w.add(names[i]!, ts, gen.next(i, defs[i]!.kind));
      genMs += performance.now() - g0;
      await s.addRows(w.view());
      rows += end - off;
    }
    await yieldLoop();
  }
  await s.forceFlush();
  const ingestMs = performance.now() - t0 - genMs;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6 - genMs / 1000;
  if (session !== undefined && profPath !== undefined) {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(profPath, JSON.stringify(profile));
    session.disconnect();
  }
  const im = s.metrics();
  console.log(`strata: ingested ${rows.toLocaleString()} rows (${SERIES.toLocaleString()} series × ${POINTS} points)`);
  console.log(`strata: ingest ${fmt(rows / (ingestMs / 1000), 0)} rows/s (one process, excl. ${fmt(genMs / 1000)} s of data generation), CPU ${fmt(cpuS / (rows / 1e6), 3)} s per million rows`);
  console.log(
    `strata: during ingest ${im.inmemory_flushes_total} in-memory flushes, ${im.disk_flushes_total} disk flushes, ${im.merges_total} merges re-encoding ${fmt(im.merge_rows_in_total! / rows, 2)}× the rows, ${im.backpressure_waits_total} backpressure waits`,
  );
  const m0 = performance.now();
  const merged = await s.forceMerge();
  console.log(`strata: full merge ${fmt((performance.now() - m0) / 1000)} s (${merged.merges} merges, ${merged.rowsOut.toLocaleString()} rows out)`);
  const dataBytes = dirSize(join(dir, "data"));
  const indexBytes = dirSize(join(dir, "indexdb"));
  const bytesPerSample = dataBytes / rows;
  console.log(`strata: data ${fmt(dataBytes / 1048576)} MiB = ${fmt(bytesPerSample, 3)} bytes/sample; index ${fmt(indexBytes / 1048576)} MiB = ${fmt(indexBytes / SERIES, 1)} bytes/series`);

  const hourAgo = T_START + POINTS * STEP - 3_600_000;
  const tEnd = T_START + POINTS * STEP;
  const q = (label: string, ms: LabelMatcher[], wantSeries: number): void => {
    const times: number[] = [];
    let got = 0;
    let samples = 0;
    for (let k = 0; k < 7; k++) {
      const a = performance.now();
      const c = s.search(DEFAULT_TENANT, ms, hourAgo, tEnd);
      got = 0;
      samples = 0;
      while (c.next()) {
        const r = mergeSeriesBlocks(c.at().blocks, c.minT, c.maxT);
        got++;
        samples += r.timestamps.length;
      }
      times.push(performance.now() - a);
    }
    console.log(`strata: search ${label}: ${got} series, ${samples.toLocaleString()} samples, median ${fmt(median(times), 1)} ms (first ${fmt(times[0]!, 1)} ms)${got !== wantSeries ? ` (expected ${wantSeries}!)` : ""}`);
  };
  const one = defs[Math.floor(SERIES / 2) + 17]!.labels;
  q("one series over 1h", Object.entries(one).map(([k, v]) => newMatcher("=", k, v)), 1);
  q("one metric (1k series at 100k) over 1h", [newMatcher("=", "__name__", "node_cpu_m4_bytes")], HOSTS);
  q("regex over 10k series", [newMatcher("=~", "__name__", "node_disk_.+")], HOSTS * 10);
  const m = s.metrics();
  console.log(`strata: peak RSS ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MiB; parts: ${m.small_parts} small + ${m.big_parts} big; merges ${m.merges_total}`);
  await s.close();
  rmSync(dir, { recursive: true, force: true });
  return { bytesPerSample, dataBytes, indexBytes };
}

// ---- VictoriaMetrics -------------------------------------------------------------------------

async function waitHttp(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not come up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function vmMetric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  return sum;
}

async function benchVM(): Promise<{ dataBytes: number; indexBytes: number } | undefined> {
  const bin = ["/usr/bin/victoria-metrics", "/usr/bin/victoria-metrics-prod"].find((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
  if (bin === undefined) {
    console.log("victoria-metrics: not installed (apt-get install -y victoria-metrics), skipped");
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "vm-bench-"));
  const port = 18428 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const vm: ChildProcess = spawn(bin, [`-storageDataPath=${dir}`, `-httpListenAddr=127.0.0.1:${port}`, "-retentionPeriod=1y", "-loggerLevel=ERROR"], { stdio: "ignore" });
  try {
    await waitHttp(`${base}/health`, 30_000);
    const gen = new Gen();
    // Same samples as Strata: generate step-major, then send one JSON line per series.
    const vals = Array.from({ length: SERIES }, () => new Float64Array(POINTS));
    for (let p = 0; p < POINTS; p++) for (let i = 0; i < SERIES; i++) vals[i]![p] = gen.next(i, defs[i]!.kind);
    const tss = Array.from({ length: POINTS }, (_, p) => T_START + p * STEP);
    const tsJson = JSON.stringify(tss);
    const t0 = performance.now();
    const CHUNK = 2000;
    for (let off = 0; off < SERIES; off += CHUNK) {
      const lines: string[] = [];
      for (let i = off; i < Math.min(SERIES, off + CHUNK); i++) {
        lines.push(`{"metric":${JSON.stringify(defs[i]!.labels)},"values":${JSON.stringify(Array.from(vals[i]!))},"timestamps":${tsJson}}`);
      }
      const r = await fetch(`${base}/api/v1/import`, { method: "POST", body: lines.join("\n") });
      if (!r.ok) throw new Error(`import: ${r.status} ${await r.text()}`);
    }
    const importS = (performance.now() - t0) / 1000;
    await fetch(`${base}/internal/force_flush`);
    console.log(`victoria-metrics: imported ${(SERIES * POINTS).toLocaleString()} rows in ${fmt(importS)} s (${fmt((SERIES * POINTS) / importS, 0)} rows/s over HTTP JSON, client-bound)`);
    await fetch(`${base}/internal/force_merge`);
    await new Promise((r) => setTimeout(r, 2000));
    for (let k = 0; k < 600; k++) {
      if ((await vmMetric(base, "vm_active_merges")) === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const dataBytes = dirSize(join(dir, "data"));
    const indexBytes = dirSize(join(dir, "indexdb"));
    console.log(`victoria-metrics: data ${fmt(dataBytes / 1048576)} MiB = ${fmt(dataBytes / (SERIES * POINTS), 3)} bytes/sample; index ${fmt(indexBytes / 1048576)} MiB = ${fmt(indexBytes / SERIES, 1)} bytes/series`);
    return { dataBytes, indexBytes };
  } finally {
    vm.kill("SIGTERM");
    await new Promise((r) => vm.once("exit", r));
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`dataset: ${SERIES.toLocaleString()} series (${HOSTS} hosts × ${PER_HOST}) × ${POINTS} points at 10 s = ${(SERIES * POINTS).toLocaleString()} samples`);
const strata = await benchStrata();
if (args.get("vm") !== "false" && !args.has("no-vm")) {
  const vm = await benchVM();
  if (vm !== undefined) {
    console.log(`ratio strata/victoria-metrics: data bytes/sample ${fmt(strata.dataBytes / vm.dataBytes, 2)}×, index bytes/series ${fmt(strata.indexBytes / vm.indexBytes, 2)}×`);
  }
}
