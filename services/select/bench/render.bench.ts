// pnpm bench:render [--series=800] [--steps=361] [--rounds=8]
// Sample values as the JSON answer writes them: ns per value for formatPromValue, fastValue
// (the string path, still used by instant vectors) and writeValue (bytes into a buffer), and CPU
// ms for matrixChunks over series × steps per value class (best of --rounds, process.cpuUsage).
import { formatPromValue } from "@strata/promql";
import { fastValue, matrixChunks } from "../src/render.js";
import { VALUE_MAX_BYTES, writeValue } from "../src/value-bytes.js";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--?/, "").split("=") as [string, string]));
const SERIES = Number(args.get("series") ?? 800);
const STEPS = Number(args.get("steps") ?? 361);
const ROUNDS = Number(args.get("rounds") ?? 8);

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
