import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, remoteWriteBody, startCluster, type Cluster } from "./lib/cluster.js";
import { basicAuth, rawRequest, startAuth, startEcho, type AuthProcess, type Running } from "./lib/auth.js";
import { isBuilt, serviceMain, tempDir } from "./lib/procs.js";

/**
 * strata-auth as a process in front of a real Strata cluster and of echo backends: a user mapped
 * to tenant 42 reaches only tenant 42 whatever path tricks it sends (property test), load
 * balancing, a broken backend skipped, wrong credentials, SIGHUP reload.
 */

const built = clusterBuilt() && isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

interface LabelValues {
  status: string;
  data?: string[];
}

describe.skipIf(!built)("strata-auth in front of a cluster", () => {
  let c: Cluster;
  let auth: AuthProcess;
  const now = Date.now();

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    // Data only tenant 1 has, and data of tenant 42, written straight to insert.
    for (const [tenant, name] of [["1", "tenant1_secret"], ["42", "tenant42_public"], ["0", "tenant0_secret"]] as const) {
      const w = await remoteWrite(c.insertUrl, [{ labels: { __name__: name, job: "t" }, samples: [[now - 1000, 1], [now, 2]] }], tenant);
      expect(w.status).toBe(204);
    }
    await forceFlush(c);
    auth = await startAuth(`
users:
  - username: t42
    password: pw42
    url_map:
      - src_paths: ["/insert/42/.+"]
        url_prefix: ${c.insertUrl}
      - src_paths: ["/select/42/.+"]
        url_prefix: ${c.selectUrl}
  - username: reader42
    password: pw
    url_prefix: ${c.selectUrl}/select/42/prometheus
  - username: writer42
    password: pw
    url_prefix: ${c.insertUrl}/insert/42/prometheus
`);
  });

  afterAll(async () => {
    await auth?.stop();
    await c?.stop();
  });

  const t42 = { authorization: basicAuth("t42", "pw42") };

  it("lets the tenant-42 user read and write tenant 42", async () => {
    const body = Buffer.from(remoteWriteBody([{ labels: { __name__: "written_via_auth", job: "t" }, samples: [[now, 3]] }]));
    const w = await rawRequest(auth.url, "/insert/42/prometheus/api/v1/write", {
      method: "POST",
      headers: { ...t42, "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
      body,
    });
    expect(w.status).toBe(204);
    const w2 = await rawRequest(auth.url, "/api/v1/write", {
      method: "POST",
      headers: { authorization: basicAuth("writer42", "pw"), "content-type": "application/x-protobuf", "content-encoding": "snappy", "x-prometheus-remote-write-version": "0.1.0" },
      body: Buffer.from(remoteWriteBody([{ labels: { __name__: "written_via_prefix", job: "t" }, samples: [[now, 4]] }])),
    });
    expect(w2.status).toBe(204);
    await forceFlush(c);
    const r = await rawRequest(auth.url, "/select/42/prometheus/api/v1/label/__name__/values", { headers: t42 });
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as LabelValues).data).toEqual(["tenant42_public", "written_via_auth", "written_via_prefix"]);
    const r2 = await rawRequest(auth.url, "/api/v1/label/__name__/values", { headers: { authorization: basicAuth("reader42", "pw") } });
    expect((JSON.parse(r2.body) as LabelValues).data).toEqual(["tenant42_public", "written_via_auth", "written_via_prefix"]);
    // Tenant 1 never got them.
    const direct = await c.api("/select/1/prometheus/api/v1/label/__name__/values");
    expect((direct.json as LabelValues).data).toEqual(["tenant1_secret"]);
  });

  it("refuses a wrong password with 401", async () => {
    const r = await rawRequest(auth.url, "/select/42/prometheus/api/v1/labels", { headers: { authorization: basicAuth("t42", "nope") } });
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });

  // Tenant segments and path tricks: other tenants, their encodings, dot segments raw and encoded,
  // encoded slashes, double encodings, backslashes, project IDs.
  const tenantPiece = fc.constantFrom("42", "1", "0", "042", "42:0", "1:0", "42:1", "%31", "%34%32", "4%32", "42%2F..%2F1", "42/../1", "42/%2e%2e/1", "42%2f%2e%2e%2f1", "..", "%2e%2e", "%252e%252e", "42\\..\\1", "42/./../0", "", "multitenant");
  const suffix = fc.constantFrom("prometheus/api/v1/label/__name__/values", "prometheus/api/v1/series?match[]={job=%22t%22}", "prometheus/api/v1/export?match[]={job=%22t%22}", "prometheus/api/v1/query?query=tenant1_secret", "prometheus/../../select/1/prometheus/api/v1/label/__name__/values", "prometheus/%2e%2e/%2e%2e/1/prometheus/api/v1/labels");
  const lead = fc.constantFrom("/select/", "//select/", "/select//", "/./select/", "/x/../select/", "/%73elect/", "/select/42/../", "/delete/");

  it("never shows the tenant-42 user another tenant's data, whatever the path (property test)", async () => {
    await fc.assert(
      fc.asyncProperty(lead, tenantPiece, suffix, fc.boolean(), async (l, t, s, viaPrefix) => {
        const path = viaPrefix ? `/${t}/${s}` : `${l}${t}/${s}`;
        const headers = viaPrefix ? { authorization: basicAuth("reader42", "pw") } : t42;
        const r = await rawRequest(auth.url, path, { headers });
        expect(r.body, path).not.toContain("tenant1_secret");
        expect(r.body, path).not.toContain("tenant0_secret");
        expect(r.status, path).not.toBe(500);
      }),
      { numRuns: 150 },
    );
  });

  it("never lets the tenant-42 user write into another tenant (property test)", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/insert/", "//insert/", "/x/../insert/", "/insert/42/../"), tenantPiece, fc.constantFrom("prometheus/api/v1/write", "prometheus/../../insert/1/prometheus/api/v1/write", "prometheus/api/v1/import/prometheus"), async (l, t, s) => {
        const path = `${l}${t}/${s}`;
        const isImport = s.endsWith("import/prometheus");
        const name = `evil_${n++}`;
        const body = isImport ? Buffer.from(`${name}{job="t"} 1\n`) : Buffer.from(remoteWriteBody([{ labels: { __name__: name, job: "t" }, samples: [[now, 1]] }]));
        const r = await rawRequest(auth.url, path, { method: "POST", headers: { ...t42, "content-type": isImport ? "text/plain" : "application/x-protobuf", "content-encoding": isImport ? "identity" : "snappy" }, body });
        expect(r.status, path).not.toBe(500);
      }),
      { numRuns: 100 },
    );
    await forceFlush(c);
    for (const tenant of ["0", "1", "1:0", "42:1", "0:42"]) {
      const r = await c.api(`/select/${tenant}/prometheus/api/v1/label/__name__/values`);
      expect(((r.json as LabelValues).data ?? []).filter((v) => v.startsWith("evil_")), `tenant ${tenant}`).toEqual([]);
    }
  });
});

