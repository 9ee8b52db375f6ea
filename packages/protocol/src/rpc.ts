import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  DeleteSeriesRequestSchema,
  DeleteSeriesResponseSchema,
  LabelNamesRequestSchema,
  LabelNamesResponseSchema,
  LabelValuesRequestSchema,
  LabelValuesResponseSchema,
  MetadataRequestSchema,
  MetadataResponseSchema,
  PingRequestSchema,
  PingResponseSchema,
  SearchMetricNamesRequestSchema,
  SearchMetricNamesResponseSchema,
  SearchRequestSchema,
  SearchResponseSchema,
  SeriesCountRequestSchema,
  SeriesCountResponseSchema,
  TsdbStatusRequestSchema,
  TsdbStatusResponseSchema,
  WatchIndexRequestSchema,
  WatchIndexResponseSchema,
  WriteMetadataRequestSchema,
  WriteMetadataResponseSchema,
  WriteRowsRequestSchema,
  WriteRowsResponseSchema,
} from "./gen/strata/cluster/v1/cluster_pb.js";
import { PreFramedMessage, sendPreFramedWithoutCopy } from "./rpc-framed.js";

/**
 * Hand-written grpc-js service definitions for the cluster RPC (proto/strata/cluster/v1).
 * Messages are protobuf-es v2 messages serialized with toBinary/fromBinary, so no
 * grpc-specific code generator is needed. Method paths are `/<package>.<Service>/<Method>`
 * exactly as protoc-generated stubs in other languages would use.
 */

const PACKAGE = "strata.cluster.v1";

interface Method<I extends DescMessage, O extends DescMessage, S extends boolean = boolean, R extends boolean = boolean>
  extends grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  readonly input: I;
  readonly output: O;
  readonly responseStream: S;
  readonly requestStream: R;
}

