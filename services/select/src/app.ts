import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { SelectBackend } from "@strata/cluster";
import { BadDataError, checkRawPath, NotFoundError, parseTenant, PayloadTooLargeError, StrataError, type Logger, type MetricsRegistry } from "@strata/core";
import { constantTimeEqual, createServer, WWW_AUTHENTICATE, type GuardVerdict, type HttpSecurity } from "@strata/httpsec";
import { RollupCache } from "./cache.js";
import { rawTenant, type QueryEngine, type SelectConfig, type SelectRuntime } from "./context.js";
import { Limiter, QueryStats } from "./query-stats.js";
import { errorAnswer, writeJson } from "./respond.js";
import { adminRoutes } from "./routes/admin.js";
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

/** Paths that answer without any credentials: load balancers and systemd probe them. */
const PROBES = new Set(["/health", "/-/healthy", "/-/ready"]);

/**
 * select's HTTP app: the Prometheus API under /select/<tenant>/prometheus/ (routes by concern
 * in ./routes), the web UI, the admin views, /health and /metrics. GET and POST with form
 * bodies are accepted on the API; errors answer in Prometheus' JSON shape.
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

  const rt: SelectRuntime = { backend, engine, config, log, metrics, cache, stats, limiter, partialAnswers, now, onQueryEnd: deps.onQueryEnd };

  const app = Fastify({
    logger: false,
    serverFactory: (handler) => createServer(handler, deps.security?.certs),
    bodyLimit: config.maxRequestBodyBytes,
    return503OnClosing: false,
    // fastify's own handler answers a bad request line or oversized headers (431) without
    // `connection: close` and then drops the socket, so a keep-alive client sends its next
    // request into a dead connection. Node's way: say close, then close.
    clientErrorHandler: (err, socket) => {
      if (err.code === "ECONNRESET" || socket.destroyed) return;
      const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const body = JSON.stringify({ status: "error", errorType: "bad_data", error: status === 431 ? "request headers (or URL) too large: send long queries as a POST form body" : `bad request: ${err.message}` });
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      socket.destroy();
    },
    // A URL the router cannot decode (a bad percent-encoding) answers in the API's error shape,
    // naming the part of the path that is wrong.
    frameworkErrors: (err, req, res) => {
      const reply = res as FastifyReply;
      const { status, body } = errorAnswer(err.code === "FST_ERR_BAD_URL" ? badUrlError(req.url) : new BadDataError(err.message));
      writeJson(reply, status, body);
    },
  });

  // ---- every request: the raw path check, then the credentials -----------------------------
  app.addHook("onRequest", async (req, reply) => {
    // Before any URL parser folds `/select/2/../1/…` into tenant 1's path.
    checkRawPath(req.url);
    if (deps.security === undefined && deps.keys === undefined) return;
    const q = req.url.indexOf("?");
    const path = q < 0 ? req.url : req.url.slice(0, q);
    if (PROBES.has(path)) return;
    const authKey = q < 0 ? undefined : (new URLSearchParams(req.url.slice(q + 1)).get("authKey") ?? undefined);
    const v = verdict(deps, path, req.headers.authorization, authKey);
    if (v.ok) return;
    deps.security?.failures.record(v.reason, req.socket.remoteAddress, req.url);
    return reply.code(401).header("www-authenticate", WWW_AUTHENTICATE).type("text/plain; charset=utf-8").send(`${v.message}\n`);
  });
  app.addHook("onResponse", async (req, reply) => {
    const path = req.routeOptions.config.metricPath ?? "other";
    requestCounter(path, reply.statusCode).inc();
    duration(path).observe(reply.elapsedTime / 1000);
  });

  // ---- bodies: form parameters (Prometheus' POST), nothing else is read ---------------------
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => done(null, body));
  app.addContentTypeParser("multipart/form-data", (_req, _payload, done) => {
    done(new BadDataError("multipart/form-data is not supported; send application/x-www-form-urlencoded"), undefined);
  });
  // Other bodies are not parameters: left unread (the server discards them).
  app.addContentTypeParser("*", (_req, _payload, done) => done(null, undefined));

  // ---- errors ---------------------------------------------------------------------------------
  app.setErrorHandler((err: FastifyError | StrataError, _req, reply) => {
    const { status, body } = errorAnswer(asStrataError(err, config.maxRequestBodyBytes));
    writeJson(reply, status, body);
    return reply;
  });
  app.setNotFoundHandler(async (req: FastifyRequest, reply: FastifyReply) => {
    const path = new URL(req.url, "http://localhost").pathname;
    const m = /^\/(select|delete)\/([^/]+)\/(prometheus|vmui)(\/.*)?$/.exec(path);
    if (!m) throw new NotFoundError(`unsupported path ${JSON.stringify(path)}; the Prometheus API is under /select/<accountID[:projectID]>/prometheus/`);
    parseTenant(rawTenant(req.url));
    if (m[1] === "select" && m[3] === "prometheus" && !["GET", "HEAD", "POST"].includes(req.method) && app.hasRoute({ method: "GET", url: `/select/:tenant/prometheus${routePattern(m[4] ?? "")}` })) {
      void reply.header("allow", "GET, POST");
      writeJson(reply, 405, JSON.stringify({ status: "error", errorType: "bad_data", error: `method ${req.method} not allowed: ${path} takes GET or POST` }));
      return;
    }
    throw new NotFoundError(`unsupported path ${JSON.stringify(path)}`);
  });

  // ---- routes ---------------------------------------------------------------------------------
  const text = (body: string) => async (_req: FastifyRequest, reply: FastifyReply) => reply.type("text/plain").send(body);
  for (const p of PROBES) app.get(p, text("OK"));
  app.get("/metrics", async (_req, reply) => reply.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render()));
  const flags = deps.flags ?? {};
  app.get("/flags", async (_req, reply) =>
    reply.type("text/plain; charset=utf-8").send(
      Object.entries(flags)
        .map(([k, v]) => `-${k}=${JSON.stringify(v)}\n`)
        .join(""),
    ),
  );
  queryRoutes(app, rt);
  metadataRoutes(app, rt);
  exportRoutes(app, rt);
  statusRoutes(app, rt, flags);
  alertRoutes(app, rt, deps.vmalertProxyURL);
  adminRoutes(app, rt);
  uiRoutes(app, deps.ui);

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

/** fastify's own errors (body too large, bad content) as the typed errors the API answers with. */
function asStrataError(err: FastifyError | StrataError, maxBody: number): unknown {
  if (err instanceof StrataError) return err;
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new PayloadTooLargeError(`request body exceeds the limit of ${maxBody} bytes (-maxRequestBodySize)`);
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return new BadDataError(err.message);
  return err;
}

/** The key that guards a path (VictoriaMetrics: -deleteAuthKey, -flagsAuthKey). */
function keyFor(path: string, keys: SelectAuthKeys | undefined): { flag: string; key: string } | undefined {
  if (keys === undefined) return undefined;
  if (path.endsWith("/api/v1/admin/tsdb/delete_series")) return { flag: "deleteAuthKey", key: keys.delete };
  if (path === "/flags" || path.endsWith("/api/v1/status/flags")) return { flag: "flagsAuthKey", key: keys.flags };
  return undefined;
}

/** An endpoint's key when it has one set, else the guard (basic auth, -metricsAuthKey). */
function verdict(deps: SelectDeps, path: string, authorization: string | undefined, authKey: string | undefined): GuardVerdict {
  const k = keyFor(path, deps.keys);
  if (k !== undefined && k.key !== "") {
    if (authKey === undefined || authKey === "") return { ok: false, reason: "invalid_auth_key", message: `${path} wants the authKey query arg (-${k.flag})` };
    return constantTimeEqual(authKey, k.key) ? { ok: true } : { ok: false, reason: "invalid_auth_key", message: `wrong authKey for ${path}` };
  }
  return deps.security ? deps.security.guard.check(path, authorization, authKey) : { ok: true };
}
