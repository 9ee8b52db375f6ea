import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { BadDataError } from "@strata/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ParseError, parseExpr, parseMetricSelector, parseScript, printExpr, resolveDurations, typeOf, type Expr } from "@strata/promql";

/** Fully parenthesized structure, to pin precedence and associativity. */
function shape(e: Expr): string {
  switch (e.kind) {
    case "BinaryExpr":
      return `(${shape(e.lhs)} ${e.op}${e.returnBool ? " bool" : ""} ${shape(e.rhs)})`;
    case "UnaryExpr":
      return `(${e.op}${shape(e.expr)})`;
    case "ParenExpr":
      return `[${shape(e.expr)}]`;
    default:
      return printExpr(e);
  }
}

describe("valid queries print in canonical form", () => {
  it.each([
    ["1", "1"],
    ["+1", "1"],
    ["-1", "-1"],
    [".5", "0.5"],
    ["5.", "5"],
    ["1e3", "1000"],
    ["12.34e-6", "0.00001234"],
    ["1e21", "1000000000000000000000"],
    ["0x1F", "31"],
    ["0X_ff", "255"],
    ["1_000", "1000"],
    ["017", "15"],
    ["Inf", "+Inf"],
    ["-inf", "-Inf"],
    ["nAn", "NaN"],
    ["5m", "5m"],
    ["1h30m", "1h30m"],
    ['"a\\nb"', '"a\\nb"'],
    ["'sin\"gle'", '"sin\\"gle"'],
    ["`raw\\n`", '"raw\\\\n"'],
    ['"\\u00fc\\x41\\101"', '"üAA"'],
    ["foo", "foo"],
    ["foo:bar:rate5m", "foo:bar:rate5m"],
    ['foo{c!~"d.*", a="b"}', 'foo{a="b",c!~"d.*"}'],
    ['foo{a="b",}', 'foo{a="b"}'],
    ['{__name__="foo"}', '{__name__="foo"}'],
    ['{"foo.bar"}', '{__name__="foo.bar"}'],
    ['{"foo.bar", a="b"}', '{__name__="foo.bar",a="b"}'],
    ['{"bar", __name__="baz"}', '{__name__="bar",__name__="baz"}'],
    ["sum", "sum"],
    ["foo * sum", "foo * sum"],
    ["sum(sum)", "sum(sum)"],
    ["min", "min"],
    ["start", "start"],
    ['offset{step="1s"}[5m]', 'offset{step="1s"}[5m]'],
    ["foo[max(step(),5s)]", "foo[max_of(step(), 5s)]"],
    ["foo[4.18] @ 2.345", "foo[4s180ms] @ 2.345"],
    ["foo @ 0xA", "foo @ 10.000"],
    ['foo{"a.b"="c"}', 'foo{"a.b"="c"}'],
    ['by{on="x"}', 'by{on="x"}'],
    ["offset", "offset"],
    ['{"inf"}', '{__name__="inf"}'],
    ['{"sum", a="b"}', '{__name__="sum",a="b"}'],
    ['{"on"}', '{__name__="on"}'],
    ["foo[5m]", "foo[5m]"],
    ["foo[90s]", "foo[1m30s]"],
    ["foo[1800]", "foo[30m]"],
    ["foo offset 5m", "foo offset 5m"],
    ["foo offset -5m", "foo offset -5m"],
    ["foo @ 100", "foo @ 100.000"],
    ["foo @ -1.5", "foo @ -1.500"],
    ["foo @ start()", "foo @ start()"],
    ["foo[5m] @ end() offset 1m", "foo[5m] @ end() offset 1m"],
    ["foo offset 1m @ 10", "foo @ 10.000 offset 1m"],
    ["rate(foo[5m])[30m:1m]", "rate(foo[5m])[30m:1m]"],
    ["foo[5m:]", "foo[5m:]"],
    ["foo[5m:] offset 1m @ 1", "foo[5m:] @ 1.000 offset 1m"],
    ["sum by (job) (rate(x[5m]))", "sum by (job) (rate(x[5m]))"],
    ["sum(rate(x[5m])) by (job)", "sum by (job) (rate(x[5m]))"],
    ["SUM(x) BY (job)", "sum by (job) (x)"],
    ["sum without (a, b) (x)", "sum without (a, b) (x)"],
    ["sum without () (x)", "sum without () (x)"],
    ["sum by () (x)", "sum(x)"],
    ["a - ignoring() c", "a - c"],
    ['foobar{a="x", b="y"}', 'foobar{a="x",b="y"}'],
    ['sum by ("a.b", c,) (x)', 'sum by ("a.b", c) (x)'],
    ["topk(3, x)", "topk(3, x)"],
    ['count_values("v", x)', 'count_values("v", x)'],
    ["quantile(0.9, x)", "quantile(0.9, x)"],
    ["limitk(2, x)", "limitk(2, x)"],
    ["limit_ratio(-0.5, x)", "limit_ratio(-0.5, x)"],
    ["a / on(x) group_left(y) b", "a / on (x) group_left (y) b"],
    ["a / ignoring(x) group_right b", "a / ignoring (x) group_right () b"],
    ["a == bool b", "a == bool b"],
    ["a and ignoring(x) b", "a and ignoring (x) b"],
    ["a and on() b", "a and on () b"],
    ["1 > bool 2", "1 > bool 2"],
    ["a + fill(0) b", "a + fill(0) b"],
    ["a + fill_left(1) fill_right(-Inf) b", "a + fill_left(1) fill_right(-Inf) b"],
    ["a * on(i) group_left fill(NaN) b", "a * on (i) group_left () fill(NaN) b"],
    ["fill + fill(0) fill", "fill + fill(0) fill"],
    ["h </ 2", "h </ 2"],
    ["h >/ -Inf", "h >/ -Inf"],
    ["foo[1m] anchored", "foo[1m] anchored"],
    ["foo smoothed", "foo smoothed"],
    ["foo @ 100 smoothed", "foo @ 100.000 smoothed"],
    ["foo[5m+1m]", "foo[6m]"],
    ["foo[2m*(10+5)]", "foo[30m]"],
    ["foo[30m1s-30m1s % 1m]", "foo[30m]"],
    ["foo[1h/2]", "foo[30m]"],
    ["foo[29s+1s:5s+5s]", "foo[30s:10s]"],
    ["foo offset (1h*2)", "foo offset 2h"],
    ["foo offset -(2*3)", "foo offset -6s"],
    ["foo[step()]", "foo[step()]"],
    ["foo[min_of(step()+1,1h)]", "foo[min_of(step() + 1, 1h)]"],
    ["foo offset STEP()", "foo offset step()"],
    ["step()", "step()"],
    ["start() + range()", "start() + range()"],
    ["min_of(1, 2)", "min_of(1, 2)"],
    ['label_join(x, "a", ",", "b", "c")', 'label_join(x, "a", ",", "b", "c")'],
    ['sort_by_label(x, "a", "b")', 'sort_by_label(x, "a", "b")'],
    ["round(x)", "round(x)"],
    ["hour()", "hour()"],
    ['histogram_quantiles(x, "q", 0.1, 0.5)', 'histogram_quantiles(x, "q", 0.1, 0.5)'],
    ['info(m, {data=~".*"})', 'info(m, {data=~".*"})'],
    ["foo # a comment", "foo"],
    ["sum(\n  x # c\n)", "sum(x)"],
    ["-foo", "-foo"],
    ["+foo", "+foo"],
    ["-(1)", "-(1)"],
    ["1 - -1", "1 - -1"],
    ["time() - timestamp(x)", "time() - timestamp(x)"],
    // A signed literal left of `^` keeps its own sign (`+Inf ^ a` would be +(Inf ^ a)).
    ["Inf ^ a", "(+Inf) ^ a"],
    ["a ^ Inf", "a ^ +Inf"],
    ["-Inf ^ a", "-(+Inf) ^ a"],
  ])("%s → %s", (q, want) => {
    const e = parseExpr(q);
    expect(printExpr(e)).toBe(want);
    // The printed form parses back to the same printed form.
    expect(printExpr(parseExpr(want))).toBe(want);
  });
});

