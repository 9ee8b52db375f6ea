import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCa, makeServerCert, type TestCa } from "./lib/certs.js";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, serviceMain, startProcess, tempDir, type Proc } from "./lib/procs.js";

/**
 * Issue 19 on select's listener, as a process: with -tls it speaks HTTPS (a CA made at test
 * time); with -httpAuth.* every path but the probes wants basic auth (401 + WWW-Authenticate
 * without or with wrong credentials); -deleteAuthKey guards delete_series and -flagsAuthKey
 * /flags and status/flags, instead of basic auth there; -metricsAuthKey /metrics. Secrets (one
 * given as file:///path) never show in the logs, /metrics, the flags pages or -help.
 */
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const PASSWORD = "pass-Secret-1";
const DELETE_KEY = "delete-Secret-2";
const FLAGS_KEY = "flags-Secret-3";
const METRICS_KEY = "metrics-Secret-4";
const SECRETS = [PASSWORD, DELETE_KEY, FLAGS_KEY, METRICS_KEY];

describe.skipIf(!built)(`select with TLS, basic auth and per-endpoint keys${built ? "" : " — skipped: services are not built (pnpm build)"}`, () => {
  const dir = tempDir("select-auth");
  let ca: TestCa;
  let c: Cluster;
  let select: Proc;
  let base: string;
  const NOW = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 1, replicationFactor: 1 });
    expect((await remoteWrite(c.insertUrl, [{ labels: { __name__: "guarded", x: "1" }, samples: [[NOW, 1]] }], "3")).status).toBe(204);
    await forceFlush(c);
    ca = makeCa(dir.path, "select-ca");
    const cert = makeServerCert(dir.path, "select", ca);
    writeFileSync(`${dir.path}/password`, `${PASSWORD}\n`);
    const port = await freePort();
    base = `https://127.0.0.1:${port}`;
    select = startProcess(process.execPath, [
      serviceMain("select"),
      `-storageNode=${c.storage[0]!.selectAddr}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      "-tls",
      `-tlsCertFile=${cert.certFile}`,
      `-tlsKeyFile=${cert.keyFile}`,
      "-httpAuth.username=ops",
      `-httpAuth.password=file://${dir.path}/password`,
      `-deleteAuthKey=${DELETE_KEY}`,
      `-flagsAuthKey=${FLAGS_KEY}`,
      `-metricsAuthKey=${METRICS_KEY}`,
    ]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await get("/health")).status === 200) break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`select not healthy: ${String(err)}\n${select.output()}`);
      }
      if (select.child.exitCode !== null) throw new Error(`select exited:\n${select.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);
  afterAll(async () => {
    await select?.stop();
    await c?.stop();
    dir.remove();
  });

  /** A request over HTTPS trusting the test CA (fetch cannot take a CA). */
  function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { ca: ca.certPem, headers, method }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    });
  }
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` });
  const q = `/select/3/prometheus/api/v1/query?query=guarded&time=${NOW / 1000}`;

  it.each([
    ["/health", {}, 200],
    ["/-/ready", {}, 200],
    [q, {}, 401],
    [q, basic("ops", "wrong"), 401],
    [q, basic("nobody", PASSWORD), 401],
    [q, { authorization: `Bearer ${PASSWORD}` }, 401],
    [q, basic("ops", PASSWORD), 200],
    ["/select/3/vmui/", {}, 401],
    ["/metrics", basic("ops", PASSWORD), 401],
    [`/metrics?authKey=${METRICS_KEY}`, {}, 200],
    ["/flags", basic("ops", PASSWORD), 401],
    [`/flags?authKey=${FLAGS_KEY}`, {}, 200],
    ["/select/3/prometheus/api/v1/status/flags?authKey=nope", {}, 401],
    [`/select/3/prometheus/api/v1/status/flags?authKey=${FLAGS_KEY}`, {}, 200],
  ] as const)("GET %s %j → %i", async (path, headers, status) => {
    const r = await get(path, headers);
    expect(r.status, r.text).toBe(status);
    if (status === 401) {
      expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
      for (const s of SECRETS) expect(r.text).not.toContain(s);
    }
  });

  it("answers the query over HTTPS; plain HTTP on the port gets no answer", async () => {
    const r = await get(q, basic("ops", PASSWORD));
    expect(JSON.parse(r.text)).toMatchObject({ status: "success", data: { result: [{ metric: { __name__: "guarded", x: "1" } }] } });
    await expect(fetch(base.replace("https:", "http:") + "/health", { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
  });

  it("delete_series wants -deleteAuthKey (basic auth alone is not enough), then deletes", async () => {
    const del = "/select/3/prometheus/api/v1/admin/tsdb/delete_series?match[]=guarded";
    expect((await get(del, basic("ops", PASSWORD), "POST")).status).toBe(401);
    expect((await get(`${del}&authKey=wrong`, {}, "POST")).status).toBe(401);
    const ok = await get(`${del}&authKey=${DELETE_KEY}`, {}, "POST");
    expect(ok.status, ok.text).toBe(204);
    const after = await get(q, basic("ops", PASSWORD));
    expect(JSON.parse(after.text)).toMatchObject({ data: { result: [] } });
  });

  it("refusals are counted; no secret is in /metrics, the flags pages, the logs or -help", async () => {
    const m = await get(`/metrics?authKey=${METRICS_KEY}`);
    expect(m.text).toMatch(/^strata_http_auth_failures_total\{reason="invalid_auth_token"\} [1-9]/m);
    expect(m.text).toMatch(/^strata_http_auth_failures_total\{reason="invalid_auth_key"\} [1-9]/m);
    const flags = await get(`/flags?authKey=${FLAGS_KEY}`);
    expect(flags.text).toContain('-deleteAuthKey="secret"');
    const statusFlags = await get(`/select/3/prometheus/api/v1/status/flags?authKey=${FLAGS_KEY}`);
    expect(JSON.parse(statusFlags.text)).toMatchObject({ data: { "httpAuth.password": "secret", flagsAuthKey: "secret", "httpAuth.username": "ops", tls: "true" } });
    const help = execFileSync(process.execPath, [serviceMain("select"), "-help"], { encoding: "utf8" });
    for (const flag of ["-tls", "-tlsCertFile", "-httpAuth.username", "-httpAuth.password", "-deleteAuthKey", "-flagsAuthKey", "-metricsAuthKey"]) expect(help).toContain(flag);
    for (const s of SECRETS) {
      for (const text of [m.text, flags.text, statusFlags.text, select.output(), help]) expect(text).not.toContain(s);
    }
  });
});
