import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawRequest, startAuth, type AuthProcess } from "./lib/auth.js";
import { makeCa, makeExpiredServerCert, makeServerCert, type TestCa } from "./lib/certs.js";
import { clusterBuilt, startCluster, type Cluster } from "./lib/cluster.js";
import { startPrometheus, type Peer } from "./lib/peers.js";
import { freePort, isBuilt, requirePeer, tempDir, waitFor } from "./lib/procs.js";

/**
 * Debian's Prometheus remote-writes THROUGH strata-auth over TLS with basic_auth into a real
 * cluster (tenant 5), and a Grafana-style client reads it back through strata-auth with a bearer
 * token. The same Prometheus has four more remote_write queues that must be refused: a wrong
 * password, no password, a CA that did not sign strata-auth's certificate, and a strata-auth
 * whose certificate has expired. The CAs and certificates are made at test time.
 */

const built = clusterBuilt() && isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("openssl", "openssl") && requirePeer("prometheus", "prometheus");

interface Vector {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describe.skipIf(!available)("Prometheus → strata-auth (TLS, basic auth) → cluster; Grafana-style reads with a bearer token", () => {
  const dir = tempDir("auth-prom");
  let c: Cluster;
  let ca: TestCa;
  let other: TestCa;
  let auth: AuthProcess;
  let expired: AuthProcess;
  let prom: Peer;
  const PW = "prom-pw-6d1e";
  const TOKEN = "grafana-token-b83f";

  beforeAll(async () => {
    ca = makeCa(dir.path, "test-ca");
    other = makeCa(dir.path, "other-ca");
    const good = makeServerCert(dir.path, "auth", ca);
    const old = makeExpiredServerCert(dir.path, "auth-expired", ca);
    c = await startCluster({ storageNodes: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    const config = `users:
  - username: prometheus
    password: ${PW}
    url_prefix: ${c.insertUrl}/insert/5/prometheus
  - bearer_token: ${TOKEN}
    url_prefix: ${c.selectUrl}/select/5/prometheus
`;
    const tls = (cert: { certFile: string; keyFile: string }) => ["-tls", `-tlsCertFile=${cert.certFile}`, `-tlsKeyFile=${cert.keyFile}`];
    auth = await startAuth(config, { scheme: "https", healthCa: ca.certPem, flags: tls(good) });
    // An expired certificate still loads (the operator sees its date in /metrics); clients refuse it.
    expired = await startAuth(config, { flags: tls(old), scheme: "https", healthInsecure: true });
    writeFileSync(join(dir.path, "pw"), `${PW}\n`);
    writeFileSync(join(dir.path, "wrong-pw"), "not-the-password\n");
    const rw = (name: string, url: string, caFile: string, pwFile?: string) => `  - name: ${name}
    url: ${url}/api/v1/write
    tls_config: { ca_file: ${caFile}, server_name: localhost }
${pwFile !== undefined ? `    basic_auth: { username: prometheus, password_file: ${pwFile} }\n` : ""}    queue_config: { batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s }
    write_relabel_configs:
      - { source_labels: [__name__], regex: "up|prometheus_build_info", action: keep }
      - { target_label: via, replacement: ${name} }
`;
    const promPort = await freePort();
    prom = await startPrometheus(
      dir.path,
      `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: ["127.0.0.1:${promPort}"] }]
remote_write:
${rw("good", auth.url, ca.certFile, join(dir.path, "pw"))}${rw("wrongpw", auth.url, ca.certFile, join(dir.path, "wrong-pw"))}${rw("nopw", auth.url, ca.certFile)}${rw("otherca", auth.url, other.certFile, join(dir.path, "pw"))}${rw("expired", expired.url, ca.certFile, join(dir.path, "pw"))}`,
      [],
      promPort,
    );
    await prom.ready();
  }, 120_000);

  afterAll(async () => {
    await prom?.proc.stop();
    await auth?.stop();
    await expired?.stop();
    await c?.stop();
    dir.remove();
  }, 60_000);

  const query = async (q: string, authorization?: string) =>
    rawRequest(auth.url, `/api/v1/query?query=${encodeURIComponent(q)}`, { ca: ca.certPem, ...(authorization !== undefined ? { headers: { authorization } } : {}) });

  it("stores what Prometheus sends with the right password, readable with the bearer token", async () => {
    const v = await waitFor(
      "Prometheus' up series in tenant 5",
      async () => {
        const r = await query('up{job="prometheus"}', `Bearer ${TOKEN}`);
        const j = JSON.parse(r.body) as Vector;
        return r.status === 200 && j.data.result.length > 0 ? j : undefined;
      },
      60_000,
      500,
    );
    // Only the queue with the right password over the trusted CA got through.
    expect(v.data.result.map((s) => s.metric["via"])).toEqual(["good"]);
    const vias = JSON.parse((await query("count by (via) ({via!=\"\"})", `Bearer ${TOKEN}`)).body) as Vector;
    expect(vias.data.result.map((s) => s.metric["via"])).toEqual(["good"]);
    // Reads without the token, or with the writer's password, are refused.
    expect((await query("up")).status).toBe(401);
    expect((await query("up", "Bearer wrong-token")).status).toBe(401);
  }, 90_000);

  it("refuses a wrong password, no password, a certificate from another CA and an expired certificate", async () => {
    const metrics = async (): Promise<string> => (await rawRequest(auth.url, "/metrics", { ca: ca.certPem })).body;
    await waitFor(
      "refusals counted by strata-auth",
      async () => {
        const m = await metrics();
        return /vmauth_http_request_errors_total\{reason="invalid_auth_token"\} [1-9]/.test(m) && /vmauth_http_request_errors_total\{reason="missing_credentials"\} [1-9]/.test(m) ? m : undefined;
      },
      60_000,
    );
    // Prometheus itself refuses both TLS peers and logs why, per queue.
    const log = await waitFor(
      "Prometheus' TLS errors",
      async () => {
        const out = prom.proc.output();
        return /remote_name=otherca[^\n]*(unknown authority|not signed)/.test(out) && /remote_name=expired[^\n]*expired/.test(out) ? out : undefined;
      },
      60_000,
    );
    expect(log).toMatch(/remote_name=wrongpw[^\n]*401/);
    expect(log).toMatch(/remote_name=nopw[^\n]*401/);
    // Nothing from the refused queues reached the cluster, in tenant 5 or any other.
    expect((JSON.parse((await query('{via=~"wrongpw|nopw|otherca|expired"}', `Bearer ${TOKEN}`)).body) as Vector).data.result).toEqual([]);
    const all = await fetch(`${c.selectUrl}/select/0/prometheus/api/v1/query?query=${encodeURIComponent('{via!=""}')}`);
    expect(((await all.json()) as Vector).data.result).toEqual([]);
  }, 120_000);
});