describe("precedence and associativity", () => {
  it.each([
    ["2 ^ 3 ^ 2", "(2 ^ (3 ^ 2))"],
    ["1 - 2 - 3", "((1 - 2) - 3)"],
    ["1 / 2 * 3", "((1 / 2) * 3)"],
    ["-2 ^ 2", "(-(2 ^ 2))"],
    ["-a * b", "((-a) * b)"],
    ["2 ^ -1 ^ 2", "(2 ^ (-(1 ^ 2)))"],
    ["a or b and c", "(a or (b and c))"],
    ["a unless b or c", "((a unless b) or c)"],
    ["a + b > c * d", "((a + b) > (c * d))"],
    ["a > b + c == bool d", "((a > (b + c)) == bool d)"],
    ["a atan2 b * c", "((a atan2 b) * c)"],
    ["a % b ^ c", "(a % (b ^ c))"],
    ["- - 1", "1"],
    ["metric offset -2 ^ 2", "(metric offset -2s ^ 2)"],
    ["metric offset 100 + 2", "(metric offset 1m40s + 2)"],
    ["metric offset -step()*2", "(metric offset (-step()) * 2)"],
    ["metric offset min_of(step(), 1s)+8000", "(metric offset min_of(step(), 1s) + 8000)"],
    ["a + b offset 5m", "(a + b offset 5m)"],
    ["(a + b)[5m:]", "(a + b)[5m:]"],
    ["(a + b) * c", "([(a + b)] * c)"],
  ])("%s → %s", (q, want) => {
    expect(shape(parseExpr(q))).toBe(want);
  });
});

