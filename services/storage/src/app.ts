import { createHash } from "node:crypto";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { assertNever, fullGc, GcAfterFreed, type Logger, type MetricsRegistry } from "@strata/core";
import { IndexWatchers, insertHandlers, SearchStreamCalls, searchHandlers } from "@strata/cluster";
import { addService, grpc, InsertServiceDefinition, SearchServiceDefinition } from "@strata/protocol";
import { Storage, type StorageEvent, type StorageOptions } from "@strata/storage";
import type { HttpSecurity } from "@strata/httpsec";
import type { FlagsPage } from "@strata/httpsvc";
import { buildHttpApp, type StorageAuthKeys } from "./http.js";
import { MetadataStore } from "./metadata.js";

export { storageFlags } from "./flags.js";
export { MetadataStore } from "./metadata.js";
export { buildHttpApp, renderStorageMetrics, type HttpDeps, type StorageAuthKeys } from "./http.js";

export interface StorageAppOptions {
  readonly dataPath: string;
  readonly storage: StorageOptions;
  readonly dedupIntervalMs: number;
  readonly maxMetadataEntries?: number;
  /** -memory.gcAfterFreedBytes: a full GC after disk flushes dropped this many bytes of in-memory parts (0 or unset: never). */
  readonly gcAfterFreedBytes?: number;
  /** Protection of the HTTP endpoints (-httpAuth.*, -metricsAuthKey, per-endpoint keys). */
  readonly security?: HttpSecurity;
  readonly keys?: StorageAuthKeys;
  /** /flags and -flagsAuthKey. */
  readonly flagsPage?: FlagsPage;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
}

export interface StorageApp {
  readonly storage: Storage;
  readonly metadata: MetadataStore;
  /** WatchIndex_v1 streams; closed before the search server shuts down. */
  readonly watch: IndexWatchers;
  /** Open SearchStream_v1 streams (ended at shutdown, as the watch streams are). */
  readonly searchStreams: SearchStreamCalls;
  /** The HTTP API (not yet listening). */
  readonly http: FastifyInstance;
  readonly insertServer: grpc.Server;
  readonly searchServer: grpc.Server;
  readonly nodeId: string;
  /** Stops answering Ping_v1 as ready and rejects new writes (first shutdown step). */
  setReady(ready: boolean): void;
}

/** Opens the storage engine and builds the HTTP app and both gRPC servers (not yet bound). */
export async function buildApp(o: StorageAppOptions): Promise<StorageApp> {
  const gcBytes = o.gcAfterFreedBytes ?? 0;
  const gcAfterFreed = new GcAfterFreed(gcBytes, gcBytes > 0 ? fullGc() : undefined);
  o.metrics.counter("strata_storage_gc_after_freed_total", "Full GCs run after disk flushes dropped -memory.gcAfterFreedBytes of in-memory parts.", () => gcAfterFreed.runs);
  const storage = await Storage.open(o.dataPath, {
    ...o.storage,
    onBuffersFreed: (bytes) => gcAfterFreed.freed(bytes),
    onBackgroundError: (err) => o.log.error({ err: err instanceof Error ? err.message : String(err) }, "background flush/merge failed"),
    onEvent: (e) => logStorageEvent(o.log, o.dataPath, e),
  });
  const metadata = new MetadataStore(join(o.dataPath, "metadata"), o.maxMetadataEntries);
  const nodeId = createHash("sha256").update(o.dataPath).digest("hex").slice(0, 16);
  let ready = true;
  const watch = new IndexWatchers();
  storage.onIndexChange(() => watch.changed());
  const searchStreams = new SearchStreamCalls();
  const deps = {
    storage,
    metadata,
    watch,
    searchStreams,
    dedupIntervalMs: o.dedupIntervalMs,
    nodeId,
    isReady: () => ready,
    log: o.log,
    metrics: o.metrics,
  };
  o.metrics.gauge("strata_storage_metadata_entries", "Metric-metadata entries held.", () => metadata.entries);
  o.metrics.gauge("strata_storage_ready", "1 while the node is up and not shutting down (see strata_storage_is_read_only for low disk space).", () => (ready ? 1 : 0));
  const serverOpts = {
    "grpc.max_receive_message_length": 256 * 1024 * 1024,
    "grpc.max_send_message_length": 256 * 1024 * 1024,
    // Channelz bookkeeping (call counters, socket refs) costs on every call and nothing reads it.
    "grpc.enable_channelz": 0,
  };
  const insertServer = new grpc.Server(serverOpts);
  addService(insertServer, InsertServiceDefinition, insertHandlers(deps));
  const searchServer = new grpc.Server(serverOpts);
  addService(searchServer, SearchServiceDefinition, searchHandlers(deps));
  const http = buildHttpApp({
    storage,
    metrics: o.metrics,
    isReady: () => ready,
    log: o.log,
    ...(o.security ? { security: o.security } : {}),
    ...(o.keys ? { keys: o.keys } : {}),
    ...(o.flagsPage ? { flagsPage: o.flagsPage } : {}),
  });
  return { storage, metadata, watch, searchStreams, http, insertServer, searchServer, nodeId, setReady: (r) => (ready = r) };
}

/** Logs what the engine reports to the operator (read-only mode, WAL records skipped at replay). */
function logStorageEvent(log: Logger, dataPath: string, e: StorageEvent): void {
  switch (e.kind) {
    case "read_only":
      if (e.readOnly) {
        log.warn(
          { dataPath, freeBytes: e.freeBytes, minFreeDiskSpaceBytes: e.minFreeBytes, reason: e.reason },
          "switching to read-only mode: writes are refused (insert reroutes them) until -storage.minFreeDiskSpaceBytes of space is free",
        );
      } else {
        log.info({ dataPath, freeBytes: e.freeBytes, minFreeDiskSpaceBytes: e.minFreeBytes }, "leaving read-only mode: enough free disk space again");
      }
      return;
    case "wal_damaged":
      log.warn({ file: e.file, offset: e.offset, bytes: e.bytes }, "WAL replay: skipped a damaged record; the whole records after it were recovered");
      return;
    case "wal_torn":
      log.info({ file: e.file, offset: e.offset }, "WAL replay: segment ends in an incomplete record (an interrupted write, never acknowledged); ignored");
      return;
    default:
      assertNever(e, "storage event");
  }
}

/**
 * Binds a grpc server to a `[host]:port` flag value (`:8400` listens on every address); plain
 * unless given ClusterTls.serverCredentials() (mTLS: a client certificate signed by the CA).
 */
export function bindGrpc(server: grpc.Server, addr: string, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  const target = addr.startsWith(":") ? `0.0.0.0${addr}` : addr;
  return new Promise((resolve, reject) => server.bindAsync(target, credentials, (err, port) => (err ? reject(err) : resolve(port))));
}

/** Stops a grpc server: no new calls; in-flight calls finish (forced after `timeoutMs`). */
export function shutdownGrpc(server: grpc.Server, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
