import { setTimeout as sleep } from "node:timers/promises";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { compareStrings, STALE_NAN_BYTES, type Labels, type Logger } from "@strata/core";
import { snappyEncode } from "@strata/encoding";
import { labelsKey } from "../alerting.js";
import type { OutputSample, SampleSink } from "../types.js";
import { HttpClient, type ClientOptions } from "./http.js";

/**
 * Rule results to -remoteWrite.url (Prometheus remote write 1.0, snappy): a bounded queue,
 * flushed in batches every flush interval or when a batch is full, retried with backoff while
 * the receiver fails with 5xx or is unreachable. Nothing is dropped silently: a full queue and
 * a 4xx answer are counted (strata_alert_remotewrite_dropped_samples_total) and logged.
 */

export interface RemoteWriteOptions {
  readonly url: string;
  readonly client?: ClientOptions;
  readonly maxQueueSize: number;
  readonly maxBatchSize: number;
  readonly flushIntervalMs: number;
  readonly retryMinIntervalMs: number;
  readonly retryMaxIntervalMs: number;
  /** Added to every series that lacks them (-external.label). */
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly log?: Logger;
}


/** Encodes a WriteRequest: samples of one series share a TimeSeries; order is kept. */
export function encodeWriteRequest(samples: readonly OutputSample[], externalLabels: Readonly<Record<string, string>> = {}): Uint8Array {
  const bySeries = new Map<string, { labels: Labels; idx: number[] }>();
  samples.forEach((s, i) => {
    const k = labelsKey(s.labels);
    let e = bySeries.get(k);
    if (e === undefined) bySeries.set(k, (e = { labels: s.labels, idx: [] }));
    e.idx.push(i);
  });
  const ext = Object.entries(externalLabels);
  const w = new BinaryWriter();
  for (const { labels, idx } of bySeries.values()) {
    w.tag(1, WireType.LengthDelimited).fork();
    let all: { name: string; value: string }[] = [...labels];
    if (ext.length > 0) {
      for (const [name, value] of ext) if (!all.some((l) => l.name === name)) all.push({ name, value });
      all = all.sort((a, b) => compareStrings(a.name, b.name));
    }
    for (const l of all) w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(l.name).tag(2, WireType.LengthDelimited).string(l.value).join();
    for (const i of idx) {
      const s = samples[i]!;
      w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.Bit64);
      if (s.stale) w.raw(STALE_NAN_BYTES);
      else w.double(s.v);
      w.tag(2, WireType.Varint).int64(s.t).join();
    }
    w.join();
  }
  return w.finish();
}

export class RemoteWriteQueue implements SampleSink {
  private queue: OutputSample[] = [];
  private readonly client: HttpClient;
  private closed = false;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;
  private readonly abort = new AbortController();
  sentSamples = 0;
  sentRequests = 0;
  failedRequests = 0;
  droppedSamples = 0;

  constructor(private readonly opts: RemoteWriteOptions) {
    this.client = new HttpClient(opts.client ?? {});
    this.loop = this.run();
  }

  get queued(): number {
    return this.queue.length;
  }

  write(samples: readonly OutputSample[]): void {
    const room = this.opts.maxQueueSize - this.queue.length;
    if (samples.length > room) {
      const dropped = samples.length - Math.max(0, room);
      this.droppedSamples += dropped;
      this.opts.log?.error({ dropped, maxQueueSize: this.opts.maxQueueSize }, "remote write queue is full: dropping rule results (raise -remoteWrite.maxQueueSize or fix -remoteWrite.url)");
      samples = samples.slice(0, Math.max(0, room));
    }
    for (const s of samples) this.queue.push(s);
    if (this.queue.length >= this.opts.maxBatchSize) this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.closed || this.queue.length > 0) {
      if (this.queue.length < this.opts.maxBatchSize && !this.closed) {
        await new Promise<void>((r) => {
          const t = setTimeout(r, this.opts.flushIntervalMs);
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
        this.wake = undefined;
      }
      if (this.queue.length === 0) continue;
      const batch = this.queue.slice(0, this.opts.maxBatchSize);
      if (!(await this.send(batch))) return;
      this.queue = this.queue.slice(batch.length);
    }
  }

  /** Sends until it succeeds (true), the batch is rejected (true, dropped), or close() aborts (false). */
  private async send(batch: readonly OutputSample[]): Promise<boolean> {
    const body = snappyEncode(encodeWriteRequest(batch, this.opts.externalLabels));
    let delay = this.opts.retryMinIntervalMs;
    for (;;) {
      try {
        const res = await this.client.request(this.opts.url, {
          method: "POST",
          headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
          body,
          signal: this.abort.signal,
        });
        this.sentRequests++;
        if (res.status >= 200 && res.status < 300) {
          this.sentSamples += batch.length;
          return true;
        }
        if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          this.droppedSamples += batch.length;
          this.opts.log?.error({ status: res.status, samples: batch.length, answer: res.body.toString("utf8").slice(0, 300) }, "remote write rejected the batch; dropping it");
          return true;
        }
        throw new Error(`${this.opts.url} answered ${res.status}: ${res.body.toString("utf8").slice(0, 300)}`);
      } catch (err) {
        if (this.abort.signal.aborted) return false;
        this.failedRequests++;
        this.opts.log?.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: delay, queued: this.queue.length }, "remote write failed; retrying");
        try {
          await sleep(delay, undefined, { signal: this.abort.signal });
        } catch {
          return false;
        }
        delay = Math.min(delay * 2, this.opts.retryMaxIntervalMs);
      }
    }
  }

  /** Flushes what is queued, giving up after `timeoutMs` (what is left is counted as dropped and logged). */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    this.wake?.();
    const t = setTimeout(() => this.abort.abort(), timeoutMs);
    await this.loop;
    clearTimeout(t);
    if (this.queue.length > 0) {
      this.droppedSamples += this.queue.length;
      this.opts.log?.error({ dropped: this.queue.length }, "remote write could not flush every rule result before shutdown");
      this.queue = [];
    }
  }
}