describe("AST details", () => {
  it("types", () => {
    expect(typeOf(parseExpr("1 + 1"))).toBe("scalar");
    expect(typeOf(parseExpr("foo + 1"))).toBe("vector");
    expect(typeOf(parseExpr("foo[1m]"))).toBe("matrix");
    expect(typeOf(parseExpr("foo[1m:]"))).toBe("matrix");
    expect(typeOf(parseExpr('"x"'))).toBe("string");
    expect(typeOf(parseExpr("scalar(foo)"))).toBe("scalar");
  });

  it("selectors carry matchers, with __name__ last, and frozen nodes", () => {
    const e = parseExpr('foo{a="b"}');
    expect(e.kind).toBe("VectorSelector");
    if (e.kind !== "VectorSelector") return;
    expect(e.name).toBe("foo");
    expect(e.matchers.map((m) => m.toString())).toEqual(['a="b"', '__name__="foo"']);
    expect(Object.isFrozen(e)).toBe(true);
  });

  it("vector matching defaults", () => {
    const one = parseExpr("a + b");
    const set = parseExpr("a or b");
    const sc = parseExpr("a + 1");
    if (one.kind !== "BinaryExpr" || set.kind !== "BinaryExpr" || sc.kind !== "BinaryExpr") throw new Error("not binary");
    expect(one.matching?.card).toBe("one-to-one");
    expect(set.matching?.card).toBe("many-to-many");
    expect(sc.matching).toBeUndefined();
    const f = parseExpr("a + fill_left(3) b");
    if (f.kind !== "BinaryExpr") throw new Error("not binary");
    expect([f.matching?.fillLeft, f.matching?.fillRight]).toEqual([3, undefined]);
  });

  it("durations, offsets and @ in ms", () => {
    const e = parseExpr("rate(foo[1m30s] offset -1h @ 12.3456)");
    if (e.kind !== "Call" || e.args[0]?.kind !== "MatrixSelector") throw new Error("shape");
    const m = e.args[0];
    expect([m.range, m.vector.offset, m.vector.at]).toEqual([90_000, -3_600_000, 12_346]);
    expect(parseExpr("foo[1001ms]").kind === "MatrixSelector" && (parseExpr("foo[1001ms]") as { range: number }).range).toBe(1001);
  });

  it("resolveDurations fixes step() and range() per query", () => {
    const e = parseExpr("count_over_time(x[step()+1] offset range())[min_of(range(), 1h):step()]");
    const r = resolveDurations(e, { start: 50_000, end: 60_000, step: 5_000 });
    expect(printExpr(r)).toBe("count_over_time(x[6s] offset 10s)[10s:5s]");
    expect(printExpr(resolveDurations(parseExpr("x offset range()"), { start: 5, end: 5, step: 0 }))).toBe("x");
    const same = parseExpr("rate(x[5m])");
    expect(resolveDurations(same, { start: 0, end: 1, step: 1 })).toBe(same);
  });

  it("positions are UTF-8 byte offsets", () => {
    const e = parseExpr('{"ü"=~"a"} + foo');
    if (e.kind !== "BinaryExpr") throw new Error("shape");
    expect(e.rhs.pos).toEqual({ start: 14, end: 17 });
  });

  it("invalid UTF-8 escapes survive as lone surrogates", () => {
    const e = parseExpr('"a\\xc5z"');
    if (e.kind !== "StringLiteral") throw new Error("shape");
    expect(e.value.isWellFormed()).toBe(false);
    expect(printExpr(e)).toBe('"a\\xc5z"');
    const ok = parseExpr('"\\xc3\\xbc"');
    expect(ok.kind === "StringLiteral" && ok.value).toBe("ü");
  });
});

