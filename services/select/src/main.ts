#!/usr/bin/env node
import { channelSecurity, ClusterSelectBackend, clusterTlsFromFlags, DecodePool, trimDecodeMemory } from "@strata/cluster";
import { displayFlags, runService } from "@strata/core";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { listenService } from "@strata/httpsvc";
import { createEngine, MemoryBudget } from "@strata/promql";
import { serveUi } from "@strata/ui";
import { buildApp } from "./app.js";
import { selectFlags } from "./flags.js";
import { IdleReclaimer } from "./reclaim.js";

await runService({
  name: "strata-select",
  summary: "answers the Prometheus HTTP API and serves the web UI over the storage cluster",
  flags: selectFlags,
  async start({ flags, log, metrics, onShutdown }) {
    const decoder = new DecodePool({ workers: flags["search.maxWorkersPerQuery"], minSamples: flags["search.workerMinSamples"] });
    onShutdown({ name: "decode workers", close: () => decoder.close() });
    metrics.counter("strata_select_rollup_jobs_total", "Rollup jobs (decode + range function over a run of series) run on worker threads.", () => decoder.rollupJobsRun);
    metrics.counter("strata_select_worker_restarts_total", "Decode workers that died (their queries failed) and were replaced.", () => decoder.restarts);
    metrics.counter("strata_select_worker_starts_total", "Decode workers started (on first use, and again after an idle one exited).", () => decoder.starts);
    metrics.gauge("strata_select_workers", "Decode workers running now (at most -search.maxWorkersPerQuery).", () => decoder.running);
    const tls = clusterTlsFromFlags(flags, log);
    if (tls) onShutdown({ name: "cluster TLS file watch", close: () => tls.close() });
    const backend = new ClusterSelectBackend({
      channel: channelSecurity(tls),
      decoder,
      nodes: flags.storageNode,
      replicationFactor: flags.replicationFactor,
      dedupIntervalMs: flags["dedup.minScrapeInterval"],
      skipSlowReplicas: flags["search.skipSlowReplicas"],
      metaCacheEntries: flags["search.maxMetaCacheEntries"],
      log,
      metrics,
    });
    onShutdown({ name: "storage node clients", close: () => backend.close() });
    const memoryBudget = new MemoryBudget(flags["search.maxMemoryTotal"]);
    metrics.gauge("strata_select_query_memory_reserved_bytes", "Memory reserved by running queries (estimates, grown while they run).", () => memoryBudget.used);
    const engine = createEngine({
      lookbackDelta: flags["search.lookbackDelta"],
      maxSeries: flags["search.maxSeries"],
      maxSamples: flags["search.maxSamplesPerQuery"],
      maxPointsPerSeries: flags["search.maxPointsPerTimeseries"],
      // No engine timeout: every query route aborts its signal at the deadline (-search.maxQueryDuration
      // or `timeout`), and a second timer per query (AbortSignal.timeout + AbortSignal.any) cost
      // more than the small queries' evaluation.
      maxPointsSubqueryPerSeries: flags["search.maxPointsSubqueryPerTimeseries"],
      maxMemoryPerQuery: flags["search.maxMemoryPerQuery"],
      memoryBudget,
    });
    let inFlight = () => 0;
    const reclaimer = new IdleReclaimer({
      idleMs: 2000,
      minBytes: 32 * 1024 * 1024,
      inFlight: () => inFlight(),
      trim: trimDecodeMemory,
      log,
    });
    onShutdown({ name: "idle memory reclaimer", close: async () => reclaimer.close() });
    metrics.counter("strata_select_idle_collections_total", "Full collections run after heavy queries, once select was idle.", () => reclaimer.runs);
    const security = httpSecurityFromFlags(flags, log, metrics);
    const app = buildApp({
      security,
      keys: { delete: readSecret("deleteAuthKey", flags.deleteAuthKey), flags: readSecret("flagsAuthKey", flags.flagsAuthKey) },
      onQueryEnd: () => reclaimer.queryEnded(),
      backend,
      engine,
      log,
      metrics,
      ui: serveUi,
      flags: displayFlags(selectFlags, flags),
      vmalertProxyURL: flags["vmalert.proxyURL"],
      config: {
        maxQueryDurationMs: flags["search.maxQueryDuration"],
        maxConcurrentRequests: flags["search.maxConcurrentRequests"],
        maxQueueDurationMs: flags["search.maxQueueDuration"],
        logSlowQueryDurationMs: flags["search.logSlowQueryDuration"],
        maxSeries: flags["search.maxSeries"],
        maxPointsPerTimeseries: flags["search.maxPointsPerTimeseries"],
        maxExportSeries: flags["search.maxExportSeries"],
        maxLabelsAPISeries: flags["search.maxSeriesPerAPICall"],
        maxTagKeys: flags["search.maxTagKeys"],
        maxTagValues: flags["search.maxTagValues"],
        adminAuthKey: flags.adminAuthKey,
        denyPartialResponse: flags["search.denyPartialResponse"],
        cacheTimestampOffsetMs: flags["search.cacheTimestampOffset"],
        disableCache: flags["search.disableCache"],
        latencyOffsetMs: flags["search.latencyOffset"],
        lookbackDeltaMs: flags["search.lookbackDelta"],
        maxRequestBodyBytes: flags.maxRequestBodySize,
      },
    });
    inFlight = app.select.inFlight;
    await listenService(app, flags.httpListenAddr);
    onShutdown({ name: "http server", close: () => app.close() });
    log.info({ addr: flags.httpListenAddr, tls: flags.tls, storageNodes: flags.storageNode }, "serving the Prometheus API at /select/<tenant>/prometheus and the UI at /select/<tenant>/vmui/");
  },
});
