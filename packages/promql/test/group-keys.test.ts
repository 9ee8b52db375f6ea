import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Label, Labels } from "@strata/core";
import { GroupKeyer, PartitionCache, partitionLabels } from "../src/engine/group-keys.js";

// Group ids must split series exactly as the key strings of the kept labels did: two label sets
// share an id when, and only when, the labels the grouping keeps are equal (names and values).

/** The kept labels of `labels`, as a list to compare (the reference). */
function kept(labels: Labels, grouping: ReadonlySet<string>, without: boolean, dropName: boolean): string {
  const out: [string, string][] = [];
  for (const l of labels) {
    if (without ? grouping.has(l.name) || (dropName && l.name === "__name__") : !grouping.has(l.name)) continue;
    out.push([l.name, l.value]);
  }
  return JSON.stringify(out);
}

const NAMES = ["__name__", "a", "b", "instance", "le", "x\u0000y"];
/** Values chosen to collide in the old `name\0value\1` strings ("\u0001" and "\u0000" inside). */
const VALUES = ["", "0", "1", "a\u0001b\u0000c", "a", "b\u0000c", "\u0001", "é", "x".repeat(40)];

const labelSet = fc.uniqueArray(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...VALUES)), { selector: (t) => t[0], maxLength: NAMES.length }).map((ls) => {
  const out: Label[] = ls.map(([name, value]) => ({ name, value }));
  out.sort((p, q) => (p.name < q.name ? -1 : p.name > q.name ? 1 : 0));
  return out as Labels;
});

describe("GroupKeyer", () => {
  it("gives equal ids exactly to equal kept labels (by, without, histograms' without-le keeping the name)", () => {
    fc.assert(
      fc.property(
        fc.array(labelSet, { maxLength: 60 }),
        fc.subarray(NAMES),
        fc.constantFrom([false, false], [true, true], [true, false]),
        (sets, grouping, [without, dropName]) => {
          const g = new Set(grouping);
          const keyer = new GroupKeyer(g, without, dropName);
          const idOf = new Map<string, number>();
          for (const ls of sets) {
            const key = kept(ls, g, without, dropName);
            const id = keyer.id(ls);
            const want = idOf.get(key) ?? idOf.size;
            idOf.set(key, want);
            // Dense ids in first-seen order.
            expect(id).toBe(want);
          }
          expect(keyer.size).toBe(idOf.size);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("keeps ids right while its tables grow (50,000 series, 5,000 groups of two labels)", () => {
    const keyer = new GroupKeyer(new Set(["instance", "le"]), false);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 50_000; i++) {
        const inst = i % 1000;
        const le = Math.floor(i / 1000) % 5;
        const labels: Labels = [
          { name: "__name__", value: "h_bucket" },
          { name: "handler", value: `h${i % 7}` },
          { name: "instance", value: `host-${inst}` },
          { name: "le", value: String(le) },
        ];
        // First seen in the first 5,000 series: instance varies fastest.
        expect(keyer.id(labels)).toBe(le * 1000 + inst);
      }
    }
    expect(keyer.size).toBe(5000);
  });
});

describe("partitionLabels and PartitionCache", () => {
  const series: Labels[] = [
    [{ name: "instance", value: "b" }, { name: "mode", value: "idle" }],
    [{ name: "instance", value: "a" }, { name: "mode", value: "user" }],
    [{ name: "instance", value: "a" }, { name: "mode", value: "idle" }],
    [{ name: "mode", value: "idle" }],
  ];
  it("numbers groups in first-seen order with each group's first series", () => {
    const p = partitionLabels(series, new Set(["mode"]), false);
    expect([...p.groupOf]).toEqual([0, 1, 0, 0]);
    expect(p.groups).toBe(2);
    expect([...p.first]).toEqual([0, 1]);
    const w = partitionLabels(series, new Set(["mode"]), true);
    expect([...w.groupOf]).toEqual([0, 1, 1, 2]);
    expect([...w.first]).toEqual([0, 1, 3]);
  });
  it("builds a series list's partition by a grouping once", () => {
    const c = new PartitionCache();
    const a = c.get(series, new Set(["mode", "instance"]), false);
    expect(c.get(series, new Set(["instance", "mode"]), false)).toBe(a);
    expect(c.get(series, new Set(["instance", "mode"]), true)).not.toBe(a);
    expect(c.get([...series], new Set(["instance", "mode"]), false)).not.toBe(a);
  });
});
