import type { FastifyInstance } from "fastify";
import { checkRawPath, parseTenant, RateLimitedLog, type LabelLimits, type Logger, type MetricsRegistry } from "@strata/core";
import type { InsertCluster } from "@strata/cluster";
import type { HttpSecurity } from "@strata/httpsec";
import { createServiceApp, passRawBody, type FlagsPage } from "@strata/httpsvc";
import { DEFAULT_IMPORT_SETTINGS, importRoutes, type ImportSettings } from "./import.js";
import { influxHelperRoutes } from "./influx.js";
import { ConcurrencyLimiter } from "./limiter.js";
import { RelabelHook } from "./relabel-hook.js";
import { rawTenant, remoteWriteRoutes } from "./remote-write.js";
import { retentionWindow, rowsIgnoredCounter } from "./ignored.js";

export { insertFlags } from "./flags.js";
export { remoteWriteVersion } from "@strata/protocol";

export interface InsertAppDeps {
  readonly cluster: InsertCluster;
  readonly limits: LabelLimits;
  readonly maxRequestBytes: number;
  readonly maxConcurrentInserts: number;
  readonly maxQueueMs: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** -tls*, -httpAuth.*, -metricsAuthKey; without it the port is plain HTTP and open. */
  readonly security?: HttpSecurity;
  /** /flags and -flagsAuthKey. */
  readonly flagsPage?: FlagsPage;
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

/**
 * insert's HTTP app: remote write, the imports and InfluxDB's helper calls under
 * `/insert/<tenant>/`, plus httpsvc's probes and /metrics. Every ingestion route shares one
 * -maxConcurrentInserts limiter and reads its body itself once it holds a slot.
 */
export function buildApp(d: InsertAppDeps): FastifyInstance {
  const m = d.metrics;
  const app = createServiceApp({
    log: d.log,
    metrics: m,
    ...(d.security ? { security: d.security } : {}),
    ...(d.flagsPage ? { flagsPage: d.flagsPage } : {}),
    notReady: () => (d.cluster.healthyCount() > 0 ? undefined : "no healthy storage node"),
    bodyLimit: d.maxRequestBytes,
    bodyLimitFlag: "maxInsertRequestSize",
    // A path the router cannot decode: name the tenant when that is what is wrong.
    onBadUrl: (url) => {
      if (url.startsWith("/insert/")) parseTenant(rawTenant(url));
    },
  });
  // Before anything reads the tenant: `/insert/2/../1/…` must not reach tenant 1's routes.
  app.addHook("onRequest", async (req) => {
    if (req.url.startsWith("/insert/")) checkRawPath(req.url);
  });

  const limiter = new ConcurrencyLimiter(d.maxConcurrentInserts, d.maxQueueMs);
  m.gauge("strata_insert_concurrent_requests", "Ingestion requests (remote write and imports) being processed.", () => limiter.inUse);
  m.gauge("strata_insert_queued_requests", "Ingestion requests waiting for a -maxConcurrentInserts slot.", () => limiter.waiting);
  const relabel = d.relabel ?? new RelabelHook("", d.log, m);
  const window = retentionWindow(d.cluster, d.retentionMs ?? 0, d.futureRetentionMs ?? 0);
  const ignored = rowsIgnoredCounter(m);
  // Every rejected request is counted; at most 10 log lines a second say which (with tenant,
  // client address and reason), the rest are counted in the next line's `suppressed`.
  const rejectedLog = new RateLimitedLog(d.log, 10, 1000);

  void app.register(async (scope) => {
    passRawBody(scope);
    remoteWriteRoutes(scope, {
      cluster: d.cluster,
      limits: d.limits,
      maxRequestBytes: d.maxRequestBytes,
      limiter,
      relabel,
      log: d.log,
      rejectedLog,
      metrics: m,
      ...(d.labelsCacheBytes !== undefined ? { labelsCacheBytes: d.labelsCacheBytes } : {}),
      window,
      ignored,
    });
    importRoutes(scope, {
      rejectedLog,
      ...DEFAULT_IMPORT_SETTINGS,
      ...d.imports,
      cluster: d.cluster,
      limits: d.limits,
      relabel,
      log: d.log,
      metrics: m,
      limiter,
      window,
      ignored,
    });
  });
  influxHelperRoutes(app);
  return app;
}
