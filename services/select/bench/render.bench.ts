// pnpm bench:render [--series=800] [--steps=361] [--rounds=8] [--hosts=275]
// Sample values as the JSON answer writes them: ns per value for formatPromValue, fastValue
// (the string path, still used by instant vectors) and writeValue (bytes into a buffer), and CPU
// ms for matrixChunks over series × steps per value class (best of --rounds, process.cpuUsage).
// Then the answers of bench:query's binary-operator and raw queries at --shape=100k (a quarter
// of its 1099 hosts by default), with node_exporter's label sets, 241 steps each: CPU ms per
// answer and ns per point.
import { formatPromValue } from "@strata/promql";
import { matrixChunks } from "../src/matrix-bytes.js";
import { fastValue } from "../src/render.js";
import { VALUE_MAX_BYTES, writeValue } from "../src/value-bytes.js";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--?/, "").split("=") as [string, string]));
const SERIES = Number(args.get("series") ?? 800);
const STEPS = Number(args.get("steps") ?? 361);
const ROUNDS = Number(args.get("rounds") ?? 8);
const HOSTS = Number(args.get("hosts") ?? 275);

let seed = 42;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};

/** Value classes of a node_exporter dashboard. */
const CLASSES: Record<string, () => number> = {
  // rate(counter[5m]): an integer delta over 300 s — 16–17 significant digits mostly.
  "rates (delta/300)": () => Math.floor(rnd() * 5000) / 300,
  // 100 * (1 - idle rate): computed percentages.
  "percentages (computed)": () => 100 * (1 - Math.floor(rnd() * 3000) / 3000),
  // Stored gauges with a few decimals (load1, temperatures, 0.0123456-like ratios).
  "short decimals (≤ 7 digits)": () => Math.round(rnd() * 1e7) / 1e9,
  "bytes (integers)": () => Math.floor(rnd() * 2 ** 40),
};

function cpuMs(f: () => void): number {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / 1000);
  }
  return best;
}

const buf = Buffer.alloc(VALUE_MAX_BYTES * 4096);
console.log(`series ${SERIES} × steps ${STEPS}, best of ${ROUNDS} rounds`);
console.log("| values | formatPromValue ns | fastValue ns | writeValue ns | matrixChunks CPU ms |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const [name, gen] of Object.entries(CLASSES)) {
  const n = SERIES * STEPS;
  const vals = Float64Array.from({ length: n }, gen);
  let sink = 0;
  const perValue = (f: (v: number) => number) => (cpuMs(() => {
    for (let i = 0; i < n; i++) sink += f(vals[i]!);
  }) * 1e6) / n;
  const fmt = perValue((v) => formatPromValue(v).length);
  const fast = perValue((v) => fastValue(v).length);
  let pos = 0;
  const bytes = perValue((v) => {
    if (pos > buf.length - VALUE_MAX_BYTES) pos = 0;
    pos = writeValue(buf, pos, v);
    return pos;
  });
  const start = 1_700_000_000_000;
  const step = 60_000;
  const ts = Float64Array.from({ length: STEPS }, (_, i) => start + i * step);
  const series = Array.from({ length: SERIES }, (_, k) => ({
    labels: [{ name: "__name__", value: "node_cpu_seconds_total" }, { name: "instance", value: `host-${k}:9100` }],
    timestamps: ts,
    values: vals.subarray(k * STEPS, (k + 1) * STEPS),
  }));
  const matrix = cpuMs(() => {
    for (const c of matrixChunks(series, { start, step, count: STEPS })) sink += c.length;
  });
  console.log(`| ${name} | ${fmt.toFixed(1)} | ${fast.toFixed(1)} | ${bytes.toFixed(1)} | ${matrix.toFixed(1)} |`);
  if (sink === 0) console.log("");
}

// ---- dashboard answers ------------------------------------------------------------------------

