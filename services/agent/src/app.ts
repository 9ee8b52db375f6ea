import { Readable } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { formatFlagsPage, httpStatusOf, errorMessage, type Logger, type MetricsRegistry } from "@strata/core";
import { WWW_AUTHENTICATE, constantTimeEqual, createServer, type GuardVerdict, type HttpSecurity } from "@strata/httpsec";
import { decodeBody, type ImportFormat } from "@strata/formats";
import type { PushReceiver, ScrapeManager } from "@strata/scrape";
import { discoveryPage, targetsJson, targetsPage } from "./pages.js";

export { agentFlags } from "./flags.js";

export interface AgentAppDeps {
  readonly manager: ScrapeManager;
  readonly push: PushReceiver;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  readonly maxRequestBytes: number;
  /** Re-reads -promscrape.config; rejects (keeping the old config) with the reason. */
  reload(): Promise<void>;
  /** -tls*, -httpAuth.*, -metricsAuthKey; without it every endpoint is open over plain HTTP. */
  readonly security?: HttpSecurity;
  /** -reloadAuthKey (already read from file://); "" leaves /-/reload to -httpAuth.*. */
  readonly reloadAuthKey?: string;
  /** What /flags shows (core's displayFlags: secrets masked); no /flags without it. */
  readonly flags?: Readonly<Record<string, string>>;
  /** -flagsAuthKey (already read from file://); "" leaves /flags to -httpAuth.*. */
  readonly flagsAuthKey?: string;
}

const IMPORTS: Readonly<Record<string, ImportFormat>> = {
  "/api/v1/import": "jsonline",
  "/api/v1/import/prometheus": "prometheus",
  "/api/v1/import/csv": "csv",
  "/influx/write": "influx",
  "/influx/api/v2/write": "influx",
  "/opentsdb/api/put": "opentsdb",
};
const PUSHGATEWAY = "/api/v1/import/prometheus/metrics/";

function authKeyOf(req: FastifyRequest): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.["authKey"];
  return typeof v === "string" ? v : undefined;
}

/**
 * The agent's HTTP API: push receivers, operator pages, /metrics, /health, /-/reload. With
 * `security`, vmagent's rules: HTTPS under -tls, every path but the health probes behind
 * -httpAuth.*, /metrics behind -metricsAuthKey, /-/reload behind -reloadAuthKey and /flags behind
 * -flagsAuthKey when set.
 */
