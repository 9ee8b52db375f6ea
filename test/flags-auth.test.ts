import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAuth, type AuthProcess } from "./lib/auth.js";
import { clusterBuilt, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, isBuilt, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Issue 19's -flagsAuthKey on every service's /flags: insert, storage, agent, alert and auth run
 * as processes with the key given as file:///path (and -httpAuth.* set, which the key overrides on
 * /flags). /flags refuses a request without the key or with a wrong one (401,
 * WWW-Authenticate), answers the right one with every flag, secrets shown as `secret`; the key
 * never shows in /flags, /metrics, the logs or -help.
 */
const SERVICES = ["storage", "insert", "agent", "alert", "auth"] as const;
const built = clusterBuilt() && isBuilt("agent") && isBuilt("alert") && isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const FLAGS_KEY = "flags-Secret-7d1e";
const PASSWORD = "pass-Secret-9a30";
const RW_PASSWORD = "rw-Secret-55c1";
const SECRETS = [FLAGS_KEY, PASSWORD, RW_PASSWORD];
const ADMIN = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}`;

describe.skipIf(!built)(`/flags behind -flagsAuthKey on every service${built ? "" : " — skipped: services are not built (pnpm build)"}`, () => {
  const dir = tempDir("flags-auth");
  const keyFile = join(dir.path, "flags.key");
  const secured = [`-flagsAuthKey=file://${keyFile}`, "-httpAuth.username=admin", `-httpAuth.password=${PASSWORD}`];
  let cluster: Cluster | undefined;
  let auth: AuthProcess | undefined;
  const procs: Proc[] = [];
  const urls: Record<(typeof SERVICES)[number], string> = { storage: "", insert: "", agent: "", alert: "", auth: "" };
  const outputs: Record<(typeof SERVICES)[number], () => string> = { storage: () => "", insert: () => "", agent: () => "", alert: () => "", auth: () => "" };

  const start = async (name: "agent" | "alert", args: readonly string[]): Promise<void> => {
    const port = await freePort();
    const proc = startProcess(process.execPath, [serviceMain(name), `-httpListenAddr=127.0.0.1:${port}`, ...args, ...secured]);
    procs.push(proc);
    urls[name] = `http://127.0.0.1:${port}`;
    outputs[name] = proc.output;
    await waitHealthy(`${urls[name]}/health`, proc);
  };

  beforeAll(async () => {
    writeFileSync(keyFile, `${FLAGS_KEY}\n`);
    writeFileSync(join(dir.path, "rules.yml"), "groups:\n  - name: g\n    rules:\n      - record: one\n        expr: vector(1)\n");
    cluster = await startCluster({ storageNodes: 1, storageFlags: secured, insertFlags: secured });
    const c = cluster;
    urls.storage = `http://${c.storage[0]!.httpAddr}`;
    urls.insert = c.insertUrl;
    outputs.storage = () => c.storage[0]!.proc.output();
    outputs.insert = c.insert.output;
    const insertHost = new URL(c.insertUrl).host;
    await start("agent", [`-remoteWrite.url=http://strata:${RW_PASSWORD}@${insertHost}/insert/0/prometheus/api/v1/write`, `-remoteWrite.tmpDataPath=${join(dir.path, "agent")}`]);
    await start("alert", [`-rule=${join(dir.path, "rules.yml")}`, `-datasource.url=${c.selectUrl}/select/0/prometheus`]);
    const a = await startAuth(`users:\n  - username: reader\n    password: r\n    url_prefix: ${c.selectUrl}\n`, { flags: secured });
    auth = a;
    urls.auth = a.url;
    outputs.auth = a.proc.output;
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.map((p) => p.stop()), auth?.stop()]);
    await cluster?.stop();
    dir.remove();
  });

  const get = async (url: string, authorization?: string): Promise<{ status: number; body: string; www: string | null }> => {
    const r = await fetch(url, authorization === undefined ? {} : { headers: { authorization } });
    return { status: r.status, body: await r.text(), www: r.headers.get("www-authenticate") };
  };

  it.each(SERVICES)("%s: /flags wants -flagsAuthKey, even with -httpAuth.* credentials", async (name) => {
    for (const [path, authorization] of [
      ["/flags", undefined],
      ["/flags", ADMIN],
      ["/flags?authKey=wrong", ADMIN],
      ["/%66lags", ADMIN],
    ] as const) {
      const r = await get(`${urls[name]}${path}`, authorization);
      expect([path, r.status, r.www]).toEqual([path, 401, 'Basic realm="Restricted"']);
    }
    const ok = await get(`${urls[name]}/flags?authKey=${FLAGS_KEY}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('-flagsAuthKey="secret"\n');
    expect(ok.body).toContain('-httpAuth.password="secret"\n');
    expect(ok.body).toContain('-httpAuth.username="admin"\n');
    if (name === "agent") expect(ok.body).toContain(`-remoteWrite.url="http://strata:secret@`);
    for (const s of SECRETS) expect(ok.body).not.toContain(s);
  });

  it.each(SERVICES)("%s: the key shows in no /metrics, log line or -help; -help lists -flagsAuthKey", async (name) => {
    const metrics = await get(`${urls[name]}/metrics`, ADMIN);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/strata_http_auth_failures_total\{reason="invalid_auth_key"\} [1-9]/);
    const help = execFileSync(process.execPath, [serviceMain(name), ...secured, "-help"], { encoding: "utf8" });
    expect(help).toContain("  -flagsAuthKey string\n");
    for (const s of SECRETS) {
      expect(metrics.body).not.toContain(s);
      expect(outputs[name]()).not.toContain(s);
      expect(help).not.toContain(s);
    }
  });
});
