import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { startAlertmanager, startPrometheus } from "./lib/peers.js";
import { freePort, requirePeer, startProcess, tempDir, waitFor, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * End to end with the real clients operators run (Debian packages): Prometheus scraping
 * node_exporter and itself with remote_write to insert; vmagent forwarding to insert; vmalert
 * evaluating rules against select and notifying Alertmanager; Prometheus federating from select.
 */

const peers = ["prometheus", "prometheus-node-exporter", "prometheus-alertmanager", "vmagent", "vmalert"] as const;
const pkgOf: Record<(typeof peers)[number], string> = {
  prometheus: "prometheus",
  "prometheus-node-exporter": "prometheus-node-exporter",
  "prometheus-alertmanager": "prometheus-alertmanager",
  vmagent: "victoria-metrics",
  vmalert: "victoria-metrics",
};
const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && peers.every((p) => requirePeer(p, pkgOf[p]));

interface PromVector {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}


const sortByLabels = (r: PromVector["data"]["result"]) => [...r].sort((a, b) => JSON.stringify(a.metric).localeCompare(JSON.stringify(b.metric)));

describe.skipIf(!available)("real clients end to end", () => {
  let c: Cluster;
  const procs: Proc[] = [];
  const dir = tempDir("e2e-peers");
  let promUrl = "";
  let amUrl = "";

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    // A series only Strata has, for Prometheus to federate.
    const now = Date.now();
    const w = await remoteWrite(c.insertUrl, [{ labels: { __name__: "strata_federation_probe", source: "strata" }, samples: [[now - 1000, 42], [now, 42]] }]);
    expect(w.status).toBe(204);

    const [nePort, promPort, agentPort, alertPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const selectHostPort = c.selectUrl.replace("http://", "");
    procs.push(startProcess("prometheus-node-exporter", [`--web.listen-address=127.0.0.1:${nePort}`, "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo", "--collector.loadavg"]));
    const promConfig = `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs: [{ targets: ["127.0.0.1:${promPort}"] }]
  - job_name: node
    static_configs: [{ targets: ["127.0.0.1:${nePort}"] }]
  - job_name: strata-federate
    honor_labels: true
    metrics_path: /select/0/prometheus/federate
    params: { "match[]": ['{__name__="strata_federation_probe"}'] }
    static_configs: [{ targets: ["${selectHostPort}"] }]
remote_write:
  - url: ${c.insertUrl}/insert/0/prometheus/api/v1/write
    queue_config: { batch_send_deadline: 1s, max_samples_per_send: 5000 }
    write_relabel_configs:
      - { source_labels: [job], regex: strata-federate, action: drop }
`;
    const prom = await startPrometheus(dir.path, promConfig, [], promPort);
    procs.push(prom.proc);
    promUrl = prom.url;

    const am = await startAlertmanager(dir.path);
    procs.push(am.proc);
    amUrl = am.url;

    procs.push(
      startProcess("vmagent", [
        `-httpListenAddr=127.0.0.1:${agentPort}`,
        `-remoteWrite.url=${c.insertUrl}/insert/0/prometheus/api/v1/write`,
        `-remoteWrite.tmpDataPath=${join(dir.path, "vmagent")}`,
        "-remoteWrite.flushInterval=500ms",
        "-loggerLevel=ERROR",
      ]),
    );
    writeFileSync(
      join(dir.path, "rules.yml"),
      `groups:
  - name: strata-e2e
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: StrataProbeHigh
        expr: strata_federation_probe > 40
        labels: { severity: page }
        annotations: { summary: "probe is {{ $value }}" }
`,
    );
    procs.push(
      startProcess("vmalert", [
        `-httpListenAddr=127.0.0.1:${alertPort}`,
        `-rule=${join(dir.path, "rules.yml")}`,
        `-datasource.url=${c.selectUrl}/select/0/prometheus`,
        `-notifier.url=${amUrl}`,
        `-remoteWrite.url=${c.insertUrl}/insert/0/prometheus`,
        "-evaluationInterval=1s",
        "-loggerLevel=ERROR",
      ]),
    );
    await Promise.all([
      prom.ready(),
      waitHealthy(`http://127.0.0.1:${nePort}/metrics`, procs[0], 30_000),
      am.ready(),
      waitHealthy(`http://127.0.0.1:${agentPort}/health`, procs[3], 30_000),
      waitHealthy(`http://127.0.0.1:${alertPort}/health`, procs[4], 30_000),
    ]);
    // vmagent is fed through its own import API and must forward to insert.
    const agentImport = await fetch(`http://127.0.0.1:${agentPort}/api/v1/import/prometheus`, {
      method: "POST",
      body: 'strata_vmagent_probe{via="vmagent"} 7\n',
    });
    expect(agentImport.status).toBe(204);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await c?.stop();
    dir.remove();
  }, 60_000);

  const strata = async (query: string, time: number): Promise<PromVector> =>
    (await c.api(`/select/0/prometheus/api/v1/query?query=${encodeURIComponent(query)}&time=${time / 1000}`)).json as PromVector;
  const prom = async (query: string, time: number): Promise<PromVector> =>
    (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(query)}&time=${time / 1000}`)).json()) as PromVector;

  it("receives Prometheus' remote write and answers like Prometheus for up and node CPU rates", async () => {
    // A few scrapes, then compare at a time both have fully (remote write lags a little).
    await waitFor("up from node and prometheus in Strata", async () => {
      await forceFlush(c);
      const r = await strata("up", Date.now());
      return r.data.result.length >= 2 ? r : undefined;
    });
    // Prometheus also has the federation job's `up`, which its remote write drops.
    for (const query of ['up{job=~"node|prometheus"}', "sum by (mode) (rate(node_cpu_seconds_total[5s]))", "prometheus_build_info"]) {
      let diff = "";
      const result = await waitFor(`${query} equal in Strata and Prometheus`, async () => {
        // A time a few seconds back: Prometheus has scraped it and remote write has delivered it.
        const t = Date.now() - 3000;
        await forceFlush(c);
        const [a, b] = await Promise.all([strata(query, t), prom(query, t)]);
        const av = sortByLabels(a.data.result);
        const bv = sortByLabels(b.data.result);
        diff = `strata=${JSON.stringify(av)} prometheus=${JSON.stringify(bv)}`;
        if (a.data.result.length === 0) return undefined;
        if (JSON.stringify(av.map((x) => x.metric)) !== JSON.stringify(bv.map((x) => x.metric))) return undefined;
        for (let i = 0; i < av.length; i++) {
          const x = Number(av[i]!.value[1]);
          const y = Number(bv[i]!.value[1]);
          if (!(x === y || Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)))) return undefined;
        }
        return av;
      }, 30_000).catch((err: unknown) => {
        throw new Error(`${String(err)}; last answers: ${diff}`);
      });
      expect(result.length).toBeGreaterThan(0);
    }
  }, 150_000);

  it("receives what vmagent forwards", async () => {
    const r = await waitFor("vmagent's sample in Strata", async () => {
      await forceFlush(c);
      const v = await strata("strata_vmagent_probe", Date.now());
      return v.data.result.length === 1 ? v : undefined;
    });
    expect(r.data.result[0]!.metric).toEqual({ __name__: "strata_vmagent_probe", via: "vmagent" });
    expect(r.data.result[0]!.value[1]).toBe("7");
  });

  it("serves vmalert: the alert reaches Alertmanager and the recording rule is written back", async () => {
    const alerts = await waitFor("StrataProbeHigh in Alertmanager", async () => {
      const list = (await (await fetch(`${amUrl}/api/v2/alerts`)).json()) as { labels: Record<string, string> }[];
      return list.some((a) => a.labels["alertname"] === "StrataProbeHigh") ? list : undefined;
    });
    expect(alerts.find((a) => a.labels["alertname"] === "StrataProbeHigh")!.labels).toMatchObject({ severity: "page", source: "strata" });
    const rec = await waitFor("job:up:sum recorded through insert", async () => {
      await forceFlush(c);
      const v = await strata("job:up:sum", Date.now());
      return v.data.result.length > 0 ? v : undefined;
    });
    expect(rec.data.result.map((r) => r.metric["job"]).sort()).toEqual(expect.arrayContaining(["node", "prometheus"]));
  });

  it("is federated by Prometheus from select's /federate", async () => {
    const r = await waitFor("strata_federation_probe in Prometheus", async () => {
      const v = await prom("strata_federation_probe", Date.now());
      return v.data.result.length > 0 ? v : undefined;
    });
    expect(r.data.result[0]!.metric).toMatchObject({ __name__: "strata_federation_probe", source: "strata" });
    expect(r.data.result[0]!.value[1]).toBe("42");
  });
});
