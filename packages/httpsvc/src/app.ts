import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import { errorMessage, formatFlagsPage, httpStatusOf, parseListenAddr, type Logger, type MetricsRegistry } from "@strata/core";
import { createServer, type HttpSecurity } from "@strata/httpsec";
import { authHook, type EndpointKey } from "./auth.js";
import { clientErrorHandler } from "./client-error.js";
import { pathOf } from "./path.js";
import { sendError } from "./errors.js";

/** What /flags shows and the key that guards it. */
export interface FlagsPage {
  /** core's displayFlags(specs, values): every flag, secrets shown as `secret`. */
  readonly shown: Readonly<Record<string, string>>;
  /** -flagsAuthKey, already read through readSecret; "" leaves /flags to -httpAuth.*. */
  readonly authKey: string;
}

export interface ServiceAppOptions {
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** httpSecurityFromFlags(…): HTTPS with certificate reload (-tls*), -httpAuth.*, -metricsAuthKey. Absent: plain HTTP, open. */
  readonly security?: HttpSecurity;
  /** Per-endpoint keys (-snapshotAuthKey, -deleteAuthKey, …), checked instead of -httpAuth.* on their paths when set. */
  readonly authKeys?: readonly EndpointKey[];
  /** Serves /flags (one `-name="value"` line per flag), behind -flagsAuthKey when that is set. */
  readonly flagsPage?: FlagsPage;
  /** Why the service cannot serve yet (503 on /-/ready with this text); undefined when ready. */
  readonly notReady?: () => string | undefined;
  /** Exposition text appended to the registry's on /metrics (e.g. the storage engine's gauges). */
  readonly extraMetrics?: () => string;
  /** Cap of a buffered request body (a route may set its own `bodyLimit`); 413 past it. */
  readonly bodyLimit: number;
  /** The flag that sets bodyLimit, named in the 413 message (`maxInsertRequestSize`). */
  readonly bodyLimitFlag?: string;
  /**
   * Called with the raw URL when the router cannot percent-decode its path (no route, no hook
   * runs); may throw a typed error that names the problem better (e.g. an invalid tenant).
   * Default answer: 400 naming the path.
   */
  readonly onBadUrl?: (url: string) => void;
  /**
   * Replaces the answer to what the router refuses before any route (a path it cannot decode),
   * for a service whose errors have another shape (select: Prometheus' JSON); onBadUrl is then unused.
   */
  readonly frameworkErrors?: FastifyServerOptions["frameworkErrors"];
}

const TEXT = "text/plain; charset=utf-8";


/**
 * A fastify instance with what every Strata service shares, ready for the service's routes:
 *
 * - `/health`, `/-/healthy` (always OK), `/-/ready` (503 with `notReady()`'s reason), `/metrics`,
 *   and with `flagsPage` `/flags` (its key checked as the `authKeys` are);
 * - with `security`: HTTPS whose certificate is re-read on change, `-httpAuth.*` on every path
 *   but the probes, `-metricsAuthKey` on /metrics, and `authKeys` on their paths (401 with
 *   `WWW-Authenticate`, counted by reason);
 * - bodies of any content type arrive as a Buffer (`req.body`), capped at `bodyLimit`; form
 *   bodies arrive as URLSearchParams; routes that read `req.raw` themselves go in a scope
 *   that calls passRawBody;
 * - thrown errors answered by status of their type (core's typed errors; fastify's keep theirs),
 *   in plain text or, on routes with PROMETHEUS_ERRORS, Prometheus' JSON error shape;
 * - one debug log line per request (method, url, status, duration) when the level is debug.
 *
 * Not yet listening: call `app.listen()`, or `app.inject()` in tests.
 */
