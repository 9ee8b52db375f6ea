// insert's fastify app in process (inject): one -maxConcurrentInserts limiter shared by remote
// write and the imports, the probes, InfluxDB helpers, -httpAuth.*, body limits. (`..` in a path:
// inject folds it before the app sees it, so test/hardening.test.ts checks it on a real socket.)
import { describe, expect, it } from "vitest";
import { createLogger, MetricsRegistry } from "@strata/core";
import type { InsertCluster } from "@strata/cluster";
import { AuthFailures, HttpGuard } from "@strata/httpsec";
import { buildApp, type InsertAppDeps } from "../src/app.js";
import { remoteWriteV1 } from "./cluster-harness.js";
import { stubCluster } from "./stub-cluster.js";

const log = createLogger({ name: "test", level: "silent" });

/** A stub cluster that counts writes, each taking `writeMs`. */
function counting(o: { healthy?: number; writeMs?: number } = {}): InsertCluster & { written: number } {
  const c = stubCluster(
    async () => {
      await new Promise((r) => setTimeout(r, o.writeMs ?? 0));
      c.written++;
      return { rows: 1, underReplicatedRows: 0, reroutedRows: 0 };
    },
    () => o.healthy ?? 1,
  ) as InsertCluster & { written: number };
  c.written = 0;
  return c;
}

function app(cluster: InsertCluster, extra: Partial<InsertAppDeps> = {}) {
  return buildApp({ cluster, limits: {}, maxRequestBytes: 1 << 16, maxConcurrentInserts: 1, maxQueueMs: 100, log, metrics: new MetricsRegistry(), ...extra });
}

const rw = { "content-type": "application/x-protobuf", "content-encoding": "snappy" };
const body = Buffer.from(remoteWriteV1([{ labels: { __name__: "x" }, samples: [[Date.now(), 1]] }]));

describe("one limiter for every ingestion handler", () => {
  it.each([
    ["an import waits for a remote write's slot", "/insert/0/prometheus/api/v1/write", "/insert/0/prometheus/api/v1/import/prometheus"],
    ["a remote write waits for an import's slot", "/insert/0/prometheus/api/v1/import/prometheus", "/insert/0/prometheus/api/v1/write"],
    ["an influx write waits for a remote write's slot", "/insert/0/prometheus/api/v1/write", "/insert/0/influx/write"],
  ])("%s", async (_what, first, second) => {
    const a = app(counting({ writeMs: 500 }));
    const req = (url: string) =>
      url.endsWith("/api/v1/write")
        ? { method: "POST" as const, url, headers: rw, payload: body }
        : { method: "POST" as const, url, payload: url.includes("influx") ? "m v=1\n" : "m 1\n" };
    const slow = a.inject(req(first));
    await new Promise((r) => setTimeout(r, 100));
    const limited = await a.inject(req(second));
    expect(limited.statusCode, limited.body).toBe(429);
    expect(limited.headers["retry-after"]).toBe("1");
    expect(limited.body).toMatch(/-maxConcurrentInserts=1 requests are in progress/);
    expect((await slow).statusCode).toBe(204);
    const m = (await a.inject({ url: "/metrics" })).body;
    expect(m).toMatch(/^strata_insert_concurrent_requests 0$/m);
    expect(m).not.toContain("strata_import_concurrent_requests");
  });
});

describe("paths", () => {
  it.each([
    ["GET", "/health", 200, /^OK$/],
    ["GET", "/-/healthy", 200, /^OK$/],
    ["GET", "/-/ready", 200, /^OK$/],
    ["GET", "/metrics", 200, /^strata_insert_concurrent_requests 0$/m],
    ["GET", "/insert/0/prometheus/api/v1/write", 405, /^method GET not allowed: remote write uses POST\n$/],
    ["GET", "/insert/0/prometheus/api/v1/import", 405, /imports use POST/],
    ["POST", "/insert/abc/prometheus/api/v1/write", 400, /tenant/],
    ["GET", "/insert/0/influx/ping", 204, /^$/],
    ["GET", "/insert/0/influx/query?q=SHOW%20DATABASES", 200, /"name":"databases"/],
    ["GET", "/insert/0/influx/health/", 200, /"status":"pass"/],
    ["POST", "/insert/0/prometheus/api/v1/import/nope", 404, /^unsupported path "\/insert\/0\/prometheus\/api\/v1\/import\/nope"\n$/],
  ] as const)("%s %s → %i", async (method, url, status, want) => {
    const r = await app(counting()).inject(method === "POST" ? { method, url, headers: rw, payload: body } : { method, url });
    expect(r.statusCode, r.body).toBe(status);
    expect(r.body).toMatch(want);
  });

  it("/-/ready is 503 without a healthy storage node", async () => {
    const r = await app(counting({ healthy: 0 })).inject({ url: "/-/ready" });
    expect([r.statusCode, r.body]).toEqual([503, "no healthy storage node\n"]);
  });

  it("stores a remote write and a pushgateway-style import", async () => {
    const c = counting();
    const a = app(c);
    expect((await a.inject({ method: "POST", url: "/insert/0/prometheus", headers: rw, payload: body })).statusCode).toBe(204);
    const pg = await a.inject({ method: "PUT", url: "/insert/0/prometheus/api/v1/import/prometheus/metrics/job/j/instance/i", payload: "m 1\n" });
    expect(pg.statusCode, pg.body).toBe(204);
    // A pushgateway path longer than the router's default parameter limit (100).
    const long = `/insert/0/prometheus/api/v1/import/prometheus/metrics/job/j/${Array.from({ length: 20 }, (_, i) => `label_${i}/value_${i}`).join("/")}`;
    const pgLong = await a.inject({ method: "POST", url: long, payload: "m 1\n" });
    expect(pgLong.statusCode, pgLong.body).toBe(204);
    expect(c.written).toBe(3);
  });

  it("a body past -maxInsertRequestSize is a 413 that closes the connection", async () => {
    const r = await app(counting(), { maxRequestBytes: 16 }).inject({ method: "POST", url: "/insert/0/prometheus/api/v1/write", headers: rw, payload: Buffer.alloc(64) });
    expect(r.statusCode, r.body).toBe(413);
    expect(r.body).toMatch(/exceeds the limit of 16 bytes/);
  });
});

describe("-httpAuth.*", () => {
  const metrics = new MetricsRegistry();
  const guarded = app(counting(), {
    metrics,
    security: {
      certs: undefined,
      guard: new HttpGuard({ username: "w", password: "pw", metricsAuthKey: "" }),
      failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }),
    },
  });
  const basic = (p: string) => ({ authorization: `Basic ${Buffer.from(`w:${p}`).toString("base64")}` });
  it.each([
    ["/insert/0/prometheus/api/v1/write", {}, 401],
    ["/insert/0/prometheus/api/v1/write", basic("bad"), 401],
    ["/insert/0/prometheus/api/v1/write", basic("pw"), 204],
    ["/insert/0/prometheus/api/v1/import/prometheus", {}, 401],
    ["/insert/0/opentsdb/api/put", basic("bad"), 401],
  ] as const)("POST %s %j → %i", async (url, auth, status) => {
    const r = await guarded.inject({ method: "POST", url, headers: { ...rw, ...auth }, payload: body });
    expect(r.statusCode, r.body).toBe(status);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });
});
