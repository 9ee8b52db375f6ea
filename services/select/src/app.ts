import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash, timingSafeEqual } from "node:crypto";
import { createGzip } from "node:zlib";
import type { SearchOptions, SelectBackend } from "@strata/cluster";
import {
  BadDataError,
  checkRawPath,
  compareByLabels,
  ExecutionError,
  METRIC_NAME_LABEL,
  NotFoundError,
  parseTenant,
  TimeoutError,
  Trace,
  UnavailableError,
  type Logger,
  type MetricsRegistry,
  type Tenant,
} from "@strata/core";
import { formatJsonLine, TextExpositionWriter } from "@strata/formats";
import { formatPromValue, type MatrixSeries, type Querier, type QueryResult } from "@strata/promql";
import { mergeMatrix, RollupCache } from "./cache.js";
import { Params } from "./params.js";
import { applyLimit, fetchLimit, type ListLimit } from "./limits.js";
import { promApiRoutes, withPrometheusTsdbFields } from "./prom-api.js";
import { Limiter, QueryStats } from "./query-stats.js";
import { matrixChunks, resultChunks, successStream } from "./render.js";
import { failure, labelsJson, success, writeJson } from "./respond.js";
import { vmalertProxy } from "./vmalert-proxy.js";

/** The PromQL engine as select uses it (implemented by @strata/promql). */
export interface QueryEngine {
  instantQuery(querier: Querier, query: string, time: number, signal?: AbortSignal, trace?: Trace): Promise<QueryResult>;
  rangeQuery(querier: Querier, query: string, start: number, end: number, step: number, signal?: AbortSignal, trace?: Trace): Promise<QueryResult>;
}

export interface SelectConfig {
  readonly maxQueryDurationMs: number;
  readonly maxConcurrentRequests: number;
  readonly maxQueueDurationMs: number;
  /** Queries slower than this are logged and counted (-search.logSlowQueryDuration; 0: never). */
  readonly logSlowQueryDurationMs: number;
  readonly maxSeries: number;
  readonly maxPointsPerTimeseries: number;
  readonly maxExportSeries: number;
  readonly maxLabelsAPISeries: number;
  readonly maxTagKeys: number;
  readonly maxTagValues: number;
  /** Key of the all-tenant views (`/api/v1/status/{top,active}_queries?authKey=`); empty: they answer 403. */
  readonly adminAuthKey: string;
  readonly denyPartialResponse: boolean;
  readonly cacheTimestampOffsetMs: number;
  readonly disableCache: boolean;
  readonly latencyOffsetMs: number;
  readonly lookbackDeltaMs: number;
  readonly maxRequestBodyBytes: number;
}

export interface SelectDeps {
  readonly backend: SelectBackend;
  readonly engine: QueryEngine;
  readonly config: SelectConfig;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Serves the web UI below /select/<tenant>/vmui (the path after `vmui`, e.g. "/" or "/assets/x.js"). */
  readonly ui?: (req: IncomingMessage, res: ServerResponse, path: string) => void | Promise<void>;
  readonly now?: () => number;
  /** Called after each query left its slot (select's idle memory reclaimer listens). */
  readonly onQueryEnd?: () => void;
  /** Flag values for /api/v1/status/flags (displayFlags: secrets masked). */
  readonly flags?: Readonly<Record<string, string>>;
  /** -vmalert.proxyURL: where /api/v1/rules and /api/v1/alerts are forwarded (the alert service). */
  readonly vmalertProxyURL?: string;
}

export { PROMETHEUS_COMPAT_VERSION } from "./prom-api.js";

export interface SelectApp {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  readonly cache: RollupCache;
  readonly stats: QueryStats;
  /** Queries holding a slot now. */
  readonly inFlight: () => number;
}

type Handler = (ctx: Ctx) => Promise<void>;

interface Ctx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly tenant: Tenant;
  readonly params: Params;
  readonly now: number;
  readonly opts: SearchOptions;
  readonly signal: AbortSignal;
}

