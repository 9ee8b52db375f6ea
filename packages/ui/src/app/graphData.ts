// Turns query_range answers into the column layout uPlot draws: one shared x array (seconds)
// and one y array per series, null where a series has no sample.
import type { MatrixSeries } from "./api";

export interface GraphSeries {
  readonly queryIndex: number;
  readonly name: string; // metric{labels}
  readonly metric: Readonly<Record<string, string>>;
  readonly color: string;
}

export interface GraphData {
  readonly xs: Float64Array;
  readonly ys: Array<Array<number | null>>;
  readonly series: GraphSeries[];
  /** Series that were not drawn because of the limit. */
  readonly dropped: number;
  /** Every `stride`-th timestamp is drawn (1 = all): keeps huge answers drawable. */
  readonly stride: number;
}

export function seriesName(metric: Readonly<Record<string, string>>): string {
  const name = metric["__name__"] ?? "";
  const labels = Object.keys(metric)
    .filter((k) => k !== "__name__")
    .sort()
    .map((k) => `${k}=${JSON.stringify(metric[k])}`);
  return labels.length === 0 && name !== "" ? name : `${name}{${labels.join(", ")}}`;
}

/** Distinct, stable colours: golden-angle hue walk. */
export function colorOf(i: number): string {
  const hue = (i * 137.508) % 360;
  const light = 42 + (i % 3) * 8;
  return `hsl(${hue.toFixed(1)}, 70%, ${light}%)`;
}

export function sampleValue(s: string): number | null {
  const v = Number(s === "+Inf" ? Infinity : s === "-Inf" ? -Infinity : s);
  return Number.isFinite(v) ? v : null;
}

/**
 * `maxSeries` caps the series drawn; `maxPoints` caps series × timestamps: beyond it only every
 * k-th timestamp is kept (the API already aggregates per step, so this only thins what is drawn).
 */
export function buildGraphData(results: ReadonlyArray<readonly MatrixSeries[]>, maxSeries = 2000, maxPoints = 2_000_000): GraphData {
  const tsSet = new Set<number>();
  let total = 0;
  for (const r of results) {
    for (const s of r) {
      total++;
      for (const v of s.values) tsSet.add(v[0]);
    }
  }
  const all = Float64Array.from(tsSet).sort();
  const drawn = Math.min(total, maxSeries);
  const stride = drawn * all.length > maxPoints ? Math.ceil((drawn * all.length) / maxPoints) : 1;
  const xs = stride === 1 ? all : all.filter((_t, i) => i % stride === 0);
  const index = new Map<number, number>();
  xs.forEach((t, i) => index.set(t, i));
  const ys: Array<Array<number | null>> = [];
  const series: GraphSeries[] = [];
  outer: for (let q = 0; q < results.length; q++) {
    for (const s of results[q] ?? []) {
      if (series.length >= maxSeries) break outer;
      const col = new Array<number | null>(xs.length).fill(null);
      for (const [t, v] of s.values) {
        const i = index.get(t);
        if (i !== undefined) col[i] = sampleValue(v);
      }
      ys.push(col);
      series.push({ queryIndex: q, name: seriesName(s.metric), metric: s.metric, color: colorOf(series.length) });
    }
  }
  return { xs, ys, series, dropped: total - series.length, stride };
}

/** Index of the series whose value at column `idx` is closest to `yVal` (visible ones only). */
export function nearestSeries(ys: ReadonlyArray<ReadonlyArray<number | null>>, idx: number, yVal: number, visible: (i: number) => boolean): number {
  let best = -1;
  let bestDist = Infinity;
  for (let i = 0; i < ys.length; i++) {
    if (!visible(i)) continue;
    const v = ys[i]?.[idx];
    if (v === null || v === undefined) continue;
    const d = Math.abs(v - yVal);
    if (d < bestDist) { bestDist = d; best = i; }
  }
  return best;
}

export function formatValue(v: number | null): string {
  if (v === null) return "—";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e15 || a < 1e-4) return v.toExponential(3);
  return Number(v.toPrecision(6)).toString();
}
