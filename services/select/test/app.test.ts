// select's fastify app in process (inject) over real storage nodes: the routes by concern, GET
// and POST form parameters, Prometheus' exact error bytes, the service plugin's probes and
// /metrics, -httpAuth.*, -deleteAuthKey and -flagsAuthKey.
import { connect, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterSelectBackend } from "@strata/cluster";
import { createLogger, MetricsRegistry, type Labels } from "@strata/core";
import { AuthFailures, HttpGuard, type HttpSecurity } from "@strata/httpsec";
import { createEngine } from "@strata/promql";
import { buildApp, type SelectApp, type SelectDeps } from "../src/app.js";
import { labelsJsonIsKept } from "../src/respond.js";
import { keptAnswers } from "../src/routes/metadata.js";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "../../../test/lib/cluster.js";

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const NOW = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
const T = NOW / 1000;
const log = createLogger({ name: "test", level: "silent" });
const config: SelectDeps["config"] = {
  maxQueryDurationMs: 30_000,
  maxConcurrentRequests: 4,
  maxQueueDurationMs: 1_000,
  logSlowQueryDurationMs: 0,
  maxSeries: 10_000,
  maxPointsPerTimeseries: 1_000,
  maxExportSeries: 1_000,
  maxLabelsAPISeries: 1_000,
  maxTagKeys: 1_000,
  maxTagValues: 1_000,
  adminAuthKey: "",
  denyPartialResponse: false,
  cacheTimestampOffsetMs: 300_000,
  disableCache: false,
  latencyOffsetMs: 0,
  lookbackDeltaMs: 300_000,
  maxRequestBodyBytes: 4096,
};

