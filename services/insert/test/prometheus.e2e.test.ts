// Interop with a real sender: Debian's `prometheus` scrapes itself and remote-writes to
// strata-insert; its `up` and `prometheus_*` series and metadata arrive on the storage nodes.
// Skipped (with a message) when /usr/bin/prometheus is absent, except under CI=true where it fails.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { cluster, createSearchClient } from "@strata/protocol";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  assertBuilt,
  freePort,
  Proc,
  removeDir,
  searchNode,
  startInsert,
  startStorage,
  tempDir,
  type InsertNode,
  type StorageNode,
} from "./cluster-harness.js";

const PROMETHEUS = "/usr/bin/prometheus";
const present = existsSync(PROMETHEUS);
if (!present && process.env["CI"] === "true") {
  throw new Error(`${PROMETHEUS} is missing under CI=true: .ci/run must apt-get install prometheus`);
}
if (!present) console.warn(`SKIP prometheus interop: ${PROMETHEUS} not found (apt-get install -y prometheus)`);

let nodes: StorageNode[] = [];
let ins: InsertNode | undefined;
let prom: Proc | undefined;
let promDir = "";

beforeAll(async () => {
  if (!present) return;
  assertBuilt();
  nodes = await Promise.all([startStorage(), startStorage()]);
  ins = await startInsert(nodes.map((n) => n.insertAddr), ["-replicationFactor=1"]);
  promDir = tempDir("strata-prom-");
  const port = await freePort();
  const config = `
global:
  scrape_interval: 1s
  evaluation_interval: 10s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:${port}"]
remote_write:
  - url: "${ins.url}/insert/42:7/prometheus/api/v1/write"
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 2s
`;
  writeFileSync(join(promDir, "prometheus.yml"), config);
  prom = new Proc(
    spawn(PROMETHEUS, [
      `--config.file=${join(promDir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(promDir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ], { stdio: ["ignore", "pipe", "pipe"] }),
    "prometheus",
  );
});

afterAll(async () => {
  await prom?.stop();
  await Promise.all([ins?.proc.stop(), ...nodes.map((n) => n.proc.stop())]);
  for (const n of nodes) removeDir(n.dir);
  if (promDir) removeDir(promDir);
});

it.skipIf(!present)("Prometheus remote_write delivers up, prometheus_* series and metadata", async () => {
  const tenant = { accountID: 42, projectID: 7 };
  let names = new Set<string>();
  for (let i = 0; i < 120; i++) {
    await Promise.all(nodes.map((n) => fetch(`${n.http}/internal/force_flush`).then((r) => r.text())));
    const all = (await Promise.all(nodes.map((n) => searchNode(n, tenant)))).flat();
    names = new Set(all.map((s) => s.labels.find((l) => l.name === "__name__")!.value));
    if (names.has("up") && [...names].filter((n) => n.startsWith("prometheus_")).length > 20) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(names.has("up"), prom?.log()).toBe(true);
  expect([...names].filter((n) => n.startsWith("prometheus_")).length).toBeGreaterThan(20);
  const up = (await Promise.all(nodes.map((n) => searchNode(n, tenant, "up")))).flat();
  expect(up[0]!.labels).toEqual([
    { name: "__name__", value: "up" },
    { name: "instance", value: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown as string },
    { name: "job", value: "prometheus" },
  ]);
  expect(up[0]!.values.every((v) => v === 1)).toBe(true);

  // Metadata (sent every 2s) is kept by every storage node.
  let help = "";
  for (let i = 0; i < 60 && help === ""; i++) {
    const c = createSearchClient(nodes[0]!.searchAddr);
    const res = await c.unary("Metadata_v1", create(cluster.MetadataRequestSchema, { tenant: { accountId: 42, projectId: 7 }, metric: "prometheus_build_info" }));
    c.close();
    help = res.metadata[0]?.help ?? "";
    if (help === "") await new Promise((r) => setTimeout(r, 500));
  }
  expect(help).toMatch(/build/i);
});
