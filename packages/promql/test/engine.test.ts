import { BadDataError, CanceledError, ExecutionError, StrataError, TimeoutError, newMatcher } from "@strata/core";
import type { Labels } from "@strata/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryQuerier, STALE_NAN, createEngine, emptySeriesSet, errSeriesSet, formatPromValue } from "@strata/promql";
import type { Querier, QueryResult } from "@strata/promql";

const MIN = 60_000;

function fmt(labels: Labels): string {
  return `{${labels.map((l) => `${l.name}="${l.value}"`).join(",")}}`;
}

/** A result as `{labels} value` lines (vector/scalar) or `{labels} v@t …` (matrix), sorted. */
function lines(r: QueryResult): string[] {
  switch (r.type) {
    case "scalar":
      return [formatPromValue(r.value)];
    case "string":
      return [JSON.stringify(r.value)];
    case "vector":
      return r.labels.map((l, i) => `${fmt(l)} ${formatPromValue(r.values[i]!)}`).sort();
    case "matrix":
      return r.series
        .map((s) => `${fmt(s.labels)} ${Array.from(s.values, (v, i) => `${formatPromValue(v)}@${s.timestamps[i]! / 1000}`).join(" ")}`)
        .sort();
  }
}

/** Samples every minute from 0 to 10m. */
function data(): MemoryQuerier {
  const q = new MemoryQuerier();
  const ts = Array.from({ length: 11 }, (_, i) => i * MIN);
  const add = (labels: Record<string, string>, f: (i: number) => number): void => q.add(labels, ts, ts.map((_, i) => f(i)));
  add({ __name__: "req_total", job: "api", instance: "a" }, (i) => i * 60);
  add({ __name__: "req_total", job: "api", instance: "b" }, (i) => i * 120);
  add({ __name__: "req_total", job: "web", instance: "a" }, (i) => (i < 5 ? i * 30 : (i - 5) * 30));
  add({ __name__: "temp", room: "kitchen" }, (i) => 20 + (i % 3));
  add({ __name__: "temp", room: "hall" }, () => 18);
  add({ __name__: "lat_bucket", le: "0.1" }, (i) => i * 2);
  add({ __name__: "lat_bucket", le: "1" }, (i) => i * 8);
  add({ __name__: "lat_bucket", le: "+Inf" }, (i) => i * 10);
  return q;
}

const engine = createEngine();

describe("formatPromValue", () => {
  it.each([
    [0, "0"],
    [-0, "-0"],
    [1, "1"],
    [-2.5, "-2.5"],
    [0.1, "0.1"],
    [1e21, "1000000000000000000000"],
    [1.5e-7, "0.00000015"],
    [123456789012, "123456789012"],
    [NaN, "NaN"],
    [Infinity, "+Inf"],
    [-Infinity, "-Inf"],
    [5e-324, `0.${"0".repeat(323)}5`],
  ])("%s → %s", (v, want) => {
    expect(formatPromValue(v)).toBe(want);
  });

  it("round-trips every finite double", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
        expect(Object.is(Number(formatPromValue(v)), v)).toBe(true);
        expect(formatPromValue(v)).not.toMatch(/e/);
      }),
      { numRuns: 500 },
    );
  });
});

