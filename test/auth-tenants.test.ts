import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, rawRequest, startAuth, type AuthProcess, type RawResponse } from "./lib/auth.js";
import { clusterBuilt, forceFlush, remoteWrite, startCluster, type Cluster } from "./lib/cluster.js";
import { isBuilt } from "./lib/procs.js";

/**
 * Cross-tenant reads through strata-auth: tenants 7 (alpha) and 8 (bravo) hold distinct series;
 * users mapped to tenant 7 (a Grafana-style bearer token with url_prefix, and basic auth with
 * url_map) send random reads to every read endpoint select serves (query, query_range, series,
 * labels, label values, export, federate, status/tsdb, metadata, exemplars — the UI's data
 * calls are these) with selectors naming either tenant's metrics, labels and values, GET or
 * POST, with tenant-looking query args and headers. No answer may hold a name or value of
 * tenant 8. One cluster and one auth process serve every case.
 */

const built = clusterBuilt() && isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

const A = { tenant: "7", metrics: ["alpha_requests_total", "alpha_temperature"], labels: ["alpha_only"], values: ["alpha-job", "alpha-1", "alpha-2", "a-val", "alpha-owner"] };
const B = { tenant: "8", metrics: ["bravo_secret_total", "bravo_temperature"], labels: ["bravo_label"], values: ["bravo-job", "bravo-1", "bravo-val-xyz", "bravo-owner"] };
/** Every string only tenant 8's data holds: none may show up in an answer to a tenant-7 user. */
const B_TOKENS = [...B.metrics, ...B.labels, ...B.values];

const READS = ["query", "query_range", "series", "labels", "label_values", "export", "federate", "status_tsdb", "metadata", "query_exemplars"] as const;
type Read = (typeof READS)[number];

interface Req {
  readonly read: Read;
  readonly selector: string;
  readonly expr: string;
  readonly labelName: string;
  readonly withMatch: boolean;
  readonly post: boolean;
  readonly user: "grafana" | "mapped";
  readonly trick: "none" | "arg" | "header";
}

const str = (xs: readonly string[]) => fc.constantFrom(...xs);
const selector = fc.oneof(
  fc.constant('{__name__=~".+"}'),
  fc.constant('{__name__=~"bravo.*|alpha.*"}'),
  fc.tuple(str([...A.metrics, ...B.metrics, "shared_metric"]), str(["job", "instance", "owner", ...A.labels, ...B.labels]), str(["=", "!=", "=~", "!~"]), str([...A.values, ...B.values, ".+", ".*", "bravo.*"])).map(
    ([m, l, op, v]) => `${m}{${l}${op}${JSON.stringify(v)}}`,
  ),
  str(["shared_metric", ...A.metrics, ...B.metrics]),
);
const exprOf = (sel: string) => fc.constantFrom(sel, `count by (__name__) (${sel})`, `group by (job, instance, owner) (${sel})`, `sum by (owner) (rate(${sel}[5m]))`, `topk(3, last_over_time(${sel}[10m]))`, `sort_desc(${sel})`);
const request: fc.Arbitrary<Req> = selector.chain((sel) =>
  fc.record({
    read: fc.constantFrom(...READS),
    selector: fc.constant(sel),
    expr: exprOf(sel),
    labelName: str(["__name__", "job", "instance", "owner", ...A.labels, ...B.labels]),
    withMatch: fc.boolean(),
    post: fc.boolean(),
    user: fc.constantFrom("grafana" as const, "mapped" as const),
    trick: fc.constantFrom("none" as const, "arg" as const, "header" as const),
  }),
);

