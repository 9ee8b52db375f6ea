#!/usr/bin/env node
import { BadDataError, cacheCap, displayFlags, runService } from "@strata/core";
import { channelSecurity, clusterTlsFromFlags, InsertCluster } from "@strata/cluster";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { listenService, listeningPort } from "@strata/httpsvc";
import { buildApp } from "./app.js";
import { insertFlags } from "./flags.js";
import { startGraphiteServer } from "./graphite.js";
import { retentionWindow, rowsIgnoredCounter } from "./ignored.js";
import { RelabelHook } from "./relabel-hook.js";

await runService({
  name: "strata-insert",
  summary:
    "Strata insert node: accepts Prometheus remote write, imports (JSON lines, Prometheus text/OpenMetrics, CSV, InfluxDB line protocol, OpenTSDB) and Graphite plaintext, and stores them on the -storageNode list.",
  flags: insertFlags,
  async start({ flags, log, metrics, allowedMemory, onShutdown }) {
    if (flags.storageNode.length === 0) throw new BadDataError("set -storageNode to the storage nodes' insert addresses", "STRATA_INVALID_FLAG");
    const tls = clusterTlsFromFlags(flags, log);
    if (tls) onShutdown({ name: "cluster TLS file watch", close: () => tls.close() });
    const cluster = new InsertCluster({
      nodes: flags.storageNode,
      channel: channelSecurity(tls),
      replicationFactor: flags.replicationFactor,
      disableRerouting: flags.disableRerouting,
      maxBufferBytesPerNode: flags["storageNode.maxBufferSize"],
      writeTimeoutMs: flags["storageNode.writeTimeout"],
      logger: log,
      metrics,
    });
    onShutdown({ name: "storage node clients", close: () => cluster.close() });
    const limits = {
      maxLabels: flags.maxLabelsPerTimeseries,
      maxLabelNameLen: flags.maxLabelNameLen,
      maxLabelValueLen: flags.maxLabelValueLen,
    };
    const relabel = await RelabelHook.open(flags.relabelConfig, log, metrics);
    onShutdown({ name: "SIGHUP relabel reload", close: relabel.onSighup() });
    const security = httpSecurityFromFlags(flags, log, metrics);
    const app = buildApp({
      security,
      flagsPage: { shown: displayFlags(insertFlags, flags), authKey: readSecret("flagsAuthKey", flags.flagsAuthKey) },
      cluster,
      limits,
      relabel,
      imports: {
        maxRequestBytes: flags["import.maxRequestSize"],
        maxLineBytes: flags["import.maxLineLen"],
        maxOpenTsdbBytes: flags["opentsdbhttp.maxInsertRequestSize"],
        memoryBufferBytes: flags["import.memoryBufferSize"],
        ...(flags["import.tmpDataPath"] !== "" ? { tmpDir: flags["import.tmpDataPath"] } : {}),
      },
      maxRequestBytes: flags.maxInsertRequestSize,
      labelsCacheBytes: cacheCap(flags["cacheSize.remoteWriteLabels"], allowedMemory, 0.25),
      retentionMs: flags.retentionPeriod,
      futureRetentionMs: flags.futureRetention,
      maxConcurrentInserts: flags.maxConcurrentInserts,
      maxQueueMs: flags["insert.maxQueueDuration"],
      log,
      metrics,
    });
    await listenService(app, flags.httpListenAddr);
    // In-flight requests finish (and are acknowledged by storage) before the clients close.
    onShutdown({ name: "HTTP server", close: () => app.close() });
    if (flags.graphiteListenAddr !== "") {
      const graphite = await startGraphiteServer({
        addr: flags.graphiteListenAddr,
        tenant: flags["graphite.tenant"],
        cluster,
        limits,
        relabel,
        maxLineBytes: flags["import.maxLineLen"],
        log,
        metrics,
        window: retentionWindow(cluster, flags.retentionPeriod, flags.futureRetention),
        ignored: rowsIgnoredCounter(metrics),
      });
      onShutdown({ name: "Graphite listener", close: () => graphite.close() });
    }
    log.info(
      { httpPort: listeningPort(app), httpTls: flags.tls, storageNodes: flags.storageNode, replicationFactor: flags.replicationFactor },
      "listening",
    );
  },
});
