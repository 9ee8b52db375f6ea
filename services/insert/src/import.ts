import { tmpdir } from "node:os";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  StrataError,
  errorMessage,
  httpStatusOf,
  labelValue,
  parseTenant,
  type LabelLimits,
  type Logger,
  type RateLimitedLog,
  type MetricsRegistry,
  type SampleWindow,
} from "@strata/core";
import {
  RowsBatchSink,
  decodeBody,
  metricTypeNumber,
  metricsTypeOf,
  parserForRequest,
  type ImportFormat,
  type MetricMetadata,
} from "@strata/formats";
import type { MetadataItem } from "@strata/cluster";
import { sendError } from "@strata/httpsvc";
import type { ConcurrencyLimiter } from "./limiter.js";
import type { RelabelHook } from "./relabel-hook.js";
import { RowsSpool } from "./spool.js";
import type { RowsIgnored } from "./ignored.js";

/** What the import handlers need from the storage-node clients (InsertCluster). */
export interface RowsWriter {
  write(batch: Uint8Array): Promise<unknown>;
  writeMetadata(items: readonly MetadataItem[]): Promise<unknown>;
}

/** The import flags (-import.*, -opentsdbhttp.maxInsertRequestSize). */
export interface ImportSettings {
  /** Largest decompressed body (413 past it). */
  readonly maxRequestBytes: number;
  readonly maxLineBytes: number;
  readonly maxOpenTsdbBytes: number;
  /** Rows batch bytes a request holds in memory before spooling to `tmpDir`. */
  readonly memoryBufferBytes: number;
  readonly tmpDir: string;
}

export const DEFAULT_IMPORT_SETTINGS: ImportSettings = {
  maxRequestBytes: 4 * 1024 * 1024 * 1024,
  maxLineBytes: 16 * 1024 * 1024,
  maxOpenTsdbBytes: 32 * 1024 * 1024,
  memoryBufferBytes: 4 * 1024 * 1024,
  tmpDir: tmpdir(),
};

export interface ImportDeps extends ImportSettings {
  readonly cluster: RowsWriter;
  readonly limits: LabelLimits;
  readonly relabel: RelabelHook;
  readonly log: Logger;
  /** Where rejected requests are logged (shared with remote write: one rate limit for the service). */
  readonly rejectedLog: RateLimitedLog;
  readonly metrics: MetricsRegistry;
  /** -maxConcurrentInserts, shared with remote write. */
  readonly limiter: ConcurrencyLimiter;
  /** The timestamps kept now (-retentionPeriod, -futureRetention); rows outside are counted. */
  readonly window: () => SampleWindow;
  readonly ignored: RowsIgnored;
}

/** A matched import URL. */
export interface ImportRoute {
  readonly tenant: string;
  readonly format: ImportFormat;
  /** `/metrics/job/<job>/…` after `/api/v1/import/prometheus`. */
  readonly pushgatewayPath?: string;
}

const PREFIX = /^\/insert\/([^/]+)\/(.*)$/;
const PATHS: Readonly<Record<string, ImportFormat>> = {
  "prometheus/api/v1/import": "jsonline",
  "prometheus/api/v1/import/prometheus": "prometheus",
  "prometheus/api/v1/import/csv": "csv",
  "influx/write": "influx",
  "influx/api/v2/write": "influx",
  "opentsdb/api/put": "opentsdb",
};
const PUSHGATEWAY = "prometheus/api/v1/import/prometheus/metrics/";

/** The import route of a URL path, or undefined when it is not one. */
export function matchImportRoute(pathname: string): ImportRoute | undefined {
  const m = PREFIX.exec(pathname);
  if (m === null) return undefined;
  const rest = m[2]!.endsWith("/") ? m[2]!.slice(0, -1) : m[2]!;
  const format = PATHS[rest];
  if (format !== undefined) return { tenant: m[1]!, format };
  if (rest.startsWith(PUSHGATEWAY)) {
    return { tenant: m[1]!, format: "prometheus", pushgatewayPath: rest.slice("prometheus/api/v1/import/prometheus".length) };
  }
  return undefined;
}

function reasonOf(err: unknown): string {
  return err instanceof StrataError ? err.code.replace(/^STRATA_/, "").toLowerCase() : "internal";
}

/** An error message that names the format first (parser errors already do). */
function withFormat(type: string, err: unknown): string {
  const msg = errorMessage(err);
  return msg.startsWith(`${type}: `) ? msg : `${type}: ${msg}`;
}

/**
 * The import endpoints (JSON lines, Prometheus text/OpenMetrics, CSV, Influx, OpenTSDB) on
 * `scope`, which must pass bodies unread (httpsvc's passRawBody): bodies are streamed.
 *
 * A request is stored whole or not at all: the body is decompressed and parsed as a stream into
 * a RowsSpool (bounded memory, temp file past -import.memoryBufferSize); only when the parser
 * has reached the end without error are the rows sent to storage, batch by batch. A bad body
 * gets 400 naming the format, the line and the problem, and nothing of it is stored.
 */
