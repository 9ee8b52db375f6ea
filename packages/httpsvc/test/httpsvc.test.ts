import { request } from "node:https";
import type { AddressInfo } from "node:net";
import type { Readable } from "node:stream";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { BadDataError, MetricsRegistry, NotFoundError, PayloadTooLargeError, TooManyRequestsError, UnavailableError, createLogger, defineFlags, displayFlags, flag } from "@strata/core";
import { AuthFailures, CertReloader, HttpGuard, type HttpSecurity } from "@strata/httpsec";
import { PROMETHEUS_ERRORS, createServiceApp, passRawBody, type ServiceAppOptions } from "@strata/httpsvc";
import { makeCa, makeServerCert } from "../../../test/lib/certs.js";
import { requirePeer, tempDir } from "../../../test/lib/procs.js";

function captureLog(level = "info"): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ name: "test", level, destination: dest });
  return { log, lines: () => out.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

function security(metrics: MetricsRegistry, log: ReturnType<typeof createLogger>, opts: { username?: string; password?: string; metricsAuthKey?: string; certs?: CertReloader }): HttpSecurity {
  return {
    certs: opts.certs,
    guard: new HttpGuard({ username: opts.username ?? "", password: opts.password ?? "", metricsAuthKey: opts.metricsAuthKey ?? "" }),
    failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }),
  };
}

function app(extra: Partial<ServiceAppOptions> = {}) {
  const metrics = extra.metrics ?? new MetricsRegistry();
  metrics.counter("test_things_total", "Things.").inc();
  const a = createServiceApp({ log: captureLog().log, metrics, bodyLimit: 100, bodyLimitFlag: "maxRequestSize", ...extra });
  a.post("/echo", async (req, reply) => reply.send(`${Buffer.isBuffer(req.body) ? "buffer" : typeof req.body} ${req.headers["content-type"] ?? "-"} ${(req.body as Buffer | undefined)?.length ?? 0}`));
  a.post("/form", async (req) => (req.body as URLSearchParams).getAll("match[]").join(","));
  const errors = (t: string): Error => {
    switch (t) {
      case "bad":
        return new BadDataError("line 3: bad label name");
      case "busy":
        return new TooManyRequestsError("too many requests in flight");
      case "down":
        return new UnavailableError("no healthy storage node");
      case "gone":
        return new NotFoundError("no such snapshot");
      default:
        return new Error("a bug");
    }
  };
  a.get("/text/:t", async (req) => {
    throw errors((req.params as { t: string }).t);
  });
  a.get("/api/:t", PROMETHEUS_ERRORS, async (req) => {
    throw errors((req.params as { t: string }).t);
  });
  a.post("/api/write", PROMETHEUS_ERRORS, async () => "ok");
  return a;
}

describe("probes and /metrics", () => {
  it.each([
    ["/health", 200, "OK"],
    ["/-/healthy", 200, "OK"],
    ["/-/ready", 200, "OK"],
  ])("GET %s → %i %s", async (url, status, body) => {
    const r = await app().inject({ url });
    expect([r.statusCode, r.body]).toEqual([status, body]);
  });

  it("/-/ready answers 503 with notReady's reason", async () => {
    let why: string | undefined = "no healthy storage node";
    const a = app({ notReady: () => why });
    const r = await a.inject({ url: "/-/ready" });
    expect([r.statusCode, r.body]).toEqual([503, "no healthy storage node\n"]);
    why = undefined;
    expect((await a.inject({ url: "/-/ready" })).statusCode).toBe(200);
  });

  it("/metrics renders the registry and the extra text", async () => {
    const r = await app({ extraMetrics: () => "engine_rows 5\n" }).inject({ url: "/metrics" });
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(r.body).toContain("test_things_total 1\n");
    expect(r.body.endsWith("engine_rows 5\n")).toBe(true);
  });

  it("a path the router cannot decode is a 400, or what onBadUrl throws", async () => {
    const r = await app().inject({ url: "/x/%E0%A4%A/y?authKey=k" });
    expect([r.statusCode, r.body]).toEqual([400, 'cannot decode the request path "/x/%E0%A4%A/y": invalid percent-encoding\n']);
    const named = app({
      onBadUrl: (url) => {
        if (url.startsWith("/x/")) throw new BadDataError("invalid tenant in the path");
      },
    });
    for (const [url, want] of [
      ["/x/%E0%A4%A/y", "invalid tenant in the path\n"],
      ["/z/%E0%A4%A/y", 'cannot decode the request path "/z/%E0%A4%A/y": invalid percent-encoding\n'],
    ] as const) {
      const n = await named.inject({ url });
      expect([n.statusCode, n.body]).toEqual([400, want]);
    }
  });

  it("an unknown path is a 404 naming it (without the query string)", async () => {
    const r = await app().inject({ url: "/nope?authKey=secret" });
    expect([r.statusCode, r.body]).toEqual([404, 'unsupported path "/nope"\n']);
  });
});

