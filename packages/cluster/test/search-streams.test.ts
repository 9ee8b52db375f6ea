import { afterEach, expect, it } from "vitest";
import { createLogger, ExecutionError, MetricsRegistry, newMatcher } from "@strata/core";
import { fromBinary } from "@bufbuild/protobuf";
import { addService, cluster, grpc, PreFramedMessage, SearchFrameReader, SearchFrameWriter, SearchServiceDefinition, type SearchServiceHandlers } from "@strata/protocol";
import { ClusterSelectBackend } from "../src/select-backend.js";

/**
 * Select's searches go over long-lived SearchStream_v1 streams (SearchStreams): one stream for
 * many searches, a failed search's status in its `end` without losing the stream, a stopped
 * search cancelling its stream, and Search_v1 calls for a node that has no SearchStream_v1.
 * A grpc-js server with hand-written handlers stands where a storage node would be; every
 * search answers nothing, or the status the test asks for.
 */

const log = createLogger({ name: "test", level: "silent" });
const tenant = { accountID: 0, projectID: 0 };

interface FakeNode {
  readonly addr: string;
  /** Search_v1 calls, SearchStream_v1 streams, searches on them, streams cancelled. */
  readonly counts: { calls: number; streams: number; streamed: number; cancelled: number };
  /** What a search answers: undefined = OK with no series; "hang" = nothing until cancelled. */
  answer: { code: number; details: string } | "hang" | undefined;
  stop(): Promise<void>;
}

const nodes: FakeNode[] = [];
const backends: ClusterSelectBackend[] = [];

afterEach(async () => {
  for (const b of backends.splice(0)) await b.close();
  for (const n of nodes.splice(0)) await n.stop();
});

/** The frame ending a search on a stream. */
function endFrame(code: number, details: string): PreFramedMessage {
  const w = new SearchFrameWriter(1024, true);
  w.appendEnd(code, details, "");
  return w.message();
}

async function startNode(withStreams: boolean): Promise<FakeNode> {
  const server = new grpc.Server();
  const node: FakeNode = {
    addr: "",
    counts: { calls: 0, streams: 0, streamed: 0, cancelled: 0 },
    answer: undefined,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
  const unimplemented = (_call: unknown, cb: (err: Partial<grpc.StatusObject>) => void): void => cb({ code: grpc.status.UNIMPLEMENTED, details: "not in this fake" });
  const streams: Pick<SearchServiceHandlers, "SearchStream_v1"> = {
    SearchStream_v1: (call) => {
      node.counts.streams++;
      call.on("cancelled", () => node.counts.cancelled++);
      call.on("error", () => undefined);
      call.on("data", () => {
        node.counts.streamed++;
        const a = node.answer;
        if (a === "hang") return;
        call.write(endFrame(a?.code ?? 0, a?.details ?? ""));
      });
      call.on("end", () => call.end());
    },
  };
  const handlers = {
    Search_v1: (call: grpc.ServerWritableStream<cluster.SearchRequest, cluster.SearchResponse>) => {
      node.counts.calls++;
      const a = node.answer;
      if (a === "hang") return;
      if (a === undefined) call.end();
      else call.emit("error", Object.assign(new Error(a.details), a));
    },
    Ping_v1: unimplemented,
    ...(withStreams ? streams : {}),
  };
  // A definition without SearchStream_v1 when the node has none (grpc-js answers UNIMPLEMENTED).
  const { SearchStream_v1: _stream, ...older } = SearchServiceDefinition;
  if (withStreams) addService(server, SearchServiceDefinition, handlers as unknown as SearchServiceHandlers);
  else addService(server, older, handlers as unknown as Omit<SearchServiceHandlers, "SearchStream_v1">);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  Object.assign(node, { addr: `127.0.0.1:${port}` });
  nodes.push(node);
  return node;
}

function backendOf(n: FakeNode): ClusterSelectBackend {
  const b = new ClusterSelectBackend({ nodes: [n.addr], replicationFactor: 1, dedupIntervalMs: 0, skipSlowReplicas: true, log, metrics: new MetricsRegistry(), metaCacheEntries: 0 });
  backends.push(b);
  return b;
}

function select(b: ClusterSelectBackend, signal?: AbortSignal): Promise<unknown> {
  const q = b.querier(tenant, { deadline: Date.now() + 10_000, denyPartialResponse: false, maxSeries: 1000, ...(signal ? { signal } : {}) });
  return q.select([newMatcher("=", "__name__", "up")], 0, 1000, { start: 0, end: 1000, step: 0, range: 0, func: "" });
}

it("sends many searches over one long-lived stream, one after another", async () => {
  const n = await startNode(true);
  const b = backendOf(n);
  for (let i = 0; i < 5; i++) await select(b);
  expect(n.counts).toEqual({ calls: 0, streams: 1, streamed: 5, cancelled: 0 });
  // Searches at the same time take a stream each; they go back to the pool afterwards.
  await Promise.all([select(b), select(b), select(b)]);
  expect(n.counts.streams).toBe(3);
  for (let i = 0; i < 4; i++) await Promise.all([select(b), select(b)]);
  expect(n.counts.streams).toBe(3);
  expect(n.counts.calls).toBe(0);
});

it("fails a search with the status its end carries, and keeps the stream", async () => {
  const n = await startNode(true);
  const b = backendOf(n);
  n.answer = { code: grpc.status.RESOURCE_EXHAUSTED, details: "STRATA_LIMIT_EXCEEDED: too many series" };
  const err = await select(b).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ExecutionError);
  expect((err as ExecutionError).code).toBe("STRATA_LIMIT_EXCEEDED");
  n.answer = undefined;
  await select(b);
  expect(n.counts).toEqual({ calls: 0, streams: 1, streamed: 2, cancelled: 0 });
});

