import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { freePort, repoRoot, requirePeer, startProcess, tempDir, waitHealthy, type Proc } from "./lib/procs.js";

/**
 * The Prometheus API beyond data, side by side with a real Prometheus (Debian's, with a config
 * that scrapes nothing): format_query, error texts of malformed queries, and the status pages'
 * fields. parse_query is checked against the shape Prometheus' translateAST writes (Debian's
 * Prometheus 2.42 predates that endpoint).
 */

interface ApiBody {
  status: string;
  data?: unknown;
  errorType?: string;
  error?: string;
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const withProm = built && requirePeer("prometheus", "prometheus");

// Short ones stay on one line; those over 100 characters are split as parser.Prettify does.
// Numbers stay below 1e6 and above 1e-4: Prometheus 3.x writes them without an exponent
// (strconv 'f'), which Strata follows, where Debian's 2.42 writes 1e+06.
const FORMAT_CASES = [
  "up",
  "sum(rate(http_requests_total[5m]))by(job)",
  '{job="api",code=~"5..",__name__="http_requests_total"}',
  "a/on(instance)group_left(team)b",
  "sum without(instance)(x offset 1h)",
  "-x + 1e3",
  "topk(3,x)",
  'count_values("v", x)',
  'label_replace(up,"a","$1","b","(.*)")',
  "rate(x[5m:1m])",
  "x @ 100",
  "x > bool 1",
  '"a string"',
  "((x))",
  'sum by (job, instance) (rate(http_requests_total{job="api-server",handler="/api/v1/query_range"}[5m])) / on (job) group_left () sum by (job) (rate(http_requests_total{job="api-server"}[5m]))',
  'histogram_quantile(0.99, sum by (le, job, instance, handler) (rate(http_request_duration_seconds_bucket{job="api-server",handler=~"/api/v1/.*"}[5m])))',
  'topk(5, sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{namespace="production",container!="",image!=""}[5m])))',
  '-(sum by (job) (rate(http_requests_total{job="api-server",handler="/api/v1/query_range",code=~"5.."}[5m])) + 1)',
  'max_over_time(sum by (job, instance) (rate(http_requests_total{job="api-server",handler="/api/v1/query_range"}[5m]))[1h:1m])',
];

// Each fails to parse; Prometheus' message is the reference.
const MALFORMED = [
  "sum(up",
  "up{",
  'up{job="a"',
  "rate(x[5m]",
  "1 +",
  "foo bar",
  "sum(rate(x[5m])))",
  '"abc',
  "{}",
  "rate(up)",
  "abs(1, 2)",
  "nosuchfn(up)",
  "up @ foo",
  ")",
  '1 + "a"',
  "up{job=~}",
  "",
  'x{__name__="x"}',
  "sum(x) offset 1h",
  "sum(x) @ 100",
  "x offset 1m offset 1m",
  "x @ 1 @ 2",
  "rate(x[5m] offset 1m offset 2m)",
  "sum by (job (up)",
  "foo bar)",
  "sum(x) by (a, b c",
  'x{a="b" c="d"}(',
];

describe.skipIf(!withProm)("the Prometheus API beside a real Prometheus", () => {
  let c: Cluster;
  let prom: Proc | undefined;
  let promUrl = "";
  const dir = tempDir("prom-api");

  const strata = async (path: string): Promise<{ status: number; body: ApiBody }> => {
    const r = await c.api(`/select/0/prometheus${path}`);
    return { status: r.status, body: r.json as ApiBody };
  };
  const prometheus = async (path: string): Promise<{ status: number; body: ApiBody }> => {
    const r = await fetch(`${promUrl}${path}`);
    return { status: r.status, body: (await r.json()) as ApiBody };
  };

  beforeAll(async () => {
    const port = await freePort();
    writeFileSync(join(dir.path, "prometheus.yml"), "global:\n  scrape_interval: 15s\n");
    prom = startProcess("prometheus", [
      `--config.file=${join(dir.path, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir.path, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    promUrl = `http://127.0.0.1:${port}`;
    c = await startCluster({ storageNodes: 1 });
    await waitHealthy(`${promUrl}/-/ready`, prom, 30_000);
  }, 60_000);
  afterAll(async () => {
    await prom?.stop();
    await c?.stop();
    dir.remove();
  });

  it.each(FORMAT_CASES)("format_query %s", async (q) => {
    const path = `/api/v1/format_query?query=${encodeURIComponent(q)}`;
    const [s, p] = await Promise.all([strata(path), prometheus(path)]);
    expect(p.status).toBe(200);
    expect(JSON.stringify(s)).toBe(JSON.stringify(p));
  });

  // query_range is held to Prometheus' query answer: 3.x words both alike (`invalid parameter
  // "query": …`), where 2.42 still left the parameter out of query_range's.
  it.each(MALFORMED)("the error for %j is Prometheus' (query, query_range, format_query)", async (q) => {
    const enc = encodeURIComponent(q);
    const cases: [string, string][] = [
      [`/api/v1/format_query?query=${enc}`, `/api/v1/format_query?query=${enc}`],
      [`/api/v1/parse_query?query=${enc}`, `/api/v1/format_query?query=${enc}`],
    ];
    cases.push([`/api/v1/query?query=${enc}&time=100`, `/api/v1/query?query=${enc}&time=100`], [`/api/v1/query_range?query=${enc}&start=0&end=100&step=10`, `/api/v1/query?query=${enc}&time=100`]);
    for (const [path, ref] of cases) {
      const [s, p] = await Promise.all([strata(path), prometheus(ref)]);
      expect(p.status, ref).toBe(400);
      expect(JSON.stringify({ path, ...s })).toBe(JSON.stringify({ path, ...p }));
    }
  });

  it("status pages carry Prometheus' fields: buildinfo (Strata's own version too), runtimeinfo, flags, tsdb", async () => {
    const keys = (b: ApiBody): string[] => Object.keys(b.data as object).sort();
    const [sb, pb] = await Promise.all([strata("/api/v1/status/buildinfo"), prometheus("/api/v1/status/buildinfo")]);
    expect(keys(sb.body)).toEqual(expect.arrayContaining(keys(pb.body)));
    const build = sb.body.data as { version: string; strataVersion: string; application: string };
    const rootVersion = (JSON.parse((await import("node:fs")).readFileSync(join(repoRoot, "services/select/package.json"), "utf8")) as { version: string }).version;
    expect([build.application, build.strataVersion]).toEqual(["strata-select", rootVersion]);
    expect(build.version).toMatch(/^2\.\d+\.\d+$/); // what Grafana reads to choose features

    const [sr, pr] = await Promise.all([strata("/api/v1/status/runtimeinfo"), prometheus("/api/v1/status/runtimeinfo")]);
    const goOnly = new Set(["goroutineCount", "GOGC", "GODEBUG"]);
    expect(keys(sr.body)).toEqual(expect.arrayContaining(keys(pr.body).filter((k) => !goOnly.has(k))));

    const flags = await strata("/api/v1/status/flags");
    expect(flags.status).toBe(200);
    expect((flags.body.data as Record<string, string>)["search.maxSeries"]).toBe("300000");

    const now = Date.now();
    const w = await remoteWrite(c.insertUrl, [
      { labels: { __name__: "m", job: "a", instance: "host-1" }, samples: [[now, 1]] },
      { labels: { __name__: "m", job: "bb", instance: "host-22" }, samples: [[now, 1]] },
    ]);
    expect(w.status, w.text).toBe(204);
    await forceFlush(c);
    const [st, pt] = await Promise.all([strata("/api/v1/status/tsdb"), prometheus("/api/v1/status/tsdb")]);
    expect(keys(st.body)).toEqual(expect.arrayContaining(keys(pt.body)));
    expect(keys(st.body)).toEqual(expect.arrayContaining(["totalSeries", "seriesCountByLabelName", "seriesCountByFocusLabelValue"]));
    const t = st.body.data as { headStats: Record<string, number>; memoryInBytesByLabelName: { name: string; value: number }[] };
    expect(Object.keys(t.headStats).sort()).toEqual(Object.keys((pt.body.data as { headStats: object }).headStats).sort());
    expect([t.headStats["numSeries"], t.headStats["numLabelPairs"]]).toEqual([2, 5]);
    // Bytes of each label name's values: instance host-1 + host-22, job a + bb, __name__ m.
    expect(t.memoryInBytesByLabelName).toEqual([{ name: "instance", value: 13 }, { name: "job", value: 3 }, { name: "__name__", value: 1 }]);
  });

  it("parse_query answers the AST as Prometheus' translateAST writes it", async () => {
    const r = await strata(`/api/v1/parse_query?query=${encodeURIComponent('sum by (job) (rate(x{a="b"}[5m] offset 1m)) / on (job) group_left () -y')}`);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({
      type: "binaryExpr",
      op: "/",
      bool: false,
      matching: { card: "many-to-one", labels: ["job"], on: true, include: [], fillValues: { lhs: null, rhs: null } },
      lhs: {
        type: "aggregation",
        op: "sum",
        grouping: ["job"],
        without: false,
        param: null,
        expr: {
          type: "call",
          func: { name: "rate", argTypes: ["matrix"], variadic: 0, returnType: "vector" },
          args: [{
            type: "matrixSelector",
            name: "x",
            range: 300_000,
            offset: 60_000,
            timestamp: null,
            startOrEnd: null,
            anchored: false,
            smoothed: false,
            matchers: [{ name: "a", type: "=", value: "b" }, { name: "__name__", type: "=", value: "x" }],
          }],
        },
      },
      rhs: {
        type: "unaryExpr",
        op: "-",
        expr: {
          type: "vectorSelector", name: "y", offset: 0, timestamp: null, startOrEnd: null, anchored: false, smoothed: false,
          matchers: [{ name: "__name__", type: "=", value: "y" }],
        },
      },
    });
    const at = await strata(`/api/v1/parse_query?query=${encodeURIComponent('x @ start() + "s" + 1e21')}`);
    expect(at.status).toBe(400); // string in a binary expression
    const sel = await strata(`/api/v1/parse_query?query=${encodeURIComponent("x @ start()")}`);
    expect(sel.body.data).toMatchObject({ type: "vectorSelector", timestamp: null, startOrEnd: "start" });
    const num = await strata(`/api/v1/parse_query?query=${encodeURIComponent("1e21")}`);
    expect(num.body.data).toEqual({ type: "numberLiteral", val: "1000000000000000000000" });
    const bad = await strata("/api/v1/parse_query?query=sum(up");
    expect(bad).toEqual({ status: 400, body: { status: "error", errorType: "bad_data", error: 'invalid parameter "query": 1:7: parse error: unclosed left parenthesis' } });
  });
});
