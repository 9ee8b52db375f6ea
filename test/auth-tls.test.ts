import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, rawRequest, startAuth, startEcho, type AuthProcess, type Running } from "./lib/auth.js";
import { makeCa, makeServerCert, type TestCa } from "./lib/certs.js";
import { isBuilt, requirePeer, serviceMain, tempDir } from "./lib/procs.js";

/**
 * strata-auth with -tls and certificates made by a CA the test creates (openssl): a client
 * trusting that CA connects, a client trusting another CA is refused, and replaced certificate
 * files are served without a restart. Secrets given as file:// and literally never show up in
 * logs, /metrics or -help.
 */

const built = isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("openssl", "openssl");

describe.skipIf(!available)("strata-auth over TLS", () => {
  const dir = tempDir("auth-tls");
  let ca: TestCa;
  let other: TestCa;
  let echo: Running;
  let auth: AuthProcess;
  const certFile = join(dir.path, "live.crt");
  const keyFile = join(dir.path, "live.key");
  let firstSerial = "";
  const secrets = { httpPw: "HTTPPW-7f3a9c", metricsKey: "MKEY-51be07", reloadKey: "RELOADKEY-c2d4", userPw: "USERPW-90aa1e" };

  beforeAll(async () => {
    ca = makeCa(dir.path, "test-ca");
    other = makeCa(dir.path, "other-ca");
    const first = makeServerCert(dir.path, "first", ca);
    firstSerial = first.serial;
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    writeFileSync(join(dir.path, "httppw"), `${secrets.httpPw}\n`);
    writeFileSync(join(dir.path, "mkey"), `${secrets.metricsKey}\n`);
    echo = await startEcho("backend");
    auth = await startAuth(`users:\n  - username: u\n    password: ${secrets.userPw}\n    url_prefix: ${echo.url}/select/42/prometheus\n`, {
      scheme: "https",
      healthCa: ca.certPem,
      flags: [
        "-tls",
        `-tlsCertFile=${certFile}`,
        `-tlsKeyFile=${keyFile}`,
        "-tlsMinVersion=TLS12",
        "-httpAuth.username=admin",
        `-httpAuth.password=file://${join(dir.path, "httppw")}`,
        `-metricsAuthKey=file://${join(dir.path, "mkey")}`,
        `-reloadAuthKey=${secrets.reloadKey}`,
      ],
    });
  });

  afterAll(async () => {
    await auth?.stop();
    await echo?.proc.stop();
    dir.remove();
  });

  const servedSerial = async (trust: string): Promise<string> => {
    const s = connect({ host: "127.0.0.1", port: auth.port, ca: trust, servername: "localhost" });
    try {
      await once(s, "secureConnect");
      return s.getPeerCertificate().serialNumber.toUpperCase();
    } finally {
      s.destroy();
    }
  };

  it("serves clients that trust its CA, proxying as over HTTP", async () => {
    expect(await servedSerial(ca.certPem)).toBe(firstSerial);
    const r = await rawRequest(auth.url, "/api/v1/labels", { ca: ca.certPem, headers: { authorization: basicAuth("u", secrets.userPw) } });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { url: string }).url).toBe("/select/42/prometheus/api/v1/labels");
    expect((await rawRequest(auth.url, "/api/v1/labels", { ca: ca.certPem, headers: { authorization: basicAuth("u", "wrong") } })).status).toBe(401);
  });

  it("is refused by a client that trusts another CA", async () => {
    await expect(servedSerial(other.certPem)).rejects.toThrow(/certificate/i);
    await expect(rawRequest(auth.url, "/health", { ca: other.certPem })).rejects.toThrow(/certificate/i);
  });

  it("serves replaced certificate files without a restart", async () => {
    const next = makeServerCert(dir.path, "second", ca);
    // Key first, then certificate, each renamed over the live file as cert managers do.
    copyFileSync(next.keyFile, `${keyFile}.new`);
    renameSync(`${keyFile}.new`, keyFile);
    copyFileSync(next.certFile, `${certFile}.new`);
    renameSync(`${certFile}.new`, certFile);
    const deadline = Date.now() + 15_000;
    let serial = "";
    while (Date.now() < deadline) {
      serial = await servedSerial(ca.certPem);
      if (serial === next.serial) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(serial).toBe(next.serial);
    const m = await rawRequest(auth.url, `/metrics?authKey=${secrets.metricsKey}`, { ca: ca.certPem });
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/strata_tls_certificate_reloads_total [12]\n/);
  });

  it("guards its own endpoints with file:// secrets and keeps every secret out of logs, /metrics and -help", async () => {
    expect((await rawRequest(auth.url, "/metrics", { ca: ca.certPem })).status).toBe(401);
    expect((await rawRequest(auth.url, "/metrics?authKey=wrong", { ca: ca.certPem })).status).toBe(401);
    expect((await rawRequest(auth.url, "/-/reload", { ca: ca.certPem, headers: { authorization: basicAuth("admin", secrets.httpPw) } })).status).toBe(401);
    expect((await rawRequest(auth.url, `/-/reload?authKey=${secrets.reloadKey}`, { ca: ca.certPem })).status).toBe(200);
    const m = await rawRequest(auth.url, `/metrics?authKey=${secrets.metricsKey}`, { ca: ca.certPem });
    expect(m.body).toContain('strata_http_auth_failures_total{reason="invalid_auth_key"}');
    const help = spawnSync(process.execPath, [serviceMain("auth"), "-help", `-httpAuth.password=${secrets.httpPw}`], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("-tlsCertFile");
    expect(help.stdout).toContain("-metricsAuthKey");
    for (const text of [auth.proc.output(), m.body, help.stdout + help.stderr]) {
      for (const s of Object.values(secrets)) expect(text).not.toContain(s);
    }
  });
});
