import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, remoteWriteBody, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";
import { startAlertmanager, startPrometheus } from "./lib/peers.js";
import { freePort, isBuilt, requirePeer, serviceMain, startProcess, tempDir, waitFor as waitForEvery, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * strata-alert end to end: a real cluster as datasource and remote-write target, Debian's
 * Alertmanager receiving the alerts (checked through its own API), Debian's Prometheus
 * evaluating the same rule file over the same samples (ALERTS, recording rules and alerts must
 * agree), restarts in the middle of a `for` window, a datasource that is down, reloads.
 *
 * Samples are written ahead of time with their timestamps, so both evaluators see the same
 * data at the same (aligned) evaluation times however long ingestion takes.
 */

const built = clusterBuilt() && isBuilt("alert");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("prometheus-alertmanager", "prometheus-alertmanager") && requirePeer("prometheus", "prometheus");

/** Polls every 200 ms, 40 s at most (the alert tests run at 1 s intervals). */
const waitFor = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 40_000): Promise<T> => waitForEvery(what, fn, timeoutMs, 200);

interface PromAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: string;
  activeAt: string;
  value: string;
}

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string };
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${text}`);
  return JSON.parse(text) as T;
}


/** A step series: `value(t)` every second over [from, to] (ms). */
function steps(labels: Record<string, string>, from: number, to: number, value: (t: number) => number | undefined): TestSeries {
  const samples: [number, number][] = [];
  for (let t = from; t <= to; t += 1000) {
    const v = value(t);
    if (v !== undefined) samples.push([t, v]);
  }
  return { labels, samples };
}

const RULES = `groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:probe_value:sum
        expr: sum by (job) (probe_value)
      - alert: ProbeHigh
        expr: probe_value > 5
        for: 3s
        labels:
          severity: '{{ if gt $value 50.0 }}critical{{ else }}page{{ end }}'
        annotations:
          summary: 'probe {{ $labels.instance }} is {{ humanize $value }}'
          total: '{{ with query "sum(probe_value)" }}{{ . | first | value }}{{ end }}'
`;

const SLOW_RULES = `groups:
  - name: slow
    interval: 1s
    rules:
      - alert: SlowBurn
        expr: probe_slow > 0
        for: 8s
        annotations:
          summary: 'slow burn on {{ $labels.instance }}'
