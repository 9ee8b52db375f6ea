import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { SearchOptions, SelectBackend } from "@strata/cluster";
import {
  BadDataError,
  ExecutionError,
  NotFoundError,
  parseTenant,
  TimeoutError,
  UnavailableError,
  type Counter,
  type Logger,
  type MetricsRegistry,
  type Tenant,
  type Trace,
} from "@strata/core";
import type { Querier, QueryResult } from "@strata/promql";
import type { RollupCache } from "./cache.js";
import { Params } from "./params.js";
import type { Limiter, QueryStats } from "./query-stats.js";
import { failure } from "./respond.js";

/** The PromQL engine as select uses it (implemented by @strata/promql). */
export interface QueryEngine {
  instantQuery(querier: Querier, query: string, time: number, signal?: AbortSignal, trace?: Trace): Promise<QueryResult>;
  rangeQuery(querier: Querier, query: string, start: number, end: number, step: number, signal?: AbortSignal, trace?: Trace): Promise<QueryResult>;
}

export interface SelectConfig {
  readonly maxQueryDurationMs: number;
  readonly maxConcurrentRequests: number;
  readonly maxQueueDurationMs: number;
  /** Queries slower than this are logged and counted (-search.logSlowQueryDuration; 0: never). */
  readonly logSlowQueryDurationMs: number;
  readonly maxSeries: number;
  readonly maxPointsPerTimeseries: number;
  readonly maxExportSeries: number;
  readonly maxLabelsAPISeries: number;
  readonly maxTagKeys: number;
  readonly maxTagValues: number;
  /** Key of the all-tenant views (`/api/v1/status/{top,active}_queries?authKey=`); empty: they answer 403. */
  readonly adminAuthKey: string;
  readonly denyPartialResponse: boolean;
  readonly cacheTimestampOffsetMs: number;
  readonly disableCache: boolean;
  readonly latencyOffsetMs: number;
  readonly lookbackDeltaMs: number;
  readonly maxRequestBodyBytes: number;
}

/** One request to a tenant's API (`/select/<tenant>/prometheus/<rest>`), as every handler sees it. */
export interface Ctx {
  readonly req: IncomingMessage;
  /** Whole answers go through the reply; a streamed one calls `reply.hijack()` and writes to `res`. */
  readonly reply: FastifyReply;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly tenant: Tenant;
  readonly params: Params;
  readonly now: number;
  readonly opts: SearchOptions;
  /** Aborted at the deadline (-search.maxQueryDuration or timeout=) and when the client goes away. */
  readonly signal: AbortSignal;
}

export type Handler = (ctx: Ctx) => Promise<void>;

/** What the route modules share: the dependencies and select's per-process state. */
export interface SelectRuntime {
  readonly backend: SelectBackend;
  readonly engine: QueryEngine;
  readonly config: SelectConfig;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  readonly cache: RollupCache;
  readonly stats: QueryStats;
  readonly limiter: Limiter;
  readonly partialAnswers: Counter;
  readonly slowQueries: Counter;
  readonly now: () => number;
  /** Called after each query left its slot. */
  readonly onQueryEnd: (() => void) | undefined;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** The `path` label of `strata_http_requests_total` and of the request duration histogram. */
    metricPath?: string;
  }
}

/** Runs `fn` in one of -search.maxConcurrentRequests slots, waiting up to -search.maxQueueDuration. */
export async function withSlot<T>(rt: SelectRuntime, ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  const { config } = rt;
  const release = await rt.limiter.acquire(
    config.maxQueueDurationMs,
    () =>
      new UnavailableError(
        `cannot handle more than ${config.maxConcurrentRequests} concurrent queries (-search.maxConcurrentRequests); waited ${config.maxQueueDurationMs} ms (-search.maxQueueDuration); retry later or raise the limits`,
      ),
    ctx.signal,
  );
  try {
    return await fn();
  } finally {
    release();
    rt.onQueryEnd?.();
  }
}

