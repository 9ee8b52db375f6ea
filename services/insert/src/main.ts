#!/usr/bin/env node
import { BadDataError, closeHttp, listenHttp, runService } from "@strata/core";
import { InsertCluster } from "@strata/cluster";
import { buildApp } from "./app.js";
import { insertFlags } from "./flags.js";

await runService({
  name: "strata-insert",
  summary: "Strata insert node: accepts Prometheus remote write and stores it on the -storageNode list.",
  flags: insertFlags,
  async start({ flags, log, metrics, onShutdown }) {
    if (flags.storageNode.length === 0) throw new BadDataError("set -storageNode to the storage nodes' insert addresses", "STRATA_INVALID_FLAG");
    const cluster = new InsertCluster({
      nodes: flags.storageNode,
      replicationFactor: flags.replicationFactor,
      disableRerouting: flags.disableRerouting,
      maxBufferBytesPerNode: flags["storageNode.maxBufferSize"],
      writeTimeoutMs: flags["storageNode.writeTimeout"],
      logger: log,
      metrics,
    });
    onShutdown({ name: "storage node clients", close: () => cluster.close() });
    const handler = buildApp({
      cluster,
      limits: {
        maxLabels: flags.maxLabelsPerTimeseries,
        maxLabelNameLen: flags.maxLabelNameLen,
        maxLabelValueLen: flags.maxLabelValueLen,
      },
      maxRequestBytes: flags.maxInsertRequestSize,
      maxConcurrentInserts: flags.maxConcurrentInserts,
      maxQueueMs: flags["insert.maxQueueDuration"],
      log,
      metrics,
    });
    const http = await listenHttp(flags.httpListenAddr, handler, log);
    // In-flight requests finish (and are acknowledged by storage) before the clients close.
    onShutdown({ name: "HTTP server", close: () => closeHttp(http) });
    const addr = http.address();
    log.info(
      { httpPort: typeof addr === "object" && addr ? addr.port : undefined, storageNodes: flags.storageNode, replicationFactor: flags.replicationFactor },
      "listening",
    );
  },
});
