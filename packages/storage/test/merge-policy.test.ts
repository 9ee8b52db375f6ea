import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareHeaderTSIDs, keysMetricID, readBlockHeaderInto, ReusedBlockHeader } from "../src/block.js";
import { compareBytes } from "../src/bytes.js";
import { BLOCK_HEADER_BYTES, TSID_BYTES } from "../src/constants.js";
import type { Part } from "../src/part.js";
import { pickMergeSources } from "../src/merge-scheduler.js";
import { tsidMetricID } from "../src/tsid.js";

const parts = (...rows: number[]): Part[] => rows.map((r) => ({ meta: { rows: r } }) as unknown as Part);
const rowsOf = (ps: Part[]): number[] => ps.map((p) => p.meta.rows);

describe("background merge policy (pickMergeSources)", () => {
  it("merges the smallest fanIn parts when they are of similar size", () => {
    expect(rowsOf(pickMergeSources(parts(1, 1, 2, 2, 3), 4))).toEqual([1, 1, 2, 2]);
  });
  it("leaves out a part bigger than all the others together (no full rewrite of old data per merge)", () => {
    expect(rowsOf(pickMergeSources(parts(10, 10, 10, 10, 100), 16))).toEqual([10, 10, 10, 10]);
    expect(rowsOf(pickMergeSources(parts(10, 10, 10, 10, 40), 16))).toEqual([10, 10, 10, 10, 40]);
    expect(rowsOf(pickMergeSources(parts(1, 2, 50, 1000), 16))).toEqual([1, 2]);
  });
  it("always merges at least the two smallest", () => {
    expect(rowsOf(pickMergeSources(parts(1, 10, 100, 1000), 16))).toEqual([1, 10]);
  });
});

describe("merge order of block headers (compareHeaderTSIDs)", () => {
  const header = (tsid: Uint8Array): ReusedBlockHeader => {
    const buf = new Uint8Array(BLOCK_HEADER_BYTES);
    buf.set(tsid);
    buf[56] = 1; // count
    const h = new ReusedBlockHeader();
    readBlockHeaderInto(buf, 0, new DataView(buf.buffer), h);
    return h;
  };
  const sign = (x: number): number => (x < 0 ? -1 : x > 0 ? 1 : 0);
  it("orders TSIDs as their bytes do", () => {
    // Pairs that share a prefix of every length, so that each of the four keys decides once.
    const tsid = fc.uint8Array({ minLength: TSID_BYTES, maxLength: TSID_BYTES });
    const pair = fc.tuple(tsid, tsid, fc.integer({ min: 0, max: TSID_BYTES })).map(([a, b, shared]) => {
      b.set(a.subarray(0, shared));
      return [a, b] as const;
    });
    fc.assert(
      fc.property(pair, ([a, b]) => {
        expect(sign(compareHeaderTSIDs(header(a), header(b)))).toBe(sign(compareBytes(a, b)));
      }),
      { numRuns: 2000 },
    );
  });
  it("gives back the TSID bytes and the metricID from the keys alone (merges do not copy them per block)", () => {
    const tsid = fc.uint8Array({ minLength: TSID_BYTES, maxLength: TSID_BYTES }).map((b) => {
      b[16] = 0; // metricIDs are below 2^53
      b[17] = b[17]! & 0x1f;
      return b;
    });
    fc.assert(
      fc.property(tsid, (b) => {
        const h = header(b);
        expect(Array.from(h.tsid)).toEqual(Array.from(b));
        expect(keysMetricID(h)).toBe(tsidMetricID(b, 0));
      }),
      { numRuns: 2000 },
    );
  });
});
