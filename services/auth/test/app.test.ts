// strata-auth's app through inject(): authentication, routing, headers, limits, retries and the
// service endpoints, in front of echo backends listening on loopback.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MetricsRegistry, createLogger } from "@strata/core";
import { AuthFailures, HttpGuard } from "@strata/httpsec";
import { AuthProxy, parseAuthConfig } from "@strata/proxy";
import { buildApp } from "../src/app.js";

interface Echo {
  name: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
}

type Behaviour = "ok" | "503" | "slow";

async function echoServer(name: string, behaviour: () => Behaviour): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits++;
    const h = createHash("sha256");
    let n = 0;
    req.on("data", (d: Buffer) => {
      n += d.length;
      h.update(d);
    });
    req.on("end", () => {
      const b = behaviour();
      const send = (): void => {
        res.writeHead(b === "503" ? 503 : 200, { "content-type": "application/json", "x-backend": name, "keep-alive": "timeout=5", "x-hop": "1", connection: "x-hop" });
        res.end(JSON.stringify({ name, url: req.url, method: req.method, headers: req.headers, bodyBytes: n, bodySha256: h.digest("hex") }));
      };
      if (b === "slow") setTimeout(send, 300);
      else send();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port, hits: () => hits };
}

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

/** The app over `proxy`, with `guard` on its own endpoints. */
function appFor(proxy: AuthProxy, metrics: MetricsRegistry, log: ReturnType<typeof createLogger>, guard: HttpGuard, reload: () => string | undefined): ReturnType<typeof buildApp> {
  const failures = new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" });
  return buildApp({ proxy, metrics, log, security: { certs: undefined, guard, failures }, reloadAuthKey: "", reload });
}

/** The proxy options of these tests: the flags' defaults, no queueing (429 at once). */
function proxyOptions(metrics: MetricsRegistry, log: ReturnType<typeof createLogger>, failTimeoutMs: number): ConstructorParameters<typeof AuthProxy>[1] {
  return {
    log,
    metrics,
    file: "auth.yml",
    loadBalancingPolicy: "least_loaded",
    retryStatusCodes: [],
    failTimeoutMs,
    maxConcurrentPerUserRequests: 300,
    maxConcurrentRequests: 1000,
    maxQueueDurationMs: 0,
    maxRequestBodySizeToRetry: 16 * 1024,
    responseTimeoutMs: 10_000,
    maxIdleConnsPerBackend: 10,
    removeXff: false,
  };
}

