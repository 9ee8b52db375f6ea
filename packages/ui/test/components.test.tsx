// @vitest-environment happy-dom
import { render } from "preact";
import { useState } from "preact/hooks";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, type FetchFn } from "../src/app/api";
import { App, type AppEnv } from "../src/app/App";
import { Cardinality } from "../src/app/Cardinality";
import { Completer } from "../src/app/completer";
import { ErrorBox } from "../src/app/ErrorBox";
import { JsonView } from "../src/app/JsonView";
import { QueryEditor } from "../src/app/QueryEditor";
import { TableView } from "../src/app/TableView";

// A small in-memory Prometheus API answering from a fixed data set (the UI's input here; the
// browser end-to-end test runs against a real server).
const SERIES = [
  { __name__: "http_requests_total", job: "api", instance: "a:1" },
  { __name__: "http_requests_total", job: "web", instance: "b:1" },
  { __name__: "node_load1", job: "node", instance: "n:1" },
];
const calls: string[] = [];
const promApi: FetchFn = async (url) => {
  calls.push(url);
  const u = new URL(url, "http://x");
  const path = u.pathname.replace(/^.*\/api\/v1\//, "");
  const match = u.searchParams.get("match[]");
  const scoped = SERIES.filter((s) => !match || s.__name__ === match);
  const ok = (data: unknown, extra: object = {}) => ({ status: 200, text: async () => JSON.stringify({ status: "success", data, ...extra }) });
  if (path === "labels") return ok([...new Set(scoped.flatMap((s) => Object.keys(s)))].sort());
  const lv = /^label\/([^/]+)\/values$/.exec(path);
  if (lv) return ok([...new Set(scoped.map((s) => (s as Record<string, string>)[decodeURIComponent(lv[1] ?? "")]).filter(Boolean))].sort());
  const q = u.searchParams.get("query") ?? "";
  if (q.includes(")")) return { status: 400, text: async () => JSON.stringify({ status: "error", errorType: "bad_data", error: `1:${q.indexOf(")") + 1}: parse error: unexpected right parenthesis ')'` }) };
  const sel = SERIES.filter((s) => s.__name__ === q);
  if (path === "query") return ok({ resultType: "vector", result: sel.map((m, i) => ({ metric: m, value: [100, String(i * 10)] })) }, { warnings: ["result may be approximate"] });
  if (path === "query_range") return ok({ resultType: "matrix", result: sel.map((m, i) => ({ metric: m, values: [[60, String(i)], [120, String(i + 1)]] })) }, { isPartial: true });
  if (path === "status/tsdb") {
    return ok({
      totalSeries: 3, totalLabelValuePairs: 9,
      seriesCountByMetricName: [{ name: "http_requests_total", value: 2 }, { name: "node_load1", value: 1 }],
      seriesCountByLabelName: [{ name: "job", value: 3 }], seriesCountByFocusLabelValue: [],
      seriesCountByLabelValuePair: [{ name: "job=api", value: 1 }], labelValueCountByLabelName: [{ name: "job", value: 3 }],
    });
  }
  return { status: 404, text: async () => "not found" };
};

let host: HTMLElement | undefined;
function mount(vnode: preact.ComponentChild): HTMLElement {
  host = document.createElement("div");
  document.body.appendChild(host);
  act(() => render(vnode, host as HTMLElement));
  return host;
}
afterEach(() => {
  if (host) { render(null, host); host.remove(); host = undefined; }
  calls.length = 0;
  vi.useRealTimers();
});

const settle = async (ms = 30): Promise<void> => {
  await act(async () => { await new Promise((r) => setTimeout(r, ms)); });
};

function type(el: HTMLTextAreaElement, value: string): void {
  act(() => {
    el.value = value;
    el.setSelectionRange(value.length, value.length);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
}
function key(el: Element, k: string, mods: KeyboardEventInit = {}): void {
  act(() => { el.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...mods })); });
}

