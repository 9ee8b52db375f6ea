import type { IncomingMessage, ServerResponse } from "node:http";
import {
  BadDataError,
  checkRawPath,
  errorMessage,
  httpStatusOf,
  labelValue,
  parseTenant,
  PayloadTooLargeError,
  readBody,
  RowsBatchWriter,
  StrataError,
  TooManyRequestsError,
  UnsupportedMediaTypeError,
  type HttpHandler,
  type LabelLimits,
  type Logger,
  type MetricsRegistry,
  type RowsSink,
  type Tenant,
} from "@strata/core";
import type { InsertCluster, RoutedRows } from "@strata/cluster";
import { RemoteWriteDecoder, snappyDecode, snappyUncompressedLength, type RemoteWriteResult } from "@strata/protocol";
import { DEFAULT_IMPORT_SETTINGS, buildImportHandler, matchImportRoute, type ImportSettings } from "./import.js";
import { RelabelHook } from "./relabel-hook.js";
import { retentionWindow, rowsIgnoredCounter } from "./ignored.js";

export { insertFlags } from "./flags.js";

export interface InsertAppDeps {
  readonly cluster: InsertCluster;
  readonly limits: LabelLimits;
  readonly maxRequestBytes: number;
  readonly maxConcurrentInserts: number;
  readonly maxQueueMs: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** -relabelConfig, applied to every series of every protocol (none when absent). */
  readonly relabel?: RelabelHook;
  /** Settings of the import endpoints (import.ts); defaults when absent. */
  readonly imports?: Partial<ImportSettings>;
  /** -cacheSize.remoteWriteLabels (default 64 MiB, 0 disables). */
  readonly labelsCacheBytes?: number;
  /** -retentionPeriod (absent or 0: the storage nodes' own, told by Ping_v1): older samples are ignored and counted. */
  readonly retentionMs?: number;
  /** -futureRetention (absent or 0: the storage nodes' own): samples further ahead are ignored and counted. */
  readonly futureRetentionMs?: number;
}


const ROUTE = /^\/insert\/([^/]+)\/prometheus(?:\/api\/v1\/write)?\/?$/;

/** A counting semaphore whose waiters give up after a deadline. */
class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  get inUse(): number {
    return this.active;
  }
  get waiting(): number {
    return this.queue.length;
  }
  async acquire(timeoutMs: number): Promise<void> {
    if (this.active < this.max) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const go = (): void => {
        clearTimeout(t);
        this.active++;
        resolve();
      };
      const t = setTimeout(() => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        reject(
          new TooManyRequestsError(
            `cannot process the request within -insert.maxQueueDuration=${timeoutMs}ms: -maxConcurrentInserts=${this.max} requests are in progress`,
          ),
        );
      }, timeoutMs);
      this.queue.push(go);
    });
  }
  release(): void {
    this.active--;
    this.queue.shift()?.();
  }
}

type Version = 1 | 2;

/**
 * Which remote write version a request carries, from Content-Type (remote write 2.0 spec:
 * `application/x-protobuf;proto=io.prometheus.write.v2.Request`; a bare
 * `application/x-protobuf` or `proto=prometheus.WriteRequest` is 1.0; no Content-Type is
 * taken as 1.0 for curl users). Anything else is 415.
 */
export function remoteWriteVersion(contentType: string | undefined, contentEncoding: string | undefined): Version {
  if (contentEncoding !== undefined && contentEncoding.trim() !== "" && contentEncoding.trim().toLowerCase() !== "snappy") {
    throw new UnsupportedMediaTypeError(`unsupported Content-Encoding ${JSON.stringify(contentEncoding)}: remote write bodies must be snappy`);
  }
  if (contentType === undefined || contentType.trim() === "") return 1;
  const [media, ...params] = contentType.split(";").map((s) => s.trim());
  if (media?.toLowerCase() !== "application/x-protobuf") {
    throw new UnsupportedMediaTypeError(
      `unsupported Content-Type ${JSON.stringify(contentType)}: want application/x-protobuf (remote write 1.0) or application/x-protobuf;proto=io.prometheus.write.v2.Request`,
    );
  }
  for (const p of params) {
    const [k, v] = p.split("=").map((s) => s.trim());
    if (k?.toLowerCase() !== "proto") continue;
    if (v === "io.prometheus.write.v2.Request") return 2;
    if (v === "prometheus.WriteRequest") return 1;
    throw new UnsupportedMediaTypeError(`unsupported remote write message ${JSON.stringify(v)} in Content-Type`);
  }
  return 1;
}

function reasonOf(err: unknown): string {
  return err instanceof StrataError ? err.code.replace(/^STRATA_/, "").toLowerCase() : "internal";
}