describe("MemoryQuerier", () => {
  const hints = { start: 0, end: 0, step: 0, range: 0, func: "" };
  it.each([
    ['job="api"', [newMatcher("=", "job", "api")], 2],
    ["job!=api", [newMatcher("!=", "job", "api")], 6],
    ["instance=~a|b", [newMatcher("=~", "instance", "a|b")], 3],
    ["missing label matches empty", [newMatcher("=", "room", "")], 6],
    ["__name__=~lat.*", [newMatcher("=~", "__name__", "lat.*")], 3],
  ])("select %s", async (_name, matchers, want) => {
    const set = await data().select(matchers, 0, 10 * MIN, hints);
    let n = 0;
    while (set.next()) n++;
    expect(set.err()).toBeUndefined();
    expect(n).toBe(want);
  });

  it("cuts samples to [minT, maxT] inclusive and keeps stale markers bit-exact", async () => {
    const q = new MemoryQuerier();
    q.add({ __name__: "m" }, [3000, 1000, 2000], [3, 1, 2]);
    q.appendStale({ __name__: "m" }, 4000);
    const set = await q.select([newMatcher("=", "__name__", "m")], 2000, 4000, hints);
    expect(set.next()).toBe(true);
    const s = set.at();
    expect(Array.from(s.timestamps)).toEqual([2000, 3000, 4000]);
    const bits = new BigUint64Array(new Float64Array([s.values[2]!]).buffer)[0];
    expect(new BigUint64Array(s.values.slice(2).buffer)[0]).toBe(0x7ff0000000000002n);
    expect(bits === 0x7ff0000000000002n || bits === 0x7ff8000000000002n).toBe(true);
    expect(set.next()).toBe(false);
  });

  it("null objects", () => {
    expect(emptySeriesSet.next()).toBe(false);
    const err = new Error("boom");
    const s = errSeriesSet(err);
    expect(s.next()).toBe(false);
    expect(s.err()).toBe(err);
  });
});

