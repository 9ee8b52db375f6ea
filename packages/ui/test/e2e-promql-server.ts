// The Prometheus HTTP API over @strata/promql's engine and in-memory querier, plus the built
// UI through serveUi: what select does, minus the cluster. Used by the browser test so the UI is
// exercised against Strata's own parser and evaluator (errors, positions, result shapes)
// without the storage and insert services.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { errorTypeOf, httpStatusOf, BadDataError, type Labels } from "@strata/core";
import { createEngine, formatPromValue, MemoryQuerier, parseMetricSelector, type QueryResult } from "@strata/promql";
import { serveUi } from "@strata/ui";

export interface DemoSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly timestamps: readonly number[];
  readonly values: readonly number[];
}

interface Finished { query: string; rangeSeconds: number; seconds: number; at: number }
interface Running { id: number; query: string; start: number; end: number; step: number; since: number; remote: string }

function record(labels: Labels): Record<string, string> {
  const r: Record<string, string> = {};
  for (const l of labels) r[l.name] = l.value;
  return r;
}

function resultJson(r: QueryResult): unknown {
  switch (r.type) {
    case "scalar": return { resultType: "scalar", result: [r.timestamp / 1000, formatPromValue(r.value)] };
    case "string": return { resultType: "string", result: [r.timestamp / 1000, r.value] };
    case "vector": return { resultType: "vector", result: r.labels.map((l, i) => ({ metric: record(l), value: [r.timestamp / 1000, formatPromValue(r.values[i] ?? NaN)] })) };
    case "matrix": return {
      resultType: "matrix",
      result: r.series.map((s) => ({ metric: record(s.labels), values: Array.from(s.timestamps, (t, i) => [t / 1000, formatPromValue(s.values[i] ?? NaN)]) })),
    };
  }
}

function time(v: string | null, def: number): number {
  if (v === null || v === "") return def;
  const n = Number(v);
  if (Number.isFinite(n)) return Math.round(n * 1000);
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw new BadDataError(`invalid time ${JSON.stringify(v)}`);
  return ms;
}

export class PromqlApiServer {
  readonly querier = new MemoryQuerier();
  private readonly engine = createEngine();
  private readonly finished: Finished[] = [];
  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private server: Server | undefined;

  load(series: readonly DemoSeries[]): void {
    for (const s of series) this.querier.add(s.labels, s.timestamps, s.values);
  }

