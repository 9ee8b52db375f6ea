import { Worker } from "node:worker_threads";
import { BadDataError, InternalError } from "@strata/core";
import type { RawBlock } from "@strata/storage";
import type { RollupSpec, SelectWindows } from "@strata/promql";
import type { BlockRefs } from "./block-refs.js";
import { decodeSeries, packRefsJob, type DecodedSamples, type DecodeJob, type SampleArena } from "./decode.js";
import type { FoldControl, FoldResult, JobFold, RollupJob, RollupResult } from "./rollup-job.js";

/**
 * Worker threads for the rollups of wide searches (select's -search.maxWorkersPerQuery), as
 * vmselect decodes and rolls up series on every core: the series are split into packed jobs
 * balanced by sample count, and a worker decodes them and computes a range function over them
 * (`rollupJobs`: only step values come back), so a query over millions of samples uses every
 * core while the event loop keeps serving other requests. Small selections stay on the event
 * loop: below `minSamples` posting a job costs more than it saves. Plain selections decode on
 * the event loop (decodeInline): sending their samples back cost more than decoding them
 * (docs/benchmarks.md, query-par).
 *
 * Workers start on first use, not with the pool: each is a V8 isolate of ~10 MiB resident, and a
 * select that only serves plain selections, or none (e.g. during an ingest), should not pay for
 * them. One that has had no job for `idleMs` exits and is started again when a job needs it
 * (docs/benchmarks.md, ingest-rss, for the first query's start cost). A worker that dies fails
 * the jobs it held (InternalError naming the worker's exit) and its place is filled by the next
 * job; `close()` terminates the pool (select's SIGTERM shutdown).
 */

/** Young generation of a worker's heap (MiB). */
const WORKER_YOUNG_GEN_MB = 4;

interface Reply {
  readonly id: number;
  readonly error?: string;
  /** The job's data buffer, handed back for the next job (RollupResult.spare). */
  readonly spare?: ArrayBuffer;
}

/**
 * Job buffers kept for reuse, and how long after the last reply they are kept. Packing a job into
 * fresh memory cost the event loop more than the copy itself (page faults and zeroing: ~40 ms
 * against ~13 for 35,000 blocks of 680 bytes in a micro-benchmark): a worker hands each job's
 * buffer back with its result, and the next job is packed into it. A job is one batch (~1 MiB at
 * the 100k bench's 1.9 bytes a sample), so the spares hold a few MiB, for SPARE_KEEP_MS after the
 * last reply.
 */
const MAX_SPARES = 4; // the stream keeps 2 jobs per worker in flight: one comes back as the next is packed
const SPARE_KEEP_MS = 2000;
/** Job buffers are allocated in multiples of this (so that the next job, a little bigger, fits). */
const SPARE_ROUND = 1 << 20;

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>;
  /** Exit timer while the worker has no job. */
  idle: NodeJS.Timeout | undefined;
  /** Set when the pool ends the worker itself (idle or close), so its exit is no failure. */
  retired: boolean;
}

/** Default idle time (ms) after which a worker exits. */
const DEFAULT_IDLE_MS = 5 * 60_000;

export interface DecodePoolOptions {
  /** Worker threads (0 decodes everything inline). */
  readonly workers: number;
  /** Searches with fewer samples than this (per worker) stay on the event loop. */
  readonly minSamples: number;
  /** The worker script (default: decode-worker.js beside this module; tests give their own). */
  readonly workerUrl?: URL;
  /** A worker without a job for this long exits (default 5 minutes; 0: never). */
  readonly idleMs?: number;
}

export class DecodePool {
  /** One place per worker; undefined until a job needs it, and again after it exits. */
  private readonly slots: (Slot | undefined)[];
  /** Workers started so far in each place (a fold's state lives in one worker: a new one lost it). */
  private readonly generations: number[];
  private readonly idleMs: number;
  private nextId = 1;
  private closed = false;
  /** Job buffers handed back by the workers (keepSpare). */
  private readonly spares: ArrayBuffer[] = [];
  private sparesTimer: NodeJS.Timeout | undefined;
  /** Rollup jobs run on workers, workers that died, workers started (for /metrics). */
  rollupJobsRun = 0;
  restarts = 0;
  starts = 0;
  /** Jobs packed into a buffer a worker handed back. */
  buffersReused = 0;

  constructor(private readonly opts: DecodePoolOptions) {
    this.slots = new Array<Slot | undefined>(opts.workers).fill(undefined);
    this.generations = new Array<number>(opts.workers).fill(0);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  }

