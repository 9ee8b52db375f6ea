import { isUtf8 } from "node:buffer";
import { compareByLabels, type Labels } from "@strata/core";
import type { FoldedGroup, RollupBatch, RollupFold, RollupSpec, SelectWindows, Series, SeriesStream } from "@strata/promql";
import { unmarshalBlock, type RawBlock } from "@strata/storage";
import type { BlockRefs } from "./block-refs.js";
import { SampleArena } from "./decode.js";
import { decodeInline, type DecodePool } from "./decode-pool.js";
import type { FoldResult, RollupResult } from "./rollup-job.js";

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
   * The first row of the series' blocks in the stream's BlockRefs (positions in the received
   * frames, no object per block), -1 once its batch is packed or decoded.
   */
  first: number;
  /** Samples in those blocks (batches are cut by it). */
  readonly samples: number;
  /**
   * labelsSortKey(name, i) of the series' canonical name and its position i in the entries
   * given to BlockSeriesStream, when it has one (the sort orders these); dropped once sorted
   * (100,000 keys are ~12 MiB).
   */
  sortKey?: string | undefined;
}

/**
 * A string whose order (JavaScript's, by UTF-16 code units) is the order of compareLabels over
 * the labels of this canonical metric name (`tenant | {uvarint len, name, uvarint len, value}*`):
 * each label's UTF-8 name and value, each followed by a zero byte, read as latin1. UTF-8 bytes
 * order as code points do (compareStrings' order) and a zero byte orders a string before its
 * extensions, so one string comparison replaces a comparison of label lists, character by
 * character. Undefined when a name or value holds a zero byte or invalid UTF-8 (which decodes
 * to U+FFFD): those sort by their labels.
 *
 * With `index` (< 2^24) the key ends with a zero byte and the index in three bytes: that never
 * changes the order of two different label sets (they part before it, or the shorter one's zero
 * byte meets a name's first byte, which is never zero), and a sorted key names its entry
 * (sortKeyIndex), so an array of keys sorts without a comparator call per comparison.
 */
export function labelsSortKey(name: Uint8Array, index?: number): string | undefined {
  return labelsSortKeyAt(name, 0, name.length, index);
}

/** labelsSortKey of the name in bytes [start, stop) of `buf` (no view cut for it). */
export function labelsSortKeyAt(buf: Uint8Array, start: number, stop: number, index?: number): string | undefined {
  if (stop - start < 8) return undefined;
  if (keyScratch.length < stop - start + 4) keyScratch = Buffer.allocUnsafe(Math.max(stop - start + 4, 2 * keyScratch.length));
  const name = buf;
  const out = keyScratch;
  let high = 0;
  let o = 0;
  let p = start + 8;
  while (p < stop) {
    for (let part = 0; part < 2; part++) {
      let len = 0;
      let shift = 0;
      for (;;) {
        if (p >= stop || shift > 28) return undefined;
        const b = name[p++]!;
        len += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
        shift += 7;
      }
      const end = p + len;
      if (end > stop) return undefined;
      for (; p < end; p++) {
        const b = name[p]!;
        if (b === 0) return undefined;
        high |= b;
        out[o++] = b;
      }
      out[o++] = 0;
    }
  }
  // ASCII is valid UTF-8: only names with other bytes need the check.
  if (high >= 0x80 && !isUtf8(out.subarray(0, o))) return undefined;
  if (index !== undefined) {
    out[o++] = 0;
    out[o++] = index >>> 16;
    out[o++] = (index >>> 8) & 0xff;
    out[o++] = index & 0xff;
  }
  return out.toString("latin1", 0, o);
}

/** labelsSortKey's buffer (the key is copied out of it as a string). */
let keyScratch = Buffer.allocUnsafe(256);

/** The index a key of labelsSortKey(name, index) ends with. */
export function sortKeyIndex(key: string): number {
  const n = key.length;
  return (key.charCodeAt(n - 3) << 16) | (key.charCodeAt(n - 2) << 8) | key.charCodeAt(n - 1);
}

/** Most entries whose positions fit in a sort key's three index bytes. */
const SORT_KEY_MAX_ENTRIES = 1 << 24;

/**
 * `entries` in label order: by their sort keys when every entry has one (an array of strings
 * sorts with V8's own comparison, no comparator call per pair), else by their labels.
 */
function sortEntries(entries: StreamEntry[]): StreamEntry[] {
  let keyed = entries.length <= SORT_KEY_MAX_ENTRIES;
  for (const e of entries) if (e.sortKey === undefined) keyed = false;
  if (!keyed) return entries.sort(compareByLabels);
  const keys = entries.map((e) => e.sortKey!);
  keys.sort();
  const sorted = new Array<StreamEntry>(entries.length);
  for (let i = 0; i < keys.length; i++) sorted[i] = entries[sortKeyIndex(keys[i]!)]!;
  return sorted;
}

