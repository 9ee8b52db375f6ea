// @vitest-environment happy-dom
import { render } from "preact";
import { act } from "preact/test-utils";
import { labelsFromRecord } from "@strata/core";
import { createEngine, MemoryQuerier } from "@strata/promql";
import { engineDatasource, parseRuleFile, RuleManager } from "@strata/rules";
import { afterEach, describe, expect, it } from "vitest";
import { Api, type FetchFn } from "../src/app/api";
import { AlertsView, summarize } from "../src/app/AlertsView";

// The view reads what the alert service answers: here the JSON of a real RuleManager that
// evaluated real rules with the PromQL engine.
async function rulesApi(): Promise<Api> {
  const q = new MemoryQuerier();
  for (const [instance, v] of [["a", 0], ["b", 1]] as const) q.appendSample(labelsFromRecord({ __name__: "up", job: "node", instance }), 0, v);
  const manager = new RuleManager({
    datasource: engineDatasource(createEngine({}), q),
    sink: { write: () => undefined },
    defaultIntervalMs: 60_000,
    defaultQueryOffsetMs: 0,
    externalLabels: {},
    externalURL: "",
    resendDelayMs: 0,
  });
  await manager.update(
    parseRuleFile(
      `groups:
  - name: node
    rules:
      - alert: Down
        expr: up == 0
        annotations: {summary: '{{ $labels.instance }} is down'}
      - alert: Flaky
        expr: up == 1
        for: 5m
      - record: broken
        expr: label_replace(up, "instance", "", "", "")
      - record: fine
        expr: sum(up)
`,
      "node.yml",
    ),
  );
  await manager.list[0]!.evalOnce(10_000);
  const fetchFn: FetchFn = async (url) => {
    expect(url).toBe("/select/0/prometheus/api/v1/rules");
    return { status: 200, text: async () => JSON.stringify({ status: "success", data: { groups: manager.rules() } }) };
  };
  return new Api("/select/0/prometheus/api/v1/", fetchFn);
}

let host: HTMLElement | undefined;
afterEach(() => {
  if (host) { render(null, host); host.remove(); host = undefined; }
});

async function mount(api: Api): Promise<HTMLElement> {
  host = document.createElement("div");
  document.body.appendChild(host);
  await act(async () => { render(<AlertsView api={api} onQuery={() => undefined} tick={0} />, host as HTMLElement); });
  await act(async () => { await new Promise((r) => setTimeout(r, 10)); });
  return host;
}

describe("Alerts view", () => {
  it("shows groups, rule states, firing alerts and last errors", async () => {
    const el = await mount(await rulesApi());
    expect(el.querySelector('[data-testid="alerts-summary"]')?.textContent).toMatch(/^1 groups, 4 rules: 1 firing, 1 pending, 1 with errors/);
    expect(el.querySelector('[data-testid="rule-Down"]')?.textContent).toContain("firing");
    expect(el.querySelector('[data-testid="alert-Down"]')?.textContent).toContain('instance="a", job="node" — a is down');
    expect(el.querySelector('[data-testid="rule-Flaky"]')?.textContent).toContain("pending");
    expect(el.querySelector('[data-testid="error-broken"]')?.textContent).toMatch(/^vector cannot contain metrics with the same labelset/);
    expect(el.querySelector('[data-testid="rule-fine"]')?.textContent).toContain("ok");
  });

  it("says how to connect the alert service when there are no rules", async () => {
    const api = new Api("/x/", async () => ({ status: 200, text: async () => '{"status":"success","data":{"groups":[]}}' }));
    const el = await mount(api);
    expect(el.querySelector('[data-testid="alerts-empty"]')?.textContent).toContain("-vmalert.proxyURL");
    expect(summarize([])).toEqual({ groups: 0, rules: 0, firing: 0, pending: 0, errors: 0 });
  });
});
