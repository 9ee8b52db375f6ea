import { afterEach, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { createLogger, MetricsRegistry } from "@strata/core";
import { addService, cluster, grpc, SearchServiceDefinition, type SearchServiceHandlers } from "@strata/protocol";
import { ClusterSelectBackend } from "../src/select-backend.js";

/**
 * Select's index-answer cache refreshes an entry read past half its lifetime in the background:
 * a call made after the first answer's lifetime ended is still answered from the cache, with the
 * refreshed answer, and the node was asked once more before that call, not by it. A fake node
 * (grpc-js with hand-written handlers) answers LabelNames_v1 with a new name each time and keeps
 * a WatchIndex_v1 stream open without changes.
 */

const log = createLogger({ name: "test", level: "silent" });
const tenant = { accountID: 0, projectID: 0 };
const TTL_MS = 2000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function startNode(): Promise<{ addr: string; asked: () => number }> {
  const server = new grpc.Server();
  let asked = 0;
  const handlers = {
    LabelNames_v1: (_call: unknown, cb: (err: null, r: cluster.LabelNamesResponse) => void) => {
      asked++;
      cb(null, create(cluster.LabelNamesResponseSchema, { names: [`name_${asked}`] }));
    },
    WatchIndex_v1: (call: grpc.ServerWritableStream<cluster.WatchIndexRequest, cluster.WatchIndexResponse>) => {
      call.on("error", () => undefined);
      call.write(create(cluster.WatchIndexResponseSchema, { changes: 0n }));
    },
  };
  addService(server, SearchServiceDefinition, handlers as unknown as SearchServiceHandlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  cleanup.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { addr: `127.0.0.1:${port}`, asked: () => asked };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("fetches an entry read past half its lifetime again in the background, so later reads keep hitting", async () => {
  const node = await startNode();
  const b = new ClusterSelectBackend({ nodes: [node.addr], replicationFactor: 1, dedupIntervalMs: 0, skipSlowReplicas: true, log, metrics: new MetricsRegistry(), metaCacheTtlMs: TTL_MS });
  cleanup.push(() => b.close());
  const opts = { deadline: Date.now() + 10_000, denyPartialResponse: false, maxSeries: 1000 };
  const names = async () => (await b.labelNames(tenant, [], 0, 1000, 0, opts)).value;
  // The cache is used once the watch stream's first message arrived: then a second call hits.
  let first: readonly string[] = [];
  let filledAt = 0;
  for (let i = 0; ; i++) {
    filledAt = Date.now();
    first = await names();
    const before = node.asked();
    if ((await names())[0] === first[0] && node.asked() === before) break;
    if (i > 100) throw new Error("the cache never answered");
    await sleep(10);
  }
  const askedAtFill = node.asked();
  expect(first).toEqual([`name_${askedAtFill}`]);

  await sleep(TTL_MS / 2 + 100);
  expect(await names()).toEqual(first); // served from the cache; the refresh is due
  expect(node.asked()).toBe(askedAtFill);

  // Past the first answer's lifetime: the refresh (a quarter of the TTL after that hit) has replaced it.
  await sleep(Math.max(0, filledAt + TTL_MS + 50 - Date.now()));
  expect(node.asked()).toBe(askedAtFill + 1);
  expect(await names()).toEqual([`name_${askedAtFill + 1}`]);
  expect(node.asked()).toBe(askedAtFill + 1); // that call did not ask the node
});
