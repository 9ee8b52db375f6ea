import { create, toBinary } from "@bufbuild/protobuf";
import { snappyEncode, writev2 } from "@strata/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterBuilt, type ApiBody, forceFlush, rawRequest, remoteWrite, remoteWriteBody, startCluster, type Cluster, type TestSeries } from "./lib/cluster.js";

/**
 * Issue 14 (hardening found by fuzzing), over a real cluster: status codes of bad input,
 * canonical tenants (no `..`, no percent-encoding), limits that never cut silently, the
 * all-tenant query statistics behind -adminAuthKey, delete_series only by POST, and samples
 * outside the retention window counted instead of vanishing.
 */

const NOW = Math.floor(Date.now() / 1000) * 1000;
const ADMIN_KEY = "hardening-admin-key";

function parse(text: string): ApiBody {
  return JSON.parse(text) as ApiBody;
}

const built = clusterBuilt();
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");

describe.skipIf(!built)("hardening over a real cluster", () => {
  let c: Cluster;
  const sample = (labels: Record<string, string>): TestSeries => ({ labels, samples: [[NOW - 60_000, 1]] });

  beforeAll(async () => {
    c = await startCluster({ storageNodes: 2, replicationFactor: 1, selectFlags: ["-search.maxTagValues=5", "-search.maxTagKeys=4", "-search.maxExportSeries=6", `-adminAuthKey=${ADMIN_KEY}`] });
    const many = Array.from({ length: 8 }, (_, i) => sample({ __name__: "many_values", v: `v${i}` }));
    expect((await remoteWrite(c.insertUrl, [...many, sample({ __name__: "secret_metric", owner: "one" })], "1")).status).toBe(204);
    expect((await remoteWrite(c.insertUrl, [sample({ __name__: "doomed", x: "1" }), sample({ __name__: "kept", x: "1" })], "3")).status).toBe(204);
    await forceFlush(c);
  });
  afterAll(async () => {
    await c?.stop();
  });

  const sel = (tenant: string, rest: string) => `/select/${tenant}/prometheus/api/v1/${rest}`;
  const sum = (terms: number) => encodeURIComponent(`1${"+1".repeat(terms - 1)}`);

  // [name, status, method, path, error message (or, for 200, a check of the body)]; a POST sends the query string as a form body
  it.each<[string, number, string, string, RegExp | ((b: ApiBody) => void)]>([
    ["malformed percent-encoding in a label name", 400, "GET", sel("1", "label/%ZZ/values"), /invalid label name "%ZZ" in the path: bad percent-encoding/],
    ["a 50,001-term expression", 400, "POST", sel("1", `query?query=${sum(50_001)}`), /expression nesting exceeds 1000 levels/],
    ["a 999-term expression evaluates", 200, "GET", sel("1", `query?query=${sum(999)}&time=100`), (b) => expect(b.data).toEqual({ resultType: "scalar", result: [100, "999"] })],
    ["end=1e+300", 400, "GET", sel("1", "query_range?query=up&start=0&end=1e%2B300&step=60"), /invalid parameter "end": "1e\+300" is outside the supported time range/],
    ["time=-1e+300", 400, "GET", sel("1", "query?query=up&time=-1e%2B300"), /invalid parameter "time": .* outside the supported time range/],
    ["start=1e+300 on labels", 400, "GET", sel("1", "labels?start=1e%2B300"), /invalid parameter "start"/],
    ["timeout=0", 400, "GET", sel("1", "query?query=up&timeout=0"), /invalid parameter "timeout": want a positive duration, got "0"/],
    ["timeout=-1", 400, "GET", sel("1", "query?query=up&timeout=-1"), /invalid parameter "timeout": want a positive duration, got "-1"/],
    ["timeout=-1s on labels", 400, "GET", sel("1", "labels?timeout=-1s"), /invalid parameter "timeout"/],
    ["a .. segment to another tenant", 400, "GET", `/select/2/../1/prometheus/api/v1/query?query=secret_metric`, /"\." and "\.\." segments are not allowed/],
    ["a percent-encoded .. segment", 400, "GET", `/select/2/%2e%2E/1/prometheus/api/v1/query?query=secret_metric`, /"\." and "\.\." segments are not allowed/],
    ["a backslash", 400, "GET", `/select/2\\..\\1/prometheus/api/v1/query?query=secret_metric`, /backslashes are not allowed/],
    ["a percent-encoded tenant", 400, "GET", sel("%31", "query?query=secret_metric"), /percent-encoded tenants are not accepted/],
    ["tenant 01 is tenant 1", 200, "GET", sel("01", `query?query=secret_metric&time=${NOW / 1000}`), (b) => expect(b.data).toMatchObject({ result: [{ metric: { owner: "one" } }] })],
    ["delete_series by GET", 405, "GET", sel("3", "admin/tsdb/delete_series?match[]=doomed"), /method GET not allowed: delete_series takes POST/],
    ["delete_series by PUT", 405, "PUT", sel("3", "admin/tsdb/delete_series?match[]=doomed"), /delete_series takes POST/],
    ["delete_series by GET under /delete/", 405, "GET", "/delete/3/prometheus/api/v1/admin/tsdb/delete_series?match[]=doomed", /delete_series takes POST/],
    ["export over -search.maxExportSeries", 422, "GET", sel("1", "export?match[]=many_values"), /selects more than 6 series \(-search.maxExportSeries\)/],
    ["CSV export over -search.maxExportSeries", 422, "GET", sel("1", "export/csv?format=__name__,__value__&match[]=many_values"), /\(-search.maxExportSeries\)/],
    ["federate over -search.maxExportSeries", 422, "GET", "/select/1/prometheus/federate?match[]=many_values", /\(-search.maxExportSeries\)/],
    ["limit=99999999999999999999 (past 2^53)", 400, "POST", sel("1", "metadata?limit=99999999999999999999"), /invalid parameter "limit": want a non-negative integer up to 2\^53-1/],
    ["limit=2^32 on label values", 200, "GET", sel("1", "label/owner/values?limit=4294967296"), (b) => expect(b.data).toEqual(["one"])],
    ["limit=2^53-1 on metadata", 200, "GET", sel("1", "metadata?limit=9007199254740991"), (b) => expect(b.data).toEqual({})],
    ["the all-tenant top_queries without authKey", 403, "GET", "/api/v1/status/top_queries", /lists every tenant's queries: pass authKey=/],
    ["the all-tenant active_queries with a wrong authKey", 403, "GET", "/api/v1/status/active_queries?authKey=nope", /authKey/],
  ])("select: %s → %i", async (_name, status, method, path, want) => {
    const [p, form] = method === "POST" ? path.split("?") : [path, undefined];
    const r = form === undefined ? await rawRequest(c.selectUrl, method, path) : await rawRequest(c.selectUrl, method, p!, new TextEncoder().encode(form), { "content-type": "application/x-www-form-urlencoded" });
    expect(r.status, r.text).toBe(status);
    if (status === 405) expect(r.headers["allow"]).toBe("POST");
    const b = parse(r.text);
    if (typeof want === "function") want(b);
    else expect(b.error).toMatch(want);
  });

  it("GET delete_series deleted nothing; POST deletes", async () => {
    const count = async () => (parse((await rawRequest(c.selectUrl, "GET", sel("3", "series?match[]=doomed"))).text).data as unknown[]).length;
    expect(await count()).toBe(1);
    const del = await rawRequest(c.selectUrl, "POST", sel("3", "admin/tsdb/delete_series?match[]=doomed"));
    expect(del.status, del.text).toBe(204);
    expect(await count()).toBe(0);
  });

  // [name, path, limit, values, warning, isPartial]
  it.each<[string, string, string[], string | undefined, boolean]>([
    ["label values under the cap", "label/v/values?match[]=many_values&limit=0", ["v0", "v1", "v2", "v3", "v4"].slice(0, 5), "results truncated due to -search.maxTagValues=5", true],
    ["label values with limit=3", "label/v/values?limit=3", ["v0", "v1", "v2"], "results truncated due to limit", false],
    ["label values with limit=8 (all of them, over the cap of 5)", "label/v/values?limit=8", ["v0", "v1", "v2", "v3", "v4"], "results truncated due to -search.maxTagValues=5", true],
    ["label values with limit=20 on a short list", "label/__name__/values?limit=20", ["many_values", "secret_metric"], undefined, false],
    ["label names with limit=1", "labels?limit=1", ["__name__"], "results truncated due to limit", false],
    ["label names exactly at the limit", "labels?limit=3", ["__name__", "owner", "v"], undefined, false],
    ["series with limit=2", "series?match[]=many_values&limit=2", ["v0", "v1"], "results truncated due to limit", false],
  ])("%s: never cut silently", async (_name, rest, want, warning, partial) => {
    const r = await rawRequest(c.selectUrl, "GET", sel("1", rest));
    expect(r.status, r.text).toBe(200);
    const b = parse(r.text);
    const values = (b.data as (string | Record<string, string>)[]).map((x) => (typeof x === "string" ? x : x["v"]!));
    expect(values).toEqual(want);
    if (warning === undefined) expect(b.warnings).toBeUndefined();
    else expect(b.warnings?.join("\n")).toContain(warning);
    expect(b.isPartial).toBe(partial);
  });

  it("query statistics: a tenant sees only its own; the all-tenant view takes -adminAuthKey", async () => {
    const marker = (t: string) => `secret_metric # tenant ${t} probe`;
    for (const t of ["1", "2"]) {
      const r = await rawRequest(c.selectUrl, "GET", sel(t, `query?query=${encodeURIComponent(marker(t))}`));
      expect(r.status, r.text).toBe(200);
    }
    const queries = (text: string) => (JSON.parse(text) as { topByCount: { query: string }[] }).topByCount.map((x) => x.query);
    const own = queries((await rawRequest(c.selectUrl, "GET", sel("2", "status/top_queries?topN=100"))).text);
    expect(own).toContain(marker("2"));
    expect(own).not.toContain(marker("1"));
    const all = await rawRequest(c.selectUrl, "GET", `/api/v1/status/top_queries?topN=100&authKey=${ADMIN_KEY}`);
    expect(all.status).toBe(200);
    expect(queries(all.text)).toEqual(expect.arrayContaining([marker("1"), marker("2")]));
    const active = await rawRequest(c.selectUrl, "GET", `/api/v1/status/active_queries?authKey=${ADMIN_KEY}`);
    expect(active.status).toBe(200);
  });

  // [name, status, method, path, message]
  it.each<[string, number, string, string, RegExp]>([
    ["a .. segment to another tenant", 400, "POST", "/insert/2/../5/prometheus/api/v1/write", /"\." and "\.\." segments are not allowed/],
    ["a percent-encoded .. segment", 400, "POST", "/insert/2/%2E%2e/5/prometheus/api/v1/write", /segments are not allowed/],
    ["a percent-encoded tenant", 400, "POST", "/insert/%35/prometheus/api/v1/write", /percent-encoded tenants are not accepted/],
    ["a percent-encoded tenant on import", 400, "POST", "/insert/%35/prometheus/api/v1/import", /percent-encoded tenants are not accepted/],
  ])("insert: %s → %i, and tenant 5 stays empty", async (_name, status, method, path, want) => {
    const body = path.endsWith("/import") ? new TextEncoder().encode(`{"metric":{"__name__":"smuggled"},"values":[1],"timestamps":[${NOW}]}\n`) : remoteWriteBody([sample({ __name__: "smuggled" })]);
    const r = await rawRequest(c.insertUrl, method, path, body, { "content-type": "application/x-protobuf", "content-encoding": path.endsWith("/import") ? "identity" : "snappy" });
    expect(r.status, r.text).toBe(status);
    expect(r.text).toMatch(want);
    await forceFlush(c);
    const q = parse((await rawRequest(c.selectUrl, "GET", sel("5", "series?match[]=smuggled"))).text);
    expect(q.data).toEqual([]);
  });

  it("remote write 2.0: samples outside the retention window are counted, not written, and left out of Samples-Written", async () => {
    const year10k = BigInt(Date.UTC(10000, 0, 1) - 1);
    const old = BigInt(NOW - 40 * 86_400_000); // storage's default -retentionPeriod is 31 days; insert learns it from the nodes' Ping_v1
    const body = toBinary(
      writev2.RequestSchema,
      create(writev2.RequestSchema, {
        symbols: ["", "__name__", "window_probe"],
        timeseries: [{ labelsRefs: [1, 2], samples: [{ value: 1, timestamp: old }, { value: 2, timestamp: BigInt(NOW) }, { value: 3, timestamp: year10k }] }],
      }),
    );
    const r = await fetch(`${c.insertUrl}/insert/6/prometheus/api/v1/write`, {
      method: "POST",
      headers: { "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request", "content-encoding": "snappy" },
      body: Buffer.from(snappyEncode(body)),
    });
    expect(r.status).toBe(204);
    expect(r.headers.get("x-prometheus-remote-write-samples-written")).toBe("1");
    const metrics = await (await fetch(`${c.insertUrl}/metrics`)).text();
    expect(metrics).toMatch(/strata_rows_ignored_total\{type="promremotewrite",reason="small_timestamp"\} 1\b/);
    expect(metrics).toMatch(/strata_rows_ignored_total\{type="promremotewrite",reason="big_timestamp"\} 1\b/);
    await forceFlush(c);
    const exp = await fetch(`${c.selectUrl}${sel("6", `export?match[]=window_probe&start=0&end=${NOW / 1000 + 86_400}`)}`);
    const lines = (await exp.text()).trim().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { timestamps: number[] }).timestamps)).toEqual([[NOW]]);
  });
});
