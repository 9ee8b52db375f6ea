import { describe, expect, it } from "vitest";
import { labelsToRecord } from "@strata/core";
import { parseScrapeConfig, resolveTargets, ownsTarget } from "@strata/scrape";

const cfg = (text: string) => parseScrapeConfig(text, "/etc/strata/prometheus.yml");

describe("scrape config", () => {
  it("reads Prometheus' fields with their defaults", () => {
    const c = cfg(`
global:
  scrape_interval: 15s
  external_labels: { dc: eu1 }
rule_files: ["x.yml"]
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:9100", "127.0.0.1:9101"]
        labels: { team: infra }
  - job_name: app
    scrape_interval: 5s
    scrape_timeout: 2s
    metrics_path: /probe
    scheme: https
    params: { module: [http_2xx] }
    honor_labels: true
    honor_timestamps: false
    bearer_token: s3cret
    tls_config: { insecure_skip_verify: true, server_name: example }
    sample_limit: 100
    label_limit: 20
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
    static_configs: [{ targets: ["a:1"] }]
remote_write:
  - url: http://insert:8480/insert/0/prometheus/api/v1/write
    headers: { X-Scope: a }
    bearer_token: t0k
    queue_config: { max_shards: 4 }
    write_relabel_configs:
      - source_labels: [__name__]
        regex: debug_.*
        action: drop
`);
    expect(c.scrapeIntervalMs).toBe(15_000);
    expect(c.scrapeTimeoutMs).toBe(10_000);
    expect(c.externalLabels).toEqual([{ name: "dc", value: "eu1" }]);
    const [node, app] = c.scrapeConfigs;
    expect(node!.scrapeIntervalMs).toBe(15_000);
    expect(node!.metricsPath).toBe("/metrics");
    expect(node!.honorTimestamps).toBe(true);
    expect(node!.metricRelabel).toBeNull();
    expect(app!.scrapeTimeoutMs).toBe(2000);
    expect(app!.authorization).toBe("Bearer s3cret");
    expect(app!.tls).toEqual({ insecureSkipVerify: true, serverName: "example" });
    expect(app!.sampleLimit).toBe(100);
    expect(app!.metricRelabel?.length).toBe(1);
    // Prometheus agent mode's remote_write: used when no -remoteWrite.url is given.
    expect(c.remoteWrite).toHaveLength(1);
    expect(c.remoteWrite[0]!.url).toBe("http://insert:8480/insert/0/prometheus/api/v1/write");
    expect(c.remoteWrite[0]!.headers).toEqual({ "x-scope": "a", authorization: "Bearer t0k" });
    expect(c.remoteWrite[0]!.writeRelabel?.apply([{ name: "__name__", value: "debug_x" }])).toBeNull();
  });

  // Invalid configs: each error names the file, the line and the key.
  it.each([
    ["unknown top-level key", "scrape_config:\n  - job_name: a\n", "prometheus.yml:1: scrape_config: unknown field"],
    ["unknown job key", "scrape_configs:\n  - job_name: a\n    scrape_intreval: 5s\n", "prometheus.yml:3: scrape_configs[0].scrape_intreval: unknown field"],
    ["bad duration", "scrape_configs:\n  - job_name: a\n    scrape_interval: 5 parsecs\n", 'prometheus.yml:3: scrape_configs[0].scrape_interval: invalid duration "5 parsecs"'],
    ["timeout over interval", "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n", "prometheus.yml:4: scrape_configs[0].scrape_timeout: scrape_timeout (10000 ms) is greater than scrape_interval (5000 ms)"],
    ["missing job_name", "scrape_configs:\n  - static_configs: []\n", "prometheus.yml:2: scrape_configs[0]: job_name is missing"],
    ["duplicate job", "scrape_configs:\n  - job_name: a\n  - job_name: a\n", 'prometheus.yml:3: scrape_configs[1].job_name: job_name "a" is already used by scrape_configs[0]'],
    ["bad scheme", "scrape_configs:\n  - job_name: a\n    scheme: ftp\n", 'prometheus.yml:3: scrape_configs[0].scheme: scheme "ftp": want http or https'],
    ["bool as string", "scrape_configs:\n  - job_name: a\n    honor_labels: yes please\n", "prometheus.yml:3: scrape_configs[0].honor_labels: want true or false"],
    ["negative sample_limit", "scrape_configs:\n  - job_name: a\n    sample_limit: -1\n", "prometheus.yml:3: scrape_configs[0].sample_limit: want an integer >= 0"],
    ["unknown static key", "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [a:1]\n        label: {x: y}\n", "prometheus.yml:5: scrape_configs[0].static_configs[0].label: unknown field"],
    ["target with path", "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [\"http://a:1/metrics\"]\n", 'prometheus.yml:4: scrape_configs[0].static_configs[0].targets[0]: invalid target address "http://a:1/metrics"'],
    ["bad relabel action", "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n", 'prometheus.yml:4: scrape_configs[0].relabel_configs[0]: action: unknown relabel action "explode"'],
    ["two auth methods", "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    basic_auth: {username: u}\n", "prometheus.yml:3: scrape_configs[0].bearer_token: at most one of basic_auth, authorization"],
    ["bad YAML", "scrape_configs:\n  - job_name: [a\n", "prometheus.yml:"],
    ["duplicate key", "global:\n  scrape_interval: 1s\n  scrape_interval: 2s\n", "prometheus.yml:3: invalid YAML"],
    ["dns_sd A without port", "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x]\n        type: A\n", "prometheus.yml:4: scrape_configs[0].dns_sd_configs[0]: port is required for type A"],
    ["global timeout", "global:\n  scrape_interval: 1s\n  scrape_timeout: 2s\n", "prometheus.yml:3: global.scrape_timeout: global scrape_timeout is greater than scrape_interval"],
    ["remote_write without url", "remote_write:\n  - name: a\n", "prometheus.yml:2: remote_write[0]: url is missing"],
    ["remote_write unknown key", "remote_write:\n  - url: http://a/\n    queue: {}\n", "prometheus.yml:3: remote_write[0].queue: unknown field"],
    ["missing bearer file", "scrape_configs:\n  - job_name: a\n    bearer_token_file: /nonexistent/token\n", 'prometheus.yml:3: scrape_configs[0].bearer_token_file: cannot read "/nonexistent/token"'],
  ])("%s", (_name, text, want) => {
    expect(() => cfg(text)).toThrow(want);
  });
});

