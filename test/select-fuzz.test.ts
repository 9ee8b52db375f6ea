import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, forceFlush, rawRequest, remoteWrite, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";

/**
 * Query fuzzing (issue 14, part 4): fast-check builds PromQL (valid, broken and mutated) and API
 * parameters (times, steps, durations, limits, selectors, tenants, paths) and sends them to a real
 * select over storage nodes with data. Every answer must be below 500 — bad input is the client's
 * fault — and select must keep answering /health. Bounded by runs and by time (CI budget ~60 s).
 */

const STEP = 15_000;
const END = Math.floor(Date.now() / STEP) * STEP;
const START = END - 60 * STEP;

function data(): TestSeries[] {
  const out: TestSeries[] = [];
  for (const job of ["api", "db"]) {
    for (let i = 0; i < 3; i++) {
      const samples: [number, number][] = [];
      for (let t = START; t <= END; t += STEP) samples.push([t, (t - START) / 1000 + i * 7]);
      out.push({ labels: { __name__: "http_requests_total", job, instance: `h${i}`, code: i === 2 ? "500" : "200" }, samples });
      out.push({ labels: { __name__: "temp_celsius", job, instance: `h${i}` }, samples: samples.map(([t, v]) => [t, Math.sin(v)] as [number, number]) });
    }
  }
  out.push({ labels: { __name__: "le_bucket", le: "0.1", job: "api" }, samples: [[END, 1]] });
  out.push({ labels: { __name__: "le_bucket", le: "+Inf", job: "api" }, samples: [[END, 3]] });
  return out;
}

// ---- generators --------------------------------------------------------------------------------

const metric = fc.constantFrom("http_requests_total", "temp_celsius", "le_bucket", "up", "nope", "__name__", "sum", "on", "offset");
const label = fc.constantFrom("job", "instance", "code", "le", "__name__", "x", "", "0bad", "ü");
const value = fc.oneof(fc.constantFrom("api", "db", "h1", "", ".*", "(", "a|b", "\\", '"', "\u0000"), fc.string({ maxLength: 6 }));
const matchOp = fc.constantFrom("=", "!=", "=~", "!~", "==", "~");
const duration = fc.oneof(
  fc.constantFrom("5m", "1s", "0s", "1h30m", "1y", "100ms", "-5m", "1e3", "0", "9999999999999d", "1.5m", "", "5x"),
  fc.tuple(fc.integer({ min: -10, max: 100_000 }), fc.constantFrom("ms", "s", "m", "h", "d", "w", "y", "")).map(([n, u]) => `${n}${u}`),
);
const func = fc.constantFrom(
  "rate", "irate", "increase", "delta", "deriv", "avg_over_time", "max_over_time", "quantile_over_time", "predict_linear",
  "abs", "ceil", "clamp", "clamp_max", "histogram_quantile", "label_replace", "label_join", "sort", "sort_desc", "time",
  "timestamp", "vector", "scalar", "absent", "absent_over_time", "changes", "resets", "round", "exp", "ln", "sqrt",
  "day_of_week", "holt_winters", "count_values", "nosuchfunc", "topk",
);
const aggr = fc.constantFrom("sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group", "limitk", "limit_ratio");
const binop = fc.constantFrom("+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", ">=", "<=", "and", "or", "unless", "atan2", "== bool", "> bool");
const num = fc.oneof(
  fc.constantFrom("0", "1", "-1", "1e308", "-1e308", "1e-320", "NaN", "Inf", "-Inf", "0x1F", "1_000", "0.5", "5m", "1e400"),
  fc.double({ noNaN: false }).map(String),
);

const selector = fc
  .tuple(fc.option(metric, { nil: undefined }), fc.array(fc.tuple(label, matchOp, value), { maxLength: 3 }))
  .map(([m, ms]) => {
    const inner = ms.map(([l, op, v]) => `${l}${op}${JSON.stringify(v)}`).join(",");
    return `${m ?? ""}${ms.length > 0 || m === undefined ? `{${inner}}` : ""}`;
  });

