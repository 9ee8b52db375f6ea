/**
 * `pnpm bench:index` — figures for the inverted index (IndexDB on the mergeset): series
 * creation, hot-path lookups, cold lookups after reopen, flush, on-disk bytes per series and
 * item kind (before and after merge), search latencies; and, in the same run, Debian's
 * victoria-metrics fed the same series (its indexdb bytes per series and CPU per new series).
 * Prints figures; asserts nothing. SERIES=… overrides the series count, NO_VM=1 skips the peer.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type LabelMatcher, type Tenant, encodeMetricName, labelsFromRecord, newMatcher } from "@strata/core";
import { freePort, metricSum, startProcess, tempDir, waitHealthy } from "../../../test/lib/procs.js";
import { IndexDB } from "../src/indexdb/index.js";

const N = Number(process.env.SERIES ?? 100_000);
const T: Tenant = { accountID: 0, projectID: 0 };
const DAY = 20_000;
const t0 = DAY * 86_400_000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-index-bench-"));

/** node_exporter-like series: 100 metrics × hosts × a few per-host label sets. */
function seriesRecord(i: number): Record<string, string> {
  const metric = i % 100;
  const host = Math.floor(i / 100) % Math.max(1, Math.floor(N / 1000));
  const rec: Record<string, string> = {
    __name__: `node_metric_${metric}_total`,
    job: "node",
    instance: `host-${host}.example.org:9100`,
    env: ["prod", "staging", "dev"][host % 3]!,
    dc: `dc${host % 7}`,
  };
  if (metric < 20) rec.cpu = String(Math.floor(i / 100 / Math.max(1, N / 1000)) % 64);
  if (metric < 10) rec.mode = ["idle", "user", "system", "iowait"][i % 4]!;
  if (metric >= 20 && metric < 40) rec.device = `sd${String.fromCharCode(97 + (i % 8))}`;
  rec.i = String(Math.floor(i / 100)); // makes every series unique
  return rec;
}

function series(i: number): Uint8Array {
  return encodeMetricName({ tenant: T, labels: labelsFromRecord(seriesRecord(i)) });
}

/** Median wall and CPU milliseconds of `reps` calls (the machine may be shared: CPU is steadier). */
function ms(f: () => unknown, reps = 1): { wall: number; cpu: number } {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c = process.cpuUsage();
    const s = performance.now();
    f();
    walls.push(performance.now() - s);
    const u = process.cpuUsage(c);
    cpus.push((u.user + u.system) / 1000);
  }
  const med = (a: number[]): number => a.sort((x, y) => x - y)[a.length >> 1]!;
  return { wall: med(walls), cpu: med(cpus) };
}

const show = (t: { wall: number; cpu: number }, d = 2): string => `${fmt(t.wall, d)} ms (cpu ${fmt(t.cpu, d)})`;

function cpu<R>(f: () => R): [R, number, number] {
  const c = process.cpuUsage();
  const s = performance.now();
  const r = f();
  const u = process.cpuUsage(c);
  return [r, (performance.now() - s) / 1000, (u.user + u.system) / 1e6];
}

const fmt = (n: number, d = 0): string => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

function dirBytes(d: string): number {
  let n = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

/** Bytes per series of each item kind (and the whole directory). */
function kindTable(db: IndexDB, what: string): void {
  const k = db.kindSizes();
  const cols = Object.entries(k)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, v]) => `${name} ${fmt(v.bytes / N, 1)} (${fmt(v.items / N, 1)} items)`);
  console.log(`  ${what}: ${cols.join(", ")}; directory ${fmt(dirBytes(dir) / N, 1)} bytes/series`);
}

// ---- the peer: victoria-metrics single node, same series, same two days --------------------

const VM_BIN = "/usr/bin/victoria-metrics";

/** Prometheus text lines of every series with value v at time t. */
function textLines(t: number, v: number): string {
  const out: string[] = [];
  for (let i = 0; i < N; i++) {
    const rec = seriesRecord(i);
    const labels = Object.entries(rec)
      .filter(([k]) => k !== "__name__")
      .map(([k, x]) => `${k}=${JSON.stringify(x)}`)
      .join(",");
    out.push(`${rec.__name__}{${labels}} ${v} ${t}`);
  }
  return out.join("\n") + "\n";
}

function procCpu(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ
}

interface VmFigures {
  indexBytes: number;
  newSeriesCpu: number;
  sameSeriesCpu: number;
}

/**
 * Imports the series into victoria-metrics three times (new series on day D, the same series
 * again on day D, then on day D+1), force-flushes and waits until no merge is active. CPU per
 * new series = first import − second import (both parse and store N samples).
 */
