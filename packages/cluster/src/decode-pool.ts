import { Worker } from "node:worker_threads";
import { BadDataError, InternalError } from "@strata/core";
import type { RawBlock } from "@strata/storage";
import { decodeSeries, packJob, type DecodedSamples, type DecodeResult, type SampleArena } from "./decode.js";

/**
 * Decodes the blocks of a wide search on worker threads (issue 6: "decode blocks off the event
 * loop where it pays"): the series are split into one packed job per worker, balanced by sample
 * count, so a query over millions of samples decodes on every core while the event loop keeps
 * serving other requests. Small searches decode inline: below `minSamples` posting a job costs
 * more than it saves.
 */

interface Slot {
  worker: Worker;
  readonly pending: Map<number, { resolve: (r: DecodeResult) => void; reject: (e: Error) => void }>;
}

export interface DecodePoolOptions {
  /** Worker threads (0 decodes everything inline). */
  readonly workers: number;
  /** Searches with fewer samples than this decode inline. */
  readonly minSamples: number;
}

export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private rr = 0;
  private closed = false;
  /** Searches decoded on workers / inline (for /metrics). */
  offloaded = 0;
  inline = 0;

  constructor(private readonly opts: DecodePoolOptions) {
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(new URL("./decode-worker.js", import.meta.url)), pending: new Map() };
    const w = slot.worker;
    w.unref();
    w.on("message", (r: DecodeResult) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      p.resolve(r);
    });
    const fail = (err: Error) => {
      for (const p of slot.pending.values()) p.reject(new InternalError(`decode worker failed: ${err.message}`));
      slot.pending.clear();
      if (!this.closed) {
        // Replace the dead worker so later queries still have the whole pool.
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots[i] = this.spawn();
      }
    };
    w.on("error", fail);
    w.on("exit", (code) => {
      if (code !== 0 || slot.pending.size > 0) fail(new Error(`exited with code ${code}`));
    });
    return slot;
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Decoded samples of every series (same order), each within [minT, maxT]. Inline decodes take
   * their arrays from `arena`; worker results come in buffers of their own.
   */
  async decode(series: readonly (readonly RawBlock[])[], minT: number, maxT: number, dedupIntervalMs: number, arena: SampleArena): Promise<DecodedSamples[]> {
    let total = 0;
    for (const blocks of series) for (const b of blocks) total += b.count;
    const jobs = Math.min(this.slots.length, Math.ceil(total / Math.max(1, this.opts.minSamples)));
    if (jobs <= 1 || series.length < 2) {
      this.inline++;
      return decodeInline(series, minT, maxT, dedupIntervalMs, arena);
    }
    this.offloaded++;
    // Contiguous ranges of series with about total/jobs samples each.
    const ranges: [number, number][] = [];
    const per = total / jobs;
    let from = 0;
    let acc = 0;
    for (let i = 0; i < series.length; i++) {
      for (const b of series[i]!) acc += b.count;
      if (acc >= per * (ranges.length + 1) && ranges.length < jobs - 1) {
        ranges.push([from, i + 1]);
        from = i + 1;
      }
    }
    if (from < series.length) ranges.push([from, series.length]);
    const results = await Promise.all(ranges.map(([a, b]) => this.post(series.slice(a, b), minT, maxT, dedupIntervalMs)));
    const out: DecodedSamples[] = new Array<DecodedSamples>(series.length);
    ranges.forEach(([a], k) => {
      const r = results[k]!;
      const ts = r.timestamps!;
      const vs = r.values!;
      const w = r.windows!;
      for (let i = 0; i < w.length / 2; i++) out[a + i] = { timestamps: ts.subarray(w[2 * i]!, w[2 * i + 1]!), values: vs.subarray(w[2 * i]!, w[2 * i + 1]!) };
    });
    return out;
  }

  private post(series: readonly (readonly RawBlock[])[], minT: number, maxT: number, dedupIntervalMs: number): Promise<DecodeResult> {
    const id = this.nextId++;
    const job = packJob(id, series, minT, maxT, dedupIntervalMs);
    const slot = this.slots[this.rr++ % this.slots.length]!;
    return new Promise<DecodeResult>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage(job, [job.meta.buffer, job.data.buffer]);
    }).then((r) => {
      if (r.error !== undefined) throw new BadDataError(`cannot decode blocks from storage: ${r.error}`, "STRATA_CORRUPT_DATA");
      return r;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** Longest stretch (ms) inline decoding holds the event loop before letting other requests run. */
const INLINE_SLICE_MS = 10;

/**
 * Decodes on the event loop in slices of about INLINE_SLICE_MS: a wide search decoded inline
 * (no workers, e.g. on 2 cores) takes seconds, and /health and other queries must still answer.
 */
export async function decodeInline(
  series: readonly (readonly RawBlock[])[],
  minT: number,
  maxT: number,
  dedupIntervalMs: number,
  arena: SampleArena,
): Promise<DecodedSamples[]> {
  const out = new Array<DecodedSamples>(series.length);
  const slice = new EventLoopSlice();
  for (let i = 0; i < series.length; i++) {
    out[i] = decodeSeries(series[i]!, minT, maxT, dedupIntervalMs, arena);
    if (slice.due()) await slice.yield();
  }
  return out;
}

/** Lets the event loop run once a loop has held it for INLINE_SLICE_MS (checked every 64 calls). */
export class EventLoopSlice {
  private start = performance.now();
  private calls = 0;
  due(): boolean {
    return (++this.calls & 63) === 0 && performance.now() - this.start >= INLINE_SLICE_MS;
  }
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start = performance.now();
  }
}
