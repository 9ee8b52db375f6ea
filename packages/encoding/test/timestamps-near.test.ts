import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ByteBuffer, decodeTimestamps, decodeTimestampsNear, encodeTimestamps, IntEncoding } from "@strata/encoding";
import { mulberry32 } from "./helpers.js";

/**
 * decodeTimestampsNear: exact wherever a value lies in one of the intervals, ascending
 * throughout, and no placeholder inside an interval — on scrape-like blocks with jitter, missed
 * scrapes (level changes) and restarts, against the whole decode.
 */

const block = fc.record({ n: fc.integer({ min: 1, max: 3000 }), jitter: fc.constantFrom(0, 5, 25, 400), seed: fc.integer(), gaps: fc.boolean() }).map(({ n, jitter, seed, gaps }) => {
  const r = mulberry32(seed);
  const len = 1 + Math.floor(r() * n);
  const ts = new Float64Array(len);
  let t = 1_700_000_000_000 + Math.floor(r() * 1e6);
  for (let i = 0; i < len; i++) {
    ts[i] = t + Math.floor(r() * (2 * jitter + 1)) - jitter;
    t += 15_000 * (gaps && r() < 0.01 ? 1 + Math.floor(r() * 200) : 1);
  }
  for (let i = 1; i < len; i++) if (ts[i]! <= ts[i - 1]!) ts[i] = ts[i - 1]! + 1;
  return ts;
});

// Windows from 1 ms to 15 s wide, placed to the millisecond, so some start or end inside a
// group's jitter.
const grid = fc.record({ first: fc.integer({ min: -100, max: 4000 }), step: fc.integer({ min: 0, max: 3000 }), count: fc.integer({ min: 1, max: 150 }), range: fc.integer({ min: 1, max: 15_000 }), jiggle: fc.integer({ min: -15_000, max: 15_000 }) });

describe("decodeTimestampsNear", () => {
  it("property: exact inside the intervals, ascending, placeholders outside them", () => {
    let skipped = 0;
    let linear = 0;
    fc.assert(
      fc.property(block, grid, (ts, g) => {
        const b = new ByteBuffer(64);
        const tag = encodeTimestamps(ts, b);
        if (tag === IntEncoding.LinearPacked) linear++;
        const whole = new Float64Array(ts.length);
        decodeTimestamps(tag, b.view(), ts.length, whole);
        const t0 = ts[0]!;
        // Half the grids start with a window ending on a sample (the last of a group, often).
        const onSample = whole[Math.min(ts.length - 1, Math.floor((g.first * ts.length) / 4000) | 127)]!;
        const intervals = { first: g.jiggle > 0 ? onSample : t0 + g.first * 15_000 + g.jiggle, step: g.step * 1_000 + (g.jiggle & 1023), count: g.step === 0 ? 1 : g.count, range: g.range };
        const got = new Float64Array(ts.length);
        if (decodeTimestampsNear(tag, b.view(), ts.length, got, intervals)) skipped++;
        const inside = (t: number) => {
          for (let k = 0; k < intervals.count; k++) {
            const e = intervals.first + k * intervals.step;
            if (t > e - intervals.range && t <= e) return true;
          }
          return false;
        };
        for (let i = 0; i < ts.length; i++) {
          if (i > 0) expect(got[i]!).toBeGreaterThanOrEqual(got[i - 1]!);
          if (inside(whole[i]!) || inside(got[i]!)) expect([i, got[i]]).toEqual([i, whole[i]]);
        }
      }),
      { numRuns: 300 },
    );
    expect(linear).toBeGreaterThan(100);
    expect(skipped).toBeGreaterThan(50);
  });
});
