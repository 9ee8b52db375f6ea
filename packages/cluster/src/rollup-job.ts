import { bitsView, isStaleAt, rollupSeries, type RollupMeter, type RollupSpec } from "@strata/promql";
import { decodeSeriesInto, forEachPackedSeries, packedSamples, windowsOfEnds, type DecodeJob } from "./decode.js";

/**
 * A range function computed on a worker beside the decoding (SeriesStream.rollup): the packed
 * blocks of a run of series (decode.ts packJob) plus the function and its windows. The worker
 * decodes each series into reused scratch arrays, drops stale markers, applies promql's
 * `rollupSeries` (the engine's own kernels, so the values are bit-identical) and sends back only
 * the step values: the samples never leave the worker.
 */
export interface RollupJob extends DecodeJob {
  readonly func: string;
  readonly ends: Float64Array<ArrayBuffer>;
  readonly range: number;
}

/**
 * Rows are the job's series that had samples in the window, in order: `index[i]` is row i's
 * series (its position in the job), its step values values[i*steps ..], present likewise, got[i]
 * its steps with output. `samples`/`scanned` as promql's RollupBatch counts them.
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

/** Runs in the worker. */
export function runRollupJob(job: RollupJob): Required<Omit<RollupResult, "error">> {
  const { meta, data, func, ends, range } = job;
  const minT = meta[0]!;
  const maxT = meta[1]!;
  const dedup = meta[2]!;
  const nSeries = meta[3]!;
  const n = ends.length;
  const spec: RollupSpec = { func, ends, range };
  const index = new Uint32Array(nSeries);
  const values = new Float64Array(nSeries * n);
  const present = new Uint8Array(nSeries * n);
  const got = new Uint32Array(nSeries);
  const meter = new WorkerMeter();
  const windows = windowsOfEnds(ends, range);
  let rows = 0;
  let samples = 0;
  // Largest series first sizes the scratch once per job.
  const need = Math.min(packedSamples(meta), 1 << 22);
  if (scratchT.length < need) growScratch(need);
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
    got[row] = rollupSeries(spec.func, ts.subarray(lo, lo + m), vs.subarray(lo, lo + m), ends, range, values.subarray(row * n, (row + 1) * n), present.subarray(row * n, (row + 1) * n), meter);
  });
  return { id: job.id, rows, index, values, present, got, samples, scanned: meter.samplesScanned };
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
