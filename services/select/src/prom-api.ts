// The parts of the Prometheus HTTP API that describe queries and the server rather than data:
// format_query, parse_query, status/{buildinfo,flags,runtimeinfo}, and the Prometheus fields
// of status/tsdb beside VictoriaMetrics' ones.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { FastifyReply } from "fastify";
import type { Answer, SearchOptions, SelectBackend, TsdbStatus } from "@strata/cluster";
import { BadDataError, DAY_MS, type LabelMatcher, type Tenant } from "@strata/core";
import { astJson, parseExpr, prettify, type Expr } from "@strata/promql";
import type { Params } from "./params.js";
import { success } from "./respond.js";

/** What these handlers read from a request (select's request context has all of it). */
export interface PromApiCtx {
  readonly reply: FastifyReply;
  readonly params: Params;
}

export interface PromApiDeps {
  /** Every flag's value as shown by `/api/v1/status/flags` (core's displayFlags: secrets masked). */
  readonly flags: Readonly<Record<string, string>>;
  /** Process start, ms. */
  readonly startedAt: number;
}

/** The Prometheus version whose API select answers like; Grafana reads `version` to pick features. */
export const PROMETHEUS_COMPAT_VERSION = "2.53.0";

const STRATA_VERSION = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
})();

/** The `query` parameter parsed, or Prometheus' `invalid parameter "query": 1:5: parse error: …`. */
function parsedQuery(params: Params): Expr {
  const q = params.get("query") ?? "";
  try {
    return parseExpr(q);
  } catch (err) {
    throw new BadDataError(`invalid parameter "query": ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function promApiRoutes(deps: PromApiDeps): Record<string, (ctx: PromApiCtx) => Promise<void>> {
  return {
    "api/v1/format_query": async (ctx) => success(ctx.reply, JSON.stringify(prettify(parsedQuery(ctx.params)))),
    "api/v1/parse_query": async (ctx) => success(ctx.reply, JSON.stringify(astJson(parsedQuery(ctx.params)))),
    "api/v1/status/buildinfo": async (ctx) =>
      success(
        ctx.reply,
        JSON.stringify({
          // `version` stays a Prometheus version: Grafana turns features on by it.
          version: PROMETHEUS_COMPAT_VERSION,
          revision: `strata-${STRATA_VERSION}`,
          branch: "",
          buildUser: "",
          buildDate: "",
          goVersion: `node${process.versions.node}`,
          application: "strata-select",
          strataVersion: STRATA_VERSION,
        }),
      ),
    "api/v1/status/flags": async (ctx) => success(ctx.reply, JSON.stringify(deps.flags)),
    "api/v1/status/runtimeinfo": async (ctx) => {
      const mem = process.memoryUsage();
      const started = new Date(deps.startedAt).toISOString();
      success(
        ctx.reply,
        JSON.stringify({
          startTime: started,
          CWD: process.cwd(),
          reloadConfigSuccess: true,
          lastConfigTime: started,
          corruptionCount: 0,
          GOMAXPROCS: availableParallelism(),
          storageRetention: "",
          nodeVersion: process.versions.node,
          rssBytes: mem.rss,
          heapUsedBytes: mem.heapUsed,
        }),
      );
    },
  };
}

/** Prometheus' `status/tsdb` answer, with VictoriaMetrics' fields beside it. */
export interface PrometheusTsdbStatus extends TsdbStatus {
  readonly headStats: { numSeries: number; numLabelPairs: number; chunkCount: number; minTime: number; maxTime: number };
  readonly memoryInBytesByLabelName: readonly { name: string; value: number }[];
}

/**
 * Adds Prometheus' fields to a status/tsdb answer for `date` (days since the epoch): `headStats`
 * describes that day's series (`numLabelPairs` counts distinct label=value pairs, where
 * VictoriaMetrics' `totalLabelValuePairs` counts them per series; Strata keeps no head chunks:
 * `chunkCount` is 0), and
 * `memoryInBytesByLabelName` sums the bytes of every value of each label name that day (the top
 * `topN`), asking the storage nodes for the values.
 */
export async function withPrometheusTsdbFields(
  backend: SelectBackend,
  tenant: Tenant,
  status: Answer<TsdbStatus>,
  req: { readonly date: number; readonly topN: number; readonly matchers: readonly LabelMatcher[] },
  opts: SearchOptions,
): Promise<Answer<PrometheusTsdbStatus>> {
  const minT = req.date * DAY_MS;
  const maxT = minT + DAY_MS - 1;
  const sets = req.matchers.length > 0 ? [req.matchers] : [];
  const warnings = [...status.warnings];
  let isPartial = status.isPartial;
  const names = await backend.labelNames(tenant, sets, minT, maxT, 0, opts);
  isPartial ||= names.isPartial;
  warnings.push(...names.warnings);
  const bytes: { name: string; value: number }[] = [];
  let labelPairs = 0;
  // A few label names at a time: each is one fan-out to the storage nodes.
  for (let i = 0; i < names.value.length; i += 8) {
    const batch = names.value.slice(i, i + 8);
    const answers = await Promise.all(batch.map((n) => backend.labelValues(tenant, n, sets, minT, maxT, 0, opts)));
    answers.forEach((a, k) => {
      isPartial ||= a.isPartial;
      warnings.push(...a.warnings);
      let sum = 0;
      for (const v of a.value) sum += Buffer.byteLength(v);
      labelPairs += a.value.length;
      bytes.push({ name: batch[k]!, value: sum });
    });
  }
  bytes.sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1));
  const s = status.value;
  return {
    value: {
      headStats: { numSeries: s.totalSeries, numLabelPairs: labelPairs, chunkCount: 0, minTime: minT, maxTime: maxT },
      ...s,
      memoryInBytesByLabelName: bytes.slice(0, req.topN),
    },
    isPartial,
    warnings: [...new Set(warnings)],
  };
}
