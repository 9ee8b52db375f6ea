import { execFileSync } from "node:child_process";
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { remoteWriteBody } from "./lib/cluster.js";
import { makeCa, makeServerCert, type TestCa } from "./lib/certs.js";
import { freePort, isBuilt, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Issue 19 on insert's listener: with -tls and -httpAuth.* the port speaks HTTPS only, and every
 * ingestion path refuses a client without the right password (401, WWW-Authenticate, counted)
 * while the probes stay open. The password never shows in logs, /metrics or -help.
 */
const built = isBuilt("storage") && isBuilt("insert");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const PASSWORD = "ingest-Secret-7";

describe.skipIf(!built)(`insert TLS and basic auth${built ? "" : " — skipped: services are not built (pnpm build)"}`, () => {
  const dir = tempDir("insert-auth");
  let ca: TestCa;
  let storage: Proc;
  let insert: Proc;
  let port = 0;
  beforeAll(async () => {
    ca = makeCa(dir.path, "insert-ca");
    const cert = makeServerCert(dir.path, "insert-http", ca);
    const [si, ss, sh] = [await freePort(), await freePort(), await freePort()];
    storage = startProcess(process.execPath, [
      serviceMain("storage"),
      `-storageDataPath=${dir.path}/data`,
      `-vminsertAddr=127.0.0.1:${si}`,
      `-vmselectAddr=127.0.0.1:${ss}`,
      `-httpListenAddr=127.0.0.1:${sh}`,
    ]);
    await waitHealthy(`http://127.0.0.1:${sh}/health`, storage);
    port = await freePort();
    insert = startProcess(process.execPath, [
      serviceMain("insert"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageNode=127.0.0.1:${si}`,
      "-tls",
      `-tlsCertFile=${cert.certFile}`,
      `-tlsKeyFile=${cert.keyFile}`,
      "-httpAuth.username=writer",
      `-httpAuth.password=${PASSWORD}`,
    ]);
    const deadline = Date.now() + 20_000;
    while ((await send("GET", "/-/ready").catch(() => ({ status: 0 }))).status !== 200) {
      if (Date.now() > deadline) throw new Error(`insert not ready:\n${insert.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    await insert?.stop();
    await storage?.stop();
    dir.remove();
  });

  /** A request over HTTPS trusting the test CA (fetch cannot take a CA). */
  function send(method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method, ca: ca.certPem, servername: "localhost", headers }, (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      });
      req.on("error", reject);
      req.end(body);
    });
  }
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}` });
  const rw = { "content-type": "application/x-protobuf", "content-encoding": "snappy" };
  const body = remoteWriteBody([{ labels: { __name__: "tls_auth_test", job: "t" }, samples: [[Date.now(), 1]] }]);

  it("refuses a plain-HTTP client", async () => {
    await expect(fetch(`http://127.0.0.1:${port}/insert/0/prometheus/api/v1/write`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: rw })).rejects.toThrow();
  });

  it.each([
    ["POST", "/insert/0/prometheus/api/v1/write", {}, 401],
    ["POST", "/insert/0/prometheus/api/v1/write", basic("writer", "wrong"), 401],
    ["POST", "/insert/0/prometheus/api/v1/write", basic("other", PASSWORD), 401],
    ["POST", "/insert/0/prometheus/api/v1/import/prometheus", basic("writer", "wrong"), 401],
    ["POST", "/insert/0/influx/write", {}, 401],
    ["GET", "/metrics", {}, 401],
    ["GET", "/health", {}, 200],
    ["GET", "/-/ready", {}, 200],
  ] as const)("%s %s %j → %i", async (method, path, auth, status) => {
    const r = await send(method, path, { ...rw, ...auth }, method === "POST" ? body : undefined);
    expect(r.status, r.text).toBe(status);
    if (status === 401) {
      expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
      expect(r.text).not.toContain(PASSWORD);
    }
  });

  it("accepts the right password, counts the refusals, never shows the secret", async () => {
    const ok = await send("POST", "/insert/0/prometheus/api/v1/write", { ...rw, ...basic("writer", PASSWORD) }, body);
    expect(ok.status, ok.text).toBe(204);
    const imp = await send("POST", "/insert/0/prometheus/api/v1/import/prometheus", basic("writer", PASSWORD), Buffer.from(`tls_auth_import 1 ${Date.now()}\n`));
    expect(imp.status, imp.text).toBe(204);
    const m = await send("GET", "/metrics", basic("writer", PASSWORD));
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/^strata_insert_rows_received_total 1$/m);
    expect(m.text).toMatch(/^strata_http_auth_failures_total\{reason="invalid_auth_token"\} [1-9]/m);
    expect(m.text).toMatch(/^strata_http_auth_failures_total\{reason="missing_credentials"\} [1-9]/m);
    const help = execFileSync(process.execPath, [serviceMain("insert"), "-help"], { encoding: "utf8" });
    for (const flag of ["-tls ", "-tlsCertFile", "-tlsMinVersion", "-tlsCipherSuites", "-httpAuth.username", "-httpAuth.password", "-metricsAuthKey"]) expect(help).toContain(flag);
    expect(m.text).not.toContain(PASSWORD);
    expect(insert.output()).not.toContain(PASSWORD);
  });
});
