import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatValue, nearestSeries, type GraphData } from "./graphData";
import { formatTime } from "./time";

export interface GraphViewProps {
  readonly data: GraphData;
  readonly tz: string;
  readonly onZoom: (fromMs: number, toMs: number) => void;
  readonly height?: number;
  /** The selected time range in ms: the x-axis spans it whatever the data covers. */
  readonly range?: { readonly startMs: number; readonly endMs: number } | undefined;
}

const LEGEND_PAGE = 100;

export function GraphView({ data, tz, onZoom, height = 360, range }: GraphViewProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [hidden, setHidden] = useState<ReadonlySet<number>>(new Set());
  const [legendLimit, setLegendLimit] = useState(LEGEND_PAGE);
  const [filter, setFilter] = useState("");
  const hiddenRef = useRef(hidden);
  hiddenRef.current = hidden;
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;

  useEffect(() => {
    setHidden(new Set());
    setLegendLimit(LEGEND_PAGE);
  }, [data]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const many = data.series.length > 50;
    // The tooltip lives inside uPlot's overlay, outside Preact's tree.
    const t = document.createElement("div");
    t.className = "tooltip";
    t.setAttribute("data-testid", "tooltip");
    t.style.display = "none";
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height,
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        points: { show: !many },
        focus: { prox: 16 },
      },
      focus: { alpha: many ? 1 : 0.35 },
      scales: {
        x: range === undefined
          ? { time: true }
          : { time: true, range: (): uPlot.Range.MinMax => [range.startMs / 1000, range.endMs / 1000] },
      },
      axes: [{}, { size: 70, values: (_u, vals) => vals.map((v) => formatValue(v)) }],
      series: [
        {},
        ...data.series.map((s, i) => ({
          label: s.name,
          stroke: s.color,
          width: many ? 1 : 1.5,
          points: { show: false },
          spanGaps: false,
          show: !hiddenRef.current.has(i),
        })),
      ],
      hooks: {
        // The x scale in unix seconds, for tests: it must span the selected range.
        setScale: [
          (u, key) => {
            if (key !== "x") return;
            el.dataset["xMin"] = String(u.scales["x"]?.min ?? "");
            el.dataset["xMax"] = String(u.scales["x"]?.max ?? "");
          },
        ],
        setSelect: [
          (u) => {
            const sel = u.select;
            if (sel.width < 4) return;
            const from = u.posToVal(sel.left, "x") * 1000;
            const to = u.posToVal(sel.left + sel.width, "x") * 1000;
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            zoomRef.current(Math.round(from), Math.round(to));
          },
        ],
        setCursor: [
          (u) => {
            const idx = u.cursor.idx;
            const top = u.cursor.top ?? -1;
            if (idx === null || idx === undefined || top < 0) { t.style.display = "none"; return; }
            const yVal = u.posToVal(top, "y");
            const si = nearestSeries(data.ys, idx, yVal, (i) => !hiddenRef.current.has(i));
            const s = data.series[si];
            const x = data.xs[idx];
            if (!s || x === undefined) { t.style.display = "none"; return; }
            t.style.display = "block";
            t.replaceChildren();
            const time = document.createElement("div");
            time.className = "tip-time";
            time.textContent = formatTime(x * 1000, tz);
            const row = document.createElement("div");
            const sw = document.createElement("span");
            sw.className = "swatch";
            sw.style.background = s.color;
            const val = document.createElement("b");
            val.textContent = formatValue(data.ys[si]?.[idx] ?? null);
            row.append(sw, val);
            const name = document.createElement("div");
            name.className = "tip-name";
            name.textContent = s.name;
            t.append(time, row, name);
            const left = (u.cursor.left ?? 0) + 16;
            t.style.left = `${Math.min(left, u.over.clientWidth - 260)}px`;
            t.style.top = `${top + 16}px`;
          },
        ],
      },
    };
    if (tz !== "browser") opts.tzDate = (ts: number) => uPlot.tzDate(new Date(ts * 1000), tz);
    const t0 = performance.now();
    const u = new uPlot(opts, [data.xs as unknown as number[], ...data.ys], el);
    // Exposed for the browser test's figures: how long creating and drawing the chart took.
    el.dataset["drawMs"] = (performance.now() - t0).toFixed(1);
    u.over.appendChild(t);
    plot.current = u;
    const ro = typeof ResizeObserver === "undefined" ? undefined : new ResizeObserver(() => {
      u.setSize({ width: Math.max(300, el.clientWidth), height });
    });
    ro?.observe(el);
    return () => {
      ro?.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [data, tz, height, range?.startMs, range?.endMs]);

  const setShown = (next: ReadonlySet<number>): void => {
    setHidden(next);
    const u = plot.current;
    if (!u) return;
    u.batch(() => {
      for (let i = 0; i < data.series.length; i++) {
        const show = !next.has(i);
        if ((u.series[i + 1]?.show ?? true) !== show) u.setSeries(i + 1, { show });
      }
    });
  };

  const toggle = (i: number, only: boolean): void => {
    if (only) {
      const allOthersHidden = data.series.every((_s, j) => j === i || hidden.has(j));
      setShown(allOthersHidden ? new Set() : new Set(data.series.map((_s, j) => j).filter((j) => j !== i)));
      return;
    }
    const next = new Set(hidden);
    if (next.has(i)) next.delete(i);
    else next.add(i);
    setShown(next);
  };

  const f = filter.toLowerCase();
  const listed = data.series.map((s, i) => ({ s, i })).filter(({ s }) => f === "" || s.name.toLowerCase().includes(f));

  return (
    <div class="graph">
      <div class="chart" ref={box} data-testid="chart" />
      {data.series.length === 0 && <div class="muted empty">No data in this time range.</div>}
      {data.stride > 1 && (
        <div class="warning">Too many points to draw: showing every {data.stride}th timestamp. A larger step or a shorter range shows all of them.</div>
      )}
      {data.dropped > 0 && (
        <div class="warning">Showing the first {data.series.length} series; {data.dropped} more were not drawn. Narrow the query.</div>
      )}
      {data.series.length > 0 && (
        <div class="legend" data-testid="legend">
          <div class="legend-head">
            <span>{data.series.length} series · click toggles, Ctrl/⌘+click shows only one</span>
            {data.series.length > 10 && (
              <input placeholder="filter legend" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
            )}
            {hidden.size > 0 && <button type="button" class="link" onClick={() => setShown(new Set())}>show all</button>}
          </div>
          <ul>
            {listed.slice(0, legendLimit).map(({ s, i }) => (
              <li
                key={i}
                class={hidden.has(i) ? "legend-item off" : "legend-item"}
                data-testid="legend-item"
                onClick={(e) => toggle(i, e.ctrlKey || e.metaKey)}
                title={s.name}
              >
                <span class="swatch" style={{ background: s.color }} />
                <span class="q-badge">{s.queryIndex + 1}</span>
                <span class="legend-name">{s.name}</span>
              </li>
            ))}
          </ul>
          {listed.length > legendLimit && (
            <button type="button" class="link" onClick={() => setLegendLimit((l) => l + LEGEND_PAGE * 2)}>
              show {Math.min(LEGEND_PAGE * 2, listed.length - legendLimit)} more of {listed.length - legendLimit}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
