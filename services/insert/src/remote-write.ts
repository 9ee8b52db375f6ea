import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  BadDataError,
  errorMessage,
  httpStatusOf,
  labelValue,
  parseTenant,
  PayloadTooLargeError,
  readBody,
  RowsBatchWriter,
  StrataError,
  type LabelLimits,
  type Logger,
  type MetricsRegistry,
  type RateLimitedLog,
  type RowsSink,
  type SampleWindow,
  type Tenant,
} from "@strata/core";
import type { InsertCluster, RoutedRows } from "@strata/cluster";
import { sendError } from "@strata/httpsvc";
import { RemoteWriteDecoder, remoteWriteVersion, SnappyBlockDecoder, snappyUncompressedLength, type RemoteWriteResult } from "@strata/protocol";
import type { RowsIgnored } from "./ignored.js";
import type { ConcurrencyLimiter } from "./limiter.js";
import type { RelabelHook } from "./relabel-hook.js";

export interface RemoteWriteDeps {
  readonly cluster: InsertCluster;
  readonly limits: LabelLimits;
  readonly maxRequestBytes: number;
  readonly limiter: ConcurrencyLimiter;
  readonly relabel: RelabelHook;
  readonly log: Logger;
  readonly rejectedLog: RateLimitedLog;
  readonly metrics: MetricsRegistry;
  readonly labelsCacheBytes?: number;
  readonly window: () => SampleWindow;
  readonly ignored: RowsIgnored;
}

type Version = 1 | 2;

/**
 * The tenant segment of `/insert/<tenant>/…` as sent: the router's decoded parameter would let
 * `%35` stand for tenant 5, which parseTenant refuses to read.
 */
export function rawTenant(url: string): string {
  const end = url.indexOf("/", 8);
  return url.slice(8, end < 0 ? url.length : end);
}

/** The error code as a metric label value (`STRATA_BODY_TOO_LARGE` → `body_too_large`). */
export function reasonOf(err: unknown): string {
  return err instanceof StrataError ? err.code.replace(/^STRATA_/, "").toLowerCase() : "internal";
}

const V2_NONE = { "X-Prometheus-Remote-Write-Samples-Written": "0", "X-Prometheus-Remote-Write-Histograms-Written": "0", "X-Prometheus-Remote-Write-Exemplars-Written": "0" };

/**
 * Prometheus remote write 1.0 and 2.0 at `/insert/<tenant>/prometheus[/api/v1/write]` on
 * `scope`, which must pass bodies unread (httpsvc's passRawBody): the body is read only once the
 * request holds a -maxConcurrentInserts slot, so waiting requests hold no body in memory.
 */
