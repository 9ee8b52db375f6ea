// strata-storage as a process: VictoriaMetrics-shaped HTTP endpoints, WriteRows_v1 acked
// after the WAL append (visible after a SIGKILL + restart), SIGTERM shutdown steps.
// Requires `pnpm build` first; the harness lives with the insert e2e tests.
import { create } from "@bufbuild/protobuf";
import { encodeMetricName, RowsBatchWriter } from "@strata/core";
import { cluster, createInsertClient, encodeWriteRows, grpc } from "@strata/protocol";
import { afterAll, beforeAll, expect, it } from "vitest";
import { assertBuilt, removeDir, searchNode, startStorage, type StorageNode } from "../../insert/test/cluster-harness.js";

let node: StorageNode;

beforeAll(async () => {
  assertBuilt();
  node = await startStorage(undefined, undefined, ["-loggerLevel=INFO"]);
});
afterAll(async () => {
  await node?.proc.stop();
  if (node) removeDir(node.dir);
});

const get = async (path: string): Promise<[number, string]> => {
  const r = await fetch(`${node.http}${path}`);
  return [r.status, await r.text()];
};

it.each([
  ["/health", 200, /^OK$/],
  ["/-/ready", 200, /^OK$/],
  ["/snapshot/list", 200, /^\{"status":"ok","snapshots":\[\]\}\n$/],
  ["/snapshot/delete?snapshot=nope", 404, /"status":"error","msg":"cannot find snapshot \\"nope\\""/],
  ["/nope", 404, /unsupported path/],
])("GET %s → %i", async (path, status, body) => {
  const [s, text] = await get(path);
  expect(s).toBe(status);
  expect(text).toMatch(body);
});

it("WriteRows_v1 is acknowledged after the WAL append and survives SIGKILL", async () => {
  const w = new RowsBatchWriter();
  const name = encodeMetricName({ tenant: { accountID: 3, projectID: 0 }, labels: [{ name: "__name__", value: "wal_test" }] });
  for (let i = 0; i < 100; i++) w.add(name, 1_700_000_000_000 + i * 1000, i);
  const c = createInsertClient(node.insertAddr);
  const res = await c.unary("WriteRows_v1", encodeWriteRows(w.view(), w.length));
  expect(res.rowsWritten).toBe(100);
  const bad = create(cluster.WriteRowsRequestSchema, { rows: w.view(), rowsCount: 99 });
  await expect(c.unary("WriteRows_v1", bad)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  c.close();
  await node.proc.kill9();
  node = await startStorage(node.dir, { insertPort: node.insertPort, searchPort: node.searchPort, httpPort: node.httpPort }, ["-loggerLevel=INFO"]);
  await get("/internal/force_flush");
  const stored = await searchNode(node, { accountID: 3, projectID: 0 }, "wal_test");
  expect(stored).toHaveLength(1);
  expect(stored[0]!.values).toEqual(Array.from({ length: 100 }, (_, i) => i));
});

it("snapshots: create, list, delete, delete_all", async () => {
  const [s1, created] = await get("/snapshot/create");
  expect(s1).toBe(200);
  const name = (JSON.parse(created) as { status: string; snapshot: string }).snapshot;
  expect(JSON.parse((await get("/snapshot/list"))[1])).toEqual({ status: "ok", snapshots: [name] });
  expect(JSON.parse((await get(`/snapshot/delete?snapshot=${name}`))[1])).toEqual({ status: "ok" });
  await get("/snapshot/create");
  expect(JSON.parse((await get("/snapshot/delete_all"))[1])).toEqual({ status: "ok" });
  expect(JSON.parse((await get("/snapshot/list"))[1])).toEqual({ status: "ok", snapshots: [] });
  expect((await get("/internal/force_merge"))[0]).toBe(200);
  expect((await get("/metrics"))[1]).toMatch(/strata_storage_rpc_rows_added_total \d+/);
});

it("SIGTERM stops accepting, flushes, closes and exits 0, logging every step's duration", async () => {
  const code = await node.proc.stop();
  expect(code).toBe(0);
  const steps = node.proc
    .log()
    .split("\n")
    .filter((l) => l.includes('"step"'))
    .map((l) => JSON.parse(l) as { step: string; durationMs: number });
  expect(steps.map((s) => s.step)).toEqual([
    "stop accepting writes",
    "HTTP server",
    "search gRPC server",
    "insert gRPC server",
    "metadata",
    "storage (flush + close)",
  ]);
  for (const s of steps) expect(typeof s.durationMs).toBe("number");
});
