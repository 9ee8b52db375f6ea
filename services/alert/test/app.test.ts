import { labelsFromRecord, MetricsRegistry, createLogger } from "@strata/core";
import { createEngine, MemoryQuerier } from "@strata/promql";
import { engineDatasource, parseRuleFile, RuleManager, type OutputSample } from "@strata/rules";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AuthFailures, HttpGuard } from "@strata/httpsec";
import { buildApp } from "../src/app.js";

const RULES = `groups:
  - name: api
    interval: 10s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: Down
        expr: up == 0
        for: 1m
        labels: {severity: page}
        annotations: {summary: '{{ $labels.instance }} is down'}
`;

async function setup(security?: { username: string; password: string; metricsAuthKey: string; reloadAuthKey: string; flagsAuthKey?: string }) {
  const q = new MemoryQuerier();
  for (let t = 0; t <= 120_000; t += 10_000) {
    q.appendSample(labelsFromRecord({ __name__: "up", job: "node", instance: "a" }), t, 0);
    q.appendSample(labelsFromRecord({ __name__: "up", job: "node", instance: "b" }), t, 1);
  }
  const written: OutputSample[] = [];
  const manager = new RuleManager({
    datasource: engineDatasource(createEngine({}), q),
    sink: { write: (s) => written.push(...s) },
    defaultIntervalMs: 60_000,
    defaultQueryOffsetMs: 0,
    externalLabels: {},
    externalURL: "http://alert:8880",
    resendDelayMs: 0,
  });
  await manager.update(parseRuleFile(RULES, "api.yml"));
  let next = RULES;
  const log = createLogger({ name: "test", destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const metrics = new MetricsRegistry();
  const app = buildApp({
    manager,
    metrics,
    log,
    reload: async () => manager.update(parseRuleFile(next, "api.yml")),
    ...(security !== undefined
      ? {
          security: { certs: undefined, guard: new HttpGuard(security), failures: new AuthFailures({ metrics, log, counter: "strata_http_auth_failures_total" }) },
          reloadAuthKey: security.reloadAuthKey,
          flags: { "datasource.url": "http://select:8481", "httpAuth.password": "secret" },
          flagsAuthKey: security.flagsAuthKey ?? "",
        }
      : {}),
  });
  return { app, manager, written, setNext: (s: string) => (next = s) };
}

describe("alert HTTP API", () => {
  it("answers /api/v1/rules and /api/v1/alerts in Prometheus' shape", async () => {
    const { app, manager } = await setup();
    const g = manager.list[0]!;
    await g.evalOnce(30_000);
    await g.evalOnce(40_000);
    let rules = (await app.inject({ url: "/api/v1/rules" })).json();
    expect(rules.data.groups[0]).toMatchObject({ name: "api", file: "api.yml", interval: 10, limit: 0 });
    expect(Date.now() - Date.parse(rules.data.groups[0].lastEvaluation)).toBeLessThan(60_000);
    expect(rules.data.groups[0].rules[1]).toMatchObject({
      state: "pending",
      name: "Down",
      query: "up == 0",
      duration: 60,
      labels: { severity: "page" },
      annotations: { summary: "{{ $labels.instance }} is down" },
      health: "ok",
      type: "alerting",
      alerts: [{ labels: { alertname: "Down", instance: "a", job: "node", severity: "page" }, annotations: { summary: "a is down" }, state: "pending", activeAt: "1970-01-01T00:00:30.000Z", value: "0e+00" }],
    });
    expect(rules.data.groups[0].rules[0]).toMatchObject({ name: "job:up:sum", type: "recording", health: "ok" });
    await g.evalOnce(90_000);
    const alerts = (await app.inject({ url: "/api/v1/alerts" })).json();
    expect(alerts).toEqual({ status: "success", data: { alerts: [expect.objectContaining({ state: "firing", labels: { alertname: "Down", instance: "a", job: "node", severity: "page" } })] } });
    rules = (await app.inject({ url: "/api/v1/rules?type=record" })).json();
    expect(rules.data.groups[0].rules.map((r: { name: string }) => r.name)).toEqual(["job:up:sum"]);
    rules = (await app.inject({ url: "/api/v1/rules?rule_name[]=Down&exclude_alerts=true" })).json();
    expect(rules.data.groups[0].rules).toEqual([expect.not.objectContaining({ alerts: expect.anything() })]);
    const bad = await app.inject({ url: "/api/v1/rules?type=alerts" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe('invalid parameter type="alerts": want alert or record');
  });

  it("writes ALERTS, ALERTS_FOR_STATE and recording results, with stale markers when alerts end", async () => {
    const { manager, written } = await setup();
    const g = manager.list[0]!;
    await g.evalOnce(30_000);
    const names = written.map((s) => `${s.labels.map((l) => `${l.name}=${l.value}`).join(",")} ${s.stale ? "stale" : s.v}`);
    expect(names).toEqual([
      "__name__=job:up:sum,job=node 1",
      "__name__=ALERTS,alertname=Down,alertstate=pending,instance=a,job=node,severity=page 1",
      "__name__=ALERTS_FOR_STATE,alertname=Down,instance=a,job=node,severity=page 30",
    ]);
    written.length = 0;
    await g.evalOnce(200_000); // firing now: the pending series ends
    await g.evalOnce(500_000); // past the 5m lookback of the last sample: everything ends
    expect(written.filter((s) => s.stale).map((s) => s.labels.find((l) => l.name === "__name__")!.value).sort()).toEqual(["ALERTS", "ALERTS", "ALERTS_FOR_STATE", "job:up:sum"]);
  });

  it("reloads: a bad rule file is a 400 naming it and keeps the old rules", async () => {
    const { app, manager, setNext } = await setup();
    setNext("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        for: 1x\n");
    const bad = await app.inject({ method: "POST", url: "/-/reload" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/^reload failed; the previous rules stay: api\.yml:6:9: group "x", rule 1 \(alert "A"\): for: not a valid duration string: "1x"$/);
    expect(manager.list.map((g) => g.name)).toEqual(["api"]);
    setNext(RULES.replace("name: api", "name: api2"));
    expect((await app.inject({ method: "POST", url: "/-/reload" })).statusCode).toBe(200);
    expect(manager.list.map((g) => g.name)).toEqual(["api2"]);
    const metrics = (await app.inject({ url: "/metrics" })).body;
    expect(metrics).toMatch(/^strata_alert_config_reload_errors_total 1$/m);
    expect((await app.inject({ url: "/health" })).statusCode).toBe(200);
  });
});

describe("alert HTTP API behind -httpAuth.*, -metricsAuthKey, -reloadAuthKey and -flagsAuthKey", () => {
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
  const ADMIN = basic("admin", "s3cret");
  it.each([
    // path, Authorization, status
    ["/api/v1/rules", undefined, 401],
    ["/api/v1/rules", basic("admin", "wrong"), 401],
    ["/api/v1/rules", "Bearer s3cret", 401],
    ["/api/v1/rules", ADMIN, 200],
    ["/api/v1/alerts", undefined, 401],
    ["/api/v1/alerts", ADMIN, 200],
    ["/", ADMIN, 200],
    ["/", undefined, 401],
    ["/health", undefined, 200],
    ["/-/ready", undefined, 200],
    ["/metrics", ADMIN, 401],
    ["/metrics?authKey=wrong", undefined, 401],
    ["/metrics?authKey=mkey", undefined, 200],
    ["/-/reload", ADMIN, 401],
    ["/-/reload?authKey=wrong", undefined, 401],
    ["/-/reload?authKey=rkey", undefined, 200],
    // A percent-encoded path reaches the same route, and meets the same key.
    ["/%2D/reload", ADMIN, 401],
    ["/%6detrics", ADMIN, 401],
    ["/%6detrics?authKey=mkey", undefined, 200],
    ["/flags", ADMIN, 401],
    ["/flags?authKey=wrong", undefined, 401],
    ["/%66lags", ADMIN, 401],
    ["/flags?authKey=fkey", undefined, 200],
  ] as const)("%s with %s → %i", async (url, authorization, status) => {
    const { app } = await setup({ username: "admin", password: "s3cret", metricsAuthKey: "mkey", reloadAuthKey: "rkey", flagsAuthKey: "fkey" });
    const r = await app.inject({ url, headers: authorization === undefined ? {} : { authorization } });
    expect(r.statusCode).toBe(status);
    if (status === 401) expect(r.headers["www-authenticate"]).toBe('Basic realm="Restricted"');
  });

  it("/flags lists the flags it was given; -httpAuth.* guards it without -flagsAuthKey", async () => {
    const { app } = await setup({ username: "admin", password: "s3cret", metricsAuthKey: "", reloadAuthKey: "" });
    expect((await app.inject({ url: "/flags" })).statusCode).toBe(401);
    const r = await app.inject({ url: "/flags", headers: { authorization: ADMIN } });
    expect([r.statusCode, r.body]).toEqual([200, '-datasource.url="http://select:8481"\n-httpAuth.password="secret"\n']);
  });

  it("counts refusals by reason in /metrics", async () => {
    const { app } = await setup({ username: "admin", password: "s3cret", metricsAuthKey: "", reloadAuthKey: "" });
    await app.inject({ url: "/api/v1/rules" });
    await app.inject({ url: "/api/v1/rules", headers: { authorization: basic("admin", "nope") } });
    const m = await app.inject({ url: "/metrics", headers: { authorization: ADMIN } });
    expect(m.statusCode).toBe(200);
    expect(m.body).toMatch(/strata_http_auth_failures_total\{reason="missing_credentials"\} 1/);
    expect(m.body).toMatch(/strata_http_auth_failures_total\{reason="invalid_auth_token"\} 1/);
    expect(m.body).not.toContain("s3cret");
  });
});
