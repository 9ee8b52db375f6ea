import { createGzip } from "node:zlib";
import type { FastifyInstance } from "fastify";
import type { SearchOptions } from "@strata/cluster";
import { BadDataError, compareByLabels, METRIC_NAME_LABEL } from "@strata/core";
import { formatJsonLine, TextExpositionWriter } from "@strata/formats";
import { formatPromValue, type MatrixSeries } from "@strata/promql";
import { tenantRoute, type Ctx, type SelectRuntime } from "../context.js";
import { timeRange } from "./metadata.js";

/** /api/v1/export (JSON lines), /api/v1/export/csv and /federate: raw samples, streamed. */
export function exportRoutes(api: FastifyInstance, rt: SelectRuntime): void {
  const { backend, config } = rt;
  const exportOpts = (ctx: Ctx): SearchOptions => ({ ...ctx.opts, maxSeries: config.maxExportSeries, maxSeriesFlag: "-search.maxExportSeries" });

  tenantRoute(api, rt, {
    rest: "api/v1/export",
    handler: async (ctx) => {
      const sets = ctx.params.matcherSets();
      if (sets.length === 0) throw new BadDataError("missing match[] parameter: export needs a series selector, e.g. match[]={__name__!=\"\"}");
      const { minT, maxT } = timeRange(ctx);
      const gzip = /\bgzip\b/.test(String(ctx.req.headers["accept-encoding"] ?? ""));
      await streamOut(ctx, "application/stream+json", gzip, async (write) => {
        await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), async (s) => {
          await write(formatJsonLine(s.labels, s.timestamps, s.values));
        });
      });
    },
  });

  tenantRoute(api, rt, {
    rest: "api/v1/export/csv",
    handler: async (ctx) => {
      const format = ctx.params.required("format").split(",");
      const sets = ctx.params.matcherSets();
      if (sets.length === 0) throw new BadDataError("missing match[] parameter");
      for (const f of format) {
        if (!/^(__name__|__value__|__timestamp__(:(unix_s|unix_ms|unix_ns|rfc3339))?|[^:]+)$/.test(f)) {
          throw new BadDataError(`invalid format column ${JSON.stringify(f)}: want __name__, __value__, __timestamp__[:unix_s|unix_ms|unix_ns|rfc3339] or a label name`);
        }
      }
      const { minT, maxT } = timeRange(ctx);
      const csvField = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
      await streamOut(ctx, "text/csv; charset=utf-8", false, async (write) => {
        await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), async (s) => {
          let chunk = "";
          const get = (n: string) => s.labels.find((l) => l.name === n)?.value ?? "";
          for (let i = 0; i < s.timestamps.length; i++) {
            const ts = s.timestamps[i]!;
            const row = format.map((f) => {
              if (f === "__value__") return formatPromValue(s.values[i]!);
              if (f.startsWith("__timestamp__")) {
                const unit = f.split(":")[1] ?? "unix_ms";
                if (unit === "unix_s") return String(Math.floor(ts / 1000));
                if (unit === "unix_ns") return `${ts}000000`;
                if (unit === "rfc3339") return new Date(ts).toISOString().replace(".000Z", "Z");
                return String(ts);
              }
              return csvField(get(f === "__name__" ? METRIC_NAME_LABEL : f));
            });
            chunk += `${row.join(",")}\n`;
          }
          await write(chunk);
        });
      });
    },
  });

  tenantRoute(api, rt, {
    rest: "federate",
    handler: async (ctx) => {
      const sets = ctx.params.matcherSets();
      if (sets.length === 0) throw new BadDataError("missing match[] parameter");
      const maxT = ctx.params.time("time", ctx.now, ctx.now);
      const minT = maxT - config.lookbackDeltaMs;
      const w = new TextExpositionWriter();
      let lastName = "";
      await streamOut(ctx, "text/plain; version=0.0.4; charset=utf-8", false, async (write) => {
        const rows: { labels: MatrixSeries["labels"]; v: number; t: number }[] = [];
        await backend.exportSeries(ctx.tenant, sets, minT, maxT, exportOpts(ctx), (s) => {
          // The last sample in the lookback window, unless the series went stale.
          const n = s.timestamps.length;
          if (n === 0) return;
          const v = s.values[n - 1]!;
          if (isStale(v)) return;
          rows.push({ labels: s.labels, v, t: s.timestamps[n - 1]! });
        });
        rows.sort(compareByLabels);
        for (const r of rows) {
          const name = r.labels.find((l) => l.name === METRIC_NAME_LABEL)?.value ?? "";
          if (name !== lastName) {
            w.metadata(name, "untyped");
            lastName = name;
          }
          w.sample(r.labels, r.v, r.t);
          const chunk = w.take();
          if (chunk !== undefined) await write(chunk);
        }
        await write(w.flush());
      });
    },
  });
}

/**
 * Streams a body to the raw response (the reply is hijacked). Headers go out with the first
 * chunk, so an error before any output is still a clean 4xx/5xx; writes wait for the socket
 * to drain.
 */
async function streamOut(ctx: Ctx, contentType: string, gzip: boolean, body: (write: (s: string) => Promise<void>) => Promise<void>): Promise<void> {
  ctx.reply.hijack();
  let started = false;
  const res = ctx.res;
  const z = gzip ? createGzip() : undefined;
  const start = () => {
    if (started) return;
    started = true;
    res.writeHead(200, { "content-type": contentType, ...(z ? { "content-encoding": "gzip" } : {}) });
    if (z) z.pipe(res);
  };
  const out = z ?? res;
  const write = async (s: string) => {
    if (s === "") return;
    start();
    if (!out.write(s)) await new Promise<void>((r) => out.once("drain", () => r()));
  };
  await body(write);
  start();
  await new Promise<void>((r) => out.end(() => r()));
}

function isStale(v: number): boolean {
  if (!Number.isNaN(v)) return false;
  const b = new Float64Array([v]);
  const u = new Uint32Array(b.buffer);
  return u[1] === 0x7ff00000 && u[0] === 2;
}