const editorCompleter = (): Completer => new Completer(new Api("/select/0/prometheus/api/v1/", promApi));

function Editor(props: { initial: string; onRun?: () => void; errorOffset?: number }) {
  const [value, setValue] = useState(props.initial);
  const [completer] = useState(editorCompleter);
  return <QueryEditor index={0} value={value} onChange={setValue} onRun={props.onRun ?? (() => undefined)} completer={completer} history={["up"]} debounceMs={0} errorOffset={props.errorOffset} />;
}

describe("QueryEditor", () => {
  it("highlights PromQL and marks the parse error position", () => {
    const el = mount(<Editor initial={'rate(up{job="a"}[5m]))'} errorOffset={21} />);
    const classes = [...el.querySelectorAll(".editor-highlight span")].map((s) => `${s.className}:${s.textContent}`);
    expect(classes).toContain("tok-fn:rate");
    expect(classes).toContain("tok-label:job");
    expect(classes).toContain('tok-string:"a"');
    expect(classes).toContain("tok-duration:5m");
    expect(el.querySelector(".err-pos")?.textContent).toBe(")");
  });

  it("completes metric names, label names and label values scoped by the metric", async () => {
    const el = mount(<Editor initial="" />);
    const ta = el.querySelector("textarea") as HTMLTextAreaElement;
    type(ta, "http_req");
    await settle();
    expect([...el.querySelectorAll("[data-testid=suggestions] li")].map((l) => l.textContent)).toEqual(["mhttp_requests_total"]);
    key(ta, "ArrowDown");
    key(ta, "Enter");
    await settle();
    expect(ta.value).toBe("http_requests_total");

    type(ta, "http_requests_total{");
    await settle();
    const labels = [...el.querySelectorAll("[data-testid=suggestions] li")].map((l) => l.textContent?.slice(1));
    expect(labels).toEqual(["instance", "job"]);
    expect(calls.some((c) => c.includes("labels?match%5B%5D=http_requests_total"))).toBe(true);
    key(ta, "ArrowDown");
    key(ta, "ArrowDown");
    key(ta, "Tab");
    await settle();
    expect(ta.value).toBe("http_requests_total{job");

    type(ta, "http_requests_total{job=");
    await settle();
    expect([...el.querySelectorAll("[data-testid=suggestions] li")].map((l) => l.textContent?.slice(1))).toEqual(["api", "web"]);
    key(ta, "Tab");
    await settle();
    expect(ta.value).toBe('http_requests_total{job="api"');
  });

  it.each([
    ["http_requests_total", "mhttp_requests_total"],
    ["http_req", "mhttp_requests_total"],
  ])("Enter runs %j as typed while suggestions (first: %j) are open", async (typed, first) => {
    const onRun = vi.fn();
    const el = mount(<Editor initial="" onRun={onRun} />);
    const ta = el.querySelector("textarea") as HTMLTextAreaElement;
    type(ta, typed);
    await settle();
    expect(el.querySelector("[data-testid=suggestions] li")?.textContent).toBe(first);
    key(ta, "Enter");
    await settle();
    expect(onRun).toHaveBeenCalledTimes(1);
    expect(ta.value).toBe(typed);
    expect(el.querySelector("[data-testid=suggestions]")).toBeNull();
  });

  it("runs on Ctrl+Enter and on Enter, but Shift+Enter does not run", () => {
    const onRun = vi.fn();
    const el = mount(<Editor initial="up" onRun={onRun} />);
    const ta = el.querySelector("textarea") as HTMLTextAreaElement;
    key(ta, "Enter", { ctrlKey: true });
    key(ta, "Enter", { metaKey: true });
    key(ta, "Enter");
    key(ta, "Enter", { shiftKey: true });
    expect(onRun).toHaveBeenCalledTimes(3);
  });
});

