import { compareByLabels, type Labels } from "@strata/core";
import type { Series, SeriesStream } from "@strata/promql";
import { unmarshalBlock, type RawBlock } from "@strata/storage";
import { SampleArena } from "./decode.js";
import { decodeInline, type DecodePool } from "./decode-pool.js";

/**
 * A cluster selection handed to the engine in batches (promql's SeriesStream): the compressed
 * blocks of every series are in memory already (they came off the storage streams), the decoded
 * samples only a batch at a time. Each batch gets its own arena, released when the engine asks
 * for the next one, and the batch after it is decoded ahead (on the decode workers when the pool
 * has any) while the engine folds the current one. A series' blocks are dropped once decoded, so
 * the compressed data shrinks as the query goes.
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

  constructor(
    entries: StreamEntry[],
    private readonly minT: number,
    private readonly maxT: number,
    private readonly dedupIntervalMs: number,
    private readonly decoder: DecodePool | undefined,
    readonly warnings: readonly string[],
    batchSamples = STREAM_BATCH_SAMPLES,
  ) {
    entries.sort(compareByLabels);
    this.entries = entries;
    this.labels = entries.map((e) => e.labels);
    let acc = 0;
    let biggest = 0;
    for (let i = 0; i < entries.length; i++) {
      const n = entries[i]!.samples;
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
    const run = this.decoder
      ? this.decoder.decode(blocks, this.minT, this.maxT, this.dedupIntervalMs, arena)
      : decodeInline(blocks, this.minT, this.maxT, this.dedupIntervalMs, arena);
    return run.then(
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
    for (const e of this.entries) e.blocks = undefined;
  }
}
