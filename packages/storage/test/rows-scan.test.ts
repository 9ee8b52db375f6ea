import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BadDataError, RowsBatchReader, RowsBatchWriter } from "@strata/core";
import { RowsScanner } from "../src/rows-scan.js";

interface Row {
  name: Uint8Array;
  ts: number;
  v: number;
}

function scanAll(b: Uint8Array): { name: string; ts: number; v: number; same: boolean }[] {
  const out: { name: string; ts: number; v: number; same: boolean }[] = [];
  const r = new RowsScanner(b);
  while (r.next()) out.push({ name: Buffer.from(r.name()).toString("hex"), ts: r.timestamp, v: r.value, same: r.sameAsPrevious });
  return out;
}

function readAll(b: Uint8Array): { name: string; ts: number; v: number; same: boolean }[] {
  const out: { name: string; ts: number; v: number; same: boolean }[] = [];
  const r = new RowsBatchReader(b);
  while (r.next()) out.push({ name: Buffer.from(r.metricName).toString("hex"), ts: r.timestamp, v: r.value, same: r.sameAsPrevious });
  return out;
}

/** Outcome of a full scan: the rows, or the error's class and message. */
function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (err) {
    return { err: err instanceof BadDataError ? `${err.code}: ${err.message}` : String(err) };
  }
}

const rowArb: fc.Arbitrary<Row> = fc.record({
  name: fc.uint8Array({ minLength: 1, maxLength: 200 }),
  ts: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }),
  v: fc.double(),
});

describe("RowsScanner", () => {
  it.each([
    ["empty batch", []],
    ["first row refers to a previous name", [0, ...new Array<number>(16).fill(0)]],
    ["unterminated length varint", [0x80]],
    ["length varint too long", [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ["name overruns the batch", [5, 1, 2]],
    ["truncated timestamp/value", [1, 65, 0, 0, 0]],
    ["one good row", [1, 65, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]],
    ["good row then a repeat", [1, 65, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
    ["two-byte length", [0x81, 0x01, ...new Array<number>(129 + 16).fill(7)]],
  ])("behaves like RowsBatchReader: %s", (_, bytes) => {
    const b = Uint8Array.from(bytes);
    expect(outcome(() => scanAll(b))).toEqual(outcome(() => readAll(b)));
  });

  it("agrees with RowsBatchReader on written batches (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(rowArb, fc.boolean()), { maxLength: 50 }), (rows) => {
        const w = new RowsBatchWriter(64);
        let prev: Uint8Array | undefined;
        for (const [r, repeat] of rows) {
          const name = repeat && prev !== undefined ? prev : r.name;
          w.add(name, r.ts, r.v);
          prev = name;
        }
        const b = w.finish();
        expect(scanAll(b)).toEqual(readAll(b));
        // also when the batch sits at an odd offset inside a larger Buffer
        const big = Buffer.alloc(b.length + 3);
        big.set(b, 3);
        expect(scanAll(big.subarray(3))).toEqual(readAll(b));
      }),
      { numRuns: 200 },
    );
  });

  it("random and mutated batches only yield the same result or BadDataError as RowsBatchReader (fuzz)", () => {
    const w = new RowsBatchWriter(64);
    w.add(new TextEncoder().encode("\0\0\0\0\0\0\0\0\x08__name__\x02up"), 1_700_000_000_000, 1);
    w.add(new TextEncoder().encode("\0\0\0\0\0\0\0\0\x08__name__\x02up"), 1_700_000_000_001, 2);
    w.add(new TextEncoder().encode("\0\0\0\0\0\0\0\0\x08__name__\x04down"), 1_700_000_000_000, NaN);
    const seed = w.finish();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((muts) => {
            const b = seed.slice();
            for (const [i, v] of muts) b[i] = v;
            return b;
          }),
          fc.nat(seed.length).map((n) => seed.slice(0, n)),
        ),
        (b) => {
          const got = outcome(() => scanAll(b));
          expect(got).toEqual(outcome(() => readAll(b)));
          if (typeof got === "object" && got !== null && "err" in got) expect(String((got as { err: unknown }).err)).toMatch(/^STRATA_CORRUPT_DATA: rows batch/);
        },
      ),
      { numRuns: 500 },
    );
  });
});