describe("views", () => {
  it("sorts the table by a column on click", () => {
    const el = mount(<TableView tz="UTC" time={100_000} answers={[{ resultType: "vector", result: [
      { metric: { __name__: "a" }, value: [100, "5"] }, { metric: { __name__: "b" }, value: [100, "50"] }, { metric: { __name__: "c" }, value: [100, "7"] },
    ] }]} />);
    const names = () => [...el.querySelectorAll("tbody tr td:nth-child(2)")].map((td) => td.textContent);
    expect(names()).toEqual(["a", "b", "c"]);
    act(() => (el.querySelector("[data-testid=sort-value]") as HTMLElement).click());
    expect(names()).toEqual(["b", "c", "a"]);
    act(() => (el.querySelector("[data-testid=sort-value]") as HTMLElement).click());
    expect(names()).toEqual(["a", "c", "b"]);
  });

  it("shows the raw JSON answer pretty-printed", () => {
    const el = mount(<JsonView answers={[{ query: "up", url: "/q?query=up", text: '{"status":"success","data":[]}' }]} />);
    expect(el.querySelector("[data-testid=json]")?.textContent).toBe('{\n  "status": "success",\n  "data": []\n}');
    expect(el.querySelector("[data-testid=copy-0]")).not.toBeNull();
  });

  it("copies the raw answer text with the Copy button", async () => {
    const written: string[] = [];
    const saved = Object.getOwnPropertyDescriptor(navigator, "clipboard");
    Object.defineProperty(navigator, "clipboard", { configurable: true, value: { writeText: async (t: string) => void written.push(t) } });
    try {
      const raw = '{"status":"success","data":{"resultType":"vector","result":[]}}';
      const el = mount(<JsonView answers={[{ query: "a", url: "/q?query=a", text: "{}" }, { query: "b", url: "/q?query=b", text: raw }]} />);
      const button = el.querySelector("[data-testid=copy-1]") as HTMLButtonElement;
      act(() => button.click());
      await settle();
      expect(written).toEqual([raw]);
      expect(button.textContent).toBe("Copied");
      expect(el.querySelector("[data-testid=copy-0]")?.textContent).toBe("Copy");
    } finally {
      if (saved) Object.defineProperty(navigator, "clipboard", saved);
      else delete (navigator as { clipboard?: unknown }).clipboard;
    }
  });

  it("shows an API error with its type, message, query and position", () => {
    const el = mount(<ErrorBox error={new ApiError("1:4: parse error: unexpected <op:*>", "bad_data", 400, "up *", "/q")} />);
    expect(el.textContent).toContain("bad_data");
    expect(el.textContent).toContain("HTTP 400");
    expect(el.textContent).toContain("line 1, column 4");
    expect(el.querySelector(".error-query")?.textContent).toBe("up *\n   ^");
  });

  it("renders the cardinality explorer and clicks through to a query", async () => {
    const onQuery = vi.fn();
    const onParams = vi.fn();
    const api = new Api("/select/0/prometheus/api/v1/", promApi);
    const el = mount(<Cardinality api={api} params={{ topN: 10, date: "", focusLabel: "", match: "" }} onParams={onParams} onQuery={onQuery} />);
    await settle();
    expect(el.querySelector("[data-testid=card-total]")?.textContent).toContain("3 series");
    const link = [...el.querySelectorAll("[data-testid=card-metrics] a")].find((a) => a.textContent === "node_load1") as HTMLElement;
    act(() => link.click());
    expect(onQuery).toHaveBeenCalledWith("node_load1");
    act(() => ([...el.querySelectorAll("[data-testid=card-pairs] a")][0] as HTMLElement).click());
    expect(onQuery).toHaveBeenLastCalledWith('{job="api"}');
    act(() => ([...el.querySelectorAll("[data-testid=card-labels] a")][0] as HTMLElement).click());
    expect(onParams).toHaveBeenCalledWith({ topN: 10, date: "", focusLabel: "job", match: "" });
    expect(calls.some((c) => c.includes("status/tsdb?topN=10"))).toBe(true);
  });
});