export function buildApp(d: AgentAppDeps): FastifyInstance {
  const security = d.security;
  const app = Fastify({ logger: false, bodyLimit: d.maxRequestBytes, serverFactory: (handler) => createServer(handler, security?.certs) });
  // Routes with a key of their own (flag, key), found by the route the router picked: a
  // percent-encoded path (`/%66lags`) meets the same key.
  const keyed = new Map<string | undefined, readonly [flag: string, key: string]>([
    ["/-/reload", ["reloadAuthKey", d.reloadAuthKey ?? ""]],
    ["/flags", ["flagsAuthKey", d.flagsAuthKey ?? ""]],
  ]);
  if (security !== undefined || [...keyed.values()].some(([, key]) => key !== "")) {
    app.addHook("onRequest", async (req, reply) => {
      const q = req.url.indexOf("?");
      const path = q < 0 ? req.url : req.url.slice(0, q);
      const own = keyed.get(req.routeOptions.url);
      let v: GuardVerdict = { ok: true };
      if (own !== undefined && own[1] !== "") {
        const key = authKeyOf(req);
        if (key === undefined || !constantTimeEqual(key, own[1])) v = { ok: false, reason: "invalid_auth_key", message: `${req.routeOptions.url} wants the authKey query arg (-${own[0]})` };
      } else if (security !== undefined) {
        // The route the router picked (it decodes the path): `/%6detrics` meets -metricsAuthKey too.
        v = security.guard.check(req.routeOptions.url ?? path, req.headers.authorization, authKeyOf(req));
      }
      if (v.ok) return;
      security?.failures.record(v.reason, req.socket.remoteAddress, req.url);
      return reply.code(401).header("www-authenticate", WWW_AUTHENTICATE).type("text/plain; charset=utf-8").send(`${v.message}\n`);
    });
  }
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: d.maxRequestBytes }, (_req, body, done) => done(null, body));
  const m = d.metrics;
  const pushErrors = m.counter("strata_agent_push_requests_rejected_total", "Push requests rejected (4xx/5xx).");

  app.setErrorHandler((err: unknown, req, reply) => {
    const fst = err as { statusCode?: number; code?: string };
    const status = typeof fst.statusCode === "number" && typeof fst.code === "string" && fst.code.startsWith("FST_") ? fst.statusCode : httpStatusOf(err);
    if (status >= 500) d.log.error({ url: req.url, err: errorMessage(err) }, "request failed");
    void reply.code(status).type("text/plain; charset=utf-8").send(`${errorMessage(err)}\n`);
  });

  const ok = (_req: FastifyRequest, reply: FastifyReply): void => {
    void reply.type("text/plain; charset=utf-8").send("OK");
  };
  app.get("/health", ok);
  app.get("/-/healthy", ok);
  app.get("/-/ready", ok);
  app.get("/metrics", (_req, reply) => {
    void reply.type("text/plain; version=0.0.4; charset=utf-8").send(m.render());
  });
  const reload = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      await d.reload();
    } catch (err) {
      await reply.code(400).type("text/plain; charset=utf-8").send(`cannot reload -promscrape.config; keeping the previous config: ${errorMessage(err)}\n`);
      return;
    }
    await reply.type("text/plain; charset=utf-8").send("OK\n");
  };
  app.post("/-/reload", reload);
  app.get("/-/reload", reload);
  const flags = d.flags;
  if (flags !== undefined) app.get("/flags", (_req, reply) => void reply.type("text/plain; charset=utf-8").send(formatFlagsPage(flags)));

  app.get("/api/v1/targets", (req, reply) => {
    const state = (req.query as Record<string, string | undefined>)["state"] ?? "any";
    if (state !== "any" && state !== "active" && state !== "dropped") {
      void reply.code(400).send({ status: "error", errorType: "bad_data", error: `state ${JSON.stringify(state)}: want active, dropped or any` });
      return;
    }
    void reply.send(targetsJson(d.manager, state));
  });
  app.get("/targets", (_req, reply) => {
    void reply.type("text/html; charset=utf-8").send(targetsPage(d.manager));
  });
  app.get("/service-discovery", (_req, reply) => {
    void reply.type("text/html; charset=utf-8").send(discoveryPage(d.manager));
  });

  /** The body decoded by Content-Encoding (gzip, deflate) with the size cap. */
  const bodyOf = async (req: FastifyRequest): Promise<Uint8Array> => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const chunks: Uint8Array[] = [];
    for await (const c of decodeBody(Readable.from([raw]), req.headers["content-encoding"], { maxBytes: d.maxRequestBytes })) chunks.push(c);
    return Buffer.concat(chunks);
  };

  const rejecting = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      pushErrors.inc();
      throw err;
    }
  };

  for (const p of ["/api/v1/write", "/prometheus/api/v1/write"]) {
    app.post(p, async (req, reply) => {
      await rejecting(async () => {
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        d.push.remoteWrite(raw, req.headers["content-type"], req.headers["content-encoding"]);
      });
      await reply.code(204).send();
    });
  }
  const importHandler = (format: ImportFormat, pushgateway: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    await rejecting(async () => {
      const url = new URL(req.url, "http://agent");
      const pg = pushgateway ? url.pathname.slice(url.pathname.indexOf("/metrics/")) : undefined;
      const body = await bodyOf(req);
      d.push.import(format, url.searchParams, body, req.headers["content-type"], pg);
    });
    await reply.code(204).send();
  };
  for (const [p, format] of Object.entries(IMPORTS)) {
    app.post(p, importHandler(format, false));
    if (p.startsWith("/api/")) app.post(`/prometheus${p}`, importHandler(format, false));
  }
  app.post(`${PUSHGATEWAY}*`, importHandler("prometheus", true));
  app.put(`${PUSHGATEWAY}*`, importHandler("prometheus", true));
  return app;
}
