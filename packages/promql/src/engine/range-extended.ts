import type { Call } from "../ast.js";
import type { Env } from "./env.js";
import { evalError } from "./env.js";
import type { RangeArg, StepCtx, VectorValue, VSeries } from "./types.js";

/** Linear interpolation at t between samples i and j; `counter` treats a decrease as a reset from 0. */
function interpolate(ts: Float64Array, vs: Float64Array, i: number, j: number, t: number, counter: boolean): number {
  const f = (t - ts[i]!) / (ts[j]! - ts[i]!);
  if (counter && vs[j]! < vs[i]!) return vs[j]! * f;
  return vs[i]! + (vs[j]! - vs[i]!) * f;
}

/**
 * Prometheus 3 extended range selectors. `anchored`: the window starts with the last sample at
 * or before its start (within the lookback delta) and the result is not extrapolated.
 * `smoothed`: the values at both window ends are interpolated from the neighbouring samples
 * (counter-aware for rate/increase), and the result is the change between them.
 */
export function evalExtended(call: Call, arg: RangeArg, ctx: StepCtx, env: Env): VectorValue {
  const name = call.func.name;
  const n = ctx.times.length;
  const lookback = env.lookback;
  const counter = name === "rate" || name === "increase";
  const out: VSeries[] = [];
  const seq = { buf: new Float64Array(64) };
  for (const s of arg.series) {
    const ts = s.ts;
    const vs = s.vs;
    const len = ts.length;
    let values: Float64Array | undefined;
    let present: Uint8Array | undefined;
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < n; k++) {
      const wEnd = arg.ends[k]!;
      const wStart = wEnd - arg.range;
      if (k > 0 && wEnd < arg.ends[k - 1]!) {
        lo = 0;
        hi = 0;
      }
      while (hi < len && ts[hi]! <= wEnd) hi++;
      while (lo < len && ts[lo]! <= wStart) lo++;
      // Build the sequence of values the function runs over.
      let m = 0;
      const need = hi - lo + 2;
      if (seq.buf.length < need) seq.buf = new Float64Array(need * 2);
      const b = seq.buf;
      if (arg.extended === "anchored") {
        if (hi - lo < 1) continue;
        if (lo > 0 && ts[lo - 1]! > wStart - lookback) b[m++] = vs[lo - 1]!;
        for (let i = lo; i < hi; i++) b[m++] = vs[i]!;
      } else {
        if (hi === 0 || lo >= len) continue;
        const left = lo > 0 && ts[lo - 1]! > wStart - lookback ? interpolate(ts, vs, lo - 1, lo, wStart, counter) : vs[lo]!;
        const last = hi - 1;
        const right = hi < len && ts[hi]! - wEnd <= lookback && ts[last]! < wEnd ? interpolate(ts, vs, last, hi, wEnd, counter) : vs[last]!;
        b[m++] = left;
        for (let i = lo; i < hi; i++) b[m++] = vs[i]!;
        b[m++] = right;
      }
      env.samplesScanned += hi - lo;
      let r: number;
      switch (name) {
        case "rate":
        case "increase":
        case "delta": {
          r = b[m - 1]! - b[0]!;
          if (name !== "delta") for (let i = 1; i < m; i++) if (b[i]! < b[i - 1]!) r += b[i - 1]!;
          if (name === "rate") r /= arg.range / 1000;
          break;
        }
        case "changes": {
          r = 0;
          for (let i = 1; i < m; i++) {
            const c = b[i]!;
            const p = b[i - 1]!;
            if (c !== p && !(Number.isNaN(c) && Number.isNaN(p))) r++;
          }
          break;
        }
        case "resets": {
          r = 0;
          for (let i = 1; i < m; i++) if (b[i]! < b[i - 1]!) r++;
          break;
        }
        default:
          throw evalError(`${arg.extended} modifier is not supported by ${name}`);
      }
      if (values === undefined) {
        values = new Float64Array(n);
        present = new Uint8Array(n);
      }
      values[k] = r;
      present![k] = 1;
    }
    if (values !== undefined) out.push({ labels: s.labels, dropName: true, values, present: present! });
  }
  return { kind: "vector", series: out };
}
