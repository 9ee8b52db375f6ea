#!/usr/bin/env node
import { displayFlags, parseListenAddr, registerCacheMetrics, runService, type Logger } from "@strata/core";
import { httpSecurityFromFlags, readSecret } from "@strata/httpsec";
import { listenService, listeningPort } from "@strata/httpsvc";
import { clusterTlsFromFlags } from "@strata/protocol";
import { bindGrpc, buildApp, shutdownGrpc } from "./app.js";
import { storageFlags } from "./flags.js";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Storage's HTTP port can snapshot, force merges and flushes: say so when anyone may reach it unguarded. */
function warnIfExposed(log: Logger, addr: string, guarded: boolean, keys: { snapshot: string; forceMerge: string; forceFlush: string }): void {
  const { host } = parseListenAddr(addr);
  if (host !== undefined && LOOPBACK.test(host)) return;
  const open = Object.entries({ snapshotAuthKey: keys.snapshot, forceMergeAuthKey: keys.forceMerge, forceFlushAuthKey: keys.forceFlush })
    .filter(([, v]) => v === "")
    .map(([k]) => `-${k}`);
  if (guarded || open.length === 0) return;
  log.warn(
    { httpListenAddr: addr, unset: open },
    "storage listens on a non-loopback address and its /snapshot/* and /internal/* endpoints take no key: anyone who reaches the port can snapshot or force merges; set the keys (or -httpAuth.*) or listen on 127.0.0.1",
  );
}

await runService({
  name: "strata-storage",
  summary: "Strata storage node: stores rows from insert (gRPC -vminsertAddr) and serves select (gRPC -vmselectAddr).",
  flags: storageFlags,
  async start({ flags, log, metrics, allowedMemory, onShutdown }) {
    const security = httpSecurityFromFlags(flags, log, metrics);
    const keys = {
      snapshot: readSecret("snapshotAuthKey", flags.snapshotAuthKey),
      forceMerge: readSecret("forceMergeAuthKey", flags.forceMergeAuthKey),
      forceFlush: readSecret("forceFlushAuthKey", flags.forceFlushAuthKey),
    };
    warnIfExposed(log, flags.httpListenAddr, flags["httpAuth.username"] !== "", keys);
    const tls = clusterTlsFromFlags(flags, log);
    if (tls) onShutdown({ name: "cluster TLS file watch", close: () => tls.close() });
    const app = await buildApp({
      security,
      keys,
      flagsPage: { shown: displayFlags(storageFlags, flags), authKey: readSecret("flagsAuthKey", flags.flagsAuthKey) },
      dataPath: flags.storageDataPath,
      storage: {
        allowedMemoryBytes: allowedMemory,
        retentionMs: flags.retentionPeriod,
        futureRetentionMs: flags.futureRetention,
        dedupIntervalMs: flags["dedup.minScrapeInterval"],
        walFsyncIntervalMs: flags.walFsyncInterval,
        maxRowsBuffer: flags["storage.maxRowsBuffer"],
        maxInmemoryPartsBytes: flags["storage.maxInmemoryPartsSize"],
        diskFlushIntervalMs: flags.inmemoryDataFlushInterval,
        minFreeDiskSpaceBytes: flags["storage.minFreeDiskSpaceBytes"],
        seriesCacheBytes: flags["storage.cacheSizeStorageTSID"],
        indexBlockCacheBytes: flags["storage.cacheSizeIndexDBDataBlocks"],
        maxSeriesPerSearch: flags["search.maxUniqueTimeseries"],
        indexOptions: { maxInmemoryPartsBytes: flags["storage.maxIndexInmemoryPartsSize"] },
      },
      dedupIntervalMs: flags["dedup.minScrapeInterval"],
      maxMetadataEntries: flags["metadata.maxEntries"],
      gcAfterFreedBytes: flags["memory.gcAfterFreedBytes"],
      log,
      metrics,
    });
    registerCacheMetrics(metrics, app.storage.caches());
    // Registered first, closed last: flush rows and metadata to disk once nothing writes.
    onShutdown({ name: "storage (flush + close)", close: () => app.storage.close() });
    onShutdown({ name: "metadata", close: () => app.metadata.close() });
    const insertPort = await bindGrpc(app.insertServer, flags.vminsertAddr, tls?.serverCredentials());
    onShutdown({ name: "insert gRPC server", close: () => shutdownGrpc(app.insertServer) });
    const searchPort = await bindGrpc(app.searchServer, flags.vmselectAddr, tls?.serverCredentials());
    onShutdown({
      name: "search gRPC server",
      close: () => {
        // Long-lived WatchIndex_v1 and SearchStream_v1 streams would hold tryShutdown.
        app.watch.close();
        app.searchStreams.close();
        return shutdownGrpc(app.searchServer);
      },
    });
    await listenService(app.http, flags.httpListenAddr);
    onShutdown({ name: "HTTP server", close: () => app.http.close() });
    // Closed first: stop reporting ready and refuse new writes so insert reroutes at once.
    onShutdown({ name: "stop accepting writes", close: () => app.setReady(false) });
    log.info(
      { dataPath: flags.storageDataPath, insertPort, searchPort, httpPort: listeningPort(app.http), nodeId: app.nodeId, httpTls: flags.tls, clusterTls: tls !== undefined },
      "listening",
    );
  },
});
