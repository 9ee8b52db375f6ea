#!/usr/bin/env node
import { closeHttp, listenHttp, runService } from "@strata/core";
import { bindGrpc, buildApp, shutdownGrpc } from "./app.js";
import { storageFlags } from "./flags.js";

await runService({
  name: "strata-storage",
  summary: "Strata storage node: stores rows from insert (gRPC -vminsertAddr) and serves select (gRPC -vmselectAddr).",
  flags: storageFlags,
  async start({ flags, log, metrics, onShutdown }) {
    const app = await buildApp({
      dataPath: flags.storageDataPath,
      storage: {
        retentionMs: flags.retentionPeriod,
        futureRetentionMs: flags.futureRetention,
        dedupIntervalMs: flags["dedup.minScrapeInterval"],
        walFsyncIntervalMs: flags.walFsyncInterval,
        maxRowsBuffer: flags["storage.maxRowsBuffer"],
        maxInmemoryPartsBytes: flags["storage.maxInmemoryPartsSize"],
        minFreeDiskSpaceBytes: flags["storage.minFreeDiskSpaceBytes"],
        seriesCacheBytes: flags["storage.cacheSizeStorageTSID"],
        indexBlockCacheBytes: flags["storage.cacheSizeIndexDBDataBlocks"],
        maxSeriesPerSearch: flags["search.maxUniqueTimeseries"],
      },
      dedupIntervalMs: flags["dedup.minScrapeInterval"],
      maxMetadataEntries: flags["metadata.maxEntries"],
      log,
      metrics,
    });
    // Registered first, closed last: flush rows and metadata to disk once nothing writes.
    onShutdown({ name: "storage (flush + close)", close: () => app.storage.close() });
    onShutdown({ name: "metadata", close: () => app.metadata.close() });
    const insertPort = await bindGrpc(app.insertServer, flags.vminsertAddr);
    onShutdown({ name: "insert gRPC server", close: () => shutdownGrpc(app.insertServer) });
    const searchPort = await bindGrpc(app.searchServer, flags.vmselectAddr);
    onShutdown({ name: "search gRPC server", close: () => shutdownGrpc(app.searchServer) });
    const http = await listenHttp(flags.httpListenAddr, app.http, log);
    onShutdown({ name: "HTTP server", close: () => closeHttp(http) });
    // Closed first: stop reporting ready and refuse new writes so insert reroutes at once.
    onShutdown({ name: "stop accepting writes", close: () => app.setReady(false) });
    const addr = http.address();
    log.info(
      { dataPath: flags.storageDataPath, insertPort, searchPort, httpPort: typeof addr === "object" && addr ? addr.port : undefined, nodeId: app.nodeId },
      "listening",
    );
  },
});
