import { parseRuleFile, RuleFileError } from "@strata/rules";
import { describe, expect, it } from "vitest";

const g = (rules: string): string => `groups:\n  - name: g1\n    rules:\n${rules}`;

describe("rule files", () => {
  it("loads groups, recording and alerting rules", () => {
    const groups = parseRuleFile(
      `groups:
  - name: g1
    interval: 30s
    limit: 10
    query_offset: 1m
    labels: {team: db}
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels: {source: rule}
      - alert: Down
        expr: up == 0
        for: 5m
        keep_firing_for: 2m
        labels: {severity: '{{ if true }}page{{ end }}'}
        annotations: {summary: 'down {{ $labels.instance }}'}
  - name: g2
    rules: []
`,
      "r.yml",
    );
    expect(groups.map((x) => [x.name, x.intervalMs, x.queryOffsetMs, x.limit, x.labels, x.rules.length])).toEqual([
      ["g1", 30_000, 60_000, 10, { team: "db" }, 2],
      ["g2", undefined, undefined, 0, {}, 0],
    ]);
    const [rec, alert] = groups[0]!.rules;
    expect(rec).toMatchObject({ kind: "recording", name: "job:up:sum", labels: { source: "rule" } });
    expect(alert).toMatchObject({ kind: "alerting", name: "Down", forMs: 300_000, keepFiringForMs: 120_000 });
  });

  // The file, line and column, group and rule are named; the message says what is wrong.
  it.each([
    ["not yaml", "groups: [\n", /^r\.yml:\d+:\d+: invalid YAML/],
    ["unknown top-level field", "group:\n  - name: x\n", /^r\.yml:1:1: field group not found in type rulefmt\.RuleGroups$/],
    ["unknown group field", "groups:\n  - name: x\n    intervall: 1m\n", /^r\.yml:3:5: field intervall not found in type rulefmt\.RuleGroup$/],
    ["empty group name", "groups:\n  - rules: []\n", /^r\.yml:2:5: groupname must not be empty$/],
    ["duplicate group", "groups:\n  - name: a\n  - name: a\n", /^r\.yml:3:11: group "a": groupname must be unique within a file$/],
    ["bad interval", "groups:\n  - name: a\n    interval: 5 minutes\n", /^r\.yml:3:15: group "a": interval: not a valid duration string/],
    ["bad limit", "groups:\n  - name: a\n    limit: -1\n", /^r\.yml:3:12: group "a": limit must be a non-negative integer$/],
    ["unknown rule field", g("      - alert: A\n        expr: up\n        severity: page\n"), /^r\.yml:6:9: group "g1", rule 1: field severity not found in type rulefmt\.Rule$/],
    ["record and alert", g("      - alert: A\n        record: b\n        expr: up\n"), /^r\.yml:4:9: group "g1", rule 1 \(record "b"\): only one of 'record' and 'alert' must be set$/],
    ["neither", g("      - expr: up\n"), /^r\.yml:4:9: group "g1", rule 1: one of 'record' or 'alert' must be set$/],
    ["no expr", g("      - alert: A\n"), /^r\.yml:4:9: group "g1", rule 1 \(alert "A"\): field 'expr' must be set in rule$/],
    ["bad expr", g("      - alert: A\n        expr: sum(up\n"), /^r\.yml:5:15: group "g1", rule 1 \(alert "A"\): could not parse expression: /],
    ["for in recording rule", g("      - record: a:b\n        expr: up\n        for: 5m\n"), /^r\.yml:6:9: group "g1", rule 1 \(record "a:b"\): invalid field 'for' in recording rule$/],
    ["annotations in recording rule", g("      - record: a\n        expr: up\n        annotations: {x: y}\n"), /invalid field 'annotations' in recording rule$/],
    ["bad record name", g("      - record: 'a-b'\n        expr: up\n"), /^r\.yml:4:9: group "g1", rule 1 \(record "a-b"\): invalid recording rule name: a-b$/],
    ["bad for", g("      - alert: A\n        expr: up\n        for: soon\n"), /^r\.yml:6:9: group "g1", rule 1 \(alert "A"\): for: not a valid duration string: "soon"$/],
    ["bad label name", g("      - alert: A\n        expr: up\n        labels: {'': x}\n"), /^r\.yml:6:18: group "g1", rule 1 \(alert "A"\): invalid label name: ""$/],
    ["alertname label", g("      - alert: A\n        expr: up\n        labels: {alertname: x}\n"), /invalid label name: alertname$/],
    ["template: unknown function", g("      - alert: A\n        expr: up\n        annotations:\n          summary: 'x {{ humanise $value }}'\n"), /^r\.yml:7:26: group "g1", rule 1 \(alert "A"\): annotation summary: template position 1:6: function "humanise" not defined$/],
    ["template: define", g("      - alert: A\n        expr: up\n        labels:\n          sev: '{{ define \"t\" }}x{{ end }}'\n"), /^r\.yml:7:17: group "g1", rule 1 \(alert "A"\): label sev: template position 1:1: \{\{define\}\} is not supported/],
    ["template: unclosed if", g("      - alert: A\n        expr: up\n        annotations:\n          d: |\n            first\n            {{ if true }}x\n"), /^r\.yml:7:14: group "g1", rule 1 \(alert "A"\): annotation d: template position 2:1: unexpected EOF: \{\{if\}\} without \{\{end\}\}$/],
    ["template: undefined variable", g("      - alert: A\n        expr: up\n        annotations: {d: '{{ $lables.x }}'}\n"), /annotation d: template position 1:4: undefined variable "\$lables"$/],
    ["labels not a map", g("      - alert: A\n        expr: up\n        labels: [a]\n"), /^r\.yml:6:17: group "g1", rule 1 \(alert "A"\): labels must be a map of strings$/],
  ])("%s", (_name, text, want) => {
    let err: unknown;
    try {
      parseRuleFile(text, "r.yml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuleFileError);
    expect((err as Error).message).toMatch(want);
  });
});
