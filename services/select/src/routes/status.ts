import type { FastifyInstance } from "fastify";
import { BadDataError, DAY_MS } from "@strata/core";
import { tenantRoute, type SelectRuntime } from "../context.js";
import { promApiRoutes, withPrometheusTsdbFields } from "../prom-api.js";
import { success, writeJson } from "../respond.js";

/**
 * What describes the server and the queries rather than data: status/tsdb, buildinfo, flags,
 * runtimeinfo, format_query, parse_query, the tenant's active and top queries, and the empty
 * query_exemplars.
 */
export function statusRoutes(api: FastifyInstance, rt: SelectRuntime, flags: Readonly<Record<string, string>>): void {
  const { backend, stats } = rt;
  tenantRoute(api, rt, {
    rest: "api/v1/status/tsdb",
    handler: async (ctx) => {
      const dateParam = ctx.params.get("date");
      let date = Math.floor(ctx.now / DAY_MS);
      if (dateParam !== undefined) {
        const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateParam);
        if (!m) throw new BadDataError(`invalid parameter "date": want YYYY-MM-DD, got ${JSON.stringify(dateParam)}`);
        date = Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / 86_400_000);
      }
      const topN = ctx.params.int("topN", 10);
      if (topN < 1 || topN > 1000) throw new BadDataError('invalid parameter "topN": want 1..1000');
      const sets = ctx.params.matcherSets();
      if (sets.length > 1) throw new BadDataError("status/tsdb takes at most one match[] parameter");
      const req = { date, topN, focusLabel: ctx.params.get("focusLabel") ?? "", matchers: sets[0] ?? [] };
      const a = await withPrometheusTsdbFields(backend, ctx.tenant, await backend.tsdbStatus(ctx.tenant, req, ctx.opts), req, ctx.opts);
      success(ctx.reply, JSON.stringify(a.value), { isPartial: a.isPartial, warnings: a.warnings });
    },
  });
  for (const [rest, handler] of Object.entries(promApiRoutes({ flags, startedAt: rt.now() }))) tenantRoute(api, rt, { rest, handler });
  tenantRoute(api, rt, { rest: "api/v1/query_exemplars", handler: async (ctx) => success(ctx.reply, "[]") });
  tenantRoute(api, rt, { rest: "api/v1/status/active_queries", handler: async (ctx) => writeJson(ctx.reply, 200, stats.activeJson(ctx.tenant)) });
  tenantRoute(api, rt, {
    rest: "api/v1/status/top_queries",
    handler: async (ctx) => writeJson(ctx.reply, 200, stats.topJson(ctx.tenant, ctx.params.int("topN", 20), ctx.params.duration("maxLifetime", 600_000))),
  });
}
