import { create } from "@bufbuild/protobuf";
import { ExecutionError, UnavailableError } from "@strata/core";
import { SearchFanout } from "@strata/cluster";
import { addService, cluster, grpc, SearchServiceDefinition, type SearchServiceHandlers } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

function handlers(names: string[], blocks: number): SearchServiceHandlers {
  const unimpl = (_c: unknown, cb: (e: Partial<grpc.StatusObject>) => void): void => cb({ code: grpc.status.UNIMPLEMENTED });
  return {
    Search_v1: (call) => {
      for (let i = 0; i < blocks; i++) call.write(create(cluster.SearchResponseSchema, { blocks: [{ rowsCount: i + 1 }] }));
      call.end();
    },
    LabelNames_v1: (_c, cb) => cb(null, create(cluster.LabelNamesResponseSchema, { names })),
    LabelValues_v1: unimpl,
    SeriesCount_v1: unimpl,
    TsdbStatus_v1: unimpl,
    DeleteSeries_v1: unimpl,
    Metadata_v1: unimpl,
    Ping_v1: (_c, cb) => cb(null, create(cluster.PingResponseSchema, { ready: true })),
  };
}

const servers: grpc.Server[] = [];
const addrs: string[] = [];
let dead = "";

beforeAll(async () => {
  for (const [names, blocks] of [[["a", "job"], 2], [["b", "job"], 3]] as const) {
    const s = new grpc.Server();
    addService(s, SearchServiceDefinition, handlers([...names], blocks));
    const port = await new Promise<number>((res, rej) =>
      s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    servers.push(s);
    addrs.push(`127.0.0.1:${port}`);
  }
  // A port nobody listens on.
  const s = new grpc.Server();
  const port = await new Promise<number>((res, rej) => s.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  s.forceShutdown();
  dead = `127.0.0.1:${port}`;
});
afterAll(() => {
  for (const s of servers) s.forceShutdown();
});

const req = () => create(cluster.LabelNamesRequestSchema, {});
const deadline = () => Date.now() + 3000;

describe("SearchFanout", () => {
  it.each([
    // [nodes, RF, deny, isPartial | error]
    ["all up", () => addrs, 1, false, false],
    ["one down, RF=2: still complete", () => [...addrs, dead], 2, false, false],
    ["one down, RF=1: partial", () => [...addrs, dead], 1, false, true],
    ["one down, RF=1, denyPartialResponse: error", () => [...addrs, dead], 1, true, ExecutionError],
    ["all down: unavailable", () => [dead], 1, false, UnavailableError],
  ] as const)("%s", async (_name, nodes, rf, deny, want) => {
    const f = new SearchFanout({ nodes: nodes(), replicationFactor: rf, denyPartialResponse: deny });
    try {
      if (typeof want === "boolean") {
        const r = await f.unary("LabelNames_v1", req(), { deadline: deadline() });
        expect(r.isPartial).toBe(want);
        expect(r.results.map((x) => x.value.names)).toEqual([
          ["a", "job"],
          ["b", "job"],
        ]);
      } else {
        await expect(f.unary("LabelNames_v1", req(), { deadline: deadline() })).rejects.toBeInstanceOf(want);
      }
    } finally {
      f.close();
    }
  });

  it("streams Search_v1 blocks of every node into the sink", async () => {
    const f = new SearchFanout({ nodes: addrs, replicationFactor: 1 });
    const got: [number, number][] = [];
    const r = await f.search(create(cluster.SearchRequestSchema, {}), (node, b) => got.push([node, b.rowsCount]), { deadline: deadline() });
    f.close();
    expect(r.isPartial).toBe(false);
    expect(r.results.map((x) => x.value)).toEqual([2, 3]);
    expect(got.sort()).toEqual([[0, 1], [0, 2], [1, 1], [1, 2], [1, 3]]);
  });
});