export function importRoutes(scope: FastifyInstance, d: ImportDeps): void {
  const m = d.metrics;
  const spilled = m.counter("strata_import_spooled_bytes_total", "Rows batch bytes of import requests spooled to temp files (bodies larger than -import.memoryBufferSize).");
  const inserted = (type: string) => m.counter(`strata_rows_inserted_total{type="${labelValue(type)}"}`, "Rows (samples) stored, by protocol.");
  const rejectedRows = (type: string, reason: string) =>
    m.counter(`strata_rows_rejected_total{type="${labelValue(type)}",reason="${labelValue(reason)}"}`, "Rows read from requests that were rejected, by protocol and reason.");
  const requests = (type: string) => m.counter(`strata_import_requests_total{type="${labelValue(type)}"}`, "Import requests received, by format.");
  const rejectedRequests = (type: string, reason: string) =>
    m.counter(`strata_import_requests_rejected_total{type="${labelValue(type)}",reason="${labelValue(reason)}"}`, "Import requests rejected, by format and reason.");
  const duration = m.histogram("strata_import_request_duration_seconds", "Duration of successful import requests.");

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    // The raw path: the tenant and a pushgateway path exactly as sent (the router decodes them).
    const q = request.url.indexOf("?");
    const route = matchImportRoute(q < 0 ? request.url : request.url.slice(0, q));
    if (route === undefined) {
      reply.callNotFound();
      return reply;
    }
    const req = request.raw;
    // Read now: once the answer is sent and the connection closed, req.socket is gone.
    const remoteAddr = req.socket.remoteAddress;
    const t0 = process.hrtime.bigint();
    const contentType = req.headers["content-type"];
    const type = metricsTypeOf(route.format, contentType);
    requests(type).inc();
    let acquired = false;
    let parsedRows = 0;
    let spool: RowsSpool | null = null;
    try {
      if (req.method !== "POST" && req.method !== "PUT") {
        req.resume();
        return await reply.code(405).header("allow", "POST").type("text/plain; charset=utf-8").send(`${type}: method ${req.method ?? ""} not allowed: imports use POST\n`);
      }
      const tenant = parseTenant(route.tenant);
      await d.limiter.acquire();
      acquired = true;
      spool = new RowsSpool(d.memoryBufferBytes, d.tmpDir);
      const sink = new RowsBatchSink({
        tenant,
        writer: spool.writer,
        limits: d.limits,
        window: d.window(),
        ...(() => {
          const t = d.relabel.transform(type);
          return t === undefined ? {} : { transform: t };
        })(),
      });
      let metadata: readonly MetricMetadata[] = [];
      const parser = parserForRequest(
        {
          format: route.format,
          query: new URL(request.url, "http://insert").searchParams,
          contentType,
          nowMs: Date.now(),
          pushgatewayPath: route.pushgatewayPath,
          maxLineBytes: d.maxLineBytes,
          maxBodyBytes: d.maxOpenTsdbBytes,
          onMetadata: (meta) => {
            metadata = meta;
          },
        },
        sink,
      );
      const body = decodeBody(req, req.headers["content-encoding"], { maxBytes: d.maxRequestBytes });
      try {
        for await (const chunk of body) {
          parser.write(chunk);
          if (spool.full) await spool.spill();
        }
        parser.end();
      } finally {
        parsedRows = parser.rowsRead;
      }
      // The whole body parsed: now (and only now) the rows go to storage.
      spilled.add(spool.spilledBytes);
      for await (const batch of spool.batches()) await d.cluster.write(batch);
      if (metadata.length > 0) {
        await d.cluster.writeMetadata(metadata.map((x) => ({ tenant, family: x.metric, type: metricTypeNumber(x.type), help: x.help, unit: x.unit })));
      }
      inserted(type).add(sink.rowsWritten);
      d.ignored(type, sink.rowsTooOld, sink.rowsTooNew);
      d.relabel.countDroppedRows(type, sink.rowsDropped);
      duration.observeSince(t0);
      return await reply.code(204).send();
    } catch (err) {
      const status = httpStatusOf(err);
      const reason = reasonOf(err);
      rejectedRequests(type, reason).inc();
      rejectedRows(type, reason).add(parsedRows);
      d.rejectedLog.warn(
        { err: errorMessage(err), tenant: route.tenant, type, status, reason, remoteAddr },
        status >= 500 ? "import failed" : "import rejected",
      );
      return sendError(err, request, reply, d.log, "", withFormat(type, err));
    } finally {
      await spool?.close();
      if (acquired) d.limiter.release();
    }
  };
  for (const p of Object.keys(PATHS)) {
    scope.all(`/insert/:tenant/${p}`, handle);
    scope.all(`/insert/:tenant/${p}/`, handle);
  }
  scope.all(`/insert/:tenant/${PUSHGATEWAY}*`, handle);
}
