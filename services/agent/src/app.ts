import { Readable } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { httpStatusOf, errorMessage, type Logger, type MetricsRegistry } from "@strata/core";
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

/** The agent's HTTP API: push receivers, operator pages, /metrics, /health, /-/reload. */
export function buildApp(d: AgentAppDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: d.maxRequestBytes });
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
