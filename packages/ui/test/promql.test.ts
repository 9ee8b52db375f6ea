import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applySuggestion, classify, completionContext, rankSuggestions, tokenize, type Suggestion } from "../src/app/promql";

const hl = (src: string): string =>
  tokenize(src).map((t, i) => `${classify(tokenize(src))[i]}:${t.text}`).filter((s) => !s.startsWith("plain:")).join(" ");

describe("highlighting", () => {
  it.each([
    ["up", "metric:up"],
    ['rate(http_requests_total{job="api"}[5m])', 'fn:rate punct:( metric:http_requests_total punct:{ label:job op:= string:"api" punct:} punct:[ duration:5m punct:] punct:)'],
    ["sum by (job) (x)", "fn:sum kw:by punct:( label:job punct:) punct:( metric:x punct:)"],
    ["a / on(instance) group_left b", "metric:a op:/ kw:on punct:( label:instance punct:) kw:group_left metric:b"],
    ["x offset 1h", "metric:x kw:offset duration:1h"],
    ["1.5e3 + inf", "number:1.5e3 op:+ number:inf"],
    ["x # note", "metric:x comment:# note"],
    ["rate", "metric:rate"],
  ])("%s", (src, want) => {
    expect(hl(src)).toBe(want);
  });

  it("covers every character exactly once, whatever the input", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."ab_:{}()[]=!~,\"'`\\ 0123456789.+-*/#\nmshdwy".split("")), maxLength: 60 }), (src) => {
        const toks = tokenize(src);
        let pos = 0;
        for (const t of toks) {
          expect(t.start).toBe(pos);
          expect(t.end).toBeGreaterThan(t.start);
          pos = t.end;
        }
        expect(pos).toBe(src.length);
        expect(classify(toks)).toHaveLength(toks.length);
        for (let p = 0; p <= src.length; p++) completionContext(src, p);
      }),
      { numRuns: 300 },
    );
  });
});

// "|" marks the cursor.
const ctx = (s: string) => {
  const pos = s.indexOf("|");
  return completionContext(s.replace("|", ""), pos);
};

describe("completion context", () => {
  it.each([
    ["|", { kind: "metric", prefix: "" }],
    ["http_re|", { kind: "metric", prefix: "http_re", from: 0, to: 7 }],
    ["rate(http_re|", { kind: "metric", prefix: "http_re", from: 5 }],
    ["foo{|", { kind: "labelName", prefix: "", metric: "foo" }],
    ["foo{jo|", { kind: "labelName", prefix: "jo", metric: "foo", from: 4 }],
    ['foo{job="a", ins|}', { kind: "labelName", prefix: "ins", metric: "foo" }],
    ['{__name__="foo", |}', { kind: "labelName", prefix: "", metric: "foo" }],
    ["{|}", { kind: "labelName", prefix: "", metric: undefined }],
    ["foo{job=|", { kind: "labelValue", label: "job", metric: "foo", prefix: "", quoted: false }],
    ['foo{job="ap|', { kind: "labelValue", label: "job", metric: "foo", prefix: "ap", quoted: true, from: 9 }],
    ['foo{job=~"ap|"}', { kind: "labelValue", label: "job", prefix: "ap", quoted: true, to: 12 }],
    ["sum by (|", { kind: "labelName", prefix: "" }],
    ["sum(rate(foo[5m])) by (ins|)", { kind: "labelName", prefix: "ins", metric: "foo" }],
    ["foo[5|", { kind: "none" }],
    ['foo{job="a"}|', { kind: "none" }],
    ["sum(up)|", { kind: "none" }],
    ["foo[5m]|", { kind: "none" }],
    ["sum(up) |", { kind: "operator", prefix: "" }],
    ["sum(up) an|", { kind: "operator", prefix: "an", from: 8, to: 10 }],
    ["sum(up) / |", { kind: "metric", prefix: "" }],
    ["sum(up) / no|", { kind: "metric", prefix: "no" }],
    ['"str|', { kind: "none" }],
  ])("%s", (src, want) => {
    expect(ctx(src)).toMatchObject(want);
  });
});

const apply = (s: string, sug: Suggestion): string => {
  const pos = s.indexOf("|");
  const src = s.replace("|", "");
  const e = applySuggestion(src, completionContext(src, pos), sug);
  return e.text.slice(0, e.cursor) + "|" + e.text.slice(e.cursor);
};

describe("applying a suggestion", () => {
  it.each<[string, Suggestion, string]>([
    ["http_re|", { label: "http_requests_total", kind: "metric" }, "http_requests_total|"],
    ["ra|", { label: "rate", kind: "function" }, "rate(|)"],
    ["ra|(x)", { label: "rate", kind: "function" }, "rate(|x)"],
    ["foo{jo|", { label: "job", kind: "label" }, "foo{job|"],
    ["foo{job=|", { label: "api", kind: "value" }, 'foo{job="api"|'],
    ['foo{job="a|', { label: "api", kind: "value" }, 'foo{job="api"|'],
    ['foo{job="a|"}', { label: "api", kind: "value" }, 'foo{job="api"|}'],
    ['foo{p="|', { label: 'say "hi"', kind: "value" }, 'foo{p="say \\"hi\\""|'],
  ])("%s + %o", (src, sug, want) => {
    expect(apply(src, sug)).toBe(want);
  });
});

describe("ranking", () => {
  it("puts the exact match first, then prefix matches, then substring matches", () => {
    const items: Suggestion[] = ["node_cpu", "cpu_seconds", "cpu", "go_cpu"].map((label) => ({ label, kind: "metric" }));
    expect(rankSuggestions("cpu", items).map((s) => s.label)).toEqual(["cpu", "cpu_seconds", "node_cpu", "go_cpu"]);
    expect(rankSuggestions("", items, 2)).toHaveLength(2);
  });

  it("keeps the exact match even when more than `limit` names share its prefix", () => {
    const items: Suggestion[] = [...Array.from({ length: 60 }, (_x, i) => `up_${i}`), "up"].map((label) => ({ label, kind: "metric" }));
    const got = rankSuggestions("up", items, 50);
    expect(got[0]?.label).toBe("up");
    expect(got).toHaveLength(50);
  });
});
