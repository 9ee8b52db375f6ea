import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "@strata/core";

/**
 * Gives memory back after heavy queries. V8 collects only when JavaScript allocates: once the
 * queries end, an idle select never collects again, and the ArrayBuffers of their samples and
 * answers (outside the JS heap: a 61 MB heap with 2 GB RSS) stay resident. When no query has
 * run for `idleMs` and ArrayBuffers hold more than `minBytes`, the reclaimer trims the pools of
 * the decoders (`trim`) and runs one full collection, which frees those buffers to the
 * allocator.
 */
export interface ReclaimerOptions {
  readonly idleMs: number;
  readonly minBytes: number;
  /** Queries running now (nothing is reclaimed while any runs). */
  readonly inFlight: () => number;
  /** Drops pooled buffers kept for the next queries. */
  readonly trim: () => void;
  readonly log: Logger;
}

export class IdleReclaimer {
  private timer: NodeJS.Timeout | undefined;
  /** Collections run (for /metrics). */
  runs = 0;
  private readonly gc: () => void;

  constructor(private readonly opts: ReclaimerOptions) {
    setFlagsFromString("--expose-gc");
    this.gc = runInNewContext("gc") as () => void;
  }

  /** A query ended: reclaim once none has run for idleMs. */
  queryEnded(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), this.opts.idleMs);
    this.timer.unref();
  }

  private run(): void {
    this.timer = undefined;
    if (this.opts.inFlight() > 0) return;
    const before = process.memoryUsage();
    if (before.arrayBuffers < this.opts.minBytes) return;
    const t0 = performance.now();
    this.opts.trim();
    this.gc();
    this.runs++;
    const after = process.memoryUsage();
    this.opts.log.info(
      { ms: Math.round(performance.now() - t0), arrayBuffersBefore: before.arrayBuffers, arrayBuffersAfter: after.arrayBuffers, rssBefore: before.rss, rssAfter: after.rss },
      "idle: collected the buffers of finished queries",
    );
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
