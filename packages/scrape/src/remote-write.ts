import { createHash } from "node:crypto";
import { join } from "node:path";
import { labelValue, type Label, type Labels, type Logger, type MetricsRegistry } from "@strata/core";
import { snappyEncode } from "@strata/protocol";
import type { Relabeler } from "@strata/relabel";
import type { TlsConfig } from "./config.js";
import { WriteRequestV1Builder, WriteRequestV2Builder, encodeLabelsV1 } from "./encode.js";
import { DurableQueue } from "./queue.js";
import { RemoteWriteSender, redact } from "./sender.js";
import type { SeriesCache } from "./series-cache.js";

/**
 * Remote write to every -remoteWrite.url: each URL gets all data, through its own durable
 * queue under `<tmpDataPath>/persistent-queue/<n>_<hash of the URL>/` and its own sender, so
 * one URL being down does not hold the others back. The global relabeler runs first, then the
 * URL's own one (-remoteWrite.urlRelabelConfig).
 */

export interface RemoteWriteTarget {
  readonly url: string;
  /** -remoteWrite.urlRelabelConfig of this URL. */
  readonly relabel?: Relabeler | undefined;
  /** Extra request headers (e.g. Authorization from a prometheus.yml remote_write entry). */
  readonly headers?: Readonly<Record<string, string>>;
  /** TLS towards an https:// URL. */
  readonly tls?: TlsConfig;
}

export interface FanoutOptions {
  readonly targets: readonly RemoteWriteTarget[];
  readonly tmpDataPath: string;
  readonly maxDiskUsagePerURL: number;
  readonly version: 1 | 2;
  readonly relabel?: Relabeler | undefined;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly sendTimeoutMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly maxBlockBytes?: number;
  readonly fsyncIntervalMs?: number;
  /** See SenderOptions.flushIntervalMs. */
  readonly flushIntervalMs?: number;
}

/**
 * A series prepared for every URL: its 1.0 label bytes (encodeLabelsV1; a 2.0 request takes
 * them too), null where that URL's relabeling dropped it; URLs with the same form share one
 * array. Reusable across batches; scrape loops copy it into their SeriesCache arena.
 */
export interface SeriesRef {
  readonly perUrl: readonly (Uint8Array | null)[];
}

interface Url {
  readonly target: RemoteWriteTarget;
  readonly queue: DurableQueue;
  readonly sender: RemoteWriteSender;
  readonly v1: WriteRequestV1Builder;
  readonly v2: WriteRequestV2Builder;
  samples: number;
}

export class RemoteWriteFanout {
  private readonly urls: Url[];
  /** Samples dropped by relabeling before any URL. */
  droppedByRelabel = 0;

  constructor(private readonly o: FanoutOptions) {
    this.urls = o.targets.map((target, i) => {
      const id = createHash("sha256").update(target.url).digest("hex").slice(0, 16);
      const queue = new DurableQueue({
        dir: join(o.tmpDataPath, "persistent-queue", `${i + 1}_${id}`),
        maxBytes: o.maxDiskUsagePerURL,
        ...(o.fsyncIntervalMs !== undefined ? { fsyncIntervalMs: o.fsyncIntervalMs } : {}),
      });
      if (queue.tornBytes > 0) o.log.warn({ url: redact(target.url), bytes: queue.tornBytes }, "cut a torn block off the end of the queue (written while the process died)");
      const sender = new RemoteWriteSender({
        url: target.url,
        queue,
        version: o.version,
        log: o.log,
        ...(target.headers !== undefined ? { headers: target.headers } : {}),
        ...(target.tls !== undefined ? { tls: target.tls } : {}),
        ...(o.sendTimeoutMs !== undefined ? { sendTimeoutMs: o.sendTimeoutMs } : {}),
        ...(o.retryMinMs !== undefined ? { retryMinMs: o.retryMinMs } : {}),
        ...(o.retryMaxMs !== undefined ? { retryMaxMs: o.retryMaxMs } : {}),
        ...(o.maxBlockBytes !== undefined ? { maxBlockBytes: o.maxBlockBytes } : {}),
        ...(o.flushIntervalMs !== undefined ? { flushIntervalMs: o.flushIntervalMs } : {}),
      });
      return { target, queue, sender, v1: new WriteRequestV1Builder(), v2: new WriteRequestV2Builder(), samples: 0 };
    });
    this.registerMetrics(o.metrics);
  }

  /** Prepares a series (sorted labels) for all URLs; null when the global relabeling drops it. */
  ref(labels: Labels): SeriesRef | null {
    const global = this.o.relabel ? this.o.relabel.apply(labels) : labels;
    if (global === null || global.length === 0) return null;
    const form = encodeLabelsV1;
    const perUrl: (Uint8Array | null)[] = [];
    let shared: Uint8Array | undefined;
    for (const u of this.urls) {
      if (u.target.relabel === undefined || u.target.relabel.length === 0) {
        shared ??= form(global);
        perUrl.push(shared);
        continue;
      }
      const l = u.target.relabel.apply(global);
      perUrl.push(l === null || l.length === 0 ? null : form(l));
    }
    return { perUrl };
  }

