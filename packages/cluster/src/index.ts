/**
 * @strata/cluster — storage-node clients for insert (sharding, replication, health,
 * rerouting, bounded buffers) and select (search fan-out).
 */
export { InsertCluster, RoutedRows, type InsertClusterOptions, type WriteOutcome, type MetadataItem } from "./insert.js";
export { StorageNodeClient, isNodeFailure, type StorageNodeOptions } from "./node.js";
export { nodeSeed, rankNodes, seriesHash, seriesHashRange, weight, type SeriesHash } from "./rendezvous.js";
export { SearchFanout, type SearchFanoutOptions, type FanoutResult, type NodeError, type BlockSink } from "./search.js";