describe("errors", () => {
  const f = async (url: string, status: number, body: string, retryAfter?: string): Promise<void> => {
    const r = await app().inject({ url });
    expect([r.statusCode, r.body, r.headers["retry-after"]]).toEqual([status, body, retryAfter]);
  };
  it("maps typed errors to status, plain text by default", async () => {
    await f("/text/bad", 400, "line 3: bad label name\n");
    await f("/text/busy", 429, "too many requests in flight\n", "1");
    await f("/text/down", 503, "no healthy storage node\n", "1");
    await f("/text/gone", 404, "no such snapshot\n");
    await f("/text/bug", 500, "a bug\n");
  });
  it("answers Prometheus' JSON error shape on routes that ask for it", async () => {
    const j = (errorType: string, error: string): string => `${JSON.stringify({ status: "error", errorType, error })}\n`;
    await f("/api/bad", 400, j("bad_data", "line 3: bad label name"));
    await f("/api/busy", 429, j("too_many_requests", "too many requests in flight"), "1");
    await f("/api/down", 503, j("unavailable", "no healthy storage node"), "1");
    await f("/api/bug", 500, j("internal", "a bug"));
    const r = await app().inject({ url: "/api/bad" });
    expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
  });
  it("a body over the limit is a 413 naming the flag, in the route's format", async () => {
    const a = app();
    const big = Buffer.alloc(101);
    const r = await a.inject({ method: "POST", url: "/echo", payload: big, headers: { "content-type": "application/x-protobuf" } });
    expect([r.statusCode, r.body]).toEqual([413, "request body exceeds -maxRequestSize=100 bytes\n"]);
    const p = await a.inject({ method: "POST", url: "/api/write", payload: big, headers: { "content-type": "application/x-protobuf" } });
    expect([p.statusCode, JSON.parse(p.body)]).toEqual([413, { status: "error", errorType: "too_large", error: "request body exceeds -maxRequestSize=100 bytes" }]);
    expect(new PayloadTooLargeError("x").code).toBe("STRATA_BODY_TOO_LARGE");
  });
});

