import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MetricsRegistry, createLogger } from "@strata/core";
import { AuthFailures, HttpGuard } from "@strata/httpsec";
import { PushReceiver, RemoteWriteFanout, ScrapeManager, loadScrapeConfig } from "@strata/scrape";
import { buildApp } from "@strata/service-agent";
import { remoteWriteBody } from "../../../test/lib/cluster.js";
import { tempDir } from "../../../test/lib/procs.js";
import { startReceiver, waitUntil, type Receiver } from "../../../test/lib/rw-receiver.js";

const log = createLogger({ name: "test", level: "error" });

describe("agent HTTP API (inject)", () => {
  const dir = tempDir("agent-app");
  let rcv: Receiver;
  let fanout: RemoteWriteFanout;
  let manager: ScrapeManager;
  let push: PushReceiver;
  let app: ReturnType<typeof buildApp>;
  const cfgPath = join(dir.path, "prometheus.yml");

  beforeAll(async () => {
    rcv = await startReceiver();
    const metrics = new MetricsRegistry();
    fanout = new RemoteWriteFanout({ targets: [{ url: rcv.url }], tmpDataPath: dir.path, maxDiskUsagePerURL: 0, version: 1, log, metrics, retryMinMs: 20 });
    manager = new ScrapeManager({ fanout, log, metrics, maxScrapeBytes: 1 << 20 });
    // Targets on a closed port: they are listed (down), nothing is needed from them here.
    writeFileSync(
      cfgPath,
      `scrape_configs:\n  - job_name: web\n    scrape_interval: 1h\n    static_configs: [{ targets: ["127.0.0.1:1", "127.0.0.1:2"] }]\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: .*:2\n        action: drop\n`,
    );
    await manager.apply(loadScrapeConfig(cfgPath));
    push = new PushReceiver(fanout, { maxRequestBytes: 1 << 20, maxLineBytes: 1 << 16, limits: { maxLabels: 10 } });
    app = buildApp({ manager, push, metrics, log, maxRequestBytes: 1 << 20, reload: async () => manager.apply(loadScrapeConfig(cfgPath)) });
  });
  afterAll(async () => {
    await app.close();
    await manager.stop();
    await fanout.close();
    await rcv.close();
    dir.remove();
  });
  afterEach(() => rcv.series.clear());

  it("answers /health, /-/ready and /metrics", async () => {
    expect((await app.inject({ url: "/health" })).body).toBe("OK");
    expect((await app.inject({ url: "/-/ready" })).statusCode).toBe(200);
    const m = await app.inject({ url: "/metrics" });
    expect(m.body).toContain("strata_agent_remotewrite_pending_bytes{url=");
    expect(m.body).toContain('strata_agent_targets{status="unknown"}');
    expect(m.body).toContain('strata_agent_target_up{job="web",instance="127.0.0.1:1",url="http://127.0.0.1:1/metrics"} -1');
  });

  it("lists targets in Prometheus' JSON shape, with the dropped ones", async () => {
    const r = await app.inject({ url: "/api/v1/targets" });
    const j = r.json() as { status: string; data: { activeTargets: Record<string, unknown>[]; droppedTargets: { discoveredLabels: Record<string, string> }[] } };
    expect(j.status).toBe("success");
    expect(j.data.activeTargets).toHaveLength(1);
    expect(j.data.activeTargets[0]).toMatchObject({ scrapePool: "web", scrapeUrl: "http://127.0.0.1:1/metrics", labels: { job: "web", instance: "127.0.0.1:1" }, scrapeInterval: "1h", scrapeTimeout: "10s" });
    expect(j.data.droppedTargets.map((d) => d.discoveredLabels["__address__"])).toEqual(["127.0.0.1:2"]);
    expect((await app.inject({ url: "/api/v1/targets?state=dropped" })).json()).toMatchObject({ data: { activeTargets: [] } });
    expect((await app.inject({ url: "/api/v1/targets?state=bogus" })).statusCode).toBe(400);
    const html = await app.inject({ url: "/targets" });
    expect(html.headers["content-type"]).toContain("text/html");
    expect(html.body).toContain("http://127.0.0.1:1/metrics");
    expect((await app.inject({ url: "/service-discovery" })).body).toContain("Dropped: dropped by relabel_configs");
  });

  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
  it.each([
    // -httpAuth.username, url, Authorization, status
    ["", "/flags", undefined, 200],
    ["admin", "/flags", basic("admin", "pw"), 200],
    ["admin", "/flags", undefined, 401],
  ] as const)("/flags without -flagsAuthKey: -httpAuth.username=%j %s (%s) → %i", async (username, url, authorization, status) => {
    const metrics = new MetricsRegistry();
    const security = { certs: undefined, guard: new HttpGuard({ username, password: "pw", metricsAuthKey: "" }), failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }) };
    const a = buildApp({ manager, push, metrics, log, maxRequestBytes: 1 << 20, reload: async () => {}, security, flags: { "remoteWrite.url": "http://rw/", flagsAuthKey: "secret" } });
    const r = await a.inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(r.statusCode).toBe(status);
    if (status === 200) expect(r.body).toBe('-remoteWrite.url="http://rw/"\n-flagsAuthKey="secret"\n');
  });
  it.each([
    // url, Authorization, status: -metricsAuthKey overrides -httpAuth.* on /metrics, however the path is spelled
    ["/metrics", basic("admin", "pw"), 401],
    ["/%6detrics", basic("admin", "pw"), 401],
    ["/%6detrics?authKey=mkey", undefined, 200],
  ] as const)("-metricsAuthKey: %s (%s) → %i", async (url, authorization, status) => {
    const metrics = new MetricsRegistry();
    const security = { certs: undefined, guard: new HttpGuard({ username: "admin", password: "pw", metricsAuthKey: "mkey" }), failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }) };
    const a = buildApp({ manager, push, metrics, log, maxRequestBytes: 1 << 20, reload: async () => {}, security });
    const r = await a.inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(r.statusCode).toBe(status);
  });
  it.each([
    // url, Authorization, status
    ["/flags", basic("admin", "pw"), 401],
    ["/flags?authKey=wrong", undefined, 401],
    ["/%66lags", basic("admin", "pw"), 401],
    ["/flags?authKey=fkey", undefined, 200],
    ["/%2D/reload", basic("admin", "pw"), 401],
    ["/-/reload?authKey=rkey", undefined, 200],
    ["/metrics", basic("admin", "pw"), 200],
  ] as const)("-flagsAuthKey and -reloadAuthKey override -httpAuth.*: %s (%s) → %i", async (url, authorization, status) => {
    const metrics = new MetricsRegistry();
    const security = { certs: undefined, guard: new HttpGuard({ username: "admin", password: "pw", metricsAuthKey: "" }), failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }) };
    const a = buildApp({ manager, push, metrics, log, maxRequestBytes: 1 << 20, reload: async () => {}, security, reloadAuthKey: "rkey", flags: {}, flagsAuthKey: "fkey" });
    const r = await a.inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(r.statusCode).toBe(status);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });

  it("a reload with a bad file answers 400 with the reason and keeps the old targets", async () => {
    writeFileSync(cfgPath, "scrape_configs:\n  - job_name: web\n    scrape_intervall: 1s\n");
    const r = await app.inject({ method: "POST", url: "/-/reload" });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain("prometheus.yml:3: scrape_configs[0].scrape_intervall: unknown field");
    expect(manager.activeTargets().map((l) => l.target.url)).toEqual(["http://127.0.0.1:1/metrics"]);
    writeFileSync(cfgPath, `scrape_configs:\n  - job_name: web\n    scrape_interval: 1h\n    static_configs: [{ targets: ["127.0.0.1:3"] }]\n`);
    expect((await app.inject({ method: "POST", url: "/-/reload" })).statusCode).toBe(200);
    expect(manager.activeTargets().map((l) => l.target.url)).toEqual(["http://127.0.0.1:3/metrics"]);
    const m = (await app.inject({ url: "/metrics" })).body;
    expect(m).toContain('strata_agent_target_up{job="web",instance="127.0.0.1:3"');
    expect(m).not.toContain('instance="127.0.0.1:1"');
  });

  it("forwards remote write, JSON lines, Prometheus text (gzip) and Influx pushes", async () => {
    const now = Date.now();
    const rw = await app.inject({
      method: "POST",
      url: "/api/v1/write",
      headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" },
      payload: Buffer.from(remoteWriteBody([{ labels: { __name__: "rw_metric", a: "1" }, samples: [[now, 5]] }])),
    });
    expect(rw.statusCode).toBe(204);
    const jl = await app.inject({ method: "POST", url: "/api/v1/import", payload: `{"metric":{"__name__":"jl_metric","b":"2"},"values":[1,2],"timestamps":[${now},${now + 1000}]}\n` });
    expect(jl.statusCode).toBe(204);
    const pt = await app.inject({ method: "POST", url: "/api/v1/import/prometheus?extra_label=src=gz", headers: { "content-encoding": "gzip" }, payload: gzipSync("pt_metric{c=\"3\"} 7\n") });
    expect(pt.statusCode).toBe(204);
    const inf = await app.inject({ method: "POST", url: "/influx/write?db=d", payload: `cpu,host=h usage=0.5 ${now}000000\n` });
    expect(inf.statusCode).toBe(204);
    await waitUntil("pushed series", () => rcv.series.size === 4);
    expect(rcv.find({ __name__: "rw_metric" })[0]!.samples).toEqual([{ ts: now, value: 5, stale: false }]);
    expect(rcv.find({ __name__: "jl_metric" })[0]!.samples.map((s) => s.value)).toEqual([1, 2]);
    expect(rcv.find({ __name__: "pt_metric" })[0]!.labels).toEqual({ __name__: "pt_metric", c: "3", src: "gz" });
    expect(rcv.find({ __name__: "cpu_usage" })[0]!.labels).toEqual({ __name__: "cpu_usage", host: "h", db: "d" });
  });

  it("rejects bad input whole with a 4xx naming the problem", async () => {
    const bad = await app.inject({ method: "POST", url: "/api/v1/import/prometheus", payload: "ok_metric 1\nbroken{ 2\n" });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain("line 2");
    const csv = await app.inject({ method: "POST", url: "/api/v1/import/csv", payload: "1,2\n" });
    expect(csv.statusCode).toBe(400);
    expect(csv.body).toContain("missing format parameter");
    const rw = await app.inject({ method: "POST", url: "/api/v1/write", headers: { "content-type": "text/plain" }, payload: "x" });
    expect(rw.statusCode).toBe(415);
    const junk = await app.inject({ method: "POST", url: "/api/v1/write", headers: { "content-type": "application/x-protobuf" }, payload: Buffer.from([0xff, 0xff, 0xff]) });
    expect(junk.statusCode).toBe(400);
    const many = await app.inject({ method: "POST", url: "/api/v1/import/prometheus", payload: `m{${Array.from({ length: 12 }, (_, i) => `l${i}="v"`).join(",")}} 1\n` });
    expect(many.statusCode).toBe(400);
    const big = await app.inject({ method: "POST", url: "/api/v1/import/prometheus", payload: Buffer.alloc(2 << 20, 0x20) });
    expect(big.statusCode).toBe(413);
    // Nothing of the rejected requests was forwarded (ok_metric came before the bad line).
    await new Promise((r) => setTimeout(r, 200));
    expect(rcv.find({ __name__: "ok_metric" })).toEqual([]);
  });
});
