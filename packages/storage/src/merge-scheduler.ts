import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ExecutionError } from "@strata/core";
import { TMP_PREFIX } from "./constants.js";
import type { Counters } from "./counters.js";
import type { DiskSpace } from "./disk-space.js";
import { fsyncDir, removeDir } from "./fsutil.js";
import { MergeAbortedError, mergeParts } from "./merge.js";
import { Part, PartWriter } from "./part.js";
import type { Partition } from "./partition.js";
import type { SeriesIndex } from "./series-index.js";
import type { Table } from "./table.js";
import { tsidMetricID } from "./tsid.js";

/** A background merge that failed is not retried before this long. */
const MERGE_RETRY_MS = 5000;

export interface MergeSchedulerOptions {
  /** Merge a partition's on-disk parts once there are more than this many. */
  readonly maxPartsPerPartition: number;
  /** At most this many parts go into one merge (bounded fan-in). */
  readonly mergeFanIn: number;
  /** Concurrent background merges. */
  readonly maxConcurrentMerges: number;
  /**
   * A partition's fresh parts (a disk flush's cheap layouts) are re-encoded once none has come
   * for this long (ms), even with no more than maxPartsPerPartition parts; 0: never.
   */
  readonly freshPartsMaxAgeMs: number;
}

export interface MergeSchedulerDeps {
  readonly table: Table;
  readonly index: SeriesIndex;
  readonly space: DiskSpace;
  readonly counters: Counters;
  readonly dedupIntervalMs: number;
  readonly opts: MergeSchedulerOptions;
  /** Samples before this are dropped by merges. */
  retentionMinT(): number;
  /** True once the store closed: running merges abort. */
  isClosed(): boolean;
  /** True while the store closes or is closed: no new merges start. */
  isStopping(): boolean;
  backgroundError(err: unknown): void;
  /** Called with the bytes of in-memory parts a disk flush dropped (see StorageOptions.onBuffersFreed). */
  buffersFreed(bytes: number): void;
}

/**
 * Writes parts: in-memory parts of a partition into one on-disk part (the disk flush), and
 * background merges of on-disk parts — which ones (pickMergeSources), how many at a time, and
 * the swap of the sources for the result in parts.json.
 */
export class MergeScheduler {
  private readonly running = new Set<Promise<void>>();
  /** Background merges wait until then after one failed (a full disk fails them all). */
  private retryAt = 0;
  /** When schedule() first saw each on-disk part with the disk flush's cheap layouts. */
  private readonly freshSeen = new WeakMap<Part, number>();

  constructor(private readonly d: MergeSchedulerDeps) {}

  /** Number of merges running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Resolves when one of the running merges settles. */
  waitAny(): Promise<void> {
    return Promise.race(this.running);
  }

  /** Resolves when every running merge settled. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /**
   * Starts background merges of partitions with more than maxPartsPerPartition free on-disk
   * parts, and of fresh parts that have stopped coming. A disk flush writes cheap layouts
   * (~3× the bytes of the full codecs, on disk, in the page cache and on the wire to select)
   * that only a merge re-encodes: without the second rule a partition whose ingest stopped
   * with up to maxPartsPerPartition such parts kept them for good.
   */
  schedule(): void {
    const now = Date.now();
    if (this.d.isStopping() || now < this.retryAt) return;
    for (const p of this.d.table.partitions.values()) {
      if (this.running.size >= this.d.opts.maxConcurrentMerges) return;
      const free = p.disk.filter((x) => !p.merging.has(x));
      if (free.length > this.d.opts.maxPartsPerPartition) {
        free.sort((a, b) => a.meta.rows - b.meta.rows);
        this.start(p, pickMergeSources(free, this.d.opts.mergeFanIn));
        continue;
      }
      const maxAge = this.d.opts.freshPartsMaxAgeMs;
      if (maxAge <= 0) continue;
      const fresh = free.filter((x) => x.meta.fastLayouts === true);
      if (fresh.length === 0) continue;
      let newest = 0;
      for (const x of fresh) {
        let seen = this.freshSeen.get(x);
        if (seen === undefined) this.freshSeen.set(x, (seen = now));
        newest = Math.max(newest, seen);
      }
      if (now - newest < maxAge) continue;
      fresh.sort((a, b) => a.meta.rows - b.meta.rows);
      this.d.counters.freshPartMerges++;
      this.start(p, fresh.slice(0, this.d.opts.mergeFanIn));
    }
  }

