import type { FastifyInstance } from "fastify";
import { BadDataError, NotFoundError } from "@strata/core";
import { tenantRoute, type Ctx, type SelectRuntime } from "../context.js";
import { applyLimit, fetchLimit, type ListLimit } from "../limits.js";
import type { MetricMetadata } from "@strata/cluster";
import type { Labels } from "@strata/core";
import { KeptAnswers, labelsJsonKept, success } from "../respond.js";

/** The answers of the list routes, kept by the cached lists they come from (see KeptAnswers). */
export const keptAnswers = {
  labels: new KeptAnswers<string>((l) => JSON.stringify(l)),
  labelValues: new KeptAnswers<string>((l) => JSON.stringify(l)),
  series: new KeptAnswers<Labels>((l) => `[${l.map(labelsJsonKept).join(",")}]`),
  metadata: new KeptAnswers<MetricMetadata>(metadataJson),
};

/** labels, label values, series, series/count, metadata: lists from the storage nodes' indexes. */
export function metadataRoutes(api: FastifyInstance, rt: SelectRuntime): void {
  const { backend, config } = rt;
  tenantRoute(api, rt, {
    rest: "api/v1/labels",
    handler: async (ctx) => {
      const { minT, maxT } = timeRange(ctx);
      const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxTagKeys, capFlag: "-search.maxTagKeys" };
      const a = applyLimit(await backend.labelNames(ctx.tenant, ctx.params.matcherSets(), minT, maxT, fetchLimit(l), ctx.opts), l, "label names");
      keptAnswers.labels.send(ctx.reply, a);
    },
  });
  tenantRoute(api, rt, {
    rest: "api/v1/label/:name/values",
    metricPath: "api/v1/label/values",
    handler: async (ctx) => {
      // The name as sent (the 8th segment of /select/<t>/prometheus/api/v1/label/<name>/values), decoded here.
      const raw = ctx.url.pathname.split("/")[7] ?? "";
      if (raw === "") throw new NotFoundError(`unsupported path ${JSON.stringify(ctx.url.pathname)}`);
      const name = decodeLabelName(raw);
      const { minT, maxT } = timeRange(ctx);
      const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxTagValues, capFlag: "-search.maxTagValues" };
      const a = applyLimit(await backend.labelValues(ctx.tenant, name, ctx.params.matcherSets(), minT, maxT, fetchLimit(l), ctx.opts), l, "label values");
      keptAnswers.labelValues.send(ctx.reply, a);
    },
  });
  tenantRoute(api, rt, {
    rest: "api/v1/series",
    handler: async (ctx) => {
      const sets = ctx.params.matcherSets();
      if (sets.length === 0) throw new BadDataError("no match[] parameter provided");
      const { minT, maxT } = timeRange(ctx);
      const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: config.maxLabelsAPISeries, capFlag: "-search.maxSeriesPerAPICall" };
      const a = applyLimit(await backend.series(ctx.tenant, sets, minT, maxT, fetchLimit(l), ctx.opts), l, "series");
      keptAnswers.series.send(ctx.reply, a);
    },
  });
  tenantRoute(api, rt, {
    rest: "api/v1/series/count",
    handler: async (ctx) => {
      const a = await backend.seriesCount(ctx.tenant, ctx.opts);
      success(ctx.reply, JSON.stringify([a.value]), { isPartial: a.isPartial, warnings: a.warnings });
    },
  });
  tenantRoute(api, rt, {
    rest: "api/v1/metadata",
    handler: async (ctx) => {
      const l: ListLimit = { limit: ctx.params.int("limit", 0), cap: 0, capFlag: "" };
      const a = applyLimit(await backend.metadata(ctx.tenant, ctx.params.get("metric") ?? "", fetchLimit(l), ctx.opts), l, "metrics");
      keptAnswers.metadata.send(ctx.reply, a);
    },
  });
}

/** /api/v1/metadata's data: `{"<family>":[{"type":…,"help":…,"unit":…},…],…}`. */
function metadataJson(list: readonly MetricMetadata[]): string {
  const out: Record<string, { type: string; help: string; unit: string }[]> = {};
  for (const m of list) (out[m.metricFamilyName] ??= []).push({ type: m.type, help: m.help, unit: m.unit });
  return JSON.stringify(out);
}

/** `start` and `end` of a metadata or export call (default: all time up to now). */
export function timeRange(ctx: Ctx): { minT: number; maxT: number } {
  const maxT = ctx.params.time("end", ctx.now, ctx.now);
  const minT = ctx.params.time("start", 0, ctx.now);
  if (maxT < minT) throw new BadDataError("end timestamp must not be before start time");
  return { minT, maxT };
}

/** Label names in the path may be `U__`-escaped (Prometheus 3 UTF-8 names) or percent-encoded. */
export function decodeLabelName(s: string): string {
  let name: string;
  try {
    name = decodeURIComponent(s);
  } catch {
    throw new BadDataError(`invalid label name ${JSON.stringify(s)} in the path: bad percent-encoding`, "STRATA_INVALID_LABEL_NAME");
  }
  if (!name.startsWith("U__")) return name;
  return name.slice(3).replace(/_([0-9a-fA-F]+)_|__/g, (_m, hex: string | undefined) => (hex === undefined ? "_" : String.fromCodePoint(parseInt(hex, 16))));
}