async function runVM(): Promise<VmFigures | undefined> {
  if (process.env.NO_VM !== undefined || !fs.existsSync(VM_BIN)) {
    console.log(`victoria-metrics comparison skipped (${fs.existsSync(VM_BIN) ? "NO_VM" : `${VM_BIN} missing: apt-get install -y victoria-metrics`})`);
    return undefined;
  }
  const vmDir = tempDir("index-bench-vm");
  const port = await freePort();
  const vmProc = startProcess(VM_BIN, [`-storageDataPath=${vmDir.path}`, `-httpListenAddr=127.0.0.1:${port}`, "-retentionPeriod=100y", "-loggerLevel=ERROR"]);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(`${base}/health`, vmProc);
    const pid = vmProc.child.pid!;
    const post = async (body: string): Promise<number> => {
      const c0 = procCpu(pid);
      const r = await fetch(`${base}/api/v1/import/prometheus`, { method: "POST", body });
      if (!r.ok) throw new Error(`victoria-metrics import: ${r.status} ${await r.text()}`);
      await (await fetch(`${base}/internal/force_flush`)).text();
      return procCpu(pid) - c0;
    };
    const bodies = [textLines(t0, 1), textLines(t0 + 60_000, 2), textLines(t0 + 86_400_000, 3)];
    const newSeriesCpu = await post(bodies[0]!);
    const sameSeriesCpu = await post(bodies[1]!);
    await post(bodies[2]!);
    await (await fetch(`${base}/internal/force_merge`)).text();
    for (let quiet = 0, i = 0; quiet < 3 && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 500));
      quiet = (await metricSum(base, "vm_active_merges")) === 0 ? quiet + 1 : 0;
    }
    return { indexBytes: dirBytes(path.join(vmDir.path, "indexdb")), newSeriesCpu, sameSeriesCpu };
  } finally {
    await vmProc.stop();
    vmDir.remove();
  }
}