describe("strata-auth app", () => {
  let a: Awaited<ReturnType<typeof echoServer>>;
  let b: Awaited<ReturnType<typeof echoServer>>;
  let bad: Awaited<ReturnType<typeof echoServer>>;
  let deadPort = 0;
  let bBehaviour: Behaviour = "ok";
  const metrics = new MetricsRegistry();
  const log = createLogger({ name: "auth-test", level: "silent" });
  let proxy: AuthProxy;
  let app: ReturnType<typeof buildApp>;
  let configText = "";
  let reloadError: string | undefined;

  const config = (): string => `
users:
  - username: alice
    password: secret
    url_prefix: http://127.0.0.1:${a.port}/select/42/prometheus?extra_label=team%3Da
    headers: ["X-Scope-OrgID: 42", "User-Agent:"]
    response_headers: ["X-Served-By: strata-auth"]
  - name: writer
    bearer_token: tok-42
    url_map:
      - src_paths: ["/insert/42/.+", "/select/42/.+"]
        url_prefix: [http://127.0.0.1:${a.port}, http://127.0.0.1:${b.port}]
        retry_status_codes: [503]
      - src_paths: ["/dropped/.*"]
        drop_src_path_prefix_parts: 1
        url_prefix: http://127.0.0.1:${a.port}/kept
  - username: failover
    password: x
    url_prefix: [http://127.0.0.1:${deadPort}, http://127.0.0.1:${b.port}]
    load_balancing_policy: first_available
  - username: stuck
    password: x
    url_prefix: http://127.0.0.1:${bad.port}
    retry_status_codes: [503]
  - username: one
    password: x
    max_concurrent_requests: 1
    url_prefix: http://127.0.0.1:${b.port}
`;

  beforeAll(async () => {
    a = await echoServer("a", () => "ok");
    b = await echoServer("b", () => bBehaviour);
    bad = await echoServer("bad", () => "503");
    const dead = await echoServer("dead", () => "ok");
    deadPort = dead.port;
    dead.server.close();
    configText = config();
    proxy = new AuthProxy(parseAuthConfig(configText, "auth.yml"), proxyOptions(metrics, log, 60_000));
    app = appFor(proxy, metrics, log, new HttpGuard({ username: "admin", password: "adminpw", metricsAuthKey: "mkey" }), () => {
      try {
        proxy.reload(parseAuthConfig(configText, "auth.yml"));
        reloadError = undefined;
      } catch (err) {
        reloadError = (err as Error).message;
      }
      return reloadError;
    });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    proxy.close();
    for (const s of [a, b, bad]) s.server.close();
  });

  const get = async (url: string, headers: Record<string, string> = {}): Promise<{ status: number; echo: Echo; headers: Record<string, unknown>; body: string }> => {
    const r = await app.inject({ method: "GET", url, headers });
    let echo = {} as Echo;
    try {
      echo = JSON.parse(r.body) as Echo;
    } catch {
      // not an echo
    }
    return { status: r.statusCode, echo, headers: r.headers, body: r.body };
  };

  it.each([
    ["no credentials", {}, "missing 'Authorization' request header", "missing_credentials"],
    ["a wrong password", { authorization: basic("alice", "nope") }, "Unauthorized", "invalid_auth_token"],
    ["an unknown token", { authorization: "Bearer tok-1" }, "Unauthorized", "invalid_auth_token"],
    ["malformed basic auth", { authorization: "Basic ***" }, "Unauthorized: Basic credentials are not base64", "malformed_credentials"],
  ])("refuses %s with 401 and WWW-Authenticate, counted by reason", async (_what, headers, msg, reason) => {
    const before = metrics.render().match(new RegExp(`vmauth_http_request_errors_total\\{reason="${reason}"\\} (\\d+)`))?.[1] ?? "0";
    const r = await get("/api/v1/query?query=up", headers);
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
    expect(r.body.trim()).toBe(msg);
    expect(metrics.render()).toContain(`vmauth_http_request_errors_total{reason="${reason}"} ${Number(before) + 1}`);
  });

  it("proxies a user under its url_prefix with its headers, query args and response headers", async () => {
    const r = await get("/api/v1/query?query=up&extra_label=team%3Db", { authorization: basic("alice", "secret"), "x-forwarded-for": "10.1.1.1", connection: "x-secret", "x-secret": "1", "user-agent": "curl" });
    expect(r.status).toBe(200);
    expect(r.echo.name).toBe("a");
    // url_prefix's extra_label wins over the client's.
    expect(r.echo.url).toBe("/select/42/prometheus/api/v1/query?extra_label=team%3Da&query=up");
    expect(r.echo.headers["x-scope-orgid"]).toBe("42");
    expect(r.echo.headers["user-agent"]).toBeUndefined();
    expect(r.echo.headers["x-secret"]).toBeUndefined();
    expect(r.echo.headers["host"]).toBe(`127.0.0.1:${a.port}`);
    expect(r.echo.headers["x-forwarded-for"]).toBe("10.1.1.1, 127.0.0.1");
    expect(r.headers["x-served-by"]).toBe("strata-auth");
    expect(r.headers["x-hop"]).toBeUndefined();
  });

  it.each([
    ["/../../select/1/prometheus/api/v1/labels", "/select/42/prometheus/select/1/prometheus/api/v1/labels"],
    ["/%2e%2e/%2e%2e/select/1/x", "/select/42/prometheus/select/1/x"],
    ["/..%2F..%2F1/x", "/select/42/prometheus/1/x"],
  ])("keeps %s under the user's tenant", async (path, want) => {
    const r = await get(path, { authorization: basic("alice", "secret") });
    expect(r.status).toBe(200);
    expect(r.echo.url.split("?")[0]).toBe(want);
  });

  it.each([
    ["/a%zz", {}, 401, "missing 'Authorization' request header"],
    ["/a%zz", { authorization: basic("alice", "secret") }, 400, 'bad request target: invalid percent-encoding "%zz" at byte 2 of the request path'],
    ["/a%00", { authorization: basic("alice", "secret") }, 400, "bad request target: control character 0x00 in the request path"],
    ["/a%C3%28", { authorization: basic("alice", "secret") }, 400, "bad request target: the request path is not valid UTF-8 once percent-decoded"],
  ])("answers %s (%j) with %i after authentication", async (path, headers, status, msg) => {
    const r = await get(path, headers);
    expect(r.status).toBe(status);
    expect(r.body.trim()).toBe(msg);
  });

  it("routes by url_map and answers 400 for a path no entry matches", async () => {
    const auth = { authorization: "Bearer tok-42" };
    expect((await get("/insert/42/prometheus/api/v1/import", auth)).echo.url).toBe("/insert/42/prometheus/api/v1/import");
    // A bearer token also works as a basic auth username with an empty password (vmauth).
    expect((await get("/select/42/prometheus/api/v1/labels", { authorization: basic("tok-42", "") })).status).toBe(200);
    expect((await get("/dropped/x/y", auth)).echo.url).toBe("/kept/x/y");
    for (const path of ["/select/1/prometheus/api/v1/labels", "/select/42/../1/prometheus/api/v1/labels", "/select/42%2F..%2F1/prometheus/api/v1/labels", "/select/042/x", "/select/42:0/x"]) {
      const r = await get(path, auth);
      expect(r.status, path).toBe(400);
      expect(r.body).toMatch(/^missing route for "\/select\/(1|042|42:0)\//);
    }
  });

  it("spreads requests over a url_prefix list (least_loaded)", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await get("/select/42/x", { authorization: "Bearer tok-42" })).echo.name);
    expect(seen).toEqual(new Set(["a", "b"]));
  });

  it("streams a POST body through unchanged", async () => {
    const body = Buffer.alloc(300_000, 7);
    const r = await app.inject({ method: "POST", url: "/insert/42/prometheus/api/v1/write", headers: { authorization: "Bearer tok-42", "content-type": "application/x-protobuf" }, payload: body });
    const echo = JSON.parse(r.body) as Echo;
    expect(echo.bodyBytes).toBe(body.length);
    expect(echo.bodySha256).toBe(createHash("sha256").update(body).digest("hex"));
  });

  it("retries on another backend for retry_status_codes", async () => {
    bBehaviour = "503";
    try {
      for (let i = 0; i < 4; i++) {
        const r = await app.inject({ method: "POST", url: "/insert/42/prometheus/api/v1/import", headers: { authorization: "Bearer tok-42" }, payload: "m 1\n" });
        expect(r.statusCode).toBe(200);
        expect((JSON.parse(r.body) as Echo).name).toBe("a");
      }
    } finally {
      bBehaviour = "ok";
    }
    // All backends answering a retry status: 502 naming the user.
    const r = await get("/x", { authorization: basic("stuck", "x") });
    expect(r.status).toBe(502);
    expect(r.body).toContain('all the 1 backends for the user "stuck" are unavailable');
  });

  it("skips a backend that refuses connections (first_available)", async () => {
    const before = b.hits();
    for (let i = 0; i < 3; i++) {
      const r = await get("/api/v1/labels", { authorization: basic("failover", "x") });
      expect(r.status).toBe(200);
      expect(r.echo.name).toBe("b");
    }
    expect(b.hits() - before).toBe(3);
    expect(metrics.render()).toMatch(/vmauth_user_request_backend_errors_total\{username="failover"\} 1\n/);
  });

  it("answers 429 past max_concurrent_requests", async () => {
    bBehaviour = "slow";
    try {
      const auth = { authorization: basic("one", "x") };
      const [r1, r2] = await Promise.all([get("/slow", auth), get("/slow", auth)]);
      expect([r1.status, r2.status].sort()).toEqual([200, 429]);
      const refused = r1.status === 429 ? r1 : r2;
      expect(refused.headers["retry-after"]).toBe("10");
      expect(refused.body).toContain('user "one" has 1 requests in flight (max_concurrent_requests)');
    } finally {
      bBehaviour = "ok";
    }
  });

  it("guards /metrics with -metricsAuthKey and /-/reload with -httpAuth.*", async () => {
    expect((await get("/health")).status).toBe(200);
    expect((await get("/metrics")).status).toBe(401);
    const m = await get("/metrics?authKey=mkey");
    expect(m.status).toBe(200);
    expect(m.body).toContain('vmauth_user_requests_total{username="alice"}');
    expect(m.body).not.toContain("secret");
    expect(m.body).not.toContain("tok-42");
    expect((await get("/-/reload")).status).toBe(401);
    expect((await get("/-/reload", { authorization: basic("admin", "adminpw") })).status).toBe(200);
    expect(metrics.render()).toContain('strata_http_auth_failures_total{reason="invalid_auth_key"} 1');
    expect(metrics.render()).toContain('strata_http_auth_failures_total{reason="missing_credentials"} 1');
  });

  it("keeps the old config when a reload brings a bad one", async () => {
    const good = configText;
    configText = `${good}\n  - username: alice\n    password: other\n    url_prefix: http://127.0.0.1:1\n`;
    try {
      const r = await get("/-/reload", { authorization: basic("admin", "adminpw") });
      expect(r.status).toBe(400);
      expect(r.body).toContain('user name "alice" repeats the user at line 3');
      expect((await get("/api/v1/labels", { authorization: basic("alice", "secret") })).status).toBe(200);
    } finally {
      configText = good;
    }
    // A good reload replaces users: the failover user is gone after this one.
    configText = good.replace("username: failover", "username: failover2");
    try {
      expect((await get("/-/reload", { authorization: basic("admin", "adminpw") })).status).toBe(200);
      expect((await get("/api/v1/labels", { authorization: basic("failover", "x") })).status).toBe(401);
      expect((await get("/api/v1/labels", { authorization: basic("failover2", "x") })).status).toBe(200);
      // The gone user's series left /metrics; the others kept counting.
      expect(metrics.render()).not.toContain('username="failover"}');
      expect(metrics.render()).toMatch(/vmauth_user_requests_total\{username="alice"\} [1-9]/);
    } finally {
      configText = good;
      await get("/-/reload", { authorization: basic("admin", "adminpw") });
    }
  });
});

