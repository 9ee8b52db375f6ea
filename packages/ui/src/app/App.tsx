import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Api, ApiError, parseErrorPosition, type QueryData, type RawAnswer, type MatrixSeries } from "./api";
import { Cardinality } from "./Cardinality";
import { Completer } from "./completer";
import { ErrorBox } from "./ErrorBox";
import { GraphView } from "./GraphView";
import { buildGraphData, type GraphData } from "./graphData";
import { JsonView, type JsonAnswer } from "./JsonView";
import { AlertsView } from "./AlertsView";
import { QueriesView } from "./QueriesView";
import { QueryEditor } from "./QueryEditor";
import {
  apiBasePath, decodeState, encodeState, isValidTenant, loadHistory, pathForTenant, pushHistory, tenantOf,
  timeWindow, type AppState, type KeyValueStore, type Tab,
} from "./state";
import { TableView } from "./TableView";
import { autoStepMs, formatDuration, formatTime, parseDurationMs, parseTimeInput, RELATIVE_RANGES, REFRESH_INTERVALS, timeZones } from "./time";

export interface AppEnv {
  /** window.location-like: where the UI was loaded from. */
  readonly pathname: string;
  readonly search: string;
  readonly now: () => number;
  readonly storage: KeyValueStore;
  /** Changes the URL (pushState/replaceState); navigate() leaves the page (tenant switch). */
  readonly setUrl: (search: string, push: boolean) => void;
  readonly navigate: (href: string) => void;
  readonly api?: Api;
}

interface RunResult {
  readonly mode: "range" | "instant";
  readonly answers: Array<RawAnswer<QueryData> | undefined>;
  readonly errors: Array<unknown>;
  readonly graph: GraphData | undefined;
  readonly time: number;
  /** The window the queries asked for, in ms. */
  readonly range: { readonly startMs: number; readonly endMs: number };
  readonly stepMs: number;
  readonly warnings: string[];
  readonly isPartial: boolean;
  readonly tookMs: number;
}

const TAB_LABELS: Record<Tab, string> = {
  graph: "Graph", table: "Table", json: "JSON", cardinality: "Cardinality", queries: "Top queries", alerts: "Alerts",
};