describe("instant queries", () => {
  const q = data();
  it.each([
    ["req_total{job=\"api\"}", 10, ['{__name__="req_total",instance="a",job="api"} 600', '{__name__="req_total",instance="b",job="api"} 1200']],
    ["sum(req_total)", 10, ["{} 1950"]],
    ["sum by (job) (req_total)", 10, ['{job="api"} 1800', '{job="web"} 150']],
    ["count without (instance) (req_total)", 10, ['{job="api"} 2', '{job="web"} 1']],
    ["rate(req_total{instance=\"a\",job=\"api\"}[5m])", 10, ['{instance="a",job="api"} 1']],
    // A counter reset is corrected (120 before the reset is added back), then extrapolated.
    ["increase(req_total{job=\"web\"}[4m])", 7, ['{instance="a",job="web"} 80']],
    ["resets(req_total[10m])", 10, ['{instance="a",job="api"} 0', '{instance="a",job="web"} 1', '{instance="b",job="api"} 0']],
    ["delta(temp{room=\"hall\"}[5m])", 10, ['{room="hall"} 0']],
    ["max_over_time(temp[3m])", 10, ['{__name__="temp",room="hall"} 18', '{__name__="temp",room="kitchen"} 22'].map((s) => s.replace('{__name__="temp",', "{"))],
    ["last_over_time(temp{room=\"hall\"}[3m])", 10, ['{__name__="temp",room="hall"} 18']],
    ["temp > 19", 10, ['{__name__="temp",room="kitchen"} 21']],
    ["temp > bool 19", 10, ['{room="hall"} 0', '{room="kitchen"} 1']],
    ["req_total / on(instance) group_left req_total{job=\"web\"}", 4, ['{instance="a",job="api"} 2', '{instance="a",job="web"} 1']],
    ["topk(1, req_total)", 10, ['{__name__="req_total",instance="b",job="api"} 1200']],
    ["quantile(0.5, temp)", 10, ["{} 19.5"]],
    ["histogram_quantile(0.5, lat_bucket)", 10, ["{} 0.55"]],
    ["label_replace(temp{room=\"hall\"}, \"r\", \"$1!\", \"room\", \"(h.*)\")", 10, ['{__name__="temp",r="hall!",room="hall"} 18']],
    ["absent(nope{job=\"x\"})", 10, ['{job="x"} 1']],
    ["vector(time())", 10, ["{} 600"]],
    ["scalar(temp{room=\"hall\"}) * 2", 10, ["36"]],
    ["req_total offset 5m and req_total{instance=\"b\"}", 10, ['{__name__="req_total",instance="b",job="api"} 600']],
    ["req_total{instance=\"b\"} @ 120", 10, ['{__name__="req_total",instance="b",job="api"} 240']],
    ["sum_over_time(temp{room=\"hall\"}[5m:1m])", 10, ['{room="hall"} 90']],
    // Lookback: the last sample is at 10m; 5m later it is gone.
    ["temp{room=\"hall\"}", 15, []],
    ["temp{room=\"hall\"}", 14.9, ['{__name__="temp",room="hall"} 18']],
  ])("%s at %sm", async (query, atMin, want) => {
    expect(lines(await engine.instantQuery(q, query, atMin * MIN))).toEqual([...want].sort());
  });

  it("truncates times to whole milliseconds", async () => {
    const m = new MemoryQuerier();
    m.add({ __name__: "m" }, [0], [1]);
    // 300000.7 ms → 300000: the sample at 0 is exactly one lookback delta away (left-open).
    expect(lines(await engine.instantQuery(m, "m", 299_999.9))).toEqual(['{__name__="m"} 1']);
    expect(lines(await engine.instantQuery(m, "m", 300_000.7))).toEqual([]);
  });

  it("keeps the order of sort_desc", async () => {
    const r = await engine.instantQuery(q, "sort_desc(req_total)", 10 * MIN);
    expect(r.type === "vector" && Array.from(r.values)).toEqual([1200, 600, 150]);
  });

  it("returns scalars, strings and range vectors", async () => {
    expect(await engine.instantQuery(q, "1 + 2", 0)).toMatchObject({ type: "scalar", value: 3 });
    expect(await engine.instantQuery(q, '"hi"', 0)).toMatchObject({ type: "string", value: "hi" });
    expect(lines(await engine.instantQuery(q, 'temp{room="hall"}[2m]', 10 * MIN))).toEqual(['{__name__="temp",room="hall"} 18@540 18@600']);
  });

  it("reports a non-counter info for rate", async () => {
    const r = await engine.instantQuery(q, "rate(temp[5m])", 10 * MIN);
    expect(r.infos).toEqual(['PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "temp" (1:6)']);
  });

  it("annotation positions count UTF-8 bytes and lines", async () => {
    const query = 'count(req_total{job="ü"}) or\n  rate(temp[5m])';
    const r = await engine.instantQuery(q, query, 10 * MIN);
    const col = Buffer.byteLength("  rate(") + 1;
    expect(r.infos).toEqual([`PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "temp" (2:${col})`]);
  });

  it.each([
    ["quantile(1000000, temp)", "PromQL warning: quantile value should be between 0 and 1, got 1e+06 (1:10)"],
    ["quantile(-0.00001, temp)", "PromQL warning: quantile value should be between 0 and 1, got -1e-05 (1:10)"],
    ["quantile(123456.5, temp)", "PromQL warning: quantile value should be between 0 and 1, got 123456.5 (1:10)"],
  ])("annotations print numbers as Go's %%g: %s", async (query, want) => {
    expect((await engine.instantQuery(q, query, 10 * MIN)).warnings).toEqual([want]);
  });

  it("histogram_quantiles labels quantiles in OpenMetrics float form", async () => {
    const r = await engine.instantQuery(q, 'histogram_quantiles(lat_bucket, "q", 0, 0.5, 1, 0.00001)', 10 * MIN);
    expect(r.type === "vector" && r.labels.map((l) => l.find((x) => x.name === "q")!.value).sort()).toEqual(["0.0", "0.5", "1.0", "1e-05"]);
  });

  it("stale markers end a series", async () => {
    const s = new MemoryQuerier();
    s.add({ __name__: "m" }, [0, MIN], [1, 2]);
    s.appendStale({ __name__: "m" }, 2 * MIN);
    expect(lines(await engine.instantQuery(s, "m", 1.5 * MIN))).toEqual(['{__name__="m"} 2']);
    expect(lines(await engine.instantQuery(s, "m", 2.5 * MIN))).toEqual([]);
    expect(lines(await engine.instantQuery(s, "count_over_time(m[5m])", 3 * MIN))).toEqual(["{} 2"]);
    expect(STALE_NAN).toBeNaN();
  });
});