  /** How many remote write URLs a series is prepared for (SeriesCache's `forms`). */
  get urlCount(): number {
    return this.urls.length;
  }

  /** Adds a sample to the batch being built; `flush` appends it to every queue. Synchronous use only. */
  add(ref: SeriesRef, timestampMs: number, value: number): void {
    const v2 = this.o.version === 2;
    for (let i = 0; i < this.urls.length; i++) {
      const p = ref.perUrl[i];
      if (p === null || p === undefined) continue;
      const u = this.urls[i]!;
      if (v2) u.v2.add(p, timestampMs, value);
      else u.v1.add(p, timestampMs, value);
    }
  }

  /** add() for entry `id` of a scrape loop's SeriesCache (made with forms = urlCount). */
  addCached(c: SeriesCache, id: number, timestampMs: number, value: number): void {
    const v2 = this.o.version === 2;
    const n = this.urls.length;
    const base = id * n;
    const off = c.off[id]!;
    for (let i = 0; i < n; i++) {
      const len = c.labLen[base + i]!;
      if (len < 0) continue;
      const u = this.urls[i]!;
      const at = off + c.labRel[base + i]!;
      const stored = c.labStored[base + i]!;
      const b = v2 ? u.v2 : u.v1;
      if (stored === len) b.addRange(c.arena, at, len, timestampMs, value);
      else b.addExpanded(c.arena, at, stored, len, c.fields, timestampMs, value);
    }
  }

  /** Writes the batch to every URL's queue file; when it returns, the samples are durable against a crash of the process. */
  flush(): void {
    for (const u of this.urls) {
      const n = this.o.version === 2 ? u.v2.samples : u.v1.samples;
      if (n === 0) continue;
      const raw = this.o.version === 2 ? u.v2.finish() : u.v1.view();
      u.queue.append(snappyEncode(raw));
      u.samples += n;
      u.v1.reset();
      u.v2.reset();
    }
  }

  /** Drops a batch being built (e.g. a request that turned out invalid). */
  discard(): void {
    for (const u of this.urls) {
      u.v1.reset();
      u.v2.reset();
    }
  }

  /** Writes labelled samples (push receivers): convenience over ref/add/flush. */
  writeSeries(series: Iterable<{ labels: Labels; timestampMs: number; value: number }>): number {
    let n = 0;
    for (const s of series) {
      const r = this.ref(s.labels);
      if (r === null) {
        this.droppedByRelabel++;
        continue;
      }
      this.add(r, s.timestampMs, s.value);
      n++;
    }
    this.flush();
    return n;
  }

  pendingBytes(): number {
    return this.urls.reduce((a, u) => a + u.queue.pendingBytes, 0);
  }

  /** Stops the senders and closes the queues (their data stays on disk for the next start). */
  async close(): Promise<void> {
    await Promise.all(this.urls.map((u) => u.sender.stop()));
    for (const u of this.urls) u.queue.close();
  }

  private registerMetrics(m: MetricsRegistry): void {
    this.urls.forEach((u, i) => {
      const l = `url="${labelValue(`${i + 1}:${redact(u.target.url)}`)}"`;
      m.gauge(`strata_agent_remotewrite_pending_bytes{${l}}`, "Bytes queued on disk and not yet acknowledged by the remote write URL.", () => u.queue.pendingBytes);
      m.gauge(`strata_agent_remotewrite_disk_bytes{${l}}`, "Bytes of the URL's queue files on disk (bounded by -remoteWrite.maxDiskUsagePerURL).", () => u.queue.diskBytes);
      m.counter(`strata_agent_remotewrite_samples_queued_total{${l}}`, "Samples written to the URL's queue.", () => u.samples);
      m.counter(`strata_agent_remotewrite_blocks_sent_total{${l}}`, "Queue blocks acknowledged by the remote write URL.", () => u.sender.sentBlocks);
      m.counter(`strata_agent_remotewrite_bytes_sent_total{${l}}`, "Compressed request bytes acknowledged by the remote write URL.", () => u.sender.sentBytes);
      m.counter(`strata_agent_remotewrite_retries_total{${l}}`, "Failed sends that are retried (429, 5xx, network errors).", () => u.sender.retries);
      m.counter(`strata_agent_remotewrite_blocks_rejected_total{${l}}`, "Blocks the URL refused as bad data (400, 409, 413, 415, 422) and that were dropped.", () => u.sender.droppedBlocks);
      m.counter(`strata_agent_remotewrite_blocks_dropped_total{${l}}`, "Unsent blocks deleted because the queue reached -remoteWrite.maxDiskUsagePerURL.", () => u.queue.droppedBlocks);
      m.counter(`strata_agent_remotewrite_bytes_dropped_total{${l}}`, "Unsent bytes deleted because the queue reached -remoteWrite.maxDiskUsagePerURL.", () => u.queue.droppedBytes);
    });
  }
}

/** Labels sorted by name with empty values removed: what `ref` takes. */
export function sortLabels(labels: Label[]): Label[] {
  return labels.filter((l) => l.value !== "").sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
