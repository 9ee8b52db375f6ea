import type { FastifyInstance } from "fastify";
import { tenantRoute, type SelectRuntime } from "../context.js";
import { vmalertProxy, type RulesApiPath } from "../vmalert-proxy.js";

/** /api/v1/rules and /api/v1/alerts, forwarded to -vmalert.proxyURL (empty lists without it). */
export function alertRoutes(api: FastifyInstance, rt: SelectRuntime, proxyURL: string | undefined): void {
  const proxy = vmalertProxy(proxyURL, rt.config.maxQueryDurationMs);
  for (const rest of ["api/v1/rules", "api/v1/alerts"] satisfies RulesApiPath[]) {
    tenantRoute(api, rt, { rest, handler: (ctx) => proxy(ctx.reply, rest, ctx.url.search, ctx.signal, ctx.req.headers.authorization) });
  }
}
