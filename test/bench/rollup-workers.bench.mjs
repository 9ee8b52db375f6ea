// node test/bench/rollup-workers.bench.mjs (after pnpm build): CPU and wall time of one wide
// rollup (rate over 361 steps of 2000 series × 1441 samples, real storage blocks) computed on the
// calling thread and on DecodePool's two workers (select's -search.maxWorkersPerQuery=2): the
// same decode + kernel code either way, so the CPU difference is the cost of packing, posting
// and transferring. process.cpuUsage() counts every thread of the process. Then the cost of
// packing a job against copying its bytes into a SharedArrayBuffer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeMetricName, newMatcher, normalizeLabels, RowsBatchWriter } from "../../packages/core/dist/index.js";
import { marshalBlockAt, marshaledBlockSize, Storage } from "../../packages/storage/dist/index.js";
import { BlockRefs } from "../../packages/cluster/dist/block-refs.js";
import { DecodePool } from "../../packages/cluster/dist/decode-pool.js";
import { packJob } from "../../packages/cluster/dist/decode.js";
import { runRollupJob } from "../../packages/cluster/dist/rollup-job.js";
const tenant = { accountID: 0, projectID: 0 };
const dir = mkdtempSync(join(tmpdir(), "qp-wcpu-"));
const st = await Storage.open(dir, { retentionMs: 100 * 365 * 86_400_000, flushIntervalMs: 3_600_000, diskFlushIntervalMs: 3_600_000, walFsyncIntervalMs: 0 });
const T0 = Date.now() - 2 * 3600_000;
const SERIES = 2000, POINTS = 1441;
const w = new RowsBatchWriter();
for (let i = 0; i < SERIES; i++) {
  const name = encodeMetricName({ tenant, labels: normalizeLabels([{ name: "__name__", value: "node_cpu_seconds_total" }, { name: "i", value: String(i) }]) });
  let v = 0;
  for (let k = 0; k < POINTS; k++) { v += Math.round(Math.random() * 1500) / 100; w.add(name, T0 + k * 5000, v); }
}
st.addRowsSync(w.finish());
await st.forceFlush();
const c = st.search(tenant, [newMatcher("=", "__name__", "node_cpu_seconds_total")], -Infinity, Infinity);
const series = [];
while (c.next()) series.push(c.at().blocks.map((b) => ({ ...b, timestamps: b.timestamps.slice(), values: b.values.slice() })));
c.close();
// The wire forms select holds off the storage streams, and each series' sample count.
const wire = series.map((bs) => bs.map((b) => { const out = new Uint8Array(marshaledBlockSize(b)); marshalBlockAt(b, out, 0); return out; }));
const { refs, firsts } = BlockRefs.ofWire(wire);
const counts = series.map((bs) => bs.reduce((a, b) => a + b.count, 0));
const n = 361, ends = new Float64Array(n);
for (let k = 0; k < n; k++) ends[k] = T0 + 300_000 + k * 20_000;
const spec = { func: "rate", ends, range: 300_000 };
const minT = T0, maxT = T0 + POINTS * 5000;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const pool = new DecodePool({ workers: 2, minSamples: 100_000 });
const reps = 10;
const res = {};
for (const mode of ["inline", "workers", "inline", "workers"]) {
  const c0 = cpu(), t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    if (mode === "inline") {
      // The same decode + kernel on the calling thread, in batches as the stream cuts them.
      for (let a = 0; a < series.length; a += 360) runRollupJob({ ...packJob(1, series.slice(a, a + 360), minT, maxT, 0), ...spec });
    } else {
      const jobs = [];
      for (let a = 0; a < series.length; a += 360) jobs.push(...pool.rollupJobs(refs, firsts.subarray(a, a + 360), counts.slice(a, a + 360), minT, maxT, 0, spec));
      await Promise.all(jobs.map((j) => j.result));
    }
  }
  res[mode] = { cpu: (cpu() - c0) / reps, wall: (performance.now() - t0) / reps };
}
console.log(`${SERIES} series × ${POINTS} samples, rate over ${n} steps: per query inline CPU ${res.inline.cpu.toFixed(1)} ms wall ${res.inline.wall.toFixed(1)} ms; 2 workers CPU ${res.workers.cpu.toFixed(1)} ms wall ${res.workers.wall.toFixed(1)} ms`);
// Packing a job (copying the compressed blocks into one transferable buffer) against copying the
// same bytes into a SharedArrayBuffer, best of 200.
const packSeries = series.slice(0, 180);
let packNs = Infinity;
let sabNs = Infinity;
let packSamples = 0;
for (const b of packSeries) for (const x of b) packSamples += x.count;
for (let r = 0; r < 200; r++) {
  const t0 = process.hrtime.bigint();
  const j = packJob(1, packSeries, minT, maxT, 0);
  const t1 = process.hrtime.bigint();
  const sab = new Uint8Array(new SharedArrayBuffer(j.data.length));
  sab.set(j.data);
  const t2 = process.hrtime.bigint();
  packNs = Math.min(packNs, Number(t1 - t0));
  sabNs = Math.min(sabNs, Number(t2 - t1));
}
console.log(`packJob ${(packNs / packSamples).toFixed(2)} ns per sample; SharedArrayBuffer alloc + copy of the same bytes ${(sabNs / packSamples).toFixed(2)} ns per sample`);
await pool.close();
await st.close();
rmSync(dir, { recursive: true, force: true });
