// storage's HTTP app in process (inject) over a real engine in a temp dir: every path, the
// vmstorage answer shapes, per-endpoint keys and -httpAuth.*, readiness.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, MetricsRegistry } from "@strata/core";
import { AuthFailures, HttpGuard } from "@strata/httpsec";
import { Storage } from "@strata/storage";
import { buildHttpApp, type HttpDeps } from "../src/http.js";
import { tempDir } from "../../../test/lib/procs.js";

const dir = tempDir("storage-http");
let storage: Storage;
let ready = true;
const log = createLogger({ name: "test", level: "silent" });
beforeAll(async () => {
  storage = await Storage.open(dir.path, { flushIntervalMs: 3_600_000, diskFlushIntervalMs: 3_600_000 });
});
afterAll(async () => {
  await storage.close();
  dir.remove();
});

function app(extra: Partial<HttpDeps> = {}) {
  return buildHttpApp({ storage, metrics: new MetricsRegistry(), isReady: () => ready, log, ...extra });
}

describe("paths", () => {
  it.each([
    ["GET", "/health", 200, /^OK$/],
    ["GET", "/-/healthy", 200, /^OK$/],
    ["GET", "/-/ready", 200, /^OK$/],
    ["GET", "/metrics", 200, /^strata_storage_\w+ /m],
    ["GET", "/snapshot/list", 200, /^\{"status":"ok","snapshots":\[\]\}\n$/],
    ["POST", "/snapshot/list", 200, /^\{"status":"ok","snapshots":\[\]\}\n$/],
    ["GET", "/snapshot/delete?snapshot=nope", 404, /^\{"status":"error","msg":"cannot find snapshot \\"nope\\""\}\n$/],
    ["GET", "/internal/force_flush", 200, /^$/],
    ["POST", "/internal/force_merge?partition_prefix=2020", 200, /^$/],
    ["GET", "/nope?authKey=x", 404, /^unsupported path "\/nope"\n$/],
  ] as const)("%s %s → %i", async (method, url, status, body) => {
    const r = await app().inject({ method, url });
    expect(r.statusCode, r.body).toBe(status);
    expect(r.body).toMatch(body);
  });

  it("snapshots: create, list, delete_all", async () => {
    const a = app();
    const created = (await a.inject({ url: "/snapshot/create" })).json<{ status: string; snapshot: string }>();
    expect(created.status).toBe("ok");
    expect((await a.inject({ url: "/snapshot/list" })).json()).toEqual({ status: "ok", snapshots: [created.snapshot] });
    expect((await a.inject({ url: "/snapshot/delete_all" })).json()).toEqual({ status: "ok" });
    expect((await a.inject({ url: "/snapshot/list" })).json()).toEqual({ status: "ok", snapshots: [] });
  });

  it("/-/ready is 503 while the node is not ready", async () => {
    ready = false;
    try {
      const r = await app().inject({ url: "/-/ready" });
      expect([r.statusCode, r.body]).toEqual([503, "not ready\n"]);
    } finally {
      ready = true;
    }
  });
});

describe("keys", () => {
  const metrics = new MetricsRegistry();
  const guarded = () =>
    app({
      metrics,
      security: {
        certs: undefined,
        guard: new HttpGuard({ username: "ops", password: "pw", metricsAuthKey: "" }),
        failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }),
      },
      keys: { snapshot: "sk", forceMerge: "mk", forceFlush: "" },
    });
  const basic = { authorization: `Basic ${Buffer.from("ops:pw").toString("base64")}` };
  it.each([
    ["/snapshot/list", {}, 401],
    ["/snapshot/list", basic, 401],
    ["/snapshot/list?authKey=mk", {}, 401],
    ["/snapshot/list?authKey=sk", {}, 200],
    ["/internal/force_merge?authKey=sk", {}, 401],
    ["/internal/force_merge?authKey=mk", {}, 200],
    // No -forceFlushAuthKey: -httpAuth.* decides.
    ["/internal/force_flush", {}, 401],
    ["/internal/force_flush", basic, 200],
    ["/metrics", basic, 200],
    ["/health", {}, 200],
  ] as const)("GET %s %j → %i", async (url, headers, status) => {
    const r = await guarded().inject({ url, headers });
    expect(r.statusCode, r.body).toBe(status);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });
});