  async listen(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server?.listen(0, "127.0.0.1", r));
    const a = this.server.address();
    return `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const m = /^\/select\/[^/]+\/(vmui|prometheus)(.*)$/.exec(url.pathname);
    if (m?.[1] === "vmui") return serveUi(req, res, m[2] ?? "");
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (m?.[1] !== "prometheus") return send(404, { status: "error", errorType: "bad_data", error: `unsupported path ${url.pathname}` });
    const p = url.searchParams;
    const matchers = (): ReturnType<typeof parseMetricSelector>[] => p.getAll("match[]").map((s) => parseMetricSelector(s));
    try {
      const path = (m[2] ?? "").replace(/^\/api\/v1\//, "");
      const lv = /^label\/([^/]+)\/values$/.exec(path);
      if (path === "query" || path === "query_range") {
        const q = p.get("query") ?? "";
        const now = Date.now();
        const range = path === "query_range";
        const start = range ? time(p.get("start"), now - 3_600_000) : time(p.get("time"), now);
        const end = range ? time(p.get("end"), now) : start;
        const step = range ? time(p.get("step"), 15_000) : 0;
        const run: Running = { id: this.nextId++, query: q, start, end, step, since: Date.now(), remote: req.socket.remoteAddress ?? "" };
        this.running.set(run.id, run);
        try {
          const r = range ? await this.engine.rangeQuery(this.querier, q, start, end, step) : await this.engine.instantQuery(this.querier, q, start);
          return send(200, { status: "success", data: resultJson(r), ...(r.warnings.length > 0 ? { warnings: r.warnings } : {}), ...(r.infos.length > 0 ? { infos: r.infos } : {}) });
        } finally {
          this.running.delete(run.id);
          this.finished.push({ query: q, rangeSeconds: (end - start) / 1000, seconds: (Date.now() - run.since) / 1000, at: Date.now() });
        }
      }
      if (path === "labels" || lv) {
        const sets = matchers();
        const lists = await Promise.all((sets.length > 0 ? sets : [[]]).map((ms) =>
          lv ? this.querier.labelValues(decodeURIComponent(lv[1] ?? ""), ms, -Infinity, Infinity) : this.querier.labelNames(ms, -Infinity, Infinity)));
        return send(200, { status: "success", data: [...new Set(lists.flat())].sort() });
      }
      if (path === "status/tsdb") return send(200, { status: "success", data: await this.tsdb(p) });
      if (path === "status/active_queries") {
        return send(200, { status: "ok", data: [...this.running.values()].map((r) => ({ duration: `${((Date.now() - r.since) / 1000).toFixed(3)}s`, id: String(r.id), remote_addr: r.remote, query: r.query, start: r.start, end: r.end, step: r.step })) });
      }
      if (path === "status/top_queries") return send(200, this.top(Number(p.get("topN") ?? "20") || 20));
      return send(404, { status: "error", errorType: "bad_data", error: `unsupported path ${url.pathname}` });
    } catch (err: unknown) {
      return send(httpStatusOf(err), { status: "error", errorType: errorTypeOf(err), error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** VictoriaMetrics' status/tsdb over the series with samples on `date` (default today, UTC). */
  private async tsdb(p: URLSearchParams): Promise<unknown> {
    const topN = Number(p.get("topN") ?? "10") || 10;
    const date = p.get("date") ?? new Date().toISOString().slice(0, 10);
    const dayStart = Date.parse(date + "T00:00:00Z");
    if (!Number.isFinite(dayStart)) throw new BadDataError(`invalid parameter "date": ${JSON.stringify(date)}`);
    const focus = p.get("focusLabel") ?? "";
    const match = p.get("match[]") ?? '{__name__=~".+"}';
    const set = await this.querier.select(parseMetricSelector(match), dayStart, dayStart + 86_400_000 - 1, { start: dayStart, end: dayStart, step: 0, range: 0, func: "" });
    const byName = new Map<string, number>();
    const byLabel = new Map<string, number>();
    const byPair = new Map<string, number>();
    const byFocus = new Map<string, number>();
    const values = new Map<string, Set<string>>();
    let total = 0;
    const inc = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
    while (set.next()) {
      const s = set.at();
      if (s.timestamps.length === 0) continue;
      total++;
      for (const l of s.labels) {
        if (l.name === "__name__") inc(byName, l.value);
        inc(byLabel, l.name);
        inc(byPair, `${l.name}=${l.value}`);
        if (l.name === focus) inc(byFocus, l.value);
        let vs = values.get(l.name);
        if (!vs) values.set(l.name, (vs = new Set()));
        vs.add(l.value);
      }
    }
    const err = set.err();
    if (err) throw err;
    const top = (m: Map<string, number>) => [...m].map(([name, value]) => ({ name, value })).sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1)).slice(0, topN);
    return {
      totalSeries: total,
      totalLabelValuePairs: byPair.size,
      seriesCountByMetricName: top(byName),
      seriesCountByLabelName: top(byLabel),
      seriesCountByFocusLabelValue: top(byFocus),
      seriesCountByLabelValuePair: top(byPair),
      labelValueCountByLabelName: top(new Map([...values].map(([k, v]) => [k, v.size]))),
    };
  }

  private top(topN: number): unknown {
    const groups = new Map<string, { query: string; timeRangeSeconds: number; count: number; sum: number }>();
    for (const f of this.finished) {
      const key = `${f.rangeSeconds}\u0000${f.query}`;
      const g = groups.get(key) ?? { query: f.query, timeRangeSeconds: f.rangeSeconds, count: 0, sum: 0 };
      g.count++;
      g.sum += f.seconds;
      groups.set(key, g);
    }
    const list = [...groups.values()];
    return {
      topN: String(topN),
      maxLifetime: "10m",
      topByCount: [...list].sort((a, b) => b.count - a.count).slice(0, topN).map((g) => ({ query: g.query, timeRangeSeconds: g.timeRangeSeconds, count: g.count })),
      topByAvgDuration: [...list].sort((a, b) => b.sum / b.count - a.sum / a.count).slice(0, topN).map((g) => ({ query: g.query, timeRangeSeconds: g.timeRangeSeconds, avgDurationSeconds: g.sum / g.count, count: g.count })),
      topBySumDuration: [...list].sort((a, b) => b.sum - a.sum).slice(0, topN).map((g) => ({ query: g.query, timeRangeSeconds: g.timeRangeSeconds, sumDurationSeconds: g.sum, count: g.count })),
    };
  }
}
