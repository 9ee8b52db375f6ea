import { formatFlagsPage, type Logger, type MetricsRegistry } from "@strata/core";
import { WWW_AUTHENTICATE, constantTimeEqual, createServer, type GuardVerdict, type HttpSecurity } from "@strata/httpsec";
import type { RuleManager, RulesFilter } from "@strata/rules";
import Fastify, { type FastifyInstance } from "fastify";

/**
 * The alert service's HTTP API: /api/v1/rules and /api/v1/alerts in Prometheus' JSON shape
 * (Grafana and select's -vmalert.proxyURL read them), /-/reload, /flags, /metrics, /health.
 */

export interface AlertDeps {
  readonly manager: RuleManager;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /** Reloads the rule files; rejects with the reason when they are invalid (the old rules stay). */
  readonly reload: () => Promise<void>;
  /** -tls*, -httpAuth.*, -metricsAuthKey; absent in tests of the API alone. */
  readonly security?: HttpSecurity;
  /** -reloadAuthKey (already read from file:// when given so); "" means -httpAuth.* decides. */
  readonly reloadAuthKey?: string;
  /** What /flags shows (core's displayFlags: secrets masked); no /flags without it. */
  readonly flags?: Readonly<Record<string, string>>;
  /** -flagsAuthKey (already read from file:// when given so); "" means -httpAuth.* decides. */
  readonly flagsAuthKey?: string;
}

type Query = Record<string, string | string[] | undefined>;

function list(q: Query, name: string): string[] {
  const out: string[] = [];
  for (const k of [name, `${name}[]`]) {
    const v = q[k];
    if (v === undefined) continue;
    out.push(...(Array.isArray(v) ? v : [v]));
  }
  return out;
}

class BadParam extends Error {}

function rulesFilter(q: Query): RulesFilter {
  const type = list(q, "type")[0];
  if (type !== undefined && type !== "alert" && type !== "record") throw new BadParam(`invalid parameter type=${JSON.stringify(type)}: want alert or record`);
  const ex = list(q, "exclude_alerts")[0];
  if (ex !== undefined && ex !== "true" && ex !== "false") throw new BadParam(`invalid parameter exclude_alerts=${JSON.stringify(ex)}: want true or false`);
  return {
    ...(type !== undefined ? { type } : {}),
    ruleNames: list(q, "rule_name"),
    groupNames: list(q, "rule_group"),
    files: list(q, "file"),
    excludeAlerts: ex === "true",
  };
}

/**
 * The verdict on a request for the service's endpoints: /-/reload wants -reloadAuthKey when set,
 * /flags -flagsAuthKey when set (both found by `route`, the route the router picked, so that a
 * percent-encoded path meets the same key), /metrics -metricsAuthKey when set, every other path (the rules and alerts APIs too, as in
 * vmalert) -httpAuth.* when set; /health and /-/ready stay open.
 */
function checkRequest(deps: AlertDeps, route: string | undefined, path: string, authorization: string | undefined, authKey: string | undefined): GuardVerdict {
  const [flag, key] = route === "/-/reload" ? ["reloadAuthKey", deps.reloadAuthKey ?? ""] : route === "/flags" ? ["flagsAuthKey", deps.flagsAuthKey ?? ""] : ["", ""];
  if (key !== "") {
    return authKey !== undefined && constantTimeEqual(authKey, key) ? { ok: true } : { ok: false, reason: "invalid_auth_key", message: `${route} wants the authKey query arg (-${flag})` };
  }
  // The route the router picked (it decodes the path): `/%6detrics` meets -metricsAuthKey too.
  return deps.security === undefined ? { ok: true } : deps.security.guard.check(route ?? path, authorization, authKey);
}

export function buildApp(deps: AlertDeps): FastifyInstance {
  const { manager, metrics, log, security } = deps;
  const app = Fastify({ logger: false, serverFactory: (handler) => createServer(handler, security?.certs) });

  app.addHook("onRequest", async (req, reply) => {
    const q = req.url.indexOf("?");
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const authKey = (req.query as Query | undefined)?.["authKey"];
    const v = checkRequest(deps, req.routeOptions.url, path, req.headers.authorization, typeof authKey === "string" ? authKey : undefined);
    if (v.ok) return;
    security?.failures.record(v.reason, req.socket.remoteAddress, req.url);
    return reply.code(401).header("www-authenticate", WWW_AUTHENTICATE).type("text/plain; charset=utf-8").send(`${v.message}\n`);
  });
  const reloads = metrics.counter("strata_alert_config_reloads_total", "Rule reloads requested (SIGHUP or /-/reload).");
  const reloadErrors = metrics.counter("strata_alert_config_reload_errors_total", "Reloads that failed; the previous rules stayed.");
  let lastReloadOk = 1;
  metrics.gauge("strata_alert_config_last_reload_successful", "1 when the last reload succeeded.", () => lastReloadOk);

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof BadParam) return reply.code(400).send({ status: "error", errorType: "bad_data", error: err.message });
    const status = typeof (err as { statusCode?: unknown }).statusCode === "number" ? (err as { statusCode: number }).statusCode : 500;
    if (status >= 500) log.error({ err: err instanceof Error ? err.message : String(err) }, "HTTP handler failed");
    return reply.code(status).send({ status: "error", errorType: status >= 500 ? "internal" : "bad_data", error: err instanceof Error ? err.message : String(err) });
  });

  app.get("/api/v1/rules", async (req) => ({ status: "success", data: { groups: manager.rules(rulesFilter(req.query as Query)) } }));
  app.get("/api/v1/alerts", async () => ({ status: "success", data: { alerts: manager.activeAlerts() } }));

  const reload = async (): Promise<{ status: string }> => {
    reloads.inc();
    try {
      await deps.reload();
      lastReloadOk = 1;
      return { status: "success" };
    } catch (err) {
      reloadErrors.inc();
      lastReloadOk = 0;
      throw new BadParam(`reload failed; the previous rules stay: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  app.post("/-/reload", reload);
  app.get("/-/reload", reload);

  const ok = async (): Promise<string> => "OK\n";
  app.get("/health", ok);
  app.get("/-/healthy", ok);
  app.get("/-/ready", ok);
  app.get("/metrics", async (_req, reply) => reply.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render()));
  const flags = deps.flags;
  if (flags !== undefined) app.get("/flags", async (_req, reply) => reply.type("text/plain; charset=utf-8").send(formatFlagsPage(flags)));
  app.get("/", async (_req, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .send('<!doctype html><title>Strata alert</title><h1>Strata alert</h1><ul><li><a href="api/v1/rules">/api/v1/rules</a></li><li><a href="api/v1/alerts">/api/v1/alerts</a></li><li><a href="metrics">/metrics</a></li></ul>'),
  );
  return app;
}
