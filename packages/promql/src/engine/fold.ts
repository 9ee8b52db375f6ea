/**
 * The per-step fold of sum, avg, count, min, max, group, stddev and stdvar (aggregate.ts
 * SimpleAgg), as a function of its own so that a querier that folds a group's series elsewhere
 * (on a worker thread, beside the rollup: SeriesStream.rollupFold) runs the very same
 * arithmetic in the same order and gets bit-identical accumulators.
 *
 * Prometheus' algorithms: Kahan-Neumaier sums, avg as a compensated sum that switches to an
 * incremental mean before overflowing, Welford for stddev/stdvar.
 */

/** One group's accumulators, one value per step (arrays of length 0 where the op needs none). */
export interface FoldAcc {
  readonly val: Float64Array;
  /** Kahan compensation (sum, avg). */
  readonly comp: Float64Array;
  /** Running mean (avg, stddev, stdvar). */
  readonly mean: Float64Array;
  readonly count: Float64Array;
  /** avg: steps that switched to the incremental mean. */
  readonly incr: Uint8Array | undefined;
}

/** Lengths of a group's accumulators for `op` over n steps: [comp, mean, incr]. */
export function foldLengths(op: string, n: number): readonly [number, number, number] {
  const needMean = op === "avg" || op === "stddev" || op === "stdvar";
  return [op === "sum" || op === "avg" ? n : 0, needMean ? n : 0, op === "avg" ? n : 0];
}

/**
 * Folds one series' step values (present where pres[k] is 1) into `acc`; true when any step
 * contributed. Throws on any other op.
 */
export function foldSeries(op: string, acc: FoldAcc, n: number, vals: Float64Array, pres: Uint8Array): boolean {
  const { val, comp, mean, count } = acc;
  let contributed = false;
  switch (op) {
    case "sum":
      for (let k = 0; k < n; k++) {
        if (pres[k] !== 1) continue;
        contributed = true;
        const f = vals[k]!;
        const c0 = count[k]!;
        count[k] = c0 + 1;
        if (c0 === 0) {
          val[k] = f;
          continue;
        }
        const sum = val[k]!;
        const t = sum + f;
        if (t === Infinity || t === -Infinity) comp[k] = 0;
        else if (Math.abs(sum) >= Math.abs(f)) comp[k]! += sum - t + f;
        else comp[k]! += f - t + sum;
        val[k] = t;
      }
      break;
    case "avg": {
      const incr = acc.incr!;
      for (let k = 0; k < n; k++) {
        if (pres[k] !== 1) continue;
        contributed = true;
        const f = vals[k]!;
        const c0 = count[k]!;
        count[k] = c0 + 1;
        if (c0 === 0) {
          val[k] = f;
          continue;
        }
        if (incr[k] !== 1) {
          const sum = val[k]!;
          const t = sum + f;
          if (t !== Infinity && t !== -Infinity) {
            if (Math.abs(sum) >= Math.abs(f)) comp[k]! += sum - t + f;
            else comp[k]! += f - t + sum;
            val[k] = t;
            continue;
          }
          incr[k] = 1;
          mean[k] = sum / c0;
          comp[k] = comp[k]! / c0;
        }
        const q = c0 / (c0 + 1);
        const inc = f / (c0 + 1);
        const sum = q * mean[k]!;
        let c = q * comp[k]!;
        const t = sum + inc;
        if (t === Infinity || t === -Infinity) c = 0;
        else if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
        else c += inc - t + sum;
        mean[k] = t;
        comp[k] = c;
      }
      break;
    }
    case "max":
    case "min": {
      const isMax = op === "max";
      for (let k = 0; k < n; k++) {
        if (pres[k] !== 1) continue;
        contributed = true;
        const f = vals[k]!;
        const c0 = count[k]!;
        count[k] = c0 + 1;
        if (c0 === 0) {
          val[k] = f;
          continue;
        }
        const cur = val[k]!;
        if ((isMax ? cur < f : cur > f) || Number.isNaN(cur)) val[k] = f;
      }
      break;
    }
    case "count":
    case "group":
      for (let k = 0; k < n; k++) {
        if (pres[k] !== 1) continue;
        contributed = true;
        count[k]!++;
      }
      break;
    case "stddev":
    case "stdvar":
      for (let k = 0; k < n; k++) {
        if (pres[k] !== 1) continue;
        contributed = true;
        const f = vals[k]!;
        const c = ++count[k]!;
        if (c === 1) {
          val[k] = Number.isFinite(f) ? 0 : NaN;
          mean[k] = f;
          continue;
        }
        const delta = f - mean[k]!;
        mean[k]! += delta / c;
        val[k]! += delta * (f - mean[k]!);
      }
      break;
    default:
      throw new Error(`unknown aggregation ${op}`);
  }
  return contributed;
}

/**
 * A group's result from its accumulators, written over `g.val` (the accumulators are spent),
 * with `present` (zeroed) set where a series contributed; false when none did. One loop per
 * operation (a switch per step cost a third of the loop over 12 000 groups × 241 steps). A
 * querier that folds elsewhere finishes its groups there with this (SeriesStream.rollupFold).
 */
export function finishFold(op: string, n: number, g: FoldAcc, present: Uint8Array): boolean {
  const { val, comp, mean, count } = g;
  let any = false;
  switch (op) {
    case "sum":
      for (let k = 0; k < n; k++) {
        if (count[k] === 0) continue;
        any = true;
        present[k] = 1;
        const s = val[k]!;
        val[k] = s === Infinity || s === -Infinity ? s : s + comp[k]!;
      }
      break;
    case "avg": {
      const incr = g.incr!;
      for (let k = 0; k < n; k++) {
        const c = count[k]!;
        if (c === 0) continue;
        any = true;
        present[k] = 1;
        if (c === 1) continue;
        if (incr[k] === 1) val[k] = mean[k]! + comp[k]!;
        else val[k] = val[k]! / c + comp[k]! / c;
      }
      break;
    }
    case "count":
    case "group":
      for (let k = 0; k < n; k++) {
        const c = count[k]!;
        if (c === 0) continue;
        any = true;
        present[k] = 1;
        val[k] = op === "count" ? c : 1;
      }
      break;
    case "stdvar":
    case "stddev":
      for (let k = 0; k < n; k++) {
        const c = count[k]!;
        if (c === 0) continue;
        any = true;
        present[k] = 1;
        val[k] = op === "stddev" ? Math.sqrt(val[k]! / c) : val[k]! / c;
      }
      break;
    default:
      for (let k = 0; k < n; k++) {
        if (count[k] === 0) continue;
        any = true;
        present[k] = 1;
      }
  }
  return any;
}
