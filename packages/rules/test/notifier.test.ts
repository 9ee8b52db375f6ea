import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AlertmanagerNotifier, type NotifierAlert } from "@strata/rules";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The Alertmanager client over TLS with basic and bearer auth, against a local HTTPS server
 * whose certificate openssl makes for 127.0.0.1 (trusted through -notifier.tlsCAFile).
 */

const hasOpenssl = spawnSync("sh", ["-c", "command -v openssl"]).status === 0;
const alert: NotifierAlert = { labels: { alertname: "A" }, annotations: { summary: "s" }, startsAt: "2026-01-01T00:00:00.000Z", endsAt: "2026-01-01T00:04:00.000Z", generatorURL: "http://x/graph" };

describe.skipIf(!hasOpenssl)("Alertmanager notifier", () => {
  const dir = mkdtempSync(join(tmpdir(), "strata-notifier-"));
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const got: { path: string; auth: string; body: unknown }[] = [];
  let server: Server;
  let url = "";

  beforeAll(async () => {
    const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        got.push({ path: req.url ?? "", auth: req.headers.authorization ?? "", body: JSON.parse(Buffer.concat(chunks).toString()) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
    const a = server.address();
    url = `https://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/am`;
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("posts to <url>/api/v2/alerts with basic or bearer auth, trusting the given CA", async () => {
    got.length = 0;
    const n = new AlertmanagerNotifier([
      { url, options: { auth: { basicAuth: { username: "am", password: "secret" } }, tls: { caFile: cert } } },
      { url, options: { auth: { bearerToken: "tok" }, tls: { caFile: cert } } },
    ]);
    n.send([alert]);
    await n.close();
    expect(got.map((g) => [g.path, g.auth]).sort()).toEqual([
      ["/am/api/v2/alerts", `Basic ${Buffer.from("am:secret").toString("base64")}`],
      ["/am/api/v2/alerts", "Bearer tok"],
    ]);
    expect(got[0]!.body).toEqual([alert]);
    expect(n.targets.map((t) => [t.sent, t.errors])).toEqual([[1, 0], [1, 0]]);
  });

  it("refuses a certificate it cannot verify (counted as an error), unless told to skip verification", async () => {
    got.length = 0;
    const strict = new AlertmanagerNotifier([{ url, options: {} }]);
    strict.send([alert]);
    await strict.close();
    expect(strict.targets[0]!.errors).toBe(1);
    expect(got).toEqual([]);
    const lax = new AlertmanagerNotifier([{ url, options: { tls: { insecureSkipVerify: true } } }]);
    lax.send([alert]);
    await lax.close();
    expect(lax.targets[0]!.sent).toBe(1);
  });
});