describe("invalid queries", () => {
  it.each([
    ["", "1:1: parse error: no expression found in input"],
    ["foo{", "1:5: parse error: unexpected end of input inside braces"],
    ["rate(foo)", '1:6: parse error: expected type range vector in call to function "rate", got instant vector'],
    ["foo bar", '1:5: parse error: unexpected identifier "bar"'],
    ["1 + ", "1:5: parse error: unexpected end of input"],
    ["sum(foo) by (a) by (b)", "1:17: parse error: unexpected <by>"],
    ["a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"],
    ["foo +", "1:6: parse error: unexpected end of input"],
    ["foo{a= =}", '1:8: parse error: unexpected "=" in label matching, expected string'],
    ["++-++-+-+-<", "1:11: parse error: unexpected <op:<>"],
    ["foo}", "1:4: parse error: unexpected character: '}'"],
    ["foo{a{", "1:6: parse error: unexpected left brace '{'"],
    ["sum(x) sum", "1:8: parse error: unexpected <aggr:sum>"],
    ['foo "a very long string"', '1:5: parse error: unexpected string "\\"a very lo"...'],
    ["foo{a}", '1:6: parse error: unexpected "}" in label matching, expected label matching operator'],
    ["foo{a=b}", '1:7: parse error: unexpected identifier "b" in label matching, expected string'],
    ['foo{a="b" c="d"}', '1:11: parse error: unexpected identifier "c" in label matching, expected "," or "}"'],
    ["'\\q'", "1:3: parse error: unknown escape sequence U+0071 'q'"],
    ['"abc', "1:1: parse error: unterminated quoted string"],
    ['"a\nb"', "1:1: parse error: unterminated quoted string"],
    ["`abc", "1:1: parse error: unterminated raw string"],
    ["1.5h", '1:1: parse error: not a valid duration string: "1.5h"'],
    ["0deadbeef", '1:1: parse error: bad number or duration syntax: "0de"'],
    ["100..4", '1:1: parse error: bad number or duration syntax: "100.."'],
    ["9".repeat(309), `1:1: parse error: error parsing number: strconv.ParseFloat: parsing "${"9".repeat(309)}": value out of range`],
    ["1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"],
    ["1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"],
    ["@@", "1:1: parse error: unexpected <op:@>"],
    ["foo{,}", '1:5: parse error: unexpected "," in label matching, expected identifier or "}"'],
    ['foo["5m"]', `1:5: parse error: unexpected character in duration expression: '"'`],
    ["foo[]", '1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()'],
    ["foo offset", "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()"],
    ["foo[5s/0d]", "1:5: parse error: division by zero"],
    ["foo[step()%0]", "1:5: parse error: modulo by zero"],
    ["foo offset 9.5e10", "1:12: parse error: duration out of range"],
    ["topk(x,)", "1:7: parse error: trailing commas not allowed in function call args"],
    ['info(m, {a="b"} == 1)', "1:9: parse error: expected label selectors only"],
    ["foo[5x]", '1:5: parse error: bad number or duration syntax: "5x"'],
    ["1__0", '1:1: parse error: bad number or duration syntax: "1__"'],
    ["foo[1m1h]", '1:5: parse error: not a valid duration string: "1m1h"'],
    ["foo)", "1:5: parse error: unexpected right parenthesis ')'"],
    ["(foo", "1:5: parse error: unclosed left parenthesis"],
    ["foo]", "1:4: parse error: unexpected right bracket ']'"],
    ["foo[5m", "1:7: parse error: unexpected end of input in duration expression"],
    ["foo ~ bar", "1:5: parse error: unexpected character: '~'"],
    ["foo @ Inf", "1:7: parse error: timestamp out of bounds for @ modifier: +Inf"],
    ["foo @ 1 @ 2", "1:9: parse error: @ <timestamp> may not be set multiple times"],
    ["foo offset 1m offset 2m", "1:15: parse error: offset may not be set multiple times"],
    ["(foo) offset 5m", "1:7: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"],
    ["sum(\n  rate(foo)\n)", '2:8: parse error: expected type range vector in call to function "rate", got instant vector'],
    ['{"ü"=~"a"} + rate(x)', '1:20: parse error: expected type range vector in call to function "rate", got instant vector'],
    ["a + fill(x) b", '1:10: parse error: unexpected identifier "x" in fill modifier, expected number'],
    ["{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"],
    ['{a=""}', "1:1: parse error: vector selector must contain at least one non-empty matcher"],
    ['{a=~".*"} + foo', "1:1: parse error: vector selector must contain at least one non-empty matcher"],
    ['foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'],
    ["sum()", "1:1: parse error: no arguments for aggregate expression provided"],
    ["topk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"],
    ["sum(1, x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 1, got 2"],
    ['topk("a", x)', "1:6: parse error: expected type scalar in aggregation parameter, got string"],
    ["count_values(1, x)", "1:14: parse error: expected type string in aggregation parameter, got scalar"],
    ["sum(1)", "1:5: parse error: expected type instant vector in aggregation expression, got scalar"],
    ["sum by (a b) (x)", '1:11: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"'],
    ["1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"],
    ["foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"],
    ["1 and foo", '1:1: parse error: set operator "and" not allowed in binary scalar expression'],
    ["foo and on(a) group_left bar", '1:1: parse error: no grouping allowed for "and" operation'],
    ["foo * on(a) group_left(a) bar", '1:5: parse error: label "a" must not occur in ON and GROUP clause at once'],
    ["1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"],
    ["foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"],
    ['"a" + 1', "1:1: parse error: binary expression must contain only scalar and instant vector types"],
    ["-foo[5m]", '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector"'],
    ["rate(foo[5m])[5m]", "1:1: parse error: ranges only allowed for vector selectors"],
    ["foo[5m][5m:1m]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"],
    ["foo offset 5m [5m]", "1:1: parse error: no offset modifiers allowed before range"],
    ["foo @ 5 [5m]", "1:1: parse error: no @ modifiers allowed before range"],
    ["foo[0s]", "1:4: parse error: duration must be greater than 0"],
    ["unknown_fn(x)", '1:1: parse error: unknown function with name "unknown_fn"'],
    ["rate()", '1:1: parse error: expected 1 argument(s) in call to "rate", got 0'],
    ["round(x, 1, 2)", '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'],
    ["label_join(x)", '1:1: parse error: expected at least 3 argument(s) in call to "label_join", got 1'],
    ["rate(x[5m],)", "1:11: parse error: trailing commas not allowed in function call args"],
    ["info(x, y)", "1:9: parse error: expected label selectors only, got vector selector instead"],
    ["foo @ bar", '1:7: parse error: unexpected identifier "bar" in @, expected timestamp'],
  ])("%j", (q, want) => {
    let err: unknown;
    try {
      parseExpr(q);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ParseError);
    expect((err as ParseError).message).toBe(want);
    expect((err as ParseError).code).toBe("STRATA_PARSE_ERROR");
  });

  it("reports line, column and byte offset", () => {
    try {
      parseExpr("sum(\n  rate(ü)\n)");
      expect.fail("should throw");
    } catch (e) {
      const pe = e as ParseError;
      expect([pe.line, pe.col, pe.offset]).toEqual([2, 8, 12]);
    }
  });

  it("invalid regex matchers are parse errors", () => {
    expect(() => parseExpr('foo{a=~"("}')).toThrow(/^1:8: parse error: invalid regular expression "\("/);
  });
});

