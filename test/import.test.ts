import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, hasCommand, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * Every import format through a real cluster (2 storage processes, insert, select): what is
 * stored is read back through select's /api/v1/export. Each table case writes to its own
 * tenant, so its export is exactly what that request stored. Also: rejected requests store
 * nothing, export → import → export is byte-identical, -relabelConfig with SIGHUP reloads,
 * Graphite over TCP, and vmagent forwarding what it receives on its own import APIs.
 */

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const vmagent = built && hasCommand("vmagent");
if (built && !vmagent) console.warn("skipping the vmagent cases: vmagent not installed (apt-get install victoria-metrics)");

// An hour ago, whole seconds: inside the default retention and before select's "now".
const T = Math.floor(Date.now() / 1000 - 3600) * 1000;
const S = T / 1000;

interface Exported {
  metric: Record<string, string>;
  values: (number | string | null)[];
  timestamps: number[];
}

let c: Cluster;
let ins2: Proc; // second insert: -relabelConfig, -graphiteListenAddr
let ins2Url = "";
let graphitePort = 0;
let agent: Proc | undefined;
let agentUrl = "";
const dir = tempDir("import");
const relabelFile = join(dir.path, "relabel.yml");

beforeAll(async () => {
  if (!built) return;
  c = await startCluster({ storageNodes: 2, replicationFactor: 1, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
  writeFileSync(relabelFile, `- { action: drop, if: '{__name__=~"drop_.*"}' }\n- { target_label: relabeled, replacement: v1 }\n`);
  const [p, gp, ap] = [await freePort(), await freePort(), await freePort()];
  graphitePort = gp;
  ins2Url = `http://127.0.0.1:${p}`;
  ins2 = startProcess(process.execPath, [
    serviceMain("insert"),
    `-httpListenAddr=127.0.0.1:${p}`,
    `-storageNode=${c.storage.map((s) => s.insertAddr).join(",")}`,
    `-relabelConfig=${relabelFile}`,
    `-graphiteListenAddr=127.0.0.1:${gp}`,
    "-graphite.tenant=77",
    "-loggerLevel=WARN",
  ]);
  const waits = [waitHealthy(`${ins2Url}/health`, ins2, 30_000)];
  if (vmagent) {
    agentUrl = `http://127.0.0.1:${ap}`;
    agent = startProcess("vmagent", [
      `-httpListenAddr=127.0.0.1:${ap}`,
      `-remoteWrite.url=${c.insertUrl}/insert/88/prometheus/api/v1/write`,
      `-remoteWrite.tmpDataPath=${join(dir.path, "vmagent")}`,
      "-remoteWrite.flushInterval=200ms",
      "-loggerLevel=ERROR",
    ]);
    waits.push(waitHealthy(`${agentUrl}/health`, agent, 30_000));
  }
  await Promise.all(waits);
}, 120_000);

afterAll(async () => {
  await Promise.all([agent?.stop(), ins2?.stop()]);
  await c?.stop();
  dir.remove();
}, 60_000);

async function exportText(tenant: string, match = '{__name__!=""}'): Promise<string> {
  await forceFlush(c);
  const r = await c.api(`/select/${tenant}/prometheus/api/v1/export?match[]=${encodeURIComponent(match)}&start=0`);
  expect(r.status, r.text).toBe(200);
  return r.text;
}

async function exported(tenant: string): Promise<Exported[]> {
  const text = await exportText(tenant);
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Exported)
    .sort(byMetric);
}

async function waitExported(tenant: string, want: number, timeoutMs = 20_000): Promise<Exported[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = await exported(tenant);
    if (got.reduce((n, s) => n + s.values.length, 0) >= want || Date.now() > until) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const post = (url: string, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", body: typeof body === "string" ? body : (body as Uint8Array<ArrayBuffer>), headers });

const byMetric = (a: Exported, b: Exported) => JSON.stringify(a.metric).localeCompare(JSON.stringify(b.metric));
const series = (metric: Record<string, string>, values: Exported["values"], timestamps: number[]): Exported => ({ metric, values, timestamps });

type ValidCase = [name: string, path: string, body: string | Uint8Array, headers: Record<string, string>, want: Exported[]];

const valid: ValidCase[] = [
  [
    "json lines: stale marker, ±Inf, NaN, strings",
    "prometheus/api/v1/import",
    `{"metric":{"__name__":"j1","job":"a"},"values":[1,0.5,null,"Infinity","-Inf","NaN","1e3"],"timestamps":[${T},${T + 1000},${T + 2000},${T + 3000},${T + 4000},${T + 5000},${T + 6000}]}\n` +
      `{"metric":{"job":"b","__name__":"j1","empty":""},"values":[2],"timestamps":[${T}]}`,
    {},
    [
      series({ __name__: "j1", job: "a" }, [1, 0.5, null, "Infinity", "-Infinity", "NaN", 1000], [T, T + 1000, T + 2000, T + 3000, T + 4000, T + 5000, T + 6000]),
      series({ __name__: "j1", job: "b" }, [2], [T]),
    ],
  ],
  [
    "json lines: gzip body, extra_label replaces and adds",
    "prometheus/api/v1/import?extra_label=job=x&extra_label=dc=eu",
    gzipSync(`{"metric":{"__name__":"j2","job":"a"},"values":[3],"timestamps":[${T}]}\n`),
    { "content-encoding": "gzip" },
    [series({ __name__: "j2", dc: "eu", job: "x" }, [3], [T])],
  ],
  [
    "text exposition: HELP/TYPE, escapes, NaN/+Inf, ms timestamps, quoted UTF-8 names",
    "prometheus/api/v1/import/prometheus",
    `# HELP p1 Help.\n# TYPE p1 gauge\np1{a="x\\"y\\\\z\\nw"} 1.5 ${T}\np1{a="b"} NaN ${T}\np1 +Inf ${T}\n{"p.2", "l.x"="v"} 4 ${T}\n`,
    {},
    [
      series({ __name__: "p.2", "l.x": "v" }, [4], [T]),
      series({ __name__: "p1" }, ["Infinity"], [T]),
      series({ __name__: "p1", a: "b" }, ["NaN"], [T]),
      series({ __name__: "p1", a: 'x"y\\z\nw' }, [1.5], [T]),
    ],
  ],
  [
    "text exposition: timestamp parameter for lines without one",
    `prometheus/api/v1/import/prometheus?timestamp=${S}`,
    `p3 1\np3{x="y"} 2 ${T + 5000}\n`,
    {},
    [series({ __name__: "p3" }, [1], [T]), series({ __name__: "p3", x: "y" }, [2], [T + 5000])],
  ],
  [
    "Pushgateway path labels",
    `prometheus/api/v1/import/prometheus/metrics/job/pj/instance/pi?timestamp=${T}`,
    `p4{job="overridden"} 1\n`,
    {},
    [series({ __name__: "p4", instance: "pi", job: "pj" }, [1], [T])],
  ],
  [
    "OpenMetrics: seconds, _created is not a series, # EOF",
    "prometheus/api/v1/import/prometheus",
    `# TYPE om counter\nom_total 3 ${S}.5\nom_created ${S - 60}\n# TYPE g gauge\ng_created 9 ${S}\n# EOF\n`,
    { "content-type": "application/openmetrics-text; version=1.0.0" },
    [series({ __name__: "g_created" }, [9], [T]), series({ __name__: "om_total" }, [3], [T + 500])],
  ],
  [
    "CSV: two metric columns, label, unix_ms",
    "prometheus/api/v1/import/csv?format=1:label:host,2:metric:cpu,3:metric:mem,4:time:unix_ms",
    `h1,0.5,100,${T}\n"h,2",0.25,,${T + 1000}\n`,
    {},
    [
      series({ __name__: "cpu", host: "h,2" }, [0.25], [T + 1000]),
      series({ __name__: "cpu", host: "h1" }, [0.5], [T]),
      series({ __name__: "mem", host: "h1" }, [100], [T]),
    ],
  ],
  [
    "CSV: rfc3339",
    "prometheus/api/v1/import/csv?format=2:metric:c1,1:time:rfc3339",
    `${new Date(T).toISOString().replace(".000Z", "Z")},7\n`,
    {},
    [series({ __name__: "c1" }, [7], [T])],
  ],
  [
    "CSV: custom layout",
    `prometheus/api/v1/import/csv?format=${encodeURIComponent("1:time:custom:2006-01-02 15:04:05.000,2:metric:c2,3:label:l")}`,
    `${new Date(T + 250).toISOString().replace("T", " ").replace("Z", "")},8,x\n`,
    {},
    [series({ __name__: "c2", l: "x" }, [8], [T + 250])],
  ],
  [
    "CSV: unix_s with a fraction",
    "prometheus/api/v1/import/csv?format=1:metric:c3,2:time:unix_s",
    `9,${S}.5\n`,
    {},
    [series({ __name__: "c3" }, [9], [T + 500])],
  ],
  [
    "CSV: unix_ns",
    "prometheus/api/v1/import/csv?format=1:metric:c4,2:time:unix_ns",
    `10,${T}000999\n`,
    {},
    [series({ __name__: "c4" }, [10], [T])],
  ],
  [
    "Influx v1: db label, precision=ms, int/uint/bool fields, strings skipped",
    "influx/write?db=mydb&precision=ms",
    `cpu,host=a usage=1.5,n=2i,u=3u,ok=t,msg="skip me" ${T}\nmem\\ x,host=b free=1e3 ${T}\n`,
    {},
    [
      series({ __name__: "cpu_n", db: "mydb", host: "a" }, [2], [T]),
      series({ __name__: "cpu_ok", db: "mydb", host: "a" }, [1], [T]),
      series({ __name__: "cpu_u", db: "mydb", host: "a" }, [3], [T]),
      series({ __name__: "cpu_usage", db: "mydb", host: "a" }, [1.5], [T]),
      series({ __name__: "mem x_free", db: "mydb", host: "b" }, [1000], [T]),
    ],
  ],
  [
    "Influx v2: bucket label, ns timestamps",
    "influx/api/v2/write?bucket=bk&org=o",
    `disk,dev=sda used=5 ${T}000123\n`,
    {},
    [series({ __name__: "disk_used", db: "bk", dev: "sda" }, [5], [T])],
  ],
  [
    "OpenTSDB: array, seconds and ms, string value, extra_label",
    "opentsdb/api/put?extra_label=src=otsdb",
    `[{"metric":"sys.cpu","timestamp":${S},"value":1.5,"tags":{"host":"a"}},{"metric":"sys.cpu","timestamp":${T + 1000},"value":"2","tags":{"host":"a"}}]`,
    {},
    [series({ __name__: "sys.cpu", host: "a", src: "otsdb" }, [1.5, 2], [T, T + 1000])],
  ],
  [
    "OpenTSDB: single object",
    "opentsdb/api/put",
    `{"metric":"one","timestamp":${S},"value":4,"tags":{"t":"v"}}`,
    {},
    [series({ __name__: "one", t: "v" }, [4], [T])],
  ],
];

type InvalidCase = [name: string, path: string, body: string | Uint8Array, headers: Record<string, string>, status: number, message: string];

const invalid: InvalidCase[] = [
  ["json lines: bad JSON on line 2", "prometheus/api/v1/import", `{"metric":{"__name__":"x"},"values":[1],"timestamps":[${T}]}\n{"metric":`, {}, 400, "jsonline: line 2: "],
  ["json lines: lengths differ", "prometheus/api/v1/import", `{"metric":{"__name__":"x"},"values":[1,2],"timestamps":[${T}]}`, {}, 400, "jsonline: line 1: "],
  ["json lines: no __name__", "prometheus/api/v1/import", `{"metric":{"a":"b"},"values":[1],"timestamps":[${T}]}`, {}, 400, "jsonline: line 1: "],
  ["text: bad value on line 3", "prometheus/api/v1/import/prometheus", `ok 1 ${T}\nok2 2 ${T}\nbad one\n`, {}, 400, "prometheus: line 3: "],
  ["text: unterminated label value", "prometheus/api/v1/import/prometheus", `m{a="b} 1\n`, {}, 400, "prometheus: line 1: "],
  ["text: too many labels", "prometheus/api/v1/import/prometheus", `m{${Array.from({ length: 41 }, (_, i) => `l${i}="v"`).join(",")}} 1\n`, {}, 400, "prometheus: line 1: "],
  ["text: bad timestamp parameter", "prometheus/api/v1/import/prometheus?timestamp=yesterday", "m 1\n", {}, 400, "prometheus: invalid timestamp parameter"],
  ["OpenMetrics: data after # EOF", "prometheus/api/v1/import/prometheus", `m 1\n# EOF\nm 2\n`, { "content-type": "application/openmetrics-text" }, 400, "openmetrics: line 3: "],
  ["CSV: bad value on line 2", "prometheus/api/v1/import/csv?format=1:metric:a,2:time:unix_ms", `1,${T}\nx,${T}\n`, {}, 400, "csv: line 2: "],
  ["CSV: bad format parameter", "prometheus/api/v1/import/csv?format=1:bogus:a", "1\n", {}, 400, "csv: format parameter: "],
  ["Influx: line without fields", "influx/write", `cpu,host=a ${T}000000\n`, {}, 400, "influx: line 1: "],
  ["Influx: bad precision", "influx/write?precision=fortnight", "cpu v=1\n", {}, 400, "influx: "],
  ["OpenTSDB: item 2 without metric", "opentsdb/api/put", `[{"metric":"a","value":1,"timestamp":${S}},{"value":1}]`, {}, 400, "opentsdb: item 2: "],
  ["gzip: corrupt body", "prometheus/api/v1/import", "definitely not gzip", { "content-encoding": "gzip" }, 400, "jsonline: gzip: "],
];

describe.skipIf(!built)("imports through a real cluster", () => {
  it.each(valid.map((v, i) => [...v, i] as const))("stores %s", async (_name, path, body, headers, want, i) => {
    const tenant = String(1000 + i);
    const r = await post(`${c.insertUrl}/insert/${tenant}/${path}`, body, headers);
    expect([r.status, await r.text()]).toEqual([204, ""]);
    expect(await exported(tenant)).toEqual([...want].sort(byMetric));
  });

  it.each(invalid.map((v, i) => [...v, i] as const))("rejects %s whole", async (_name, path, body, headers, status, message, i) => {
    const tenant = String(2000 + i);
    const r = await post(`${c.insertUrl}/insert/${tenant}/${path}`, body, headers);
    const text = await r.text();
    expect(r.status, text).toBe(status);
    expect(text.startsWith(message), text).toBe(true);
    expect(await exportText(tenant)).toBe("");
  });

  it("counts rows per format in /metrics", async () => {
    const m = await (await fetch(`${c.insertUrl}/metrics`)).text();
    expect(m).toMatch(/strata_rows_inserted_total\{type="jsonline"\} [1-9]/);
    expect(m).toMatch(/strata_rows_inserted_total\{type="influx"\} [1-9]/);
    expect(m).toMatch(/strata_rows_rejected_total\{type="prometheus",reason="parse_error"\} [1-9]/);
  });

  it("export → import → export is byte-identical", async () => {
    const special = [0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1e-300, 123456789012345680000, 1 / 3];
    const lines = [
      `{"metric":{"__name__":"rt_special","k":"v w"},"values":[${special.join(",")},null,"NaN","Infinity","-Infinity"],"timestamps":[${Array.from({ length: special.length + 4 }, (_, j) => T + j * 1000).join(",")}]}`,
    ];
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let s = 0; s < 50; s++) {
      const n = 30;
      const vals = Array.from({ length: n }, () => (rnd() < 0.5 ? Math.floor(rnd() * 1e6) : (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20)));
      lines.push(`{"metric":{"__name__":"rt_${s % 5}","series":"${s}","utf":"ü→${s}"},"values":[${vals.join(",")}],"timestamps":[${vals.map((_, j) => T + j * 15_000 + s).join(",")}]}`);
    }
    expect((await post(`${c.insertUrl}/insert/3001/prometheus/api/v1/import`, lines.join("\n"))).status).toBe(204);
    const a = await exportText("3001");
    expect(a.split("\n").filter((l) => l !== "").length).toBe(51);
    expect(a).toContain(`"values":[0.30000000000000004,5e-324,2.2250738585072014e-308,1.7976931348623157e+308,-1e-300,123456789012345680000,0.3333333333333333,null,"NaN","Infinity","-Infinity"]`);
    expect((await post(`${c.insertUrl}/insert/3002/prometheus/api/v1/import`, a)).status).toBe(204);
    const b = await exportText("3002");
    expect(b).toBe(a);
  });

  it("-0 survives import → select export, also after a merge", async () => {
    const body = `${JSON.stringify({ metric: { __name__: "negzero" }, values: [-0, 1.5, -0, 0], timestamps: [T, T + 1000, T + 2000, T + 3000] })}\n`;
    const r = await post(`${c.insertUrl}/insert/4077/prometheus/api/v1/import`, body);
    expect(r.status).toBe(204);
    const lines = (await exportText("4077")).split("\n").filter((l) => l !== "");
    expect(lines).toEqual([body.trim()]);
    await Promise.all(c.storage.map((n) => fetch(`http://${n.httpAddr}/internal/force_merge`)));
    expect((await exportText("4077")).split("\n").filter((l) => l !== "")).toEqual([body.trim()]);
  });

  it("applies -relabelConfig to imports and remote write, reloads it on SIGHUP without failing requests", async () => {
    const metricsOf = async () => (await fetch(`${ins2Url}/metrics`)).text();
    let r = await post(`${ins2Url}/insert/4001/prometheus/api/v1/import/prometheus`, `drop_me 1 ${T}\nkeep_me 2 ${T}\n`);
    expect(r.status).toBe(204);
    const w = await remoteWrite(ins2Url, [{ labels: { __name__: "drop_rw" }, samples: [[T, 1]] }, { labels: { __name__: "keep_rw" }, samples: [[T, 5]] }], "4001");
    expect(w.status).toBe(204);
    expect(await exported("4001")).toEqual([series({ __name__: "keep_me", relabeled: "v1" }, [2], [T]), series({ __name__: "keep_rw", relabeled: "v1" }, [5], [T])]);
    expect(await metricsOf()).toContain('strata_relabel_series_dropped_total{type="promremotewrite"} 1');

    // Reload under load: requests keep flowing while the file changes and SIGHUP arrives.
    writeFileSync(relabelFile, `- { action: drop, if: '{__name__=~"drop_.*"}' }\n- { target_label: relabeled, replacement: v2 }\n`);
    const load = Array.from({ length: 30 }, (_, k) => post(`${ins2Url}/insert/4002/prometheus/api/v1/import/prometheus`, `during{k="${k}"} ${k} ${T}\n`));
    ins2.child.kill("SIGHUP");
    const statuses = await Promise.all(load.map(async (p) => (await p).status));
    expect(statuses.every((s) => s === 204)).toBe(true);
    const until = Date.now() + 10_000;
    while (!(await metricsOf()).includes("strata_relabel_config_reloads_total 2") && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
    r = await post(`${ins2Url}/insert/4001/prometheus/api/v1/import/prometheus`, `keep_me 3 ${T + 1000}\n`);
    expect(r.status).toBe(204);
    expect((await exported("4001")).map((s) => s.metric)).toContainEqual({ __name__: "keep_me", relabeled: "v2" });
    expect((await exported("4002")).length).toBe(30);

    // A bad file: logged, counted, the v2 rules stay.
    writeFileSync(relabelFile, "- { action: keep, regex: '(unclosed' }\n");
    ins2.child.kill("SIGHUP");
    const until2 = Date.now() + 10_000;
    let m = "";
    while (!(m = await metricsOf()).includes("strata_relabel_config_reload_success 0") && Date.now() < until2) await new Promise((res) => setTimeout(res, 100));
    expect(m).toContain("strata_relabel_config_reload_errors_total 1");
    r = await post(`${ins2Url}/insert/4003/prometheus/api/v1/import/prometheus`, `after_bad 1 ${T}\n`);
    expect(r.status).toBe(204);
    expect(await exported("4003")).toEqual([series({ __name__: "after_bad", relabeled: "v2" }, [1], [T])]);
  });

  it("takes Graphite plaintext over TCP (tags, relabeling, bad lines skipped)", async () => {
    await new Promise<void>((resolve, reject) => {
      const s = connect(graphitePort, "127.0.0.1", () => {
        s.write(`servers.a.cpu;env=prod;dc=eu 1.5 ${S}\nnot a valid line at all\n`);
        s.end(`servers.b.cpu 2 ${S + 1}\ndrop_graphite 3 ${S}\n`);
      });
      s.on("error", reject);
      s.on("close", () => resolve());
      s.resume();
    });
    const got = await waitExported("77", 2);
    expect(got).toEqual([
      series({ __name__: "servers.a.cpu", dc: "eu", env: "prod", relabeled: "v2" }, [1.5], [T]),
      series({ __name__: "servers.b.cpu", relabeled: "v2" }, [2], [T + 1000]),
    ]);
    expect(await (await fetch(`${ins2Url}/metrics`)).text()).toContain('strata_rows_rejected_total{type="graphite",reason="parse_error"} 1');
  });

  describe.skipIf(!vmagent)("vmagent forwarding to insert by remote write", () => {
    // The same input imported directly into tenant 5000+k and through vmagent (→ tenant 88).
    const inputs: [agentPath: string, insertPath: string, body: string][] = [
      ["api/v1/import", "prometheus/api/v1/import", `{"metric":{"__name__":"va_json","src":"vmagent"},"values":[1,2.5],"timestamps":[${T},${T + 1000}]}\n`],
      ["write?db=vadb", "influx/write?db=vadb", `va_influx,host=h value=7,n=3i ${T}000000\n`],
      ["api/v1/import/csv?format=1:metric:va_csv,2:label:host,3:time:unix_s", "prometheus/api/v1/import/csv?format=1:metric:va_csv,2:label:host,3:time:unix_s", `4.25,h1,${S}\n`],
      ["api/v1/import/prometheus", "prometheus/api/v1/import/prometheus", `va_text{x="y"} 9 ${T}\n`],
    ];
    it("JSON lines, Influx, CSV and text sent to vmagent arrive as they do imported directly", async () => {
      for (const [path, , body] of inputs) {
        const r = await post(`${agentUrl}/${path}`, body);
        expect(r.status, `${path}: ${await r.text()}`).toBe(204);
      }
      const direct: Exported[] = [];
      for (let k = 0; k < inputs.length; k++) {
        const [, path, body] = inputs[k]!;
        const r = await post(`${c.insertUrl}/insert/${5000 + k}/${path}`, body);
        expect(r.status).toBe(204);
        direct.push(...(await exported(String(5000 + k))));
      }
      direct.sort(byMetric);
      const viaAgent = await waitExported("88", direct.reduce((n, s) => n + s.values.length, 0));
      expect(viaAgent).toEqual(direct);
      expect(direct.map((s) => s.metric["__name__"])).toEqual(["va_csv", "va_influx_n", "va_influx_value", "va_json", "va_text"]);
    });
  });
});
