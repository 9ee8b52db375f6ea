import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMetricName, RowsBatchWriter } from "@strata/core";
import { cluster, createInsertClient, createSearchClient, encodeWriteRows, grpc, type SearchClient } from "@strata/protocol";
import { makeCa, makeClientCert, makeClusterCerts, type ClusterCerts } from "./lib/certs.js";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, serviceMain, startProcess, tempDir, waitHealthy } from "./lib/procs.js";

/**
 * Issue 19, between components: with -cluster.tls a storage node's gRPC ports speak TLS and
 * want a client certificate signed by -cluster.tlsCAFile. Insert and select with such a
 * certificate work end to end; a plain client, a client without a certificate and one with a
 * certificate of another CA are refused before any call reaches a handler.
 */
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const T = Date.now() - 60_000;

describe.skipIf(!built)(`mTLS on the cluster links${built ? "" : " — skipped: services not built (pnpm build)"}`, () => {
  const dir = tempDir("mtls");
  let certs: ClusterCerts;
  let c: Cluster;
  beforeAll(async () => {
    certs = makeClusterCerts(dir.path);
    c = await startCluster({
      storageNodes: 2,
      storageFlags: certs.storageFlags,
      insertFlags: [...certs.clientFlags, "-cluster.tlsServerName=localhost"],
      selectFlags: certs.clientFlags,
    });
  });
  afterAll(async () => {
    await c?.stop();
    dir.remove();
  });

  const labelValues = (client: SearchClient) =>
    client.unary(
      "LabelValues_v1",
      create(cluster.LabelValuesRequestSchema, { labelName: "job", query: { tenant: { accountId: 7, projectId: 0 }, minTimestampMs: 0n, maxTimestampMs: 0n } }),
      { deadline: Date.now() + 10_000 },
    );

  it("insert and select with the CA's client certificate write and read through every storage node", async () => {
    const series = Array.from({ length: 20 }, (_, i) => ({ labels: { __name__: "mtls_up", job: "j", s: String(i) }, samples: [[T, i] as const] }));
    const w = await remoteWrite(c.insertUrl, series, "7");
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
    const r = await c.api(`/select/7/prometheus/api/v1/query?query=count(mtls_up)&time=${(T + 1000) / 1000}`);
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ status: "success", data: { result: [{ value: [expect.any(Number), "20"] }] } });
    expect(r.text).not.toMatch(/isPartial":true/);
    // Both nodes took a share, so both links were used.
    for (const s of c.storage) {
      const m = await (await fetch(`http://${s.httpAddr}/metrics`)).text();
      expect(m).toMatch(/^strata_storage_rpc_rows_added_total [1-9]/m);
    }
  });

  it("a client with the CA's certificate is served on the search port", async () => {
    const ca = readFileSync(certs.ca.certFile);
    const client = makeClientCert(dir.path, "good-client", certs.ca);
    const good = createSearchClient(c.storage[0]!.selectAddr, {}, grpc.credentials.createSsl(ca, readFileSync(client.keyFile), readFileSync(client.certFile)));
    try {
      const res = await labelValues(good);
      expect(res.values.length).toBeGreaterThan(0);
    } finally {
      good.close();
    }
  });

  it.each([
    ["a plain (insecure) client", () => grpc.credentials.createInsecure()],
    ["a TLS client without a certificate", () => grpc.credentials.createSsl(readFileSync(certs.ca.certFile))],
    [
      "a TLS client with a certificate of another CA",
      () => {
        const other = makeCa(dir.path, "other-ca");
        const bad = makeClientCert(dir.path, "bad-client", other);
        return grpc.credentials.createSsl(readFileSync(certs.ca.certFile), readFileSync(bad.keyFile), readFileSync(bad.certFile));
      },
    ],
  ])("%s is refused on both ports (LabelValues_v1, DeleteSeries_v1, WriteRows_v1)", async (_what, creds) => {
    const node = c.storage[0]!;
    const credentials = creds();
    const search = createSearchClient(node.selectAddr, {}, credentials);
    const insert = createInsertClient(node.insertAddr, {}, credentials);
    try {
      const rows = new RowsBatchWriter();
      rows.add(encodeMetricName({ tenant: { accountID: 7, projectID: 0 }, labels: [{ name: "__name__", value: "mtls_up" }, { name: "s", value: "intruder" }] }), T, 99);
      await expect(insert.unary("WriteRows_v1", encodeWriteRows(rows.view(), rows.length), { deadline: Date.now() + 10_000 })).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      await expect(labelValues(search)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      const del = create(cluster.DeleteSeriesRequestSchema, { query: { tenant: { accountId: 7, projectId: 0 }, matcherGroups: [{ matchers: [{ name: "__name__", value: "mtls_up" }] }] } });
      await expect(search.unary("DeleteSeries_v1", del, { deadline: Date.now() + 10_000 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      search.close();
      insert.close();
    }
    // Nothing was deleted, nothing was added.
    const r = await c.api(`/select/7/prometheus/api/v1/query?query=count(mtls_up)&time=${(T + 1000) / 1000}`);
    expect(r.json).toMatchObject({ data: { result: [{ value: [expect.any(Number), "20"] }] } });
  });

  it("an insert whose certificate another CA signed cannot write (503, nothing stored)", async () => {
    const other = makeCa(dir.path, "rogue-ca");
    const rogue = makeClientCert(dir.path, "rogue-insert", other);
    const port = await freePort();
    const p = startProcess(process.execPath, [
      serviceMain("insert"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=${c.storage.map((s) => s.insertAddr).join(",")}`,
      "-cluster.tls",
      `-cluster.tlsCAFile=${certs.ca.certFile}`,
      `-cluster.tlsCertFile=${rogue.certFile}`,
      `-cluster.tlsKeyFile=${rogue.keyFile}`,
      "-storageNode.writeTimeout=3s",
    ]);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/health`, p);
      const w = await remoteWrite(`http://127.0.0.1:${port}`, [{ labels: { __name__: "rogue_write", job: "x" }, samples: [[T, 1]] }], "7");
      expect(w.status, w.text).toBe(503);
    } finally {
      await p.stop();
    }
    await forceFlush(c);
    const r = await c.api(`/select/7/prometheus/api/v1/series?match[]=rogue_write`);
    expect(r.json).toMatchObject({ status: "success", data: [] });
  });

  it("select without a client certificate gets no answer from any node", async () => {
    const port = await freePort();
    const p = startProcess(process.execPath, [
      serviceMain("select"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=${c.storage.map((s) => s.selectAddr).join(",")}`,
    ]);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/health`, p);
      const r = await fetch(`http://127.0.0.1:${port}/select/7/prometheus/api/v1/query?query=count(mtls_up)&time=${(T + 1000) / 1000}`);
      const text = await r.text();
      expect(text).not.toMatch(/"20"/);
      expect(r.status, text).toBeGreaterThanOrEqual(500);
    } finally {
      await p.stop();
    }
  });
});
