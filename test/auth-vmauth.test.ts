import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { basicAuth, rawRequest, startAuth, startEcho, type AuthProcess, type RawResponse, type Running } from "./lib/auth.js";
import { isBuilt, requirePeer } from "./lib/procs.js";

/**
 * Compatibility with Debian's vmauth: one auth.yml, both proxies started on it in front of the
 * same echo backends, the same requests sent to each, and what reached the backend (path,
 * query, configured headers, body) compared. The config uses what both have (Debian ships
 * vmauth 1.79: users with username/password or bearer_token, url_prefix as one URL or a list,
 * url_map with src_paths, headers).
 */

const built = isBuilt("auth");
if (!built && process.env["CI"] === "true") throw new Error("services are not built: run pnpm build before the tests");
const available = built && requirePeer("vmauth", "victoria-metrics");

interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  bodyBytes: number;
  bodySha256: string;
}

/** What a client and a backend can observe of one proxied request. */
function observed(r: RawResponse): unknown {
  if (r.status !== 200) return { status: r.status };
  const e = JSON.parse(r.body) as Echo;
  const [path, query = ""] = e.url.split(/\?(.*)/s) as [string, string?];
  // Go re-encodes the query (sorted by key); compare the decoded pairs.
  const pairs = [...new URLSearchParams(query)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    status: 200,
    backend: e.name.replace(/\d$/, ""),
    method: e.method,
    path,
    query: pairs,
    scope: e.headers["x-scope-orgid"],
    tenant: e.headers["x-tenant"],
    xff: e.headers["x-forwarded-for"],
    authorization: e.headers["authorization"],
    bodyBytes: e.bodyBytes,
    bodySha256: e.bodySha256,
  };
}

describe.skipIf(!available)("same auth.yml with Debian's vmauth and strata-auth", () => {
  const echoes: Running[] = [];
  let vm: AuthProcess;
  let strata: AuthProcess;

  beforeAll(async () => {
    // Two backends behind the list url_prefix, one behind url_map and the single url_prefix.
    echoes.push(await startEcho("pair1"), await startEcho("pair2"), await startEcho("single"));
    const config = `
users:
  - username: alice
    password: secret
    url_prefix: ${echoes[2]!.url}/select/42/prometheus
    headers: ["X-Scope-OrgID: 42"]
  - username: bob
    password: "b:o:b"
    url_prefix: ["${echoes[0]!.url}/insert/7/prometheus/", "${echoes[1]!.url}/insert/7/prometheus/"]
  - bearer_token: tok-42
    url_map:
      - src_paths: ["/insert/42/.+", "/select/42/prometheus/api/v1/(query|query_range|labels)"]
        url_prefix: ${echoes[2]!.url}
        headers: ["X-Tenant: 42"]
      - src_paths: ["/api/v1/write"]
        url_prefix: ${echoes[2]!.url}/insert/42/prometheus
`;
    vm = await startAuth(config, { cmd: "vmauth" });
    strata = await startAuth(config);
  });

  afterAll(async () => {
    await Promise.all([vm?.stop(), strata?.stop()]);
    await Promise.all(echoes.map((e) => e.proc.stop()));
  });

  const alice = { authorization: basicAuth("alice", "secret") };
  const bob = { authorization: basicAuth("bob", "b:o:b") };
  const tok = { authorization: "Bearer tok-42" };

  it.each([
    ["GET", "/api/v1/query?query=up&time=1", alice],
    ["GET", "/api/v1/query_range?query=sum(rate(x[5m]))&start=1&end=2&step=1", alice],
    ["GET", "/api/v1/labels?match%5B%5D=%7Bjob%3D%22a%22%7D", alice],
    ["GET", "/api/v1/../../../select/1/prometheus/api/v1/labels", alice],
    ["GET", "/a/%2e%2e/%2e%2e/b%2Fc/", alice],
    ["GET", "//api//v1//labels", alice],
    ["GET", "/", alice],
    ["GET", "/x/", alice],
    ["GET", "/api/v1/write", bob],
    ["POST", "/api/v1/import", bob],
    ["GET", "/select/42/prometheus/api/v1/labels", tok],
    ["GET", "/select/42/prometheus/api/v1/query?query=1", { authorization: basicAuth("tok-42", "") }],
    ["GET", "/select/42/prometheus/api/v1/series", tok],
    ["GET", "/select/42/../1/prometheus/api/v1/labels", tok],
    ["GET", "/select/42/%2e%2e/1/prometheus/api/v1/labels", tok],
    ["GET", "/select/42/prometheus/api/v1/query/../../../../1/prometheus/api/v1/labels", tok],
    ["POST", "/insert/42/prometheus/api/v1/import", tok],
    ["POST", "/api/v1/write", tok],
    ["GET", "/api/v1/query", {}],
  ])("%s %s", async (method, path, headers) => {
    const body = method === "POST" ? Buffer.alloc(5000, 1) : undefined;
    const h = { ...headers, "x-forwarded-for": "192.0.2.1" };
    const [a, b] = await Promise.all([rawRequest(vm.url, path, { method, headers: h, body }), rawRequest(strata.url, path, { method, headers: h, body })]);
    expect(observed(b)).toEqual(observed(a));
  });

  it("both refuse wrong credentials (vmauth 1.79 with 400, strata-auth and newer vmauth with 401)", async () => {
    const h = { authorization: basicAuth("alice", "wrong") };
    const [a, b] = await Promise.all([rawRequest(vm.url, "/api/v1/query", { headers: h }), rawRequest(strata.url, "/api/v1/query", { headers: h })]);
    expect(a.status).toBe(400);
    expect(b.status).toBe(401);
    expect(b.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });

  it("both spread a url_prefix list over its backends", async () => {
    for (const p of [vm, strata]) {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add((JSON.parse((await rawRequest(p.url, "/api/v1/write", { headers: bob })).body) as Echo).name);
      expect(seen).toEqual(new Set(["pair1", "pair2"]));
    }
  });
});
