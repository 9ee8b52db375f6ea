import { readdirSync } from "node:fs";
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";
import { BadDataError } from "./errors.js";

/**
 * The self-metrics registry behind every service's /metrics. Metrics are named the
 * VictoriaMetrics way, labels inline: `registry.counter('strata_rows_received_total{type="promrw"}')`.
 * Rendering produces the Prometheus text exposition format (0.0.4), one HELP/TYPE per family.
 */

export type MetricType = "counter" | "gauge" | "histogram";

export class Counter {
  private v = 0;
  /** `fn`: a counter whose value the process already tracks (e.g. CPU time). */
  constructor(private readonly fn?: () => number) {}
  inc(): void {
    this.v++;
  }
  add(n: number): void {
    if (n < 0) throw new BadDataError(`counter cannot decrease (add ${n})`);
    this.v += n;
  }
  get(): number {
    return this.fn ? this.fn() : this.v;
  }
}

export class Gauge {
  private v = 0;
  constructor(private readonly fn?: () => number) {}
  set(n: number): void {
    this.v = n;
  }
  inc(n = 1): void {
    this.v += n;
  }
  dec(n = 1): void {
    this.v -= n;
  }
  get(): number {
    return this.fn ? this.fn() : this.v;
  }
}

/** Default buckets for durations in seconds. */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export class Histogram {
  readonly counts: Float64Array;
  private sumV = 0;
  private countV = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }
  observe(v: number): void {
    this.sumV += v;
    this.countV++;
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.counts[i]!++;
        break;
      }
    }
  }
  /** Observes the seconds elapsed since `startNs` (process.hrtime.bigint()). */
  observeSince(startNs: bigint): void {
    this.observe(Number(process.hrtime.bigint() - startNs) / 1e9);
  }
  get sum(): number {
    return this.sumV;
  }
  get count(): number {
    return this.countV;
  }
}

type Metric = Counter | Gauge | Histogram;

interface Entry {
  readonly family: string;
  readonly labels: string; // inside the braces, without them; "" when none
  readonly metric: Metric;
}

const NAME_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?$/;

function splitName(full: string): { family: string; labels: string } {
  const m = NAME_RE.exec(full);
  if (!m) throw new BadDataError(`invalid metric name ${JSON.stringify(full)}`, "STRATA_INVALID_METRIC_NAME");
  return { family: m[1]!, labels: m[3] ?? "" };
}

function fmt(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export class MetricsRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly help = new Map<string, string>();
  private readonly types = new Map<string, MetricType>();

  private getOrCreate<M extends Metric>(full: string, type: MetricType, make: () => M, help?: string): M {
    const existing = this.entries.get(full);
    if (existing) return existing.metric as M;
    const { family, labels } = splitName(full);
    const t = this.types.get(family);
    if (t !== undefined && t !== type) {
      throw new BadDataError(`metric family ${family} is a ${t}, not a ${type}`);
    }
    this.types.set(family, type);
    if (help !== undefined) this.help.set(family, help);
    const metric = make();
    this.entries.set(full, { family, labels, metric });
    return metric;
  }

  counter(name: string, help?: string, fn?: () => number): Counter {
    return this.getOrCreate(name, "counter", () => new Counter(fn), help);
  }

  gauge(name: string, help?: string, fn?: () => number): Gauge {
    return this.getOrCreate(name, "gauge", () => new Gauge(fn), help);
  }

  histogram(name: string, help?: string, buckets: readonly number[] = DEFAULT_SECONDS_BUCKETS): Histogram {
    return this.getOrCreate(name, "histogram", () => new Histogram(buckets), help);
  }

  /** Removes a metric (e.g. a gauge for a storage node that left the list). */
  unregister(name: string): void {
    this.entries.delete(name);
  }

  /** Prometheus text exposition format. */
  render(): string {
    const byFamily = new Map<string, Entry[]>();
    for (const e of this.entries.values()) {
      let list = byFamily.get(e.family);
      if (!list) byFamily.set(e.family, (list = []));
      list.push(e);
    }
    const out: string[] = [];
    for (const family of [...byFamily.keys()].sort()) {
      const list = byFamily.get(family)!.sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0));
      const help = this.help.get(family);
      if (help !== undefined) out.push(`# HELP ${family} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
      out.push(`# TYPE ${family} ${this.types.get(family)!}`);
      for (const e of list) {
        const m = e.metric;
        if (m instanceof Histogram) {
          const sep = e.labels === "" ? "" : `${e.labels},`;
          let cum = 0;
          for (let i = 0; i < m.buckets.length; i++) {
            cum += m.counts[i]!;
            out.push(`${family}_bucket{${sep}le="${fmt(m.buckets[i]!)}"} ${cum}`);
          }
          out.push(`${family}_bucket{${sep}le="+Inf"} ${m.count}`);
          const suffix = e.labels === "" ? "" : `{${e.labels}}`;
          out.push(`${family}_sum${suffix} ${fmt(m.sum)}`);
          out.push(`${family}_count${suffix} ${m.count}`);
        } else {
          out.push(`${family}${e.labels === "" ? "" : `{${e.labels}}`} ${fmt(m.get())}`);
        }
      }
    }
    return out.length === 0 ? "" : `${out.join("\n")}\n`;
  }
}

/** Escapes a label value for use inside an inline metric name. */
export function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

let eventLoopDelay: IntervalHistogram | undefined;

/** Registers the process_* and nodejs_* metrics every service exposes. */
export function registerProcessMetrics(r: MetricsRegistry): void {
  const startSeconds = Math.floor(Date.now() / 1000 - process.uptime());
  if (!eventLoopDelay) {
    eventLoopDelay = monitorEventLoopDelay({ resolution: 20 });
    eventLoopDelay.enable();
  }
  const eld = eventLoopDelay;
  r.gauge("process_start_time_seconds", "Start time of the process since the unix epoch in seconds.", () => startSeconds);
  r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", () => process.memoryUsage.rss());
  r.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  r.counter("process_cpu_user_seconds_total", "User CPU time spent in seconds.", () => process.cpuUsage().user / 1e6);
  r.counter("process_cpu_system_seconds_total", "System CPU time spent in seconds.", () => process.cpuUsage().system / 1e6);
  r.gauge("process_open_fds", "Number of open file descriptors.", () => {
    try {
      return readdirSync("/proc/self/fd").length;
    } catch {
      return 0;
    }
  });
  r.gauge("nodejs_heap_size_used_bytes", "V8 heap used in bytes.", () => process.memoryUsage().heapUsed);
  r.gauge("nodejs_heap_size_total_bytes", "V8 heap total in bytes.", () => process.memoryUsage().heapTotal);
  r.gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript objects, in bytes.", () => process.memoryUsage().external);
  r.gauge("nodejs_array_buffers_bytes", "Memory of ArrayBuffers and Buffers (part of nodejs_external_memory_bytes), in bytes.", () => process.memoryUsage().arrayBuffers);
  r.gauge("nodejs_eventloop_lag_p99_seconds", "99th percentile of event loop delay in seconds.", () => eld.percentile(99) / 1e9);
}