const NO_VALUES = new Float64Array(0);
const NO_PRESENT = new Uint8Array(0);
const NO_GOT = new Uint32Array(0);

/** Blocks of their wire forms (each view's block starts at its byte 0). */
export function unmarshalBlocks(wire: readonly Uint8Array[]): RawBlock[] {
  return wire.map((w) => unmarshalBlock(w, 0).block);
}

interface Decoded {
  readonly series: Series[];
  readonly arena: SampleArena;
}

/**
 * A rollup job in flight: its result and the entries it covers (from `from` on), or for a
 * folding job their stream indexes (`series`).
 */
interface PendingRollup {
  readonly part: readonly StreamEntry[];
  readonly from: number;
  readonly series?: Uint32Array;
  readonly result: Promise<RollupResult>;
}

/** A fold on the workers (rollupFold): which worker owns each group, and the state's id there. */
interface WorkerFold {
  readonly fold: RollupFold;
  readonly owner: Int32Array;
  readonly qid: number;
  /** Each worker's spawn count when the fold began (see DecodePool.finishFold). */
  readonly generations: number[];
  /** The workers' groups, asked for once every job is posted. */
  finished: Promise<FoldResult>[] | undefined;
  delivered: boolean;
}

/** A fold goes to the workers only when no worker's groups hold more than this times its fair share of samples. */
const FOLD_MAX_SHARE = 1.25;

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
  private fold: WorkerFold | undefined;

  constructor(
    entries: StreamEntry[],
    private readonly refs: BlockRefs,
    private readonly minT: number,
    private readonly maxT: number,
    private readonly dedupIntervalMs: number,
    private readonly decoder: DecodePool | undefined,
    readonly warnings: readonly string[],
    batchSamples = STREAM_BATCH_SAMPLES,
    private readonly windows?: SelectWindows,
  ) {
    entries = sortEntries(entries);
    for (const e of entries) e.sortKey = undefined;
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
    if (this.decoder === undefined || this.fold !== undefined || this.nextIndex > 0 || this.spec !== undefined || !this.decoder.offloads(this.totalSamples)) return undefined;
    this.spec = spec;
    return () => this.nextRollup();
  }

  rollupFold(spec: RollupSpec, fold: () => RollupFold): (() => Promise<RollupBatch | undefined>) | undefined {
    const pool = this.decoder;
    if (pool === undefined || this.nextIndex > 0 || this.spec !== undefined || !pool.offloads(this.totalSamples)) return undefined;
    const f = fold();
    // Every series of a group goes to one worker (the fold's order is the stream's), groups
    // balanced by their samples: the largest free share first, in order of appearance.
    const perGroup = new Float64Array(f.groups);
    for (let i = 0; i < this.entries.length; i++) perGroup[f.groupOf[i]!]! += this.entries[i]!.samples;
    const load = new Float64Array(pool.size);
    const owner = new Int32Array(f.groups);
    for (let g = 0; g < f.groups; g++) {
      let w = 0;
      for (let k = 1; k < load.length; k++) if (load[k]! < load[w]!) w = k;
      owner[g] = w;
      load[w]! += perGroup[g]!;
    }
    // Too few groups to share the work out (`sum(rate(x))`: one group, one worker): the
    // workers roll up series by series and the event loop folds, as without rollupFold.
    let total = 0;
    let most = 0;
    for (const l of load) {
      total += l;
      most = Math.max(most, l);
    }
    if (most > (FOLD_MAX_SHARE * total) / pool.size) return undefined;
    const generations: number[] = [];
    for (let w = 0; w < pool.size; w++) generations.push(pool.generation(w));
    this.spec = spec;
    this.fold = { fold: f, owner, qid: pool.foldId(), generations, finished: undefined, delivered: false };
    return () => this.nextRollup();
  }

  /** Posts the next batches' folding jobs (one per worker and batch) until ROLLUP_JOBS_AHEAD per worker are in flight. */
  private postFoldRollups(spec: RollupSpec, pool: DecodePool, wf: WorkerFold): void {
    const { groupOf, op } = wf.fold;
    while (this.rollups.length < ROLLUP_JOBS_AHEAD * pool.size && this.nextIndex + 1 < this.bounds.length) {
      const batch = this.nextIndex++;
      const from = this.bounds[batch]!;
      const to = this.bounds[batch + 1]!;
      for (let w = 0; w < pool.size; w++) {
        let count = 0;
        for (let i = from; i < to; i++) if (wf.owner[groupOf[i]!] === w) count++;
        if (count === 0) continue;
        const series = new Uint32Array(count);
        const groups = new Int32Array(count);
        const first = new Uint32Array(count);
        const rows = new Int32Array(count);
        let j = 0;
        for (let i = from; i < to; i++) {
          if (wf.owner[groupOf[i]!] !== w) continue;
          const e = this.entries[i]!;
          series[j] = i;
          groups[j] = groupOf[i]!;
          rows[j] = e.first;
          first[j++] = i;
          e.first = -1;
        }
        const result = pool.rollupFoldJob(w, this.refs, rows, this.minT, this.maxT, this.dedupIntervalMs, spec, { qid: wf.qid, op, groupOf: groups, first });
        for (let k = 0; k < count; k++) this.refs.release(rows[k]!);
        result.catch(() => undefined);
        this.rollups.push({ part: this.entries, from: 0, series, result });
      }
    }
    if (this.nextIndex + 1 >= this.bounds.length && wf.finished === undefined) {
      // Every job is posted: each worker answers with its groups after them.
      wf.finished = wf.generations.map((gen, w) => pool.finishFold(w, wf.qid, gen));
      for (const p of wf.finished) p.catch(() => undefined);
    }
  }

  /** The last batch of a fold: every worker's groups. */
  private async foldedBatch(wf: WorkerFold): Promise<RollupBatch | undefined> {
    if (wf.delivered || wf.finished === undefined) return undefined;
    wf.delivered = true;
    const results = await Promise.all(wf.finished);
    if (this.closed) return undefined;
    const folded: FoldedGroup[] = [];
    for (const r of results) {
      const groups = r.groups!;
      const n = r.steps!;
      const values = r.values!;
      const present = r.present!;
      for (let i = 0; i < groups.length; i++) {
        folded.push({ group: groups[i]!, first: r.first![i]!, values: values.subarray(i * n, (i + 1) * n), present: present.subarray(i * n, (i + 1) * n) });
      }
    }
    return { labels: [], values: NO_VALUES, present: NO_PRESENT, got: NO_GOT, samples: 0, scanned: 0, folded };
  }

  /** Posts the next batches' rollup jobs until ROLLUP_JOBS_AHEAD per worker are in flight. */
  private postRollups(spec: RollupSpec, pool: DecodePool): void {
    while (this.rollups.length < ROLLUP_JOBS_AHEAD * pool.size && this.nextIndex + 1 < this.bounds.length) {
      const batch = this.nextIndex++;
      const part = this.entries.slice(this.bounds[batch]!, this.bounds[batch + 1]!);
      const rows = Int32Array.from(part, (e) => e.first);
      const samples = part.map((e) => e.samples);
      for (const e of part) e.first = -1;
      // The wire forms go to the worker as they are: it reads the block headers.
      const jobs = pool.rollupJobs(this.refs, rows, samples, this.minT, this.maxT, this.dedupIntervalMs, spec);
      for (const r of rows) this.refs.release(r);
      for (const j of jobs) {
        // Jobs posted ahead must not fail unobserved when the consumer stops before awaiting them.
        j.result.catch(() => undefined);
        this.rollups.push({ part, from: j.from, result: j.result });
      }
    }
  }

  private async nextRollup(): Promise<RollupBatch | undefined> {
    const spec = this.spec!;
    const pool = this.decoder!;
    const wf = this.fold;
    for (;;) {
      if (this.closed) return undefined;
      if (wf === undefined) this.postRollups(spec, pool);
      else this.postFoldRollups(spec, pool, wf);
      const head = this.rollups.shift();
      if (head === undefined) return wf === undefined ? undefined : this.foldedBatch(wf);
      const r = await head.result;
      if (this.closed) return undefined;
      const rows = r.rows!;
      if (rows === 0) continue;
      const index = r.index!;
      const labels: Labels[] = new Array<Labels>(rows);
      const series = head.series;
      if (series !== undefined) for (let i = 0; i < rows; i++) labels[i] = head.part[series[index[i]!]!]!.labels;
      else for (let i = 0; i < rows; i++) labels[i] = head.part[head.from + index[i]!]!.labels;
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
    const blocks = part.map((e) => unmarshalBlocks(this.refs.views(e.first)));
    for (const e of part) {
      this.refs.release(e.first);
      e.first = -1;
    }
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
    for (const e of this.entries) e.first = -1;
    this.refs.clear();
    // A fold that stopped early: its groups on the workers are not wanted any more.
    if (this.fold !== undefined && !this.fold.delivered) this.decoder?.dropFold(this.fold.qid);
  }
}
