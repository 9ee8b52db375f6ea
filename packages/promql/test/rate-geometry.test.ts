import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rollupSeries } from "@strata/promql";
import { rateGeometryResetTerms, takeRateGeometryReads } from "../src/engine/range-functions.js";

/**
 * rate/increase/delta read the windows of a series whose timestamps and steps are those of the
 * series before (series scraped together) from what the first walk kept: every value must be the
 * walk's, bit for bit — resets, NaN, values near zero (the extrapolation towards zero), windows
 * with fewer than two samples, steps that go back (subqueries), ±0.
 */

const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b) => b.toString(16));
const meter = () => ({ samplesScanned: 0, sliceUsedUp: () => false });

/** A series' values: a counter with resets, or anything (delta's gauges, NaN, negatives, zeros). */
const valuesOf = (n: number) =>
  fc.oneof(
    fc.array(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(-1)), { minLength: n, maxLength: n }).map((steps) => {
      let v = 0;
      // -1: a reset to a small value.
      return Float64Array.from(steps, (d) => (v = d < 0 ? 1 : v + d));
    }),
    fc.array(fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -5, max: 5 }), fc.constantFrom(0, -0, 1e-300)), { minLength: n, maxLength: n }).map((a) => Float64Array.from(a)),
    fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }).map((steps) => {
      let v = 0.5;
      return Float64Array.from(steps, (d) => (v += d * 0.25));
    }),
  );

const shape = fc
  .record({
    gaps: fc.array(fc.oneof(fc.constant(15_000), fc.integer({ min: 1, max: 40_000 })), { minLength: 1, maxLength: 60 }),
    t0: fc.oneof(fc.constant(0), fc.integer({ min: -100_000, max: 1_700_000_000_000 })),
    range: fc.oneof(fc.constant(60_000), fc.integer({ min: 1, max: 200_000 })),
    stepMs: fc.integer({ min: 1, max: 60_000 }),
    steps: fc.integer({ min: 1, max: 40 }),
    from: fc.integer({ min: -100_000, max: 600_000 }),
    back: fc.boolean(),
  })
  .chain((s) => {
    const ts = new Float64Array(s.gaps.length);
    let t = s.t0;
    s.gaps.forEach((g, i) => (ts[i] = t += g));
    const ends = Float64Array.from({ length: s.steps }, (_, k) => s.t0 + s.from + k * s.stepMs);
    // A subquery's windows can restart: steps that go back.
    if (s.back && s.steps > 2) ends[Math.floor(s.steps / 2)] = ends[0]!;
    return fc.record({
      ts: fc.constant(ts),
      ends: fc.constant(ends),
      range: fc.constant(s.range),
      // Series in order: each shares the timestamps of the first, or has its own (-1).
      series: fc.array(fc.tuple(valuesOf(ts.length), fc.oneof(fc.constant(0), fc.constant(0), fc.constant(-1))), { minLength: 1, maxLength: 6 }),
      func: fc.constantFrom("rate", "increase", "delta"),
    });
  });