async function main(): Promise<void> {
  const names: Uint8Array[] = [];
  for (let i = 0; i < N; i++) names.push(series(i));
  console.log(`# IndexDB benchmark: ${fmt(N)} series, node ${process.version}, ${os.cpus().length} cpus, load ${os.loadavg()[0]!.toFixed(1)}`);

  let db = await IndexDB.open(dir, { flushIntervalMs: 0 });
  const [, createWall, createCpu] = cpu(() => {
    for (const n of names) db.getOrCreateTSID(n, DAY);
  });
  console.log(`create: ${fmt(N / createWall)} series/s (${fmt(createWall, 2)} s wall, ${fmt(createCpu, 2)} s cpu)`);

  const reps = 5;
  const [, hitWall, hitCpu] = cpu(() => {
    for (let r = 0; r < reps; r++) for (const n of names) db.getOrCreateTSID(n, DAY);
  });
  console.log(`lookup (cache hit, same day): ${fmt((reps * N) / hitWall)} lookups/s (${fmt((reps * N) / hitCpu)} per cpu-second)`);
  const [, dayWall, dayCpu] = cpu(() => {
    for (const n of names) db.getOrCreateTSID(n, DAY + 1);
  });
  console.log(`lookup (cache hit, new day → per-day entries): ${fmt(N / dayWall)} series/s (${fmt(dayCpu, 2)} s cpu)`);

  let c0 = process.cpuUsage();
  const fs0 = performance.now();
  await db.flush();
  const flushCpu = process.cpuUsage(c0).user / 1000;
  console.log(`flush: ${fmt(performance.now() - fs0)} ms (cpu ${fmt(flushCpu)} ms)`);
  kindTable(db, "before merge, bytes/series per item kind");
  c0 = process.cpuUsage();
  const fm0 = performance.now();
  await db.forceMerge();
  const mergeCpu = process.cpuUsage(c0).user / 1000;
  console.log(`force merge: ${fmt(performance.now() - fm0)} ms (cpu ${fmt(mergeCpu)} ms)`);
  kindTable(db, "after merge, bytes/series per item kind");
  const bytes = dirBytes(dir);
  console.log(`index on disk: ${fmt(bytes / 1e6, 1)} MB = ${fmt(bytes / N, 1)} bytes/series (2 days of per-day entries)`);
  const createUs = (createCpu * 1e6) / N;
  console.log(`creation cost: ${fmt(createUs, 1)} cpu-µs/series (getOrCreateTSID), ${fmt(createUs + ((flushCpu + mergeCpu) * 1000) / N / 2, 1)} with its share of flush + merge`);
  const vm = await runVM();
  if (vm !== undefined) {
    const vmNewUs = ((vm.newSeriesCpu - vm.sameSeriesCpu) * 1e6) / N;
    console.log(
      `victoria-metrics (same series, same 2 days): indexdb ${fmt(vm.indexBytes / N, 1)} bytes/series after merge; ` +
        `import of ${fmt(N)} new series ${fmt(vm.newSeriesCpu, 2)} cpu-s, of the same series again ${fmt(vm.sameSeriesCpu, 2)} cpu-s → ${fmt(vmNewUs, 1)} cpu-µs per new series`,
    );
    console.log(`ratio strata / victoria-metrics: index bytes ${fmt(bytes / vm.indexBytes, 2)}×, creation ${fmt(createUs / vmNewUs, 2)}×`);
  }
  await db.close();

  const sample = names.filter((_, i) => i % 5 === 0);
  const o0 = performance.now();
  db = await IndexDB.open(dir, { flushIntervalMs: 0 });
  const openMs = performance.now() - o0;
  const [, warmWall, warmCpu] = cpu(() => {
    for (const n of sample) db.getOrCreateTSID(n, DAY + 1);
  });
  console.log(
    `reopen after a clean close: open ${fmt(openMs)} ms (loads the saved name→TSID cache), then ${fmt(sample.length / warmWall)} lookups/s (${fmt(sample.length / warmCpu)} per cpu-second)`,
  );
  await db.close();
  fs.rmSync(path.join(dir, "tsid-cache.bin"), { force: true }); // as after a crash
  db = await IndexDB.open(dir, { flushIntervalMs: 0 });
  const [, coldWall, coldCpu] = cpu(() => {
    for (const n of sample) db.getOrCreateTSID(n, DAY + 1);
  });
  console.log(`lookup after a crash-like reopen (no saved cache → index): ${fmt(sample.length / coldWall)} lookups/s (${fmt(sample.length / coldCpu)} per cpu-second)`);
  await db.close();
  // Without a name → TSID cache at all (a 1-byte cap stores nothing): every lookup is a seek of
  // its name item, the confirmation of its id item and the check of the day's item. The first
  // pass also reads and decodes the index blocks it touches; the second finds them cached.
  fs.rmSync(path.join(dir, "tsid-cache.bin"), { force: true });
  db = await IndexDB.open(dir, { flushIntervalMs: 0, tsidCacheBytes: 1 });
  const noCache: string[] = [];
  for (const pass of ["blocks read", "blocks cached (and the day known)"]) {
    const [, , c] = cpu(() => {
      for (const n of sample) db.getOrCreateTSID(n, DAY + 1);
    });
    noCache.push(`${pass} ${fmt((c * 1e6) / sample.length, 1)}`);
  }
  console.log(`lookup without a name cache (index only), cpu-µs per lookup: ${noCache.join(", ")}`);

  const q = (label: string, m: LabelMatcher[], span = 3_600_000): void => {
    let n = 0;
    const cold = ms(() => (n = db.searchTSIDs(T, m, t0, t0 + span, 1e9).length));
    const warm = ms(() => db.searchTSIDs(T, m, t0, t0 + span, 1e9), 21);
    // a new series bumps the generation: matcher results must be recomputed
    let g = 0;
    const uncached = ms(() => {
      db.getOrCreateTSID(encodeMetricName({ tenant: T, labels: [{ name: "__name__", value: `gen_${g++}` }] }), DAY);
      db.searchTSIDs(T, m, t0, t0 + span, 1e9);
    }, 11);
    console.log(`search ${label}: ${fmt(n)} series — first ${show(cold)}, cached ${show(warm, 3)}, after an index change ${show(uncached)}`);
  };
  const perHost = Math.max(1, Math.floor(N / 1000));
  q("one series (all labels =)", [
    newMatcher("=", "__name__", "node_metric_50_total"),
    newMatcher("=", "instance", "host-1.example.org:9100"),
    newMatcher("=", "i", "1"),
  ]);
  q(`one metric, 1h (${fmt(N / 100)} series)`, [newMatcher("=", "__name__", "node_metric_42_total")]);
  q("one metric + env, 1h", [newMatcher("=", "__name__", "node_metric_42_total"), newMatcher("=", "env", "prod")]);
  q("regex over 10 metrics (=~ prefix)", [newMatcher("=~", "__name__", "node_metric_5.*")]);
  q("regex instance (no prefix) + metric", [
    newMatcher("=", "__name__", "node_metric_42_total"),
    newMatcher("=~", "instance", ".*-1[0-9].example.*"),
  ]);
  q("negative matcher", [newMatcher("=", "__name__", "node_metric_3_total"), newMatcher("!~", "mode", "idle|user")]);
  q("one metric over 30 days", [newMatcher("=", "__name__", "node_metric_42_total")], 30 * 86_400_000);
  void perHost;
  const lv = ms(() => db.labelValues(T, "instance", [], t0, t0 + 3_600_000, 0), 3);
  const lvm = ms(() => db.labelValues(T, "instance", [newMatcher("=", "__name__", "node_metric_42_total")], t0, t0 + 3_600_000, 0), 3);
  const ln = ms(() => db.labelNames(T, [], t0, t0 + 3_600_000, 0), 3);
  console.log(`labelValues(instance): ${show(lv)}; with metric matcher ${show(lvm)}; labelNames: ${show(ln)}`);
  const st = ms(() => db.tsdbStatus(T, { date: DAY, topN: 10 }), 3);
  console.log(`tsdbStatus(day, top 10): ${show(st, 1)}`);
  const m = db.metrics();
  console.log(
    `caches: tsid ${fmt(m.tsid_cache_bytes! / 1e6, 1)} MB, metricName ${fmt(m.metric_name_cache_bytes! / 1e6, 1)} MB, tagFilters ${fmt(m.tag_filters_cache_bytes! / 1e6, 1)} MB, blocks ${fmt(m.mergeset_block_cache_bytes! / 1e6, 1)} MB; rss ${fmt(process.memoryUsage().rss / 1e6)} MB`,
  );
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
