// The import endpoints, relabel hook, spool and Graphite listener in-process over a stub
// cluster that records what would be stored (the real cluster is in test/import.test.ts).
import type { FastifyInstance } from "fastify";
import { connect } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createLogger, decodeMetricName, MetricsRegistry, RowsBatchReader, sampleWindow, UnavailableError } from "@strata/core";
import type { InsertCluster } from "@strata/cluster";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.js";
import { startGraphiteServer } from "../src/graphite.js";
import { rowsIgnoredCounter } from "../src/ignored.js";
import { matchImportRoute } from "../src/import.js";
import { RelabelHook } from "../src/relabel-hook.js";
import { RowsSpool } from "../src/spool.js";
import { post, remoteWriteV1 } from "./cluster-harness.js";

const log = createLogger({ name: "test", level: "silent" });
const dir = mkdtempSync(join(tmpdir(), "strata-import-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rows a stub cluster received: `tenant labels ts value` lines, in order. */
function rowsOf(batches: readonly Uint8Array[]): string[] {
  const out: string[] = [];
  for (const b of batches) {
    const r = new RowsBatchReader(b);
    while (r.next()) {
      const mn = decodeMetricName(r.metricName);
      const name = mn.labels.find((l) => l.name === "__name__")?.value ?? "";
      const rest = mn.labels.filter((l) => l.name !== "__name__").map((l) => `${l.name}=${JSON.stringify(l.value)}`);
      const series = rest.length > 0 ? `${name}{${rest.join(",")}}` : name;
      out.push(`${mn.tenant.accountID}:${mn.tenant.projectID} ${series} ${r.timestamp} ${Object.is(r.value, -0) ? "-0" : r.value}`);
    }
  }
  return out;
}

describe("matchImportRoute", () => {
  it.each([
    ["/insert/0/prometheus/api/v1/import", { tenant: "0", format: "jsonline" }],
    ["/insert/1:2/prometheus/api/v1/import/", { tenant: "1:2", format: "jsonline" }],
    ["/insert/0/prometheus/api/v1/import/prometheus", { tenant: "0", format: "prometheus" }],
    ["/insert/0/prometheus/api/v1/import/prometheus/metrics/job/j/instance/i", { tenant: "0", format: "prometheus", pushgatewayPath: "/metrics/job/j/instance/i" }],
    ["/insert/0/prometheus/api/v1/import/csv", { tenant: "0", format: "csv" }],
    ["/insert/0/influx/write", { tenant: "0", format: "influx" }],
    ["/insert/0/influx/api/v2/write", { tenant: "0", format: "influx" }],
    ["/insert/0/opentsdb/api/put", { tenant: "0", format: "opentsdb" }],
    ["/insert/0/prometheus/api/v1/write", undefined],
    ["/insert/0/prometheus", undefined],
    ["/insert/0/prometheus/api/v1/import/native", undefined],
    ["/select/0/prometheus/api/v1/import", undefined],
  ] as const)("%s", (path, want) => {
    expect(matchImportRoute(path)).toEqual(want);
  });
});

describe("RowsSpool", () => {
  it("keeps memory at the cap, spills segments and gives every row back in order", async () => {
    const s = new RowsSpool(4096, dir);
    const name = new Uint8Array(40).fill(7);
    for (let i = 0; i < 5000; i++) {
      s.writer.add(name, i, i * 0.5);
      if (s.full) await s.spill();
      expect(s.writer.byteLength).toBeLessThan(4096 + 100);
    }
    expect(s.spilledBytes).toBeGreaterThan(50_000);
    expect(s.rows).toBe(5000);
    let n = 0;
    let segments = 0;
    for await (const b of s.batches()) {
      segments++;
      const r = new RowsBatchReader(b);
      while (r.next()) {
        expect([r.timestamp, r.value]).toEqual([n, n * 0.5]);
        expect(r.metricName).toEqual(name);
        n++;
      }
    }
    expect(n).toBe(5000);
    expect(segments).toBeGreaterThan(10);
    await s.close();
    await s.close();
  });
});

describe("import handler over a stub cluster", () => {
  let written: Uint8Array[] = [];
  let metadata: unknown[] = [];
  let down = false;
  const stub = {
    write: async (b: Uint8Array) => {
      if (down) throw new UnavailableError("0 of 1 rows could not be stored on any storage node");
      written.push(b.slice());
      return { rows: 0, underReplicatedRows: 0, reroutedRows: 0 };
    },
    writeMetadata: async (items: unknown[]) => {
      metadata.push(...items);
      return items.length;
    },
    healthyCount: () => 1,
    retention: () => ({ retentionMs: 0, futureRetentionMs: 2 * 86_400_000 }),
  } as unknown as InsertCluster;
  const metrics = new MetricsRegistry();
  const relabelPath = join(dir, "relabel.yml");
  let relabel: RelabelHook;
  let server: FastifyInstance;
  let url = "";
  beforeAll(async () => {
    writeFileSync(relabelPath, "- { action: drop, source_labels: [__name__], regex: dropped_.* }\n");
    relabel = await RelabelHook.open(relabelPath, log, metrics);
    const app = buildApp({
      cluster: stub,
      limits: { maxLabels: 6, maxLabelValueLen: 32 },
      maxRequestBytes: 1 << 20,
      maxConcurrentInserts: 4,
      maxQueueMs: 1000,
      log,
      metrics,
      relabel,
      imports: { memoryBufferBytes: 2048, tmpDir: dir, maxRequestBytes: 1 << 22, maxLineBytes: 4096, maxOpenTsdbBytes: 4096 },
    });
    server = app;
    await app.listen({ port: 0, host: "127.0.0.1" });
    const a = app.server.address();
    url = `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  });
  afterAll(() => server.close());
  beforeEach(() => {
    written = [];
    metadata = [];
    down = false;
  });
  const send = (path: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, { method: "POST", body: typeof body === "string" ? body : (body as Uint8Array<ArrayBuffer>), headers });

  it("a large body is spooled and stored whole after the last line parsed", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `big_metric{i="${i % 7}"} ${i} ${1_700_000_000_000 + i}\n`).join("");
    const r = await send("/insert/3/prometheus/api/v1/import/prometheus", gzipSync(lines), { "content-encoding": "gzip" });
    expect(r.status).toBe(204);
    expect(written.length).toBeGreaterThan(5);
    const rows = rowsOf(written);
    expect(rows.length).toBe(3000);
    expect(rows[2999]).toBe(`3:0 big_metric{i="3"} ${1_700_000_000_000 + 2999} 2999`);
    expect(metrics.render()).toMatch(/strata_import_spooled_bytes_total [1-9]/);
    expect(metrics.render()).toContain('strata_rows_inserted_total{type="prometheus"} 3000');
  });

  it("a bad last line of a spooled body stores nothing", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `big_metric{i="${i}"} ${i}\n`).join("") + "big_metric{i=x} 1\n";
    const r = await send("/insert/3/prometheus/api/v1/import/prometheus", lines);
    expect(r.status).toBe(400);
    expect(await r.text()).toMatch(/^prometheus: line 3001: /);
    expect(written).toEqual([]);
    expect(metrics.render()).toMatch(/strata_rows_rejected_total\{type="prometheus",reason="parse_error"\} 3000/);
  });

  it.each([
    ["json lines", "/insert/0/prometheus/api/v1/import", '{"metric":{"__name__":"a","x":"1"},"values":[1,2],"timestamps":[10,20]}\n', ["0:0 a{x=\"1\"} 10 1", "0:0 a{x=\"1\"} 20 2"]],
    ["a sample more than -futureRetention ahead is left out", "/insert/0/prometheus/api/v1/import", `{"metric":{"__name__":"f"},"values":[1,2],"timestamps":[10,${Date.UTC(10000, 0, 1) - 1}]}\n`, ["0:0 f 10 1"]],
    ["extra_label replaces", "/insert/0/prometheus/api/v1/import?extra_label=x=9&extra_label=y=z", '{"metric":{"__name__":"a","x":"1"},"values":[1],"timestamps":[10]}', ["0:0 a{x=\"9\",y=\"z\"} 10 1"]],
    ["pushgateway path", "/insert/0/prometheus/api/v1/import/prometheus/metrics/job/j/instance/i?timestamp=5", "m 1\n", ['0:0 m{instance="i",job="j"} 5000 1']],
    ["csv", "/insert/0/prometheus/api/v1/import/csv?format=2:metric:cpu,1:label:host,3:time:unix_s", "h1,0.5,100\n", ['0:0 cpu{host="h1"} 100000 0.5']],
    ["influx db", "/insert/0/influx/write?db=mydb&precision=s", "cpu,host=a usage=1.5,n=2i 100", ['0:0 cpu_n{db="mydb",host="a"} 100000 2', '0:0 cpu_usage{db="mydb",host="a"} 100000 1.5']],
    ["opentsdb", "/insert/0/opentsdb/api/put", '[{"metric":"sys.cpu","timestamp":100,"value":3,"tags":{"host":"a"}}]', ['0:0 sys.cpu{host="a"} 100000 3']],
    ["relabel drops a series", "/insert/0/prometheus/api/v1/import/prometheus", "dropped_x 1 10\nkept 2 10\n", ["0:0 kept 10 2"]],
  ] as const)("%s", async (_name, path, body, want) => {
    const r = await send(path, body);
    expect([r.status, await r.text()]).toEqual([204, ""]);
    expect(rowsOf(written).sort()).toEqual([...want].sort());
  });

  it("counts the sample left out past -futureRetention", () => {
    expect(metrics.render()).toContain('strata_rows_ignored_total{type="jsonline",reason="big_timestamp"} 1');
  });

  it("text exposition metadata is forwarded", async () => {
    const r = await send("/insert/0/prometheus/api/v1/import/prometheus", "# HELP m_total Things.\n# TYPE m_total counter\nm_total 1 10\n");
    expect(r.status).toBe(204);
    expect(metadata).toEqual([{ tenant: { accountID: 0, projectID: 0 }, family: "m_total", type: 1, help: "Things.", unit: "" }]);
  });

  it.each([
    ["bad tenant", "/insert/x/prometheus/api/v1/import", "", 400, /^jsonline: .*tenant/],
    ["label limit", "/insert/0/prometheus/api/v1/import/prometheus", `m{a="${"v".repeat(40)}"} 1\n`, 400, /^prometheus: line 1: value of label "a" is longer than -maxLabelValueLen=32 bytes/],
    ["csv without format", "/insert/0/prometheus/api/v1/import/csv", "1,2\n", 400, /^csv: missing format parameter/],
    ["bad extra_label", "/insert/0/influx/write?extra_label=nope", "cpu v=1\n", 400, /^influx: extra_label "nope": want name=value/],
    ["line too long", "/insert/0/prometheus/api/v1/import", `{"metric":{"__name__":"${"a".repeat(5000)}"}}\n`, 400, /^jsonline: line 1: line longer than 4096 bytes/],
    ["opentsdb body too big", "/insert/0/opentsdb/api/put", `[${'{"metric":"m","value":1,"timestamp":1},'.repeat(200)}{}]`, 413, /^opentsdb: .*body larger than 4096 bytes/],
  ] as const)("%s → %i", async (_name, path, body, status, msg) => {
    const r = await send(path, body);
    expect(r.status).toBe(status);
    expect(await r.text()).toMatch(msg);
    expect(written).toEqual([]);
  });

  it.each([
    ["corrupt gzip", { "content-encoding": "gzip" }, "not gzip at all", 400, /^jsonline: gzip: invalid compressed body/],
    ["unknown encoding", { "content-encoding": "br" }, "x", 415, /^jsonline: .*br/],
  ] as const)("%s → %i", async (_name, headers, body, status, msg) => {
    const r = await send("/insert/0/prometheus/api/v1/import", body, headers);
    expect(r.status).toBe(status);
    expect(await r.text()).toMatch(msg);
    expect(written).toEqual([]);
  });

  it("GET is 405; storage down is 503 with Retry-After", async () => {
    const g = await fetch(`${url}/insert/0/influx/write`);
    expect([g.status, g.headers.get("allow")]).toEqual([405, "POST"]);
    down = true;
    const r = await send("/insert/0/influx/write", "cpu v=1 1\n");
    expect([r.status, r.headers.get("retry-after")]).toEqual([503, "1"]);
    expect(await r.text()).toMatch(/^influx: 0 of 1 rows could not be stored/);
  });

  it("answers the InfluxDB calls clients make besides writing (ping, health, query) like vminsert", async () => {
    const ping = await fetch(`${url}/insert/0/influx/ping`);
    expect([ping.status, ping.headers.get("x-influxdb-version")]).toEqual([204, "1.8.10"]);
    const health = await fetch(`${url}/insert/0:1/influx/health`);
    expect([health.status, ((await health.json()) as { status: string }).status]).toEqual([200, "pass"]);
    // Telegraf's database creation, as a POST form and as a GET.
    const create = await send("/insert/0/influx/query", "q=CREATE+DATABASE+%22telegraf%22", { "content-type": "application/x-www-form-urlencoded" });
    expect([create.status, await create.json()]).toEqual([200, { results: [{ statement_id: 0 }] }]);
    const show = await fetch(`${url}/insert/0/influx/query?q=SHOW%20DATABASES`);
    expect(await show.json()).toEqual({ results: [{ statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [] }] }] });
    expect(written).toEqual([]);
  });

  it("remote write goes through the relabel rules too", async () => {
    const r = await post(`${url}/insert/0/prometheus/api/v1/write`, remoteWriteV1([
      { labels: { __name__: "dropped_rw" }, samples: [[1, 1]] },
      { labels: { __name__: "kept_rw", a: "b" }, samples: [[1, 2], [2, 3]] },
    ]));
    expect(r.status).toBe(204);
    expect(rowsOf(written)).toEqual(['0:0 kept_rw{a="b"} 1 2', '0:0 kept_rw{a="b"} 2 3']);
    expect(metrics.render()).toContain('strata_relabel_series_dropped_total{type="promremotewrite"} 1');
  });
});

describe("RelabelHook reload", () => {
  it("swaps on a good file, keeps the old rules on a bad one, and exposes the outcome", async () => {
    const path = join(dir, "reload.yml");
    writeFileSync(path, "- { target_label: v, replacement: one }\n");
    const metrics = new MetricsRegistry();
    const h = await RelabelHook.open(path, log, metrics);
    const apply = (hook: RelabelHook) => hook.transform("t")!([{ name: "__name__", value: "m" }]);
    const before = h.transform("t")!;
    expect(apply(h)).toEqual([{ name: "__name__", value: "m" }, { name: "v", value: "one" }]);
    writeFileSync(path, "- { target_label: v, replacement: two }\n");
    expect(await h.reload()).toBe(true);
    expect(apply(h)).toEqual([{ name: "__name__", value: "m" }, { name: "v", value: "two" }]);
    // A transform taken before the reload (a request in flight) keeps the old rules.
    expect(before([{ name: "__name__", value: "m" }])).toEqual([{ name: "__name__", value: "m" }, { name: "v", value: "one" }]);
    writeFileSync(path, "- { action: hashmod, source_labels: [a] }\n");
    expect(await h.reload()).toBe(false);
    expect(apply(h)).toEqual([{ name: "__name__", value: "m" }, { name: "v", value: "two" }]);
    const text = metrics.render();
    expect(text).toContain("strata_relabel_config_reload_success 0");
    expect(text).toContain("strata_relabel_config_reloads_total 3");
    expect(text).toContain("strata_relabel_config_reload_errors_total 1");
    writeFileSync(path, "[]\n");
    expect(await h.reload()).toBe(true);
    expect(metrics.render()).toContain("strata_relabel_config_reload_success 1");
  });

  it("a bad file at start fails the start, naming the file and rule", async () => {
    const path = join(dir, "bad.yml");
    writeFileSync(path, "- { action: replace, target_label: a, regex: '(a' }\n");
    await expect(RelabelHook.open(path, log, new MetricsRegistry())).rejects.toThrow(/bad\.yml: relabel_configs\[0\]: regex/);
  });
});

describe("Graphite listener over a stub cluster", () => {
  it("stores good lines with tags, skips bad ones, stamps lines without a timestamp with now, counts ones past -futureRetention", async () => {
    const written: Uint8Array[] = [];
    const metrics = new MetricsRegistry();
    const g = await startGraphiteServer({
      addr: "127.0.0.1:0",
      tenant: "5:6",
      cluster: { write: async (b) => void written.push(b.slice()), writeMetadata: async () => 0 },
      limits: {},
      relabel: new RelabelHook("", log, metrics),
      maxLineBytes: 1024,
      log,
      metrics,
      window: () => sampleWindow(0, 2 * 86_400_000, Date.now()),
      ignored: rowsIgnoredCounter(metrics),
    });
    try {
      const t0 = Date.now();
      await new Promise<void>((resolve, reject) => {
        const s = connect(g.port, "127.0.0.1", () => {
          s.write("foo.bar;env=prod 1.5 100\nbad line here now\nyear.ten.thousand 1 253402300799\n");
          s.end("baz 2\n");
        });
        s.on("error", reject);
        s.on("close", () => resolve());
        s.resume();
      });
      const rows = rowsOf(written);
      expect(rows[0]).toBe('5:6 foo.bar{env="prod"} 100000 1.5');
      expect(rows.length).toBe(2);
      const ts = Number(rows[1]!.split(" ")[2]);
      expect(rows[1]!.startsWith("5:6 baz ")).toBe(true);
      expect(ts).toBeGreaterThanOrEqual(t0);
      expect(ts).toBeLessThanOrEqual(Date.now());
      expect(metrics.render()).toContain('strata_rows_rejected_total{type="graphite",reason="parse_error"} 1');
      expect(metrics.render()).toContain('strata_rows_inserted_total{type="graphite"} 2');
      expect(metrics.render()).toContain('strata_rows_ignored_total{type="graphite",reason="big_timestamp"} 1');
    } finally {
      await g.close();
    }
  });
});
