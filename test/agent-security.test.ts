import { readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBuilt, startAgent, type AgentProc } from "./lib/agent.js";
import { basicAuth, rawRequest } from "./lib/auth.js";
import { makeCa, makeClientCert, makeServerCert, type TestCa, type TestCert } from "./lib/certs.js";
import { freePort, requirePeer, serviceMain, startProcess, tempDir, type Proc } from "./lib/procs.js";
import { startReceiver, waitUntil, type Receiver } from "./lib/rw-receiver.js";

/**
 * strata-agent's outgoing calls and its own listener, against loopback servers the test makes
 * with certificates from a CA made at test time (openssl):
 * - scraping through tls_config (CA, client certificate, server_name, insecure_skip_verify),
 *   basic_auth, authorization and proxy_url (an HTTP proxy: absolute-URL GET for http://
 *   targets, CONNECT for https:// ones); a target whose CA is not trusted is down;
 * - remote write over TLS with -remoteWrite.tlsCAFile, -remoteWrite.basicAuth.* and
 *   -remoteWrite.bearerToken (per URL, by position);
 * - the agent's listener with -tls, -tlsMinVersion, -httpAuth.*, -metricsAuthKey, -reloadAuthKey;
 * - -promscrape.cluster.*: two agents split the targets (RF=1) or both scrape each (RF=2).
 */

const built = agentBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("openssl", "openssl");

interface Exporter {
  readonly addr: string;
  scrapes: number;
  refused: number;
  close(): Promise<void>;
}

/** An exporter serving `sec_test{exporter="<name>"} 1`, 401 unless `authorization` matches. */
async function startExporter(name: string, opts: { tls?: TestCert; clientCa?: TestCa; authorization?: string }): Promise<Exporter> {
  const port = await freePort();
  const e: Exporter = { addr: `127.0.0.1:${port}`, scrapes: 0, refused: 0, close: async () => undefined };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.authorization !== undefined && req.headers.authorization !== opts.authorization) {
      e.refused++;
      res.writeHead(401);
      res.end("wrong credentials");
      return;
    }
    e.scrapes++;
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(`# TYPE sec_test gauge\nsec_test{exporter="${name}"} 1\n`);
  };
  const t = opts.tls;
  const server: Server =
    t === undefined
      ? createHttpServer(handler)
      : createHttpsServer(
          { cert: readFileSync(t.certFile), key: readFileSync(t.keyFile), ...(opts.clientCa !== undefined ? { ca: opts.clientCa.certPem, requestCert: true, rejectUnauthorized: true } : {}) },
          handler,
        );
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  e.close = () => new Promise((r) => server.close(() => r()));
  return e;
}

