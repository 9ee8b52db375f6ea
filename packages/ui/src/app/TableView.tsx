import { useState } from "preact/hooks";
import type { QueryData } from "./api";
import { formatValue, sampleValue, seriesName } from "./graphData";
import { formatTime } from "./time";

export interface TableRow {
  readonly queryIndex: number;
  readonly name: string;
  readonly value: number | null;
  readonly raw: string;
  readonly ts: number;
}

export function tableRows(answers: ReadonlyArray<QueryData | undefined>): TableRow[] {
  const rows: TableRow[] = [];
  answers.forEach((d, q) => {
    if (!d) return;
    switch (d.resultType) {
      case "vector":
        for (const s of d.result) rows.push({ queryIndex: q, name: seriesName(s.metric), value: sampleValue(s.value[1]), raw: s.value[1], ts: s.value[0] });
        break;
      case "matrix":
        for (const s of d.result) {
          const last = s.values[s.values.length - 1];
          const raw = s.values.map((v) => `${v[1]} @${v[0]}`).join("\n");
          rows.push({ queryIndex: q, name: seriesName(s.metric), value: last ? sampleValue(last[1]) : null, raw, ts: last?.[0] ?? 0 });
        }
        break;
      case "scalar":
      case "string":
        rows.push({ queryIndex: q, name: d.resultType, value: d.resultType === "scalar" ? sampleValue(d.result[1]) : null, raw: d.result[1], ts: d.result[0] });
        break;
    }
  });
  return rows;
}

export type SortKey = "query" | "name" | "value";

export function sortRows(rows: readonly TableRow[], key: SortKey, desc: boolean): TableRow[] {
  const dir = desc ? -1 : 1;
  const cmp = (a: TableRow, b: TableRow): number => {
    switch (key) {
      case "query": return a.queryIndex - b.queryIndex || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      case "name": return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
      case "value": {
        // Missing values sort last whatever the direction.
        if (a.value === null || b.value === null) return (a.value === null ? 1 : 0) - (b.value === null ? 1 : 0);
        return (a.value - b.value) * dir;
      }
    }
  };
  return [...rows].sort((a, b) => (key === "value" ? cmp(a, b) : cmp(a, b) * dir));
}

export function TableView({ answers, tz, time }: { answers: ReadonlyArray<QueryData | undefined>; tz: string; time: number }) {
  const [key, setKey] = useState<SortKey>("query");
  const [desc, setDesc] = useState(false);
  const rows = sortRows(tableRows(answers), key, desc);
  const head = (k: SortKey, label: string) => (
    <th
      data-testid={`sort-${k}`}
      class="sortable"
      aria-sort={key === k ? (desc ? "descending" : "ascending") : "none"}
      onClick={() => { if (key === k) setDesc(!desc); else { setKey(k); setDesc(k === "value"); } }}
    >
      {label} {key === k ? (desc ? "▼" : "▲") : ""}
    </th>
  );
  return (
    <div class="table-view">
      <div class="muted">Instant query at {formatTime(time, tz)} · {rows.length} rows</div>
      <table data-testid="result-table">
        <thead>
          <tr>{head("query", "#")}{head("name", "Series")}{head("value", "Value")}</tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td class="q-col"><span class="q-badge">{r.queryIndex + 1}</span></td>
              <td class="mono">{r.name}</td>
              <td class="mono num" title={r.raw}>{r.raw.includes("\n") ? <pre>{r.raw}</pre> : formatValue(r.value) === r.raw ? r.raw : r.raw}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length === 0 && <div class="muted empty">No series at this time.</div>}
    </div>
  );
}
