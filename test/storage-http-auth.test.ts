import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeCa, makeServerCert, type TestCa } from "./lib/certs.js";
import { freePort, isBuilt, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Issue 19 on storage's HTTP port: with the keys set, /snapshot/* and /internal/* refuse a
 * request without the right authKey (401, WWW-Authenticate, counted), /metrics wants
 * -metricsAuthKey, other paths -httpAuth.*; probes stay open. Secrets (one given as
 * file:///path) never show in logs, /metrics or -help. The node warns at startup when it
 * listens beyond loopback without keys. With -tls the port speaks HTTPS.
 */
const built = isBuilt("storage");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const SNAPSHOT_KEY = "snap-Secret-1";
const MERGE_KEY = "merge-Secret-2";
const FLUSH_KEY = "flush-Secret-3";
const METRICS_KEY = "metrics-Secret-4";
const PASSWORD = "pass-Secret-5";
const SECRETS = [SNAPSHOT_KEY, MERGE_KEY, FLUSH_KEY, METRICS_KEY, PASSWORD];

describe.skipIf(!built)(`storage HTTP keys and TLS${built ? "" : " — skipped: storage is not built (pnpm build)"}`, () => {
  const dir = tempDir("storage-auth");
  let ca: TestCa;
  let node: Proc;
  let base: string;
  beforeAll(async () => {
    ca = makeCa(dir.path, "http-ca");
    const server = makeServerCert(dir.path, "storage-http", ca);
    writeFileSync(`${dir.path}/snapshot.key`, `${SNAPSHOT_KEY}\n`);
    const port = await freePort();
    base = `https://127.0.0.1:${port}`;
    node = startProcess(process.execPath, [
      serviceMain("storage"),
      `-storageDataPath=${dir.path}/data`,
      `-vminsertAddr=127.0.0.1:${await freePort()}`,
      `-vmselectAddr=127.0.0.1:${await freePort()}`,
      `-httpListenAddr=127.0.0.1:${port}`,
      "-tls",
      `-tlsCertFile=${server.certFile}`,
      `-tlsKeyFile=${server.keyFile}`,
      `-snapshotAuthKey=file://${dir.path}/snapshot.key`,
      `-forceMergeAuthKey=${MERGE_KEY}`,
      `-forceFlushAuthKey=${FLUSH_KEY}`,
      `-metricsAuthKey=${METRICS_KEY}`,
      "-httpAuth.username=ops",
      `-httpAuth.password=${PASSWORD}`,
    ]);
    await until(async () => (await get("/health")).status === 200);
  });
  afterAll(async () => {
    await node?.stop();
    dir.remove();
  });

  /** GET over HTTPS trusting the test CA (fetch cannot take a CA). */
  function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, { ca: ca.certPem, headers }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    });
  }
  async function until(ok: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if (await ok()) return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`storage not healthy: ${String(err)}\n${node.output()}`);
      }
      if (Date.now() > deadline) throw new Error(`storage not healthy:\n${node.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` });

  it.each([
    ["/health", {}, 200],
    ["/-/ready", {}, 200],
    ["/snapshot/list", {}, 401],
    ["/snapshot/list?authKey=wrong", {}, 401],
    // The endpoint's key overrides basic auth there, as in VictoriaMetrics.
    ["/snapshot/list", basic("ops", PASSWORD), 401],
    [`/snapshot/list?authKey=${SNAPSHOT_KEY}`, {}, 200],
    ["/snapshot/delete_all", {}, 401],
    [`/snapshot/delete_all?authKey=${SNAPSHOT_KEY}`, {}, 200],
    ["/internal/force_merge", {}, 401],
    [`/internal/force_merge?authKey=${FLUSH_KEY}`, {}, 401],
    [`/internal/force_merge?authKey=${MERGE_KEY}`, {}, 200],
    ["/internal/force_flush", {}, 401],
    [`/internal/force_flush?authKey=${FLUSH_KEY}`, {}, 200],
    ["/metrics", {}, 401],
    [`/metrics?authKey=${METRICS_KEY}`, {}, 200],
    ["/nope", {}, 401],
    ["/nope", basic("ops", "wrong"), 401],
    ["/nope", basic("ops", PASSWORD), 404],
  ] as const)("GET %s %j → %i", async (path, headers, status) => {
    const r = await get(path, headers);
    expect(r.status, r.text).toBe(status);
    if (status === 401) {
      expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
      expect(r.text).not.toMatch(/Secret/);
    }
  });

  it("refusals are counted; no secret is in /metrics, the logs or -help", async () => {
    const m = await get(`/metrics?authKey=${METRICS_KEY}`);
    expect(m.text).toMatch(/^strata_http_auth_failures_total\{reason="invalid_auth_key"\} [1-9]/m);
    const help = execFileSync(process.execPath, [serviceMain("storage"), "-help"], { encoding: "utf8" });
    for (const flag of ["-snapshotAuthKey", "-forceMergeAuthKey", "-forceFlushAuthKey", "-cluster.tls", "-cluster.tlsCAFile", "-tls"]) expect(help).toContain(flag);
    for (const s of SECRETS) {
      expect(m.text).not.toContain(s);
      expect(node.output()).not.toContain(s);
      expect(help).not.toContain(s);
    }
  });

  it.each([
    ["0.0.0.0 without keys", true, "0.0.0.0", []],
    ["0.0.0.0 with every key", false, "0.0.0.0", ["-snapshotAuthKey=a", "-forceMergeAuthKey=b", "-forceFlushAuthKey=c"]],
    ["0.0.0.0 with basic auth", false, "0.0.0.0", ["-httpAuth.username=u", "-httpAuth.password=p"]],
    ["127.0.0.1 without keys", false, "127.0.0.1", []],
  ] as const)("startup on %s: warning %s", async (_what, warns, host, flags) => {
    const port = await freePort();
    const d = tempDir("storage-warn");
    const p = startProcess(process.execPath, [
      serviceMain("storage"),
      `-storageDataPath=${d.path}`,
      `-vminsertAddr=127.0.0.1:${await freePort()}`,
      `-vmselectAddr=127.0.0.1:${await freePort()}`,
      `-httpListenAddr=${host}:${port}`,
      ...flags,
    ]);
    try {
      await waitHealthy(`http://127.0.0.1:${port}/health`, p);
      const warning = p.output().split("\n").find((l) => l.includes("non-loopback address"));
      if (warns) expect(JSON.parse(warning ?? "{}")).toMatchObject({ level: "warn", unset: ["-snapshotAuthKey", "-forceMergeAuthKey", "-forceFlushAuthKey"] });
      else expect(warning).toBeUndefined();
    } finally {
      await p.stop();
      d.remove();
    }
  });
});