export function createServiceApp(o: ServiceAppOptions): FastifyInstance {
  const app = Fastify({
    logger: false,
    frameworkErrors: (err, req, reply) => {
      let status = err.statusCode ?? 400;
      let message = err.message;
      if (err.code === "FST_ERR_BAD_URL") {
        message = `cannot decode the request path ${JSON.stringify(pathOf(req.url))}: invalid percent-encoding`;
        try {
          o.onBadUrl?.(req.url);
        } catch (e) {
          status = httpStatusOf(e);
          message = errorMessage(e);
        }
      }
      void (reply as FastifyReply).code(status).type(TEXT).send(`${message}\n`);
    },
    bodyLimit: o.bodyLimit,
    return503OnClosing: true,
    // Paths carry labels (pushgateway's /metrics/job/<job>/<label>/<value>…).
    routerOptions: { maxParamLength: 16 * 1024 },
    // HTTPS when -tls is set (certificate re-read on change), plain HTTP otherwise.
    serverFactory: (handler) => createServer(handler, o.security?.certs),
    // A refused request line or header block is answered with `connection: close`.
    clientErrorHandler,
    ...(o.frameworkErrors === undefined ? {} : { frameworkErrors: o.frameworkErrors }),
  });
  // fastify leaves a serverFactory's server as Node makes it: idle keep-alive sockets closed after
  // 5 s, racing clients that reuse them at that moment (undici: "other side closed"; seen in
  // bench:query under load). 65 s, as the services' servers had before fastify.
  app.server.keepAliveTimeout = 65_000;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => done(null, new URLSearchParams(body as string)));

  const bodyLimitFlag = o.bodyLimitFlag ?? "";
  app.setErrorHandler((err: unknown, req, reply) => sendError(err, req, reply, o.log, bodyLimitFlag));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).type(TEXT).send(`unsupported path ${JSON.stringify(pathOf(req.url))}\n`);
  });

  const flagsKey: EndpointKey[] = o.flagsPage === undefined ? [] : [{ flag: "flagsAuthKey", key: o.flagsPage.authKey, path: "/flags" }];
  const hook = authHook(o.security, [...(o.authKeys ?? []), ...flagsKey]);
  if (hook !== undefined) app.addHook("onRequest", hook);
  if (o.log.isLevelEnabled("debug")) {
    app.addHook("onResponse", async (req, reply) => {
      o.log.debug({ method: req.method, url: req.url, status: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 10) / 10, remoteAddr: req.ip }, "http request");
    });
  }

  const ok = (_req: FastifyRequest, reply: FastifyReply): void => void reply.type(TEXT).send("OK");
  app.get("/health", ok);
  app.get("/-/healthy", ok);
  app.get("/-/ready", (_req, reply) => {
    const why = o.notReady?.();
    if (why === undefined) void reply.type(TEXT).send("OK");
    else void reply.code(503).type(TEXT).send(`${why}\n`);
  });
  app.get("/metrics", (_req, reply) => {
    void reply.type("text/plain; version=0.0.4; charset=utf-8").send(o.metrics.render() + (o.extraMetrics?.() ?? ""));
  });
  const page = o.flagsPage;
  if (page !== undefined) app.get("/flags", (_req, reply) => void reply.type(TEXT).send(formatFlagsPage(page.shown)));
  return app;
}

/**
 * Makes the routes of `scope` (a registered plugin's instance) receive their body unread: the
 * handler streams `req.raw` itself, with its own limits (e.g. imports that spool to disk).
 */
export function passRawBody(scope: FastifyInstance): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", (_req, payload, done) => done(null, payload));
}

/**
 * Listens on a `-httpListenAddr` value (`:8480` is every address, IPv6 and IPv4 where the host
 * has IPv6, else every IPv4 address; `127.0.0.1:8480` one address) and resolves once it does.
 */
export async function listenService(app: FastifyInstance, addr: string): Promise<void> {
  const { host, port } = parseListenAddr(addr);
  if (host !== undefined) {
    await app.listen({ port, host });
    return;
  }
  try {
    await app.listen({ port, host: "::" });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL") throw err;
    await app.listen({ port, host: "0.0.0.0" });
  }
}

/** The port the app listens on (after listen). */
export function listeningPort(app: FastifyInstance): number | undefined {
  const a = app.server.address();
  return typeof a === "object" && a !== null ? a.port : undefined;
}