describe.skipIf(!isBuilt("auth"))("strata-auth load balancing", () => {
  const echoes: Running[] = [];
  let auth: AuthProcess;
  let deadPort = 0;

  beforeAll(async () => {
    echoes.push(await startEcho("a"), await startEcho("b"));
    const dead = await startEcho("dead");
    deadPort = dead.port;
    await dead.proc.stop();
    auth = await startAuth(`
users:
  - username: lb
    password: x
    url_prefix: [${echoes[0]!.url}, ${echoes[1]!.url}]
  - username: failover
    password: x
    url_prefix: [http://127.0.0.1:${deadPort}, ${echoes[0]!.url}]
    load_balancing_policy: first_available
`, { flags: ["-failTimeout=1m"] });
  });

  afterAll(async () => {
    await auth?.stop();
    await Promise.all(echoes.map((e) => e.proc.stop()));
  });

  it("spreads requests over both backends", async () => {
    const names: string[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await rawRequest(auth.url, "/api/v1/query", { headers: { authorization: basicAuth("lb", "x") } });
      expect(r.status).toBe(200);
      names.push((JSON.parse(r.body) as { name: string }).name);
    }
    expect(names.filter((n) => n === "a").length).toBeGreaterThanOrEqual(2);
    expect(names.filter((n) => n === "b").length).toBeGreaterThanOrEqual(2);
  });

  it("skips a broken backend for -failTimeout", async () => {
    for (let i = 0; i < 5; i++) {
      const r = await rawRequest(auth.url, "/x", { method: "POST", headers: { authorization: basicAuth("failover", "x") }, body: "some body" });
      expect(r.status).toBe(200);
      expect((JSON.parse(r.body) as { name: string; bodyBytes: number }).bodyBytes).toBe(9);
    }
    const m = await rawRequest(auth.url, "/metrics");
    // The dead backend was tried once, then skipped.
    expect(m.body).toMatch(/vmauth_user_request_backend_errors_total\{username="failover"\} 1\n/);
    expect(m.body).toMatch(/vmauth_user_request_backend_requests_total\{username="failover"\} 6\n/);
  });

  it("reloads on SIGHUP, and keeps the old config when the new one is bad", async () => {
    const old = auth.proc.output().length;
    auth.writeConfig(`users:\n  - username: lb\n    password: x\n    url_prefx: ${echoes[0]!.url}\n`);
    auth.proc.child.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!auth.proc.output().slice(old).includes("cannot reload -auth.config")) {
      if (Date.now() > deadline) throw new Error(`no reload error logged:\n${auth.proc.output().slice(old)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(auth.proc.output().slice(old)).toContain(`${auth.configFile}:4: unknown key \\"url_prefx\\" in users[0]`);
    expect((await rawRequest(auth.url, "/y", { headers: { authorization: basicAuth("lb", "x") } })).status).toBe(200);
    auth.writeConfig(`users:\n  - username: newuser\n    password: y\n    url_prefix: ${echoes[1]!.url}\n`);
    auth.proc.child.kill("SIGHUP");
    for (;;) {
      const r = await rawRequest(auth.url, "/y", { headers: { authorization: basicAuth("newuser", "y") } });
      if (r.status === 200) break;
      if (Date.now() > deadline) throw new Error("the new config was not applied");
      await new Promise((res) => setTimeout(res, 50));
    }
    expect((await rawRequest(auth.url, "/y", { headers: { authorization: basicAuth("lb", "x") } })).status).toBe(401);
  });
});

describe.skipIf(!isBuilt("auth"))("strata-auth -dryRun", () => {
  it("exits 0 for a config that loads and 1 naming file, line and key for one that does not", () => {
    const dir = tempDir("auth-dry");
    try {
      const good = join(dir.path, "good.yml");
      const bad = join(dir.path, "bad.yml");
      writeFileSync(good, "users:\n  - username: a\n    password: b\n    url_prefix: http://127.0.0.1:1\n");
      writeFileSync(bad, "users:\n  - username: a\n    password: b\n    url_prefix: http://127.0.0.1:1\n    max_concurrent_request: 3\n");
      const ok = spawnSync(process.execPath, [serviceMain("auth"), `-auth.config=${good}`, "-dryRun"], { encoding: "utf8" });
      expect(ok.status).toBe(0);
      expect(ok.stdout).toContain(`-auth.config=${good} is valid: 1 users`);
      const no = spawnSync(process.execPath, [serviceMain("auth"), `-auth.config=${bad}`, "-dryRun"], { encoding: "utf8" });
      expect(no.status).toBe(1);
      expect(no.stdout + no.stderr).toContain(`${bad}:5: unknown key \\"max_concurrent_request\\" in users[0]`);
    } finally {
      dir.remove();
    }
  });
});