  private spawn(i: number): Slot {
    // A worker allocates few JS objects (a view per block and series); its arrays live outside
    // the heap. V8's default young generation (up to 48 MiB per isolate) only adds RSS here.
    const worker = new Worker(this.opts.workerUrl ?? new URL("./decode-worker.js", import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } });
    const slot: Slot = { worker, pending: new Map(), idle: undefined, retired: false };
    this.slots[i] = slot;
    this.generations[i]!++;
    this.starts++;
    worker.unref();
    worker.on("message", (r: Reply) => {
      if (r.spare !== undefined) this.keepSpare(r.spare);
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (slot.pending.size === 0) this.idleFrom(slot);
      p.resolve(r);
    });
    const fail = (err: Error) => {
      // "error" is followed by "exit": count the death once.
      if (this.vacate(slot) && !this.closed) this.restarts++;
      rejectAll(slot, `decode worker failed: ${err.message}`);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (slot.retired) return;
      if (code !== 0 || slot.pending.size > 0) fail(new Error(`exited with code ${code}`));
      else this.vacate(slot);
    });
    return slot;
  }

  /** Keeps a job buffer a worker handed back, for a while. */
  private keepSpare(b: ArrayBuffer): void {
    if (this.closed || this.spares.length >= MAX_SPARES) return;
    this.spares.push(b);
    clearTimeout(this.sparesTimer);
    this.sparesTimer = setTimeout(() => (this.spares.length = 0), SPARE_KEEP_MS);
    this.sparesTimer.unref();
  }

  /** A buffer of at least `bytes` bytes for a job: a spare one that fits, else a new one. */
  private readonly takeBuffer = (bytes: number): ArrayBuffer => {
    let best = -1;
    for (let i = 0; i < this.spares.length; i++) {
      const len = this.spares[i]!.byteLength;
      if (len >= bytes && (best < 0 || len < this.spares[best]!.byteLength)) best = i;
    }
    if (best < 0) return new ArrayBuffer(Math.ceil(Math.max(1, bytes) / SPARE_ROUND) * SPARE_ROUND);
    const b = this.spares[best]!;
    this.spares[best] = this.spares[this.spares.length - 1]!;
    this.spares.pop();
    this.buffersReused++;
    return b;
  };

  /** Frees the slot's place so the next job starts a new worker there (false: already freed). */
  private vacate(slot: Slot): boolean {
    clearTimeout(slot.idle);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots[i] = undefined;
    return i >= 0;
  }

  /** Arms the exit of a worker that has just run out of jobs. */
  private idleFrom(slot: Slot): void {
    if (this.idleMs <= 0) return;
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.pending.size > 0) return;
      slot.retired = true;
      this.vacate(slot);
      void slot.worker.terminate();
    }, this.idleMs);
    slot.idle.unref();
  }

  /** Workers the pool may run (-search.maxWorkersPerQuery). */
  get size(): number {
    return this.slots.length;
  }

  /** Workers running now. */
  get running(): number {
    let n = 0;
    for (const s of this.slots) if (s !== undefined) n++;
    return n;
  }

  /** Whether a selection of `samples` samples is worth computing on the workers. */
  offloads(samples: number): boolean {
    return this.slots.length > 0 && samples >= this.opts.minSamples;
  }

  /**
   * Posts `func` over these series (the chains of their blocks in `refs` from rows `firsts`,
   * `samples[i]` samples in series i) as one job per worker at most (about minSamples samples
   * or more each), and returns the jobs' results in series order, each with the index of its
   * first series. The workers unmarshal, decode and roll up; only step values come back.
   */
  rollupJobs(
    refs: BlockRefs,
    firsts: Int32Array,
    samples: readonly number[],
    minT: number,
    maxT: number,
    dedupIntervalMs: number,
    spec: RollupSpec,
  ): { readonly from: number; readonly result: Promise<RollupResult> }[] {
    let total = 0;
    for (const n of samples) total += n;
    const jobs = Math.max(1, Math.min(this.slots.length, Math.ceil(total / Math.max(1, this.opts.minSamples))));
    return splitRanges(samples, total, jobs).map(([a, b]) => {
      const packed = packRefsJob(this.nextId++, refs, firsts.subarray(a, b), minT, maxT, dedupIntervalMs, this.takeBuffer);
      const ends = new Float64Array(spec.ends);
      const job: RollupJob = { ...packed, func: spec.func, ends, range: spec.range };
      this.rollupJobsRun++;
      return { from: a, result: this.post<RollupResult>(job, [packed.meta.buffer, packed.data.buffer, ends.buffer]) };
    });
  }

  /** A new id for a fold's state on the workers. */
  foldId(): number {
    return this.nextId++;
  }

  /**
   * The start count of worker `w`, starting it if it is not running (a fold posted to it must
   * find the same worker at its end).
   */
  generation(w: number): number {
    if (this.closed || w >= this.slots.length) return -1;
    if (this.slots[w] === undefined) this.spawn(w);
    return this.generations[w]!;
  }

  /**
   * Posts a folding rollup job to worker `w` (SeriesStream.rollupFold: every series of a group
   * goes to the same worker, in order; messages to one worker run in the order posted).
   */
  rollupFoldJob(
    w: number,
    refs: BlockRefs,
    firsts: Int32Array,
    minT: number,
    maxT: number,
    dedupIntervalMs: number,
    spec: RollupSpec,
    fold: JobFold,
  ): Promise<RollupResult> {
    const packed = packRefsJob(this.nextId++, refs, firsts, minT, maxT, dedupIntervalMs, this.takeBuffer);
    const ends = new Float64Array(spec.ends);
    const job: RollupJob = { ...packed, func: spec.func, ends, range: spec.range, fold };
    this.rollupJobsRun++;
    return this.post<RollupResult>(job, [packed.meta.buffer, packed.data.buffer, ends.buffer, fold.groupOf.buffer, fold.first.buffer], w);
  }

  /**
   * The groups worker `w` folded for `qid` (after every job posted to it before); fails when
   * the worker was replaced since `generation` (its share of the fold died with it).
   */
  finishFold(w: number, qid: number, generation: number): Promise<FoldResult> {
    if (this.slots[w] === undefined || this.generations[w] !== generation) {
      return Promise.reject(new InternalError("decode worker failed: replaced while it folded a query's groups"));
    }
    const c: FoldControl = { id: this.nextId++, qid, control: "finish" };
    return this.post<FoldResult>(c, [], w);
  }

  /** Forgets `qid`'s fold on every running worker (a query that stopped early); nothing answers. */
  dropFold(qid: number): void {
    if (this.closed) return;
    const c: FoldControl = { id: this.nextId++, qid, control: "drop" };
    for (const s of this.slots) s?.worker.postMessage(c);
  }

  /** The worker for the next job: an idle one, else a new one in a free place, else the least busy. */
  private pick(): Slot {
    let best: Slot | undefined;
    let free = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (s === undefined) {
        if (free < 0) free = i;
      } else if (best === undefined || s.pending.size < best.pending.size) best = s;
    }
    if (best !== undefined && (best.pending.size === 0 || free < 0)) return best;
    return this.spawn(free);
  }

  /**
   * Sends a job to worker `to` (started if it is not running), or else to an idle worker,
   * starting one if none is idle and the pool has room.
   */
  private post<R extends Reply>(job: DecodeJob | FoldControl, transfer: ArrayBuffer[], to?: number): Promise<R> {
    if (this.closed || this.slots.length === 0) return Promise.reject(new InternalError("the decode worker pool is closed"));
    const slot = to === undefined ? this.pick() : (this.slots[to] ?? this.spawn(to));
    clearTimeout(slot.idle);
    return new Promise<Reply>((resolve, reject) => {
      slot.pending.set(job.id, { resolve, reject });
      slot.worker.postMessage(job, transfer);
    }).then((r) => {
      if (r.error !== undefined) throw new BadDataError(`cannot decode blocks from storage: ${r.error}`, "STRATA_CORRUPT_DATA");
      return r as R;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sparesTimer);
    this.spares.length = 0;
    const running = this.slots.filter((s): s is Slot => s !== undefined);
    for (const s of running) {
      s.retired = true;
      this.vacate(s);
      rejectAll(s, "the decode worker pool is closed");
    }
    await Promise.all(running.map((s) => s.worker.terminate()));
  }
}

function rejectAll(slot: Slot, message: string): void {
  for (const p of slot.pending.values()) p.reject(new InternalError(message));
  slot.pending.clear();
}

/** Contiguous ranges of series with about total/jobs samples each. */
function splitRanges(samples: readonly number[], total: number, jobs: number): [number, number][] {
  const ranges: [number, number][] = [];
  const per = total / jobs;
  let from = 0;
  let acc = 0;
  for (let i = 0; i < samples.length; i++) {
    acc += samples[i]!;
    if (acc >= per * (ranges.length + 1) && ranges.length < jobs - 1) {
      ranges.push([from, i + 1]);
      from = i + 1;
    }
  }
  if (from < samples.length) ranges.push([from, samples.length]);
  return ranges;
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
  windows?: SelectWindows,
): Promise<DecodedSamples[]> {
  const out = new Array<DecodedSamples>(series.length);
  const slice = new EventLoopSlice();
  for (let i = 0; i < series.length; i++) {
    out[i] = decodeSeries(series[i]!, minT, maxT, dedupIntervalMs, arena, windows);
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
