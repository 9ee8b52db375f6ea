import { bitsView, finishFold, foldLengths, foldSeries, isStaleAt, rollupSeries, type FoldAcc, type RollupMeter, type RollupSpec } from "@strata/promql";
import { decodeSeriesInto, forEachPackedSeries, windowsOfEnds, type DecodeJob } from "./decode.js";

/**
 * A range function computed on a worker beside the decoding (SeriesStream.rollup): the packed
 * blocks of a run of series (decode.ts packWireJob) plus the function and its windows. The worker
 * decodes each series into reused scratch arrays, drops stale markers, applies promql's
 * `rollupSeries` (the engine's own kernels, so the values are bit-identical) and sends back only
 * the step values: the samples never leave the worker.
 *
 * With `fold` (SeriesStream.rollupFold: a folding aggregation over the rollup) the step values
 * do not leave the worker either: it folds them with promql's `foldSeries` into its groups'
 * accumulators, kept across the query's jobs (every series of a group goes to one worker, in
 * stream order), and hands the accumulators over when asked (FoldControl `finish`).
 */
export interface RollupJob extends DecodeJob {
  readonly func: string;
  readonly ends: Float64Array<ArrayBuffer>;
  readonly range: number;
  readonly fold?: JobFold;
}

/** The fold of a job's series: their groups, and their positions in the stream. */
export interface JobFold {
  /** The query's fold (the state it accumulates into on this worker). */
  readonly qid: number;
  readonly op: string;
  /** Group of each series of the job. */
  readonly groupOf: Int32Array<ArrayBuffer>;
  /** Stream index of each series of the job (a group reports its first one with output). */
  readonly first: Uint32Array<ArrayBuffer>;
}

/** Ends a fold on a worker: `finish` answers with its groups (FoldResult) and forgets them; `drop` only forgets. */
export interface FoldControl {
  readonly id: number;
  readonly qid: number;
  readonly control: "finish" | "drop";
}

/**
 * A worker's folded groups of one query, finished (promql's finishFold) on the worker: group i
 * is `groups[i]`, its first series `first[i]`, its step values values[i*steps ..] and presence
 * present[i*steps ..]. Flat arrays, so that handing 6,000 groups over costs four transfers, not
 * a structured clone of 6,000 objects and 24,000 typed-array views.
 */
export interface FoldResult {
  readonly id: number;
  readonly groups?: Int32Array<ArrayBuffer>;
  readonly first?: Uint32Array<ArrayBuffer>;
  readonly steps?: number;
  readonly values?: Float64Array<ArrayBuffer>;
  readonly present?: Uint8Array<ArrayBuffer>;
  readonly error?: string;
}

/**
 * Rows are the job's series that had samples in the window, in order: `index[i]` is row i's
 * series (its position in the job), its step values values[i*steps ..], present likewise, got[i]
 * its steps with output. `samples`/`scanned` as promql's RollupBatch counts them. A folding
 * job returns no values (empty arrays).
 */
export interface RollupResult {
  readonly id: number;
  readonly rows?: number;
  readonly index?: Uint32Array<ArrayBuffer>;
  readonly values?: Float64Array<ArrayBuffer>;
  readonly present?: Uint8Array<ArrayBuffer>;
  readonly got?: Uint32Array<ArrayBuffer>;
  readonly samples?: number;
  readonly scanned?: number;
  readonly error?: string;
  /** The job's data buffer, transferred back so that the pool packs the next job into it. */
  readonly spare?: ArrayBuffer;
}

/** The worker never pauses a slide: it has no event loop to share. */
class WorkerMeter implements RollupMeter {
  samplesScanned = 0;
  sliceUsedUp(): boolean {
    return false;
  }
}

const SCRATCH_MIN = 1 << 14;
let scratchT = new Float64Array(SCRATCH_MIN);
let scratchV = new Float64Array(SCRATCH_MIN);

/** Doubles per accumulator chunk of a worker's fold (64 KiB), as SimpleAgg cuts them. */
const FOLD_CHUNK_DOUBLES = 8192;

/** One query's groups on this worker. */
class FoldState {
  readonly groups = new Map<number, { readonly acc: FoldAcc; readonly first: number }>();
  private chunk = new Float64Array(0);
  private used = 0;
  constructor(
    readonly op: string,
    readonly n: number,
  ) {}

  acc(group: number, first: number): FoldAcc {
    let g = this.groups.get(group);
    if (g === undefined) {
      const n = this.n;
      const [c, m, i] = foldLengths(this.op, n);
      const acc: FoldAcc = { val: this.take(n), comp: this.take(c), mean: this.take(m), count: this.take(n), incr: i > 0 ? this.takeBytes(i) : undefined };
      g = { acc, first };
      this.groups.set(group, g);
    }
    return g.acc;
  }

  private take(len: number): Float64Array {
    if (len === 0) return new Float64Array(0);
    if (this.used + len > this.chunk.length) {
      this.chunk = new Float64Array(Math.max(len, FOLD_CHUNK_DOUBLES));
      this.used = 0;
    }
    const a = this.chunk.subarray(this.used, this.used + len);
    this.used += len;
    return a;
  }

