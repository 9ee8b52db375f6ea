import { compareByLabels, type Labels } from "@strata/core";
import type { RollupBatch, RollupSpec, SelectWindows, Series, SeriesStream } from "@strata/promql";
import { unmarshalBlock, type RawBlock } from "@strata/storage";
import { SampleArena } from "./decode.js";
import { decodeInline, type DecodePool } from "./decode-pool.js";
import type { RollupResult } from "./rollup-job.js";

/**
 * A cluster selection handed to the engine in batches (promql's SeriesStream): the compressed
 * blocks of every series are in memory already (they came off the storage streams), the decoded
 * samples only a batch at a time. Each batch gets its own arena, released when the engine asks
 * for the next one, and the batch after it is decoded ahead (on the decode workers when the pool
 * has any) while the engine folds the current one. A series' blocks are dropped once decoded, so
 * the compressed data shrinks as the query goes.
 *
 * When the pool has workers and the selection is wide enough, the engine may ask for a range
 * function instead (`rollup`): then the workers decode and roll up every batch, a few jobs ahead,
 * and only step values reach the event loop.
 *
 * Order: series sorted by labels (compareLabels), as the non-streaming select returns them.
 */

/** Samples per batch (8 MiB of timestamps and values). */
export const STREAM_BATCH_SAMPLES = 1 << 19;

export interface StreamEntry {
  readonly labels: Labels;
  /**
   * The series' blocks in storage's wire form (marshalBlock), views into the received frames:
   * one small view per block is held until its batch is decoded, not a RawBlock with its TSID
   * and two views (100 000 series held ~25 MiB more that way).
   */
  blocks: readonly Uint8Array[] | undefined;
  /** Samples in those blocks (batches are cut by it). */
  readonly samples: number;
}

/** Blocks of their wire forms (each view's block starts at its byte 0). */
export function unmarshalBlocks(wire: readonly Uint8Array[]): RawBlock[] {
  return wire.map((w) => unmarshalBlock(w, 0).block);
}

interface Decoded {
  readonly series: Series[];
  readonly arena: SampleArena;
}

/** A rollup job in flight: its result and the entries it covers (from `from` on). */
interface PendingRollup {
  readonly part: readonly StreamEntry[];
  readonly from: number;
  readonly result: Promise<RollupResult>;
}

/** Rollup jobs kept in flight per worker (the next ones are posted while the engine folds). */
const ROLLUP_JOBS_AHEAD = 2;

export class BlockSeriesStream implements SeriesStream {
  readonly labels: readonly Labels[];
  readonly heldSamples: number;
  private readonly entries: StreamEntry[];
  /** Batch boundaries: entries [bounds[i], bounds[i+1]). */
  private readonly bounds: number[] = [0];
  private nextIndex = 0;
  private current: SampleArena | undefined;
  private ahead: Promise<Decoded> | undefined;
  private closed = false;
  private readonly totalSamples: number;
  private spec: RollupSpec | undefined;
  private rollups: PendingRollup[] = [];

  constructor(
    entries: StreamEntry[],
    private readonly minT: number,
    private readonly maxT: number,
    private readonly dedupIntervalMs: number,
    private readonly decoder: DecodePool | undefined,
    readonly warnings: readonly string[],
    batchSamples = STREAM_BATCH_SAMPLES,
    private readonly windows?: SelectWindows,
  ) {
    entries.sort(compareByLabels);
    this.entries = entries;
    this.labels = entries.map((e) => e.labels);
    let acc = 0;
    let biggest = 0;
    let total = 0;
    for (let i = 0; i < entries.length; i++) {
      const n = entries[i]!.samples;
      total += n;
      if (acc > 0 && acc + n > batchSamples) {
        this.bounds.push(i);
        biggest = Math.max(biggest, acc);
        acc = 0;
      }
      acc += n;
    }
    biggest = Math.max(biggest, acc);
    if (entries.length > 0) this.bounds.push(entries.length);
    // The batch in hand and the one decoded ahead.
    this.heldSamples = 2 * biggest;
    this.totalSamples = total;
  }