function searchOpts(config: SelectConfig, params: Params, signal: AbortSignal, t0: number): SearchOptions {
  const timeout = Math.min(params.duration("timeout", config.maxQueryDurationMs), config.maxQueryDurationMs);
  if (!(timeout > 0)) throw new BadDataError(`invalid parameter "timeout": want a positive duration, got ${JSON.stringify(params.get("timeout"))}`);
  return {
    deadline: t0 + timeout,
    denyPartialResponse: config.denyPartialResponse || params.bool("deny_partial_response"),
    maxSeries: config.maxSeries,
    signal,
  };
}

/** The tenant segment of `/select/<tenant>/…` or `/delete/<tenant>/…` as sent (not percent-decoded: parseTenant refuses encodings). */
export function rawTenant(rawUrl: string): string {
  const end = rawUrl.indexOf("/", "/select/".length);
  return rawUrl.slice("/select/".length, end < 0 ? undefined : end);
}

/** The parameters of a request: query string and form body (see the app's content-type parser). */
export function requestParams(req: FastifyRequest, url: URL): Params {
  return Params.from(url, req.method === "POST" && req.body instanceof URLSearchParams ? req.body : undefined);
}

export interface TenantRoute {
  /** The path below `/select/<tenant>/prometheus/` (or `/delete/…`: the scope's prefix), fastify syntax (`api/v1/label/:name/values`). */
  readonly rest: string;
  /** The `path` label of the request metrics; `rest` by default. */
  readonly metricPath?: string;
  readonly method?: "GET" | "POST" | readonly ("GET" | "POST")[] | "ALL";
  readonly handler: (ctx: Ctx) => Promise<void>;
}

/** The methods of the tenant API routes (fastify adds HEAD to GET). */
export const API_METHODS: ("GET" | "POST")[] = ["GET", "POST"];

/**
 * Registers a route of the tenant API. The handler gets a {@link Ctx}: tenant, merged
 * parameters, search options with the deadline, and a signal aborted at the deadline or when
 * the client goes away. Errors before a streamed answer started go to the app's error handler;
 * after `reply.hijack()` they are written here on the raw response.
 */
export function tenantRoute(scope: FastifyInstance, rt: SelectRuntime, r: TenantRoute): void {
  const url = `/:tenant/prometheus/${r.rest}`;
  const method = r.method === "ALL" ? ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] : r.method === undefined ? API_METHODS : typeof r.method === "string" ? r.method : [...r.method];
  scope.route({
    method,
    url,
    config: { metricPath: r.metricPath ?? r.rest },
    handler: async (request, reply) => {
      const t0 = Date.now();
      const res = reply.raw;
      const ac = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) ac.abort(new TimeoutError("client closed the connection"));
      };
      res.on("close", onClose);
      let timer: NodeJS.Timeout | undefined;
      try {
        const tenant = parseTenant(rawTenant(request.url));
        const u = new URL(request.url, "http://localhost");
        const params = requestParams(request, u);
        const opts = searchOpts(rt.config, params, ac.signal, t0);
        const ctx: Ctx = { req: request.raw, reply, res, url: u, tenant, params, now: rt.now(), opts, signal: ac.signal };
        timer = setTimeout(() => ac.abort(new TimeoutError(`query timed out after ${opts.deadline - t0} ms (-search.maxQueryDuration or timeout)`)), opts.deadline - t0);
        await r.handler(ctx);
      } catch (err) {
        const e = ac.signal.aborted && !(err instanceof BadDataError || err instanceof ExecutionError) ? (ac.signal.reason as unknown) : err;
        if (!(e instanceof BadDataError) && !(e instanceof NotFoundError)) rt.log.warn({ err: e instanceof Error ? e.message : String(e), path: request.url.split("?")[0] }, "request failed");
        if (!reply.sent) throw e;
        failure(res, e);
      } finally {
        clearTimeout(timer);
        res.off("close", onClose);
      }
    },
  });
}
