import { CanceledError, ExecutionError, StrataError, TimeoutError } from "@strata/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryBudget, MemoryQuerier, createEngine } from "@strata/promql";
import type { Querier } from "@strata/promql";

/**
 * Query cost before evaluation (subquery steps, memory estimate) and the memory budget while it
 * runs: per query (maxMemoryPerQuery) and shared by all running queries (MemoryBudget).
 */

const STEP = 15_000;
const POINTS = 2000;
const END = POINTS * STEP;

/** 300 series `x` × 2000 samples, and one series `d` whose 2000 values are all distinct. */
function wide(): MemoryQuerier {
  const q = new MemoryQuerier();
  const ts = new Float64Array(POINTS).map((_, i) => i * STEP);
  for (let s = 0; s < 300; s++) q.adoptSeries({ __name__: "x", job: `j${s % 3}`, s: String(s) }, ts, new Float64Array(POINTS).map((_, i) => i + s));
  q.adoptSeries({ __name__: "d" }, ts, new Float64Array(POINTS).map((_, i) => i));
  return q;
}

/** A querier that must not be asked: the query has to be refused before selecting. */
const untouchable: Querier = {
  select: () => Promise.reject(new Error("select called: the query should have been refused before selection")),
};

const limitCode = { code: "STRATA_LIMIT_EXCEEDED", type: "execution" };

describe("cost estimate before evaluation", () => {
  const q = wide();

  it.each([
    ["a subquery with too many steps", { maxPointsSubqueryPerSeries: 100_000 }, "count_over_time(vector(1)[100y:1s])", "-search.maxPointsSubqueryPerTimeseries=100000"],
    ["a nested subquery (inner steps over the outer range)", { maxPointsSubqueryPerSeries: 100_000 }, "max_over_time(max_over_time(x[1d:1s])[30d:1d])", "it has 2592000 points per series"],
    ["a subquery whose memory is too big without data", { maxMemoryPerQuery: 100 << 20 }, "count_over_time(vector(1)[100y:1s])", "-search.maxMemoryPerQuery=104857600"],
  ])("refuses %s before selecting anything", async (_name, opts, query, msg) => {
    const p = createEngine(opts).instantQuery(untouchable, query, Date.UTC(2026, 0, 1));
    await expect(p).rejects.toBeInstanceOf(ExecutionError);
    await expect(p).rejects.toMatchObject(limitCode);
    await expect(p).rejects.toThrow(msg);
  });

  it("refuses a query whose selected series need more than maxMemoryPerQuery, naming what it selects", async () => {
    // 300 series × 2001 steps × 9 bytes ≈ 5.4 MB of intermediate values, plus the answer.
    const p = createEngine({ maxMemoryPerQuery: 4 << 20 }).rangeQuery(q, "rate(x[5m])", 0, END, STEP);
    await expect(p).rejects.toMatchObject(limitCode);
    await expect(p).rejects.toThrow(/it selects 300 series with 600000 samples in memory at once and returns up to 300 series with 2001 points each, which needs about [\d.]+ MiB according to -search.maxMemoryPerQuery=4194304/);
  });

  it("counts aggregations that stream their input as one series, so they pass where the series themselves do not", async () => {
    const e = createEngine({ maxMemoryPerQuery: 16 << 20 });
    await expect(e.rangeQuery(q, "rate(x[5m])", 0, END, STEP)).rejects.toMatchObject(limitCode);
    const r = await e.rangeQuery(q, "sum by (job) (rate(x[5m]))", 0, END, STEP);
    expect(r.type === "matrix" && r.series.length).toBe(3);
    expect(r.stats!.memoryEstimated).toBeLessThan(16 << 20);
  });

  const expr = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom("x", 'x{job="j1"}', "d", "nope", "1", "time()"),
      fc.tuple(fc.constantFrom("rate", "max_over_time", "count_over_time", "quantile_over_time(0.5, "), fc.constantFrom("x", "d"), fc.constantFrom("1m", "5m")).map(
        ([f, s, r]) => (f.endsWith(" ") ? `${f}${s}[${r}])` : `${f}(${s}[${r}])`),
      ),
      fc.tuple(fc.constantFrom("sum", "avg", "max", "count", "stddev"), fc.constantFrom("", " by (job)", " without (s)"), tie("e")).map(([a, g, e]) => `${a}${g}(${e})`),
      fc.tuple(fc.constantFrom("topk(2, ", "quantile(0.5, ", "limitk(3, "), tie("e")).map(([a, e]) => `${a}${e})`),
      fc.tuple(tie("e"), fc.constantFrom("+", "*", "> bool", "and", "or", "unless"), tie("e")).map(([a, op, b]) => `(${a}) ${op} (${b})`),
      fc.tuple(fc.constantFrom("abs", "sort", "timestamp", "absent", "vector"), tie("e")).map(([f, e]) => (f === "vector" ? "vector(1)" : `${f}(${e})`)),
      tie("e").map((e) => `avg_over_time((${e})[10m:1m])`),
    ),
  })).e;

  it("the estimate bounds what evaluation counts (property)", async () => {
    const e = createEngine();
    await fc.assert(
      fc.asyncProperty(expr, fc.boolean(), async (query, range) => {
        let r;
        try {
          r = range ? await e.rangeQuery(q, query, 0, 200 * STEP, STEP) : await e.instantQuery(q, query, 100 * STEP);
        } catch (err) {
          // Prometheus' own errors (parse errors, duplicate series after a binary operation) are fine.
          expect(err).toBeInstanceOf(StrataError);
          return;
        }
        expect(r.stats!.memoryCharged, query).toBeLessThanOrEqual(r.stats!.memoryEstimated);
      }),
      { numRuns: 100 },
    );
  });
});