const { expr } = fc.letrec<{ expr: string; leaf: string; node: string }>((tie) => ({
  leaf: fc.oneof(
    { weight: 4, arbitrary: selector },
    { weight: 2, arbitrary: fc.tuple(selector, duration).map(([s, d]) => `${s}[${d}]`) },
    { weight: 2, arbitrary: num },
    { weight: 1, arbitrary: fc.string({ maxLength: 5 }).map((s) => JSON.stringify(s)) },
  ),
  node: fc.oneof(
    fc.tuple(tie("expr"), binop, tie("expr")).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(tie("expr"), binop, fc.constantFrom("on(job)", "ignoring(instance)", "on(job) group_left", "on() group_right(code)"), tie("expr")).map(([a, op, m, b]) => `${a} ${op} ${m} ${b}`),
    fc.tuple(func, fc.array(tie("expr"), { maxLength: 4 })).map(([f, args]) => `${f}(${args.join(", ")})`),
    fc.tuple(aggr, fc.constantFrom("", " by (job)", " without (instance)", " by ()", " by (job, job)"), fc.option(num, { nil: undefined }), tie("expr")).map(
      ([a, g, p, e]) => `${a}${g}(${p === undefined ? "" : `${p}, `}${e})`,
    ),
    fc.tuple(tie("expr"), duration, fc.option(duration, { nil: undefined })).map(([e, r, s]) => `(${e})[${r}:${s ?? ""}]`),
    fc.tuple(tie("expr"), duration).map(([e, d]) => `${e} offset ${d}`),
    fc.tuple(tie("expr"), fc.constantFrom("start()", "end()", "1e20", "-1e20", "NaN", "100")).map(([e, at]) => `${e} @ ${at}`),
    tie("expr").map((e) => `-(${e})`),
    tie("expr").map((e) => `(${e})`),
  ),
  expr: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("leaf"), tie("node")),
}));

/** A query: generated PromQL, sometimes cut, doubled or with a character changed. */
const query = fc.oneof(
  { weight: 6, arbitrary: expr },
  {
    weight: 2,
    arbitrary: fc.tuple(expr, fc.nat(), fc.constantFrom("(", ")", "{", "}", "[", "]", '"', ",", "@", "offset", "by", "\\", "\u0000", "😀", "%")).map(
      ([q, i, ch]) => q.slice(0, i % (q.length + 1)) + ch + q.slice(i % (q.length + 1)),
    ),
  },
  { weight: 1, arbitrary: fc.tuple(expr, fc.nat()).map(([q, i]) => q.slice(0, i % (q.length + 1))) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "1" + "+1".repeat(3000), "(".repeat(1500) + "1" + ")".repeat(1500), "-".repeat(5000) + "1", "x".repeat(20_000)) },
);

const time = fc.oneof(
  fc.constantFrom(`${END / 1000}`, `${START / 1000}`, "now", "now-1h", "-5m", "0", "-1", "1e+300", "-1e+300", "1e17", "NaN", "Infinity", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30", "abc", ""),
  fc.double().map(String),
  fc.integer({ min: -1e12, max: 1e13 }).map(String),
);
const step = fc.oneof(duration, fc.constantFrom("15", "0.001", "1e-9", "-15", "NaN", "1e20", "60"), fc.double().map(String));
const limit = fc.oneof(fc.constantFrom("0", "1", "2", "-1", "1e3", "abc", "99999999999999999999", ""), fc.nat().map(String));
const matchParam = fc.oneof(selector, fc.constantFrom("up", "{}", '{job=""}', "{__name__=~'.*'}", "rate(x[5m])", "x offset 5m", "{", ""));
const tenant = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("0", "1", "0:0", "7:3") },
  { weight: 2, arbitrary: fc.constantFrom("4294967296", "-1", "%30", "01", "1:2:3", "abc", "..", ".", "%2e%2e", "0%3A1", "1:") },
);

type Req = { readonly method: "GET" | "POST"; readonly path: string; readonly params: [string, string][] };

