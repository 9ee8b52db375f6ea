import { snappyEncode } from "@strata/protocol";

/**
 * A node_exporter-like dataset as Prometheus remote write 1.0 bodies: per host the series a
 * Grafana "Node Exporter Full" dashboard reads (CPU seconds by cpu and mode, memory, network and
 * disk counters by device, filesystems, load, up, uname info) plus one application histogram
 * (`http_request_duration_seconds` with 11 buckets) for histogram_quantile. Values follow simple
 * deterministic random walks (seeded), counters only grow. Bodies are encoded by hand (no
 * object per sample) so that generating millions of samples stays fast.
 */

export interface DatasetOptions {
  readonly hosts: number;
  /** First sample time (ms); points at start + i·intervalMs. */
  readonly start: number;
  readonly points: number;
  readonly intervalMs: number;
  /** Roughly this many samples per body. */
  readonly samplesPerBody: number;
}

type Kind = "counter" | "gauge" | "const";

export interface SeriesDef {
  readonly labels: readonly (readonly [string, string])[];
  readonly kind: Kind;
  /** Start value and per-step scale of the walk. */
  readonly base: number;
  readonly scale: number;
}

const MODES = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"] as const;
const MODE_RATE: Record<(typeof MODES)[number], number> = { idle: 12, user: 2, system: 0.8, iowait: 0.2, irq: 0.01, softirq: 0.05, steal: 0, nice: 0.02 };
const LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"] as const;