describe("label_replace templates (Go regexp.Expand)", () => {
  const m = new MemoryQuerier();
  m.add({ __name__: "s", src: "abc-123" }, [0], [1]);
  it.each([
    ["$1", "abc"],
    ["${1}x", "abcx"],
    ["$1x", ""], // `$1x` names group "1x", which does not exist
    ["$$1", "$1"],
    ["${name}-$2", "123-123"],
    ["$name", "123"],
    ["$3", ""],
    ["${", "${"],
    ["a$", "a$"],
  ])("%s → %s", async (tmpl, want) => {
    const r = await engine.instantQuery(m, `label_replace(s, "dst", "${tmpl}", "src", "([a-z]+)-(?P<name>[0-9]+)")`, 0);
    expect(r.type === "vector" && r.labels[0]!.find((l) => l.name === "dst")?.value).toBe(want === "" ? undefined : want);
  });
});

describe("date functions", () => {
  const m = new MemoryQuerier();
  // 2024-02-29T13:45:00Z (a leap day, Thursday) and 1999-12-31T23:59:59Z.
  m.add({ __name__: "t", k: "leap" }, [0], [1709214300]);
  m.add({ __name__: "t", k: "y2k" }, [0], [946684799]);
  it.each([
    ["year", ["2024", "1999"]],
    ["month", ["2", "12"]],
    ["day_of_month", ["29", "31"]],
    ["day_of_week", ["4", "5"]],
    ["day_of_year", ["60", "365"]],
    ["days_in_month", ["29", "31"]],
    ["hour", ["13", "23"]],
    ["minute", ["45", "59"]],
  ])("%s", async (fn, want) => {
    expect(lines(await engine.instantQuery(m, `${fn}(t)`, 0))).toEqual([`{k="leap"} ${want[0]}`, `{k="y2k"} ${want[1]}`]);
  });
  it("without argument uses the evaluation time", async () => {
    expect(lines(await engine.instantQuery(m, "year()", 1709214300_000))).toEqual(["{} 2024"]);
  });
});

describe("sort_by_label (natural order)", () => {
  const m = new MemoryQuerier();
  for (const v of ["a10", "a2", "a1", "b", "a02"]) m.add({ __name__: "n", v }, [0], [1]);
  it.each([
    // "a2" and "a02" compare less than each other in natsort; Go's insertion sort decides.
    ["sort_by_label(n, \"v\")", ["a1", "a2", "a02", "a10", "b"]],
    ["sort_by_label_desc(n, \"v\")", ["b", "a10", "a02", "a2", "a1"]],
  ])("%s", async (query, want) => {
    const r = await engine.instantQuery(m, query, 0);
    expect(r.type === "vector" && r.labels.map((l) => l.find((x) => x.name === "v")!.value)).toEqual(want);
  });
});

/** A range query's points at time t are the instant query's answer at t. */
async function expectStepAgrees(q: Querier, query: string, range: QueryResult, t: number): Promise<void> {
  if (range.type !== "matrix") throw new Error("want matrix");
  const inst = lines(await engine.instantQuery(q, query, t));
  const fromRange = range.series
    .filter((s) => s.timestamps.includes(t))
    .map((s) => `${fmt(s.labels)} ${formatPromValue(s.values[s.timestamps.indexOf(t)]!)}`)
    .sort();
  expect(fromRange).toEqual(inst);
}