describe("bodies", () => {
  it.each([
    ["application/x-protobuf", "buffer application/x-protobuf 5"],
    ["application/json", "buffer application/json 5"],
    ["text/plain", "buffer text/plain 5"],
    [undefined, "buffer - 5"],
  ])("a %s body arrives as a Buffer", async (ct, want) => {
    const r = await app().inject({ method: "POST", url: "/echo", payload: Buffer.from("12345"), headers: ct === undefined ? {} : { "content-type": ct } });
    expect([r.statusCode, r.body]).toEqual([200, want]);
  });
  it("a form body arrives as URLSearchParams", async () => {
    const r = await app().inject({ method: "POST", url: "/form", payload: "match[]=up&match[]=x%7Ba%3D%22b%22%7D", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect([r.statusCode, r.body]).toEqual([200, 'up,x{a="b"}']);
  });
  it("passRawBody leaves the body to the handler, past the buffered limit", async () => {
    const a = app();
    await a.register(async (scope) => {
      passRawBody(scope);
      scope.post("/stream", async (req) => {
        let n = 0;
        for await (const c of req.raw as Readable) n += (c as Buffer).length;
        return `read ${n}`;
      });
    });
    const r = await a.inject({ method: "POST", url: "/stream", payload: Buffer.alloc(1000), headers: { "content-type": "text/plain" } });
    expect([r.statusCode, r.body]).toEqual([200, "read 1000"]);
  });
});

describe("authentication", () => {
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
  const guarded = () => {
    const metrics = new MetricsRegistry();
    const { log, lines } = captureLog();
    const a = app({
      metrics,
      log,
      security: security(metrics, log, { username: "u", password: "p", metricsAuthKey: "mk" }),
      authKeys: [
        { flag: "snapshotAuthKey", key: "sk", path: "/snapshot/*" },
        { flag: "deleteAuthKey", key: "", path: "/echo" },
      ],
    });
    a.get("/snapshot/list", async () => "snapshots");
    return { a, metrics, lines };
  };
  it.each([
    ["GET", "/health", {}, 200, "OK"],
    ["GET", "/-/ready", {}, 200, "OK"],
    ["POST", "/echo", {}, 401, "missing 'Authorization' request header\n"],
    ["POST", "/echo", { authorization: basic("u", "wrong") }, 401, "wrong username or password\n"],
    ["POST", "/echo", { authorization: "Bearer tok" }, 401, "this endpoint wants basic auth (-httpAuth.username)\n"],
    ["POST", "/echo", { authorization: basic("u", "p") }, 200, "undefined - 0"],
    ["GET", "/metrics", { authorization: basic("u", "p") }, 401, "/metrics wants the authKey query arg (-metricsAuthKey)\n"],
    ["GET", "/metrics?authKey=bad", {}, 401, "wrong authKey for /metrics\n"],
    ["GET", "/snapshot/list", { authorization: basic("u", "p") }, 401, "/snapshot/list wants the authKey query arg (-snapshotAuthKey)\n"],
    ["GET", "/snapshot/list?authKey=nope", {}, 401, "wrong authKey for /snapshot/list\n"],
    ["GET", "/snapshot/list?authKey=sk", {}, 200, "snapshots"],
    ["GET", "/unknown", {}, 401, "missing 'Authorization' request header\n"],
  ] as const)("%s %s %j → %i", async (method, url, headers, status, body) => {
    const { a } = guarded();
    const r = await a.inject({ method, url, headers });
    expect([r.statusCode, r.body]).toEqual([status, body]);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });
  it("counts and logs refusals by reason, never with the key", async () => {
    const { a, metrics, lines } = guarded();
    await a.inject({ url: "/metrics?authKey=leaked" });
    await a.inject({ method: "POST", url: "/echo" });
    const ok = await a.inject({ url: "/metrics?authKey=mk" });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toContain('strata_http_auth_failures_total{reason="invalid_auth_key"} 1');
    expect(ok.body).toContain('strata_http_auth_failures_total{reason="missing_credentials"} 1');
    expect(metrics.render()).not.toContain("leaked");
    expect(JSON.stringify(lines())).not.toContain("leaked");
    expect(lines().filter((l) => l["msg"] === "authentication failed").map((l) => l["path"])).toEqual(["/metrics", "/echo"]);
  });
  it("adds no hook when nothing is guarded", async () => {
    const metrics = new MetricsRegistry();
    const { log } = captureLog();
    const a = app({ metrics, log, security: security(metrics, log, {}), authKeys: [{ flag: "snapshotAuthKey", key: "", path: "/snapshot/*" }] });
    expect((await a.inject({ method: "POST", url: "/echo" })).statusCode).toBe(200);
    expect((await a.inject({ url: "/metrics" })).statusCode).toBe(200);
  });
});

describe("/flags (flagsPage)", () => {
  const specs = defineFlags({
    httpListenAddr: flag.string(":8480", "listen"),
    "httpAuth.password": flag.string("", "password"),
    flagsAuthKey: flag.string("", "key"),
  });
  const shown = displayFlags(specs, { httpListenAddr: "127.0.0.1:1", "httpAuth.password": "hunter2", flagsAuthKey: "fk" });
  const page = '-flagsAuthKey="secret"\n-httpAuth.password="secret"\n-httpListenAddr="127.0.0.1:1"\n';
  const basic = `Basic ${Buffer.from("u:hunter2").toString("base64")}`;
  const withKey = (username: string) => {
    const metrics = new MetricsRegistry();
    const { log } = captureLog();
    return app({ metrics, log, security: security(metrics, log, { username, password: "hunter2" }), flagsPage: { shown, authKey: "fk" } });
  };

  it("lists every flag, secrets hidden; open without a key or -httpAuth.*", async () => {
    const r = await app({ flagsPage: { shown, authKey: "" } }).inject({ url: "/flags" });
    expect([r.statusCode, r.headers["content-type"], r.body]).toEqual([200, "text/plain; charset=utf-8", page]);
    expect(r.body).not.toMatch(/hunter2|fk"/);
  });
  it("is not served without flagsPage", async () => {
    expect((await app().inject({ url: "/flags" })).statusCode).toBe(404);
  });
  it.each([
    // -httpAuth.username, url, Authorization, status, body
    ["", "/flags", undefined, 401, "/flags wants the authKey query arg (-flagsAuthKey)\n"],
    ["", "/flags?authKey=", undefined, 401, "/flags wants the authKey query arg (-flagsAuthKey)\n"],
    ["", "/flags?authKey=nope", undefined, 401, "wrong authKey for /flags\n"],
    ["", "/%66lags?authKey=nope", undefined, 401, "wrong authKey for /flags\n"],
    ["", "/flags?authKey=fk", undefined, 200, page],
    // The key overrides -httpAuth.* on /flags: basic auth alone does not open it, the key does.
    ["u", "/flags", basic, 401, "/flags wants the authKey query arg (-flagsAuthKey)\n"],
    ["u", "/flags?authKey=fk", undefined, 200, page],
    ["u", "/metrics", basic, 200, undefined],
  ] as const)("-httpAuth.username=%j %s (Authorization %s) → %i", async (username, url, authorization, status, body) => {
    const r = await withKey(username).inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(r.statusCode).toBe(status);
    if (body !== undefined) expect(r.body).toBe(body);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });
});

describe("access log", () => {
  it("logs one debug line per request when the level is debug, none otherwise", async () => {
    const debug = captureLog("debug");
    await app({ log: debug.log }).inject({ url: "/health?x=1" });
    const line = debug.lines().find((l) => l["msg"] === "http request");
    expect(line).toMatchObject({ method: "GET", url: "/health?x=1", status: 200 });
    const info = captureLog("info");
    await app({ log: info.log }).inject({ url: "/health" });
    expect(info.lines().filter((l) => l["msg"] === "http request")).toEqual([]);
  });
});

const dir = tempDir("httpsvc");
afterAll(() => dir.remove());

describe("TLS", () => {
  it.skipIf(!requirePeer("openssl", "openssl"))("listens with HTTPS and the guard when security carries certificates", async () => {
    const ca = makeCa(dir.path, "ca");
    const c = makeServerCert(dir.path, "srv", ca);
    const metrics = new MetricsRegistry();
    const { log } = captureLog();
    const certs = new CertReloader({ flags: { enabled: true, certFile: c.certFile, keyFile: c.keyFile, minVersion: "TLS12", cipherSuites: [] }, log, metrics });
    const a = app({ metrics, log, security: security(metrics, log, { username: "u", password: "p", certs }) });
    await a.listen({ port: 0, host: "127.0.0.1" });
    try {
      const port = (a.server.address() as AddressInfo).port;
      const get = (auth?: string): Promise<number> =>
        new Promise((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port, path: "/echo", method: "POST", ca: ca.certPem, servername: "localhost", headers: auth === undefined ? {} : { authorization: auth } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        });
      expect(await get()).toBe(401);
      expect(await get(`Basic ${Buffer.from("u:p").toString("base64")}`)).toBe(200);
    } finally {
      await a.close();
    }
  });
});