export function remoteWriteRoutes(scope: FastifyInstance, d: RemoteWriteDeps): void {
  const m = d.metrics;
  const requests = {
    1: m.counter('strata_insert_requests_total{protocol="promremotewrite",version="1"}', "Insert requests received."),
    2: m.counter('strata_insert_requests_total{protocol="promremotewrite",version="2"}'),
  };
  const rowsReceived = m.counter("strata_insert_rows_received_total", "Float samples accepted (acknowledged by storage).");
  const histogramsDropped = m.counter("strata_insert_histograms_dropped_total", "Native histogram samples received and not stored.");
  const exemplarsDropped = m.counter("strata_insert_exemplars_dropped_total", "Exemplars received and not stored.");
  const metadataReceived = m.counter("strata_insert_metadata_received_total", "Metric metadata entries received and forwarded to storage.");
  const duration = m.histogram("strata_insert_request_duration_seconds", "Duration of successful insert requests.");
  const rejected = (reason: string, rows: number): void => {
    m.counter(`strata_insert_requests_rejected_total{reason="${labelValue(reason)}"}`, "Insert requests rejected, by reason.").inc();
    m.counter(`strata_insert_rows_rejected_total{reason="${labelValue(reason)}"}`, "Rows of rejected requests (decoded before the rejection), by reason.").add(rows);
  };
  // Rows batches of finished requests, reused (a batch is as large as its request body).
  const batchPool: RowsBatchWriter[] = [];
  const releaseBatch = (b: RowsBatchWriter): void => {
    if (b.capacity <= 8 * 1024 * 1024 && batchPool.length < 8) batchPool.push(b);
  };
  const decoder = new RemoteWriteDecoder(d.limits, d.labelsCacheBytes !== undefined ? { labelsCacheBytes: d.labelsCacheBytes } : {});
  const lc = decoder.labelsCache;
  if (lc !== undefined) {
    m.counter("strata_insert_labels_cache_hits_total", "Remote write series whose canonical name came from the raw-labels cache.", () => lc.hits);
    m.counter("strata_insert_labels_cache_misses_total", "Remote write series not in the raw-labels cache, whose labels were validated (and parsed, unless their records spell a canonical name).", () => lc.misses);
    m.counter(
      "strata_insert_labels_cache_predicted_hits_total",
      "Raw-labels cache hits found as the series that followed the previous one last time, without hashing (part of hits).",
      () => lc.predicted,
    );
    m.counter(
      "strata_insert_labels_cache_fingerprint_hits_total",
      "Raw-labels cache hits on label records that spell their canonical name, answered by a 63-bit fingerprint and the name rebuilt from the request (part of hits).",
      () => lc.fingerprintHits,
    );
    m.counter("strata_insert_labels_cache_resets_total", "Times the raw-labels cache was full and started over.", () => lc.resets);
    m.gauge("strata_insert_labels_cache_entries", "Series in the raw-labels cache.", () => lc.entries);
    m.gauge("strata_insert_labels_cache_bytes", "Memory held by the raw-labels cache (cap: -cacheSize.remoteWriteLabels).", () => lc.bytes);
  }
  const { relabel } = d;
  // Bodies are decompressed and decoded in one synchronous step (decodeBody), so one buffer
  // serves every request: no ~1.4 MB Buffer per 10k-sample body, fresh pages and all, left for
  // the GC (docs/benchmarks.md, "Insert: one snappy buffer").
  const snappy = new SnappyBlockDecoder();

  /** Decompresses and decodes a remote write body into `sink` (a request's batch or routed rows). */
  const decodeBody = (body: Uint8Array, version: Version, tenant: Tenant, sink: RowsSink): RemoteWriteResult => {
    if (snappyUncompressedLength(body) > d.maxRequestBytes) {
      throw new PayloadTooLargeError(`decompressed body of ${snappyUncompressedLength(body)} bytes exceeds -maxInsertRequestSize=${d.maxRequestBytes}`);
    }
    let raw: Uint8Array;
    try {
      raw = snappy.decode(body, d.maxRequestBytes);
    } catch (err) {
      throw new BadDataError(`cannot decompress snappy body: ${errorMessage(err).replace(/^cannot decompress snappy body: /, "")}`, "STRATA_PARSE_ERROR");
    }
    try {
      // Remote write 1.0 rows take about as many bytes as their protobuf: grow once.
      if (version === 1 && sink instanceof RowsBatchWriter) sink.reserve(raw.length + (raw.length >>> 3));
      const w = d.window();
      return version === 2 ? decoder.decodeV2(raw, tenant, sink, w) : decoder.decodeV1(raw, tenant, sink, w);
    } catch (err) {
      if (err instanceof BadDataError && err.code === "STRATA_PARSE_ERROR") {
        throw new BadDataError(`cannot parse remote write ${version}.0 protobuf: ${err.message.replace(/^cannot parse protobuf: /, "")}`, "STRATA_PARSE_ERROR");
      }
      throw err;
    }
  };

  const handleWrite = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const req = request.raw;
    const tenantText = rawTenant(request.url);
    // Read now: once the answer is sent and the connection closed, req.socket is gone.
    const remoteAddr = req.socket.remoteAddress;
    const t0 = process.hrtime.bigint();
    const batch = batchPool.pop() ?? new RowsBatchWriter(64 * 1024);
    batch.reset();
    let version: Version = 1;
    let acquired = false;
    let routed: RoutedRows | undefined;
    try {
      if (req.method !== "POST" && req.method !== "PUT") {
        req.resume();
        return await reply.code(405).header("allow", "POST").type("text/plain; charset=utf-8").send(`method ${req.method ?? ""} not allowed: remote write uses POST\n`);
      }
      const tenant = parseTenant(tenantText);
      version = remoteWriteVersion(req.headers["content-type"], req.headers["content-encoding"]);
      requests[version].inc();
      await d.limiter.acquire();
      acquired = true;
      // Without relabeling, rows are split per storage node as they are decoded (no second
      // pass over a whole-request batch); relabeling rewrites the batch first.
      if (relabel.relabeler === null) routed = d.cluster.routedRows();
      // The body and its decompressed form are locals of decodeBody only: held across the
      // awaits below they would outlive young-generation GCs and be promoted (1–2 MB per request).
      const r = decodeBody(await readBody(req, d.maxRequestBytes), version, tenant, routed ?? batch);
      if (routed !== undefined) {
        await d.cluster.writeRouted(routed);
      } else {
        const rows = relabel.rewriteBatch(batch.view(), "promremotewrite", d.limits);
        if (rows.length > 0) await d.cluster.write(rows);
      }
      if (r.metadata.length > 0) {
        metadataReceived.add(r.metadata.length);
        await d.cluster.writeMetadata(r.metadata.map((x) => ({ tenant, ...x })));
      }
      rowsReceived.add(r.samples);
      d.ignored("promremotewrite", r.tooOld, r.tooNew);
      histogramsDropped.add(r.histograms);
      exemplarsDropped.add(r.exemplars);
      duration.observeSince(t0);
      if (version === 2) {
        void reply.headers({
          "X-Prometheus-Remote-Write-Samples-Written": String(r.samples),
          "X-Prometheus-Remote-Write-Histograms-Written": "0",
          "X-Prometheus-Remote-Write-Exemplars-Written": "0",
        });
      }
      return await reply.code(204).send();
    } catch (err) {
      const status = httpStatusOf(err);
      const reason = reasonOf(err);
      rejected(reason, routed?.rows ?? batch.length);
      d.rejectedLog.warn(
        { err: errorMessage(err), tenant: tenantText, type: "promremotewrite", status, reason, remoteAddr },
        status >= 500 ? "insert request failed" : "insert request rejected",
      );
      if (version === 2) void reply.headers(V2_NONE);
      return sendError(err, request, reply, d.log);
    } finally {
      if (acquired) d.limiter.release();
      releaseBatch(batch);
      if (routed !== undefined) d.cluster.releaseRouted(routed);
    }
  };
  for (const p of ["/insert/:tenant/prometheus", "/insert/:tenant/prometheus/", "/insert/:tenant/prometheus/api/v1/write", "/insert/:tenant/prometheus/api/v1/write/"]) {
    scope.all(p, handleWrite);
  }
}
