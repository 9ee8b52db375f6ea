import { describe, expect, it } from "vitest";
import type { Part } from "../src/part.js";
import { pickMergeSources } from "../src/merge-scheduler.js";

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