describe("parseMetricSelector (match[])", () => {
  it.each([
    ["foo", ['__name__="foo"']],
    ['foo{a=~"b.*"}', ['a=~"b.*"', '__name__="foo"']],
    ['{"foo.bar", a!="1"}', ['__name__="foo.bar"', 'a!="1"']],
    ["by", ['__name__="by"']],
  ])("%s", (q, want) => {
    expect(parseMetricSelector(q).map((m) => m.toString())).toEqual(want);
  });

  it.each([
    ["foo offset 5m", "1:5: parse error: unexpected <offset>"],
    ["foo @ 1", "1:5: parse error: unexpected <op:@>"],
    ["foo[5m]", '1:4: parse error: unexpected "["'],
    ["rate(foo[5m])", '1:5: parse error: unexpected "("'],
    ["{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"],
    ["", "1:1: parse error: no expression found in input"],
    ["1", '1:1: parse error: unexpected number "1"'],
  ])("rejects %j", (q, want) => {
    expect(() => parseMetricSelector(q)).toThrow(want);
  });
});

// ---- every expression of the conformance scripts ------------------------------------------

const confDir = resolve(import.meta.dirname, "../../../../shared/conformance/promql");
const confFiles = existsSync(confDir) ? readdirSync(confDir).filter((f) => f.endsWith(".test")).sort() : [];

