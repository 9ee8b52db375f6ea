import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { NotFoundError, parseTenant } from "@strata/core";
import { rawTenant } from "../context.js";

export type UiHandler = (req: IncomingMessage, res: ServerResponse, path: string) => void | Promise<void>;

const HOME =
  '<!doctype html><title>Strata select</title><h1>Strata select</h1><ul><li><a href="/select/0/vmui/">Web UI (tenant 0)</a></li><li><a href="/select/0/prometheus/api/v1/status/buildinfo">Prometheus API (tenant 0)</a></li><li><a href="/metrics">/metrics</a></li></ul>';

/** The web UI below /select/<tenant>/vmui (served by @strata/ui; `api` is the /select scope) and the home page at /. */
export function uiRoutes(app: FastifyInstance, api: FastifyInstance, ui: UiHandler | undefined): void {
  app.get("/", async (_req, reply) => reply.type("text/html; charset=utf-8").send(HOME));
  const serve = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    parseTenant(rawTenant(req.url));
    if (!ui) throw new NotFoundError("the web UI is not built (run pnpm build)");
    // The path after `vmui` as sent ("", "/", "/assets/x.js"); serveUi resolves it inside its root.
    const pathname = new URL(req.url, "http://localhost").pathname;
    const after = pathname.slice(pathname.indexOf("/vmui") + "/vmui".length);
    reply.hijack();
    await ui(req.raw, reply.raw, after);
  };
  for (const url of ["/:tenant/vmui", "/:tenant/vmui/*"]) api.all(url, { config: { metricPath: "vmui" } }, serve);
}
