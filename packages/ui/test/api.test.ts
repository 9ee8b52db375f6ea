import { describe, expect, it } from "vitest";
import { Api, ApiError, parseErrorPosition, type FetchFn } from "../src/app/api";
import { buildGraphData, nearestSeries, seriesName } from "../src/app/graphData";
import { pairSelector, selectorWith, tsdbParams } from "../src/app/Cardinality";
import { sortRows, tableRows } from "../src/app/TableView";

describe("parse error positions", () => {
  it.each([
    ["1:5: parse error: unexpected <op:*>", "rate(*)", { offset: 4, line: 1, col: 5 }],
    ['invalid parameter "query": 1:1: parse error: no expression found in input', "", { offset: 0, line: 1, col: 1 }],
    ['invalid parameter "query": 1:3: parse error: bad', "up)", { offset: 2, line: 1, col: 3 }],
    ["2:3: parse error: unexpected end", "sum(\n  x", { offset: 7, line: 2, col: 3 }],
    // Columns are UTF-8 bytes: "é" is 2 bytes, "😀" 4 (2 UTF-16 units).
    ['1:10: parse error: unexpected "}"', 'x{a="é"}}', { offset: 8 }],
    ['1:12: parse error: unexpected "}"', 'x{a="😀"}}', { offset: 9 }],
    ["cannot parse query", "x", undefined],
    ["9:1: parse error: beyond", "x", undefined],
  ])("%s", (msg, query, want) => {
    const got = parseErrorPosition(msg, query);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatchObject(want);
  });
});

const respond = (status: number, body: string): FetchFn => async () => ({ status, text: async () => body });

describe("Api", () => {
  it("returns the body and the raw text", async () => {
    const text = '{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w"]}';
    const a = await new Api("/select/0/prometheus/api/v1/", respond(200, text)).query("up", 1_000);
    expect(a.text).toBe(text);
    expect(a.body.warnings).toEqual(["w"]);
    expect(a.url).toBe("/select/0/prometheus/api/v1/query?query=up&time=1");
  });
  it.each([
    [400, '{"status":"error","errorType":"bad_data","error":"1:3: parse error: x"}', "bad_data", "1:3: parse error: x"],
    [503, "service unavailable", "internal", "HTTP 503: service unavailable"],
    [422, '{"status":"error","errorType":"execution","error":"too many series"}', "execution", "too many series"],
    [200, "{}", "unknown", "HTTP 200"],
  ])("HTTP %d %s → ApiError", async (status, body, errorType, message) => {
    const p = new Api("/b/", respond(status, body)).queryRange("up)", 0, 60_000, 15_000);
    await expect(p).rejects.toBeInstanceOf(ApiError);
    await expect(p).rejects.toMatchObject({ errorType, message, status, query: "up)" });
  });
  it("reports an unreachable server", async () => {
    const api = new Api("/b/", async () => { throw new TypeError("fetch failed"); });
    await expect(api.labelNames(undefined)).rejects.toMatchObject({ errorType: "unavailable", status: 0 });
  });
});

describe("graph data", () => {
  it("aligns series on one x axis with gaps as null and drops non-finite values", () => {
    const d = buildGraphData([
      [{ metric: { __name__: "a", job: "x" }, values: [[10, "1"], [20, "2"]] }],
      [{ metric: { __name__: "b" }, values: [[20, "NaN"], [30, "+Inf"], [40, "4"]] }],
    ]);
    expect(Array.from(d.xs)).toEqual([10, 20, 30, 40]);
    expect(d.ys).toEqual([[1, 2, null, null], [null, null, null, 4]]);
    expect(d.series.map((s) => [s.queryIndex, s.name])).toEqual([[0, 'a{job="x"}'], [1, "b"]]);
    expect(nearestSeries(d.ys, 1, 1.9, () => true)).toBe(0);
    expect(nearestSeries(d.ys, 3, 0, (i) => i !== 1)).toBe(-1);
  });
  it("limits the number of drawn series", () => {
    const many = Array.from({ length: 50 }, (_x, i) => ({ metric: { i: String(i) }, values: [[1, "1"]] as const }));
    const d = buildGraphData([many], 20);
    expect(d.series).toHaveLength(20);
    expect(d.dropped).toBe(30);
  });
  it("thins timestamps when series × points is too large to draw", () => {
    const values = Array.from({ length: 100 }, (_x, i) => [i, String(i)] as const);
    const d = buildGraphData([Array.from({ length: 10 }, (_x, i) => ({ metric: { i: String(i) }, values }))], 2000, 300);
    expect(d.stride).toBe(4);
    expect(Array.from(d.xs)).toEqual(Array.from({ length: 25 }, (_x, i) => i * 4));
    expect(d.ys[3]?.slice(0, 3)).toEqual([0, 4, 8]);
    expect(buildGraphData([[{ metric: {}, values }]]).stride).toBe(1);
  });
  it.each([[{ __name__: "up" }, "up"], [{}, "{}"], [{ b: "2", a: "1", __name__: "m" }, 'm{a="1", b="2"}']])("seriesName(%o)", (m, want) => {
    expect(seriesName(m)).toBe(want);
  });
});

describe("table rows", () => {
  const rows = tableRows([
    { resultType: "vector", result: [{ metric: { __name__: "b" }, value: [1, "3"] }, { metric: { __name__: "a" }, value: [1, "NaN"] }, { metric: { __name__: "c" }, value: [1, "10"] }] },
    { resultType: "scalar", result: [1, "7"] },
  ]);
  it.each([
    ["value", true, ["c", "scalar", "b", "a"]],
    ["value", false, ["b", "scalar", "c", "a"]],
    ["name", false, ["a", "b", "c", "scalar"]],
    ["query", true, ["scalar", "c", "b", "a"]],
  ] as const)("sorted by %s desc=%s", (key, desc, want) => {
    expect(sortRows(rows, key, desc).map((r) => r.name)).toEqual(want);
  });
});

describe("cardinality click-through", () => {
  it.each([
    ["job=node", "", '{job="node"}'],
    ["job=node", "up", 'up{job="node"}'],
    ["job=node", '{env="prod"}', '{env="prod", job="node"}'],
    ["__name__=up", '{env="prod"}', 'up{env="prod"}'],
  ])("pair %s with match %j", (pair, match, want) => {
    expect(pairSelector(pair, match)).toBe(want);
  });
  it("builds the status/tsdb parameters", () => {
    expect(selectorWith("", "__name__", "up")).toBe("up");
    expect(tsdbParams({ topN: 5, date: "2026-11-21", focusLabel: "job", match: "up" })).toEqual([
      ["topN", "5"], ["date", "2026-11-21"], ["focusLabel", "job"], ["match[]", "up"],
    ]);
  });
});