export function buildApp(deps: SelectDeps): SelectApp {
  const { backend, engine, config, log, metrics } = deps;
  const now = deps.now ?? Date.now;
  const cache = new RollupCache(10_000_000);
  const stats = new QueryStats();
  const limiter = new Limiter(config.maxConcurrentRequests);
  const rulesProxy = vmalertProxy(deps.vmalertProxyURL, config.maxQueryDurationMs);

  metrics.gauge("strata_select_concurrent_queries", "Queries running now.", () => limiter.inFlight);
  metrics.gauge("strata_select_queued_queries", "Queries waiting for a free slot.", () => limiter.queued);
  metrics.gauge("strata_rollup_result_cache_points", "Points held by the range-query result cache.", () => cache.size);
  metrics.counter("strata_rollup_result_cache_hits_total", "Range queries that reused cached points.", () => cache.hits);
  metrics.counter("strata_rollup_result_cache_misses_total", "Range queries that found nothing cached.", () => cache.misses);
  const slowQueries = metrics.counter("strata_select_slow_queries_total", "Queries slower than -search.logSlowQueryDuration.");
  const partialAnswers = metrics.counter("strata_select_partial_responses_total", "Answers marked partial because storage nodes were unavailable.");

  const requestCounter = (path: string, code: number) => metrics.counter(`strata_http_requests_total{path="${path}",code="${code}"}`, "HTTP requests by API path and status.");
  const duration = (path: string) => metrics.histogram(`strata_http_request_duration_seconds{path="${path}"}`, "HTTP request duration by API path.");

  function searchOpts(params: Params, signal: AbortSignal, t0: number): SearchOptions {
    const timeout = Math.min(params.duration("timeout", config.maxQueryDurationMs), config.maxQueryDurationMs);
    if (!(timeout > 0)) throw new BadDataError(`invalid parameter "timeout": want a positive duration, got ${JSON.stringify(params.get("timeout"))}`);
    return {
      deadline: t0 + timeout,
      denyPartialResponse: config.denyPartialResponse || params.bool("deny_partial_response"),
      maxSeries: config.maxSeries,
      signal,
    };
  }

  async function withSlot<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
    const release = await limiter.acquire(
      config.maxQueueDurationMs,
      () =>
        new UnavailableError(
          `cannot handle more than ${config.maxConcurrentRequests} concurrent queries (-search.maxConcurrentRequests); waited ${config.maxQueueDurationMs} ms (-search.maxQueueDuration); retry later or raise the limits`,
        ),
      ctx.signal,
    );
    try {
      return await fn();
    } finally {
      release();
      deps.onQueryEnd?.();
    }
  }

  // ---- query -------------------------------------------------------------------------------

  /** Logs and counts a query slower than -search.logSlowQueryDuration (VictoriaMetrics' slow query log). */
  function logIfSlow(ctx: Ctx, q: string, start: number, end: number, step: number, t0: number): void {
    const ms = performance.now() - t0;
    if (config.logSlowQueryDurationMs <= 0 || ms < config.logSlowQueryDurationMs) return;
    slowQueries.inc();
    log.warn(
      { query: q, start, end, step, tenant: `${ctx.tenant.accountID}:${ctx.tenant.projectID}`, durationMs: Math.round(ms), remoteAddr: ctx.req.socket.remoteAddress ?? "" },
      `slow query: ${Math.round(ms)} ms, more than -search.logSlowQueryDuration=${config.logSlowQueryDurationMs}ms`,
    );
  }

  /** The query's trace when `trace=1` asks for one (Trace.off otherwise). */
  function traceOf(ctx: Ctx, what: string): Trace {
    return ctx.params.bool("trace") ? Trace.start(`${ctx.url.pathname}: ${what}`) : Trace.off;
  }

  async function query(ctx: Ctx): Promise<void> {
    const q = ctx.params.get("query") ?? ""; // absent or empty: the parser says "no expression found in input", as Prometheus does
    const time = ctx.params.time("time", ctx.now - config.latencyOffsetMs, ctx.now);
    const done = stats.begin(ctx.tenant, q, time, time, 0, ctx.req.socket.remoteAddress ?? "");
    const t0 = performance.now();
    const trace = traceOf(ctx, `query=${q}, time=${time}`);
    try {
      await withSlot(ctx, async () => {
        const querier = backend.querier(ctx.tenant, ctx.opts);
        try {
          const r = await engine.instantQuery(querier, q, time, ctx.signal, trace);
          if (querier.isPartial) partialAnswers.inc();
          trace.done();
          await successStream(
            ctx.res,
            resultChunks(sortedResult(r)),
            { isPartial: querier.isPartial, warnings: [...querier.warnings, ...r.warnings], infos: r.infos, trace },
            ctx.signal,
          );
        } finally {
          // The answer is written: the selected samples may be reused.
          await querier.close?.();
        }
      });
    } finally {
      done();
      logIfSlow(ctx, q, time, time, 0, t0);
    }
  }

  async function queryRange(ctx: Ctx): Promise<void> {
    const q = ctx.params.get("query") ?? ""; // absent or empty: the parser says "no expression found in input", as Prometheus does
    const start = ctx.params.time("start", NaN, ctx.now);
    const end = ctx.params.time("end", NaN, ctx.now);
    if (Number.isNaN(start)) throw new BadDataError('missing required parameter "start"');
    if (Number.isNaN(end)) throw new BadDataError('missing required parameter "end"');
    const step = ctx.params.duration("step", NaN);
    if (Number.isNaN(step)) throw new BadDataError('missing required parameter "step"');
    if (end < start) throw new BadDataError("end timestamp must not be before start time");
    if (step <= 0) throw new BadDataError("zero or negative query resolution step widths are not accepted. Try a positive integer");
    const points = Math.floor((end - start) / step) + 1;
    if (points > config.maxPointsPerTimeseries) {
      throw new BadDataError(
        `exceeded maximum resolution of ${config.maxPointsPerTimeseries} points per timeseries (-search.maxPointsPerTimeseries). Try decreasing the query resolution (?step=XX)`,
      );
    }
    const done = stats.begin(ctx.tenant, q, start, end, step, ctx.req.socket.remoteAddress ?? "");
    const t0 = performance.now();
    const trace = traceOf(ctx, `query=${q}, start=${start}, end=${end}, step=${step}`);
    try {
      await withSlot(ctx, async () => {
        const cacheable = !config.disableCache && !ctx.params.bool("nocache") && !dependsOnQueryRange(q);
        const key = RollupCache.key(ctx.tenant, q, step, start);
        const cached = cacheable ? cache.get(key, start, end, step) : undefined;
        const querier = backend.querier(ctx.tenant, ctx.opts);
        try {
          let series: MatrixSeries[];
          let warnings: readonly string[] = [];
          let infos: readonly string[] = [];
          if (cached && cached.nextStart > end) {
            series = cached.series;
            trace.child(`answered from the result cache: ${series.length} series`).done();
          } else {
            const from = cached ? cached.nextStart : start;
            if (cached) trace.child(`result cache holds [${start}..${cached.nextStart}): evaluate the rest`).done();
            const r = await engine.rangeQuery(querier, q, from, end, step, ctx.signal, trace);
            warnings = r.warnings;
            infos = r.infos;
            if (r.type !== "matrix") {
              // Scalars and strings in range queries come back as matrices in Prometheus; an
              // engine that returns otherwise is answered as is, uncached.
              trace.done();
              await successStream(ctx.res, resultChunks(r), { isPartial: querier.isPartial, warnings: [...querier.warnings, ...warnings], infos, trace }, ctx.signal);
              return;
            }
            series = cached ? mergeMatrix(cached.series, r.series) : [...r.series];
            if (cacheable && !querier.isPartial) {
              const limit = ctx.now - config.cacheTimestampOffsetMs;
              const cacheableEnd = start + Math.floor((Math.min(end, limit) - start) / step) * step;
              cache.put(key, start, cacheableEnd, series);
            }
          }
          if (querier.isPartial) partialAnswers.inc();
          const sortTrace = trace.child("sort the answer's series");
          series.sort(compareByLabels);
          sortTrace.done();
          trace.done();
          await successStream(
            ctx.res,
            matrixChunks(series, { start, step, count: points }),
            { isPartial: querier.isPartial, warnings: [...querier.warnings, ...warnings], infos, trace },
            ctx.signal,
          );
        } finally {
          // The answer is written (the result cache keeps copies): the selected samples may be reused.
          await querier.close?.();
        }
      });
    } finally {
      done();
      logIfSlow(ctx, q, start, end, step, t0);
    }
  }

  // ---- metadata APIs -----------------------------------------------------------------------

  function range(ctx: Ctx): { minT: number; maxT: number } {
    const maxT = ctx.params.time("end", ctx.now, ctx.now);
    const minT = ctx.params.time("start", 0, ctx.now);
    if (maxT < minT) throw new BadDataError("end timestamp must not be before start time");
    return { minT, maxT };
  }

  async function labels(ctx: Ctx): Promise<void> {
    const { minT, maxT } = range(ctx);
    const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxTagKeys, capFlag: "-search.maxTagKeys" };
    const a = applyLimit(await backend.labelNames(ctx.tenant, ctx.params.matcherSets(), minT, maxT, fetchLimit(l), ctx.opts), l, "label names");
    success(ctx.res, JSON.stringify(a.value), { isPartial: a.isPartial, warnings: a.warnings });
  }

  async function labelValues(ctx: Ctx, name: string): Promise<void> {
    const { minT, maxT } = range(ctx);
    const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxTagValues, capFlag: "-search.maxTagValues" };
    const a = applyLimit(await backend.labelValues(ctx.tenant, name, ctx.params.matcherSets(), minT, maxT, fetchLimit(l), ctx.opts), l, "label values");
    success(ctx.res, JSON.stringify(a.value), { isPartial: a.isPartial, warnings: a.warnings });
  }

  async function series(ctx: Ctx): Promise<void> {
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("no match[] parameter provided");
    const { minT, maxT } = range(ctx);
    const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxLabelsAPISeries, capFlag: "-search.maxSeriesPerAPICall" };
    const a = applyLimit(await backend.series(ctx.tenant, sets, minT, maxT, fetchLimit(l), ctx.opts), l, "series");
    success(ctx.res, `[${a.value.map(labelsJson).join(",")}]`, { isPartial: a.isPartial, warnings: a.warnings });
  }

  async function seriesCount(ctx: Ctx): Promise<void> {
    const a = await backend.seriesCount(ctx.tenant, ctx.opts);
    success(ctx.res, JSON.stringify([a.value]), { isPartial: a.isPartial, warnings: a.warnings });
  }

  async function tsdbStatus(ctx: Ctx): Promise<void> {
    const dateParam = ctx.params.get("date");
    let date = Math.floor(ctx.now / 86_400_000);
    if (dateParam !== undefined) {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateParam);
      if (!m) throw new BadDataError(`invalid parameter "date": want YYYY-MM-DD, got ${JSON.stringify(dateParam)}`);
      date = Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000);
    }
    const topN = ctx.params.int("topN", 10);
    if (topN < 1 || topN > 1000) throw new BadDataError("invalid parameter \"topN\": want 1..1000");
    const sets = ctx.params.matcherSets();
    if (sets.length > 1) throw new BadDataError("status/tsdb takes at most one match[] parameter");
    const req = { date, topN, focusLabel: ctx.params.get("focusLabel") ?? "", matchers: sets[0] ?? [] };
    const a = await withPrometheusTsdbFields(backend, ctx.tenant, await backend.tsdbStatus(ctx.tenant, req, ctx.opts), req, ctx.opts);
    success(ctx.res, JSON.stringify(a.value), { isPartial: a.isPartial, warnings: a.warnings });
  }

  async function metadata(ctx: Ctx): Promise<void> {
    const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: 0, capFlag: "" };
    const a = applyLimit(await backend.metadata(ctx.tenant, ctx.params.get("metric") ?? "", fetchLimit(l), ctx.opts), l, "metrics");
    const out: Record<string, { type: string; help: string; unit: string }[]> = {};
    for (const m of a.value) (out[m.metricFamilyName] ??= []).push({ type: m.type, help: m.help, unit: m.unit });
    success(ctx.res, JSON.stringify(out), { isPartial: a.isPartial, warnings: a.warnings });
  }

  // ---- export, federate, delete ----------------------------------------------------------

  function exportOpts(ctx: Ctx): SearchOptions {
    return { ...ctx.opts, maxSeries: config.maxExportSeries, maxSeriesFlag: "-search.maxExportSeries" };
  }

  async function exportJson(ctx: Ctx): Promise<void> {
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("missing match[] parameter: export needs a series selector, e.g. match[]={__name__!=\"\"}");
    const { minT, maxT } = range(ctx);
    const gzip = /\bgzip\b/.test(String(ctx.req.headers["accept-encoding"] ?? ""));
    await streamOut(ctx, "application/stream+json", gzip, async (write) => {
      await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), async (s) => {
        await write(formatJsonLine(s.labels, s.timestamps, s.values));
      });
    });
  }

  async function exportCsv(ctx: Ctx): Promise<void> {
    const format = ctx.params.required("format").split(",");
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("missing match[] parameter");
    for (const f of format) {
      if (!/^(__name__|__value__|__timestamp__(:(unix_s|unix_ms|unix_ns|rfc3339))?|[^:]+)$/.test(f)) {
        throw new BadDataError(`invalid format column ${JSON.stringify(f)}: want __name__, __value__, __timestamp__[:unix_s|unix_ms|unix_ns|rfc3339] or a label name`);
      }
    }
    const { minT, maxT } = range(ctx);
    const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    await streamOut(ctx, "text/csv; charset=utf-8", false, async (write) => {
      await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), async (s) => {
        let chunk = "";
        const get = (n: string) => s.labels.find((l) => l.name === n)?.value ?? "";
        for (let i = 0; i < s.timestamps.length; i++) {
          const ts = s.timestamps[i]!;
          const row = format.map((f) => {
            if (f === "__value__") return formatPromValue(s.values[i]!);
            if (f.startsWith("__timestamp__")) {
              const unit = f.split(":")[1] ?? "unix_ms";
              if (unit === "unix_s") return String(Math.floor(ts / 1000));
              if (unit === "unix_ns") return `${ts}000000`;
              if (unit === "rfc3339") return new Date(ts).toISOString().replace(".000Z", "Z");
              return String(ts);
            }
            return csvField(get(f === "__name__" ? METRIC_NAME_LABEL : f));
          });
          chunk += `${row.join(",")}\n`;
        }
        await write(chunk);
      });
    });
  }

  async function federate(ctx: Ctx): Promise<void> {
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("missing match[] parameter");
    const maxT = ctx.params.time("time", ctx.now, ctx.now);
    const minT = maxT - config.lookbackDeltaMs;
    const w = new TextExpositionWriter();
    let lastName = "";
    await streamOut(ctx, "text/plain; version=0.0.4; charset=utf-8", false, async (write) => {
      const rows: { labels: MatrixSeries["labels"]; v: number; t: number }[] = [];
      await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), (s) => {
        // The last sample in the lookback window, unless the series went stale.
        const n = s.timestamps.length;
        if (n === 0) return;
        const v = s.values[n - 1]!;
        if (isStale(v)) return;
        rows.push({ labels: s.labels, v, t: s.timestamps[n - 1]! });
      });
      rows.sort(compareByLabels);
      for (const r of rows) {
        const name = r.labels.find((l) => l.name === METRIC_NAME_LABEL)?.value ?? "";
        if (name !== lastName) {
          w.metadata(name, "untyped");
          lastName = name;
        }
        w.sample(r.labels, r.v, r.t);
        const chunk = w.take();
        if (chunk !== undefined) await write(chunk);
      }
      await write(w.flush());
    });
  }

  async function deleteSeries(ctx: Ctx): Promise<void> {
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("missing match[] parameter");
    const n = await backend.deleteSeries(ctx.tenant, sets, ctx.opts);
    cache.reset(ctx.tenant);
    log.info({ tenant: ctx.tenant, deleted: n, match: ctx.params.getAll("match[]") }, "deleted series");
    ctx.res.writeHead(204);
    ctx.res.end();
  }

  async function streamOut(ctx: Ctx, contentType: string, gzip: boolean, body: (write: (s: string) => Promise<void>) => Promise<void>): Promise<void> {
    // Headers are sent with the first chunk, so an error before any output is still a clean 4xx/5xx.
    let started = false;
    const res = ctx.res;
    const z = gzip ? createGzip() : undefined;
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, { "content-type": contentType, ...(z ? { "content-encoding": "gzip" } : {}) });
      if (z) z.pipe(res);
    };
    const out = z ?? res;
    const write = async (s: string) => {
      if (s === "") return;
      start();
      if (!out.write(s)) await new Promise<void>((r) => out.once("drain", () => r()));
    };
    await body(write);
    start();
    await new Promise<void>((r) => out.end(() => r()));
  }

  // ---- routing ----------------------------------------------------------------------------

  const simple: Record<string, Handler> = {
    "api/v1/query": query,
    "api/v1/query_range": queryRange,
    "api/v1/labels": labels,
    "api/v1/series": series,
    "api/v1/series/count": seriesCount,
    "api/v1/status/tsdb": tsdbStatus,
    "api/v1/metadata": metadata,
    "api/v1/export": exportJson,
    "api/v1/export/csv": exportCsv,
    "federate": federate,
    "api/v1/admin/tsdb/delete_series": deleteSeries,
    ...promApiRoutes({ flags: deps.flags ?? {}, startedAt: now() }),
    "api/v1/query_exemplars": async (ctx) => success(ctx.res, "[]"),
    "api/v1/rules": async (ctx) => rulesProxy(ctx.res, "api/v1/rules", ctx.url.search, ctx.signal),
    "api/v1/alerts": async (ctx) => rulesProxy(ctx.res, "api/v1/alerts", ctx.url.search, ctx.signal),
    "api/v1/status/active_queries": async (ctx) => writeJson(ctx.res, 200, stats.activeJson(ctx.tenant)),
    "api/v1/status/top_queries": async (ctx) =>
      writeJson(ctx.res, 200, stats.topJson(ctx.tenant, ctx.params.int("topN", 20), ctx.params.duration("maxLifetime", 600_000))),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = Date.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    let route = "other";
    const ac = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) ac.abort(new TimeoutError("client closed the connection"));
    };
    res.on("close", onClose);
    const tHist = process.hrtime.bigint();
    try {
      // Before the URL parser folds `/select/2/../1/…` into tenant 1's path.
      checkRawPath(req.url ?? "/");
      if (path === "/health" || path === "/-/healthy" || path === "/-/ready") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("OK");
        return;
      }
      if (path === "/metrics") {
        const body = metrics.render();
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(body);
        return;
      }
      if (path === "/internal/resetRollupResultCache") {
        // VictoriaMetrics' endpoint: after backfilling samples older than
        // -search.cacheTimestampOffset, cached range-query points may be outdated.
        route = "resetRollupResultCache";
        cache.reset();
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("OK");
        return;
      }
      if (path === "/api/v1/status/active_queries" || path === "/api/v1/status/top_queries") {
        // Every tenant's queries: an admin view. A tenant sees its own under /select/<tenant>/prometheus/.
        route = path.slice("/api/v1/status/".length);
        const params = await Params.from(req, url, config.maxRequestBodyBytes);
        if (!adminKeyMatches(config.adminAuthKey, params.get("authKey"))) {
          writeJson(res, 403, JSON.stringify({ status: "error", errorType: "forbidden", error: `${path} lists every tenant's queries: pass authKey=<-adminAuthKey> (set -adminAuthKey to enable it); a tenant's own are at /select/<tenant>/prometheus${path}` }));
          return;
        }
        if (route === "active_queries") writeJson(res, 200, stats.activeJson(undefined));
        else writeJson(res, 200, stats.topJson(undefined, params.int("topN", 20), params.duration("maxLifetime", 600_000)));
        return;
      }
      if (path === "/") {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        res.end(
          '<!doctype html><title>Strata select</title><h1>Strata select</h1><ul><li><a href="/select/0/vmui/">Web UI (tenant 0)</a></li><li><a href="/select/0/prometheus/api/v1/status/buildinfo">Prometheus API (tenant 0)</a></li><li><a href="/metrics">/metrics</a></li></ul>',
        );
        return;
      }
      const m = /^\/(select|delete)\/([^/]+)\/(prometheus|vmui)(\/.*)?$/.exec(path);
      if (!m) throw new NotFoundError(`unsupported path ${JSON.stringify(path)}; the Prometheus API is under /select/<accountID[:projectID]>/prometheus/`);
      const tenant = parseTenant(m[2]!);
      const rest = (m[4] ?? "").replace(/^\//, "");
      if (m[3] === "vmui") {
        route = "vmui";
        if (!deps.ui) throw new NotFoundError("the web UI is not built (run pnpm build)");
        await deps.ui(req, res, m[4] ?? "");
        return;
      }
      const params = await Params.from(req, url, config.maxRequestBodyBytes);
      const ctx: Ctx = { req, res, url, tenant, params, now: now(), opts: searchOpts(params, ac.signal, t0), signal: ac.signal };
      if (m[1] === "delete" && rest !== "api/v1/admin/tsdb/delete_series") throw new NotFoundError(`unsupported path ${JSON.stringify(path)}`);
      if (rest === "api/v1/admin/tsdb/delete_series" && req.method !== "POST") {
        // A GET must never delete (link prefetchers, crawlers, a pasted URL).
        route = rest;
        res.setHeader("allow", "POST");
        writeJson(res, 405, JSON.stringify({ status: "error", errorType: "bad_data", error: `method ${req.method ?? ""} not allowed: delete_series takes POST` }));
        return;
      }
      if (m[1] === "delete") {
        route = rest;
        await deleteSeries(ctx);
        return;
      }
      const lv = /^api\/v1\/label\/([^/]+)\/values$/.exec(rest);
      if (lv) {
        route = "api/v1/label/values";
        await labelValues(ctx, decodeLabelName(lv[1]!));
        return;
      }
      const h = simple[rest];
      if (!h) throw new NotFoundError(`unsupported path ${JSON.stringify(path)}`);
      route = rest;
      const timer = setTimeout(() => ac.abort(new TimeoutError(`query timed out after ${ctx.opts.deadline - t0} ms (-search.maxQueryDuration or timeout)`)), ctx.opts.deadline - t0);
      try {
        await h(ctx);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      const e = ac.signal.aborted && !(err instanceof BadDataError || err instanceof ExecutionError) ? (ac.signal.reason as unknown) : err;
      if (!(e instanceof BadDataError) && !(e instanceof NotFoundError)) log.warn({ err: e instanceof Error ? e.message : String(e), path }, "request failed");
      failure(res, e);
    } finally {
      res.off("close", onClose);
      requestCounter(route, res.statusCode).inc();
      duration(route).observeSince(tHist);
    }
  }

  return { handle, cache, stats, inFlight: () => limiter.inFlight };
}