describe("range queries", () => {
  const q = data();
  it.each([
    ["sum(temp)", 0, 4, 2, ["{} 38@0 40@120 39@240"]],
    ["rate(req_total{job=\"api\"}[2m])", 2, 4, 1, ['{instance="a",job="api"} 1@120 1@180 1@240', '{instance="b",job="api"} 2@120 2@180 2@240']],
    ["temp{room=\"kitchen\"} > 20", 0, 4, 1, ['{__name__="temp",room="kitchen"} 21@60 22@120 21@240']],
    ["time()", 0, 2, 1, ["{} 0@0 60@60 120@120"]],
    ["-temp{room=\"hall\"} or vector(1)", 0, 1, 1, ['{room="hall"} -18@0 -18@60', "{} 1@0 1@60"]],
  ])("%s from %sm to %sm step %sm", async (query, from, to, step, want) => {
    expect(lines(await engine.rangeQuery(q, query, from * MIN, to * MIN, step * MIN))).toEqual([...want].sort());
  });

  it("agrees with instant queries at every step (property)", async () => {
    const queries = [
      "sum by (job) (rate(req_total[3m]))",
      "avg(temp)",
      "max_over_time(temp[2m:30s])",
      "req_total / ignoring(instance) group_left sum by (job) (req_total)",
      "topk(2, req_total)",
      "stddev(temp) + 1",
      "histogram_quantile(0.9, lat_bucket)",
      "changes(temp[4m])",
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...queries), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 4 }), async (query, startMin, steps) => {
        const step = 30_000;
        const start = startMin * MIN;
        const range = await engine.rangeQuery(q, query, start, start + steps * step, step);
        for (let k = 0; k <= steps; k++) await expectStepAgrees(q, query, range, start + k * step);
      }),
      { numRuns: 40 },
    );
  });

  it("vector-vector operators agree with instant queries at every step, over gaps and unmatched series (property)", async () => {
    const ops = ["-", "/", "+", "*", ">", "== bool", "% on(i)", "- ignoring(side)", "< on(i)"];
    // Per series: for each of 12 minutes, a sample or not (a gap over 5m ends the lookback), its value.
    const series = fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.array(fc.option(fc.integer({ min: -3, max: 3 }), { freq: 2 }), { minLength: 12, maxLength: 12 })), {
      maxLength: 6,
    });
    await fc.assert(
      fc.asyncProperty(series, series, fc.constantFrom(...ops), fc.integer({ min: 1, max: 4 }), async (ls, rs, op, stepMin) => {
        const m = new MemoryQuerier();
        const add = (name: string, side: string, i: number, vals: readonly (number | null)[]): void => {
          const ts: number[] = [];
          const vs: number[] = [];
          vals.forEach((v, k) => {
            if (v !== null) {
              ts.push(k * MIN);
              vs.push(v);
            }
          });
          if (ts.length > 0) m.add({ __name__: name, i: String(i), side }, ts, vs);
        };
        // Indices may repeat on one side: then matching is ambiguous where both have samples.
        ls.forEach(([i, v]) => add("l", "a", i, v));
        rs.forEach(([i, v]) => add("r", "b", i, v));
        const query = `l ${op} r`;
        const step = stepMin * MIN;
        const end = 11 * MIN;
        const range: QueryResult | Error = await engine.rangeQuery(m, query, 0, end, step).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
        if (range instanceof Error) {
          // The error a range query finds is one an instant query finds at some step.
          const errs: string[] = [];
          for (let t = 0; t <= end; t += step) await engine.instantQuery(m, query, t).catch((e: unknown) => errs.push(String(e)));
          expect(errs).toContain(String(range));
          return;
        }
        for (let t = 0; t <= end; t += step) await expectStepAgrees(m, query, range, t);
      }),
      { numRuns: 300 },
    );
  });

  it("topk/bottomk pick the k largest/smallest, NaN last, at every step (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 1, max: 30 }),
        fc.boolean(),
        async (ints, nans, k, top) => {
          const m = new MemoryQuerier();
          // Two steps: values at step 1 are the negation, so the selection changes between steps.
          ints.forEach((v, i) => m.add({ __name__: "x", i: String(i) }, [0, MIN], [v, -v]));
          for (let j = 0; j < nans; j++) m.add({ __name__: "x", i: `nan${j}` }, [0, MIN], [NaN, NaN]);
          const r = await engine.rangeQuery(m, `${top ? "topk" : "bottomk"}(${k}, x)`, 0, MIN, MIN);
          if (r.type !== "matrix") throw new Error("want matrix");
          for (const [step, sign] of [
            [0, 1],
            [MIN, -1],
          ] as const) {
            const vals = ints.map((v) => v * sign).sort((a, b) => (top ? b - a : a - b));
            const want = [...vals, ...Array<number>(nans).fill(NaN)].slice(0, k).map(formatPromValue).sort();
            const got = r.series
              .filter((s) => s.timestamps.includes(step))
              .map((s) => formatPromValue(s.values[s.timestamps.indexOf(step)]!))
              .sort();
            expect(got).toEqual(want);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("sum equals the sum of the parts (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 30 }), async (vals) => {
        const m = new MemoryQuerier();
        vals.forEach((v, i) => m.add({ __name__: "x", i: String(i) }, [0], [v]));
        const r = await engine.instantQuery(m, "sum(x)", 0);
        const want = vals.reduce((a, b) => a + b, 0);
        expect(r.type === "vector" && r.values[0]).toBeCloseTo(want, 3);
      }),
      { numRuns: 100 },
    );
  });
});

