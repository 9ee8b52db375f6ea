import { describe, expect, it } from "vitest";
import { MetricsRegistry } from "@strata/core";
import { UserTable, parseAuthConfig, type RequestFacts } from "@strata/proxy";

const defaults = { loadBalancingPolicy: "least_loaded" as const, retryStatusCodes: [502], failTimeoutMs: 3000, maxConcurrentPerUserRequests: 300 };

const table = (text: string): UserTable => {
  const t = new UserTable(parseAuthConfig(text, "auth.yml"), defaults, "auth.yml");
  t.activate(new MetricsRegistry());
  return t;
};

const facts = (path: string, extra: Partial<RequestFacts> = {}): RequestFacts => ({ path, host: "auth.local", query: new URLSearchParams(), headers: {}, ...extra });

describe("users and routes", () => {
  const t = table(`
users:
  - username: alice
    password: "a:b"
    url_prefix: http://default
    retry_status_codes: [503]
    url_map:
      - src_hosts: ["grafana\\\\.example"]
        url_prefix: http://by-host
      - src_paths: ["/api/.*"]
        src_query_args: ["db=prod", "team=~a|b"]
        url_prefix: http://by-query
      - src_headers: ["X-Team: ops"]
        url_prefix: http://by-header
        load_balancing_policy: first_available
  - bearer_token: tok
    url_prefix: http://token
`);

  it("finds users by basic auth or bearer token, the token also as a basic username without password", () => {
    const f = (c: Parameters<UserTable["find"]>[0]): string | undefined => t.find(c)?.name;
    expect(f({ kind: "basic", username: "alice", password: "a:b" })).toBe("alice");
    expect(f({ kind: "basic", username: "alice", password: "a:c" })).toBeUndefined();
    expect(f({ kind: "basic", username: "alic", password: "e:a:b" })).toBeUndefined();
    expect(f({ kind: "basic", username: "alice\u0000a:b", password: "" })).toBeUndefined();
    expect(f({ kind: "bearer", token: "tok" })?.startsWith("bearer_token:hash:")).toBe(true);
    expect(f({ kind: "basic", username: "tok", password: "" })?.startsWith("bearer_token:hash:")).toBe(true);
    expect(f({ kind: "basic", username: "tok", password: "x" })).toBeUndefined();
    expect(f({ kind: "bearer", token: "alice" })).toBeUndefined();
    expect(f({ kind: "none" })).toBeUndefined();
  });

  it("routes by the first url_map entry whose src_* all match, else url_prefix", () => {
    const alice = t.find({ kind: "basic", username: "alice", password: "a:b" })!;
    const to = (r: RequestFacts): string | undefined => alice.route(r)?.backends.backends[0]?.url.hostname;
    expect(to(facts("/x", { host: "grafana.example" }))).toBe("by-host");
    expect(to(facts("/x", { host: "grafana.example.evil" }))).toBe("default");
    expect(to(facts("/api/v1/query", { query: new URLSearchParams("db=prod") }))).toBe("by-query");
    expect(to(facts("/api/v1/query", { query: new URLSearchParams("team=b") }))).toBe("by-query");
    expect(to(facts("/api/v1/query", { query: new URLSearchParams("team=c&db=dev") }))).toBe("default");
    expect(to(facts("/other", { query: new URLSearchParams("db=prod") }))).toBe("default");
    expect(to(facts("/x", { headers: { "x-team": "dev, ops" } }))).toBe("by-header");
    // Options: an entry's own, else the user's, else the flags'.
    const byHeader = alice.route(facts("/x", { headers: { "x-team": "ops" } }))!;
    expect(byHeader.backends.policy).toBe("first_available");
    expect(byHeader.retryStatusCodes).toEqual([503]);
    const tokUser = t.find({ kind: "bearer", token: "tok" })!;
    expect(tokUser.route(facts("/x"))!.retryStatusCodes).toEqual([502]);
  });

  it("refuses two users with the same credentials, naming both lines", () => {
    expect(() => table("users:\n  - bearer_token: same\n    url_prefix: http://a\n  - username: same\n    url_prefix: http://b\n")).toThrow(
      /^auth\.yml:4: user "same" has the same credentials as user "bearer_token:hash:[0-9A-F]+" \(line 2\)$/,
    );
  });
});
