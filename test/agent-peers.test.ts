import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentBuilt, startAgent } from "./lib/agent.js";
import { clusterBuilt, forceFlush, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, requirePeer, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * The agent next to the real scrapers it replaces. One prometheus.yml (global + scrape_configs
 * for Debian's prometheus-node-exporter and a real Prometheus' own /metrics) is used unchanged
 * by the agent and by Debian's vmagent; a real Prometheus scrapes the same targets with the same
 * file plus its remote_write section. Each writes to its own Strata tenant, and PromQL answers
 * over the tenants agree (count by (__name__), rate(...)).
 */

const peers = ["prometheus", "prometheus-node-exporter", "vmagent"] as const;
const pkgOf: Record<(typeof peers)[number], string> = { prometheus: "prometheus", "prometheus-node-exporter": "prometheus-node-exporter", vmagent: "victoria-metrics" };
const built = clusterBuilt() && agentBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && peers.every((p) => requirePeer(p, pkgOf[p]));

type Vector = { metric: Record<string, string>; value: [number, string] }[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!available)("agent next to Prometheus and vmagent", () => {
  let c: Cluster;
  const procs: Proc[] = [];
  const dir = tempDir("agent-peers");
  const yml = join(dir.path, "prometheus.yml");
  let promPort = 0;
  let nePort = 0;

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    [promPort, nePort] = [await freePort(), await freePort()];
    procs.push(startProcess("prometheus-node-exporter", [`--web.listen-address=127.0.0.1:${nePort}`, "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.loadavg", "--collector.stat"]));
    const scrape = `global:
  scrape_interval: 2s
  external_labels: { scraper_site: lab }
scrape_configs:
  - job_name: node
    static_configs: [{ targets: ["127.0.0.1:${nePort}"], labels: { env: test } }]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: node_scrape_collector_.*
        action: drop
  - job_name: prometheus
    static_configs: [{ targets: ["127.0.0.1:${promPort}"] }]
`;
    writeFileSync(yml, scrape);
    const promYml = join(dir.path, "prometheus-peer.yml");
    writeFileSync(promYml, `${scrape}remote_write:\n  - url: ${c.insertUrl}/insert/0/prometheus/api/v1/write\n    queue_config: { batch_send_deadline: 1s }\n`);
    procs.push(
      startProcess("prometheus", [`--config.file=${promYml}`, `--web.listen-address=127.0.0.1:${promPort}`, `--storage.tsdb.path=${join(dir.path, "prom")}`]),
    );
    await waitHealthy(`http://127.0.0.1:${promPort}/-/ready`, procs[procs.length - 1], 30_000);
    const agent = await startAgent([`-promscrape.config=${yml}`, `-remoteWrite.url=${c.insertUrl}/insert/1/prometheus/api/v1/write`, `-remoteWrite.tmpDataPath=${join(dir.path, "agent-q")}`]);
    procs.push(agent.proc);
    const vmPort = await freePort();
    procs.push(
      startProcess("vmagent", [`-promscrape.config=${yml}`, `-remoteWrite.url=${c.insertUrl}/insert/2/prometheus/api/v1/write`, `-remoteWrite.tmpDataPath=${join(dir.path, "vmagent-q")}`, `-httpListenAddr=127.0.0.1:${vmPort}`, "-remoteWrite.flushInterval=1s"]),
    );
    await waitHealthy(`http://127.0.0.1:${vmPort}/health`, procs[procs.length - 1]);
    // Enough scrapes for a 20s rate window on every scraper.
    await sleep(26_000);
    await forceFlush(c);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await c?.stop();
    dir.remove();
  });

  const query = async (tenant: number, q: string): Promise<Vector> => {
    const r = await c.api(`/select/${tenant}/prometheus/api/v1/query?query=${encodeURIComponent(q)}&time=${(Date.now() - 3000) / 1000}`);
    expect(r.status, r.text).toBe(200);
    return (r.json as { data: { result: Vector } }).data.result;
  };
  const countByName = async (tenant: number, job: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const s of await query(tenant, `count by (__name__) ({job="${job}"})`)) out[s.metric["__name__"]!] = Number(s.value[1]);
    return out;
  };

  it("the same prometheus.yml passes the agent's and vmagent's -dryRun", () => {
    const a = spawnSync(process.execPath, [serviceMain("agent"), `-promscrape.config=${yml}`, "-dryRun"], { encoding: "utf8" });
    expect(a.status, a.stderr).toBe(0);
    const v = spawnSync("vmagent", [`-promscrape.config=${yml}`, "-dryRun"], { encoding: "utf8" });
    expect(v.stderr).not.toContain("error");
  });

  it("count by (__name__) of node_exporter's series is the same as Prometheus' and vmagent's", async () => {
    const [prom, agent, vm] = [await countByName(0, "node"), await countByName(1, "node"), await countByName(2, "node")];
    expect(Object.keys(prom).length).toBeGreaterThan(20);
    expect(prom["up"]).toBe(1);
    expect(prom["scrape_samples_post_metric_relabeling"]).toBe(1);
    expect(prom["node_scrape_collector_success"]).toBeUndefined();
    expect(agent).toEqual(prom);
    // vmagent writes its own scrape_timeout_seconds and no scrape_series_added; everything else matches.
    const { scrape_series_added: _a, ...agentRest } = agent;
    const { scrape_series_added: _v, scrape_timeout_seconds: _t, ...vmRest } = vm;
    expect(vmRest).toEqual(agentRest);
  });

  it("the series of a real Prometheus' /metrics and their labels match", async () => {
    const [prom, agent] = [await countByName(0, "prometheus"), await countByName(1, "prometheus")];
    // Prometheus' own metrics change a little between scrapes (new handler series): compare the
    // names, and the counts of the stable families.
    const names = (o: Record<string, number>) => Object.keys(o).sort();
    const common = names(prom).filter((n) => n in agent);
    expect(common.length).toBeGreaterThan(names(prom).length * 0.95);
    expect(common.length).toBeGreaterThan(names(agent).length * 0.95);
    for (const n of ["up", "go_goroutines", "process_cpu_seconds_total", "prometheus_build_info", "go_gc_duration_seconds", "scrape_duration_seconds"]) expect(agent[n], n).toBe(prom[n]);
    const p = await query(0, 'prometheus_build_info{job="prometheus"}');
    const a = await query(1, 'prometheus_build_info{job="prometheus"}');
    expect(a.map((s) => s.metric)).toEqual(p.map((s) => s.metric));
    expect(a[0]!.metric).toMatchObject({ scraper_site: "lab", instance: `127.0.0.1:${promPort}`, job: "prometheus" });
  });

  it("rate(...) answers agree (within a scrape of phase difference)", async () => {
    const cases = [
      'sum(rate(node_cpu_seconds_total{job="node"}[20s]))',
      'sum(rate(process_cpu_seconds_total{job="prometheus"}[20s])) > -1',
      'sum(rate(prometheus_tsdb_head_samples_appended_total{job="prometheus"}[20s]))',
    ];
    for (const q of cases) {
      const [p, a] = [await query(0, q), await query(1, q)];
      expect(p, q).toHaveLength(1);
      expect(a, q).toHaveLength(1);
      const [pv, av] = [Number(p[0]!.value[1]), Number(a[0]!.value[1])];
      // One scrape interval (2s) of phase difference in a 20s window: allow 25% (or a small absolute gap).
      expect(Math.abs(pv - av), `${q}: Prometheus ${pv}, agent ${av}`).toBeLessThanOrEqual(Math.max(0.25 * Math.abs(pv), 0.05));
    }
    const up = await query(1, 'up{job=~"node|prometheus"}');
    expect(up.map((s) => s.value[1])).toEqual(["1", "1"]);
  });
});
