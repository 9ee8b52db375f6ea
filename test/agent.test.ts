import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBuilt, startAgent, startCounterExporter, startProxy, type AgentProc, type CounterExporter, type Proxy } from "./lib/agent.js";
import { clusterBuilt, forceFlush, startCluster, type Cluster } from "./lib/cluster.js";
import { tempDir } from "./lib/procs.js";
import { startReceiver, waitUntil } from "./lib/rw-receiver.js";

/**
 * strata-agent as a real process in front of a real Strata cluster: durable remote write
 * through an outage of the remote end and a SIGKILL of the agent, two URLs of which one is
 * down, stale markers for targets that go away, up=0 for targets that stop answering, and
 * reloads. The outage lasts STRATA_AGENT_OUTAGE_SECONDS (default 20; the 60 works too).
 */

const built = clusterBuilt() && agentBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const OUTAGE_MS = Number(process.env["STRATA_AGENT_OUTAGE_SECONDS"] ?? "20") * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Matrix {
  data: { result: { metric: Record<string, string>; values?: [number, string][]; value?: [number, string] }[] };
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!built)("strata-agent processes", () => {
  let c: Cluster;
  const dir = tempDir("agent-e2e");
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
  });
  afterAll(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => undefined);
    await c?.stop();
    dir.remove();
  });

  const query = async (tenant: string, q: string): Promise<Matrix["data"]["result"]> => {
    const r = await c.api(`/select/${tenant}/prometheus/api/v1/query?query=${encodeURIComponent(q)}&time=${Date.now() / 1000}`);
    if (r.status !== 200) throw new Error(`query ${q}: HTTP ${r.status} ${r.text}`);
    return (r.json as Matrix).data.result;
  };

  it(
    "loses nothing through a remote outage and a SIGKILL of the agent; the other URL keeps receiving",
    async () => {
      const exp: CounterExporter = await startCounterExporter();
      cleanups.push(() => exp.close());
      const insertAddr = c.insertUrl.replace("http://", "");
      const proxy: Proxy = await startProxy(insertAddr);
      cleanups.push(() => proxy.close());
      const cfg = join(dir.path, "durable.yml");
      writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: durable\n    static_configs: [{ targets: ["${exp.addr}"] }]\n`);
      const agent: AgentProc = await startAgent([
        `-promscrape.config=${cfg}`,
        `-remoteWrite.url=http://${proxy.addr}/insert/0/prometheus/api/v1/write`,
        `-remoteWrite.url=${c.insertUrl}/insert/1/prometheus/api/v1/write`,
        `-remoteWrite.tmpDataPath=${join(dir.path, "queues")}`,
        "-remoteWrite.retryMaxInterval=1s",
      ]);
      cleanups.push(() => agent.proc.stop());
      await sleep(3000);
      await proxy.down();
      const outageStart = Date.now();
      // URL 2 keeps receiving while URL 1 is down.
      await sleep(Math.min(5000, OUTAGE_MS / 3));
      const beforeKill = exp.served[exp.served.length - 1]!.value;
      await waitFor("tenant 1 receiving during the outage", async () => {
        await forceFlush(c);
        const r = await query("1", "agent_test_counter");
        return Number(r[0]?.value?.[1]) >= beforeKill;
      }, 15_000);
      expect(await agent.metric('strata_agent_remotewrite_pending_bytes{url="1:')).toBeGreaterThan(0);
      const killAt = Date.now();
      await agent.proc.kill9();
      await sleep(1500);
      await agent.restart();
      await sleep(Math.max(0, outageStart + OUTAGE_MS - Date.now()));
      await proxy.up();
      await waitFor("the queue of URL 1 to drain", async () => (await agent.metric('strata_agent_remotewrite_pending_bytes{url="1:')) === 0, 60_000);
      const checkAt = Date.now();
      await sleep(1500);
      await forceFlush(c);
      // Every sample scraped while the agent ran (except the scrape in flight at the kill) is stored, once.
      const want = exp.served.filter((s) => s.at < killAt - 1100 || (s.at > killAt && s.at < checkAt - 1100)).map((s) => s.value);
      expect(want.length).toBeGreaterThan(OUTAGE_MS / 1000 - 5);
      for (const tenant of ["0", "1"]) {
        const r = await query(tenant, 'agent_test_counter{job="durable"}[15m]');
        expect(r).toHaveLength(1);
        const got = new Set(r[0]!.values!.map(([, v]) => Number(v)));
        expect(want.filter((v) => !got.has(v))).toEqual([]);
        expect(r[0]!.values!.length).toBe(got.size);
      }
      expect(await agent.metric("strata_agent_remotewrite_blocks_dropped_total")).toBe(0);
    },
    OUTAGE_MS + 120_000,
  );

  it("targets that go away get stale markers, targets that stop answering report up=0, and a bad reload keeps the targets", async () => {
    const a = await startCounterExporter("stale_test_counter");
    const b = await startCounterExporter("stale_test_counter");
    cleanups.push(() => a.close(), () => b.close());
    const sd = join(dir.path, "targets.json");
    writeFileSync(sd, JSON.stringify([{ targets: [a.addr, b.addr], labels: { team: "t" } }]));
    const cfg = join(dir.path, "stale.yml");
    writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: stale\n    file_sd_configs: [{ files: ["${sd}"] }]\n`);
    const agent = await startAgent([`-promscrape.config=${cfg}`, `-remoteWrite.url=${c.insertUrl}/insert/2/prometheus/api/v1/write`, `-remoteWrite.tmpDataPath=${join(dir.path, "q2")}`]);
    cleanups.push(() => agent.proc.stop());
    const upOf = async (inst: string) => {
      await forceFlush(c);
      return (await query("2", `up{instance="${inst}"}`))[0]?.value?.[1];
    };
    await waitFor("both targets up", async () => (await upOf(a.addr)) === "1" && (await upOf(b.addr)) === "1", 30_000);
    // b stops answering: up=0 (and its counter goes stale at once).
    b.up = false;
    await waitFor("up=0 for the target that stopped answering", async () => (await upOf(b.addr)) === "0", 30_000);
    expect(await query("2", `stale_test_counter{instance="${b.addr}"}`)).toEqual([]);
    // a leaves the file: its series go stale, so an instant query no longer finds them (the
    // 5 minute lookback would otherwise keep answering).
    writeFileSync(sd, JSON.stringify([{ targets: [b.addr], labels: { team: "t" } }]));
    await waitFor("stale markers for the removed target", async () => {
      await forceFlush(c);
      return (await query("2", `up{instance="${a.addr}"}`)).length === 0 && (await query("2", `stale_test_counter{instance="${a.addr}"}`)).length === 0;
    }, 30_000);
    expect(await upOf(b.addr)).toBe("0");
    // A bad file on SIGHUP: the old targets stay, the reload is reported failed.
    writeFileSync(cfg, "scrape_configs:\n  - job_name: stale\n    scrape_interval: fast\n");
    agent.proc.child.kill("SIGHUP");
    await waitFor("failed reload reported", async () => (await agent.metric("strata_agent_config_last_reload_successful")) === 0, 10_000);
    const t = (await (await fetch(`${agent.url}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: Record<string, string> }[] } };
    expect(t.data.activeTargets.map((x) => x.labels["instance"])).toEqual([b.addr]);
    expect(agent.proc.output()).toContain("stale.yml:3: scrape_configs[0].scrape_interval: invalid duration");
  }, 120_000);

  it("a Prometheus agent-mode prometheus.yml works as it is: its remote_write section is used when no -remoteWrite.url is given", async () => {
    const rcv = await startReceiver();
    cleanups.push(() => rcv.close());
    const exp = await startCounterExporter("agent_mode_counter");
    cleanups.push(() => exp.close());
    const cfg = join(dir.path, "agent-mode.yml");
    writeFileSync(
      cfg,
      `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: am\n    static_configs: [{ targets: ["${exp.addr}"] }]\nremote_write:\n  - url: ${rcv.url}\n    headers: { X-Test: "1" }\n    write_relabel_configs:\n      - { source_labels: [__name__], regex: "scrape_.*", action: drop }\n`,
    );
    const agent = await startAgent([`-promscrape.config=${cfg}`, `-remoteWrite.tmpDataPath=${join(dir.path, "q3")}`]);
    cleanups.push(() => agent.proc.stop());
    await waitUntil("samples from the config's remote_write", () => rcv.find({ __name__: "agent_mode_counter" }).length === 1 && rcv.find({ __name__: "up" }).length === 1);
    expect(rcv.find({ __name__: "scrape_duration_seconds" })).toEqual([]);
  });

  it("-remoteWrite.version=2 writes remote write 2.0 that Strata insert stores", async () => {
    const exp = await startCounterExporter("rw2_counter");
    cleanups.push(() => exp.close());
    const cfg = join(dir.path, "rw2.yml");
    writeFileSync(cfg, `global: { scrape_interval: 1s }\nscrape_configs:\n  - job_name: rw2\n    static_configs: [{ targets: ["${exp.addr}"], labels: { ü: "välue" } }]\n`);
    const agent = await startAgent([`-promscrape.config=${cfg}`, "-remoteWrite.version=2", `-remoteWrite.url=${c.insertUrl}/insert/3/prometheus/api/v1/write`, `-remoteWrite.tmpDataPath=${join(dir.path, "q4")}`]);
    cleanups.push(() => agent.proc.stop());
    await waitFor("2.0 samples stored", async () => {
      await forceFlush(c);
      return (await query("3", 'rw2_counter{job="rw2"}')).length === 1;
    }, 30_000);
    const r = await query("3", "rw2_counter");
    expect(r[0]!.metric).toEqual({ __name__: "rw2_counter", job: "rw2", instance: exp.addr, ü: "välue" });
    expect(await agent.metric('strata_agent_remotewrite_blocks_rejected_total{url="1:')).toBe(0);
  });
});