describe("target labels", () => {
  const job = (extra = "") =>
    cfg(`
scrape_configs:
  - job_name: j
    scrape_interval: 10s
    params: { module: [m1] }
    static_configs:
      - targets: ["h1:9100", "h2:9100", "h3:9100"]
        labels: { env: prod, __meta_x: keepme }
${extra}`).scrapeConfigs[0]!;

  it("adds job and instance, builds the URL with params, and drops __ labels", () => {
    const r = resolveTargets(job(), job().staticConfigs);
    expect(r.active.map((t) => t.url)).toEqual(["http://h1:9100/metrics?module=m1", "http://h2:9100/metrics?module=m1", "http://h3:9100/metrics?module=m1"]);
    expect(labelsToRecord(r.active[0]!.labels)).toEqual({ env: "prod", instance: "h1:9100", job: "j" });
    expect(labelsToRecord(r.active[0]!.discoveredLabels)).toMatchObject({ __address__: "h1:9100", __param_module: "m1", __scrape_interval__: "10s", __meta_x: "keepme" });
  });

  it("applies relabel_configs: drop, rewrite __address__, __param_ and __metrics_path__", () => {
    const j = job(`    relabel_configs:
      - source_labels: [__address__]
        regex: h3:.*
        action: drop
      - source_labels: [__address__]
        target_label: __param_target
      - target_label: __address__
        replacement: exporter:9115
      - target_label: __metrics_path__
        replacement: /probe
      - source_labels: [__param_target]
        target_label: instance
`);
    const r = resolveTargets(j, j.staticConfigs);
    expect(r.dropped.map((d) => labelsToRecord(d.discoveredLabels)["__address__"])).toEqual(["h3:9100"]);
    expect(r.active.map((t) => t.url)).toEqual(["http://exporter:9115/probe?module=m1&target=h1%3A9100", "http://exporter:9115/probe?module=m1&target=h2%3A9100"]);
    expect(labelsToRecord(r.active[1]!.labels)).toEqual({ env: "prod", instance: "h2:9100", job: "j" });
  });

  it("shards targets over cluster members: each target on exactly one member", () => {
    const big = cfg(`scrape_configs:\n  - job_name: j\n    static_configs: [{ targets: [${Array.from({ length: 60 }, (_, i) => `"h${i}:1"`).join(",")}] }]\n`).scrapeConfigs[0]!;
    const ts = resolveTargets(big, big.staticConfigs).active;
    const counts = [0, 1, 2].map((m) => ts.filter((t) => ownsTarget(t, 3, m)).length);
    expect(counts.reduce((a, b) => a + b)).toBe(60);
    expect(Math.min(...counts)).toBeGreaterThan(5);
    expect(ts.filter((t) => ownsTarget(t, 3, 0, 2) && ownsTarget(t, 3, 1, 2) && ownsTarget(t, 3, 2, 2))).toHaveLength(0);
    expect(ts.every((t) => [0, 1, 2].filter((m) => ownsTarget(t, 3, m, 2)).length === 2)).toBe(true);
  });
});