`;

describe.skipIf(!available)("strata-alert end to end", () => {
  let c: Cluster;
  const dir = tempDir("alert-e2e");
  const procs: Proc[] = [];
  let amUrl = "";
  let promUrl = "";
  const rulesPath = join(dir.path, "rules.yml");
  const slowPath = join(dir.path, "slow.yml");

  const startAlert = async (extra: readonly string[], rules = rulesPath): Promise<{ proc: Proc; url: string }> => {
    const port = await freePort();
    const proc = startProcess(process.execPath, [
      serviceMain("alert"),
      `-httpListenAddr=127.0.0.1:${port}`,
      `-rule=${rules}`,
      "-evaluationInterval=1s",
      "-remoteWrite.flushInterval=200ms",
      "-remoteWrite.retryMinInterval=200ms",
      "-external.url=http://alert.example:8880",
      "-loggerLevel=WARN",
      ...extra,
    ]);
    procs.push(proc);
    const url = `http://127.0.0.1:${port}`;
    await waitHealthy(`${url}/health`, proc, 30_000);
    return { proc, url };
  };

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    writeFileSync(rulesPath, RULES);
    writeFileSync(slowPath, SLOW_RULES);
    const am = await startAlertmanager(dir.path, { groupInterval: "1s" });
    procs.push(am.proc);
    amUrl = am.url;
    const prom = await startPrometheus(dir.path, `global:\n  evaluation_interval: 1s\n  external_labels: {cluster: e2e}\nrule_files: [${JSON.stringify(rulesPath)}]\n`, ["--web.enable-remote-write-receiver"]);
    procs.push(prom.proc);
    promUrl = prom.url;
    await Promise.all([am.ready(), prom.ready()]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await c?.stop();
    dir.remove();
  }, 60_000);

  it("fires and resolves through Alertmanager, writes ALERTS and recording rules, and agrees with Prometheus", async () => {
    // probe a: 10 for [base+3s, base+12s), then 0; probe b: always 1.
    const base = Math.ceil(Date.now() / 1000) * 1000 + 4000;
    const data = [
      steps({ __name__: "probe_value", job: "probe", instance: "a" }, base - 60_000, base + 60_000, (t) => (t >= base + 3000 && t < base + 12_000 ? 10 : 0)),
      steps({ __name__: "probe_value", job: "probe", instance: "b" }, base - 60_000, base + 60_000, () => 1),
    ];
    expect((await remoteWrite(c.insertUrl, data)).status).toBe(204);
    const pw = await fetch(`${promUrl}/api/v1/write`, { method: "POST", headers: { "content-type": "application/x-protobuf", "content-encoding": "snappy" }, body: Buffer.from(remoteWriteBody(data)) });
    expect(pw.status).toBe(204);
    await forceFlush(c);
    const a = await startAlert([
      `-datasource.url=${c.selectUrl}/select/0/prometheus`,
      `-remoteWrite.url=${c.insertUrl}/insert/0/prometheus`,
      `-remoteRead.url=${c.selectUrl}/select/0/prometheus`,
      `-notifier.url=${amUrl}`,
      "-external.label=cluster=e2e",
    ]);
    // A select that proxies the rules API to this alert service, started now so that it is up
    // while the alert still fires (the firing window is 9 s; a loaded machine starts slowly).
    const selectPort = await freePort();
    const sel = startProcess(process.execPath, [serviceMain("select"), `-httpListenAddr=127.0.0.1:${selectPort}`, `-storageNode=${c.storage[0]!.selectAddr}`, `-vmalert.proxyURL=${a.url}`]);
    procs.push(sel);
    const selReady = waitHealthy(`http://127.0.0.1:${selectPort}/health`, sel);
    selReady.catch(() => undefined); // awaited below; not an unhandled rejection if a check fails first

    // Alertmanager receives the alert with rendered labels and annotations.
    const fired = await waitFor("ProbeHigh in Alertmanager", async () => {
      const list = await getJson<AmAlert[]>(`${amUrl}/api/v2/alerts`);
      return list.find((x) => x.labels["alertname"] === "ProbeHigh");
    });
    expect(fired.labels).toEqual({ alertname: "ProbeHigh", instance: "a", job: "probe", severity: "page", cluster: "e2e" });
    expect(fired.annotations).toEqual({ summary: "probe a is 10", total: "11" });
    expect(fired.generatorURL).toMatch(/^http:\/\/alert\.example:8880\/graph\?g0\.expr=probe_value%20%3E%205&g0\.tab=1$/);
    expect(fired.status.state).toBe("active");
    // It fired `for` after it became active (activeAt is the first evaluation at or after base+3s).
    expect(Date.parse(fired.startsAt) - (base + 3000)).toBeGreaterThanOrEqual(3000);
    expect(Date.parse(fired.startsAt) - (base + 3000)).toBeLessThanOrEqual(5000);

    // While firing: both evaluators report the same alert.
    const [strataAlerts, promAlerts] = await waitFor("both firing", async () => {
      const s = (await getJson<{ data: { alerts: PromAlert[] } }>(`${a.url}/api/v1/alerts`)).data.alerts;
      const p = (await getJson<{ data: { alerts: PromAlert[] } }>(`${promUrl}/api/v1/alerts`)).data.alerts;
      return s.length === 1 && p.length === 1 && s[0]!.state === "firing" && p[0]!.state === "firing" ? [s, p] : undefined;
    });
    expect(strataAlerts[0]!.labels).toEqual(promAlerts[0]!.labels);
    expect(strataAlerts[0]!.annotations).toEqual(promAlerts[0]!.annotations);
    expect(strataAlerts[0]!.value).toBe(promAlerts[0]!.value);
    expect(Math.abs(Date.parse(strataAlerts[0]!.activeAt) - Date.parse(promAlerts[0]!.activeAt))).toBeLessThanOrEqual(1000);
    const rules = await getJson<{ data: { groups: { name: string; rules: { name: string; type: string; health: string; state?: string }[] }[] } }>(`${a.url}/api/v1/rules`);
    expect(rules.data.groups[0]!.rules.map((r) => [r.name, r.type, r.health, r.state])).toEqual([
      ["job:probe_value:sum", "recording", "ok", undefined],
      ["ProbeHigh", "alerting", "ok", "firing"],
    ]);

    // select forwards the rules API to the alert service given -vmalert.proxyURL (Grafana's view).
    await selReady;
    const proxied = await getJson<{ data: { groups: { rules: { name: string }[] }[] } }>(`http://127.0.0.1:${selectPort}/select/0/prometheus/api/v1/rules?type=alert`);
    expect(proxied.data.groups[0]!.rules.map((r) => r.name)).toEqual(["ProbeHigh"]);
    const proxiedAlerts = await getJson<{ data: { alerts: PromAlert[] } }>(`http://127.0.0.1:${selectPort}/select/0/prometheus/api/v1/alerts`);
    expect(proxiedAlerts.data.alerts.map((x) => x.labels)).toEqual(strataAlerts.map((x) => x.labels));
    // Without -vmalert.proxyURL the lists are empty.
    expect(await getJson(`${c.selectUrl}/select/0/prometheus/api/v1/alerts`)).toEqual({ status: "success", data: { alerts: [] } });

    // Resolved: Alertmanager sees the alert end.
    await waitFor("ProbeHigh resolved in Alertmanager", async () => {
      const list = await getJson<AmAlert[]>(`${amUrl}/api/v2/alerts`);
      const x = list.find((y) => y.labels["alertname"] === "ProbeHigh");
      return x === undefined || x.status.state === "resolved" || Date.parse(x.endsAt) <= Date.now() ? true : undefined;
    });

    // The series agree with Prometheus' at every evaluation: ALERTS (pending, firing, ended by
    // a stale marker), ALERTS_FOR_STATE and the recording rule (Prometheus keeps external labels
    // out of its own TSDB; Strata writes them, as Prometheus' remote write would).
    await new Promise((r) => setTimeout(r, Math.max(0, base + 17_000 - Date.now())));
    await forceFlush(c);
    const range = async (url: string, q: string): Promise<string> => {
      const j = await getJson<{ data: { result: { metric: Record<string, string>; values: [number, string][] }[] } }>(
        `${url}/api/v1/query_range?query=${encodeURIComponent(q)}&start=${base / 1000}&end=${(base + 16_000) / 1000}&step=1`,
      );
      return JSON.stringify(j.data.result.map((s) => ({ metric: Object.fromEntries(Object.entries(s.metric).filter(([k]) => k !== "cluster")), values: s.values })));
    };
    for (const q of ['ALERTS{alertname="ProbeHigh"}', 'ALERTS_FOR_STATE{alertname="ProbeHigh"}', "job:probe_value:sum"]) {
      expect(await range(`${c.selectUrl}/select/0/prometheus`, q), q).toBe(await range(promUrl, q));
    }
    const rec = await getJson<{ data: { result: { metric: Record<string, string> }[] } }>(`${c.selectUrl}/select/0/prometheus/api/v1/query?query=job:probe_value:sum&time=${(base + 10_000) / 1000}`);
    expect(rec.data.result[0]!.metric).toEqual({ __name__: "job:probe_value:sum", job: "probe", cluster: "e2e" });
    await a.proc.stop();
    // The alert service is gone: select says so with 503.
    const down = await fetch(`http://127.0.0.1:${selectPort}/select/0/prometheus/api/v1/rules`);
    expect(down.status).toBe(503);
    expect(((await down.json()) as { error: string }).error).toMatch(/^cannot reach the alert service at -vmalert\.proxyURL=http:\/\/127\.0\.0\.1:\d+: /);
    await sel.stop();
  }, 120_000);

  it("restores for state on restart: a pending alert fires on time, a firing one is not new", async () => {
    const base = Math.ceil(Date.now() / 1000) * 1000 + 2000;
    const data = [steps({ __name__: "probe_slow", instance: "s" }, base - 60_000, base + 120_000, (t) => (t >= base ? 1 : 0))];
    expect((await remoteWrite(c.insertUrl, data)).status).toBe(204);
    await forceFlush(c);
    const flags = [
      `-datasource.url=${c.selectUrl}/select/0/prometheus`,
      `-remoteWrite.url=${c.insertUrl}/insert/0/prometheus`,
      `-remoteRead.url=${c.selectUrl}/select/0/prometheus`,
      `-notifier.url=${amUrl}`,
    ];
    const alertsOf = async (url: string): Promise<PromAlert[]> => (await getJson<{ data: { alerts: PromAlert[] } }>(`${url}/api/v1/alerts`)).data.alerts;
    let a = await startAlert(flags, slowPath);
    const pending = await waitFor("SlowBurn pending", async () => (await alertsOf(a.url)).find((x) => x.state === "pending"));
    const activeAt = Date.parse(pending.activeAt);
    // The first evaluation (every 1 s) at or after the step; later on a loaded machine.
    expect(activeAt - base).toBeGreaterThanOrEqual(0);
    expect(activeAt - base).toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 3000));
    // Restart in the middle of the 8s `for` window.
    await a.proc.stop();
    await forceFlush(c);
    a = await startAlert(flags, slowPath);
    const firing = await waitFor("SlowBurn firing after restart", async () => (await alertsOf(a.url)).find((x) => x.state === "firing"), 20_000);
    const firedAfter = Date.now() - activeAt;
    // ALERTS_FOR_STATE holds activeAt in whole seconds (as Prometheus writes it).
    const restoredAt = Math.floor(activeAt / 1000) * 1000;
    expect(Date.parse(firing.activeAt)).toBe(restoredAt);
    // On time: `for` after activeAt, within two evaluations (not a full `for` after the restart).
    expect(firedAfter).toBeLessThan(8000 + 2500);
    const am = await waitFor("SlowBurn in Alertmanager", async () => (await getJson<AmAlert[]>(`${amUrl}/api/v2/alerts`)).find((x) => x.labels["alertname"] === "SlowBurn"));
    expect(Date.parse(am.startsAt)).toBe(restoredAt + 8000);

    // Restart while firing: the first evaluation after the restart reports it firing (never
    // pending), with the same activeAt, and Alertmanager keeps the same startsAt.
    await a.proc.stop();
    await forceFlush(c);
    a = await startAlert(flags, slowPath);
    const first = await waitFor("SlowBurn after second restart", async () => (await alertsOf(a.url))[0]);
    expect(first.state).toBe("firing");
    expect(Date.parse(first.activeAt)).toBe(restoredAt);
    await new Promise((r) => setTimeout(r, 1500));
    const am2 = (await getJson<AmAlert[]>(`${amUrl}/api/v2/alerts`)).find((x) => x.labels["alertname"] === "SlowBurn")!;
    expect(am2.startsAt).toBe(am.startsAt);
    await a.proc.stop();
  }, 120_000);

  it("replays rules over past data, backfilling recording rules and ALERTS", async () => {
    const base = Math.floor(Date.now() / 1000) * 1000 - 120_000;
    const data = [steps({ __name__: "replay_src", job: "r", instance: "i" }, base - 60_000, base + 60_000, (t) => (t - base) / 1000)];
    expect((await remoteWrite(c.insertUrl, data)).status).toBe(204);
    await forceFlush(c);
    const rules = join(dir.path, "replay.yml");
    writeFileSync(
      rules,
      "groups:\n  - name: replay\n    interval: 5s\n    rules:\n      - record: job:replay_src:sum\n        expr: sum by (job) (replay_src)\n      - alert: ReplayHigh\n        expr: replay_src > 20\n",
    );
    const r = startProcess(process.execPath, [
      serviceMain("alert"),
      `-rule=${rules}`,
      `-datasource.url=${c.selectUrl}/select/0/prometheus`,
      `-remoteWrite.url=${c.insertUrl}/insert/7/prometheus`,
      `-replay.timeFrom=${new Date(base).toISOString()}`,
      `-replay.timeTo=${new Date(base + 40_000).toISOString()}`,
      "-loggerLevel=INFO",
    ]);
    procs.push(r);
    const code = await new Promise<number | null>((res) => r.child.on("exit", res));
    expect(code, r.output()).toBe(0);
    // Aligned 5s steps in [from, to]: 8 (9 when the group's offset happens to be 0).
    expect(r.output()).toMatch(/"evaluations":(8|9),.*"replay finished"/);
    await forceFlush(c);
    // Tenant 7 holds the backfilled results: one sample per aligned 5s step, value = the source.
    const q = async (expr: string) =>
      (await getJson<{ data: { result: { metric: Record<string, string>; values: [number, string][] }[] } }>(
        `${c.selectUrl}/select/7/prometheus/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${base / 1000}&end=${(base + 40_000) / 1000}&step=5`,
      )).data.result;
    const rec = await q("job:replay_src:sum");
    expect(rec.map((x) => x.metric)).toEqual([{ __name__: "job:replay_src:sum", job: "r" }]);
    const counted = await getJson<{ data: { result: { value: [number, string] }[] } }>(
      `${c.selectUrl}/select/7/prometheus/api/v1/query?query=${encodeURIComponent("count_over_time(job:replay_src:sum[41s])")}&time=${(base + 40_000) / 1000}`,
    );
    expect(Number(counted.data.result[0]!.value[1])).toBeGreaterThanOrEqual(8);
    const firing = await q('ALERTS{alertname="ReplayHigh",alertstate="firing"}');
    expect(firing.length).toBe(1);
    expect(Number(firing[0]!.values[0]![0]) * 1000 - base).toBeGreaterThanOrEqual(20_000);
  }, 60_000);

  it("reports a datasource that is down as rule health, and keeps the old rules on a bad reload", async () => {
    const deadPort = await freePort();
    const rules = join(dir.path, "reload.yml");
    writeFileSync(rules, RULES);
    const a = await startAlert([`-datasource.url=http://127.0.0.1:${deadPort}/select/0/prometheus`], rules);
    const r = await waitFor("rule health err", async () => {
      const j = await getJson<{ data: { groups: { rules: { health: string; lastError?: string }[] }[] } }>(`${a.url}/api/v1/rules`);
      const rule = j.data.groups[0]!.rules[0]!;
      return rule.health === "err" ? rule : undefined;
    });
    expect(r.lastError).toMatch(/ECONNREFUSED/);
    expect((await fetch(`${a.url}/health`)).status).toBe(200);

    writeFileSync(rules, RULES.replace("humanize $value", "humanise $value"));
    const bad = await fetch(`${a.url}/-/reload`, { method: "POST" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(
      /^reload failed; the previous rules stay: .*reload\.yml:13:56: group "e2e", rule 2 \(alert "ProbeHigh"\): annotation summary: template position 1:36: function "humanise" not defined$/,
    );
    a.proc.child.kill("SIGHUP");
    await new Promise((res) => setTimeout(res, 500));
    const still = await getJson<{ data: { groups: { name: string }[] } }>(`${a.url}/api/v1/rules`);
    expect(still.data.groups.map((g) => g.name)).toEqual(["e2e"]);
    expect(a.proc.output()).toMatch(/reload failed; the previous rules stay/);

    writeFileSync(rules, SLOW_RULES);
    expect((await fetch(`${a.url}/-/reload`, { method: "POST" })).status).toBe(200);
    const after = await getJson<{ data: { groups: { name: string }[] } }>(`${a.url}/api/v1/rules`);
    expect(after.data.groups.map((g) => g.name)).toEqual(["slow"]);
    expect(await a.proc.stop()).toBe(0);
  }, 60_000);
});
