import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatPromValue } from "@strata/promql";
import { fastValue, matrixChunks } from "../src/render.js";
import { VALUE_MAX_BYTES, writeValue } from "../src/value-bytes.js";

const text = (chunks: Iterable<Uint8Array>): string => Buffer.concat([...chunks]).toString("utf8");

/** The JSON renderer must write values exactly like formatPromValue. */

describe("rendering", () => {
  it("fastValue writes exactly what formatPromValue writes", () => {
    fc.assert(
      fc.property(fc.oneof(
          fc.double(),
          fc.integer().map((x) => x / 100),
          fc.integer(),
          fc.maxSafeInteger(),
          fc.double({ min: -2e15, max: 2e15 }).map(Math.trunc),
          fc.constantFrom(0, -0, 1e21, 1e-7, 123456789012345680000, 1e8, -1e8, 100000001, 999999999999999, 1e15, -1e15, 2 ** 31, -(2 ** 31)),
        ), (v) => {
        expect(fastValue(v)).toBe(formatPromValue(v));
      }),
      { numRuns: 2000 },
    );
  });

  it("writeValue writes exactly the bytes of formatPromValue for every double", () => {
    const buf = Buffer.alloc(VALUE_MAX_BYTES + 8);
    // Decimals of up to 17 significant digits at any scale a dashboard sees (the fast path's
    // domain and its edges), raw bit patterns (subnormals, NaNs, huge and tiny exponents),
    // integers near 2^53 and the fast path's bounds (1e-7, 1e15, powers of ten).
    const decimal = fc
      .tuple(fc.bigInt({ min: 1n, max: 10n ** 17n }), fc.integer({ min: -30, max: 30 }), fc.boolean())
      .map(([m, e, neg]) => (neg ? -1 : 1) * Number(`${m}e${e}`));
    const near = (x: number) => fc.integer({ min: -64, max: 64 }).map((d) => {
      const f = new Float64Array([x]);
      const b = new BigInt64Array(f.buffer);
      b[0] = b[0]! + BigInt(d);
      return f[0]!;
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double(),
          fc.double({ min: -1e6, max: 1e6 }),
          fc.double({ min: 0, max: 1, noDefaultInfinity: true }),
          decimal,
          fc.float64Array({ minLength: 1, maxLength: 1 }).map((a) => a[0]!),
          fc.maxSafeInteger(),
          fc.constantFrom(1e-7, 1e15, 2 ** 53, 0.1, 1e-8, 1e14, 999999999999999.9, 5e-324).chain(near),
          fc.integer({ min: -22, max: 22 }).map((e) => 10 ** e).chain(near),
          fc.constantFrom(0, -0, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, -Number.MIN_VALUE, 2.2250738585072014e-308),
        ),
        (v) => {
          // Repeated so that both ways run: after a 16–17-digit value the next ones skip the try.
          for (let i = 0; i < 9; i++) {
            const end = writeValue(buf, 3, v);
            expect(buf.toString("latin1", 3, end)).toBe(formatPromValue(v));
          }
        },
      ),
      { numRuns: 50_000 },
    );
  });

  it.each([
    ["on the grid", 0],
    ["off the grid", 7],
  ])("matrixChunks gives valid JSON with exact timestamps and values (%s)", (_name, skew) => {
    const start = 1_700_000_000_123;
    const step = 15_000;
    const n = 40_000; // several chunks
    const ts = Float64Array.from({ length: n }, (_, i) => start + i * step + (i % 3 === 0 ? skew : 0));
    const vs = Float64Array.from({ length: n }, (_, i) => (i % 5 === 0 ? NaN : i % 7 === 0 ? -Infinity : Math.sin(i) * 1e6));
    const series = [
      { labels: [{ name: "__name__", value: 'a"b' }], timestamps: ts, values: vs },
      { labels: [], timestamps: new Float64Array(0), values: new Float64Array(0) },
    ];
    const chunks = [...matrixChunks(series, { start, step, count: n })];
    expect(chunks.length).toBeGreaterThan(1);
    const d = JSON.parse(text(chunks)) as { resultType: string; result: { metric: Record<string, string>; values: [number, string][] }[] };
    expect(d.resultType).toBe("matrix");
    expect(d.result[0]!.metric).toEqual({ __name__: 'a"b' });
    expect(d.result[1]!.values).toEqual([]);
    d.result[0]!.values.forEach(([t, v], i) => {
      expect(Math.round(t * 1000)).toBe(ts[i]);
      expect(v).toBe(formatPromValue(vs[i]!));
    });
  });

  it("matrixChunks writes runs of equal values, signed zeros and NaNs exactly (the repeated-value shortcut)", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, -0, NaN, 1, 1.5, -2, Infinity, 1e-7, 0.1 + 0.2), { minLength: 1, maxLength: 60 }), (list) => {
        const vs = Float64Array.from(list);
        const ts = Float64Array.from(list, (_, i) => 1000 * i);
        const chunks = matrixChunks([{ labels: [], timestamps: ts, values: vs }], { start: 0, step: 1000, count: list.length });
        const d = JSON.parse(text(chunks)) as { result: { values: [number, string][] }[] };
        expect(d.result[0]!.values.map(([, v]) => v)).toEqual(list.map((v) => formatPromValue(v)));
      }),
      { numRuns: 500 },
    );
  });
});
