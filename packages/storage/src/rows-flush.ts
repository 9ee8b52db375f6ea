import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { Counters } from "./counters.js";
import { deduplicateSamples, normalizeSamples } from "./dedup.js";
import { Part, PartWriter } from "./part.js";
import { monthOf, monthStart } from "./partition.js";
import { TSID_WORDS, type DrainedRows, type RowsBuffer } from "./rows-buffer.js";
import type { Table } from "./table.js";

/** A periodic rows flush works this long before it lets the event loop run. */
const ROWS_FLUSH_SLICE_MS = 5;

/** A rows-buffer drain being written into in-memory parts. */
interface RowsFlushJob {
  readonly drained: DrainedRows;
  readonly rowsTotal: number;
  /** Next position in drained.slots to write. */
  o: number;
  curStart: number;
  curEnd: number;
  curWriter: PartWriter | undefined;
  readonly writers: Map<number, PartWriter>;
}

export interface RowsFlushDeps {
  readonly rows: RowsBuffer;
  readonly table: Table;
  readonly dedupIntervalMs: number;
  readonly counters: Counters;
  /** Called once a flush pushed its parts (the store may start a disk flush). */
  partsPushed(): void;
  isClosed(): boolean;
  backgroundError(err: unknown): void;
}

/**
 * Turns the rows buffer into searchable in-memory parts, one per partition touched: at once
 * (`flush`), or in slices of at most ROWS_FLUSH_SLICE_MS with the event loop served in between
 * (`flushInSlices`, `flushSliced`). At most one drain is in progress; a synchronous flush
 * finishes it first (its rows were buffered earlier).
 */
export class RowsFlusher {
  private job: RowsFlushJob | undefined;

  constructor(private readonly d: RowsFlushDeps) {}

  /** Flushes every buffered row now (finishing a sliced flush still running first). */
  flush(): void {
    const running = this.job;
    if (running !== undefined) this.run(running, Infinity);
    if (this.d.rows.n === 0) return;
    this.run(this.start(), Infinity);
  }

  /**
   * The periodic flush, in slices (a second of rows is ~100 ms of work that would otherwise stall
   * every WriteRows_v1 call). The drained rows are searchable once the last slice pushed the
   * parts; anything that needs them earlier (a disk flush, close, a full buffer) runs the rest
   * synchronously through flush().
   */
  flushInSlices(): void {
    if (this.job !== undefined || this.d.rows.n === 0) return;
    const job = this.start();
    const step = (): void => {
      if (this.job !== job || this.d.isClosed()) return; // finished by flush() meanwhile
      try {
        if (!this.run(job, performance.now() + ROWS_FLUSH_SLICE_MS)) setImmediate(step);
      } catch (err) {
        this.d.backgroundError(err);
      }
    };
    step();
  }

  /**
   * Flushes in slices with the event loop served in between: resolves once every row buffered
   * when it was called is in an in-memory part (a running sliced flush is finished first, then
   * the buffer is drained once).
   */
  async flushSliced(): Promise<void> {
    for (let job = this.job; job !== undefined; job = this.job) {
      // Someone else's job (the periodic one): step it here too; flush() may also finish it.
      if (!this.run(job, performance.now() + ROWS_FLUSH_SLICE_MS)) await yieldToLoop();
    }
    if (this.d.rows.n === 0) return;
    const job = this.start();
    // Stop stepping once it is finished, here or by a synchronous flush() meanwhile.
    while (this.job === job && !this.run(job, performance.now() + ROWS_FLUSH_SLICE_MS)) await yieldToLoop();
  }

  private start(): RowsFlushJob {
    const rowsTotal = this.d.rows.n;
    const job: RowsFlushJob = {
      drained: this.d.rows.drain(),
      rowsTotal,
      o: 0,
      curStart: 0,
      curEnd: -1,
      curWriter: undefined,
      writers: new Map(),
    };
    this.job = job;
    return job;
  }

  /** Works on job until it is done (true: its parts are pushed) or past `deadline` (false). */
  private run(job: RowsFlushJob, deadline: number): boolean {
    try {
      if (!this.writeDrainedRows(job, deadline)) return false;
    } catch (err) {
      this.job = undefined; // its rows stay in the WAL only, like a failed flush before
      throw err;
    }
    this.job = undefined;
    const table = this.d.table;
    for (const [month, w] of job.writers) {
      const written = w.finish();
      const part = Part.fromMemory(table.newPartName(), written, table.indexBlockCache);
      table.partitionFor(month).inmem.push(part);
      table.inmemoryBytes += part.sizeBytes;
      this.d.counters.rowsFlushed += written.meta.rows;
    }
    this.d.counters.inmemoryFlushes++;
    this.d.partsPushed();
    return true;
  }

  /** Writes the drained series from job.o on; false when it stopped at the deadline. */
  private writeDrainedRows(job: RowsFlushJob, deadline: number): boolean {
    const { count, starts, tsids, ts, vals } = job.drained;
    const dedup = this.d.dedupIntervalMs;
    let curStart = job.curStart;
    let curEnd = job.curEnd;
    let curWriter = job.curWriter;
    let o = job.o;
    for (; o < count; o++) {
      if ((o & 255) === 255 && performance.now() > deadline) break;
      const a = starts[o]!;
      let b = starts[o + 1]!;
      // Common case: one row per scrape, in order — nothing to sort or deduplicate.
      let clean = dedup === 0;
      for (let i = a + 1; clean && i < b; i++) clean = ts[i]! > ts[i - 1]!;
      if (!clean) {
        const t = ts.subarray(a, b);
        const v = vals.subarray(a, b);
        let n = normalizeSamples(t, v, b - a);
        n = deduplicateSamples(t, v, n, dedup);
        b = a + n;
      }
      let i = a;
      while (i < b) {
        const t = ts[i]!;
        if (t < curStart || t > curEnd || curWriter === undefined) {
          const month = monthOf(t);
          curStart = monthStart(month);
          curEnd = monthStart(month + 1) - 1;
          curWriter = job.writers.get(month);
          if (curWriter === undefined) {
            curWriter = new PartWriter(undefined, dedup, false, { rows: job.rowsTotal, blocks: count });
            job.writers.set(month, curWriter);
          }
        }
        let j = b;
        if (ts[b - 1]! > curEnd) {
          j = i + 1;
          while (j < b && ts[j]! <= curEnd) j++;
        }
        curWriter.writeSamplesFast(tsids, o * TSID_WORDS, ts, vals, i, j);
        i = j;
      }
    }
    job.o = o;
    job.curStart = curStart;
    job.curEnd = curEnd;
    job.curWriter = curWriter;
    return o >= count;
  }
}
