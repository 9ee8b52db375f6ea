import { describe, expect, it } from "vitest";
import { parseAuthConfig } from "@strata/proxy";

const ok = `
users:
  - username: alice
    password: "p@ss"
    url_prefix: http://127.0.0.1:8481/select/42/prometheus/
    max_concurrent_requests: 5
  - name: writer
    bearer_token: tok
    url_map:
      - src_paths: ["/insert/42/.+"]
        src_hosts: ["auth\\\\.example"]
        url_prefix: [http://a:8480, http://b:8480]
        load_balancing_policy: first_available
        retry_status_codes: [502, 503]
        drop_src_path_prefix_parts: 0
        headers: ["X-Scope: 42", "X-Drop:"]
        response_headers: ["X-Served-By: strata"]
unauthorized_user:
  url_prefix: http://127.0.0.1:8481/select/0/prometheus
`;

describe("auth config", () => {
  it("parses vmauth's format", () => {
    const c = parseAuthConfig(ok, "auth.yml");
    expect(c.users.map((u) => u.name)).toEqual(["alice", "writer"]);
    const [alice, writer] = c.users;
    expect(alice!.urlPrefix!.map(String)).toEqual(["http://127.0.0.1:8481/select/42/prometheus/"]);
    expect(alice!.maxConcurrentRequests).toBe(5);
    const m = writer!.urlMap[0]!;
    expect(m.urlPrefix.map((u) => u.host)).toEqual(["a:8480", "b:8480"]);
    expect(m.loadBalancingPolicy).toBe("first_available");
    expect(m.retryStatusCodes).toEqual([502, 503]);
    expect(m.headers).toEqual([{ name: "X-Scope", value: "42" }, { name: "X-Drop", value: "" }]);
    expect(m.srcPaths[0]!.matches("/insert/42/api/v1/write")).toBe(true);
    // Anchored: a src_paths regex must match the whole path.
    expect(m.srcPaths[0]!.matches("/x/insert/42/api")).toBe(false);
    expect(m.srcHosts[0]!.matches("auth.example")).toBe(true);
    expect(m.srcHosts[0]!.matches("auth.example.evil")).toBe(false);
    expect(c.unauthorizedUser?.urlPrefix?.[0]?.pathname).toBe("/select/0/prometheus");
  });

  const bad = (text: string, want: RegExp): void => {
    expect(() => parseAuthConfig(text, "auth.yml")).toThrow(want);
  };

  it("names file, line and key of what is wrong, never the secret", () => {
    bad("users:\n  - username: a\n    pasword: x\n    url_prefix: http://b\n", /^auth\.yml:3: unknown key "pasword" in users\[0\]/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n    url_map:\n      - src_path: [\"/x\"]\n        url_prefix: http://c\n", /^auth\.yml:5: unknown key "src_path" in users\[0\]\.url_map\[0\]/);
    bad("userz: []\n", /^auth\.yml:1: unknown key "userz"/);
    bad("users:\n  - username: a\n", /^auth\.yml:2: users\[0\]: missing url_prefix or url_map/);
    bad("users:\n  - password: a\n    url_prefix: http://b\n", /auth\.yml:2: users\[0\]: set username or bearer_token/);
    bad("users:\n  - username: a\n    bearer_token: t\n    url_prefix: http://b\n", /cannot both be set/);
    bad("users:\n  - bearer_token: t\n    password: s3cr3t\n    url_prefix: http://b\n", /^auth\.yml:3: users\[0\]: password cannot be set with bearer_token$/);
    bad("users:\n  - username: a\n    url_prefix: ftp://b\n", /^auth\.yml:3: users\[0\]\.url_prefix: unsupported scheme "ftp"/);
    bad("users:\n  - username: a\n    url_prefix: []\n", /at least one URL/);
    bad("users:\n  - username: a\n    url_prefix: http://u:pw@b/\n", /credentials in the URL are not supported/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n    load_balancing_policy: random\n", /^auth\.yml:4: .*want least_loaded or first_available/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n    retry_status_codes: [5000]\n", /^auth\.yml:4: .*retry_status_codes/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n    headers: [\"NoColon\"]\n", /^auth\.yml:4: .*missing ':'/);
    bad("users:\n  - username: a\n    url_map:\n      - src_paths: [\"(\"]\n        url_prefix: http://b\n", /^auth\.yml:4: .*cannot compile regex/);
    bad("users:\n  - username: a\n    url_map:\n      - url_prefix: http://b\n", /^auth\.yml:4: .*set at least one of src_paths/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n  - username: a\n    url_prefix: http://c\n", /^auth\.yml:4: user name "a" repeats the user at line 2/);
    bad("users:\n  - username: a\n    username: b\n    url_prefix: http://b\n", /^auth\.yml:3: .*unique/i);
    bad("unauthorized_user:\n  username: a\n  url_prefix: http://b\n", /^auth\.yml:2: unauthorized_user: username cannot be set/);
    bad("users: []\n", /set users or unauthorized_user/);
    bad("users:\n  - username: a\n    url_prefix: http://b\n    max_concurrent_requests: 0\n", /^auth\.yml:4: .*max_concurrent_requests must be an integer/);
    bad("users: [\n", /^auth\.yml:\d+: /);
  });

  it("expands %{ENV} placeholders like vmauth", () => {
    const c = parseAuthConfig("users:\n  - username: a\n    password: %{AUTH_PW}\n    url_prefix: http://%{BACKEND}:8481\n", "auth.yml", { AUTH_PW: "from-env", BACKEND: "select" });
    expect(c.users[0]!.password).toBe("from-env");
    expect(c.users[0]!.urlPrefix![0]!.host).toBe("select:8481");
    expect(() => parseAuthConfig("users:\n  - username: a\n    password: %{NOPE}\n", "auth.yml", {})).toThrow(/^auth\.yml:3: environment variable NOPE \(in %\{NOPE\}\) is not set$/);
    expect(() => parseAuthConfig("users:\n  - username: %{X}\n", "auth.yml", { X: "a\nb" })).toThrow(/^auth\.yml:2: environment variable X holds a line break$/);
  });

  it("keeps secrets out of error messages", () => {
    for (const text of [
      "users:\n  - bearer_token: TOPSECRET\n    password: TOPSECRET2\n    url_prefix: http://b\n",
      "users:\n  - username: a\n    password: TOPSECRET\n    url_prefix: 'http://[TOPSECRET'\n",
      "users:\n  - username: a\n    password: TOPSECRET\n    url_prefix: http://b\n  - username: a\n    password: TOPSECRET\n    url_prefix: http://c\n",
    ]) {
      let msg = "";
      try {
        parseAuthConfig(text, "auth.yml");
      } catch (err) {
        msg = (err as Error).message;
      }
      expect(msg).not.toBe("");
      expect(msg).not.toContain("TOPSECRET");
    }
  });
});
