import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { SelectBackend } from "@strata/cluster";
import { BadDataError, checkRawPath, NotFoundError, parseTenant, StrataError, type Counter, type Histogram, type Logger, type MetricsRegistry } from "@strata/core";
import type { HttpSecurity } from "@strata/httpsec";
import { createServiceApp, describeError } from "@strata/httpsvc";
import { RollupCache } from "./cache.js";
import { rawTenant, type QueryEngine, type SelectConfig, type SelectRuntime } from "./context.js";
import { Limiter, QueryStats } from "./query-stats.js";
import { errorAnswer, errorBody, writeJson } from "./respond.js";
import { adminRoutes, deleteRoutes } from "./routes/admin.js";
import { alertRoutes } from "./routes/alerts.js";
import { exportRoutes } from "./routes/export.js";
import { decodeLabelName, metadataRoutes } from "./routes/metadata.js";
import { queryRoutes } from "./routes/query.js";
import { statusRoutes } from "./routes/status.js";
import { uiRoutes } from "./routes/ui.js";

export type { QueryEngine, SelectConfig } from "./context.js";
export { PROMETHEUS_COMPAT_VERSION } from "./prom-api.js";

/** Per-endpoint keys (`authKey` query arg), already read through readSecret; "" leaves -httpAuth.* in charge. */
export interface SelectAuthKeys {
  /** -deleteAuthKey: /api/v1/admin/tsdb/delete_series. */
  readonly delete: string;
  /** -flagsAuthKey: /flags and /api/v1/status/flags. */
  readonly flags: string;
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
  /** Flag values for /flags and /api/v1/status/flags (displayFlags: secrets masked). */
  readonly flags?: Readonly<Record<string, string>>;
  /** -vmalert.proxyURL: where /api/v1/rules and /api/v1/alerts are forwarded (the alert service). */
  readonly vmalertProxyURL?: string;
  /** -tls*, -httpAuth.*, -metricsAuthKey; without it the listener is plain HTTP and open. */
  readonly security?: HttpSecurity;
  readonly keys?: SelectAuthKeys;
}

/** select's state beside the fastify instance. */
export interface SelectState {
  readonly cache: RollupCache;
  readonly stats: QueryStats;
  /** Queries holding a slot now. */
  readonly inFlight: () => number;
}

export type SelectApp = FastifyInstance & { readonly select: SelectState };

/**
 * select's HTTP app on the shared service app (@strata/httpsvc: probes, /metrics, TLS,
 * -httpAuth.*, -metricsAuthKey, -deleteAuthKey, -flagsAuthKey, form bodies): the Prometheus API
 * under /select/<tenant>/prometheus/ (routes by concern in ./routes), the web UI, the admin
 * views. The /select and /delete scopes answer errors and unknown paths in Prometheus' JSON
 * error shape, byte for byte as Prometheus writes it.
 */
