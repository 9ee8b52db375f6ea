import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { BadDataError } from "@strata/core";
import { PROMETHEUS_ERRORS } from "@strata/httpsvc";
import { API_METHODS, requestParams, tenantRoute, type Ctx, type SelectRuntime } from "../context.js";
import { writeJson } from "../respond.js";

/**
 * Operations that change state or see every tenant: delete_series (POST only; registered in
 * the /select scope and in VictoriaMetrics' /delete/<tenant>/ one), and below
 * /internal/resetRollupResultCache and the all-tenant /api/v1/status/{active,top}_queries
 * behind -adminAuthKey.
 */
export function deleteRoutes(api: FastifyInstance, rt: SelectRuntime): void {
  const { backend, cache, log } = rt;
  const deleteSeries = async (ctx: Ctx): Promise<void> => {
    if (ctx.req.method !== "POST") {
      // A GET must never delete (link prefetchers, crawlers, a pasted URL).
      void ctx.reply.header("allow", "POST");
      writeJson(ctx.reply, 405, JSON.stringify({ status: "error", errorType: "bad_data", error: `method ${ctx.req.method ?? ""} not allowed: delete_series takes POST` }));
      return;
    }
    const sets = ctx.params.matcherSets();
    if (sets.length === 0) throw new BadDataError("missing match[] parameter");
    const n = await backend.deleteSeries(ctx.tenant, sets, ctx.opts);
    cache.reset(ctx.tenant);
    log.info({ tenant: ctx.tenant, deleted: n, match: ctx.params.getAll("match[]") }, "deleted series");
    void ctx.reply.code(204).send();
  };
  tenantRoute(api, rt, { rest: "api/v1/admin/tsdb/delete_series", method: "ALL", handler: deleteSeries });
}

/** The root-level admin endpoints (`app`: the service app). */
export function adminRoutes(app: FastifyInstance, rt: SelectRuntime): void {
  const { cache, stats, config } = rt;

  // VictoriaMetrics' endpoint: after backfilling samples older than -search.cacheTimestampOffset,
  // cached range-query points may be outdated.
  app.route({
    method: API_METHODS,
    url: "/internal/resetRollupResultCache",
    config: { metricPath: "resetRollupResultCache", ...PROMETHEUS_ERRORS.config },
    handler: async (_req, reply) => {
      cache.reset();
      return reply.type("text/plain").send("OK");
    },
  });

  // Every tenant's queries: an admin view. A tenant sees its own under /select/<tenant>/prometheus/.
  for (const view of ["active_queries", "top_queries"] as const) {
    const path = `/api/v1/status/${view}`;
    app.route({
      method: API_METHODS,
      url: path,
      config: { metricPath: view, ...PROMETHEUS_ERRORS.config },
      handler: async (req, reply) => {
        const params = requestParams(req, new URL(req.url, "http://localhost"));
        if (!adminKeyMatches(config.adminAuthKey, params.get("authKey"))) {
          writeJson(
            reply,
            403,
            JSON.stringify({
              status: "error",
              errorType: "forbidden",
              error: `${path} lists every tenant's queries: pass authKey=<-adminAuthKey> (set -adminAuthKey to enable it); a tenant's own are at /select/<tenant>/prometheus${path}`,
            }),
          );
          return;
        }
        if (view === "active_queries") writeJson(reply, 200, stats.activeJson(undefined));
        else writeJson(reply, 200, stats.topJson(undefined, params.int("topN", 20), params.duration("maxLifetime", 600_000)));
      },
    });
  }
}

/** Compares the `authKey` parameter with -adminAuthKey in constant time; an empty key matches nothing. */
function adminKeyMatches(key: string, given: string | undefined): boolean {
  if (key === "" || given === undefined) return false;
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(key), digest(given));
}