describe("conformance expressions", () => {
  it.each(confFiles)("%s: every eval expression parses (or the case expects failure) and prints stably", (f) => {
    const cmds = parseScript(readFileSync(join(confDir, f), "utf8"), f);
    for (const c of cmds) {
      if (c.kind !== "eval") continue;
      let e: Expr;
      try {
        e = parseExpr(c.query);
      } catch (err) {
        expect(c.fail, `${f}:${c.line} ${c.query}: ${String(err)}`).toBe(true);
        continue;
      }
      const printed = printExpr(e);
      expect(printExpr(parseExpr(printed)), `${f}:${c.line}`).toBe(printed);
    }
  });
});

// ---- fuzz ---------------------------------------------------------------------------------

const corpus = confFiles.flatMap((f) =>
  parseScript(readFileSync(join(confDir, f), "utf8"), f)
    .filter((c) => c.kind === "eval")
    .map((c) => (c.kind === "eval" ? c.query : "")),
);
const seeds = corpus.length > 0 ? corpus : ["sum by (a) (rate(x[5m])) > bool 1", 'foo{a=~"b.*"} offset -5m @ 10'];

const ALPHABET = [..."abcxyz_:{}[]()\"'`,=!~+-*/%^<>@#.0123456789 \n\\eEx", "by", "on", "offset", "sum", "rate", "Inf", "5m", "bool", "fill"];

function expectOnlyTypedErrors(q: string): void {
  try {
    const e = parseExpr(q);
    // Whatever parses must print to something that parses to the same text again.
    const p = printExpr(e);
    expect(printExpr(parseExpr(p))).toBe(p);
  } catch (err) {
    if (!(err instanceof BadDataError)) throw err;
  }
}

describe("fuzz: random and mutated queries only raise typed errors", () => {
  it("random token soup", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ALPHABET), { maxLength: 40 }), (parts) => expectOnlyTypedErrors(parts.join(""))),
      { numRuns: 3000 },
    );
  });

  it("random unicode strings", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 60 }), expectOnlyTypedErrors), { numRuns: 2000 });
  });

  it("mutated conformance queries", () => {
    const mutation = fc.record({
      seed: fc.nat(),
      edits: fc.array(
        fc.record({ at: fc.nat(), op: fc.constantFrom("insert", "delete", "replace", "dup"), ch: fc.constantFrom(...ALPHABET) }),
        { minLength: 1, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(mutation, ({ seed, edits }) => {
        let q = seeds[seed % seeds.length]!;
        for (const { at, op, ch } of edits) {
          const i = q.length === 0 ? 0 : at % (q.length + 1);
          if (op === "insert") q = q.slice(0, i) + ch + q.slice(i);
          else if (op === "delete") q = q.slice(0, i) + q.slice(i + 1);
          else if (op === "replace") q = q.slice(0, i) + ch + q.slice(i + 1);
          else q = q.slice(0, i) + q.slice(i, i + 5) + q.slice(i);
        }
        expectOnlyTypedErrors(q);
      }),
      { numRuns: 4000 },
    );
  });

  it.each([
    ["a 50,001-term sum", "1" + "+1".repeat(50_000)],
    ["a 2,000-term chain of and", "up" + " and up".repeat(2_000)],
    ["a right-nested power chain", "2" + "^2".repeat(5_000)],
    ["chains inside parentheses inside chains", `(${"x+".repeat(600)}x)${"+x".repeat(600)}`],
    ["nested calls", "abs(".repeat(1_500) + "x" + ")".repeat(1_500)],
  ])("%s is a parse error (nesting limit), not a stack overflow", (_name, q) => {
    expect(() => parseExpr(q)).toThrow(ParseError);
    expect(() => parseExpr(q)).toThrow(/nesting exceeds 1000 levels/);
  });

  it.each([
    ["a 999-term sum", "1" + "+1".repeat(998)],
    ["600 + 300 terms across parentheses", `(${"x+".repeat(599)}x)${"+x".repeat(300)}`],
  ])("%s parses and prints", (_name, q) => {
    expect(printExpr(parseExpr(printExpr(parseExpr(q))))).toBe(printExpr(parseExpr(q)));
  });

  it("deep nesting does not blow up", () => {
    const deep = "(".repeat(2000) + "1" + ")".repeat(2000);
    expectOnlyTypedErrors(deep);
    expectOnlyTypedErrors("-".repeat(3000) + "1");
  });
});