/** An HTTP proxy wanting Proxy-Authorization: absolute-URL requests are forwarded, CONNECT tunnels opened. */
async function startHttpProxy(authorization: string): Promise<{ addr: string; gets: string[]; connects: string[]; close(): Promise<void> }> {
  const port = await freePort();
  const gets: string[] = [];
  const connects: string[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    if (req.headers["proxy-authorization"] !== authorization) {
      res.writeHead(407);
      res.end();
      return;
    }
    gets.push(req.url ?? "");
    const u = new URL(req.url ?? "");
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    const up = httpRequest({ host: u.hostname, port: Number(u.port), path: `${u.pathname}${u.search}`, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    if (req.headers["proxy-authorization"] !== authorization) {
      client.end("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
      return;
    }
    connects.push(req.url ?? "");
    const [host, p] = (req.url ?? "").split(":");
    const up = connect(Number(p), host!, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      up.pipe(client).pipe(up);
    });
    sockets.add(up);
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  return {
    addr: `127.0.0.1:${port}`,
    gets,
    connects,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface TargetsJson {
  data: { activeTargets: { labels: Record<string, string>; scrapePool: string; health: string; lastError: string; scrapeUrl: string }[] };
}

describe.skipIf(!available)("strata-agent: TLS, auth and proxies on its outgoing calls and its listener; cluster sharding", () => {
  const dir = tempDir("agent-sec");
  const cleanups: (() => Promise<unknown>)[] = [];
  let ca: TestCa;
  let otherCa: TestCa;
  let loopbackCert: TestCert;
  let namedCert: TestCert;
  let selfSigned: TestCert;
  let clientCert: TestCert;

  beforeAll(() => {
    ca = makeCa(dir.path, "agent-test-ca");
    otherCa = makeCa(dir.path, "other-ca");
    loopbackCert = makeServerCert(dir.path, "loopback", ca);
    // Valid only for a name the target's address does not have: verification needs server_name.
    namedCert = makeServerCert(dir.path, "named", ca, "DNS:metrics.internal");
    selfSigned = makeServerCert(dir.path, "self", otherCa);
    clientCert = makeClientCert(dir.path, "agent-client", ca);
  });
  afterAll(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => undefined);
    dir.remove();
  });

  it("scrapes through tls_config, basic_auth, authorization and proxy_url, and writes over TLS with basic auth and a bearer token", async () => {
    const mtls = await startExporter("mtls", { tls: namedCert, clientCa: ca, authorization: basicAuth("scraper", "pw-a") });
    const insecure = await startExporter("insecure", { tls: selfSigned, authorization: "Bearer tok-b" });
    const tunneled = await startExporter("tunneled", { tls: loopbackCert });
    const plain = await startExporter("plain", {});
    const proxy = await startHttpProxy(basicAuth("proxyuser", "proxypw"));
    cleanups.push(mtls.close, insecure.close, tunneled.close, plain.close, proxy.close);
    const proxyUrl = `http://proxyuser:proxypw@${proxy.addr}`;
    const caFile = ca.certFile;
    const cfg = join(dir.path, "tls.yml");
    writeFileSync(
      cfg,
      `global: { scrape_interval: 1s }
scrape_configs:
  - job_name: mtls
    scheme: https
    basic_auth: { username: scraper, password: pw-a }
    tls_config: { ca_file: ${caFile}, cert_file: ${clientCert.certFile}, key_file: ${clientCert.keyFile}, server_name: metrics.internal }
    static_configs: [{ targets: ["${mtls.addr}"] }]
  - job_name: insecure
    scheme: https
    authorization: { credentials: tok-b }
    tls_config: { insecure_skip_verify: true }
    static_configs: [{ targets: ["${insecure.addr}"] }]
  - job_name: proxied_https
    scheme: https
    proxy_url: ${proxyUrl}
    tls_config: { ca_file: ${caFile} }
    static_configs: [{ targets: ["${tunneled.addr}"] }]
  - job_name: proxied_http
    proxy_url: ${proxyUrl}
    static_configs: [{ targets: ["${plain.addr}"] }]
  - job_name: untrusted
    scheme: https
    tls_config: { ca_file: ${otherCa.certFile} }
    static_configs: [{ targets: ["${tunneled.addr}"] }]
  - job_name: no_server_name
    scheme: https
    tls_config: { ca_file: ${caFile}, cert_file: ${clientCert.certFile}, key_file: ${clientCert.keyFile} }
    basic_auth: { username: scraper, password: pw-a }
    static_configs: [{ targets: ["${mtls.addr}"] }]
`,
    );
    const pem = { cert: readFileSync(loopbackCert.certFile, "utf8"), key: readFileSync(loopbackCert.keyFile, "utf8") };
    const basicRcv: Receiver = await startReceiver({ tls: pem, authorization: basicAuth("rw-user", "rw-pw") });
    const bearerRcv: Receiver = await startReceiver({ tls: pem, authorization: "Bearer rw-token" });
    cleanups.push(basicRcv.close, bearerRcv.close);
    writeFileSync(join(dir.path, "rw-pw"), "rw-pw\n");
    const agent: AgentProc = await startAgent([
      `-promscrape.config=${cfg}`,
      `-remoteWrite.url=${basicRcv.url}`,
      `-remoteWrite.url=${bearerRcv.url}`,
      // One value applies to every URL; by position otherwise (an empty value: none for that URL).
      `-remoteWrite.tlsCAFile=${caFile}`,
      "-remoteWrite.basicAuth.username=rw-user,",
      `-remoteWrite.basicAuth.password=file://${join(dir.path, "rw-pw")},`,
      "-remoteWrite.bearerToken=,rw-token",
      "-remoteWrite.flushInterval=100ms",
      `-remoteWrite.tmpDataPath=${join(dir.path, "q-tls")}`,
    ]);
    cleanups.push(() => agent.proc.stop());

    const targets = async (): Promise<Map<string, { health: string; lastError: string }>> => {
      const j = (await (await fetch(`${agent.url}/api/v1/targets`)).json()) as TargetsJson;
      return new Map(j.data.activeTargets.map((t) => [t.scrapePool, { health: t.health, lastError: t.lastError }]));
    };
    await waitUntil("every target scraped once", async () => [...(await targets()).values()].every((t) => t.health !== "unknown"), 30_000);
    const t = await targets();
    for (const job of ["mtls", "insecure", "proxied_https", "proxied_http"]) expect({ job, ...t.get(job) }).toEqual({ job, health: "up", lastError: "" });
    expect(t.get("untrusted")?.health).toBe("down");
    expect(t.get("untrusted")?.lastError).toMatch(/certificate/i);
    expect(t.get("no_server_name")?.health).toBe("down");
    expect(t.get("no_server_name")?.lastError).toMatch(/altnames|certificate|IP/i);
    expect(mtls.refused + insecure.refused).toBe(0);
    expect(proxy.connects).toContain(tunneled.addr);
    expect(proxy.gets.some((u) => u.startsWith(`http://${plain.addr}/metrics`))).toBe(true);

    for (const rcv of [basicRcv, bearerRcv]) {
      // The untrusted target's up=0 may travel in a later block than the reachable targets' samples: wait for both.
      const untrustedDown = (): boolean => rcv.find({ __name__: "up", job: "untrusted" }).some((x) => x.samples.some((s) => s.value === 0));
      await waitUntil(
        `the samples of every reachable target, and up=0 of the untrusted one, at ${rcv.url}`,
        () => ["mtls", "insecure", "tunneled", "plain"].every((e) => rcv.find({ __name__: "sec_test", exporter: e }).length > 0) && untrustedDown(),
        30_000,
      );
      expect(rcv.unauthorized).toBe(0);
      expect(untrustedDown()).toBe(true);
    }
  }, 90_000);

  it("a remote write URL that refuses the credentials keeps the data queued, one that answers 400 has it dropped; -remoteWrite.tlsInsecureSkipVerify for one URL by position", async () => {
    const pem = { cert: readFileSync(loopbackCert.certFile, "utf8"), key: readFileSync(loopbackCert.keyFile, "utf8") };
    const rcv = await startReceiver({ tls: pem, authorization: "Bearer right" });
    const selfRcv = await startReceiver({ tls: { cert: readFileSync(selfSigned.certFile, "utf8"), key: readFileSync(selfSigned.keyFile, "utf8") } });
    const badData = await startReceiver();
    badData.status = 400;
    const exp = await startExporter("q", {});
    cleanups.push(rcv.close, selfRcv.close, badData.close, exp.close);
    const cfg = join(dir.path, "wrong.yml");
    writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: q\n    static_configs: [{ targets: ["${exp.addr}"] }]\n`);
    const agent = await startAgent([
      `-promscrape.config=${cfg}`,
      `-remoteWrite.url=${rcv.url}`,
      `-remoteWrite.url=${selfRcv.url}`,
      `-remoteWrite.url=${badData.url}`,
      `-remoteWrite.tlsCAFile=${ca.certFile},,`,
      "-remoteWrite.bearerToken=wrong,,",
      "-remoteWrite.tlsInsecureSkipVerify=false,true,false",
      "-remoteWrite.retryMinInterval=100ms",
      "-remoteWrite.flushInterval=100ms",
      `-remoteWrite.tmpDataPath=${join(dir.path, "q-wrong")}`,
    ]);
    cleanups.push(() => agent.proc.stop());
    await waitUntil("a refused request", () => rcv.unauthorized > 0, 20_000);
    await waitUntil("samples at the URL with a self-signed certificate", () => selfRcv.find({ __name__: "sec_test", exporter: "q" }).length > 0, 20_000);
    await waitUntil("a request refused as bad data", () => badData.requests > 0, 20_000);
    await waitUntil("the refused requests retried", () => rcv.unauthorized > 2, 20_000);
    expect(rcv.samples()).toBe(0);
    expect(await agent.metric('strata_agent_remotewrite_pending_bytes{url="1:')).toBeGreaterThan(0);
    expect(await agent.metric('strata_agent_remotewrite_blocks_rejected_total{url="1:')).toBe(0);
    await waitUntil("the 400 counted", async () => ((await agent.metric('strata_agent_remotewrite_blocks_rejected_total{url="3:')) ?? 0) > 0, 20_000);
  }, 60_000);

  it("its own listener: -tls with -tlsMinVersion, -httpAuth.*, -metricsAuthKey and -reloadAuthKey", async () => {
    const port = await freePort();
    const base = `https://127.0.0.1:${port}`;
    const cfg = join(dir.path, "empty.yml");
    writeFileSync(cfg, "scrape_configs: []\n");
    const rcv = await startReceiver();
    cleanups.push(rcv.close);
    const proc: Proc = startProcess(process.execPath, [
      serviceMain("agent"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-promscrape.config=${cfg}`,
      `-remoteWrite.url=${rcv.url}`,
      `-remoteWrite.tmpDataPath=${join(dir.path, "q-listener")}`,
      "-tls",
      `-tlsCertFile=${loopbackCert.certFile}`,
      `-tlsKeyFile=${loopbackCert.keyFile}`,
      "-tlsMinVersion=TLS13",
      "-httpAuth.username=admin",
      "-httpAuth.password=admin-pw",
      "-metricsAuthKey=mkey",
      "-reloadAuthKey=rkey",
    ]);
    cleanups.push(() => proc.stop());
    const get = (path: string, headers: Record<string, string> = {}, method = "GET") => rawRequest(base, path, { ca: ca.certPem, headers, method });
    await waitUntil("the agent answering over HTTPS", async () => (await get("/health").catch(() => ({ status: 0 }))).status === 200, 20_000);
    const admin = { authorization: basicAuth("admin", "admin-pw") };
    const cases: [string, string, Record<string, string>, number][] = [
      ["GET", "/health", {}, 200],
      ["GET", "/api/v1/targets", {}, 401],
      ["GET", "/api/v1/targets", { authorization: basicAuth("admin", "wrong") }, 401],
      ["GET", "/api/v1/targets", admin, 200],
      ["GET", "/targets", admin, 200],
      ["POST", "/api/v1/import/prometheus", {}, 401],
      ["GET", "/metrics", admin, 401],
      ["GET", "/metrics?authKey=wrong", {}, 401],
      ["GET", "/metrics?authKey=mkey", {}, 200],
      ["POST", "/-/reload", admin, 401],
      ["POST", "/-/reload?authKey=rkey", {}, 200],
    ];
    for (const [method, path, headers, want] of cases) expect({ method, path, auth: headers["authorization"] ?? "", status: (await get(path, headers, method)).status }).toEqual({ method, path, auth: headers["authorization"] ?? "", status: want });
    // Plain HTTP and TLS 1.2 are refused.
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    const tls12 = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: "127.0.0.1", port, ca: ca.certPem, maxVersion: "TLSv1.2", servername: "localhost" });
      s.on("secureConnect", () => {
        s.destroy();
        resolve("connected");
      });
      s.on("error", (err) => resolve(err.message));
    });
    expect(tls12).not.toBe("connected");
    const m = await get("/metrics?authKey=mkey");
    expect(m.body).toMatch(/strata_http_auth_failures_total\{reason="invalid_auth_token"\} [1-9]/);
    expect(m.body).not.toContain("admin-pw");
  }, 60_000);

  it("-promscrape.cluster.*: two agents split the targets (RF=1), and both scrape every target with RF=2", async () => {
    const addrs = Array.from({ length: 12 }, (_, i) => `127.0.0.1:${1 + i}`);
    const cfg = join(dir.path, "cluster.yml");
    // Closed ports: the targets are listed (down) without anything to serve them.
    writeFileSync(cfg, `global: { scrape_interval: 1h }\nscrape_configs:\n  - job_name: sharded\n    static_configs: [{ targets: ${JSON.stringify(addrs)} }]\n`);
    const rcv = await startReceiver();
    cleanups.push(rcv.close);
    const owned = async (rf: number): Promise<string[][]> => {
      const agents = await Promise.all(
        [0, 1].map((n) =>
          startAgent([
            `-promscrape.config=${cfg}`,
            `-remoteWrite.url=${rcv.url}`,
            `-remoteWrite.tmpDataPath=${join(dir.path, `q-member-${rf}-${n}`)}`,
            "-promscrape.cluster.membersCount=2",
            // A StatefulSet pod name works as the number (as in vmagent).
            `-promscrape.cluster.memberNum=${n === 0 ? "0" : "strata-agent-1"}`,
            `-promscrape.cluster.replicationFactor=${rf}`,
          ]),
        ),
      );
      try {
        return await Promise.all(
          agents.map(async (a) => {
            const j = (await (await fetch(`${a.url}/api/v1/targets`)).json()) as TargetsJson;
            return j.data.activeTargets.map((t) => t.labels["instance"]!).sort();
          }),
        );
      } finally {
        await Promise.all(agents.map((a) => a.proc.stop()));
      }
    };
    const [a, b] = await owned(1);
    expect(a!.length).toBeGreaterThan(0);
    expect(b!.length).toBeGreaterThan(0);
    expect(a!.filter((x) => b!.includes(x))).toEqual([]);
    expect([...a!, ...b!].sort()).toEqual([...addrs].sort());
    const [c, d] = await owned(2);
    expect(c).toEqual([...addrs].sort());
    expect(d).toEqual([...addrs].sort());
  }, 60_000);

  it("-promscrape.cluster.memberLabel: every scraped series carries the member that scraped it; the split is the one without the label", async () => {
    const addrs = Array.from({ length: 12 }, (_, i) => `127.0.0.1:${1 + i}`);
    const cfg = join(dir.path, "cluster-label.yml");
    // Closed ports: each scrape fails at once and writes up=0 (and the other automatic series).
    writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: sharded\n    static_configs: [{ targets: ${JSON.stringify(addrs)} }]\n`);
    const members = ["0", "strata-agent-1"];
    const run = async (label: boolean): Promise<{ owned: string[][]; rcv: Receiver }> => {
      const rcv = await startReceiver();
      cleanups.push(rcv.close);
      const agents = await Promise.all(
        members.map((m, n) =>
          startAgent([
            `-promscrape.config=${cfg}`,
            `-remoteWrite.url=${rcv.url}`,
            "-remoteWrite.flushInterval=100ms",
            `-remoteWrite.tmpDataPath=${join(dir.path, `q-label-${String(label)}-${n}`)}`,
            "-promscrape.cluster.membersCount=2",
            `-promscrape.cluster.memberNum=${m}`,
            ...(label ? ["-promscrape.cluster.memberLabel=vmagent_instance"] : []),
          ]),
        ),
      );
      try {
        await waitUntil("up of every target", () => new Set(rcv.find({ __name__: "up", job: "sharded" }).map((s) => s.labels["instance"])).size === addrs.length);
        const owned = await Promise.all(
          agents.map(async (a) => {
            const j = (await (await fetch(`${a.url}/api/v1/targets`)).json()) as TargetsJson;
            return j.data.activeTargets.map((t) => t.labels["instance"]!).sort();
          }),
        );
        return { owned, rcv };
      } finally {
        await Promise.all(agents.map((a) => a.proc.stop()));
      }
    };
    const plain = await run(false);
    const labelled = await run(true);
    expect(labelled.owned).toEqual(plain.owned);
    expect(plain.rcv.find({ __name__: "up" }).every((s) => s.labels["vmagent_instance"] === undefined)).toBe(true);
    // Each series names the member that owns its target, with -promscrape.cluster.memberNum as given.
    const ownerOf = (instance: string) => members[labelled.owned.findIndex((o) => o.includes(instance))];
    const series = [...labelled.rcv.series.values()].filter((s) => s.labels["job"] === "sharded");
    expect(new Set(series.map((s) => s.labels["__name__"]))).toEqual(new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"]));
    for (const s of series) expect({ instance: s.labels["instance"], member: s.labels["vmagent_instance"] }).toEqual({ instance: s.labels["instance"], member: ownerOf(s.labels["instance"]!) });
  }, 60_000);
});