describe("App", () => {
  function env(search: string, urls: string[]): AppEnv {
    const m = new Map<string, string>();
    return {
      pathname: "/select/3:1/vmui/", search, now: () => 200_000,
      storage: { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v) },
      setUrl: (s) => void urls.push(s), navigate: (h) => void urls.push("NAVIGATE " + h),
      api: new Api("/select/3:1/prometheus/api/v1/", promApi),
    };
  }

  it("runs the queries from the URL, shows partial/warnings/errors, keeps state in the URL", async () => {
    const urls: string[] = [];
    const el = mount(<App env={env("?tab=table&q=http_requests_total&q=bad)&range=5m", urls)} />);
    await settle();
    expect(calls.some((c) => c.startsWith("/select/3:1/prometheus/api/v1/query?query=http_requests_total&time=200"))).toBe(true);
    expect(el.querySelectorAll("[data-testid=result-table] tbody tr")).toHaveLength(2);
    expect(el.querySelector("[data-testid=api-warning]")?.textContent).toBe("result may be approximate");
    expect(el.querySelector("[data-testid=error]")?.textContent).toContain("unexpected right parenthesis");
    expect(el.querySelectorAll("[data-testid=query-1] ~ * .err-pos, .err-pos")).toHaveLength(1);

    act(() => (el.querySelector("[data-testid=tab-json]") as HTMLElement).click());
    await settle();
    expect(urls.at(-1)).toBe("?tab=json&q=http_requests_total&q=bad%29&range=5m");
    expect(calls.some((c) => c.includes("query_range?query=http_requests_total&start=-100&end=200&step=1"))).toBe(true);
    expect(el.querySelector("[data-testid=partial]")).not.toBeNull();
    expect(el.querySelector("[data-testid=json]")?.textContent).toContain('"resultType": "matrix"');
  });

  it("auto-refresh re-runs the queries every interval until it is set to off", async () => {
    // Only the interval timer is faked: the API stub and settle() keep real timers.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const urls: string[] = [];
    // The table tab (instant queries): happy-dom has no canvas for the graph.
    const ranges = (): number => calls.filter((c) => c.includes("/query?query=node_load1")).length;
    const el = mount(<App env={env("?tab=table&q=node_load1&range=5m&refresh=5s", urls)} />);
    await settle();
    expect(ranges()).toBe(1);
    act(() => void vi.advanceTimersByTime(5000));
    await settle();
    expect(ranges()).toBe(2);
    for (let i = 0; i < 2; i++) {
      act(() => void vi.advanceTimersByTime(5000));
      await settle();
    }
    expect(ranges()).toBe(4);
    const refresh = [...el.querySelectorAll("label")].find((l) => l.textContent?.startsWith("refresh"))?.querySelector("select") as HTMLSelectElement;
    act(() => { refresh.value = "off"; refresh.dispatchEvent(new Event("change", { bubbles: true })); });
    await settle();
    expect(urls.at(-1)).not.toContain("refresh=");
    act(() => void vi.advanceTimersByTime(60_000));
    await settle();
    expect(ranges()).toBe(4);
  });

  it("switches tenant by URL, keeping the view", () => {
    const urls: string[] = [];
    const el = mount(<App env={env("?tab=cardinality&q=up", urls)} />);
    const input = el.querySelector("[data-testid=tenant]") as HTMLInputElement;
    act(() => { input.value = "42"; input.dispatchEvent(new Event("input", { bubbles: true })); });
    act(() => { (el.querySelector(".tenant") as HTMLFormElement).dispatchEvent(new Event("submit", { bubbles: true, cancelable: true })); });
    expect(urls.at(-1)).toBe("NAVIGATE /select/42/vmui/?tab=cardinality&q=up&range=1h&topN=10");
  });
});
