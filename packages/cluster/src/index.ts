/**
 * @strata/cluster — both halves of the storage RPC: the storage node's gRPC handlers, and the
 * storage-node clients for insert (sharding, replication, health, rerouting, bounded buffers) and
 * select (search fan-out, merge of series across nodes and replicas, block decoding on worker
 * threads).
 */
export { InsertCluster, RoutedRows, type InsertClusterOptions, type WriteOutcome, type MetadataItem } from "./insert.js";
export { StorageNodeClient, isNodeFailure, type StorageNodeOptions } from "./node.js";
export { nodeSeed, rankNodes, seriesHash, seriesHashRange, weight, type SeriesHash } from "./rendezvous.js";
export { ClusterSelectBackend, type ClusterBackendOptions } from "./select-backend.js";
export { IndexWatchers, insertHandlers, SearchStreamCalls, searchHandlers, type MetadataRecord, type MetadataStore, type StorageServerDeps } from "./storage-server.js";
export { fromGrpcError, toGrpcError } from "./grpc-errors.js";
export { DecodePool, type DecodePoolOptions } from "./decode-pool.js";
export { trimDecodeMemory } from "./decode.js";
// The mTLS flags and credentials of the links to storage, for insert and select.
export { channelSecurity, clusterTlsFlags, clusterTlsFromFlags, type ChannelSecurity, type ClusterTls } from "@strata/protocol";
export type {
  Answer,
  MetricMetadata,
  NameValue,
  RawSeries,
  SearchOptions,
  SelectBackend,
  SelectQuerier,
  TsdbStatus,
  TsdbStatusRequest,
} from "./select-types.js";
