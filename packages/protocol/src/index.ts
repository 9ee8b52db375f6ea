/**
 * @strata/protocol — wire contracts between Strata services and with Prometheus clients:
 * generated protobuf-es messages (remote write 1.0/2.0, remote read, cluster RPC), grpc-js
 * service definitions and typed clients, and hand-written hot-path remote write decoders.
 */
export * as prompb from "./gen/prometheus/types_pb.js";
export * as prompbRemote from "./gen/prometheus/remote_pb.js";
export * as writev2 from "./gen/io/prometheus/write/v2/types_pb.js";
export * as cluster from "./gen/strata/cluster/v1/cluster_pb.js";
export * from "./rpc.js";
export { GRPC_PREFIX_BYTES, PreFramedMessage, preFramedSends, sendPreFramedWithoutCopy } from "./rpc-framed.js";
export * from "./rpc-tls.js";
export * from "./compression.js";
export * from "./remotewrite.js";
export { LabelCanonicalizer, isUtf8Range } from "./canonical.js";
export { RawLabelsCache } from "./labels-cache.js";
export { WireCursor } from "./wire.js";
export { SearchFrameReader, SearchFrameWriter } from "./search-frames.js";

/** Content types of remote write requests. */
export const REMOTE_WRITE_V1_CONTENT_TYPE = "application/x-protobuf";
export const REMOTE_WRITE_V2_PROTO = "io.prometheus.write.v2.Request";
export const REMOTE_WRITE_V1_PROTO = "prometheus.WriteRequest";