describe.skipIf(!built)("no tenant reads another through strata-auth", () => {
  let c: Cluster;
  let auth: AuthProcess;
  const now = Date.now();
  const sec = (ms: number) => (ms / 1000).toFixed(3);

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, selectFlags: ["-search.disableCache", "-search.latencyOffset=0s"] });
    const samples = (v: number): [number, number][] => Array.from({ length: 10 }, (_, i) => [now - (9 - i) * 30_000, v + i]);
    for (const [t, prefix] of [[A, "alpha"], [B, "bravo"]] as const) {
      const w = await remoteWrite(
        c.insertUrl,
        [
          { labels: { __name__: t.metrics[0]!, job: `${prefix}-job`, instance: `${prefix}-1`, [t.labels[0]!]: t === A ? "a-val" : "bravo-val-xyz" }, samples: samples(1) },
          { labels: { __name__: t.metrics[1]!, job: `${prefix}-job`, instance: t === A ? "alpha-2" : "bravo-1" }, samples: samples(20) },
          { labels: { __name__: "shared_metric", job: `${prefix}-job`, owner: `${prefix}-owner` }, samples: samples(5) },
        ],
        t.tenant,
      );
      expect(w.status).toBe(204);
    }
    await forceFlush(c);
    auth = await startAuth(`
users:
  - bearer_token: grafana-token-7
    url_prefix: ${c.selectUrl}/select/7/prometheus
  - username: mapped7
    password: pw7
    url_map:
      - src_paths: ["/select/7/prometheus/.+"]
        url_prefix: ${c.selectUrl}
`);
  }, 120_000);

  afterAll(async () => {
    await auth?.stop();
    await c?.stop();
  }, 60_000);

  /** The API path and args of one read (relative to a tenant's /prometheus). */
  const target = (r: Req): { path: string; args: [string, string][] } => {
    const match: [string, string][] = r.withMatch ? [["match[]", r.selector]] : [];
    const range: [string, string][] = [["start", sec(now - 600_000)], ["end", sec(now + 1000)]];
    switch (r.read) {
      case "query":
        return { path: "/api/v1/query", args: [["query", r.expr], ["time", sec(now)]] };
      case "query_range":
        return { path: "/api/v1/query_range", args: [["query", r.expr], ...range, ["step", "60"]] };
      case "series":
        return { path: "/api/v1/series", args: [["match[]", r.selector], ...range] };
      case "labels":
        return { path: "/api/v1/labels", args: [...match, ...range] };
      case "label_values":
        return { path: `/api/v1/label/${r.labelName}/values`, args: [...match, ...range] };
      case "export":
        return { path: "/api/v1/export", args: [["match[]", r.selector], ...range] };
      case "federate":
        return { path: "/federate", args: [["match[]", r.selector]] };
      case "status_tsdb":
        return { path: "/api/v1/status/tsdb", args: [["topN", "20"], ...(r.withMatch ? [["match[]", r.selector] as [string, string]] : [])] };
      case "metadata":
        return { path: "/api/v1/metadata", args: [] };
      case "query_exemplars":
        return { path: "/api/v1/query_exemplars", args: [["query", r.selector], ...range] };
    }
  };

  const send = async (r: Req, base = auth.url, prefixFor = (user: Req["user"]): string => (user === "grafana" ? "" : "/select/7/prometheus")): Promise<{ res: RawResponse; sent: string }> => {
    const { path, args } = target(r);
    if (r.trick === "arg") args.push(["tenant", "8"], ["accountID", "8"], ["extra_label", "tenant=8"]);
    const qs = new URLSearchParams(args).toString();
    const headers: Record<string, string> = {
      authorization: r.user === "grafana" ? "Bearer grafana-token-7" : basicAuth("mapped7", "pw7"),
      ...(r.trick === "header" ? { "x-scope-orgid": "8", accountid: "8", projectid: "0" } : {}),
    };
    const full = `${prefixFor(r.user)}${path}`;
    const res = r.post && r.read !== "federate"
      ? await rawRequest(base, full, { method: "POST", headers: { ...headers, "content-type": "application/x-www-form-urlencoded" }, body: qs })
      : await rawRequest(base, `${full}?${qs}`, { headers });
    return { res, sent: `${full}?${qs}` };
  };

  /**
   * Tenant 8's strings an answer holds that it may not: any in a successful answer; in an error,
   * any the request itself did not carry (an error may quote the query, never data).
   */
  const leaks = (res: RawResponse, sent: string): string[] => {
    const isError = res.status >= 400 || /"status"\s*:\s*"error"/.test(res.body);
    const request = decodeURIComponent(sent.replaceAll("+", " "));
    return B_TOKENS.filter((t) => res.body.includes(t) && !(isError && request.includes(t)));
  };

  it("the oracle sees tenant 8's data when tenant 8 is read (so it can see a leak)", async () => {
    const r: Req = { read: "series", selector: '{__name__=~".+"}', expr: "", labelName: "job", withMatch: true, post: false, user: "grafana", trick: "none" };
    const { res, sent } = await send(r, c.selectUrl, () => "/select/8/prometheus");
    expect(res.status).toBe(200);
    expect(leaks(res, sent)).toEqual(expect.arrayContaining(["bravo_secret_total", "bravo-job"]));
  });

  it("a tenant-7 user's random reads on every read endpoint never hold tenant 8's series, names or values", async () => {
    const statuses = new Map<Read, Set<number>>();
    let sawAlpha = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const { res, sent } = await send(r);
        statuses.set(r.read, (statuses.get(r.read) ?? new Set()).add(res.status));
        if (res.status === 200 && A.metrics.some((m) => res.body.includes(m))) sawAlpha++;
        const leaked = leaks(res, sent);
        if (leaked.length > 0) throw new Error(`${sent} (${r.user}, ${r.post ? "POST" : "GET"}) answered ${res.status} with tenant 8's ${leaked.join(", ")}: ${res.body.slice(0, 300)}`);
      }),
      { numRuns: 150 },
    );
    // The reads reached select and found tenant 7's data: the property was not vacuous.
    expect(sawAlpha).toBeGreaterThan(10);
    for (const read of READS) expect([...(statuses.get(read) ?? [])], read).toContain(200);
  }, 120_000);
});