it("cancels the stream of a search that stops before its end, and opens another for the next", async () => {
  const n = await startNode(true);
  const b = backendOf(n);
  n.answer = "hang";
  const ac = new AbortController();
  const p = select(b, ac.signal).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 100));
  ac.abort(new Error("client went away"));
  expect(((await p) as Error).message).toBe("client went away");
  n.answer = undefined;
  await select(b);
  await new Promise((r) => setTimeout(r, 50));
  expect(n.counts).toEqual({ calls: 0, streams: 2, streamed: 2, cancelled: 1 });
});

it("searches a node without SearchStream_v1 (an older version) with Search_v1 calls", async () => {
  const n = await startNode(false);
  const b = backendOf(n);
  for (let i = 0; i < 3; i++) await select(b);
  expect(n.counts).toEqual({ calls: 3, streams: 0, streamed: 0, cancelled: 0 });
});

it("writes an end after a frame's blocks that protobuf-es and the frame reader both read", () => {
  const w = new SearchFrameWriter(1024);
  w.appendBlock(new Uint8Array(8), cluster.BlockEncoding.ROWS, 1, 5, 5, 0);
  const blockBytes = w.len;
  w.appendEnd(grpc.status.CANCELLED, "gone", '{"totalMs":1}');
  const frame = new Uint8Array(w.view());
  const m = fromBinary(cluster.SearchResponseSchema, frame);
  expect(m.blocks).toHaveLength(1);
  expect([m.end?.code, m.end?.details, m.end?.trace]).toEqual([grpc.status.CANCELLED, "gone", '{"totalMs":1}']);
  const r = new SearchFrameReader(frame);
  expect(r.next()).toBe(true);
  expect(r.ended).toBe(false);
  expect(r.next()).toBe(false);
  expect(r.ended).toBe(true);
  expect(r.endBytes).toBe(frame.length - blockBytes);
  expect([r.end().code, r.end().details, r.end().trace]).toEqual([grpc.status.CANCELLED, "gone", '{"totalMs":1}']);
  r.reset(frame.subarray(0, blockBytes));
  expect(r.next()).toBe(true);
  expect(r.next()).toBe(false);
  expect([r.ended, r.endBytes]).toEqual([false, 0]);
});