/** Label names in the path may be `U__`-escaped (Prometheus 3 UTF-8 names) or percent-encoded. */
function decodeLabelName(s: string): string {
  let name: string;
  try {
    name = decodeURIComponent(s);
  } catch {
    throw new BadDataError(`invalid label name ${JSON.stringify(s)} in the path: bad percent-encoding`, "STRATA_INVALID_LABEL_NAME");
  }
  if (!name.startsWith("U__")) return name;
  return name.slice(3).replace(/_([0-9a-fA-F]+)_|__/g, (_m, hex: string | undefined) => (hex === undefined ? "_" : String.fromCodePoint(parseInt(hex, 16))));
}

/** Compares the `authKey` parameter with -adminAuthKey in constant time; an empty key matches nothing. */
function adminKeyMatches(key: string, given: string | undefined): boolean {
  if (key === "" || given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(key), digest(given));
}

/**
 * The rollup cache reuses points across queries with the same step and alignment but another
 * start/end, so it may only hold queries whose points do not depend on the query's range: not
 * `@` (`@ start()`/`@ end()`, and fixed times are rare enough), nor the `start()`, `end()` and
 * `range()` functions (also inside durations: `x[range()]`, `offset range()`). A false positive
 * (the word inside a string) only skips the cache.
 */
function dependsOnQueryRange(q: string): boolean {
  return q.includes("@") || /\b(?:start|end|range)\s*\(/.test(q);
}

function isStale(v: number): boolean {
  if (!Number.isNaN(v)) return false;
  const b = new Float64Array([v]);
  const u = new Uint32Array(b.buffer);
  return u[1] === 0x7ff00000 && u[0] === 2;
}

/** A matrix result with its series sorted by labels, as the API answers them. */
function sortedResult(r: QueryResult): QueryResult {
  if (r.type !== "matrix") return r;
  return { ...r, series: [...r.series].sort(compareByLabels) };
}
