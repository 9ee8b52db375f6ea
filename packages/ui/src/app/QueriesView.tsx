// Top queries and active queries, in the JSON shapes VictoriaMetrics' select returns from
// /api/v1/status/top_queries and /api/v1/status/active_queries.
import { useEffect, useState } from "preact/hooks";
import { ApiError, type Api } from "./api";
import { ErrorBox } from "./ErrorBox";
import { formatDuration } from "./time";

export interface TopQuery {
  readonly query: string;
  readonly timeRangeSeconds?: number;
  readonly count?: number;
  readonly avgDurationSeconds?: number;
  readonly sumDurationSeconds?: number;
  readonly accountID?: number;
  readonly projectID?: number;
}

export interface TopQueries {
  readonly topN?: string | number;
  readonly maxLifetime?: string;
  readonly topByCount?: readonly TopQuery[];
  readonly topByAvgDuration?: readonly TopQuery[];
  readonly topBySumDuration?: readonly TopQuery[];
}

export interface ActiveQuery {
  readonly duration?: string;
  readonly id?: string;
  readonly remote_addr?: string;
  readonly query: string;
  readonly start?: number;
  readonly end?: number;
  readonly step?: number;
}

/** top_queries is not wrapped in {status,data}; active_queries is. Accept both. */
async function getLoose<T>(api: Api, path: string, params: Array<[string, string]>, signal: AbortSignal): Promise<T> {
  const url = api.url(path, params);
  const res = await fetch(url, { signal, headers: { accept: "application/json" } });
  const text = await res.text();
  let body: unknown;
  // Some servers answer 200 with an empty body when there is nothing to list.
  if (res.status === 200 && text.trim() === "") return undefined as T;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(`HTTP ${res.status}: ${text.slice(0, 300).trim() || "empty response"}`, "bad_response", res.status, "", url);
  }
  const b = body as { status?: string; data?: unknown; error?: string; errorType?: string };
  if (res.status >= 400 || b.status === "error") throw new ApiError(b.error ?? `HTTP ${res.status}`, b.errorType ?? "unknown", res.status, "", url);
  const wrapped = b.data !== undefined && (b.status === "success" || b.status === "ok");
  return (wrapped ? b.data : body) as T;
}

export function QueriesView({ api, onQuery, tick }: { api: Api; onQuery: (q: string) => void; tick: number }) {
  const [top, setTop] = useState<TopQueries | undefined>(undefined);
  const [active, setActive] = useState<readonly ActiveQuery[] | undefined>(undefined);
  const [errors, setErrors] = useState<unknown[]>([]);
  const [topN, setTopN] = useState(20);
  const [maxLifetime, setMaxLifetime] = useState("10m");
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const ac = new AbortController();
    const errs: unknown[] = [];
    void Promise.all([
      getLoose<TopQueries>(api, "status/top_queries", [["topN", String(topN)], ["maxLifetime", maxLifetime]], ac.signal).then(setTop, (e: unknown) => errs.push(e)),
      getLoose<ActiveQuery[]>(api, "status/active_queries", [], ac.signal).then((a) => setActive(Array.isArray(a) ? a : []), (e: unknown) => errs.push(e)),
    ]).then(() => { if (!ac.signal.aborted) setErrors(errs); });
    return () => ac.abort();
  }, [api, topN, maxLifetime, reload, tick]);

  const q = (s: string) => <a href="#" class="mono" onClick={(e) => { e.preventDefault(); onQuery(s); }}>{s}</a>;
  const topTable = (title: string, rows: readonly TopQuery[] | undefined, col: string, val: (r: TopQuery) => string, testid: string) => (
    <section class="card-table" data-testid={testid}>
      <h3>{title}</h3>
      <table>
        <thead><tr><th>Query</th><th class="num">Range</th><th class="num">Count</th><th class="num">{col}</th></tr></thead>
        <tbody>
          {(rows ?? []).map((r, i) => (
            <tr key={i}><td>{q(r.query)}</td><td class="num">{r.timeRangeSeconds === undefined ? "" : r.timeRangeSeconds === 0 ? "instant" : formatDuration(Math.round(r.timeRangeSeconds) * 1000)}</td><td class="num">{r.count ?? ""}</td><td class="num">{val(r)}</td></tr>
          ))}
        </tbody>
      </table>
      {(rows ?? []).length === 0 && <div class="muted">none</div>}
    </section>
  );
  return (
    <div class="queries-view">
      <form class="card-form" onSubmit={(e) => { e.preventDefault(); setReload((r) => r + 1); }}>
        <label>top N <input type="number" min={1} value={topN} onInput={(e) => setTopN(Math.max(1, Number(e.currentTarget.value) || 20))} /></label>
        <label>max lifetime <input value={maxLifetime} onInput={(e) => setMaxLifetime(e.currentTarget.value)} /></label>
        <button type="submit">Refresh</button>
      </form>
      {errors.map((e, i) => <ErrorBox key={i} error={e} />)}
      <section class="card-table" data-testid="active-queries">
        <h3>Active queries</h3>
        <table>
          <thead><tr><th>Query</th><th>Running for</th><th>Range</th><th>Step</th><th>Client</th></tr></thead>
          <tbody>
            {(active ?? []).map((a, i) => (
              <tr key={a.id ?? i}>
                <td>{q(a.query)}</td><td>{a.duration ?? ""}</td>
                <td class="mono">{a.start !== undefined && a.end !== undefined ? `${new Date(a.start).toISOString()} … ${new Date(a.end).toISOString()}` : ""}</td>
                <td>{a.step !== undefined ? `${a.step / 1000}s` : ""}</td><td class="mono">{a.remote_addr ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {(active ?? []).length === 0 && <div class="muted">no queries running</div>}
      </section>
      {top && (
        <div class="card-grid">
          {topTable("Most frequent", top.topByCount, "", () => "", "top-count")}
          {topTable("Slowest on average", top.topByAvgDuration, "Avg duration", (r) => `${(r.avgDurationSeconds ?? 0).toFixed(3)}s`, "top-avg")}
          {topTable("Most total time", top.topBySumDuration, "Total duration", (r) => `${(r.sumDurationSeconds ?? 0).toFixed(3)}s`, "top-sum")}
        </div>
      )}
    </div>
  );
}