const endpoint = fc.constantFrom(
  "api/v1/query", "api/v1/query_range", "api/v1/series", "api/v1/labels", "api/v1/label/job/values", "api/v1/label/__name__/values",
  "api/v1/label/%ZZ/values", "api/v1/label/U__a_2e_b/values", "api/v1/export", "api/v1/export/csv", "federate", "api/v1/status/tsdb",
  "api/v1/metadata", "api/v1/query_exemplars", "api/v1/series/count", "api/v1/status/top_queries", "api/v1/status/active_queries",
  "api/v1/nosuch", "api/v1/label//values",
);

const param = fc.oneof(
  fc.tuple(fc.constant("query"), query),
  fc.tuple(fc.constantFrom("time", "start", "end"), time),
  fc.tuple(fc.constant("step"), step),
  // Invalid ones, or long enough not to expire: a real deadline is a 503 (timeout), not bad input.
  fc.tuple(fc.constant("timeout"), fc.constantFrom("0", "-1", "-5m", "0s", "abc", "", "5x", "1e3", "10s", "1m", "99999999999999d")),
  fc.tuple(fc.constantFrom("limit", "topN"), limit),
  fc.tuple(fc.constant("match[]"), matchParam),
  fc.tuple(fc.constantFrom("date"), fc.constantFrom("2026-12-06", "2026-13-45", "yesterday", "")),
  fc.tuple(fc.constantFrom("focusLabel", "metric", "format"), fc.constantFrom("job", "", "__name__,__value__,__timestamp__:unix_s", "__timestamp__:nope")),
  fc.tuple(fc.constantFrom("nocache", "deny_partial_response"), fc.constantFrom("1", "true", "0")),
);

const request: fc.Arbitrary<Req> = fc
  .tuple(fc.constantFrom<"GET" | "POST">("GET", "POST"), tenant, endpoint, fc.array(param, { maxLength: 6 }), fc.boolean())
  .map(([method, t, ep, ps, withQuery]) => {
    const needsQuery = ep === "api/v1/query" || ep === "api/v1/query_range";
    const params: [string, string][] = [...ps];
    if (needsQuery && withQuery && !params.some(([k]) => k === "query")) params.push(["query", "sum(rate(http_requests_total[1m]))"]);
    return { method, path: `/select/${t}/prometheus/${ep}`, params };
  });

// ---- the test ----------------------------------------------------------------------------------

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("select under fuzzed queries and parameters", () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1, selectFlags: ["-search.maxQueryDuration=20s", "-search.maxConcurrentRequests=4"] });
    expect((await remoteWrite(c.insertUrl, data())).status).toBe(204);
    await forceFlush(c);
  });
  afterAll(async () => {
    await c?.stop();
  });

  /** Sends the request as written (fetch would fold `..` segments and re-encode the path). */
  function send(r: Req): Promise<{ status: number; text: string }> {
    const qs = new URLSearchParams(r.params).toString();
    if (r.method === "GET") return rawRequest(c.selectUrl, "GET", `${r.path}${qs !== "" ? `?${qs}` : ""}`);
    return rawRequest(c.selectUrl, "POST", r.path, qs, { "content-type": "application/x-www-form-urlencoded" });
  }

  it("answers every generated request below 500 and keeps answering /health", async () => {
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await send(r);
        sent++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) throw new Error(`${r.method} ${r.path} ${JSON.stringify(r.params).slice(0, 2000)} → ${res.status}: ${res.text.slice(0, 500)}`);
        if (sent % 25 === 0) expect((await fetch(`${c.selectUrl}/health`, { signal: AbortSignal.timeout(5_000) })).status).toBe(200);
      }),
      { numRuns: 1_000, interruptAfterTimeLimit: 40_000, markInterruptAsFailure: false, endOnFailure: true },
    );
    console.log(`select fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    expect(sent).toBeGreaterThan(50);
    const health = await fetch(`${c.selectUrl}/health`, { signal: AbortSignal.timeout(5_000) });
    expect(health.status).toBe(200);
    expect(c.select.child.exitCode).toBeNull();
  }, 90_000);
});