  /**
   * Merges p's on-disk parts down to one (in rounds of at most mergeFanIn parts); a lone part is
   * rewritten when it holds expired samples, deleted series or an older layout.
   */
  async mergePartition(p: Partition): Promise<void> {
    for (;;) {
      while (p.merging.size > 0) await Promise.race([...this.running, sleep(50)]);
      if (p.dropped || this.d.isClosed()) break;
      if (p.disk.length === 0) break;
      if (p.disk.length === 1 && !this.partNeedsRewrite(p.disk[0]!)) break;
      const sorted = [...p.disk].sort((a, b) => a.meta.rows - b.meta.rows);
      const errors = this.d.counters.mergeErrors;
      await this.start(p, sorted.slice(0, this.d.opts.mergeFanIn));
      // A failing merge would fail again: report instead of retrying forever.
      if (this.d.counters.mergeErrors !== errors) throw new ExecutionError(`forceMerge: merging partition ${p.name} failed (see background errors)`, "STRATA_INTERNAL");
    }
  }

  /** Writes in-memory parts of p as one on-disk part and lists it (index flushed first). */
  async flushInmemoryParts(p: Partition, sources: readonly Part[]): Promise<void> {
    // Fresh small parts keep cheap layouts: a background merge encodes them fully, with
    // more samples per block (encoding ~1 s of one series per block costs more than it saves).
    const part = await this.writeMergedPart(p, sources, false);
    try {
      await this.d.index.flush();
    } catch (err) {
      dropUnlisted(part);
      throw err;
    }
    await p.withLock(async () => {
      let next: Part[] | undefined;
      if (!p.dropped) {
        next = part === undefined ? p.disk : [...p.disk, part];
        // fsyncs off the event loop; the part becomes visible (and the sources go) together below.
        try {
          await writePartsJsonUnlessDropped(p, next);
        } catch (err) {
          // Not listed: the part goes, its rows stay in the in-memory sources (and the WAL).
          dropUnlisted(part);
          throw err;
        }
      }
      if (p.dropped) {
        // Retention dropped the partition meanwhile: the new part goes with it.
        if (part !== undefined) {
          part.removeOnFree = true;
          part.release();
        }
      } else {
        p.disk = next!;
      }
      let freed = 0;
      for (const s of sources) {
        const i = p.inmem.indexOf(s);
        if (i < 0) continue; // released by the retention drop already
        p.inmem.splice(i, 1);
        this.d.table.inmemoryBytes -= s.sizeBytes;
        freed += s.sizeBytes;
        s.release();
      }
      this.d.counters.inmemoryBytesFreed += freed;
      if (freed > 0) this.d.buffersFreed(freed);
    });
  }

  private start(p: Partition, sources: Part[]): Promise<void> {
    for (const s of sources) {
      s.acquire();
      p.merging.add(s);
    }
    const run = this.mergeInto(p, sources)
      .catch((err: unknown) => {
        if (!(err instanceof MergeAbortedError)) {
          this.d.counters.mergeErrors++;
          // The sources stay as they are; retrying at once would fail the same way.
          this.retryAt = Date.now() + MERGE_RETRY_MS;
          this.d.space.failed(err, "merging parts");
        }
        this.d.backgroundError(err);
      })
      .finally(() => {
        for (const s of sources) {
          p.merging.delete(s);
          s.release();
        }
        this.running.delete(run);
        this.schedule();
      });
    this.running.add(run);
    return run;
  }

  private async mergeInto(p: Partition, sources: Part[]): Promise<void> {
    const part = await this.writeMergedPart(p, sources);
    await p.withLock(async () => {
      if (!p.dropped) {
        const next = p.disk.filter((x) => !sources.includes(x));
        if (part !== undefined) next.push(part);
        // fsyncs off the event loop; the swap below is synchronous.
        try {
          await writePartsJsonUnlessDropped(p, next);
        } catch (err) {
          dropUnlisted(part);
          throw err;
        }
        if (!p.dropped) {
          for (const s of sources) {
            if (p.disk.includes(s)) {
              s.removeOnFree = true;
              s.release();
            }
          }
          p.disk = next;
          return;
        }
      }
      // Retention dropped the partition meanwhile: the new part goes with it.
      if (part !== undefined) {
        part.removeOnFree = true;
        part.release();
      }
    });
    this.d.counters.merges++;
  }