  private takeBytes(len: number): Uint8Array {
    return new Uint8Array(len);
  }
}

/** The folds in progress on this worker, by query. */
const folds = new Map<number, FoldState>();

/** Runs in the worker. */
export function runRollupJob(job: RollupJob): Required<Omit<RollupResult, "error" | "spare">> {
  const { meta, data, func, ends, range, fold } = job;
  const minT = meta[0]!;
  const maxT = meta[1]!;
  const dedup = meta[2]!;
  const nSeries = meta[3]!;
  const n = ends.length;
  const spec: RollupSpec = { func, ends, range };
  const index = new Uint32Array(nSeries);
  // Folding: one series' step values at a time, reused.
  const values = new Float64Array(fold === undefined ? nSeries * n : n);
  const present = new Uint8Array(fold === undefined ? nSeries * n : n);
  const got = new Uint32Array(nSeries);
  const meter = new WorkerMeter();
  const windows = windowsOfEnds(ends, range);
  let state: FoldState | undefined;
  if (fold !== undefined) {
    state = folds.get(fold.qid);
    if (state === undefined) folds.set(fold.qid, (state = new FoldState(fold.op, n)));
  }
  let rows = 0;
  let samples = 0;
  forEachPackedSeries(meta, data, (s, blocks, count) => {
    if (count === 0) return;
    if (scratchT.length < count) growScratch(count);
    const ts = scratchT;
    const vs = scratchV;
    // Only the windows' samples, as the inline path selects them (decode.ts decodeSeries).
    const { lo, hi } = decodeSeriesInto(blocks, ts, vs, minT, maxT, dedup, windows);
    const kept = hi - lo;
    if (kept <= 0) return;
    samples += kept;
    const m = dropStale(ts, vs, lo, lo + kept);
    const row = rows++;
    index[row] = s;
    if (state === undefined) {
      got[row] = rollupSeries(spec.func, ts.subarray(lo, lo + m), vs.subarray(lo, lo + m), ends, range, values.subarray(row * n, (row + 1) * n), present.subarray(row * n, (row + 1) * n), meter);
      return;
    }
    present.fill(0);
    const g = rollupSeries(spec.func, ts.subarray(lo, lo + m), vs.subarray(lo, lo + m), ends, range, values, present, meter);
    got[row] = g;
    // The engine folds only series with output (streamRollup's sink), in stream order.
    if (g > 0) foldSeries(state.op, state.acc(fold!.groupOf[s]!, fold!.first[s]!), n, values, present);
  });
  const empty = state !== undefined;
  return {
    id: job.id,
    rows,
    index,
    values: empty ? new Float64Array(0) : values,
    present: empty ? new Uint8Array(0) : present,
    got,
    samples,
    scanned: meter.samplesScanned,
  };
}

/** Runs in the worker: hands over (and forgets) a query's folded groups, finished, or only forgets them. */
export function runFoldControl(c: FoldControl): { readonly result: FoldResult; readonly transfer: ArrayBuffer[] } {
  const state = folds.get(c.qid);
  folds.delete(c.qid);
  if (c.control === "drop" || state === undefined) {
    return { result: { id: c.id, groups: new Int32Array(0), first: new Uint32Array(0), steps: 0, values: new Float64Array(0), present: new Uint8Array(0) }, transfer: [] };
  }
  const n = state.n;
  const size = state.groups.size;
  let groups = new Int32Array(size);
  let first = new Uint32Array(size);
  const values = new Float64Array(size * n);
  const present = new Uint8Array(size * n);
  let i = 0;
  for (const [g, v] of state.groups) {
    // A group has a result at every step one of its series had output (it only exists with one).
    const row = present.subarray(i * n, (i + 1) * n);
    if (!finishFold(state.op, n, v.acc, row)) continue;
    values.set(v.acc.val, i * n);
    groups[i] = g;
    first[i++] = v.first;
  }
  if (i < size) {
    groups = groups.slice(0, i);
    first = first.slice(0, i);
  }
  return { result: { id: c.id, groups, first, steps: n, values, present }, transfer: [groups.buffer, first.buffer, values.buffer, present.buffer] };
}

function growScratch(n: number): void {
  const len = Math.max(n, scratchT.length * 2);
  scratchT = new Float64Array(len);
  scratchV = new Float64Array(len);
}

/** Removes stale markers from [lo, hi) in place (as the engine's matrix arguments do); returns the samples left. */
function dropStale(ts: Float64Array, vs: Float64Array, lo: number, hi: number): number {
  let bits: Uint32Array | undefined;
  let j = lo;
  for (let i = lo; i < hi; i++) {
    const v = vs[i]!;
    if (v !== v) {
      bits ??= bitsView(vs);
      if (isStaleAt(bits, i)) continue;
    }
    if (j !== i) {
      ts[j] = ts[i]!;
      vs[j] = v;
    }
    j++;
  }
  return j - lo;
}