describe("rate over series with the same timestamps", () => {
  it("reads the remembered windows and gives the walk's values bit for bit", () => {
    let reads = 0;
    fc.assert(
      fc.property(shape, ({ ts, ends, range, series, func }) => {
        const n = ends.length;
        const inputs = series.map(([vs, own]) => ({ ts: own < 0 ? ts.map((t, i) => t + (i % 3)) : ts, vs }));
        takeRateGeometryReads();
        // The walk's answer for each series: the remembered windows forgotten before each.
        const want = inputs.map(({ ts: t, vs }) => {
          takeRateGeometryReads();
          const values = new Float64Array(n);
          const present = new Uint8Array(n);
          const m = meter();
          const got = rollupSeries(func, t, vs, ends, range, values, present, m);
          return { got, scanned: m.samplesScanned, values: bits(values.map((v, k) => (present[k] ? v : 0))), present: [...present] };
        });
        takeRateGeometryReads();
        // The same series one after another, twice (so that every one can be read from what the walk kept).
        for (const round of [0, 1]) {
          inputs.forEach(({ ts: t, vs }, i) => {
            const values = new Float64Array(n).fill(round === 0 ? 7 : -7);
            const present = new Uint8Array(n);
            const m = meter();
            const got = rollupSeries(func, t, vs, ends, range, values, present, m);
            expect({ got, scanned: m.samplesScanned, values: bits(values.map((v, k) => (present[k] ? v : 0))), present: [...present] }).toEqual(want[i]);
          });
        }
        reads += takeRateGeometryReads();
      }),
      { numRuns: 400 },
    );
    expect(reads).toBeGreaterThan(400);
  });

  it.each([
    ["rate", 0.5],
    ["increase", 150],
    ["delta", 150],
  ])("%s of three series scraped together reads the windows of the first walk twice", (func, want) => {
    const ts = Float64Array.from({ length: 40 }, (_, i) => 1_000_000 + i * 15_000);
    const ends = Float64Array.from({ length: 20 }, (_, k) => 1_300_000 + k * 15_000);
    takeRateGeometryReads();
    for (let s = 0; s < 3; s++) {
      const vs = Float64Array.from(ts, (_, i) => 1000 * (s + 1) + 7.5 * i);
      const values = new Float64Array(20);
      const present = new Uint8Array(20);
      expect(rollupSeries(func, ts, vs, ends, 300_000, values, present, meter())).toBe(20);
      expect(values[19]).toBeCloseTo(want, 9);
    }
    expect(takeRateGeometryReads()).toBe(2);
  });

  it.each(["rate", "increase"])("%s of three counters with resets, scraped together: read from the first walk, the walk's values", (func) => {
    const ts = Float64Array.from({ length: 40 }, (_, i) => 1_000_000 + i * 15_000);
    const ends = Float64Array.from({ length: 20 }, (_, k) => 1_300_000 + k * 15_000);
    const run = (s: number) => {
      // Resets at samples 12 + s and 30: windows with none, one and two of them.
      const vs = Float64Array.from(ts, (_, i) => (i >= 30 ? 3 * (i - 30) : i >= 12 + s ? 5 * (i - 12 - s) : 1000 + 7.5 * i));
      const values = new Float64Array(20);
      const present = new Uint8Array(20);
      expect(rollupSeries(func, ts, vs, ends, 300_000, values, present, meter())).toBe(20);
      return bits(values);
    };
    const want = [0, 1, 2].map((s) => {
      takeRateGeometryReads();
      return run(s);
    });
    takeRateGeometryReads();
    for (let s = 0; s < 3; s++) expect(run(s)).toEqual(want[s]);
    expect(takeRateGeometryReads()).toBe(2);
  });

  it.each([
    // Two samples 10 s apart 10.6 s after the window's start: toward zero when the first value is
    // under 1.06 × the increase, whichever clause of the test lets it be tried.
    ["increase", [100, 195]],
    ["rate", [100, 195]],
    ["increase", [50, 195]],
    ["increase", [200, 201]],
    ["delta", [100, 195]],
  ])("%s of %j over a window of two samples, three series alike: the walk's value every time", (func, vals) => {
    const ts = Float64Array.from([1_010_600, 1_020_600]);
    const ends = Float64Array.from([1_030_000]);
    const vs = Float64Array.from(vals);
    const run = () => {
      const values = new Float64Array(1);
      rollupSeries(func, ts, vs, ends, 30_000, values, new Uint8Array(1), meter());
      return bits(values);
    };
    takeRateGeometryReads();
    const want = run();
    takeRateGeometryReads();
    for (let s = 0; s < 3; s++) expect(run()).toEqual(want);
    expect(takeRateGeometryReads()).toBe(2);
  });
});

describe("a counter's resets in windows read from the remembered geometry", () => {
  it.each(["rate", "increase"])("%s over 1 h windows adds each window's one reset once, without walking the window's 240 samples", (func) => {
    const ts = Float64Array.from({ length: 1441 }, (_, i) => i * 15_000);
    const ends = Float64Array.from({ length: 301 }, (_, k) => 3_600_000 + k * 60_000);
    // One reset at sample 700: the windows whose (start, end] holds it are the ones that add it.
    const vs = (s: number) => Float64Array.from(ts, (_, i) => (i >= 700 ? 5 * (i - 700) : 100 * s + 3 * i));
    const holding = Array.from(ends).filter((e) => e - 3_600_000 < ts[699]! && ts[700]! <= e).length;
    const run = (s: number) => {
      const values = new Float64Array(ends.length);
      const present = new Uint8Array(ends.length);
      rollupSeries(func, ts, vs(s), ends, 3_600_000, values, present, meter());
      return bits(values);
    };
    takeRateGeometryReads();
    const want = [0, 1, 2].map((s) => {
      takeRateGeometryReads();
      return run(s);
    });
    takeRateGeometryReads();
    expect([0, 1, 2].map(run)).toEqual(want);
    // The second and third series are read from the first one's windows.
    expect(rateGeometryResetTerms()).toBe(2 * holding);
    expect(takeRateGeometryReads()).toBe(2);
  });
});
