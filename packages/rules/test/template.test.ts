import { readFileSync } from "node:fs";
import { join } from "node:path";
import { labelsFromRecord } from "@strata/core";
import { createEngine, MemoryQuerier } from "@strata/promql";
import { engineDatasource, Template, TemplateError, type TemplateSample } from "@strata/rules";
import { describe, expect, it } from "vitest";

// name, template, $value, what Prometheus renders. test/alert-promtool.test.ts renders the same
// table with promtool, so every row is checked against Prometheus itself.
const cases = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures", "templates.json"), "utf8")) as [string, string, string, string][];
const labels = { instance: "host.example.com:9100", job: "node" };

const querier = new MemoryQuerier();
querier.appendSample(labelsFromRecord({ __name__: "probe", ...labels }), 0, 0);
const ds = engineDatasource(createEngine({}), querier);
const query = async (q: string): Promise<TemplateSample[]> =>
  (await ds.query(q, 0)).map((s) => ({ labels: new Map(s.labels.map((l) => [l.name, l.value])), value: s.value }));

const valueOf = (v: string): number => (v === "Inf" ? Infinity : v === "NaN" ? NaN : Number(v));

describe("rule templates render as Prometheus renders them", () => {
  it.each(cases)("%s: %s", async (_name, tmpl, value, want) => {
    const r = await new Template(tmpl).render({ labels, externalLabels: {}, externalURL: "", value: valueOf(value) }, query);
    expect(r.error).toBeUndefined();
    expect(r.text).toBe(want);
  });
});

describe("template errors", () => {
  // Unsupported or broken templates fail when the rule file loads, with the position inside the template.
  it.each([
    ["{{ define \"x\" }}y{{ end }}", "1:1: {{define}} is not supported in rule templates"],
    ["ok {{ template \"x\" }}", "1:4: {{template}} is not supported"],
    ["{{ nosuchfunc 1 }}", `1:4: function "nosuchfunc" not defined`],
    ["{{ args 1 }}", `1:4: function "args" not defined`],
    ["{{ $undefined }}", `1:4: undefined variable "$undefined"`],
    ["{{ if true }}x", "unexpected EOF: {{if}} without {{end}}"],
    ["x {{ end }}", "1:3: unexpected {{end}}"],
    ["{{ .Labels", "1:1: unclosed action"],
    ["line1\n{{ \"unterminated }}", "2:4: unterminated quoted string"],
    ["{{ 1 | }}", "missing value for command"],
  ])("%s", (tmpl, msg) => {
    let err: unknown;
    try {
      new Template(tmpl);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as Error).message).toContain(msg);
  });

  // Errors while rendering give Prometheus' placeholder instead of failing the rule.
  it.each([
    ["{{ gt $value 1 }}", "incompatible types for comparison"],
    ["{{ query \"up\" | first }}", "first() called on vector with no elements"],
    ["{{ humanize \"abc\" }}", "strconv.ParseFloat"],
    ["{{ range $labels.job }}{{ end }}", "range can't iterate over node"],
  ])("render %s", async (tmpl, msg) => {
    const r = await new Template(tmpl).render({ labels, externalLabels: {}, externalURL: "", value: 2 }, async () => []);
    expect(r.error).toContain(msg);
    expect(r.text).toMatch(/^<error expanding template: .+>$/);
  });
});