export function buildApp(deps: SelectDeps): SelectApp {
  const { backend, engine, config, log, metrics } = deps;
  const now = deps.now ?? Date.now;
  const cache = new RollupCache(10_000_000);
  const stats = new QueryStats();
  const limiter = new Limiter(config.maxConcurrentRequests);

  metrics.gauge("strata_select_concurrent_queries", "Queries running now.", () => limiter.inFlight);
  metrics.gauge("strata_select_queued_queries", "Queries waiting for a free slot.", () => limiter.queued);
  metrics.gauge("strata_rollup_result_cache_points", "Points held by the range-query result cache.", () => cache.size);
  metrics.counter("strata_rollup_result_cache_hits_total", "Range queries that reused cached points.", () => cache.hits);
  metrics.counter("strata_rollup_result_cache_misses_total", "Range queries that found nothing cached.", () => cache.misses);
  const partialAnswers = metrics.counter("strata_select_partial_responses_total", "Answers marked partial because storage nodes were unavailable.");
  const requestCounter = (path: string, code: number) => metrics.counter(`strata_http_requests_total{path="${path}",code="${code}"}`, "HTTP requests by API path and status.");
  const duration = (path: string) => metrics.histogram(`strata_http_request_duration_seconds{path="${path}"}`, "HTTP request duration by API path.");

  const slowQueries = metrics.counter("strata_select_slow_queries_total", "Queries slower than -search.logSlowQueryDuration.");
  const rt: SelectRuntime = { backend, engine, config, log, metrics, cache, stats, limiter, partialAnswers, slowQueries, now, onQueryEnd: deps.onQueryEnd };
  const keys = deps.keys ?? { delete: "", flags: "" };
  const flags = deps.flags ?? {};

  const app = createServiceApp({
    log,
    metrics,
    ...(deps.security === undefined ? {} : { security: deps.security }),
    flagsPage: { shown: flags, authKey: keys.flags },
    authKeys: [
      ...["select", "delete"].map((prefix) => ({ flag: "deleteAuthKey", key: keys.delete, path: `/${prefix}/*/prometheus/api/v1/admin/tsdb/delete_series` })),
      { flag: "flagsAuthKey", key: keys.flags, path: "/select/*/prometheus/api/v1/status/flags" },
    ],
    bodyLimit: config.maxRequestBodyBytes,
    bodyLimitFlag: "maxRequestBodySize",
    // A URL the router cannot decode (a bad percent-encoding) answers in the API's error shape,
    // naming the part of the path that is wrong.
    frameworkErrors: (err, req, res) => {
      const { status, body } = errorAnswer(err.code === "FST_ERR_BAD_URL" ? badUrlError(req.url) : new BadDataError(err.message));
      writeJson(res as FastifyReply, status, body);
    },
  });

  // Before any URL parser folds `/select/2/../1/…` into tenant 1's path.
  // Callback hooks, not async ones: no promise and no extra microtask turn per request.
  app.addHook("onRequest", (req, _reply, done) => {
    try {
      checkRawPath(req.url);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  });
  // The request metrics of each path and status, looked up once (not a name built per request).
  const requestMetrics = new Map<string, { count: Counter; duration: Histogram }>();
  app.addHook("onResponse", (req, reply, done) => {
    const path = req.routeOptions.config.metricPath ?? "other";
    const key = `${path} ${reply.statusCode}`;
    let m = requestMetrics.get(key);
    if (m === undefined) requestMetrics.set(key, (m = { count: requestCounter(path, reply.statusCode), duration: duration(path) }));
    m.count.inc();
    m.duration.observe(reply.elapsedTime / 1000);
    done();
  });

  // Prometheus API calls without the /select/<tenant>/prometheus prefix (a data source URL set to select's root).
  app.all("/api/*", async (req, reply) => {
    writeJson(reply, 404, errorBody("not_found", `unsupported path ${JSON.stringify(req.url.split("?")[0])}; the Prometheus API is under /select/<accountID[:projectID]>/prometheus/`));
  });

  // The tenant scopes: /select/<tenant>/… (API and UI) and VictoriaMetrics' /delete/<tenant>/….
  const scope = (prefix: "select" | "delete", routes: (api: FastifyInstance) => void) =>
    app.register(
      async (api) => {
        api.addContentTypeParser("multipart/form-data", (_req, _payload, done) => {
          done(new BadDataError("multipart/form-data is not supported; send application/x-www-form-urlencoded"), undefined);
        });
        api.setErrorHandler((err: unknown, req, reply) => {
          if (err instanceof StrataError) {
            const { status, body } = errorAnswer(err);
            writeJson(reply, status, body);
            return;
          }
          const d = describeError(err, req, "maxRequestBodySize");
          if (d.status >= 500) log.error({ url: req.url, status: d.status, err: d.message }, "request failed");
          writeJson(reply, d.status, errorBody(d.type, d.message));
        });
        api.setNotFoundHandler(async (req, reply) => {
          const path = new URL(req.url, "http://localhost").pathname;
          const m = /^\/(select|delete)\/([^/]+)\/(prometheus|vmui)(\/.*)?$/.exec(path);
          if (!m) throw new NotFoundError(`unsupported path ${JSON.stringify(path)}; the Prometheus API is under /select/<accountID[:projectID]>/prometheus/`);
          parseTenant(rawTenant(req.url));
          if (m[1] === "select" && m[3] === "prometheus" && !["GET", "HEAD", "POST"].includes(req.method) && app.hasRoute({ method: "GET", url: `/select/:tenant/prometheus${routePattern(m[4] ?? "")}` })) {
            void reply.header("allow", "GET, POST");
            writeJson(reply, 405, errorBody("bad_data", `method ${req.method} not allowed: ${path} takes GET or POST`));
            return;
          }
          throw new NotFoundError(`unsupported path ${JSON.stringify(path)}`);
        });
        routes(api);
      },
      { prefix: `/${prefix}` },
    );

  adminRoutes(app, rt);
  void scope("select", (api) => {
    queryRoutes(api, rt);
    metadataRoutes(api, rt);
    exportRoutes(api, rt);
    statusRoutes(api, rt, flags);
    alertRoutes(api, rt, deps.vmalertProxyURL);
    deleteRoutes(api, rt);
    uiRoutes(app, api, deps.ui);
  });
  void scope("delete", (api) => deleteRoutes(api, rt));

  const select: SelectState = { cache, stats, inFlight: () => limiter.inFlight };
  return Object.assign(app, { select });
}

/** Why the router could not decode `rawUrl`: the tenant's or the label name's own message where one of them is the culprit. */
function badUrlError(rawUrl: string): unknown {
  const path = rawUrl.split("?")[0] ?? "";
  try {
    if (/^\/(select|delete)\//.test(path)) parseTenant(rawTenant(path));
    const lv = /^\/select\/[^/]+\/prometheus\/api\/v1\/label\/([^/]+)\/values$/.exec(path);
    if (lv) decodeLabelName(lv[1]!);
  } catch (err) {
    return err;
  }
  return new BadDataError(`invalid request path ${JSON.stringify(path)}: bad percent-encoding`);
}

/** `/api/v1/label/x/values` → `/api/v1/label/:name/values`, the pattern it was registered with. */
function routePattern(rest: string): string {
  return rest.replace(/^\/api\/v1\/label\/[^/]+\/values$/, "/api/v1/label/:name/values");
}