export function App({ env }: { env: AppEnv }) {
  const [state, setState] = useState<AppState>(() => decodeState(env.search));
  const [result, setResult] = useState<RunResult | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [runKey, setRunKey] = useState(0);
  const [tick, setTick] = useState(0);
  const [history, setHistory] = useState<string[]>(() => loadHistory(env.storage));
  const tenant = tenantOf(env.pathname);
  const [tenantDraft, setTenantDraft] = useState(tenant);
  const api = useMemo(() => env.api ?? new Api(apiBasePath(env.pathname)), [env]);
  const completer = useMemo(() => new Completer(api), [api]);
  const stateRef = useRef(state);
  stateRef.current = state;
  const zones = useMemo(() => timeZones(), []);
  const [fromDraft, setFromDraft] = useState("");
  const [toDraft, setToDraft] = useState("");

  const update = useCallback((patch: Partial<AppState>, push: boolean) => {
    const next = { ...stateRef.current, ...patch };
    stateRef.current = next;
    setState(next);
    env.setUrl(encodeState(next), push);
  }, [env]);

  useEffect(() => {
    const onPop = (): void => {
      const s = decodeState(window.location.search);
      stateRef.current = s;
      setState(s);
      setRunKey((k) => k + 1);
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  // Show the window the current state covers in the from/to boxes.
  useEffect(() => {
    const w = timeWindow(state, env.now());
    setFromDraft(formatTime(w.start, state.tz));
    setToDraft(formatTime(w.end, state.tz));
  }, [state.range, state.from, state.to, state.tz, result]);

  const needsQueries = state.tab === "graph" || state.tab === "table" || state.tab === "json";
  const mode: "range" | "instant" = state.tab === "table" ? "instant" : "range";

  useEffect(() => {
    if (!needsQueries) return;
    const s = stateRef.current;
    const queries = s.queries.map((q) => q.trim());
    if (queries.every((q) => q === "")) { setResult(undefined); return; }
    const ac = new AbortController();
    const w = timeWindow(s, env.now());
    const width = typeof window === "undefined" ? 1000 : Math.max(300, window.innerWidth - 60);
    const stepMs = s.step === "auto" ? autoStepMs(w.end - w.start, width) : (parseDurationMs(s.step) ?? autoStepMs(w.end - w.start, width));
    const started = env.now();
    setLoading(true);
    void Promise.allSettled(
      queries.map((q) => q === "" ? Promise.resolve(undefined) : mode === "range" ? api.queryRange(q, w.start, w.end, stepMs, ac.signal) : api.query(q, w.end, ac.signal)),
    ).then((settled) => {
      if (ac.signal.aborted) return;
      const answers = settled.map((r) => (r.status === "fulfilled" ? r.value : undefined));
      const errors = settled.map((r) => (r.status === "rejected" ? (r.reason as unknown) : undefined));
      const warnings: string[] = [];
      let isPartial = false;
      for (const a of answers) {
        if (!a) continue;
        for (const wmsg of a.body.warnings ?? []) warnings.push(wmsg);
        if (a.body.isPartial) isPartial = true;
      }
      const graph = mode === "range"
        ? buildGraphData(answers.map((a) => (a?.body.data.resultType === "matrix" ? (a.body.data.result as readonly MatrixSeries[]) : [])))
        : undefined;
      setResult({ mode, answers, errors, graph, time: w.end, range: { startMs: w.start, endMs: w.end }, stepMs, warnings, isPartial, tookMs: env.now() - started });
      setLoading(false);
    });
    return () => ac.abort();
  }, [runKey, needsQueries, mode, state.range, state.from, state.to, state.step, tick, api, env]);

  useEffect(() => {
    const ms = parseDurationMs(state.refresh);
    if (state.refresh === "off" || ms === undefined || ms <= 0) return;
    const id = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(id);
  }, [state.refresh]);

  const run = (): void => {
    setHistory(pushHistory(env.storage, stateRef.current.queries));
    update({}, true);
    setRunKey((k) => k + 1);
  };

  const setQuery = (i: number, v: string): void => {
    const qs = [...stateRef.current.queries];
    qs[i] = v;
    update({ queries: qs }, false);
  };

  const openQuery = (q: string): void => {
    update({ queries: [q], tab: "graph" }, true);
    setHistory(pushHistory(env.storage, [q]));
    setRunKey((k) => k + 1);
  };

  const switchTenant = (e: Event): void => {
    e.preventDefault();
    const t = tenantDraft.trim();
    if (!isValidTenant(t)) return;
    env.navigate(pathForTenant(env.pathname, t) + encodeState(stateRef.current));
  };

  const applyAbsolute = (e: Event): void => {
    e.preventDefault();
    const from = parseTimeInput(fromDraft, stateRef.current.tz);
    const to = parseTimeInput(toDraft, stateRef.current.tz);
    if (from !== undefined && to !== undefined && from < to) update({ from, to }, true);
  };

  const errorAt = (i: number): number | undefined => {
    const err = result?.errors[i];
    if (!(err instanceof ApiError)) return undefined;
    const q = stateRef.current.queries[i] ?? "";
    return q.trim() === err.query ? parseErrorPosition(err.message, q)?.offset : undefined;
  };

  const absolute = state.from !== undefined && state.to !== undefined;
  const jsonAnswers: JsonAnswer[] = (result?.answers ?? []).flatMap((a, i) =>
    a ? [{ query: state.queries[i] ?? "", url: a.url, text: a.text }] : [],
  );

  return (
    <div class="app">
      <header class="topbar">
        <span class="brand">Strata</span>
        <nav class="tabs" role="tablist">
          {(Object.keys(TAB_LABELS) as Tab[]).map((t) => (
            <button key={t} type="button" role="tab" data-testid={`tab-${t}`} aria-selected={state.tab === t}
              class={state.tab === t ? "tab active" : "tab"} onClick={() => update({ tab: t }, true)}>
              {TAB_LABELS[t]}
            </button>
          ))}
        </nav>
        <form class="tenant" onSubmit={switchTenant}>
          <label title="accountID[:projectID]">tenant
            <input data-testid="tenant" size={9} value={tenantDraft} class={isValidTenant(tenantDraft.trim()) ? "" : "invalid"}
              onInput={(e) => setTenantDraft(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={tenantDraft.trim() === tenant || !isValidTenant(tenantDraft.trim())}>Switch</button>
        </form>
      </header>

      {needsQueries && (
        <section class="query-panel">
          {state.queries.map((q, i) => (
            <QueryEditor key={i} index={i} value={q} completer={completer} history={history}
              errorOffset={errorAt(i)} onChange={(v) => setQuery(i, v)} onRun={run}
              onRemove={state.queries.length > 1 ? () => update({ queries: state.queries.filter((_x, j) => j !== i) }, true) : undefined} />
          ))}
          <div class="controls">
            <button type="button" class="primary" data-testid="run" onClick={run}>{loading ? "Running…" : "Run query"}</button>
            <button type="button" onClick={() => update({ queries: [...state.queries, ""] }, false)}>+ Add query</button>
            <label>range
              <select data-testid="range" value={absolute ? "custom" : state.range}
                onChange={(e) => update({ range: e.currentTarget.value, from: undefined, to: undefined }, true)}>
                {absolute && <option value="custom">custom</option>}
                {RELATIVE_RANGES.map((r) => <option key={r} value={r}>last {r}</option>)}
              </select>
            </label>
            <form class="abs" onSubmit={applyAbsolute}>
              <input data-testid="from" size={19} value={fromDraft} title="from: YYYY-MM-DD HH:MM:SS in the chosen timezone, RFC 3339, or unix seconds" onInput={(e) => setFromDraft(e.currentTarget.value)} />
              <span>→</span>
              <input data-testid="to" size={19} value={toDraft} title="to: YYYY-MM-DD HH:MM:SS in the chosen timezone, RFC 3339, or unix seconds" onInput={(e) => setToDraft(e.currentTarget.value)} />
              <button type="submit">Apply</button>
            </form>
            <label>step
              <input data-testid="step" size={5} value={state.step} title='"auto" or a duration like 30s'
                onChange={(e) => { const v = e.currentTarget.value.trim(); if (v === "auto" || parseDurationMs(v) !== undefined) update({ step: v }, true); }} />
            </label>
            <label>refresh
              <select value={state.refresh} onChange={(e) => update({ refresh: e.currentTarget.value }, false)}>
                {REFRESH_INTERVALS.map((r) => <option key={r} value={r}>{r}</option>)}
              </select>
            </label>
            <label>timezone
              <select class="tz" value={state.tz} onChange={(e) => update({ tz: e.currentTarget.value }, false)}>
                {zones.map((z) => <option key={z} value={z}>{z === "browser" ? "browser time" : z}</option>)}
              </select>
            </label>
          </div>
          {result && (
            <div class="status-line muted" data-testid="status-line">
              {result.mode === "range" ? `range query, step ${formatDuration(result.stepMs)}` : "instant query"} · {result.tookMs} ms
            </div>
          )}
          {result?.isPartial && <div class="warning" data-testid="partial">Partial response: some storage nodes did not answer, so the data may be incomplete.</div>}
          {result?.warnings.map((w, i) => <div key={i} class="warning" data-testid="api-warning">{w}</div>)}
          {result?.errors.map((e, i) => (e === undefined ? null : <ErrorBox key={i} error={e} />))}
        </section>
      )}

      <main class="view">
        {state.tab === "graph" && result?.graph && (result.graph.series.length > 0 || result.errors.every((e) => e === undefined)) && (
          <GraphView data={result.graph} tz={state.tz} range={result.range} onZoom={(from, to) => update({ from, to }, true)} />
        )}
        {state.tab === "table" && result?.mode === "instant" && (
          <TableView answers={result.answers.map((a) => a?.body.data)} tz={state.tz} time={result.time} />
        )}
        {state.tab === "json" && <JsonView answers={jsonAnswers} />}
        {state.tab === "cardinality" && (
          <Cardinality api={api} params={state.card} onParams={(card) => update({ card }, true)} onQuery={openQuery} />
        )}
        {state.tab === "queries" && <QueriesView api={api} onQuery={openQuery} tick={tick} />}
        {state.tab === "alerts" && <AlertsView api={api} onQuery={openQuery} tick={tick} />}
        {needsQueries && !result && !loading && (
          <div class="muted empty">Type a query above and press Ctrl+Enter. Start typing a metric name for suggestions.</div>
        )}
      </main>
    </div>
  );
}