/** The series of one host (about 90). */
export function hostSeries(host: number): SeriesDef[] {
  const instance = `host-${host}.example.com:9100`;
  const base: [string, string][] = [
    ["instance", instance],
    ["job", "node"],
  ];
  const out: SeriesDef[] = [];
  const add = (name: string, extra: [string, string][], kind: Kind, b: number, scale: number) =>
    out.push({ labels: [["__name__", name], ...base, ...extra], kind, base: b, scale });
  for (let cpu = 0; cpu < 4; cpu++) {
    for (const mode of MODES) add("node_cpu_seconds_total", [["cpu", String(cpu)], ["mode", mode]], "counter", 1e5 * (1 + host), MODE_RATE[mode]);
  }
  const memTotal = 16 * 2 ** 30;
  add("node_memory_MemTotal_bytes", [], "const", memTotal, 0);
  add("node_memory_MemAvailable_bytes", [], "gauge", memTotal * 0.6, 2 ** 20);
  add("node_memory_MemFree_bytes", [], "gauge", memTotal * 0.3, 2 ** 20);
  add("node_memory_Cached_bytes", [], "gauge", memTotal * 0.25, 2 ** 19);
  add("node_memory_Buffers_bytes", [], "gauge", memTotal * 0.02, 2 ** 16);
  for (const device of ["eth0", "eth1", "lo"]) {
    add("node_network_receive_bytes_total", [["device", device]], "counter", 1e9, 2e5);
    add("node_network_transmit_bytes_total", [["device", device]], "counter", 1e9, 1e5);
    add("node_network_receive_packets_total", [["device", device]], "counter", 1e7, 300);
  }
  for (const device of ["sda", "sdb"]) {
    add("node_disk_read_bytes_total", [["device", device]], "counter", 1e10, 5e4);
    add("node_disk_written_bytes_total", [["device", device]], "counter", 1e10, 1e5);
    add("node_disk_io_time_seconds_total", [["device", device]], "counter", 1e4, 0.5);
  }
  for (const mountpoint of ["/", "/home", "/var"]) {
    const fs: [string, string][] = [
      ["device", `/dev/sda${mountpoint.length}`],
      ["fstype", "ext4"],
      ["mountpoint", mountpoint],
    ];
    add("node_filesystem_size_bytes", fs, "const", 100 * 2 ** 30, 0);
    add("node_filesystem_avail_bytes", fs, "gauge", 40 * 2 ** 30, 2 ** 22);
  }
  add("node_load1", [], "gauge", 1.5, 0.1);
  add("node_load5", [], "gauge", 1.2, 0.05);
  add("node_load15", [], "gauge", 1.0, 0.02);
  add("node_context_switches_total", [], "counter", 1e8, 5000);
  add("node_boot_time_seconds", [], "const", 1.7e9, 0);
  add("node_uname_info", [["nodename", `host-${host}`], ["release", "6.1.0-13-amd64"]], "const", 1, 0);
  out.push({ labels: [["__name__", "up"], ...base], kind: "const", base: 1, scale: 0 });
  // An application histogram on the same host (cumulative buckets: each le grows faster).
  for (const handler of ["/api", "/metrics"]) {
    const app: [string, string][] = [
      ["handler", handler],
      ["instance", instance],
      ["job", "app"],
    ];
    LE.forEach((le, i) => out.push({ labels: [["__name__", "http_request_duration_seconds_bucket"], ...app, ["le", le]], kind: "counter", base: 0, scale: 2 + i * 3 }));
    out.push({ labels: [["__name__", "http_request_duration_seconds_count"], ...app], kind: "counter", base: 0, scale: 2 + (LE.length - 1) * 3 });
    out.push({ labels: [["__name__", "http_request_duration_seconds_sum"], ...app], kind: "counter", base: 0, scale: 5 });
  }
  return out;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const te = new TextEncoder();

function pushVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function lenField(out: number[], field: number, bytes: ArrayLike<number>): void {
  out.push((field << 3) | 2);
  pushVarint(out, bytes.length);
  for (let i = 0; i < bytes.length; i++) out.push(bytes[i]!);
}

export function encodeLabels(labels: readonly (readonly [string, string])[]): Uint8Array {
  const sorted = [...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: number[] = [];
  for (const [n, v] of sorted) {
    const l: number[] = [];
    lenField(l, 1, te.encode(n));
    lenField(l, 2, te.encode(v));
    lenField(out, 1, l);
  }
  return Uint8Array.from(out);
}

export interface Dataset {
  readonly bodies: Uint8Array[];
  readonly series: number;
  readonly samples: number;
}

/**
 * Appends remote write 1.0 TimeSeries (one sample each) into a growing buffer and cuts a
 * snappy-compressed body every `samplesPerBody` samples. Labels come pre-encoded
 * (encodeLabels), so a sample costs a few byte writes and no objects.
 */
export class BodyWriter {
  readonly bodies: Uint8Array[] = [];
  /** Uncompressed bytes of every body cut so far. */
  rawBytes = 0;
  private buf = new Uint8Array(1 << 20);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private inBody = 0;
  private readonly tmp: number[] = [];

  constructor(private readonly samplesPerBody: number) {}

  /** Appends TimeSeries{labels…, samples: Sample{1: double value, 2: int64 timestamp}}. */
  add(labels: Uint8Array, ts: number, value: number): void {
    const tmp = this.tmp;
    tmp.length = 0;
    pushVarint(tmp, ts);
    const sampleLen = 1 + 8 + 1 + tmp.length;
    const tsLen = labels.length + 2 + sampleLen;
    this.ensure(tsLen + 16);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = 0x0a;
    let n = tsLen;
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    buf[pos++] = n;
    buf.set(labels, pos);
    pos += labels.length;
    buf[pos++] = 0x12;
    buf[pos++] = sampleLen;
    buf[pos++] = 0x09;
    this.view.setFloat64(pos, value, true);
    pos += 8;
    buf[pos++] = 0x10;
    for (const b of tmp) buf[pos++] = b;
    this.pos = pos;
    if (++this.inBody >= this.samplesPerBody) this.cut();
  }

  /** Cuts the last, partial body; returns and forgets every body so far. */
  finish(): Uint8Array[] {
    this.cut();
    return this.bodies.splice(0);
  }

  private cut(): void {
    if (this.pos === 0) return;
    this.rawBytes += this.pos;
    this.bodies.push(snappyEncode(this.buf.subarray(0, this.pos)));
    this.pos = 0;
    this.inBody = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
    this.view = new DataView(b.buffer);
  }
}

/** Advances every series' value one interval along its walk (counters only grow). */
export function stepValues(defs: readonly SeriesDef[], state: Float64Array, rnd: () => number, intervalMs: number): void {
  for (let i = 0; i < defs.length; i++) {
    const d = defs[i]!;
    if (d.kind === "counter") state[i] = Math.round((state[i]! + d.scale * intervalMs / 1000 * (0.5 + rnd())) * 1000) / 1000;
    else if (d.kind === "gauge") state[i] = Math.max(0, Math.round((state[i]! + d.scale * (rnd() - 0.5)) * 100) / 100);
  }
}

/**
 * Encodes the dataset time-major (all series at t0, then t1, …) like scrapes arrive, about
 * `samplesPerBody` samples per request body.
 */
export function generateDataset(o: DatasetOptions): Dataset {
  const bodies: Uint8Array[] = [];
  const shape = datasetShape(o);
  for (const b of datasetBodies(o)) bodies.push(b);
  return { bodies, ...shape };
}

/** Series and sample counts of the dataset `o` describes, without generating it. */
export function datasetShape(o: DatasetOptions): { series: number; samples: number } {
  let series = 0;
  for (let h = 0; h < o.hosts; h++) series += hostSeries(h).length;
  return { series, samples: series * o.points };
}

/**
 * The same bodies as generateDataset, produced one at a time as they are pulled: a dataset of
 * tens of millions of samples never sits in memory whole.
 */
export function* datasetBodies(o: DatasetOptions): Generator<Uint8Array, void, undefined> {
  const defs: SeriesDef[] = [];
  for (let h = 0; h < o.hosts; h++) defs.push(...hostSeries(h));
  const labels = defs.map((d) => encodeLabels(d.labels));
  const rnd = mulberry32(42);
  const state = Float64Array.from(defs, (d) => d.base);
  const w = new BodyWriter(o.samplesPerBody);
  for (let p = 0; p < o.points; p++) {
    const ts = o.start + p * o.intervalMs;
    stepValues(defs, state, rnd, o.intervalMs);
    for (let i = 0; i < defs.length; i++) {
      w.add(labels[i]!, ts, state[i]!);
      if (w.bodies.length > 0) yield* w.bodies.splice(0);
    }
  }
  yield* w.finish();
}