function method<I extends DescMessage, O extends DescMessage, S extends boolean = false, R extends boolean = false>(
  service: string,
  name: string,
  input: I,
  output: O,
  responseStream: S = false as S,
  requestStream: R = false as R,
): Method<I, O, S, R> {
  return {
    path: `/${PACKAGE}.${service}/${name}`,
    originalName: name,
    requestStream,
    responseStream,
    input,
    output,
    // Buffer views of toBinary's output, not copies (a WriteRows_v1 payload is ~100s of KB).
    requestSerialize: (m: MessageShape<I>) => asBuffer(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    // Streamed responses may come pre-encoded (SearchFrameWriter): sent as they are (a
    // PreFramedMessage reaches this only when grpc-js is not sending it itself, rpc-framed.ts).
    responseSerialize: (m: MessageShape<O> | Uint8Array | PreFramedMessage) =>
      m instanceof PreFramedMessage ? m.body : asBuffer(m instanceof Uint8Array ? m : toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

/** A request serialized once by RpcClient.encode for method K. */
export interface EncodedRequest<K extends string = string> {
  readonly method: K;
  readonly bytes: Buffer;
}

function isEncoded(r: unknown): r is EncodedRequest {
  return typeof r === "object" && r !== null && (r as { bytes?: unknown }).bytes instanceof Buffer && typeof (r as { method?: unknown }).method === "string" && !("$typeName" in r);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

export const InsertServiceDefinition = {
  WriteRows_v1: method("InsertService", "WriteRows_v1", WriteRowsRequestSchema, WriteRowsResponseSchema),
  WriteMetadata_v1: method("InsertService", "WriteMetadata_v1", WriteMetadataRequestSchema, WriteMetadataResponseSchema),
  Ping_v1: method("InsertService", "Ping_v1", PingRequestSchema, PingResponseSchema),
} as const;

export const SearchServiceDefinition = {
  Search_v1: method("SearchService", "Search_v1", SearchRequestSchema, SearchResponseSchema, true),
  SearchStream_v1: method("SearchService", "SearchStream_v1", SearchRequestSchema, SearchResponseSchema, true, true),
  SearchMetricNames_v1: method("SearchService", "SearchMetricNames_v1", SearchMetricNamesRequestSchema, SearchMetricNamesResponseSchema),
  LabelNames_v1: method("SearchService", "LabelNames_v1", LabelNamesRequestSchema, LabelNamesResponseSchema),
  LabelValues_v1: method("SearchService", "LabelValues_v1", LabelValuesRequestSchema, LabelValuesResponseSchema),
  SeriesCount_v1: method("SearchService", "SeriesCount_v1", SeriesCountRequestSchema, SeriesCountResponseSchema),
  TsdbStatus_v1: method("SearchService", "TsdbStatus_v1", TsdbStatusRequestSchema, TsdbStatusResponseSchema),
  DeleteSeries_v1: method("SearchService", "DeleteSeries_v1", DeleteSeriesRequestSchema, DeleteSeriesResponseSchema),
  Metadata_v1: method("SearchService", "Metadata_v1", MetadataRequestSchema, MetadataResponseSchema),
  Ping_v1: method("SearchService", "Ping_v1", PingRequestSchema, PingResponseSchema),
  WatchIndex_v1: method("SearchService", "WatchIndex_v1", WatchIndexRequestSchema, WatchIndexResponseSchema, true),
} as const;

type Definitions = Readonly<Record<string, Method<DescMessage, DescMessage, boolean, boolean>>>;

type In<M> = M extends Method<infer I, DescMessage, boolean, boolean> ? MessageShape<I> : never;
type Out<M> = M extends Method<DescMessage, infer O, boolean, boolean> ? MessageShape<O> : never;
/** Request message type of method K of service definition D. */
export type RpcRequest<D extends Definitions, K extends keyof D> = In<D[K]>;
/** Response message type of method K of service definition D. */
export type RpcResponse<D extends Definitions, K extends keyof D> = Out<D[K]>;

/**
 * Server-side handlers of a service: unary methods get handleUnaryCall, streaming ones
 * handleServerStreamingCall (handleBidiStreamingCall when requests stream too), which may also
 * write a response already encoded as bytes, or encoded behind room for gRPC's prefix
 * (PreFramedMessage: sent without a copy).
 */
export type ServiceHandlers<D extends Definitions> = {
  [K in keyof D]: D[K]["responseStream"] extends true
    ? D[K]["requestStream"] extends true
      ? grpc.handleBidiStreamingCall<In<D[K]>, Out<D[K]> | Uint8Array | PreFramedMessage>
      : grpc.handleServerStreamingCall<In<D[K]>, Out<D[K]> | Uint8Array | PreFramedMessage>
    : grpc.handleUnaryCall<In<D[K]>, Out<D[K]>>;
};

export type InsertServiceHandlers = ServiceHandlers<typeof InsertServiceDefinition>;
export type SearchServiceHandlers = ServiceHandlers<typeof SearchServiceDefinition>;

/** Registers handlers of a service definition on a grpc-js server (PreFramedMessages are sent without a copy). */
export function addService<D extends Definitions>(server: grpc.Server, def: D, handlers: ServiceHandlers<D>): void {
  sendPreFramedWithoutCopy();
  server.addService(def as unknown as grpc.ServiceDefinition, handlers as unknown as grpc.UntypedServiceImplementation);
}

export interface CallOptions {
  /** Absolute deadline (ms since the epoch) or a Date. */
  readonly deadline?: number | Date;
  readonly signal?: AbortSignal;
}

function callOptions(o: CallOptions | undefined): grpc.CallOptions {
  const out: grpc.CallOptions = {};
  if (o?.deadline !== undefined) out.deadline = o.deadline;
  return out;
}

/**
 * A typed promise client over one grpc-js channel. `unary` resolves with the response or
 * rejects with the grpc ServiceError; `stream` returns the grpc readable stream (an async
 * iterable of responses).
 */
export class RpcClient<D extends Definitions> {
  readonly client: grpc.Client;

  constructor(
    readonly def: D,
    address: string,
    options: grpc.ChannelOptions = {},
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    this.client = new grpc.Client(address, credentials, {
      "grpc.max_receive_message_length": 256 * 1024 * 1024,
      "grpc.max_send_message_length": 256 * 1024 * 1024,
      "grpc.keepalive_time_ms": 10_000,
      "grpc.keepalive_timeout_ms": 5_000,
      // Reconnect within about 2 s of a peer coming back (a restarted storage node): grpc-js'
      // defaults back off to 120 s, and a channel in backoff fails every call at once.
      "grpc.initial_reconnect_backoff_ms": 200,
      "grpc.max_reconnect_backoff_ms": 2000,
      // Per-call costs nobody uses: channelz bookkeeping, and retry buffering (no retry policy
      // is configured, and callers decide themselves what a failed node means).
      "grpc.enable_channelz": 0,
      "grpc.enable_retries": 0,
      ...options,
    });
  }

  unary<K extends keyof D & string>(name: K, req: In<D[K]>, opts?: CallOptions): Promise<Out<D[K]>> {
    const m = this.def[name]!;
    return new Promise((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        m.path,
        m.requestSerialize as (v: In<D[K]>) => Buffer,
        m.responseDeserialize as (b: Buffer) => Out<D[K]>,
        req,
        new grpc.Metadata(),
        callOptions(opts),
        (err, res) => {
          if (opts?.signal) opts.signal.removeEventListener("abort", onAbort);
          if (err) reject(err);
          else resolve(res as Out<D[K]>);
        },
      );
      const onAbort = (): void => call.cancel();
      if (opts?.signal) {
        if (opts.signal.aborted) call.cancel();
        else opts.signal.addEventListener("abort", onAbort, { once: true });
      }
    });
  }

  stream<K extends keyof D & string>(name: K, req: In<D[K]>, opts?: CallOptions): grpc.ClientReadableStream<Out<D[K]>> {
    return this.openStream(name, req, this.def[name]!.responseDeserialize as (b: Buffer) => Out<D[K]>, opts);
  }

  /**
   * Like `stream`, but yields each response's bytes undecoded (a Buffer per message), for
   * callers that parse them themselves (SearchFrameReader).
   */
  rawStream<K extends keyof D & string>(name: K, req: In<D[K]> | EncodedRequest<K>, opts?: CallOptions): grpc.ClientReadableStream<Buffer> {
    return this.openStream(name, req, (b: Buffer) => b, opts);
  }

  /**
   * A bidirectional stream of method `name` whose requests are sent as given (EncodedRequest
   * bytes) and whose responses come undecoded (a Buffer per message). No deadline: a long-lived
   * stream outlives any one request (the caller cancels it).
   */
  rawDuplex<K extends keyof D & string>(name: K): grpc.ClientDuplexStream<Buffer, Buffer> {
    const id = (b: Buffer): Buffer => b;
    return this.client.makeBidiStreamRequest(this.def[name]!.path, id, id, new grpc.Metadata(), {});
  }

  /**
   * `req` serialized for method `name`, to send the same request to several nodes (`rawStream`)
   * without serializing it for each: protobuf-es' reflective toBinary of a search request cost
   * more per call than grpc-js' own call setup.
   */
  encode<K extends keyof D & string>(name: K, req: In<D[K]>): EncodedRequest<K> {
    return { method: name, bytes: asBuffer(toBinary(this.def[name]!.input, req)) };
  }

  private openStream<K extends keyof D & string, T>(name: K, req: In<D[K]> | EncodedRequest<K>, deserialize: (b: Buffer) => T, opts?: CallOptions): grpc.ClientReadableStream<T> {
    const m = this.def[name]!;
    const serialize = m.requestSerialize as (v: In<D[K]>) => Buffer;
    const call = isEncoded(req)
      ? this.client.makeServerStreamRequest(m.path, (b: Buffer) => b, deserialize, req.bytes, new grpc.Metadata(), callOptions(opts))
      : this.client.makeServerStreamRequest(m.path, serialize, deserialize, req, new grpc.Metadata(), callOptions(opts));
    if (opts?.signal) {
      if (opts.signal.aborted) call.cancel();
      else opts.signal.addEventListener("abort", () => call.cancel(), { once: true });
    }
    return call;
  }

  /** The channel's connectivity state; `tryToConnect` kicks an idle channel. */
  state(tryToConnect = false): grpc.connectivityState {
    return this.client.getChannel().getConnectivityState(tryToConnect);
  }

  close(): void {
    this.client.close();
  }
}

export type InsertClient = RpcClient<typeof InsertServiceDefinition>;
export type SearchClient = RpcClient<typeof SearchServiceDefinition>;

/** `credentials`: plain by default; ClusterTls.channelCredentials() for mTLS (with its channelOptions()). */
export function createInsertClient(address: string, options?: grpc.ChannelOptions, credentials?: grpc.ChannelCredentials): InsertClient {
  return new RpcClient(InsertServiceDefinition, address, options, credentials);
}

export function createSearchClient(address: string, options?: grpc.ChannelOptions, credentials?: grpc.ChannelCredentials): SearchClient {
  return new RpcClient(SearchServiceDefinition, address, options, credentials);
}

export { grpc };
