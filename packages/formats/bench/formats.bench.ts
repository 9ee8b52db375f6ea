/**
 * pnpm bench:formats [--mb=100] [--only=prometheus,influx]
 *
 * Rows per CPU-second (one core) parsed for each ingestion format, on generated inputs of about `--mb`
 * megabytes each, fed in 64 KiB chunks like an HTTP body. Two sinks:
 *   parse   — a no-op RowSink: the parser alone;
 *   batch   — RowsBatchSink: + label sorting, validation, canonical metric-name encoding and
 *             rows batch v1 (what insert does before sharding).
 */
import { RowsBatchWriter, labelsFromRecord } from "@strata/core";
import { Relabeler } from "@strata/relabel";
import type { RowSink, StreamParser } from "@strata/formats";
import {
  CsvParser,
  GraphiteParser,
  InfluxParser,
  JsonLinesParser,
  OpenTsdbParser,
  PromTextParser,
  RowsBatchSink,
  parseCsvFormat,
} from "@strata/formats";

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--?/, "").split("=") as [string, string]));
const MB = Number(args.get("mb") ?? "100");
const only = args.get("only")?.split(",");
const TARGET = MB * 1024 * 1024;
const T0 = 1_700_000_000_000;

/** Deterministic pseudo-random numbers so every run parses the same bytes. */
let seed = 42;
const rnd = (): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const val = (): string => (rnd() < 0.3 ? String(Math.floor(rnd() * 100000)) : (rnd() * 1000).toFixed(3));

/** Builds about TARGET bytes by repeating `line(i)`; returns the bytes and the row count. */
function generate(line: (i: number) => string, rowsPerLine: number): { bytes: Buffer; rows: number } {
  const parts: string[] = [];
  let size = 0;
  let rows = 0;
  let block = "";
  for (let i = 0; size + block.length < TARGET; i++) {
    block += line(i);
    rows += rowsPerLine;
    if (block.length > 1 << 20) {
      parts.push(block);
      size += block.length;
      block = "";
    }
  }
  parts.push(block);
  return { bytes: Buffer.from(parts.join("")), rows };
}

const hosts = Array.from({ length: 200 }, (_, i) => `host-${i}.example.com`);
const labelsOf = (i: number) => ({ job: "node", instance: `${hosts[i % 200]}:9100`, cpu: String(i % 16), mode: ["user", "system", "idle", "iowait"][i % 4]! });

interface Case {
  readonly name: string;
  readonly make: (sink: RowSink) => StreamParser;
  readonly gen: () => { bytes: Buffer; rows: number };
  /** OpenTSDB bodies are one JSON document each: split the input into bodies of this size. */
  readonly bodies?: boolean;
}

const cases: Case[] = [
  {
    name: "prometheus",
    make: (s) => new PromTextParser(s, { defaultTimestampMs: T0 }),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        return `node_cpu_seconds_total{cpu="${l.cpu}",instance="${l.instance}",job="${l.job}",mode="${l.mode}"} ${val()} ${T0 + i}\n`;
      }, 1),
  },
  {
    name: "openmetrics",
    make: (s) => new PromTextParser(s, { openMetrics: true, defaultTimestampMs: T0 }),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        return `node_cpu_seconds_total{cpu="${l.cpu}",instance="${l.instance}",job="${l.job}",mode="${l.mode}"} ${val()} ${(T0 + i) / 1000}\n`;
      }, 1),
  },
  {
    name: "jsonline (100 samples/line)",
    make: (s) => new JsonLinesParser(s),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        const vs: string[] = [];
        const ts: number[] = [];
        for (let k = 0; k < 100; k++) {
          vs.push(val());
          ts.push(T0 + k * 15000);
        }
        return `{"metric":{"__name__":"node_cpu_seconds_total","cpu":"${l.cpu}","instance":"${l.instance}","job":"${l.job}","mode":"${l.mode}"},"values":[${vs.join(",")}],"timestamps":[${ts.join(",")}]}\n`;
      }, 100),
  },
  {
    name: "csv (2 metrics/line)",
    make: (s) => new CsvParser(s, { format: parseCsvFormat("1:label:instance,2:label:job,3:metric:ask,4:metric:bid,5:time:unix_ms") }),
    gen: () => generate((i) => `${hosts[i % 200]},node,${val()},${val()},${T0 + i}\n`, 2),
  },
  {
    name: "influx (2 fields/line)",
    make: (s) => new InfluxParser(s, { db: "telegraf" }),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        return `cpu,cpu=cpu${l.cpu},host=${hosts[i % 200]},mode=${l.mode} usage_user=${val()},usage_idle=${Math.floor(rnd() * 100)}i ${T0 + i}000000\n`;
      }, 2),
  },
  {
    name: "graphite",
    make: (s) => new GraphiteParser(s),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        return `servers.${hosts[i % 200]!.replace(/\./g, "_")}.cpu${l.cpu}.${l.mode};dc=eu;rack=r${i % 10} ${val()} ${Math.floor((T0 + i * 1000) / 1000)}\n`;
      }, 1),
  },
  {
    name: "opentsdb (8 MiB bodies)",
    bodies: true,
    make: (s) => new OpenTsdbParser(s),
    gen: () =>
      generate((i) => {
        const l = labelsOf(i);
        return `{"metric":"sys.cpu.${l.mode}","timestamp":${Math.floor(T0 / 1000) + i},"value":${val()},"tags":{"host":"${hosts[i % 200]}","cpu":"${l.cpu}"}},`;
      }, 1),
  },
];

