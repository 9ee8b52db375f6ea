import { create } from "@bufbuild/protobuf";
import { addService, cluster, createSearchClient, grpc, preFramedSends, SearchFrameReader, SearchFrameWriter, SearchServiceDefinition, type SearchServiceHandlers } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const FRAMES = 40;
/** Bytes of one frame's payload: above glibc's mmap threshold, like storage's 1 MiB frames. */
const PAYLOAD = 300_000;

/** Frame i's payload: bytes that differ from frame to frame, so a frame sent from reused memory too early shows. */
function payload(i: number): Uint8Array {
  const b = new Uint8Array(PAYLOAD);
  for (let j = 0; j < b.length; j++) b[j] = (i * 131 + j * 7) & 0xff;
  return b;
}

const unused = (_c: unknown, cb: grpc.sendUnaryData<never>): void => cb({ code: grpc.status.UNIMPLEMENTED, details: "unused" });

describe("pre-framed Search_v1 frames (PreFramedMessage)", () => {
  const server = new grpc.Server();
  let port = 0;

  beforeAll(async () => {
    const handlers: SearchServiceHandlers = {
      // One writer, reused for every frame once the HTTP/2 stream has taken the previous one.
      Search_v1: (call) => {
        const w = new SearchFrameWriter(PAYLOAD + 64, true);
        let i = 0;
        const next = (): void => {
          if (i === FRAMES) return void call.end();
          w.reset();
          const p = payload(i);
          w.buf.set(p, w.appendBlock(new Uint8Array([i]), cluster.BlockEncoding.STORAGE_V1, i + 1, i, i + 1, p.length));
          i++;
          call.write(w.message(), next);
        };
        next();
      },
      SearchStream_v1: (call) => call.end(),
      SearchMetricNames_v1: unused,
      LabelNames_v1: unused,
      LabelValues_v1: unused,
      SeriesCount_v1: unused,
      TsdbStatus_v1: unused,
      DeleteSeries_v1: unused,
      Metadata_v1: unused,
      Ping_v1: unused,
      WatchIndex_v1: (call) => call.end(),
    };
    addService(server, SearchServiceDefinition, handlers);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
  });
  afterAll(() => server.forceShutdown());

  it.each([
    ["raw frames (SearchFrameReader)", true],
    ["generated messages (protobuf-es)", false],
  ])("grpc-js sends them from the writer's memory, intact: %s", async (_name, raw) => {
    const c = createSearchClient(`127.0.0.1:${port}`);
    try {
      const before = preFramedSends();
      const got: { name: number; rows: number; data: Uint8Array }[] = [];
      if (raw) {
        for await (const f of c.rawStream("Search_v1", create(cluster.SearchRequestSchema, {}))) {
          const r = new SearchFrameReader(f as Buffer);
          while (r.next()) got.push({ name: r.metricName[0]!, rows: r.rowsCount, data: Uint8Array.from(r.data) });
        }
      } else {
        for await (const f of c.stream("Search_v1", create(cluster.SearchRequestSchema, {}))) {
          for (const b of (f as cluster.SearchResponse).blocks) got.push({ name: b.metricName[0]!, rows: b.rowsCount, data: b.data });
        }
      }
      expect(got.map((g) => [g.name, g.rows])).toEqual(Array.from({ length: FRAMES }, (_, i) => [i, i + 1]));
      for (let i = 0; i < FRAMES; i++) expect(Buffer.compare(got[i]!.data, payload(i))).toBe(0);
      // Every frame went out without grpc-js' copy.
      expect(preFramedSends() - before).toBe(FRAMES);
    } finally {
      c.close();
    }
  });
});