  rollup(spec: RollupSpec): (() => Promise<RollupBatch | undefined>) | undefined {
    if (this.decoder === undefined || this.nextIndex > 0 || this.spec !== undefined || !this.decoder.offloads(this.totalSamples)) return undefined;
    this.spec = spec;
    return () => this.nextRollup();
  }

  /** Posts the next batches' rollup jobs until ROLLUP_JOBS_AHEAD per worker are in flight. */
  private postRollups(spec: RollupSpec, pool: DecodePool): void {
    while (this.rollups.length < ROLLUP_JOBS_AHEAD * pool.size && this.nextIndex + 1 < this.bounds.length) {
      const batch = this.nextIndex++;
      const part = this.entries.slice(this.bounds[batch]!, this.bounds[batch + 1]!);
      const blocks = part.map((e) => unmarshalBlocks(e.blocks ?? []));
      for (const e of part) e.blocks = undefined;
      for (const j of pool.rollupJobs(blocks, this.minT, this.maxT, this.dedupIntervalMs, spec)) {
        // Jobs posted ahead must not fail unobserved when the consumer stops before awaiting them.
        j.result.catch(() => undefined);
        this.rollups.push({ part, from: j.from, result: j.result });
      }
    }
  }

  private async nextRollup(): Promise<RollupBatch | undefined> {
    const spec = this.spec!;
    const pool = this.decoder!;
    for (;;) {
      if (this.closed) return undefined;
      this.postRollups(spec, pool);
      const head = this.rollups.shift();
      if (head === undefined) return undefined;
      const r = await head.result;
      if (this.closed) return undefined;
      const rows = r.rows!;
      if (rows === 0) continue;
      const index = r.index!;
      const labels: Labels[] = new Array<Labels>(rows);
      for (let i = 0; i < rows; i++) labels[i] = head.part[head.from + index[i]!]!.labels;
      return { labels, values: r.values!, present: r.present!, got: r.got!, samples: r.samples!, scanned: r.scanned! };
    }
  }

  async nextBatch(): Promise<readonly Series[] | undefined> {
    this.current?.release();
    this.current = undefined;
    for (;;) {
      if (this.closed) return undefined;
      const p = this.ahead ?? this.decode(this.nextIndex++);
      this.ahead = undefined;
      if (p === undefined) return undefined;
      const d = await p;
      if (this.closed) {
        d.arena.release();
        return undefined;
      }
      this.current = d.arena;
      this.ahead = this.decode(this.nextIndex++);
      // Decoding ahead must not fail unobserved when the consumer stops before awaiting it.
      this.ahead?.catch(() => undefined);
      if (d.series.length > 0) return d.series;
      d.arena.release();
      this.current = undefined;
    }
  }

  private decode(batch: number): Promise<Decoded> | undefined {
    if (batch + 1 >= this.bounds.length) return undefined;
    const from = this.bounds[batch]!;
    const to = this.bounds[batch + 1]!;
    const part = this.entries.slice(from, to);
    const blocks = part.map((e) => unmarshalBlocks(e.blocks ?? []));
    for (const e of part) e.blocks = undefined;
    const arena = new SampleArena();
    return decodeInline(blocks, this.minT, this.maxT, this.dedupIntervalMs, arena, this.windows).then(
      (decoded) => {
        const series: Series[] = [];
        for (let i = 0; i < part.length; i++) {
          const d = decoded[i]!;
          if (d.timestamps.length === 0) continue;
          series.push({ labels: part[i]!.labels, timestamps: d.timestamps, values: d.values });
        }
        return { series, arena };
      },
      (err: unknown) => {
        arena.release();
        throw err;
      },
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.current?.release();
    this.current = undefined;
    const ahead = this.ahead;
    this.ahead = undefined;
    void ahead?.then((d) => d.arena.release(), () => undefined);
    this.rollups = [];
    for (const e of this.entries) e.blocks = undefined;
  }
}
