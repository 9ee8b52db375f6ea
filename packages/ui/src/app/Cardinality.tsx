import { useEffect, useState } from "preact/hooks";
import type { Api, RawAnswer } from "./api";
import type { CardinalityParams } from "./state";
import { ErrorBox } from "./ErrorBox";

export interface NameValue { readonly name: string; readonly value: number }

export interface TsdbStatus {
  readonly totalSeries?: number;
  /** Prometheus answers headStats instead of totalSeries. */
  readonly headStats?: { readonly numSeries?: number };
  readonly totalLabelValuePairs?: number;
  readonly seriesCountByMetricName?: readonly NameValue[];
  readonly seriesCountByLabelName?: readonly NameValue[];
  readonly seriesCountByFocusLabelValue?: readonly NameValue[];
  readonly seriesCountByLabelValuePair?: readonly NameValue[];
  readonly labelValueCountByLabelName?: readonly NameValue[];
}

export function tsdbParams(p: CardinalityParams): Array<[string, string]> {
  const out: Array<[string, string]> = [["topN", String(p.topN)]];
  if (p.date !== "") out.push(["date", p.date]);
  if (p.focusLabel !== "") out.push(["focusLabel", p.focusLabel]);
  if (p.match !== "") out.push(["match[]", p.match]);
  return out;
}

/** Selector for a `label=value` pair (as status/tsdb names it), combined with the match filter. */
export function pairSelector(pair: string, match: string): string {
  const eq = pair.indexOf("=");
  const label = eq < 0 ? pair : pair.slice(0, eq);
  const value = eq < 0 ? "" : pair.slice(eq + 1);
  return selectorWith(match, label, value);
}

export function selectorWith(match: string, label: string, value: string): string {
  const m = /^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*$/.exec(match);
  const matcher = `${label}=${JSON.stringify(value)}`;
  if (!m || match.trim() === "") return label === "__name__" ? value : `{${matcher}}`;
  const name = m[1] ?? "";
  const inner = (m[2] ?? "").trim();
  if (label === "__name__") return `${value}${inner ? `{${inner}}` : ""}`;
  return `${name}{${inner ? inner + ", " : ""}${matcher}}`;
}

export interface CardinalityProps {
  readonly api: Api;
  readonly params: CardinalityParams;
  readonly onParams: (p: CardinalityParams) => void;
  /** Click-through: open this selector on the graph tab. */
  readonly onQuery: (q: string) => void;
}

export function Cardinality({ api, params, onParams, onQuery }: CardinalityProps) {
  const [answer, setAnswer] = useState<RawAnswer<TsdbStatus> | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(false);
  const [draft, setDraft] = useState(params);

  useEffect(() => setDraft(params), [params]);
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    api.get<TsdbStatus>("status/tsdb", tsdbParams(params), params.match, ac.signal)
      .then((a) => { setAnswer(a); setError(undefined); })
      .catch((e: unknown) => { if (!ac.signal.aborted) setError(e); })
      .finally(() => { if (!ac.signal.aborted) setLoading(false); });
    return () => ac.abort();
  }, [api, params]);

  const d = answer?.body.data;
  const total = d?.totalSeries ?? d?.headStats?.numSeries ?? 0;
  const table = (title: string, rows: readonly NameValue[] | undefined, onClick: ((r: NameValue) => void) | undefined, unit: string, share: boolean, testid: string) => (
    <section class="card-table" data-testid={testid}>
      <h3>{title}</h3>
      <table>
        <thead><tr><th>Name</th><th class="num">{unit}</th>{share && <th>Share</th>}</tr></thead>
        <tbody>
          {(rows ?? []).map((r) => (
            <tr key={r.name}>
              <td class="mono">{onClick ? <a href="#" onClick={(e) => { e.preventDefault(); onClick(r); }}>{r.name}</a> : r.name}</td>
              <td class="num">{r.value.toLocaleString("en-US")}</td>
              {share && (
                <td class="share">
                  <span class="bar" style={{ width: `${total > 0 ? Math.min(100, (100 * r.value) / total) : 0}%` }} />
                  {total > 0 ? `${((100 * r.value) / total).toFixed(1)}%` : ""}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {(rows ?? []).length === 0 && <div class="muted">none</div>}
    </section>
  );

  return (
    <div class="cardinality">
      <form
        class="card-form"
        onSubmit={(e) => { e.preventDefault(); onParams(draft); }}
      >
        <label>match[] <input data-testid="card-match" value={draft.match} placeholder='e.g. {job="node"}' onInput={(e) => setDraft({ ...draft, match: e.currentTarget.value })} /></label>
        <label>focus label <input data-testid="card-focus" value={draft.focusLabel} placeholder="e.g. instance" onInput={(e) => setDraft({ ...draft, focusLabel: e.currentTarget.value })} /></label>
        <label>date <input type="date" value={draft.date} onInput={(e) => setDraft({ ...draft, date: e.currentTarget.value })} /></label>
        <label>top N <input type="number" min={1} max={1000} value={draft.topN} onInput={(e) => setDraft({ ...draft, topN: Math.max(1, Number(e.currentTarget.value) || 10) })} /></label>
        <button type="submit">Apply</button>
        {loading && <span class="muted">loading…</span>}
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {d && (
        <>
          <div class="card-totals" data-testid="card-total">
            <div><span class="big">{total.toLocaleString("en-US")}</span> series{params.date ? ` on ${params.date}` : " today"}</div>
            {d.totalLabelValuePairs !== undefined && <div><span class="big">{d.totalLabelValuePairs.toLocaleString("en-US")}</span> label=value pairs</div>}
          </div>
          <div class="card-grid">
            {table("Series by metric name", d.seriesCountByMetricName, (r) => onQuery(selectorWith(params.match, "__name__", r.name)), "Series", true, "card-metrics")}
            {table("Series by label name", d.seriesCountByLabelName, (r) => onParams({ ...params, focusLabel: r.name }), "Series", true, "card-labels")}
            {params.focusLabel !== "" && table(`Series by value of "${params.focusLabel}"`, d.seriesCountByFocusLabelValue, (r) => onQuery(selectorWith(params.match, params.focusLabel, r.name)), "Series", true, "card-focus-values")}
            {table("Series by label=value pair", d.seriesCountByLabelValuePair, (r) => onQuery(pairSelector(r.name, params.match)), "Series", true, "card-pairs")}
            {table("Unique values by label name", d.labelValueCountByLabelName, (r) => onParams({ ...params, focusLabel: r.name }), "Values", false, "card-label-values")}
          </div>
        </>
      )}
    </div>
  );
}