/** A query's answer: label sets (the name dropped, as binary operators and rate do) and a value per step. */
interface AnswerShape {
  readonly perHost: readonly (readonly [string, string][])[];
  readonly value: (host: number, k: number, step: number) => number;
}

const counter = (base: number, scale: number) => (h: number, k: number, i: number) => {
  // The per-step increments of a counter over 5 m, divided by 300 as rate does.
  const a = base + (h * 7 + k) * 1013 + i * 15 * scale + ((h * 31 + k * 17 + i * 7) % 97) * scale / 13;
  const b = base + (h * 7 + k) * 1013 + (i + 20) * 15 * scale + ((h * 31 + k * 17 + i * 7 + 11) % 97) * scale / 13;
  return (b - a) / 300;
};
const one: readonly (readonly [string, string][])[] = [[]];
const ANSWERS: Record<string, AnswerShape> = {
  "CPU busy % by instance": { perHost: one, value: (h, k, i) => 100 * (1 - counter(1e5 * (1 + h), 12)(h, k, i) / 12.5) },
  "memory used": { perHost: one, value: (h, _k, i) => 8 * 2 ** 30 - Math.floor(8 * 2 ** 30 * 0.6 + ((h * 131 + i * 7919) % 4096) * 2 ** 10) },
  "memory used %": { perHost: one, value: (h, _k, i) => 100 * (1 - Math.floor(8 * 2 ** 30 * 0.6 + ((h * 131 + i * 7919) % 4096) * 2 ** 10) / (8 * 2 ** 30)) },
  "disk io time": { perHost: [[["device", "sda"]], [["device", "sdb"]]], value: counter(1e4, 0.5) },
  "filesystem used %": {
    perHost: ["/", "/home", "/var"].map((m) => [["device", `/dev/sda${m.length}`], ["fstype", "ext4"], ["mountpoint", m]]),
    value: (h, k, i) => 100 - (Math.floor(40 * 2 ** 30 + ((h * 17 + k * 5 + i * 131) % 2048) * 2 ** 12) / (100 * 2 ** 30)) * 100,
  },
  "load1 raw": { perHost: one, value: (h, _k, i) => Math.round((1.5 + ((h * 13 + i * 7) % 200) / 1000) * 1000) / 1000 },
  uptime: { perHost: one, value: (h, _k, i) => 1_765_130_400 + i * 15 - 1.7e9 - h },
};

console.log(`\nanswers at ${HOSTS} hosts × 241 steps (bench:query --shape=100k's queries), best of ${ROUNDS} rounds`);
console.log("| answer | series | bytes | matrixChunks CPU ms | ns per point |");
console.log("| --- | ---: | ---: | ---: | ---: |");
{
  const start = 1_765_130_400_000;
  const step = 15_000;
  const steps = 241;
  const ts = Float64Array.from({ length: steps }, (_, i) => start + i * step);
  let total = 0;
  let points = 0;
  for (const [name, shape] of Object.entries(ANSWERS)) {
    const series = [];
    for (let h = 0; h < HOSTS; h++) {
      shape.perHost.forEach((extra, k) => {
        const labels = [["instance", `host-${h}.example.com:9100`], ["job", "node"], ...extra].sort((a, b) => (a[0]! < b[0]! ? -1 : 1));
        series.push({ labels: labels.map(([n, v]) => ({ name: n!, value: v! })), timestamps: ts, values: Float64Array.from({ length: steps }, (_, i) => shape.value(h, k, i)) });
      });
    }
    let bytes = 0;
    const ms = cpuMs(() => {
      bytes = 0;
      for (const c of matrixChunks(series, { start, step, count: steps })) bytes += c.length;
    });
    total += ms;
    points += series.length * steps;
    console.log(`| ${name} | ${series.length} | ${bytes} | ${ms.toFixed(1)} | ${((ms * 1e6) / (series.length * steps)).toFixed(1)} |`);
  }
  console.log(`| **all** | | | ${total.toFixed(1)} | ${((total * 1e6) / points).toFixed(1)} |`);
}
