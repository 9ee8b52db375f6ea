import { create, fromBinary } from "@bufbuild/protobuf";
import { RowsBatchReader, RowsBatchWriter, encodeMetricName } from "@strata/core";
import {
  addService,
  cluster,
  createInsertClient,
  createSearchClient,
  decodeWriteRows,
  encodeWriteRows,
  grpc,
  InsertServiceDefinition,
  SearchServiceDefinition,
} from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

describe("cluster RPC over grpc-js with protobuf-es messages", () => {
  const server = new grpc.Server();
  let port = 0;
  const received: number[] = [];

  beforeAll(async () => {
    addService(server, InsertServiceDefinition, {
      WriteRows_v1: (call, cb) => {
        const r = new RowsBatchReader(decodeWriteRows(call.request));
        let n = 0;
        while (r.next()) {
          received.push(r.value);
          n++;
        }
        cb(null, create(cluster.WriteRowsResponseSchema, { rowsWritten: n }));
      },
      WriteMetadata_v1: (call, cb) => cb(null, create(cluster.WriteMetadataResponseSchema, { written: call.request.metadata.length })),
      Ping_v1: (_call, cb) => cb(null, create(cluster.PingResponseSchema, { nodeId: "n1", ready: true })),
    });
    addService(server, SearchServiceDefinition, {
      Search_v1: (call) => {
        for (let i = 0; i < 3; i++) {
          call.write(create(cluster.SearchResponseSchema, { blocks: [{ metricName: new Uint8Array([i]), rowsCount: i, minTimestampMs: BigInt(i) }] }));
        }
        call.end();
      },
      SearchStream_v1: (call) => call.end(),
      SearchMetricNames_v1: (_c, cb) => cb(null, create(cluster.SearchMetricNamesResponseSchema, { metricNames: [new Uint8Array([1, 2])] })),
      LabelNames_v1: (_c, cb) => cb(null, create(cluster.LabelNamesResponseSchema, { names: ["__name__", "job"] })),
      LabelValues_v1: (c, cb) => cb(null, create(cluster.LabelValuesResponseSchema, { values: [c.request.labelName] })),
      SeriesCount_v1: (_c, cb) => cb(null, create(cluster.SeriesCountResponseSchema, { count: 42n })),
      TsdbStatus_v1: (_c, cb) => cb(null, create(cluster.TsdbStatusResponseSchema, { totalSeries: 1n })),
      DeleteSeries_v1: (_c, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: "no" }),
      Metadata_v1: (_c, cb) => cb(null, create(cluster.MetadataResponseSchema, {})),
      Ping_v1: (_call, cb) => cb(null, create(cluster.PingResponseSchema, { nodeId: "n1", ready: true })),
      WatchIndex_v1: (call) => {
        call.write(create(cluster.WatchIndexResponseSchema, { changes: 7n }));
        call.end();
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
  });
  afterAll(() => server.forceShutdown());

  it("WriteRows_v1 carries an lz4 rows batch", async () => {
    const w = new RowsBatchWriter();
    const name = encodeMetricName({ tenant: { accountID: 0, projectID: 0 }, labels: [{ name: "__name__", value: "up" }] });
    for (let i = 0; i < 1000; i++) w.add(name, i, i * 1.5);
    const c = createInsertClient(`127.0.0.1:${port}`);
    const res = await c.unary("WriteRows_v1", encodeWriteRows(w.view(), w.length));
    expect(res.rowsWritten).toBe(1000);
    expect(received[999]).toBe(999 * 1.5);
    expect((await c.unary("Ping_v1", create(cluster.PingRequestSchema))).nodeId).toBe("n1");
    c.close();
  });

  it("a request encoded once (RpcClient.encode) arrives as the message itself, on every call", async () => {
    const echo = new grpc.Server();
    // Only Search_v1 (the others answer UNIMPLEMENTED); it answers the request it decoded.
    echo.addService(SearchServiceDefinition as unknown as grpc.ServiceDefinition, {
      Search_v1: (call: grpc.ServerWritableStream<cluster.SearchRequest, cluster.SearchResponse>) => {
        const m = call.request.query?.matcherGroups[0]?.matchers[0];
        call.write(create(cluster.SearchResponseSchema, { blocks: [{ metricName: new TextEncoder().encode(`${m?.name}=${m?.value} ${call.request.trace}`), rowsCount: call.request.query?.tenant?.accountId ?? -1 }] }));
        call.end();
      },
    });
    const p = await new Promise<number>((resolve, reject) => echo.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, v) => (e ? reject(e) : resolve(v))));
    try {
      const c = createSearchClient(`127.0.0.1:${p}`);
      const req = create(cluster.SearchRequestSchema, {
        query: { tenant: { accountId: 7 }, matcherGroups: [{ matchers: [{ name: "__name__", value: "node_load1" }] }] },
        trace: true,
      });
      const answers = async (r: Parameters<typeof c.rawStream<"Search_v1">>[1]): Promise<string[]> => {
        const out: string[] = [];
        for await (const f of c.rawStream("Search_v1", r)) {
          const b = fromBinary(cluster.SearchResponseSchema, f as Uint8Array).blocks[0]!;
          out.push(`${new TextDecoder().decode(b.metricName)} ${b.rowsCount}`);
        }
        return out;
      };
      const encoded = c.encode("Search_v1", req);
      expect(await answers(req)).toEqual(["__name__=node_load1 true 7"]);
      expect(await answers(encoded)).toEqual(["__name__=node_load1 true 7"]);
      expect(await answers(encoded)).toEqual(["__name__=node_load1 true 7"]);
      c.close();
    } finally {
      echo.forceShutdown();
    }
  });

  it("search-side RPCs: streaming, unary, errors", async () => {
    const c = createSearchClient(`127.0.0.1:${port}`);
    const frames: number[] = [];
    for await (const f of c.stream("Search_v1", create(cluster.SearchRequestSchema, {}))) {
      frames.push((f as cluster.SearchResponse).blocks[0]!.rowsCount);
    }
    expect(frames).toEqual([0, 1, 2]);
    expect((await c.unary("SeriesCount_v1", create(cluster.SeriesCountRequestSchema, {}))).count).toBe(42n);
    expect((await c.unary("LabelValues_v1", create(cluster.LabelValuesRequestSchema, { labelName: "job" }))).values).toEqual(["job"]);
    await expect(c.unary("DeleteSeries_v1", create(cluster.DeleteSeriesRequestSchema, {}))).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    const changes: bigint[] = [];
    for await (const m of c.stream("WatchIndex_v1", create(cluster.WatchIndexRequestSchema, {}))) changes.push((m as cluster.WatchIndexResponse).changes);
    expect(changes).toEqual([7n]);
    c.close();
  });

  it("rejects a corrupt lz4 payload with BadDataError", () => {
    const req = create(cluster.WriteRowsRequestSchema, { rows: new Uint8Array([9, 0, 0, 0, 0xff]), compression: cluster.Compression.LZ4, uncompressedSize: 9 });
    expect(() => decodeWriteRows(req)).toThrow(/lz4|decompress/);
  });
});
