import { describe, expect, it } from "vitest";
import { MemoryQuerier, createEngine, formatPromValue } from "@strata/promql";
import type { Querier, QueryResult, SelectHints, SeriesStream } from "@strata/promql";
import type { LabelMatcher } from "@strata/core";

// Aggregations over a selector or over a range function of one read their selection as a
// stream of batches (Querier.selectStream): the answers are those of the whole selection, and
// only the batches in hand count against the sample limit.

const MIN = 60_000;

/** 60 series × 121 samples (one every 5 s over 10 min), values with fractions so sums are order-sensitive. */
function data(streamBatchSeries: number): MemoryQuerier {
  const q = new MemoryQuerier({ streamBatchSeries });
  const ts = Array.from({ length: 121 }, (_, i) => i * 5000);
  for (let s = 0; s < 60; s++) {
    q.add({ __name__: "req_total", job: `j${s % 3}`, instance: `i${s}` }, ts, ts.map((_, i) => i * (s + 0.1) + 1 / (s + 3)));
    q.add({ __name__: "temp", job: `j${s % 4}`, instance: `i${s}` }, ts, ts.map((_, i) => Math.sin(i + s) * 1e3 + 0.3));
  }
  return q;
}

/** The querier without selectStream: every selection is read whole. */
function whole(q: MemoryQuerier): Querier {
  return { select: (m, a, b, h, s) => q.select(m, a, b, h, s) };
}

function text(r: QueryResult): string {
  if (r.type === "vector") return r.labels.map((l, i) => `${JSON.stringify(l)} ${formatPromValue(r.values[i]!)}`).join("\n");
  if (r.type === "matrix") return r.series.map((s) => `${JSON.stringify(s.labels)} ${Array.from(s.values, formatPromValue).join(",")}`).join("\n");
  return JSON.stringify(r);
}

/** Counts the streams opened and the most samples a consumer held at once. */
function counting(q: MemoryQuerier): { querier: Querier; streams: () => number } {
  let streams = 0;
  return {
    streams: () => streams,
    querier: {
      select: (m, a, b, h, s) => q.select(m, a, b, h, s),
      selectStream: async (m: readonly LabelMatcher[], a: number, b: number, h: SelectHints, s?: AbortSignal): Promise<SeriesStream> => {
        streams++;
        return q.selectStream(m, a, b, h, s);
      },
    },
  };
}

describe("streamed aggregations", () => {
  const queries = [
    "sum(req_total)",
    "sum by (job) (rate(req_total[1m]))",
    "avg without (instance) (temp)",
    "count(count_over_time(temp[2m]))",
    "stddev by (job) (deriv(temp[3m]))",
    "max(max_over_time(temp[1m])) - min(min_over_time(temp[1m]))",
    "stdvar(quantile_over_time(0.9, temp[2m]))",
    "group by (job) (temp)",
    "sum(rate(req_total[1m] offset 1m))",
    "sum(rate(req_total[5m] @ 300))",
    // Range functions as operands of binary operators: only their step values are kept.
    "max by (job) (rate(req_total[1m]) + rate(req_total[2m] offset 1m))",
    "rate(req_total[1m]) / on (instance) group_left deriv(temp[2m])",
    "irate(req_total[1m]) > bool 0.5 * increase(req_total[90s])",
    "100 - quantile_over_time(0.5, temp[2m]) and changes(temp[1m]) > 3",
    // Range functions anywhere else: collected as step values too.
    "rate(req_total[1m])",
    "topk(3, max_over_time(temp[2m]))",
    "histogram_quantile(0.5, rate(req_total[1m]))",
    "sum_over_time(rate(req_total[1m])[3m:1m])",
  ];
  it.each(queries)("%s answers as the whole selection does (instant and range)", async (query) => {
    const engine = createEngine();
    for (const batch of [1, 7, 1000]) {
      const q = data(batch);
      const c = counting(q);
      expect(text(await engine.instantQuery(c.querier, query, 8 * MIN))).toBe(text(await engine.instantQuery(whole(q), query, 8 * MIN)));
      expect(text(await engine.rangeQuery(c.querier, query, 2 * MIN, 10 * MIN, 15_000))).toBe(text(await engine.rangeQuery(whole(q), query, 2 * MIN, 10 * MIN, 15_000)));
      expect(c.streams()).toBeGreaterThan(0);
    }
  });

  it("leaves selections that are not used series by series whole", async () => {
    const c = counting(data(4));
    const engine = createEngine();
    for (const query of ["req_total[1m]", "topk(3, temp)", "sum(temp * 2)", "sum(rate(req_total[5m:1m]))", "count_values(\"v\", temp)", "sum(absent_over_time(temp[1m]))"]) {
      await engine.instantQuery(c.querier, query, 8 * MIN);
    }
    expect(c.streams()).toBe(0);
  });

  it("counts the batches in hand against maxSamples, not the whole selection", async () => {
    // 60 series × 120 samples in (0, 10m] = 7200 samples; batches of 4 series hold 480.
    const engine = createEngine({ maxSamples: 2000 });
    const r = await engine.instantQuery(data(4), "sum(count_over_time(req_total[10m]))", 10 * MIN);
    expect(text(r)).toBe(`[] ${60 * 120}`);
    expect(r.stats?.samplesSelected).toBe(60 * 120);
    expect(r.stats?.seriesSelected).toBe(60);
    // The same selection read whole is over the limit; so is a stream whose batches are.
    await expect(engine.instantQuery(whole(data(4)), "sum(count_over_time(req_total[10m]))", 10 * MIN)).rejects.toMatchObject({ code: "STRATA_LIMIT_EXCEEDED" });
    await expect(engine.instantQuery(data(30), "sum(count_over_time(req_total[10m]))", 10 * MIN)).rejects.toMatchObject({ code: "STRATA_LIMIT_EXCEEDED" });
  });

  it("still applies maxSeries to streamed selections", async () => {
    await expect(createEngine({ maxSeries: 59 }).instantQuery(data(4), "sum(rate(req_total[1m]))", 10 * MIN)).rejects.toMatchObject({ code: "STRATA_LIMIT_EXCEEDED" });
  });

  it("closes streams a failed query did not finish", async () => {
    const q = data(2);
    let closed = 0;
    let opened = 0;
    const querier: Querier = {
      select: (m, a, b, h, s) => q.select(m, a, b, h, s),
      selectStream: async (m, a, b, h, s) => {
        opened++;
        const inner = await q.selectStream(m, a, b, h, s);
        return { ...inner, labels: inner.labels, heldSamples: inner.heldSamples, warnings: inner.warnings, nextBatch: () => inner.nextBatch(), close: () => ((closed += 1), inner.close()) };
      },
    };
    await expect(createEngine({ maxSeries: 10 }).instantQuery(querier, "sum(rate(req_total[1m])) + sum(temp)", 10 * MIN)).rejects.toMatchObject({ code: "STRATA_LIMIT_EXCEEDED" });
    expect(opened).toBe(2);
    expect(closed).toBeGreaterThanOrEqual(2);
  });
});
