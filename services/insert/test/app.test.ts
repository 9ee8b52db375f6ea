// The insert HTTP handler in-process over a stub cluster: content negotiation, 429 from the
// concurrency limit, 503 from the cluster, headers.
import type { FastifyInstance } from "fastify";
import { Writable } from "node:stream";
import { createLogger, MetricsRegistry, UnavailableError } from "@strata/core";
import { RoutedRows, type InsertCluster } from "@strata/cluster";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp, remoteWriteVersion } from "../src/app.js";
import { remoteWriteV1 } from "./cluster-harness.js";
import { stubCluster } from "./stub-cluster.js";

describe("remoteWriteVersion", () => {
  it.each([
    [undefined, undefined, 1],
    ["application/x-protobuf", "snappy", 1],
    ["application/x-protobuf;proto=prometheus.WriteRequest", "snappy", 1],
    ["application/x-protobuf; proto=io.prometheus.write.v2.Request", "snappy", 2],
    ["Application/X-Protobuf;proto=io.prometheus.write.v2.Request", undefined, 2],
  ] as const)("%s / %s → %i", (ct, ce, want) => {
    expect(remoteWriteVersion(ct, ce)).toBe(want);
  });

  it.each([
    ["text/plain", undefined, /unsupported Content-Type/],
    ["application/x-protobuf;proto=io.prometheus.write.v3.Request", undefined, /unsupported remote write message/],
    ["application/x-protobuf", "gzip", /Content-Encoding/],
  ] as const)("%s / %s → 415", (ct, ce, msg) => {
    expect(() => remoteWriteVersion(ct, ce)).toThrow(msg);
  });
});

describe("insert handler over a stub cluster", () => {
  let mode: "slow" | "down" = "slow";
  const write = async () => {
    if (mode === "down") throw new UnavailableError("0 of 1 rows could not be stored on any storage node");
    await new Promise((r) => setTimeout(r, 400));
    return { rows: 1, underReplicatedRows: 0, reroutedRows: 0 };
  };
  const stub = stubCluster(write);
  let server: FastifyInstance;
  let url = "";
  beforeAll(async () => {
    const app = buildApp({
      cluster: stub,
      limits: {},
      maxRequestBytes: 1 << 20,
      maxConcurrentInserts: 1,
      maxQueueMs: 50,
      log: createLogger({ name: "test", level: "silent" }),
      metrics: new MetricsRegistry(),
    });
    server = app;
    await app.listen({ port: 0, host: "127.0.0.1" });
    const a = app.server.address();
    url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/insert/0/prometheus/api/v1/write`;
  });
  afterAll(() => server.close());

  const body = remoteWriteV1([{ labels: { __name__: "x" }, samples: [[1000, 1]] }]);
  const send = () =>
    fetch(url, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" } });

  it("answers 429 with Retry-After past -maxConcurrentInserts and -insert.maxQueueDuration", async () => {
    mode = "slow";
    const [a, b] = await Promise.all([send(), send()]);
    expect([a.status, b.status].sort()).toEqual([204, 429]);
    const limited = a.status === 429 ? a : b;
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(await limited.text()).toMatch(/-maxConcurrentInserts=1/);
  });

  it("answers 503 with Retry-After when no storage node can take the rows", async () => {
    mode = "down";
    const r = await send();
    expect(r.status).toBe(503);
    expect(r.headers.get("retry-after")).toBe("1");
    expect(await r.text()).toMatch(/could not be stored/);
  });

  it("answers 405 to GET", async () => {
    expect((await fetch(url)).status).toBe(405);
  });
});

describe("rejected requests", () => {
  it("are all counted, and logged at most 10 a second with tenant, client address and reason", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const metrics = new MetricsRegistry();
    const app = buildApp({
      cluster: {
        routedRows: () => new RoutedRows([{ lo: 0, hi: 0 }], 1, 1),
        releaseRouted: () => undefined,
        healthyCount: () => 1,
        retention: () => ({ retentionMs: 0, futureRetentionMs: 0 }),
      } as unknown as InsertCluster,
      limits: {},
      maxRequestBytes: 1 << 20,
      maxConcurrentInserts: 4,
      maxQueueMs: 50,
      log: createLogger({ name: "test", level: "info", destination }),
      metrics,
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    try {
      const a = app.server.address();
      const url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/insert/7/prometheus/api/v1/write`;
      for (let i = 0; i < 25; i++) {
        const r = await fetch(url, { method: "POST", body: "not snappy", headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" } });
        expect(r.status).toBe(400);
        await r.text();
      }
      const logged = lines.filter((l) => l["msg"] === "insert request rejected");
      expect(logged.length).toBeGreaterThan(0);
      expect(logged.length).toBeLessThanOrEqual(10);
      expect(logged[0]).toMatchObject({ level: "warn", tenant: "7", status: 400, reason: expect.any(String), remoteAddr: expect.stringMatching(/127\.0\.0\.1/) });
      expect(String(logged[0]!["err"])).toMatch(/snappy/);
      expect(String(logged[0]!["err"])).not.toMatch(/snappy: snappy:/);
      const text = metrics.render();
      const rejected = [...text.matchAll(/^strata_insert_requests_rejected_total\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
      expect(rejected).toBe(25);
    } finally {
      await app.close();
    }
  });
});