describe("strata-auth app with unauthorized_user", () => {
  let backend: Awaited<ReturnType<typeof echoServer>>;
  let proxy: AuthProxy;
  let app: ReturnType<typeof buildApp>;
  const metrics = new MetricsRegistry();
  const log = createLogger({ name: "auth-test", level: "silent" });

  beforeAll(async () => {
    backend = await echoServer("public", () => "ok");
    const text = `
users:
  - username: admin
    password: pw
    url_prefix: http://127.0.0.1:${backend.port}/select/1/prometheus
unauthorized_user:
  url_map:
    - src_paths: ["/api/v1/(query|labels)"]
      url_prefix: http://127.0.0.1:${backend.port}/select/0/prometheus
`;
    proxy = new AuthProxy(parseAuthConfig(text, "auth.yml"), proxyOptions(metrics, log, 3000));
    app = appFor(proxy, metrics, log, new HttpGuard({ username: "", password: "", metricsAuthKey: "" }), () => undefined);
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    proxy.close();
    backend.server.close();
  });

  it("serves requests without or with unknown credentials as unauthorized_user, known users as themselves", async () => {
    const url = async (path: string, headers: Record<string, string> = {}): Promise<string | number> => {
      const r = await app.inject({ method: "GET", url: path, headers });
      return r.statusCode === 200 ? (JSON.parse(r.body) as Echo).url : r.statusCode;
    };
    expect(await url("/api/v1/query?query=up")).toBe("/select/0/prometheus/api/v1/query?query=up");
    expect(await url("/api/v1/labels", { authorization: basic("admin", "wrong") })).toBe("/select/0/prometheus/api/v1/labels");
    expect(await url("/api/v1/labels", { authorization: basic("admin", "pw") })).toBe("/select/1/prometheus/api/v1/labels");
    // A path unauthorized_user has no route for asks for credentials (users exist).
    const r = await app.inject({ method: "GET", url: "/api/v1/series" });
    expect(r.statusCode).toBe(401);
    expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
    expect(metrics.render()).toContain("vmauth_unauthorized_user_requests_total 3");
  });
});

