// SIGKILL one storage node mid-stream with replicationFactor=2: after it restarts, every
// acknowledged sample is on at least two nodes. Requires `pnpm build` first.
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  assertBuilt,
  forceFlush,
  post,
  remoteWriteV1,
  removeDir,
  searchNode,
  startInsert,
  startStorage,
  type InsertNode,
  type StorageNode,
} from "./cluster-harness.js";

const T0 = Date.UTC(2026, 10, 20);
const SERIES = 30;
const REQUESTS = 120;
let nodes: StorageNode[] = [];
let ins: InsertNode;

beforeAll(async () => {
  assertBuilt();
  nodes = await Promise.all([startStorage(), startStorage(), startStorage()]);
  ins = await startInsert(
    nodes.map((n) => n.insertAddr),
    ["-replicationFactor=2", "-storageNode.writeTimeout=10s"],
  );
});

afterAll(async () => {
  await Promise.all([ins?.proc.stop(), ...nodes.map((n) => n.proc.stop())]);
  for (const n of nodes) removeDir(n.dir);
});

it("no acknowledged sample is lost when a storage node is SIGKILLed and restarted (RF=2)", async () => {
  const acked: number[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const victim = 1;
  const worker = async (): Promise<void> => {
    while (next < REQUESTS) {
      const k = next++;
      if (k === 40) await nodes[victim]!.proc.kill9();
      if (k === 80) {
        const v = nodes[victim]!;
        nodes[victim] = await startStorage(v.dir, { insertPort: v.insertPort, searchPort: v.searchPort, httpPort: v.httpPort });
      }
      const body = remoteWriteV1(
        Array.from({ length: SERIES }, (_, i) => ({
          labels: { __name__: "kill_test", series: String(i) },
          samples: [[T0 + k * 1000, k] as [number, number]],
        })),
      );
      const r = await post(`${ins.url}/insert/0/prometheus/api/v1/write`, body);
      await r.arrayBuffer();
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 204) acked.push(k);
      else expect([503]).toContain(r.status); // a retry can succeed; never a 4xx or 500
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  // Most requests were acknowledged, including while the node was down.
  expect(acked.filter((k) => k >= 41 && k < 80).length).toBeGreaterThan(20);
  expect(acked.length).toBeGreaterThan(REQUESTS * 0.7);

  await forceFlush(nodes);
  const stored = await Promise.all(nodes.map((n) => searchNode(n, { accountID: 0, projectID: 0 }, "kill_test")));
  // copies[series][k] = number of nodes holding the sample
  const copies = Array.from({ length: SERIES }, () => new Uint8Array(REQUESTS));
  for (const list of stored) {
    for (const s of list) {
      const i = Number(s.labels.find((l) => l.name === "series")!.value);
      s.timestamps.forEach((t, j) => {
        const k = (t - T0) / 1000;
        expect(s.values[j]).toBe(k);
        copies[i]![k]!++;
      });
    }
  }
  const missing: string[] = [];
  for (const k of acked) {
    for (let i = 0; i < SERIES; i++) if (copies[i]![k]! < 2) missing.push(`series ${i} request ${k}: ${copies[i]![k]} copies`);
  }
  expect(missing).toEqual([]);
  const metrics = await (await fetch(`${ins.url}/metrics`)).text();
  expect(metrics).toMatch(/strata_insert_rows_rerouted_total [1-9]/);
});
