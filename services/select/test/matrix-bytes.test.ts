import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Labels } from "@strata/core";
import { formatPromValue, type MatrixSeries } from "@strata/promql";
import { labelsRoom, matrixChunks, writeLabels, type StepGrid } from "../src/matrix-bytes.js";
import { labelsJson, tsJson } from "../src/respond.js";

/** The matrix answer as strings, the plain way: what matrixChunks' bytes must equal. */
function reference(series: readonly MatrixSeries[]): string {
  const parts = series.map((s) => {
    const points = Array.from(s.timestamps, (t, i) => `[${tsJson(t)},"${formatPromValue(s.values[i]!)}"]`);
    return `{"metric":${labelsJson(s.labels)},"values":[${points.join(",")}]}`;
  });
  return `{"resultType":"matrix","result":[${parts.join(",")}]}`;
}

const bytes = (chunks: Iterable<Uint8Array>): Buffer => Buffer.concat([...chunks]);

/** Strings with what JSON escapes or encodes in more than one byte: quotes, backslashes, controls, non-ASCII, lone surrogates. */
const labelString = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', "\\", "\n", "\t", "\u0000", "\u001f", "\u007f", "é", "€", "\ud800", "\udfff", "😀", "\u2028"),
    fc.constantFrom("a", "z", "_", "0", ":", "/", ".", "-", " ", "{", "}"),
  ),
  maxLength: 12,
});
const labels: fc.Arbitrary<Labels> = fc.array(fc.record({ name: labelString, value: labelString }), { maxLength: 6 });

const STALE = new Float64Array(new BigUint64Array([0x7ff0000000000002n]).buffer)[0]!;
const value = fc.oneof(
  fc.double(),
  fc.constantFrom(0, -0, NaN, STALE, Infinity, -Infinity, 1, 0.1 + 0.2, 100 / 3, 1e-7, 1e21),
  fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.constantFrom(300, 3000)).map(([a, b]) => a / b),
);

describe("matrixChunks", () => {
  it("writes label sets exactly as JSON.stringify does (escapes, UTF-8, lone surrogates)", () => {
    fc.assert(
      fc.property(labels, fc.integer({ min: 0, max: 5 }), (ls, at) => {
        const buf = Buffer.alloc(at + labelsRoom(ls));
        const end = writeLabels(buf, at, ls);
        const want = Buffer.from(labelsJson(ls), "utf8");
        expect(buf.subarray(at, end).equals(want)).toBe(true);
        expect(JSON.parse(buf.toString("utf8", at, end))).toEqual(Object.fromEntries(ls.map((l) => [l.name, l.value])));
      }),
      { numRuns: 3000 },
    );
  });

  // Grids whose prefixes fit the table's rows, and ones whose timestamps are too long for a row
  // (20-digit or negative ones) and are written the general way.
  it.each<[string, StepGrid]>([
    ["15 s steps", { start: 1_765_130_400_000, step: 15_000, count: 60 }],
    ["half-second steps in 2001 (prefixes of 15 and 17 bytes)", { start: 999_999_000_000, step: 500, count: 60 }],
    ["millisecond steps", { start: 1_765_130_400_001, step: 7, count: 60 }],
    ["timestamps too long for a row", { start: 123_456_789_012_345_670_000_000, step: 1_000_000_000, count: 60 }],
    ["negative timestamps", { start: -1_765_130_400_123, step: 15_001, count: 60 }],
  ])("answers byte for byte what the string writer answers (%s)", (_name, grid) => {
    const series = fc.array(
      fc.record({
        labels,
        // Points on a subset of the grid, some off it (between steps, before and after it).
        points: fc.array(fc.tuple(fc.integer({ min: -2, max: grid.count + 2 }), fc.boolean(), value), { maxLength: 40 }),
      }),
      { maxLength: 6 },
    );
    fc.assert(
      fc.property(series, (list) => {
        const ms: MatrixSeries[] = list.map(({ labels: ls, points }) => {
          const ts = [...new Set(points.map(([i, off]) => grid.start + i * grid.step + (off ? 3 : 0)))].sort((a, b) => a - b);
          return { labels: ls, timestamps: Float64Array.from(ts), values: Float64Array.from(ts, (_, k) => points[k]![2]) };
        });
        const got = bytes(matrixChunks(ms, grid));
        expect(got.toString("utf8")).toBe(reference(ms));
        expect(got.equals(Buffer.from(reference(ms), "utf8"))).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("a big answer comes in chunks of about 64 KiB, a label set longer than a chunk included, byte for byte", () => {
    const grid = { start: 1_765_130_400_000, step: 15_000, count: 241 };
    const ts = Float64Array.from({ length: grid.count }, (_, i) => grid.start + i * grid.step);
    const series: MatrixSeries[] = [];
    for (let k = 0; k < 400; k++) {
      const ls = [{ name: "instance", value: `host-${k}.example.com:9100` }, { name: "job", value: "node" }];
      // One series with a label value of 200,000 characters (more than a chunk's 64 KiB, escaped).
      if (k === 123) ls.push({ name: "z", value: `"é\n${"x".repeat(200_000)}` });
      series.push({ labels: ls, timestamps: ts, values: Float64Array.from(ts, (_, i) => (i % 50 === 0 ? NaN : (k * 1000 + i) / 300)) });
    }
    const chunks = [...matrixChunks(series, grid)];
    expect(chunks.length).toBeGreaterThan(30);
    for (const c of chunks) if (c.length < 200_000) expect(c.length).toBeLessThanOrEqual(64 * 1024 + 512);
    expect(chunks.some((c) => c.length > 200_000)).toBe(true);
    expect(bytes(chunks).toString("utf8")).toBe(reference(series));
  });
});
