import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { errorMessage, formatFlagsPage, type Logger, type MetricsRegistry } from "@strata/core";
import { WWW_AUTHENTICATE, constantTimeEqual, createServer, type HttpSecurity } from "@strata/httpsec";
import type { AuthProxy } from "@strata/proxy";

export interface AuthAppDeps {
  readonly proxy: AuthProxy;
  readonly security: HttpSecurity;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /** Re-reads -auth.config; resolves with an error message when the new file was refused. */
  readonly reload: () => string | undefined;
  /** -reloadAuthKey (already read from file:// when given so); "" means -httpAuth.* decides. */
  readonly reloadAuthKey: string;
  /** What /flags shows (core's displayFlags: secrets masked). */
  readonly flags?: Readonly<Record<string, string>>;
  /** -flagsAuthKey (read like -reloadAuthKey); "" means -httpAuth.* decides. */
  readonly flagsAuthKey?: string;
}

/** The service's own endpoints; every other path (a percent-encoded one too) is proxied. */
const OWN_PATHS = new Set(["/health", "/-/ready", "/-/healthy", "/metrics", "/-/reload", "/flags"]);

function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

function authKeyOf(req: FastifyRequest): string | undefined {
  const q = req.query as Record<string, unknown> | undefined;
  const v = q?.["authKey"];
  return typeof v === "string" ? v : undefined;
}

/**
 * strata-auth's HTTP app: /health, /-/ready, /metrics, /-/reload and /flags (behind -httpAuth.*,
 * -metricsAuthKey, -reloadAuthKey and -flagsAuthKey), and the proxy for every other path. A proxied request is
 * taken over in onRequest (reply.hijack) before fastify reads its body, so bodies stream
 * through untouched. With -tls the server is HTTPS and reloads its certificate on change.
 */
export function buildApp(deps: AuthAppDeps): FastifyInstance {
  const { security } = deps;
  const proxy = async (req: FastifyRequest, reply: FastifyReply, path: string): Promise<void> => {
    reply.hijack();
    try {
      await deps.proxy.handle(req.raw, reply.raw);
    } catch (err) {
      deps.log.error({ err: errorMessage(err), path }, "proxy error");
      if (!reply.raw.headersSent) {
        reply.raw.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        reply.raw.end(`internal error: ${errorMessage(err)}\n`);
      } else reply.raw.destroy();
    }
  };
  const app = Fastify({
    // A URL fastify's router cannot decode (`/a%zz`) still goes through authentication first;
    // the proxy then answers 400 naming the bad escape and its position.
    frameworkErrors: (err, req, reply) => {
      const r = reply as FastifyReply;
      if (err.code === "FST_ERR_BAD_URL") void proxy(req, r, pathOf(req.url));
      else void r.code(err.statusCode ?? 400).type("text/plain; charset=utf-8").send(`${err.message}\n`);
    },
    logger: false,
    serverFactory: (handler) => createServer(handler, security.certs),
    // Proxied bodies are never parsed; own endpoints take none.
    bodyLimit: 1024,
    return503OnClosing: true,
  });

  const refuse = (req: FastifyRequest, reply: FastifyReply, reason: Parameters<HttpSecurity["failures"]["record"]>[0], message: string): FastifyReply => {
    security.failures.record(reason, req.socket.remoteAddress, req.url);
    return reply.code(401).header("www-authenticate", WWW_AUTHENTICATE).type("text/plain; charset=utf-8").send(`${message}\n`);
  };

  app.addHook("onRequest", async (req, reply) => {
    const path = pathOf(req.url);
    if (!OWN_PATHS.has(path)) return proxy(req, reply, path);
    const [flag, own] = path === "/-/reload" ? ["reloadAuthKey", deps.reloadAuthKey] : path === "/flags" ? ["flagsAuthKey", deps.flagsAuthKey ?? ""] : ["", ""];
    if (own !== "") {
      const key = authKeyOf(req);
      if (key === undefined || !constantTimeEqual(key, own)) return refuse(req, reply, "invalid_auth_key", `${path} wants the authKey query arg (-${flag})`);
      return;
    }
    const v = security.guard.check(path, req.headers.authorization, authKeyOf(req));
    if (!v.ok) return refuse(req, reply, v.reason, v.message);
  });

  app.get("/health", async (_req, reply) => reply.type("text/plain").send("OK"));
  app.get("/-/healthy", async (_req, reply) => reply.type("text/plain").send("OK"));
  app.get("/-/ready", async (_req, reply) => reply.type("text/plain").send("OK"));
  app.get("/metrics", async (_req, reply) => reply.type("text/plain; version=0.0.4; charset=utf-8").send(deps.metrics.render()));
  const reload = async (_req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const err = deps.reload();
    if (err !== undefined) return reply.code(400).type("text/plain; charset=utf-8").send(`the new -auth.config was refused, the previous one stays in use: ${err}\n`);
    return reply.type("text/plain").send("OK\n");
  };
  app.get("/-/reload", reload);
  app.post("/-/reload", reload);
  app.get("/flags", async (_req, reply) => reply.type("text/plain; charset=utf-8").send(formatFlagsPage(deps.flags ?? {})));
  return app;
}