describe("start timestamps (Prometheus 3.14)", () => {
  // cumulative{type="st_resets"} of start_timestamps.test: 0+60x14 from 2m with start
  // timestamps that restart the counter at 5m, 8m, 11m and 14m.
  const q = new MemoryQuerier();
  const offs = [-30e3, -90e3, -150e3, -60e3, -120e3, -180e3, -59999, -119999, -179999, -1000, -61000, -121000, -1, -60001, -120001];
  const ts = offs.map((_, i) => (i + 2) * MIN);
  q.add({ __name__: "c", type: "st" }, ts, ts.map((_, i) => i * 60), ts.map((t, i) => t + offs[i]!));
  q.add({ __name__: "c", type: "none" }, ts, ts.map((_, i) => i * 60));
  // An OTel delta series: every sample starts where the previous one ended.
  const dts = Array.from({ length: 16 }, (_, i) => (i + 2) * MIN);
  q.add({ __name__: "d" }, dts, dts.map(() => 60), dts.map((t) => t - MIN));
  it.each([
    ["increase(c[5m])", 7, 15, ['{type="none"} 300 300 300 300 300 300 300 300 300', '{type="st"} 420 780 675 675 1275 1080 900 1725 1440']],
    ["irate(c[5m])", 7, 15, ['{type="none"} 1 1 1 1 1 1 1 1 1', '{type="st"} 1 6 1 1 9 1 1 12 1']],
    ["resets(c[5m])", 7, 15, ['{type="none"} 0 0 0 0 0 0 0 0 0', '{type="st"} 1 2 1 1 2 1 1 2 1']],
    // Subqueries do not carry start timestamps.
    ["increase(c{type=\"st\"}[5m:1m])", 7, 15, ['{type="st"} 300 300 300 300 300 300 300 300 300']],
    ["increase(d[5m])", 10, 15, ["{} 300 300 300 300 300 300"]],
    ["delta(d[5m])", 10, 15, ["{} 0 0 0 0 0 0"]],
    ["start_timestamp(d)", 3, 4, ["{} 120 180"]],
    ["start_timestamp(d * 1)", 3, 4, []],
  ])("%s from %sm to %sm", async (query, from, to, want) => {
    const r = await engine.rangeQuery(q, query, from * MIN, to * MIN, MIN);
    expect(r.type === "matrix" && r.series.map((s) => `${fmt(s.labels)} ${Array.from(s.values, (v) => formatPromValue(Math.round(v * 1000) / 1000)).join(" ")}`).sort()).toEqual(want);
  });

  it("warns about overlapping start timestamps", async () => {
    const o = new MemoryQuerier();
    o.add({ __name__: "counter_total" }, [2 * MIN, 3 * MIN, 4 * MIN], [60, 120, 180], [0, MIN, MIN]);
    const r = await engine.instantQuery(o, "rate(counter_total[3m])", 4 * MIN);
    expect(r.warnings).toEqual(['PromQL warning: sample has start time that overlaps with previous sample timestamp for metric "counter_total" (1:6)']);
  });
});