describe("memory budget while running", () => {
  const q = wide();

  it("stops a query whose evaluation outgrows maxMemoryPerQuery although its estimate fit", async () => {
    // count_values makes one series per distinct value: 2000 series from 1, more than estimated.
    const query = 'count_values("v", d)';
    const free = await createEngine().rangeQuery(q, query, 0, END, STEP);
    const { memoryEstimated, memoryCharged } = free.stats!;
    expect(memoryCharged).toBeGreaterThan(2 * memoryEstimated);
    const limit = Math.ceil((memoryEstimated + memoryCharged) / 2);
    const p = createEngine({ maxMemoryPerQuery: limit }).rangeQuery(q, query, 0, END, STEP);
    await expect(p).rejects.toMatchObject(limitCode);
    await expect(p).rejects.toThrow(`evaluation so far allocated about`);
  });

  it("shares one budget among running queries and gives every reservation back", async () => {
    const budget = new MemoryBudget(96 << 20);
    const e = createEngine({ memoryBudget: budget });
    const query = "rate(x[5m])";
    const first = await e.rangeQuery(q, query, 0, END, STEP);
    expect(budget.used).toBe(0);
    // Another holder takes all but a few MB: the same query no longer fits.
    expect(budget.tryReserve(budget.limit - first.stats!.memoryEstimated / 2)).toBe(true);
    const p = e.rangeQuery(q, query, 0, END, STEP);
    await expect(p).rejects.toMatchObject(limitCode);
    await expect(p).rejects.toThrow(/running queries already hold [\d.]+ MiB of the total -search.maxMemoryTotal=100663296/);
    budget.release(budget.used);
    // Concurrent queries within the budget all answer; afterwards nothing stays reserved.
    const all = await Promise.all([1, 2, 3].map(() => e.rangeQuery(q, query, 0, END, STEP)));
    expect(all.map((r) => r.type)).toEqual(["matrix", "matrix", "matrix"]);
    expect(budget.used).toBe(0);
  });

  it("gives the reservation back when a query fails, times out or is canceled", async () => {
    const budget = new MemoryBudget(1 << 30);
    const ac = new AbortController();
    const slow = createEngine({ memoryBudget: budget, timeout: 5 }).rangeQuery(q, "quantile_over_time(0.5, x[2h])", 0, END, STEP);
    const canceled = createEngine({ memoryBudget: budget }).rangeQuery(q, "quantile_over_time(0.5, x[2h])", 0, END, STEP, ac.signal);
    setTimeout(() => ac.abort(), 5);
    const failed = createEngine({ memoryBudget: budget }).instantQuery(q, "d + on() group_left x", 100 * STEP);
    // All three handled at once: one awaited after another settles would be an unhandled rejection.
    await Promise.all([
      expect(slow).rejects.toBeInstanceOf(TimeoutError),
      expect(canceled).rejects.toBeInstanceOf(CanceledError),
      expect(failed).rejects.toBeInstanceOf(ExecutionError),
    ]);
    expect(budget.used).toBe(0);
  });
});
