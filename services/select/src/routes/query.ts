import type { FastifyInstance } from "fastify";
import { BadDataError, compareByLabels, Trace } from "@strata/core";
import type { MatrixSeries, QueryResult } from "@strata/promql";
import { mergeMatrix, RollupCache } from "../cache.js";
import { tenantRoute, withSlot, type Ctx, type SelectRuntime } from "../context.js";
import { matrixChunks } from "../matrix-bytes.js";
import { resultChunks, successStream } from "../render.js";

/** /api/v1/query and /api/v1/query_range: PromQL through the engine, answers streamed in slices. */
export function queryRoutes(api: FastifyInstance, rt: SelectRuntime): void {
  tenantRoute(api, rt, { rest: "api/v1/query", handler: (ctx) => query(rt, ctx) });
  tenantRoute(api, rt, { rest: "api/v1/query_range", handler: (ctx) => queryRange(rt, ctx) });
}

/** Logs and counts a query slower than -search.logSlowQueryDuration (VictoriaMetrics' slow query log). */
function logIfSlow(rt: SelectRuntime, ctx: Ctx, q: string, start: number, end: number, step: number, t0: number): void {
  const ms = performance.now() - t0;
  const limit = rt.config.logSlowQueryDurationMs;
  if (limit <= 0 || ms < limit) return;
  rt.slowQueries.inc();
  rt.log.warn(
    { query: q, start, end, step, tenant: `${ctx.tenant.accountID}:${ctx.tenant.projectID}`, durationMs: Math.round(ms), remoteAddr: ctx.req.socket.remoteAddress ?? "" },
    `slow query: ${Math.round(ms)} ms, more than -search.logSlowQueryDuration=${limit}ms`,
  );
}

/** The query's trace when `trace=1` asks for one (Trace.off otherwise). */
function traceOf(ctx: Ctx, what: string): Trace {
  return ctx.params.bool("trace") ? Trace.start(`${ctx.url.pathname}: ${what}`) : Trace.off;
}

async function query(rt: SelectRuntime, ctx: Ctx): Promise<void> {
  const q = ctx.params.get("query") ?? ""; // absent or empty: the parser says "no expression found in input", as Prometheus does
  const time = ctx.params.time("time", ctx.now - rt.config.latencyOffsetMs, ctx.now);
  const done = rt.stats.begin(ctx.tenant, q, time, time, 0, ctx.req.socket.remoteAddress ?? "");
  const t0 = performance.now();
  const trace = traceOf(ctx, `query=${q}, time=${time}`);
  try {
    await withSlot(rt, ctx, async () => {
      const querier = rt.backend.querier(ctx.tenant, ctx.opts);
      try {
        const r = await rt.engine.instantQuery(querier, q, time, ctx.signal, trace);
        if (querier.isPartial) rt.partialAnswers.inc();
        trace.done();
        ctx.reply.hijack();
        await successStream(
          ctx.res,
          resultChunks(sortedResult(r)),
          { isPartial: querier.isPartial, warnings: [...querier.warnings, ...r.warnings], infos: r.infos, trace },
          ctx.signal,
        );
      } finally {
        // The answer is written: the selected samples may be reused.
        await querier.close?.();
      }
    });
  } finally {
    done();
    logIfSlow(rt, ctx, q, time, time, 0, t0);
  }
}

