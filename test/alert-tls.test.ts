import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawRequest, basicAuth } from "./lib/auth.js";
import { makeCa, makeServerCert, type TestCa, type TestCert } from "./lib/certs.js";
import { freePort, isBuilt, requirePeer, serviceMain, startProcess, tempDir, waitFor, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * strata-alert with TLS and auth on both sides: its own listener serves HTTPS (-tls) behind
 * -httpAuth.* with the password as file://, and its datasource, remote read, remote write and
 * notifier (passwords as file:// or vmalert's …passwordFile) are one HTTPS peer made by the test (certificate from a test CA, basic auth) that
 * records what reaches it. A second alert that trusts another CA gets nothing through.
 */

const built = isBuilt("alert") && isBuilt("select");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("openssl", "openssl");

const RULES = `groups:
  - name: tls
    interval: 1s
    rules:
      - record: tls:probe
        expr: vector(1)
      - alert: TlsAlways
        expr: vector(1) > 0
      - alert: TlsPending
        expr: vector(1) > 0
        for: 1h
`;

describe.skipIf(!available)("strata-alert over TLS with auth", () => {
  const dir = tempDir("alert-tls");
  let ca: TestCa;
  let other: TestCa;
  let cert: TestCert;
  let peer: Server;
  let peerUrl = "";
  const seen: { path: string; authorized: boolean }[] = [];
  const procs: Proc[] = [];
  const secrets = { peer: "PEERPW-41c7", admin: "ADMINPW-9e02" };

  const startAlert = async (trust: TestCa): Promise<{ proc: Proc; url: string }> => {
    const port = await freePort();
    // The password as file:// for two clients, through vmalert's -<p>.basicAuth.passwordFile for two.
    const client = (p: string) => [
      `-${p}.tlsCAFile=${trust.certFile}`,
      `-${p}.basicAuth.username=strata`,
      p === "datasource" || p === "remoteRead" ? `-${p}.basicAuth.password=file://${join(dir.path, "peerpw")}` : `-${p}.basicAuth.passwordFile=${join(dir.path, "peerpw")}`,
    ];
    const proc = startProcess(process.execPath, [
      serviceMain("alert"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-rule=${join(dir.path, "rules.yml")}`,
      "-remoteWrite.flushInterval=200ms",
      "-remoteWrite.retryMinInterval=200ms",
      "-loggerLevel=WARN",
      `-datasource.url=${peerUrl}/ds`,
      ...client("datasource"),
      `-remoteRead.url=${peerUrl}/rr`,
      ...client("remoteRead"),
      `-remoteWrite.url=${peerUrl}/rw`,
      ...client("remoteWrite"),
      `-notifier.url=${peerUrl}/am`,
      ...client("notifier"),
      "-tls",
      `-tlsCertFile=${cert.certFile}`,
      `-tlsKeyFile=${cert.keyFile}`,
      "-tlsMinVersion=TLS12",
      "-httpAuth.username=admin",
      `-httpAuth.password=file://${join(dir.path, "adminpw")}`,
    ]);
    procs.push(proc);
    const url = `https://127.0.0.1:${port}`;
    await waitFor("alert's HTTPS /health", async () => ((await rawRequest(url, "/health", { ca: ca.certPem }).catch(() => undefined))?.status === 200 ? true : undefined), 30_000);
    return { proc, url };
  };

  beforeAll(async () => {
    ca = makeCa(dir.path, "test-ca");
    other = makeCa(dir.path, "other-ca");
    cert = makeServerCert(dir.path, "peer", ca);
    writeFileSync(join(dir.path, "peerpw"), `${secrets.peer}\n`);
    writeFileSync(join(dir.path, "adminpw"), `${secrets.admin}\n`);
    writeFileSync(join(dir.path, "rules.yml"), RULES);
    peer = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const authorized = req.headers.authorization === basicAuth("strata", secrets.peer);
        seen.push({ path: (req.url ?? "").split("?")[0]!, authorized });
        if (!authorized) return void res.writeHead(401, { "www-authenticate": 'Basic realm="Restricted"' }).end("unauthorized\n");
        if (req.url?.endsWith("/api/v1/query")) {
          const time = Number(new URLSearchParams(Buffer.concat(chunks).toString()).get("time"));
          // Restore asks for ALERTS_FOR_STATE: nothing to restore.
          const result = Buffer.concat(chunks).toString().includes("ALERTS_FOR_STATE") ? [] : [{ metric: {}, value: [time, "1"] }];
          return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "success", data: { resultType: "vector", result } }));
        }
        res.writeHead(req.url?.endsWith("/api/v2/alerts") ? 200 : 204).end();
      });
    });
    const port = await freePort();
    await new Promise<void>((r) => peer.listen(port, "127.0.0.1", r));
    peerUrl = `https://127.0.0.1:${port}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    peer?.close();
    dir.remove();
  }, 60_000);

  it("reaches a TLS + basic-auth datasource, remote read, remote write and notifier, and serves its API over HTTPS behind basic auth", async () => {
    const alert = await startAlert(ca);
    await waitFor(
      "queries, restore, remote write and notifications at the peer",
      async () => (["/ds/api/v1/query", "/rr/api/v1/query", "/rw/api/v1/write", "/am/api/v2/alerts"].every((p) => seen.some((s) => s.path === p && s.authorized)) ? true : undefined),
      30_000,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; seen: ${JSON.stringify([...new Set(seen.map((s) => `${s.path} ${s.authorized}`))])}; alert: ${alert.proc.output()}`);
    });
    expect(seen.filter((s) => !s.authorized)).toEqual([]);

    expect((await rawRequest(alert.url, "/api/v1/rules", { ca: ca.certPem })).status).toBe(401);
    expect((await rawRequest(alert.url, "/api/v1/rules", { ca: ca.certPem, headers: { authorization: basicAuth("admin", "wrong") } })).status).toBe(401);
    const r = await rawRequest(alert.url, "/api/v1/rules", { ca: ca.certPem, headers: { authorization: basicAuth("admin", secrets.admin) } });
    expect(r.status).toBe(200);
    const rules = (JSON.parse(r.body) as { data: { groups: { rules: { health: string; name: string }[] }[] } }).data.groups[0]!.rules;
    expect(rules.map((x) => [x.name, x.health])).toEqual([
      ["tls:probe", "ok"],
      ["TlsAlways", "ok"],
      ["TlsPending", "ok"],
    ]);
    // A client that trusts another CA does not get through the handshake.
    await expect(rawRequest(alert.url, "/health", { ca: other.certPem })).rejects.toThrow();
    const metrics = await rawRequest(alert.url, "/metrics", { ca: ca.certPem, headers: { authorization: basicAuth("admin", secrets.admin) } });
    expect(metrics.body).not.toContain(secrets.peer);
    expect(metrics.body).not.toContain(secrets.admin);
    expect(alert.proc.output()).not.toContain(secrets.peer);
    await alert.proc.stop();
  }, 90_000);

  it("refuses a peer whose certificate another CA signed: the rules report it, nothing is sent", async () => {
    const before = seen.length;
    const alert = await startAlert(other);
    const rules = await waitFor(
      "rule health err",
      async () => {
        const r = await rawRequest(alert.url, "/api/v1/rules", { ca: ca.certPem, headers: { authorization: basicAuth("admin", secrets.admin) } });
        const rs = (JSON.parse(r.body) as { data: { groups: { rules: { health: string; lastError?: string }[] }[] } }).data.groups[0]?.rules ?? [];
        return rs.length > 0 && rs.every((x) => x.health === "err") ? rs : undefined;
      },
      30_000,
    );
    expect(rules[0]!.lastError).toMatch(/certificate/i);
    expect(seen.length).toBe(before);
  }, 90_000);

  it("select's -vmalert.proxyURL reaches the HTTPS alert service behind -httpAuth.* with the credentials in the URL", async () => {
    const alert = await startAlert(ca);
    const startSelect = async (proxyURL: string): Promise<{ proc: Proc; url: string }> => {
      const port = await freePort();
      // The alert service's certificate is from the test CA: select trusts it through NODE_EXTRA_CA_CERTS.
      const proc = startProcess(process.execPath, [serviceMain("select"), `-httpListenAddr=127.0.0.1:${port}`, `-storageNode=127.0.0.1:${await freePort()}`, `-vmalert.proxyURL=${proxyURL}`, "-loggerLevel=WARN"], {
        ...process.env,
        NODE_EXTRA_CA_CERTS: ca.certFile,
      });
      procs.push(proc);
      const url = `http://127.0.0.1:${port}`;
      await waitHealthy(`${url}/health`, proc);
      return { proc, url };
    };
    const port = new URL(alert.url).port;
    const withCreds = await startSelect(`https://admin:${encodeURIComponent(secrets.admin)}@127.0.0.1:${port}/`);
    const r = await fetch(`${withCreds.url}/select/0/prometheus/api/v1/rules?type=alert`);
    expect(r.status).toBe(200);
    const groups = ((await r.json()) as { data: { groups: { rules: { name: string }[] }[] } }).data.groups;
    expect(groups[0]!.rules.map((x) => x.name)).toEqual(["TlsAlways", "TlsPending"]);
    const alerts = await fetch(`${withCreds.url}/select/0/prometheus/api/v1/alerts`);
    expect(alerts.status).toBe(200);
    // The password shows nowhere: not in select's /flags, /metrics or logs.
    for (const path of ["/flags", "/metrics"]) expect(await (await fetch(`${withCreds.url}${path}`)).text()).not.toContain(secrets.admin);
    expect(withCreds.proc.output()).not.toContain(secrets.admin);

    // Without credentials in the URL, the client's Authorization header goes along (as vmselect does).
    const noCreds = await startSelect(`https://127.0.0.1:${port}`);
    expect((await fetch(`${noCreds.url}/select/0/prometheus/api/v1/rules`)).status).toBe(401);
    expect((await fetch(`${noCreds.url}/select/0/prometheus/api/v1/rules`, { headers: { authorization: basicAuth("admin", secrets.admin) } })).status).toBe(200);
    await Promise.all([withCreds.proc.stop(), noCreds.proc.stop(), alert.proc.stop()]);
  }, 90_000);
});