describe.skipIf(!built)(`select app through inject()${built ? "" : " — skipped: services are not built (pnpm build)"}`, () => {
  let c: Cluster;
  let backend: ClusterSelectBackend;
  const apps: SelectApp[] = [];

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1 });
    const series = (tenant: string, name: string, labels: Record<string, string>, v: number) =>
      remoteWrite(c.insertUrl, [{ labels: { __name__: name, ...labels }, samples: [[NOW - 60_000, v], [NOW, v]] }], tenant);
    // (the labels and series calls below cover all time up to `now`)
    expect((await series("0", "up", { job: "api", instance: "a" }, 1)).status).toBe(204);
    expect((await series("0", "up", { job: "db", instance: "b" }, 0)).status).toBe(204);
    expect((await series("5", "doomed", { x: "1" }, 1)).status).toBe(204);
    await forceFlush(c);
    backend = new ClusterSelectBackend({ nodes: c.storage.map((s) => s.selectAddr), replicationFactor: 1, dedupIntervalMs: 0, skipSlowReplicas: true, log, metrics: new MetricsRegistry() });
  }, 120_000);
  afterAll(async () => {
    for (const a of apps) await a.close();
    backend?.close();
    await c?.stop();
  });

  function app(extra: Partial<SelectDeps> = {}): SelectApp {
    const a = buildApp({ backend, engine: createEngine({ lookbackDelta: 300_000 }), config, log, metrics: new MetricsRegistry(), now: () => NOW, flags: { "search.maxSeries": "10000", deleteAuthKey: "secret" }, ...extra });
    apps.push(a);
    return a;
  }

  it("series: writes a label set's JSON once per label set object, the same bytes every time", async () => {
    const set: Labels = [{ name: "__name__", value: "up" }, { name: "job", value: 'a"b' }];
    const stub = Object.create(backend) as ClusterSelectBackend;
    stub.series = () => Promise.resolve({ value: [set], isPartial: false, warnings: [] });
    const a = app({ backend: stub });
    expect(labelsJsonIsKept(set)).toBe(false);
    const url = "/select/0/prometheus/api/v1/series?match[]=up";
    const first = await a.inject({ method: "GET", url });
    expect(first.body).toBe('{"status":"success","isPartial":false,"data":[{"__name__":"up","job":"a\\"b"}]}');
    expect(labelsJsonIsKept(set)).toBe(true);
    expect((await a.inject({ method: "GET", url })).body).toBe(first.body);
  });

  it("labels, label values, metadata: a cached (frozen) list's answer is written once and sent as the same bytes; a new list, a cut or a partial one is written per call", async () => {
    let names: readonly string[] = Object.freeze(["__name__", "job"]);
    let partial = false;
    const stub = Object.create(backend) as ClusterSelectBackend;
    stub.labelNames = () => Promise.resolve({ value: names, isPartial: partial, warnings: partial ? ["node down"] : [] });
    stub.labelValues = () => Promise.resolve({ value: names, isPartial: false, warnings: [] });
    const meta = Object.freeze([{ metricFamilyName: "up", type: "gauge", help: 'a "b"', unit: "" }]);
    stub.metadata = () => Promise.resolve({ value: meta, isPartial: false, warnings: [] });
    const a = app({ backend: stub });
    const get = async (url: string) => {
      const r = await a.inject({ method: "GET", url: `/select/0/prometheus/api/v1/${url}` });
      expect(r.statusCode).toBe(200);
      expect(r.headers["content-type"]).toBe("application/json");
      return r.body;
    };
    const first = names;
    expect(await get("labels")).toBe('{"status":"success","isPartial":false,"data":["__name__","job"]}');
    expect(keptAnswers.labels.has(first)).toBe(true);
    expect(await get("labels")).toBe('{"status":"success","isPartial":false,"data":["__name__","job"]}');
    expect(await get("labels?limit=1")).toBe('{"status":"success","isPartial":false,"data":["__name__"],"warnings":["results truncated due to limit"]}');
    expect(await get("label/job/values")).toBe('{"status":"success","isPartial":false,"data":["__name__","job"]}');
    expect(keptAnswers.labelValues.has(first)).toBe(true);
    expect(await get("metadata")).toBe('{"status":"success","isPartial":false,"data":{"up":[{"type":"gauge","help":"a \\"b\\"","unit":""}]}}');
    expect(keptAnswers.metadata.has(meta)).toBe(true);
    // The cache was invalidated: a new list, new bytes.
    names = Object.freeze(["__name__", "instance", "job"]);
    expect(await get("labels")).toBe('{"status":"success","isPartial":false,"data":["__name__","instance","job"]}');
    // A list that is not the cache's (not frozen) or a partial answer is written and not kept.
    names = ["x"];
    expect(await get("labels")).toBe('{"status":"success","isPartial":false,"data":["x"]}');
    expect(keptAnswers.labels.has(names)).toBe(false);
    names = Object.freeze(["y"]);
    partial = true;
    expect(await get("labels")).toBe('{"status":"success","isPartial":true,"data":["y"],"warnings":["node down"]}');
    expect(keptAnswers.labels.has(names)).toBe(false);
  });

  it("query: GET and POST (form body) give the same bytes, with Prometheus' content type", async () => {
    const a = app();
    const get = await a.inject({ method: "GET", url: `/select/0/prometheus/api/v1/query?query=sum(up)&time=${T}` });
    const post = await a.inject({ method: "POST", url: "/select/0/prometheus/api/v1/query", payload: `query=sum(up)&time=${T}`, headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(get.body).toBe(`{"status":"success","isPartial":false,"data":{"resultType":"vector","result":[{"metric":{},"value":[${T},"1"]}]}}`);
    expect(post.body).toBe(get.body);
    expect(get.headers["content-type"]).toBe("application/json");
  });

  it("query_range streams the matrix", async () => {
    const r = await app().inject({ url: `/select/0/prometheus/api/v1/query_range?query=up&start=${T - 60}&end=${T}&step=60` });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.body).toBe(
      `{"status":"success","isPartial":false,"data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"a","job":"api"},"values":[[${T - 60},"1"],[${T},"1"]]},{"metric":{"__name__":"up","instance":"b","job":"db"},"values":[[${T - 60},"0"],[${T},"0"]]}]}}`,
    );
  });

  // [what, method, url, form body, status, exact body (or pattern)]
  it.each<[string, "GET" | "POST" | "PUT", string, string | undefined, number, string | RegExp]>([
    ["labels", "GET", "/select/0/prometheus/api/v1/labels", undefined, 200, '{"status":"success","isPartial":false,"data":["__name__","instance","job"]}'],
    ["label values", "GET", "/select/0/prometheus/api/v1/label/job/values", undefined, 200, '{"status":"success","isPartial":false,"data":["api","db"]}'],
    ["label values, POST match[]", "POST", "/select/0/prometheus/api/v1/label/job/values", "match[]=up{instance=\"b\"}", 200, '{"status":"success","isPartial":false,"data":["db"]}'],
    ["series", "GET", "/select/0/prometheus/api/v1/series?match[]=up{job=%22api%22}", undefined, 200, '{"status":"success","isPartial":false,"data":[{"__name__":"up","instance":"a","job":"api"}]}'],
    ["another tenant sees none of it", "GET", "/select/7/prometheus/api/v1/labels", undefined, 200, '{"status":"success","isPartial":false,"data":[]}'],
    ["a parse error names the parameter", "GET", "/select/0/prometheus/api/v1/query?query=sum(", undefined, 400, /^\{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:5: parse error: [^"]+"\}$/],
    ["an unknown API path", "GET", "/select/0/prometheus/api/v1/nope", undefined, 404, '{"status":"error","errorType":"not_found","error":"unsupported path \\"/select/0/prometheus/api/v1/nope\\""}'],
    ["the API without its prefix", "GET", "/api/v1/query?query=up", undefined, 404, /the Prometheus API is under \/select\/<accountID\[:projectID\]>\/prometheus\//],
    ["a bad tenant", "GET", "/select/x/prometheus/api/v1/labels", undefined, 400, /"errorType":"bad_data","error":"invalid tenant/],
    ["PUT on query", "PUT", "/select/0/prometheus/api/v1/query?query=up", undefined, 405, /method PUT not allowed/],
    ["delete_series by GET", "GET", "/select/5/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed", undefined, 405, /delete_series takes POST/],
    ["a bad percent-encoding in a label name", "GET", "/select/0/prometheus/api/v1/label/%ZZ/values", undefined, 400, /invalid label name \\"%ZZ\\" in the path: bad percent-encoding/],
    ["a form body over -maxRequestBodySize", "POST", "/select/0/prometheus/api/v1/query", `query=${"1+".repeat(3000)}1`, 413, /^\{"status":"error","errorType":"bad_data","error":"request body exceeds -maxRequestBodySize=4096 bytes"\}$/],
  ])("%s → %i", async (_what, method, url, form, status, body) => {
    const r = await app().inject({ method, url, ...(form === undefined ? {} : { payload: form, headers: { "content-type": "application/x-www-form-urlencoded" } }) });
    expect(r.statusCode, r.body).toBe(status);
    if (typeof body === "string") expect(r.body).toBe(body);
    else expect(r.body).toMatch(body);
    if (status >= 400) expect(r.headers["content-type"]).toBe("application/json");
    if (status === 405) expect(r.headers["allow"]).toMatch(/POST/);
  });

  it("multipart bodies are refused with a message, not ignored", async () => {
    const r = await app().inject({ method: "POST", url: "/select/0/prometheus/api/v1/query", payload: "--b\r\n\r\n--b--\r\n", headers: { "content-type": "multipart/form-data; boundary=b" } });
    expect([r.statusCode, r.json()]).toEqual([400, { status: "error", errorType: "bad_data", error: "multipart/form-data is not supported; send application/x-www-form-urlencoded" }]);
  });

  it("probes and /metrics come from the service plugin; requests are counted by API path", async () => {
    const a = app();
    for (const p of ["/health", "/-/healthy", "/-/ready"]) expect((await a.inject({ url: p })).body).toBe("OK");
    await a.inject({ url: `/select/0/prometheus/api/v1/query?query=up&time=${T}` });
    const m = await a.inject({ url: "/metrics" });
    expect(m.body).toMatch(/^strata_http_requests_total\{path="api\/v1\/query",code="200"\} 1$/m);
    expect(m.body).toMatch(/^strata_select_concurrent_queries 0$/m);
  });

  it("the listener: oversized headers get 431 with connection: close; idle keep-alive sockets live 65 s", async () => {
    const a = app();
    await a.listen({ host: "127.0.0.1", port: 0 });
    expect(a.server.keepAliveTimeout).toBe(65_000);
    const port = (a.server.address() as AddressInfo).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => s.write(`GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`));
      let text = "";
      s.on("data", (d: Buffer) => (text += d.toString()));
      s.on("close", () => resolve(text));
      s.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
  });

  describe("-httpAuth.*, -deleteAuthKey, -flagsAuthKey", () => {
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
    const security: HttpSecurity = {
      certs: undefined,
      guard: new HttpGuard({ username: "ops", password: "pw-Secret", metricsAuthKey: "" }),
      failures: new AuthFailures({ metrics: new MetricsRegistry(), log, counter: "strata_http_auth_failures_total" }),
    };
    const secured = () => app({ security, keys: { delete: "del-Secret", flags: "flags-Secret" }, flags: { "httpAuth.password": "secret", deleteAuthKey: "secret", flagsAuthKey: "secret", "search.maxSeries": "10000" } });

    // [what, method, url, authorization, status]
    it.each<[string, "GET" | "POST", string, string | undefined, number]>([
      ["a query without credentials", "GET", "/select/0/prometheus/api/v1/labels", undefined, 401],
      ["a query with a wrong password", "GET", "/select/0/prometheus/api/v1/labels", basic("ops", "nope"), 401],
      ["a query with the right credentials", "GET", "/select/0/prometheus/api/v1/labels", basic("ops", "pw-Secret"), 200],
      ["/metrics without credentials", "GET", "/metrics", undefined, 401],
      ["/health stays open", "GET", "/health", undefined, 200],
      ["the UI without credentials", "GET", "/select/0/vmui/", undefined, 401],
      ["delete_series with basic auth but no key", "POST", "/select/5/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed", basic("ops", "pw-Secret"), 401],
      ["delete_series with a wrong key", "POST", "/select/5/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed&authKey=nope", undefined, 401],
      ["delete_series percent-encoded, without the key", "POST", "/select/5/prometheus/api/v1/admin/tsdb/delete%5Fseries?match[]=doomed", basic("ops", "pw-Secret"), 401],
      ["delete_series under /delete/ without the key", "POST", "/delete/5/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed", basic("ops", "pw-Secret"), 401],
      ["/flags without the key", "GET", "/flags", basic("ops", "pw-Secret"), 401],
      ["status/flags with a wrong key", "GET", "/select/0/prometheus/api/v1/status/flags?authKey=nope", undefined, 401],
      ["/flags with the key", "GET", "/flags?authKey=flags-Secret", undefined, 200],
      ["status/flags with the key", "GET", "/select/0/prometheus/api/v1/status/flags?authKey=flags-Secret", undefined, 200],
    ])("%s → %i", async (_what, method, url, authorization, status) => {
      const r = await secured().inject({ method, url, headers: authorization === undefined ? {} : { authorization } });
      expect(r.statusCode, r.body).toBe(status);
      if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
    });

    it("delete_series with -deleteAuthKey deletes; the flags pages never show a secret", async () => {
      const a = secured();
      const count = async () => (await a.inject({ url: "/select/5/prometheus/api/v1/series?match[]=doomed", headers: { authorization: basic("ops", "pw-Secret") } })).json<{ data: unknown[] }>().data.length;
      expect(await count()).toBe(1);
      const del = await a.inject({ method: "POST", url: "/select/5/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed&authKey=del-Secret" });
      expect(del.statusCode, del.body).toBe(204);
      expect(await count()).toBe(0);
      for (const url of ["/flags?authKey=flags-Secret", "/select/0/prometheus/api/v1/status/flags?authKey=flags-Secret"]) {
        const body = (await a.inject({ url })).body;
        expect(body).toContain("deleteAuthKey");
        for (const s of ["pw-Secret", "del-Secret", "flags-Secret"]) expect(body).not.toContain(s);
      }
    });
  });
});