  /** Merges `sources` into a new on-disk part of partition p (undefined when nothing is left). */
  private async writeMergedPart(p: Partition, sources: readonly Part[], fullCodecs = true): Promise<Part | undefined> {
    const { table, counters } = this.d;
    const name = table.newPartName();
    const tmp = join(p.dir, TMP_PREFIX + name);
    // The partition directory is made by its first on-disk part (in-memory parts need none).
    mkdirSync(p.dir, { recursive: true });
    mkdirSync(tmp);
    let w: PartWriter;
    try {
      w = new PartWriter(tmp, this.d.dedupIntervalMs, fullCodecs);
    } catch (err) {
      removeDir(tmp);
      throw err;
    }
    let stats;
    try {
      stats = await mergeParts(sources, w, {
        dedupIntervalMs: this.d.dedupIntervalMs,
        minTimestamp: this.d.retentionMinT(),
        isDeleted: (id) => this.d.index.isDeleted(id),
        aborted: () => this.d.isClosed(),
      });
      await w.finishAsync();
    } catch (err) {
      w.abort();
      removeDir(tmp);
      throw err;
    }
    counters.mergeRowsIn += stats.rowsIn;
    counters.mergeBlocksCopied += stats.blocksCopied;
    counters.mergeBlocksDecoded += stats.blocksDecoded;
    counters.rowsDroppedDeleted += stats.rowsDeleted;
    if (stats.rowsOut === 0) {
      removeDir(tmp);
      return undefined;
    }
    const final = join(p.dir, name);
    try {
      renameSync(tmp, final);
      fsyncDir(p.dir);
      const part = Part.open(final, name, table.indexBlockCache);
      counters.mergeRowsOut += stats.rowsOut;
      return part;
    } catch (err) {
      removeDir(tmp);
      removeDir(final);
      throw err;
    }
  }

  /** A lone part still needs a rewrite when it holds expired samples or deleted series. */
  private partNeedsRewrite(part: Part): boolean {
    const dedup = this.d.dedupIntervalMs;
    if (part.meta.fastLayouts === true || part.meta.minT < this.d.retentionMinT()) return true;
    if (part.meta.dedupIntervalMs % Math.max(1, dedup) !== 0 || part.meta.dedupIntervalMs < dedup) return true;
    const c = part.cursor();
    let prev = -1;
    while (c.next()) {
      const id = tsidMetricID(c.header!.tsid, 0);
      if (id === prev) continue;
      prev = id;
      if (this.d.index.isDeleted(id)) return true;
    }
    return false;
  }
}

/**
 * The parts of one background merge, from `free` sorted by rows ascending: the smallest
 * `fanIn`, less the largest ones while a largest holds more rows than all the others together
 * (rewriting it would cost more than the merge gains: the result would not even be twice its
 * size). So fresh parts merge among themselves and big parts are rewritten only when they have
 * company of about their size — write amplification O(log n) instead of every merge rewriting
 * all data so far. Never fewer than the two smallest.
 */
export function pickMergeSources(free: readonly Part[], fanIn: number): Part[] {
  const pick = free.slice(0, fanIn);
  let rest = 0;
  for (const x of pick) rest += x.meta.rows;
  while (pick.length > 2) {
    const largest = pick[pick.length - 1]!.meta.rows;
    rest -= largest;
    if (largest <= rest) break;
    pick.pop();
  }
  return pick;
}

/** Removes a written part that did not make it into parts.json. */
function dropUnlisted(part: Part | undefined): void {
  if (part === undefined) return;
  part.removeOnFree = true;
  part.release();
}

/** p.writePartsJsonAsync; a failure because retention dropped p meanwhile is no error. */
async function writePartsJsonUnlessDropped(p: Partition, next: readonly Part[]): Promise<void> {
  try {
    await p.writePartsJsonAsync(next);
  } catch (err) {
    if (!p.dropped) throw err;
  }
}
