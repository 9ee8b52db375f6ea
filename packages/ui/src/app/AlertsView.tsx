// Rules and alerts from /api/v1/rules (Prometheus' shape; select forwards it to the alert
// service given -vmalert.proxyURL): groups, rules with health and last error, firing alerts.
import { useEffect, useState } from "preact/hooks";
import type { Api } from "./api";
import { ErrorBox } from "./ErrorBox";

export interface RuleAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly state: string;
  readonly activeAt?: string;
  readonly value?: string;
}

export interface RuleJson {
  readonly name: string;
  readonly query: string;
  readonly type: "alerting" | "recording";
  readonly health: string;
  readonly lastError?: string;
  readonly state?: string;
  readonly evaluationTime?: number;
  readonly lastEvaluation?: string;
  readonly duration?: number;
  readonly alerts?: readonly RuleAlert[];
}

export interface RuleGroupJson {
  readonly name: string;
  readonly file: string;
  readonly interval?: number;
  readonly lastEvaluation?: string;
  readonly evaluationTime?: number;
  readonly rules: readonly RuleJson[];
}

export interface RulesSummary {
  readonly groups: number;
  readonly rules: number;
  readonly firing: number;
  readonly pending: number;
  readonly errors: number;
}

export function summarize(groups: readonly RuleGroupJson[]): RulesSummary {
  let rules = 0, firing = 0, pending = 0, errors = 0;
  for (const g of groups) {
    for (const r of g.rules) {
      rules++;
      if (r.health === "err") errors++;
      for (const a of r.alerts ?? []) {
        if (a.state === "firing") firing++;
        else if (a.state === "pending") pending++;
      }
    }
  }
  return { groups: groups.length, rules, firing, pending, errors };
}

const labelText = (l: Readonly<Record<string, string>>): string =>
  Object.entries(l).filter(([k]) => k !== "alertname").map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");

function stateClass(r: RuleJson): string {
  if (r.health === "err") return "rule-err";
  if (r.state === "firing") return "rule-firing";
  if (r.state === "pending") return "rule-pending";
  return "rule-ok";
}

export function AlertsView({ api, onQuery, tick }: { api: Api; onQuery: (q: string) => void; tick: number }) {
  const [groups, setGroups] = useState<readonly RuleGroupJson[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [onlyActive, setOnlyActive] = useState(false);

  useEffect(() => {
    const ac = new AbortController();
    api.get<{ groups?: RuleGroupJson[] }>("rules", [], "", ac.signal).then(
      (a) => { setGroups(a.body.data.groups ?? []); setError(undefined); },
      (e: unknown) => { if (!ac.signal.aborted) setError(e); },
    );
    return () => ac.abort();
  }, [api, tick]);

  if (error !== undefined) return <ErrorBox error={error} />;
  if (groups === undefined) return <p class="muted">Loading rules…</p>;
  const s = summarize(groups);
  if (s.rules === 0) {
    return <p class="muted" data-testid="alerts-empty">No rules. Start strata-alert and give select <code>-vmalert.proxyURL</code> to see its rules and alerts here.</p>;
  }
  return (
    <div class="alerts-view">
      <p data-testid="alerts-summary">
        {s.groups} groups, {s.rules} rules: <b class="rule-firing">{s.firing} firing</b>, <span class="rule-pending">{s.pending} pending</span>
        {s.errors > 0 && <>, <span class="rule-err">{s.errors} with errors</span></>}
        <label class="inline"><input type="checkbox" checked={onlyActive} onChange={(e) => setOnlyActive((e.target as HTMLInputElement).checked)} /> only firing, pending or failing</label>
      </p>
      {groups.map((g) => {
        const rules = onlyActive ? g.rules.filter((r) => r.health === "err" || (r.alerts?.length ?? 0) > 0) : g.rules;
        if (rules.length === 0) return null;
        return (
          <section class="card-table" key={`${g.file}/${g.name}`} data-testid={`group-${g.name}`}>
            <h3>{g.name} <span class="muted">{g.file}{g.interval !== undefined ? ` · every ${g.interval}s` : ""}{g.lastEvaluation ? ` · last ${g.lastEvaluation}` : ""}</span></h3>
            <table>
              <thead><tr><th>Rule</th><th>State</th><th>Query</th><th class="num">Eval time</th><th>Last error</th></tr></thead>
              <tbody>
                {rules.map((r) => (
                  <>
                    <tr key={r.name} data-testid={`rule-${r.name}`}>
                      <td>{r.type === "alerting" ? "🔔 " : "⏺ "}{r.name}</td>
                      <td class={stateClass(r)}>{r.health === "err" ? "error" : r.type === "alerting" ? r.state ?? "inactive" : "ok"}</td>
                      <td><a href="#" class="mono" onClick={(e) => { e.preventDefault(); onQuery(r.query); }}>{r.query}</a></td>
                      <td class="num">{r.evaluationTime !== undefined ? `${(r.evaluationTime * 1000).toFixed(1)} ms` : ""}</td>
                      <td class="rule-err" data-testid={`error-${r.name}`}>{r.lastError ?? ""}</td>
                    </tr>
                    {(r.alerts ?? []).map((a, i) => (
                      <tr key={`${r.name}-${i}`} class="alert-row" data-testid={`alert-${r.name}`}>
                        <td></td>
                        <td class={a.state === "firing" ? "rule-firing" : "rule-pending"}>{a.state}</td>
                        <td class="mono" colSpan={2}>{labelText(a.labels)}{a.annotations?.["summary"] ? ` — ${a.annotations["summary"]}` : ""}</td>
                        <td class="muted">since {a.activeAt ?? "?"}{a.value !== undefined ? `, value ${a.value}` : ""}</td>
                      </tr>
                    ))}
                  </>
                ))}
              </tbody>
            </table>
          </section>
        );
      })}
    </div>
  );
}
