import { once } from "node:events";
import { copyFileSync, renameSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect } from "node:tls";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { MetricsRegistry, createLogger } from "@strata/core";
import { AuthFailures, CertReloader, HttpGuard, RateLimitedLog, constantTimeEqual, createServer, parseAuthorization, readSecret, tlsBaseOptions } from "@strata/httpsec";
import { makeCa, makeServerCert } from "../../../test/lib/certs.js";
import { requirePeer, tempDir } from "../../../test/lib/procs.js";

function captureLog(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ name: "test", destination: dest });
  return { log, lines: () => out.join("").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const dir = tempDir("httpsec");
afterAll(() => dir.remove());

describe("secrets", () => {
  it("reads file:// secrets without the trailing newline, names flag and file on error", () => {
    const f = join(dir.path, "pw");
    writeFileSync(f, "s3cret\n");
    expect(readSecret("httpAuth.password", `file://${f}`)).toBe("s3cret");
    expect(readSecret("httpAuth.password", "literal")).toBe("literal");
    expect(() => readSecret("metricsAuthKey", "file:///nonexistent/x")).toThrow(/-metricsAuthKey: cannot read the secret file \/nonexistent\/x/);
    expect(() => readSecret("metricsAuthKey", "file://relative")).toThrow(/want file:\/\/\/absolute\/path/);
  });
});

describe("credentials", () => {
  it.each([
    ["abc", "abc", true],
    ["abc", "abd", false],
    ["abc", "abcd", false],
    ["", "", true],
    ["", "x", false],
  ])("constantTimeEqual(%j, %j) = %s", (a, b, want) => {
    expect(constantTimeEqual(a, b)).toBe(want);
  });

  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  it.each([
    [undefined, { kind: "none" }],
    ["", { kind: "none" }],
    [`Basic ${b64("u:p:w")}`, { kind: "basic", username: "u", password: "p:w" }],
    [`basic ${b64("u:")}`, { kind: "basic", username: "u", password: "" }],
    ["Bearer tok", { kind: "bearer", token: "tok" }],
    ["Token tok", { kind: "bearer", token: "tok" }],
    [`Basic ${b64("nocolon")}`, { kind: "malformed", why: "Basic credentials lack the ':' between user and password" }],
    ["Basic !!!", { kind: "malformed", why: "Basic credentials are not base64" }],
    ["Bearer", { kind: "malformed", why: "empty bearer token" }],
    ["Digest x", { kind: "malformed", why: 'unsupported authorization scheme "digest"' }],
  ])("parseAuthorization(%j)", (h, want) => {
    expect(parseAuthorization(h)).toEqual(want);
  });

  it("guards service endpoints the VictoriaMetrics way", () => {
    const basic = (u: string, p: string): string => `Basic ${b64(`${u}:${p}`)}`;
    const g = new HttpGuard({ username: "admin", password: "pw", metricsAuthKey: "mkey" });
    expect(g.check("/health", undefined, undefined).ok).toBe(true);
    expect(g.check("/metrics", undefined, "mkey").ok).toBe(true);
    expect(g.check("/metrics", basic("admin", "pw"), undefined)).toMatchObject({ ok: false, reason: "invalid_auth_key" });
    expect(g.check("/metrics", undefined, "wrong")).toMatchObject({ ok: false, reason: "invalid_auth_key" });
    expect(g.check("/-/reload", basic("admin", "pw"), undefined).ok).toBe(true);
    expect(g.check("/-/reload", basic("admin", "px"), undefined)).toMatchObject({ ok: false, reason: "invalid_auth_token" });
    expect(g.check("/-/reload", undefined, undefined)).toMatchObject({ ok: false, reason: "missing_credentials" });
    expect(g.check("/-/reload", "Basic %%", undefined)).toMatchObject({ ok: false, reason: "malformed_credentials" });
    const onlyBasic = new HttpGuard({ username: "admin", password: "pw", metricsAuthKey: "" });
    expect(onlyBasic.check("/metrics", basic("admin", "pw"), undefined).ok).toBe(true);
    expect(onlyBasic.check("/metrics", undefined, undefined).ok).toBe(false);
    expect(new HttpGuard({ username: "", password: "", metricsAuthKey: "" }).check("/metrics", undefined, undefined).ok).toBe(true);
  });
});

describe("refused requests", () => {
  it("are counted by reason and logged at most N per second, the rest summed up", () => {
    const { log, lines } = captureLog();
    let now = 0;
    const rl = new RateLimitedLog(log, 3, 1000, () => now);
    for (let i = 0; i < 10; i++) rl.warn({ i }, "x");
    expect(lines().length).toBe(3);
    now = 1000;
    rl.warn({ i: 10 }, "x");
    expect(lines()[3]).toMatchObject({ i: 10, suppressed: 7 });

    const m = new MetricsRegistry();
    const f = new AuthFailures({ metrics: m, log, counter: "strata_http_auth_failures_total" });
    f.record("invalid_auth_token", "127.0.0.1", "/x");
    f.record("invalid_auth_token", "127.0.0.1", "/x");
    f.record("missing_credentials", "127.0.0.1", "/y?authKey=almost-the-key");
    expect(JSON.stringify(lines())).not.toContain("almost-the-key");
    expect(m.render()).toContain('strata_http_auth_failures_total{reason="invalid_auth_token"} 2');
    expect(m.render()).toContain('strata_http_auth_failures_total{reason="missing_credentials"} 1');
  });
});

describe("TLS", () => {
  it("checks -tlsMinVersion and -tlsCipherSuites", () => {
    const base = { enabled: true, certFile: "", keyFile: "", cipherSuites: [] };
    expect(tlsBaseOptions({ ...base, minVersion: "TLS13" }).minVersion).toBe("TLSv1.3");
    expect(() => tlsBaseOptions({ ...base, minVersion: "SSL3" })).toThrow(/-tlsMinVersion="SSL3": want TLS10, TLS11, TLS12 or TLS13/);
    expect(tlsBaseOptions({ ...base, minVersion: "", cipherSuites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"] }).ciphers).toContain("ECDHE-ECDSA-AES128-GCM-SHA256");
    expect(() => tlsBaseOptions({ ...base, minVersion: "", cipherSuites: ["TLS_NOPE"] })).toThrow(/unknown cipher suite "TLS_NOPE"/);
  });

  it.skipIf(!requirePeer("openssl", "openssl"))("serves the certificate, and the new one after the files change, keeping the old on a bad pair", async () => {
    const ca = makeCa(dir.path, "ca");
    const a = makeServerCert(dir.path, "a", ca);
    const b = makeServerCert(dir.path, "b", ca);
    const certFile = join(dir.path, "live.crt");
    const keyFile = join(dir.path, "live.key");
    copyFileSync(a.certFile, certFile);
    copyFileSync(a.keyFile, keyFile);
    const { log, lines } = captureLog();
    const metrics = new MetricsRegistry();
    const certs = new CertReloader({ flags: { enabled: true, certFile, keyFile, minVersion: "TLS12", cipherSuites: [] }, log, metrics, checkIntervalMs: 60_000 });
    const server = createServer((_req, res) => res.end("ok"), certs);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    const serialSeen = async (): Promise<string> => {
      const s = connect({ host: "127.0.0.1", port, ca: ca.certPem, servername: "localhost" });
      await once(s, "secureConnect");
      const serial = s.getPeerCertificate().serialNumber.toUpperCase();
      s.destroy();
      return serial;
    };
    try {
      expect(await serialSeen()).toBe(a.serial);
      // A half-replaced pair (new cert, old key) is refused; the old pair keeps being served.
      copyFileSync(b.certFile, `${certFile}.tmp`);
      renameSync(`${certFile}.tmp`, certFile);
      certs.check();
      expect(await serialSeen()).toBe(a.serial);
      expect(lines().some((l) => l["msg"] === "cannot reload the TLS certificate; still serving the previous one")).toBe(true);
      copyFileSync(b.keyFile, `${keyFile}.tmp`);
      renameSync(`${keyFile}.tmp`, keyFile);
      certs.check();
      expect(await serialSeen()).toBe(b.serial);
      expect(metrics.render()).toContain("strata_tls_certificate_reloads_total 1");
      expect(metrics.render()).toContain("strata_tls_certificate_reload_errors_total 1");
    } finally {
      server.close();
      certs.close();
    }
  });

  it.skipIf(!requirePeer("openssl", "openssl"))("refuses clients below -tlsMinVersion", async () => {
    const ca = makeCa(dir.path, "ca13");
    const c = makeServerCert(dir.path, "tls13", ca);
    const { log } = captureLog();
    const certs = new CertReloader({ flags: { enabled: true, certFile: c.certFile, keyFile: c.keyFile, minVersion: "TLS13", cipherSuites: [] }, log, checkIntervalMs: 60_000 });
    const server = createServer((_req, res) => res.end("ok"), certs);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;
    const hello = async (maxVersion: "TLSv1.2" | "TLSv1.3"): Promise<string> => {
      const s = connect({ host: "127.0.0.1", port, ca: ca.certPem, servername: "localhost", maxVersion });
      try {
        await once(s, "secureConnect");
        return s.getProtocol() ?? "";
      } finally {
        s.destroy();
      }
    };
    try {
      expect(await hello("TLSv1.3")).toBe("TLSv1.3");
      await expect(hello("TLSv1.2")).rejects.toThrow(/version|protocol/i);
    } finally {
      server.close();
      certs.close();
    }
  });
});
