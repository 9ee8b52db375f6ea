import { BadDataError, type Labels } from "@strata/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  addAtModifiers,
  almostEqual,
  parseExpr,
  parseMetric,
  parseScript,
  parseSeriesLine,
  parseSequence,
  printExpr,
  runEval,
  runScript,
  type EvalCommand,
  type QueryResult,
  type ScriptTarget,
} from "@strata/promql";

const show = (s: string): string => parseSequence(s).map((v) => (v.omitted ? "_" : v.histogram !== undefined ? "H" : v.stale ? "stale" : String(v.value))).join(" ");

describe("series notation", () => {
  it.each([
    ["1 2 3", "1 2 3"],
    ["0+10x3", "0 10 20 30"],
    ["1x3", "1 1 1 1"],
    ["-1-1x2", "-1 -2 -3"],
    ["5-2x2", "5 3 1"],
    ["_ _x2 1", "_ _ _ 1"],
    ["stale", "stale"],
    ["Inf -Inf +Inf NaN nan", "Infinity -Infinity Infinity NaN NaN"],
    ["1e3 .5 2.", "1000 0.5 2"],
    ["{{schema:1 sum:3 count:22 buckets:[5 10 7]}}", "H"],
    ["{{schema:0 sum:1 count:2}}x2 3", "H H H 3"],
    ["{{count:1}}+{{count:2}}x1", "H H"],
    ["", ""],
  ])("%j → %s", (input, want) => {
    expect(show(input)).toBe(want);
  });

  it("accumulates like Prometheus (k += inc)", () => {
    const vs = parseSequence("0+0.1x3").map((v) => v.value);
    expect(vs).toEqual([0, 0.1, 0.2, 0.30000000000000004]);
  });

  it.each(["1+", "x3", "abc", "1x", "{{schema:1"])("rejects %j", (s) => {
    expect(() => parseSequence(s)).toThrow(BadDataError);
  });

  it.each([
    ['foo{b="c", a="d"}', [["__name__", "foo"], ["a", "d"], ["b", "c"]]],
    ['{"a.b", x="y"}', [["__name__", "a.b"], ["x", "y"]]],
    ["sum", [["__name__", "sum"]]],
    ["{}", []],
    ['{__name__="n"}', [["__name__", "n"]]],
  ])("metric %s", (m, want) => {
    expect(parseMetric(m).map((l) => [l.name, l.value])).toEqual(want);
  });

  it.each([
    ['t{target="a@b.com"} 3', false, 1],
    ['t{a="}@st"} 1 2', false, 2],
    ['c{type="x"}@st _ -30s-1mx2', true, 0],
    ["s@st _ 1ms", true, 0],
  ])("@st only after the name or braces: %s", (line, st, n) => {
    const d = parseSeriesLine(line);
    expect([d.startTimestamps, d.values.length]).toEqual([st, n]);
  });

  it("fuzz: random values only raise BadDataError", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(..."0123456789+-x_ .eInfaNstl{}:[]".split("")), { maxLength: 30 }), (p) => {
        try {
          parseSequence(p.join(""));
        } catch (e) {
          if (!(e instanceof BadDataError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

const SCRIPT = `
# comment
load 5m
  http_requests{job="a"} 0+10x2
  other 1 _ stale

eval instant at 10m http_requests
  expect no_warn
  http_requests{job="a"} 20

eval_ordered instant at 5m sort(http_requests)
  http_requests{job="a"} 10

eval range from 0 to 10m step 5m http_requests
  http_requests{job="a"} 0 10 20

eval instant at 0 1 + 1
  2

eval instant at 1m "x"
  expect string "x"

eval instant at 1m some_metric[1m]
  expect range vector from 10s to 1m step 10s
  some_metric 1 2 3 4 5 6

eval_fail instant at 0 foo
  expected_fail_message boom

eval instant at 0 foo
  expect fail regex: bo+m
  expect warn msg: PromQL warning: x (1:1)

clear
`;

describe("script parser", () => {
  const cmds = parseScript(SCRIPT, "t.test");

  it("reads commands with their lines", () => {
    expect(cmds.map((c) => `${c.kind}@${c.line}`)).toEqual([
      "load@3",
      "eval@7",
      "eval@11",
      "eval@14",
      "eval@17",
      "eval@20",
      "eval@23",
      "eval@27",
      "eval@30",
      "clear@34",
    ]);
  });

  it("reads load blocks", () => {
    const load = cmds[0]!;
    if (load.kind !== "load") throw new Error("shape");
    expect(load.intervalMs).toBe(300_000);
    expect(load.series.map((s) => s.values.length)).toEqual([3, 3]);
  });

  it("reads eval details", () => {
    const e = cmds.filter((c): c is EvalCommand => c.kind === "eval");
    expect(e[0]).toMatchObject({ instant: true, at: 600_000, query: "http_requests", expectations: [{ kind: "no_warn", source: "expect" }] });
    expect(e[1]).toMatchObject({ ordered: true });
    expect(e[2]).toMatchObject({ instant: false, start: 0, end: 600_000, step: 300_000 });
    expect(e[3]!.expectScalar).toBe(2);
    expect(e[4]!.expectString).toBe("x");
    expect(e[5]!.expectRangeVector).toEqual({ start: 10_000, end: 60_000, step: 10_000 });
    expect(e[6]).toMatchObject({ fail: true, expectations: [{ kind: "fail", source: "legacy" }, { kind: "fail", match: { type: "msg", text: "boom" } }] });
    expect(e[7]!.expectations).toEqual([
      { kind: "fail", source: "expect", match: { type: "regex", text: "bo+m" } },
      { kind: "warn", source: "expect", match: { type: "msg", text: "PromQL warning: x (1:1)" } },
    ]);
  });

  it.each([
    ["bogus", "t.test:1: invalid command"],
    ["load 5x\n  a 1", "t.test:1: invalid load interval"],
    ["load 1m\n  a{ 1", "t.test:2:"],
    ["eval instant at 1m foo\n  foo 1 2", "t.test:2: expecting multiple values in instant evaluation not allowed"],
    ["eval range from 10m to 1m step 1m foo", "t.test:1: end timestamp must not be before start timestamp"],
    ["eval instant at 1m foo\n  expect ordered msg: x", "t.test:2: expect ordered takes no message"],
  ])("rejects %j", (text, msg) => {
    expect(() => parseScript(text, "t.test")).toThrow(msg);
  });
});

// ---- runner semantics, against a fake engine ------------------------------------------------

const L = (rec: Record<string, string>): Labels => Object.entries(rec).map(([name, value]) => ({ name, value }));

function vector(...items: [Record<string, string>, number][]): QueryResult {
  return { type: "vector", timestamp: 0, labels: items.map(([l]) => L(l)), values: Float64Array.from(items.map(([, v]) => v)), warnings: [], infos: [] };
}

/** A fake engine: answers every query with `res` (or throws `err`). */
function fake(res: QueryResult | Error, range?: QueryResult): ScriptTarget & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    clear: () => {},
    load: () => {},
    instantQuery: (q) => {
      queries.push(q);
      return res instanceof Error ? Promise.reject(res) : Promise.resolve(res);
    },
    rangeQuery: (q, s, e) => {
      queries.push(`range:${q}`);
      if (range !== undefined) return Promise.resolve(range);
      if (res instanceof Error) return Promise.reject(res);
      if (res.type === "vector") {
        return Promise.resolve({
          type: "matrix",
          series: res.labels.map((l, i) => ({ labels: l, timestamps: Float64Array.of(s, (s + e) / 2, e), values: Float64Array.of(0, res.values[i]!, 0) })),
          warnings: [],
          infos: [],
        });
      }
      return Promise.resolve(res);
    },
  };
}

function evalCmd(text: string): EvalCommand {
  const c = parseScript(text)[0]!;
  if (c.kind !== "eval") throw new Error("not eval");
  return c;
}

describe("runner comparisons", () => {
  it.each([
    ["exact match", 'eval instant at 1m x\n  x{a="1"} 1', vector([{ __name__: "x", a: "1" }, 1]), undefined],
    ["float tolerance", 'eval instant at 1m x\n  x{a="1"} 0.3', vector([{ __name__: "x", a: "1" }, 0.1 + 0.2]), undefined],
    ["NaN equals NaN", 'eval instant at 1m x\n  x{a="1"} NaN', vector([{ __name__: "x", a: "1" }, NaN]), undefined],
    ["value differs", 'eval instant at 1m x\n  x{a="1"} 1', vector([{ __name__: "x", a: "1" }, 1.01]), 'expected 1 for x{a="1"} but got 1.01'],
    ["metric name kept", 'eval instant at 1m x\n  {a="1"} 1', vector([{ __name__: "x", a: "1" }, 1]), "unexpected metric x{a=\"1\"}"],
    ["missing series", 'eval instant at 1m x\n  x{a="1"} 1\n  x{a="2"} 2', vector([{ __name__: "x", a: "1" }, 1]), 'expected metric x{a="2"} with 2 not found'],
    ["any order", 'eval instant at 1m x\n  {a="2"} 2\n  {a="1"} 1', vector([{ a: "1" }, 1], [{ a: "2" }, 2]), undefined],
    ["ordered", 'eval_ordered instant at 1m x\n  {a="2"} 2\n  {a="1"} 1', vector([{ a: "1" }, 1], [{ a: "2" }, 2]), "at position 2 but was at 1"],
    ["empty result", "eval instant at 1m x", vector(), undefined],
    ["scalar", "eval instant at 1m x\n  2", { type: "scalar", timestamp: 0, value: 2, warnings: [], infos: [] } as QueryResult, undefined],
    ["scalar unexpected", "eval instant at 1m x", { type: "scalar", timestamp: 0, value: 2, warnings: [], infos: [] } as QueryResult, "expected vector or matrix result, but got scalar 2"],
    ["string", 'eval instant at 1m x\n  expect string "a"', { type: "string", timestamp: 0, value: "b", warnings: [], infos: [] } as QueryResult, 'expected string "a" but got "b"'],
    ["empty string without expectation", "eval instant at 1m x", { type: "string", timestamp: 0, value: "", warnings: [], infos: [] } as QueryResult, undefined],
    ["failure expected", "eval instant at 1m x\n  expect fail msg: boom", new Error("boom"), undefined],
    ["wrong failure", "eval instant at 1m x\n  expect fail regex: ^bo+m$", new Error("bang"), "expected error matching"],
    ["only the first expect fail counts", "eval instant at 1m x\n  expect fail msg: boom\n  expect fail msg: other", new Error("boom"), undefined],
    ["legacy fail message", "eval_fail instant at 1m x\n  expected_fail_message bang", new Error("boom"), 'expected error "bang"'],
    ["annotations checked when ordered", "eval_ordered instant at 1m x\n  expect no_warn", { ...vector(), warnings: ["PromQL warning: w (1:1)"] } as QueryResult, "unexpected warn annotations"],
    ["unexpected failure", "eval instant at 1m x", new Error("boom"), "error evaluating query"],
    ["failure missing", "eval instant at 1m x\n  expect fail", vector(), "expected error evaluating query"],
    ["warning expected", "eval instant at 1m x\n  expect warn", vector(), "expected warn annotations but got none"],
    ["no_warn", "eval instant at 1m x\n  expect no_warn", { ...vector(), warnings: ["PromQL warning: w (1:1)"] } as QueryResult, "unexpected warn annotations"],
    ["warn msg", "eval instant at 1m x\n  expect warn msg: PromQL warning: w (1:1)", { ...vector(), warnings: ["PromQL warning: w (1:1)"] } as QueryResult, undefined],
    ["annotations ignored without expect lines", "eval instant at 1m x", { ...vector(), infos: ["PromQL info: i (1:1)"] } as QueryResult, undefined],
  ])("%s", async (_name, text, res, wantErr) => {
    const err = await runEval(fake(res), evalCmd(text));
    if (wantErr === undefined) expect(err).toBeUndefined();
    else expect(err).toContain(wantErr);
  });

  it("checks range mode agrees with the instant result", async () => {
    const res = vector([{ a: "1" }, 1]);
    const bad: QueryResult = { type: "matrix", series: [{ labels: L({ a: "1" }), timestamps: Float64Array.of(60_000), values: Float64Array.of(5) }], warnings: [], infos: [] };
    expect(await runEval(fake(res, bad), evalCmd('eval instant at 1m x\n  {a="1"} 1'))).toContain("range mode");
  });

  it("re-runs instant queries with @ on every selector at other times", async () => {
    const t = fake(vector([{ a: "1" }, 1]));
    await runEval(t, evalCmd('eval instant at 1m rate(x[5m]) + y\n  {a="1"} 1'));
    expect(t.queries.filter((q) => !q.startsWith("range:"))).toEqual([
      "rate(x[5m]) + y",
      ...Array<string>(5).fill("rate(x[5m] @ 60.000) + y @ 60.000"),
    ]);
    const t2 = fake(vector());
    await runEval(t2, evalCmd("eval instant at 1m time() + x"));
    expect(t2.queries.filter((q) => !q.startsWith("range:"))).toEqual(["time() + x"]);
  });

  it("range evals compare every step, `_` meaning no sample", async () => {
    const m: QueryResult = { type: "matrix", series: [{ labels: L({ a: "1" }), timestamps: Float64Array.of(0, 120_000), values: Float64Array.of(1, 3) }], warnings: [], infos: [] };
    expect(await runEval(fake(m), evalCmd('eval range from 0 to 2m step 1m x\n  {a="1"} 1 _ 3'))).toBeUndefined();
    expect(await runEval(fake(m), evalCmd('eval range from 0 to 2m step 1m x\n  {a="1"} 1 2 3'))).toContain("expected 3 float points");
    const unsorted: QueryResult = {
      type: "matrix",
      series: [
        { labels: L({ a: "2" }), timestamps: Float64Array.of(0), values: Float64Array.of(1) },
        { labels: L({ a: "1" }), timestamps: Float64Array.of(0), values: Float64Array.of(1) },
      ],
      warnings: [],
      infos: [],
    };
    expect(await runEval(fake(unsorted), evalCmd('eval range from 0 to 0 step 1m x\n  {a="1"} 1\n  {a="2"} 1'))).toContain("not sorted");
  });

  it("runScript keeps the stale marker bit pattern", async () => {
    let got: Float64Array | undefined;
    const target: ScriptTarget = {
      clear: () => {},
      load: (_l, _ts, vs) => (got = vs),
      instantQuery: () => Promise.resolve(vector()),
      rangeQuery: () => Promise.resolve({ type: "matrix", series: [], warnings: [], infos: [] }),
    };
    await runScript(target, parseScript("load 1m\n  a 1 stale\n"));
    expect(new BigUint64Array(got!.buffer)[1]).toBe(0x7ff0000000000002n);
  });

  it("runScript loads floats at multiples of the interval and flags native-histogram cases", async () => {
    const loaded: [string, number[], number[]][] = [];
    const target: ScriptTarget = {
      clear: () => {},
      load: (l, ts, vs) => loaded.push([l.map((x) => `${x.name}=${x.value}`).join(","), [...ts], [...vs]]),
      instantQuery: () => Promise.resolve(vector()),
      rangeQuery: () => Promise.resolve({ type: "matrix", series: [], warnings: [], infos: [] }),
    };
    const outs = await runScript(target, parseScript("load 1m\n  a 1 _ 3\n  h {{count:1}} 2\n\neval instant at 0 h\n\neval instant at 0 a\n"));
    expect(loaded).toEqual([
      ["__name__=a", [0, 120_000], [1, 3]],
      ["__name__=h", [60_000], [2]],
    ]);
    expect(outs.map((o) => [o.line, o.passed, o.nativeHistograms])).toEqual([
      [5, true, true],
      [7, true, false],
    ]);
  });

  it("almostEqual", () => {
    expect(almostEqual(1, 1 + 1e-7)).toBe(true);
    expect(almostEqual(1, 1 + 1e-5)).toBe(false);
    expect(almostEqual(0, 1e-320)).toBe(true);
    expect(almostEqual(0, 1e-300)).toBe(false);
    expect(almostEqual(0, 1e-10)).toBe(false);
    expect(almostEqual(Infinity, Infinity)).toBe(true);
    expect(almostEqual(NaN, 1)).toBe(false);
  });

  it("addAtModifiers leaves selectors under an @ subquery alone", () => {
    const e = addAtModifiers(parseExpr("sum(x) + max_over_time(rate(y[5m])[10m:1m]) + z @ 5 + last_over_time(w[1m:] @ 7)"), 60_000);
    expect(printExpr(e)).toBe("sum(x @ 60.000) + max_over_time(rate(y[5m])[10m:1m] @ 60.000) + z @ 5.000 + last_over_time(w[1m:] @ 7.000)");
  });
});
