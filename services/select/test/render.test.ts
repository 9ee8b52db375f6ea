import { createServer, request, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatPromValue } from "@strata/promql";
import { matrixChunks } from "../src/matrix-bytes.js";
import { fastValue, successStream } from "../src/render.js";
import { VALUE_MAX_BYTES, writeValue } from "../src/value-bytes.js";

const text = (chunks: Iterable<Uint8Array>): string => Buffer.concat([...chunks]).toString("utf8");

/** The JSON renderer must write values exactly like formatPromValue. */

/** The doubles up to `spread` steps of the bit pattern away from x. */
const neighbours = (x: number, spread: number) => fc.integer({ min: -spread, max: spread }).map((d) => {
  const f = new Float64Array([x]);
  const b = new BigInt64Array(f.buffer);
  b[0] = b[0]! + BigInt(d);
  return f[0]!;
});

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
    const near = (x: number) => neighbours(x, 64);
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

  it("writeValue's own shortest digits match V8's for a million doubles and the classic hard cases", () => {
    const buf = Buffer.alloc(VALUE_MAX_BYTES + 8);
    const same = (v: number): void => {
      const want = formatPromValue(v);
      // Once as it comes, once right after a 17-digit value (then the wide way is tried first,
      // also for values that have ≤ 15 digits).
      let end = writeValue(buf, 3, v);
      expect(buf.toString("latin1", 3, end)).toBe(want);
      writeValue(buf, 3, 1 / 3);
      end = writeValue(buf, 3, v);
      expect(buf.toString("latin1", 3, end)).toBe(want);
    };
    const bits = (hi: number, lo: number): number => {
      const f = new Float64Array(1);
      const u = new Uint32Array(f.buffer);
      u[0] = lo;
      u[1] = hi;
      return f[0]!;
    };
    const near = (x: number) => neighbours(x, 3);
    fc.assert(
      fc.property(
        fc.oneof(
          // Any bit pattern whose exponent lands in the fast paths' range [1e-7, 1e15).
          fc.tuple(fc.integer({ min: 1023 - 24, max: 1023 + 50 }), fc.integer({ min: 0, max: 0xfffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean())
            .map(([e, m1, m0, neg]) => bits(((neg ? 0x800 : 0) | e) * 0x100000 + m1, m0)),
          fc.double({ min: -1e15, max: 1e15, noNaN: true }),
          fc.double(),
          // Rates and ratios: an integer over another.
          fc.tuple(fc.integer({ min: -1e9, max: 1e9 }), fc.integer({ min: 1, max: 1e6 })).map(([a, b]) => a / b),
          // Dyadic values with few significant bits: exact decimal expansions of 17–18 digits put x
          // exactly halfway between two candidates (the tie goes to the even digit string).
          fc.tuple(fc.integer({ min: 1, max: 2 ** 30 }), fc.integer({ min: -40, max: 20 })).map(([m, e]) => m * 2 ** e),
          // Powers of two (the lower gap is half the upper one) and of ten, and their neighbours.
          fc.integer({ min: -24, max: 50 }).map((e) => 2 ** e).chain(near),
          fc.integer({ min: -7, max: 15 }).map((e) => 10 ** e).chain(near),
        ),
        same,
      ),
      { numRuns: 1_000_000 },
    );
    // Known hard cases of shortest-digit printers (Ryu's and Schubfach's test suites, Paxson's
    // list, midpoints and round-to-even ties) and the domain's edges.
    for (const v of [
      0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3, 5e-324, Number.MAX_VALUE, 2.2250738585072014e-308, 2.225073858507201e-308,
      9007199254740991, 9007199254740992, Number("9007199254740993"), 1.2345678901234567, 1.9430376160308388e16,
      Number("4.3816050601147837e18"), 2.98023223876953125e-8, 9.5367431640625e-7, 1.8531501765868567e21, 2 ** -20, 2 ** 49,
      8.41e21, 5.764607523034235e39, 1.152921504606847e40, 2.305843009213694e40, Number("9.007199254740993e15"),
      0.30000000000000004, 1.0000000000000002, 0.9999999999999999, 123456789012345.67, 999999999999999.9,
      1e-7, Number("1.0000000000000001e-7"), Number("9.999999999999999e-7"), 1e-6, 999999999999999.8, 1e15 - 0.125, 4.35, 2.675,
      1.005, 1.0000000000000004, 0.6822871999174, 0.8461538461538461, 16.666666666666668, Number("7.0000000000000009"),
      3.3333333333333335, 5e-7, 1.7e-6, 6.103515625e-5, 4.0000000000000036, 214748364.7, 2147483647.5,
      4294967295.9999995, 1e14 + 0.5, 1e14 - 0.015625, 12345678.901234567,
    ]) {
      same(v);
      same(-v);
    }
  }, 600_000);

  it("writeValue: every digit count and point position, at any offset; nothing before pos and at most 3 bytes after the end touched", () => {
    // The digits go four at a time, left to right, and the integer digits move one byte left for
    // the point: each shape (1–17 significant digits, the point before, inside or after them, a
    // sign) at offsets of each residue mod 4, in a buffer of sentinel bytes.
    const buf = Buffer.alloc(VALUE_MAX_BYTES + 16);
    const SENTINEL = 0xa5;
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let checked = 0;
    for (let nd = 1; nd <= 17; nd++) {
      for (let e = -8 - nd; e <= 16 - nd; e++) {
        for (let round = 0; round < 6; round++) {
          let digits = String(1 + rnd(9));
          for (let i = 1; i < nd; i++) digits += String(i === nd - 1 ? 1 + rnd(9) : rnd(10));
          const v = (round % 2 === 0 ? 1 : -1) * Number(`${digits}e${e}`);
          const want = formatPromValue(v);
          // After a 17-digit value too, so that the wide way is tried first.
          if (round >= 4) writeValue(buf, 0, 1 / 3);
          const pos = 3 + (round % 4);
          buf.fill(SENTINEL);
          const end = writeValue(buf, pos, v);
          expect(buf.toString("latin1", pos, end)).toBe(want);
          const untouched = (from: number, to: number): boolean => buf.subarray(from, to).every((b) => b === SENTINEL);
          if (!untouched(0, pos) || !untouched(end + 3, buf.length)) expect.fail(`${want} at ${pos}: bytes outside [${pos}, ${end + 3}) written`);
          checked++;
        }
      }
    }
    expect(checked).toBe(17 * 25 * 6);
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

  it("matrixChunks: series on parts of the grid, in any order, get each step's own timestamp (prefixes made as needed)", () => {
    const start = 1_700_000_000_000;
    const step = 60_000;
    const n = 50;
    // A series with the odd steps, one with every third step from the end backwards in another
    // series' order, one with all steps, one at t = 0 off the grid: each step's prefix is first
    // made by whichever series reaches it.
    const pick = (f: (i: number) => boolean) => Float64Array.from(Array.from({ length: n }, (_, i) => i).filter(f), (i) => start + i * step);
    const lists = [pick((i) => i % 2 === 1), pick((i) => i % 3 === 2), pick(() => true), Float64Array.of(0, start + step)];
    const series = lists.map((ts, k) => ({ labels: [{ name: "k", value: String(k) }], timestamps: ts, values: Float64Array.from(ts, (t) => t / 1e9 + k) }));
    const d = JSON.parse(text(matrixChunks(series, { start, step, count: n }))) as { result: { values: [number, string][] }[] };
    d.result.forEach((r, k) => {
      expect(r.values.map(([t]) => Math.round(t * 1000))).toEqual([...lists[k]!]);
      expect(r.values.map(([, v]) => v)).toEqual([...series[k]!.values].map((v) => formatPromValue(v)));
    });
  });
});

describe("successStream", () => {
  /** Serves one answer made by successStream from `parts` and reads it: headers, body, and the number of socket writes. */
  async function serve(parts: () => Iterable<string | Uint8Array>): Promise<{ headers: IncomingHttpHeaders; body: string; writes: number }> {
    let writes = 0;
    const server = createServer((_req, res) => {
      // Each call of _writeGeneric is one write (or writev) system call on the socket.
      const sock = res.socket as unknown as { _writeGeneric: (...a: unknown[]) => unknown };
      const g = sock._writeGeneric.bind(sock);
      sock._writeGeneric = (...a: unknown[]) => (writes++, g(...a));
      void successStream(res, parts(), { isPartial: false, warnings: ["w"] });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      return await new Promise((resolve, reject) => {
        request({ port: (server.address() as AddressInfo).port, host: "127.0.0.1" }, (r) => {
          const chunks: Buffer[] = [];
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("end", () => resolve({ headers: r.headers, body: Buffer.concat(chunks).toString("utf8"), writes }));
          r.on("error", reject);
        }).end();
      });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }

  it("a small answer goes out in one write with its content-length", async () => {
    const r = await serve(() => ['{"resultType":"vector","result":[', '{"metric":{"a":"é"},"value":[1,"2"]}', "]}"]);
    const want = '{"status":"success","isPartial":false,"data":{"resultType":"vector","result":[{"metric":{"a":"é"},"value":[1,"2"]}]},"warnings":["w"]}';
    expect(r.body).toBe(want);
    expect(r.headers["content-length"]).toBe(String(Buffer.byteLength(want)));
    expect(r.headers["transfer-encoding"]).toBeUndefined();
    expect(r.headers["content-type"]).toBe("application/json");
    expect(r.writes).toBe(1);
  });

  it("a large answer is chunked, written batch by batch, and whole", async () => {
    const part = Buffer.from(`"${"x".repeat(100_000)}",`);
    const r = await serve(function* () {
      yield "[";
      for (let i = 0; i < 10; i++) yield part;
      yield "0]";
    });
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    expect(r.headers["content-length"]).toBeUndefined();
    const d = JSON.parse(r.body) as { data: unknown[]; warnings: string[] };
    expect(d.data).toHaveLength(11);
    expect(d.warnings).toEqual(["w"]);
    expect(r.writes).toBeGreaterThan(1);
  });
});