describe("errors and limits", () => {
  const q = data();
  it.each([
    ["vector(1) + on() group_left req_total", "found duplicate series for the match group {} on the right hand-side of the operation"],
    ["req_total + ignoring(instance) req_total", "found duplicate series for the match group"],
    ['label_replace(temp, "room", "x", "room", ".*")', "vector cannot contain metrics with the same labelset"],
    ["topk(NaN, temp)", "Parameter value is NaN"],
    ["double_exponential_smoothing(temp[5m], 2, 0.5)", "invalid smoothing factor"],
  ])("%s fails: %s", async (query, msg) => {
    const p = engine.instantQuery(q, query, 10 * MIN);
    await expect(p).rejects.toBeInstanceOf(ExecutionError);
    await expect(p).rejects.toThrow(msg);
  });

  it("one-to-one matching on __name__ whose results lose the name collide in a range query", async () => {
    // Distinct signatures (a{x}, b{x}), equal results once `-` drops the name: Prometheus' range
    // evaluation finds two outputs with one label set at a step.
    const m = new MemoryQuerier();
    for (const name of ["a", "b"]) m.add({ __name__: name, x: "1" }, [0, MIN], [1, 2]);
    const query = 'sum({x="1"} - on(__name__, x) {x="1"})';
    await expect(engine.rangeQuery(m, query, 0, MIN, MIN)).rejects.toThrow("vector cannot contain metrics with the same labelset");
  });

  it.each([
    ["parse error", () => engine.instantQuery(q, "sum(", 0)],
    ["zero step", () => engine.rangeQuery(q, "temp", 0, MIN, 0)],
    ["end before start", () => engine.rangeQuery(q, "temp", MIN, 0, 1000)],
    ["range query of a range vector", () => engine.rangeQuery(q, "temp[1m]", 0, MIN, 1000)],
    ["sub-millisecond step", () => engine.rangeQuery(q, "temp", 0, MIN, 0.5)],
    ["NaN time", () => engine.instantQuery(q, "temp", NaN)],
  ])("%s is bad data", async (_name, run) => {
    await expect(run()).rejects.toBeInstanceOf(BadDataError);
  });

  it.each([
    ["maxSeries", { maxSeries: 2 }, "sum(req_total)"],
    ["maxSamples (selected)", { maxSamples: 10 }, "sum_over_time(req_total[10m])"],
    ["maxSamples (result)", { maxSamples: 25 }, "vector(1) + vector(2)"],
    ["maxPointsPerSeries", { maxPointsPerSeries: 5 }, "temp"],
    ["maxPointsSubqueryPerSeries", { maxPointsSubqueryPerSeries: 100 }, "max_over_time(temp[10m:1s])"],
    ["maxMemoryPerQuery (estimate)", { maxMemoryPerQuery: 1000 }, "temp"],
  ])("%s", async (_name, opts, query) => {
    const e = createEngine(opts);
    const p = e.rangeQuery(q, query, 0, 10 * MIN, 10_000);
    await expect(p).rejects.toBeInstanceOf(ExecutionError);
    await expect(p).rejects.toMatchObject({ code: "STRATA_LIMIT_EXCEEDED", type: "execution" });
  });

  it("an aborted signal cancels, a timeout times out", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(engine.instantQuery(q, "temp", 0, ac.signal)).rejects.toBeInstanceOf(CanceledError);
    // A querier slower than the timeout: the engine gives up with a timeout error.
    const slow: Querier = {
      select: (matchers, minT, maxT, hints, signal) =>
        new Promise((resolve, reject) => {
          const t = setTimeout(() => resolve(q.select(matchers, minT, maxT, hints)), 200);
          signal?.addEventListener("abort", () => {
            clearTimeout(t);
            reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
          });
        }),
    };
    await expect(createEngine({ timeout: 20 }).instantQuery(slow, "sum(temp)", 0)).rejects.toBeInstanceOf(TimeoutError);
  });

  it("times out inside a long synchronous evaluation", async () => {
    const big = new MemoryQuerier();
    const ts = new Float64Array(2000).map((_, i) => i * 15_000);
    for (let s = 0; s < 300; s++) big.adoptSeries({ __name__: "x", s: String(s) }, ts, new Float64Array(2000).map((_, i) => i + s));
    const p = createEngine({ timeout: 5 }).rangeQuery(big, "quantile_over_time(0.5, x[2h])", 0, 2000 * 15_000, 15_000);
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    // Evaluation yields to the event loop, so a caller's abort lands mid-query.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10);
    const started = performance.now();
    const c = engine.rangeQuery(big, "quantile_over_time(0.5, x[2h])", 0, 2000 * 15_000, 15_000, ac.signal);
    await expect(c).rejects.toBeInstanceOf(CanceledError);
    clearTimeout(timer);
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe("robustness", () => {
  const q = data();
  const sel = fc.constantFrom("req_total", "temp", 'temp{room="hall"}', "lat_bucket", "nope", '{__name__=~"t.*"}');
  const num = fc.constantFrom("0", "1", "-2", "0.5", "NaN", "Inf", "-Inf", "1e308");
  const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      sel,
      num,
      fc.tuple(fc.constantFrom("rate", "deriv", "changes", "max_over_time", "stddev_over_time", "last_over_time"), sel, fc.constantFrom("1m", "5m")).map(
        ([f, s, r]) => `${f}(${s}[${r}])`,
      ),
      fc.tuple(fc.constantFrom("sum", "avg", "max", "count", "stdvar", "group"), tie("e")).map(([a, e]) => `${a}(${e})`),
      fc.tuple(fc.constantFrom("topk", "bottomk", "quantile", "limitk", "limit_ratio"), num, tie("e")).map(([a, p, e]) => `${a}(${p}, ${e})`),
      fc.tuple(tie("e"), fc.constantFrom("+", "-", "*", "/", "%", "^", "==", "!=", "> bool", "and", "or", "unless", "atan2"), tie("e")).map(
        ([a, op, b]) => `(${a}) ${op} (${b})`,
      ),
      fc.tuple(fc.constantFrom("abs", "ceil", "sqrt", "ln", "sgn", "timestamp", "absent", "sort", "histogram_quantile(0.9, "), tie("e")).map(
        ([f, e]) => (f.endsWith(" ") ? `${f}${e})` : `${f}(${e})`),
      ),
      tie("e").map((e) => `(${e})[5m:1m]`).map((e) => `avg_over_time(${e})`),
    ),
  })).e;

  it("every query either answers or fails with a typed Strata error (property)", async () => {
    await fc.assert(
      fc.asyncProperty(expr, fc.boolean(), async (query, range) => {
        try {
          const r = range ? await engine.rangeQuery(q, query, 0, 10 * MIN, MIN) : await engine.instantQuery(q, query, 5 * MIN);
          expect(["scalar", "vector", "matrix", "string"]).toContain(r.type);
        } catch (err) {
          expect(err, `${query}: ${String(err)}`).toBeInstanceOf(StrataError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