class ResettingSink implements RowSink {
  private readonly inner: RowsBatchSink;
  constructor(private readonly writer: RowsBatchWriter) {
    this.inner = new RowsBatchSink({ tenant: { accountID: 0, projectID: 0 }, writer });
  }
  series(labels: Parameters<RowSink["series"]>[0]): void {
    this.inner.series(labels);
  }
  sample(ts: number, v: number): void {
    this.inner.sample(ts, v);
    if (this.writer.byteLength > 16 << 20) this.writer.reset();
  }
}

const CHUNK = 64 * 1024;

function runOnce(c: Case, bytes: Buffer, sink: RowSink): number {
  if (c.bodies) {
    // Split into JSON arrays of ≤ 8 MiB at object boundaries.
    let rows = 0;
    let start = 0;
    while (start < bytes.length) {
      let end = Math.min(start + (8 << 20), bytes.length);
      if (end < bytes.length) end = bytes.lastIndexOf("},{", end) + 1;
      const body = Buffer.concat([Buffer.from("["), bytes.subarray(start, bytes[end - 1] === 0x2c ? end - 1 : end), Buffer.from("]")]);
      const p = c.make(sink);
      for (let i = 0; i < body.length; i += CHUNK) p.write(body.subarray(i, i + CHUNK));
      p.end();
      rows += p.rowsRead;
      start = end + (bytes[end] === 0x2c ? 1 : 0);
    }
    return rows;
  }
  const p = c.make(sink);
  for (let i = 0; i < bytes.length; i += CHUNK) p.write(bytes.subarray(i, i + CHUNK));
  p.end();
  return p.rowsRead;
}

/**
 * CPU seconds used by this process (user + system). The machine is shared, so wall time
 * measures the neighbours; CPU time of a single-threaded loop is the per-core cost.
 */
const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const fmt = (n: number): string => n.toLocaleString("en-US", { maximumFractionDigits: 0 });

console.log(`formats benchmark: ~${MB} MB per format, 64 KiB chunks, node ${process.version}, one thread; rates per CPU-second`);
console.log("| format | input MB | rows | parse rows/s | parse MB/s | batch rows/s | batch MB/s |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
const noop: RowSink = { series: () => undefined, sample: () => undefined };
for (const c of cases) {
  if (only && !only.some((o) => c.name.startsWith(o))) continue;
  const { bytes, rows } = c.gen();
  const mb = bytes.length / (1024 * 1024);
  // Warm up on the first few MB so the JIT has compiled the hot paths.
  runOnce(c, bytes.subarray(0, Math.min(bytes.length, bytes.indexOf(c.bodies ? "},{" : "\n", 4 << 20) + 1 || bytes.length)), noop);
  let t = cpuSeconds();
  const n1 = runOnce(c, bytes, noop);
  const parseS = cpuSeconds() - t;
  const writer = new RowsBatchWriter(32 << 20);
  t = cpuSeconds();
  const n2 = runOnce(c, bytes, new ResettingSink(writer));
  const batchS = cpuSeconds() - t;
  if (n1 !== rows || n2 !== rows) throw new Error(`${c.name}: parsed ${n1}/${n2} rows, generated ${rows}`);
  console.log(`| ${c.name} | ${mb.toFixed(0)} | ${fmt(rows)} | ${fmt(rows / parseS)} | ${(mb / parseS).toFixed(1)} | ${fmt(rows / batchS)} | ${(mb / batchS).toFixed(1)} |`);
}

// Relabeling, as insert applies -relabelConfig to every series: a typical rule set.
if (!only || only.includes("relabel")) {
  const r = Relabeler.fromYaml(`
- action: drop
  source_labels: [__name__]
  regex: "go_.*|process_.*"
- source_labels: [instance]
  regex: '([^:]+):\\d+'
  target_label: host
- action: labeldrop
  regex: "tmp_.*"
- if: '{job="node", mode=~"idle|iowait"}'
  target_label: idle
  replacement: "1"
- action: hashmod
  source_labels: [instance]
  modulus: 4
  target_label: shard
`);
  const sets = Array.from({ length: 10_000 }, (_, i) => labelsFromRecord({ __name__: i % 10 === 0 ? "go_gc" : "node_cpu_seconds_total", ...labelsOf(i), tmp_x: "1" }));
  const N = 300_000;
  for (let i = 0; i < 20_000; i++) r.apply(sets[i % sets.length]!);
  const t = cpuSeconds();
  let kept = 0;
  for (let i = 0; i < N; i++) if (r.apply(sets[i % sets.length]!) !== null) kept++;
  const s = cpuSeconds() - t;
  console.log(`\nrelabel: 5 rules (drop, replace with capture, labeldrop, if: + replace, hashmod) on 6-label series: ${fmt(N / s)} series/s per CPU-second (${kept} of ${N} kept)`);
}