async function queryRange(rt: SelectRuntime, ctx: Ctx): Promise<void> {
  const { config, cache } = rt;
  const q = ctx.params.get("query") ?? ""; // absent or empty: the parser says "no expression found in input", as Prometheus does
  const start = ctx.params.time("start", NaN, ctx.now);
  const end = ctx.params.time("end", NaN, ctx.now);
  if (Number.isNaN(start)) throw new BadDataError('missing required parameter "start"');
  if (Number.isNaN(end)) throw new BadDataError('missing required parameter "end"');
  const step = ctx.params.duration("step", NaN);
  if (Number.isNaN(step)) throw new BadDataError('missing required parameter "step"');
  if (end < start) throw new BadDataError("end timestamp must not be before start time");
  if (step <= 0) throw new BadDataError("zero or negative query resolution step widths are not accepted. Try a positive integer");
  const points = Math.floor((end - start) / step) + 1;
  if (points > config.maxPointsPerTimeseries) {
    throw new BadDataError(
      `exceeded maximum resolution of ${config.maxPointsPerTimeseries} points per timeseries (-search.maxPointsPerTimeseries). Try decreasing the query resolution (?step=XX)`,
    );
  }
  const done = rt.stats.begin(ctx.tenant, q, start, end, step, ctx.req.socket.remoteAddress ?? "");
  const t0 = performance.now();
  const trace = traceOf(ctx, `query=${q}, start=${start}, end=${end}, step=${step}`);
  try {
    await withSlot(rt, ctx, async () => {
      const cacheable = !config.disableCache && !ctx.params.bool("nocache") && !dependsOnQueryRange(q);
      const key = RollupCache.key(ctx.tenant, q, step, start);
      const cached = cacheable ? cache.get(key, start, end, step) : undefined;
      const querier = rt.backend.querier(ctx.tenant, ctx.opts);
      try {
        let series: MatrixSeries[];
        let warnings: readonly string[] = [];
        let infos: readonly string[] = [];
        if (cached && cached.nextStart > end) {
          series = cached.series;
          trace.child(`answered from the result cache: ${series.length} series`).done();
        } else {
          const from = cached ? cached.nextStart : start;
          if (cached) trace.child(`result cache holds [${start}..${cached.nextStart}): evaluate the rest`).done();
          const r = await rt.engine.rangeQuery(querier, q, from, end, step, ctx.signal, trace);
          warnings = r.warnings;
          infos = r.infos;
          if (r.type !== "matrix") {
            // Scalars and strings in range queries come back as matrices in Prometheus; an
            // engine that returns otherwise is answered as is, uncached.
            trace.done();
            ctx.reply.hijack();
            await successStream(ctx.res, resultChunks(r), { isPartial: querier.isPartial, warnings: [...querier.warnings, ...warnings], infos, trace }, ctx.signal);
            return;
          }
          series = cached ? mergeMatrix(cached.series, r.series) : [...r.series];
          if (cacheable && !querier.isPartial) {
            const limit = ctx.now - config.cacheTimestampOffsetMs;
            const cacheableEnd = start + Math.floor((Math.min(end, limit) - start) / step) * step;
            cache.put(key, start, cacheableEnd, series);
          }
        }
        if (querier.isPartial) rt.partialAnswers.inc();
        const sortTrace = trace.child("sort the answer's series");
        series.sort(compareByLabels);
        sortTrace.done();
        trace.done();
        ctx.reply.hijack();
        await successStream(
          ctx.res,
          matrixChunks(series, { start, step, count: points }),
          { isPartial: querier.isPartial, warnings: [...querier.warnings, ...warnings], infos, trace },
          ctx.signal,
        );
      } finally {
        // The answer is written (the result cache keeps copies): the selected samples may be reused.
        await querier.close?.();
      }
    });
  } finally {
    done();
    logIfSlow(rt, ctx, q, start, end, step, t0);
  }
}

/**
 * The rollup cache reuses points across queries with the same step and alignment but another
 * start/end, so it may only hold queries whose points do not depend on the query's range: not
 * `@` (`@ start()`/`@ end()`, and fixed times are rare enough), nor the `start()`, `end()` and
 * `range()` functions (also inside durations: `x[range()]`, `offset range()`). A false positive
 * (the word inside a string) only skips the cache.
 */
function dependsOnQueryRange(q: string): boolean {
  return q.includes("@") || /\b(?:start|end|range)\s*\(/.test(q);
}

/** A matrix result with its series sorted by labels, as the API answers them. */
function sortedResult(r: QueryResult): QueryResult {
  if (r.type !== "matrix") return r;
  return { ...r, series: [...r.series].sort(compareByLabels) };
}