/** Builds the insert HTTP handler over a cluster client. */
export function buildApp(d: InsertAppDeps): HttpHandler {
  const m = d.metrics;
  const limiter = new Limiter(d.maxConcurrentInserts);
  const requests = {
    1: m.counter('strata_insert_requests_total{protocol="promremotewrite",version="1"}', "Insert requests received."),
    2: m.counter('strata_insert_requests_total{protocol="promremotewrite",version="2"}'),
  };
  const rowsReceived = m.counter("strata_insert_rows_received_total", "Float samples accepted (acknowledged by storage).");
  const histogramsDropped = m.counter("strata_insert_histograms_dropped_total", "Native histogram samples received and not stored.");
  const exemplarsDropped = m.counter("strata_insert_exemplars_dropped_total", "Exemplars received and not stored.");
  const metadataReceived = m.counter("strata_insert_metadata_received_total", "Metric metadata entries received and forwarded to storage.");
  const duration = m.histogram("strata_insert_request_duration_seconds", "Duration of successful insert requests.");
  m.gauge("strata_insert_concurrent_requests", "Insert requests being processed.", () => limiter.inUse);
  m.gauge("strata_insert_queued_requests", "Insert requests waiting for a -maxConcurrentInserts slot.", () => limiter.waiting);
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
    m.counter("strata_insert_labels_cache_misses_total", "Remote write series parsed and validated in full (not in the raw-labels cache).", () => lc.misses);
    m.counter(
      "strata_insert_labels_cache_predicted_hits_total",
      "Raw-labels cache hits found as the series that followed the previous one last time, without hashing (part of hits).",
      () => lc.predicted,
    );
    m.counter("strata_insert_labels_cache_resets_total", "Times the raw-labels cache was full and started over.", () => lc.resets);
    m.gauge("strata_insert_labels_cache_entries", "Series in the raw-labels cache.", () => lc.entries);
    m.gauge("strata_insert_labels_cache_bytes", "Memory held by the raw-labels cache (cap: -cacheSize.remoteWriteLabels).", () => lc.bytes);
  }
  const relabel = d.relabel ?? new RelabelHook("", d.log, m);
  const window = retentionWindow(d.cluster, d.retentionMs ?? 0, d.futureRetentionMs ?? 0);
  const ignored = rowsIgnoredCounter(m);
  const handleImport = buildImportHandler({
    ...DEFAULT_IMPORT_SETTINGS,
    ...d.imports,
    cluster: d.cluster,
    limits: d.limits,
    relabel,
    log: d.log,
    metrics: m,
    maxConcurrent: d.maxConcurrentInserts,
    maxQueueMs: d.maxQueueMs,
    window,
    ignored,
  });

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  /** Decompresses and decodes a remote write body into `sink` (a request's batch or routed rows). */
  const decodeBody = (body: Uint8Array, version: Version, tenant: Tenant, sink: RowsSink): RemoteWriteResult => {
    if (snappyUncompressedLength(body) > d.maxRequestBytes) {
      throw new PayloadTooLargeError(`decompressed body of ${snappyUncompressedLength(body)} bytes exceeds -maxInsertRequestSize=${d.maxRequestBytes}`);
    }
    let raw: Uint8Array;
    try {
      raw = snappyDecode(body, d.maxRequestBytes);
    } catch (err) {
      throw new BadDataError(`cannot decompress snappy body: ${errorMessage(err).replace(/^cannot decompress snappy body: /, "")}`, "STRATA_PARSE_ERROR");
    }
    try {
      // Remote write 1.0 rows take about as many bytes as their protobuf: grow once.
      if (version === 1 && sink instanceof RowsBatchWriter) sink.reserve(raw.length + (raw.length >>> 3));
      const w = window();
      return version === 2 ? decoder.decodeV2(raw, tenant, sink, w) : decoder.decodeV1(raw, tenant, sink, w);
    } catch (err) {
      if (err instanceof BadDataError && err.code === "STRATA_PARSE_ERROR") {
        throw new BadDataError(`cannot parse remote write ${version}.0 protobuf: ${err.message.replace(/^cannot parse protobuf: /, "")}`, "STRATA_PARSE_ERROR");
      }
      throw err;
    }
  };

  const handleWrite = async (req: IncomingMessage, res: ServerResponse, tenantText: string): Promise<void> => {
    const t0 = process.hrtime.bigint();
    const batch = batchPool.pop() ?? new RowsBatchWriter(64 * 1024);
    batch.reset();
    let version: Version = 1;
    let acquired = false;
    let routed: RoutedRows | undefined;
    try {
      if (req.method !== "POST" && req.method !== "PUT") {
        res.setHeader("allow", "POST");
        send(res, 405, `method ${req.method ?? ""} not allowed: remote write uses POST\n`);
        req.resume();
        return;
      }
      const tenant = parseTenant(tenantText);
      version = remoteWriteVersion(req.headers["content-type"], req.headers["content-encoding"]);
      requests[version].inc();
      await limiter.acquire(d.maxQueueMs);
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
      ignored("promremotewrite", r.tooOld, r.tooNew);
      histogramsDropped.add(r.histograms);
      exemplarsDropped.add(r.exemplars);
      duration.observeSince(t0);
      const headers: Record<string, string> =
        version === 2
          ? {
              "X-Prometheus-Remote-Write-Samples-Written": String(r.samples),
              "X-Prometheus-Remote-Write-Histograms-Written": "0",
              "X-Prometheus-Remote-Write-Exemplars-Written": "0",
            }
          : {};
      res.writeHead(204, headers);
      res.end();
    } catch (err) {
      const status = httpStatusOf(err);
      rejected(reasonOf(err), routed?.rows ?? batch.length);
      if (status >= 500) d.log.warn({ err: errorMessage(err), tenant: tenantText }, "insert request failed");
      else d.log.debug({ err: errorMessage(err), tenant: tenantText, status }, "insert request rejected");
      const headers: Record<string, string> = {};
      if (status === 429 || status === 503) headers["retry-after"] = "1";
      if (version === 2) {
        headers["X-Prometheus-Remote-Write-Samples-Written"] = "0";
        headers["X-Prometheus-Remote-Write-Histograms-Written"] = "0";
        headers["X-Prometheus-Remote-Write-Exemplars-Written"] = "0";
      }
      if (!req.complete) {
        // The body was not read to the end (413, 429 before reading): close the connection
        // rather than leave a half-read request on a keep-alive socket.
        headers["connection"] = "close";
        req.resume();
      }
      send(res, status, `${errorMessage(err)}\n`, headers);
    } finally {
      if (acquired) limiter.release();
      releaseBatch(batch);
      if (routed !== undefined) d.cluster.releaseRouted(routed);
    }
  };

  return async (req, res) => {
    try {
      // Before the URL parser folds `/insert/2/../1/…` into tenant 1's path.
      checkRawPath(req.url ?? "/");
    } catch (err) {
      req.resume();
      send(res, httpStatusOf(err), `${errorMessage(err)}\n`);
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const imp = matchImportRoute(url.pathname);
    if (imp) return handleImport(req, res, imp, url);
    const m2 = ROUTE.exec(url.pathname);
    if (m2) return handleWrite(req, res, m2[1]!);
    const inf = INFLUX_HELPER.exec(url.pathname);
    if (inf) return influxHelper(req, res, inf[1]!, url, send);
    switch (url.pathname) {
      case "/metrics":
        send(res, 200, m.render(), { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        return;
      case "/health":
        send(res, 200, "OK");
        return;
      case "/-/ready":
        if (d.cluster.healthyCount() > 0) send(res, 200, "OK");
        else send(res, 503, "no healthy storage node\n");
        return;
      default:
        send(res, 404, `unsupported path ${JSON.stringify(url.pathname)}\n`);
    }
  };
}

/**
 * What InfluxDB clients call besides writing (Telegraf pings, then runs CREATE DATABASE), under
 * `/insert/<tenant>/influx/`, answered as vminsert does: `ping` 204, `health` pass, and `query`
 * an empty successful result (SHOW DATABASES lists none; Strata keeps `db` as a label).
 */
const INFLUX_HELPER = /^\/insert\/[^/]+\/influx\/(ping|health|query)\/?$/;

function influxHelper(
  req: IncomingMessage,
  res: ServerResponse,
  what: string,
  url: URL,
  send: (res: ServerResponse, status: number, body: string, headers: Record<string, string>) => void,
): void {
  req.resume();
  const version = { "X-Influxdb-Version": "1.8.10", "X-Influxdb-Build": "Strata" };
  if (what === "ping") {
    send(res, 204, "", version);
    return;
  }
  const json = { "content-type": "application/json", ...version };
  if (what === "health") {
    send(res, 200, `${JSON.stringify({ name: "influxdb", message: "ready for queries and writes", status: "pass", checks: [], version: "1.8.10" })}\n`, json);
    return;
  }
  const q = url.searchParams.get("q") ?? "";
  const result = /^\s*show\s+databases\b/i.test(q)
    ? { statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [] }] }
    : { statement_id: 0 };
  send(res, 200, `${JSON.stringify({ results: [result] })}\n`, json);
}