describe("strata-auth streams bodies", () => {
  // The backend and the client wait for each other's first half: a proxy that buffered a whole
  // body would never deliver the first half alone, and the test would fail on its guard timeout.
  let backend: Server;
  let proxy: AuthProxy;
  let app: ReturnType<typeof buildApp>;
  let appPort = 0;
  let gotFirstRequestHalf: () => void = () => undefined;
  let sendSecondResponseHalf: () => void = () => undefined;
  const metrics = new MetricsRegistry();
  const log = createLogger({ name: "auth-test", level: "silent" });

  beforeAll(async () => {
    backend = createServer((req, res) => {
      if (req.method === "POST") {
        let n = 0;
        req.on("data", (d: Buffer) => {
          n += d.length;
          if (n >= 64 * 1024) gotFirstRequestHalf();
        });
        req.on("end", () => res.end(String(n)));
        return;
      }
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first half;");
      sendSecondResponseHalf = () => res.end("second half");
    });
    backend.listen(0, "127.0.0.1");
    await once(backend, "listening");
    const port = (backend.address() as AddressInfo).port;
    proxy = new AuthProxy(parseAuthConfig(`users:\n  - username: s\n    password: s\n    url_prefix: http://127.0.0.1:${port}\n`, "auth.yml"), proxyOptions(metrics, log, 3000));
    app = appFor(proxy, metrics, log, new HttpGuard({ username: "", password: "", metricsAuthKey: "" }), () => undefined);
    await app.listen({ port: 0, host: "127.0.0.1" });
    appPort = (app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await app.close();
    proxy.close();
    backend.close();
  });

  const guard = <T>(p: Promise<T>, what: string): Promise<T> =>
    Promise.race([p, new Promise<T>((_r, rej) => setTimeout(() => rej(new Error(`${what} never arrived: the body was buffered`)), 10_000))]);

  it("passes the first part of an answer on before the backend has finished it", async () => {
    const res = await guard(
      new Promise<IncomingMessage>((resolve, reject) => {
        const r = httpRequest({ host: "127.0.0.1", port: appPort, path: "/stream", headers: { authorization: basic("s", "s") } }, resolve);
        r.on("error", reject);
        r.end();
      }),
      "the response head",
    );
    const first = await guard(new Promise<string>((resolve) => res.once("data", (d: Buffer) => resolve(d.toString()))), "the first half");
    expect(first).toBe("first half;");
    let rest = "";
    res.on("data", (d: Buffer) => (rest += d.toString()));
    sendSecondResponseHalf();
    await once(res, "end");
    expect(rest).toBe("second half");
  });

  it("passes the first part of a request body on before the client has sent it all", async () => {
    const firstHalf = new Promise<void>((resolve) => (gotFirstRequestHalf = resolve));
    const answer = new Promise<string>((resolve, reject) => {
      const r = httpRequest({ host: "127.0.0.1", port: appPort, method: "POST", path: "/upload", headers: { authorization: basic("s", "s"), "transfer-encoding": "chunked" } }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve(body));
      });
      r.on("error", reject);
      r.write(Buffer.alloc(64 * 1024, 1));
      void guard(firstHalf, "the first half of the request body").then(
        () => r.end(Buffer.alloc(64 * 1024, 2)),
        (err: unknown) => reject(err),
      );
    });
    expect(await answer).toBe(String(128 * 1024));
  });
});
