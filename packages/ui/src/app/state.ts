// Everything the user sees is described by AppState, and AppState lives in the URL query
// string (the tenant lives in the path), so a copied link reproduces the view.
import { parseDurationMs, parseTimeInput, RELATIVE_RANGES, REFRESH_INTERVALS } from "./time";

export const TABS = ["graph", "table", "json", "cardinality", "queries", "alerts"] as const;
export type Tab = (typeof TABS)[number];

export interface CardinalityParams {
  readonly topN: number;
  readonly date: string; // YYYY-MM-DD or "" for today
  readonly focusLabel: string;
  readonly match: string;
}

export interface AppState {
  readonly tab: Tab;
  readonly queries: readonly string[];
  /** Relative range ("1h"), used when from/to are absent. */
  readonly range: string;
  /** Absolute range in ms; both set or both undefined. */
  readonly from: number | undefined;
  readonly to: number | undefined;
  readonly step: string; // "auto" or a duration
  readonly refresh: string; // "off" or a duration
  readonly tz: string; // "browser" or an IANA zone
  readonly card: CardinalityParams;
}

export const DEFAULT_STATE: AppState = {
  tab: "graph",
  queries: [""],
  range: "1h",
  from: undefined,
  to: undefined,
  step: "auto",
  refresh: "off",
  tz: "browser",
  card: { topN: 10, date: "", focusLabel: "", match: "" },
};

function isTab(s: string | null): s is Tab {
  return s !== null && (TABS as readonly string[]).includes(s);
}

export function decodeState(search: string): AppState {
  const p = new URLSearchParams(search);
  const queries = p.getAll("q");
  const range = p.get("range") ?? "";
  const from = parseTimeInput(p.get("from") ?? "");
  const to = parseTimeInput(p.get("to") ?? "");
  const step = p.get("step") ?? "auto";
  const refresh = p.get("refresh") ?? "off";
  const topN = Number(p.get("topN") ?? "");
  const tab = p.get("tab");
  return {
    tab: isTab(tab) ? tab : DEFAULT_STATE.tab,
    queries: queries.length > 0 ? queries : DEFAULT_STATE.queries,
    range: parseDurationMs(range) !== undefined ? range : DEFAULT_STATE.range,
    ...(from !== undefined && to !== undefined && from < to ? { from, to } : { from: undefined, to: undefined }),
    step: step === "auto" || parseDurationMs(step) !== undefined ? step : "auto",
    refresh: (REFRESH_INTERVALS as readonly string[]).includes(refresh) ? refresh : "off",
    tz: p.get("tz") ?? DEFAULT_STATE.tz,
    card: {
      topN: Number.isInteger(topN) && topN > 0 ? Math.min(topN, 1000) : DEFAULT_STATE.card.topN,
      date: /^\d{4}-\d{2}-\d{2}$/.test(p.get("date") ?? "") ? (p.get("date") ?? "") : "",
      focusLabel: p.get("focusLabel") ?? "",
      match: p.get("match") ?? "",
    },
  };
}

/** Query string (with leading "?") for a state; defaults are left out to keep links short. */
export function encodeState(s: AppState): string {
  const p = new URLSearchParams();
  p.set("tab", s.tab);
  for (const q of s.queries) p.append("q", q);
  p.set("range", s.range);
  if (s.from !== undefined && s.to !== undefined) {
    p.set("from", new Date(s.from).toISOString());
    p.set("to", new Date(s.to).toISOString());
  }
  if (s.step !== "auto") p.set("step", s.step);
  if (s.refresh !== "off") p.set("refresh", s.refresh);
  if (s.tz !== "browser") p.set("tz", s.tz);
  if (s.tab === "cardinality") {
    p.set("topN", String(s.card.topN));
    if (s.card.date !== "") p.set("date", s.card.date);
    if (s.card.focusLabel !== "") p.set("focusLabel", s.card.focusLabel);
    if (s.card.match !== "") p.set("match", s.card.match);
  }
  return "?" + p.toString();
}

/** The [start, end] in ms that a state asks for at time `now`. */
export function timeWindow(s: AppState, now: number): { start: number; end: number } {
  if (s.from !== undefined && s.to !== undefined) return { start: s.from, end: s.to };
  const r = parseDurationMs(s.range) ?? 3_600_000;
  return { start: now - r, end: now };
}

export const TENANT_RE = /^(\d{1,10})(?::(\d{1,10}))?$/;

export function isValidTenant(t: string): boolean {
  const m = TENANT_RE.exec(t);
  if (!m) return false;
  return Number(m[1]) <= 0xffffffff && (m[2] === undefined || Number(m[2]) <= 0xffffffff);
}

const PATH_RE = /^(.*\/select\/)([^/]+)(\/vmui(?:\/.*)?)$/;

/** Tenant from a pathname like /select/5:1/vmui/ ("0" when the path has none). */
export function tenantOf(pathname: string): string {
  const m = PATH_RE.exec(pathname);
  return m ? decodeURIComponent(m[2] ?? "0") : "0";
}

/** The same UI under another tenant: /select/0/vmui/ → /select/7:2/vmui/. */
export function pathForTenant(pathname: string, tenant: string): string {
  const m = PATH_RE.exec(pathname);
  if (!m) return `/select/${tenant}/vmui/`;
  return `${m[1] ?? ""}${tenant}${m[3] ?? "/vmui/"}`;
}

/** Base URL of the Prometheus API for the UI at `pathname`: …/select/<t>/prometheus/api/v1/ */
export function apiBasePath(pathname: string): string {
  const m = PATH_RE.exec(pathname);
  if (!m) return "/select/0/prometheus/api/v1/";
  return `${m[1] ?? ""}${m[2] ?? "0"}/prometheus/api/v1/`;
}

export const RANGES = RELATIVE_RANGES;

const HISTORY_KEY = "strata.queryHistory";
const HISTORY_MAX = 50;

export interface KeyValueStore {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
}

export function loadHistory(store: KeyValueStore): string[] {
  try {
    const v: unknown = JSON.parse(store.getItem(HISTORY_KEY) ?? "[]");
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** Most recent first, without duplicates, at most HISTORY_MAX entries. */
export function pushHistory(store: KeyValueStore, queries: readonly string[]): string[] {
  let h = loadHistory(store);
  for (const q of queries) {
    const t = q.trim();
    if (t === "") continue;
    h = [t, ...h.filter((x) => x !== t)];
  }
  h = h.slice(0, HISTORY_MAX);
  try {
    store.setItem(HISTORY_KEY, JSON.stringify(h));
  } catch {
    // storage full or disabled: history is a convenience
  }
  return h;
}
