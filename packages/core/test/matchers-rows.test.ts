import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadDataError, newMatcher, RowsBatchReader, RowsBatchWriter, countRows, type MatchType } from "@strata/core";

describe("newMatcher (Prometheus 3 semantics)", () => {
  it.each([
    ["=", "a", "a", true],
    ["=", "a", "", false],
    ["!=", "a", "b", true],
    ["=~", "a.*", "abc", true],
    ["=~", "a.*", "xabc", false], // anchored
    ["=~", "b", "abc", false],
    ["=~", ".*", "", true],
    ["=~", ".+", "", false],
    ["=~", "a|b", "b", true],
    ["=~", "a|b", "ab", false],
    ["=~", "foo.+", "foo", false],
    ["=~", "foo.+", "foox", true],
    ["=~", "a.c", "a\nc", true], // dot matches newline
    ["=~", "(?i)ABC", "abc", true],
    ["=~", "x?y", "y", true],
    ["=~", "ab*", "a", true],
    ["=~", "[0-9]+", "123", true],
    ["=~", "\\d+", "12a", false],
    ["!~", "a.*", "abc", false],
    ["!~", "a.*", "", true],
    ["=~", "", "", true],
  ] as const)("%s %j on %j → %s", (type, re, v, want) => {
    expect(newMatcher(type as MatchType, "l", re).matches(v)).toBe(want);
  });

  it("exposes literal prefixes and value sets for the index", () => {
    expect(newMatcher("=~", "l", "node_.*").prefix).toBe("node_");
    expect(newMatcher("=~", "l", "ab*").prefix).toBe("a");
    expect(newMatcher("=~", "l", "a|b|a").setMatches).toEqual(["a", "b"]);
    expect(newMatcher("=~", "l", "foo(bar|baz)").setMatches).toBeUndefined();
  });

  it.each(["(", "a(?=b)", "[z-a]", "a**", "\\8"])("rejects invalid RE2 %j", (re) => {
    expect(() => newMatcher("=~", "l", re)).toThrow(BadDataError);
  });

  it("fast paths agree with the full regex engine", () => {
    const alphabet = fc.constantFrom("a", "b", "ab", "", "ba", "aab", "b\n");
    fc.assert(
      fc.property(fc.constantFrom("a.*", "a.+", "a|b", "ab", ".*", ".+", "a|ab|b"), alphabet, (re, v) => {
        const fast = newMatcher("=~", "l", re).matches(v);
        const slow = new RegExp(`^(?:${re})$`, "s").test(v);
        expect(fast).toBe(slow);
      }),
    );
  });
});

describe("rows batch v1", () => {
  it("round-trips rows bit-exactly and dedups repeated metric names", () => {
    const rowArb = fc.record({
      mn: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      ts: fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
      bits: fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })),
    });
    fc.assert(
      fc.property(fc.array(rowArb, { maxLength: 50 }), fc.boolean(), (rows, repeat) => {
        const w = new RowsBatchWriter(16);
        const scratch = new DataView(new ArrayBuffer(8));
        const values = rows.map((r) => {
          scratch.setUint32(0, r.bits[0]);
          scratch.setUint32(4, r.bits[1]);
          return scratch.getFloat64(0);
        });
        rows.forEach((r, i) => w.add(repeat && i > 0 ? rows[0]!.mn : r.mn, r.ts, values[i]!));
        const batch = w.finish();
        expect(countRows(batch)).toBe(rows.length);
        const rd = new RowsBatchReader(batch);
        let i = 0;
        const out = new DataView(new ArrayBuffer(16));
        while (rd.next()) {
          const r = rows[i]!;
          expect([...rd.metricName]).toEqual([...(repeat && i > 0 ? rows[0]!.mn : r.mn)]);
          expect(rd.timestamp).toBe(r.ts);
          out.setFloat64(0, rd.value);
          out.setFloat64(8, values[i]!);
          expect(out.getBigUint64(0)).toBe(out.getBigUint64(8)); // NaN payloads survive
          i++;
        }
        expect(i).toBe(rows.length);
      }),
      { numRuns: 200 },
    );
  });

  it("addName / addSameName write the same bytes as add", () => {
    const names = [Uint8Array.from([1, 2, 3]), Uint8Array.from({ length: 200 }, (_, i) => i)];
    const src = new Uint8Array(300);
    src.set(names[0]!, 5);
    src.set(names[1]!, 50);
    const a = new RowsBatchWriter(16);
    const b = new RowsBatchWriter(16);
    a.add(names[0]!, 1, 1.5);
    a.add(names[0]!, 2, NaN);
    a.add(names[1]!, -3, -0);
    a.add(names[0]!, 4, 2);
    b.addName(src, 5, 3, 1, 1.5);
    b.addSameName(2, NaN);
    b.addName(src, 50, 200, -3, -0);
    b.addName(src, 5, 3, 4, 2);
    expect(Buffer.from(b.finish()).equals(Buffer.from(a.finish()))).toBe(true);
    expect(b.length).toBe(4);
    // add() after addName never mistakes a name for the previous one.
    b.add(names[0]!, 5, 1);
    const r = new RowsBatchReader(b.finish());
    let last: number[] = [];
    while (r.next()) last = [...r.metricName];
    expect(last).toEqual([1, 2, 3]);
    expect(() => new RowsBatchWriter().addSameName(1, 1)).toThrow(/without a previous row/);
  });

  it("addRecordsName writes the name that remote write label records spell, as add does", () => {
    const label = fc.tuple(fc.uint8Array({ maxLength: 60 }), fc.uint8Array({ maxLength: 60 }));
    fc.assert(
      fc.property(fc.array(label, { maxLength: 8 }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 9 }), (labels, account, project, skip) => {
        // `0a <rec> 0a <ln> name 12 <lv> value` per label, after `skip` bytes of something else.
        const records = labels.flatMap(([n, v]) => [0x0a, 4 + n.length + v.length, 0x0a, n.length, ...n, 0x12, v.length, ...v]);
        const src = Uint8Array.from([...new Array<number>(skip).fill(0xee), ...records, 0xee]);
        const name = Uint8Array.from([
          account >>> 24, (account >>> 16) & 0xff, (account >>> 8) & 0xff, account & 0xff,
          project >>> 24, (project >>> 16) & 0xff, (project >>> 8) & 0xff, project & 0xff,
          ...labels.flatMap(([n, v]) => [n.length, ...n, v.length, ...v]),
        ]);
        const a = new RowsBatchWriter(16);
        const b = new RowsBatchWriter(16);
        for (let i = 0; i < 3; i++) {
          a.add(name, i, 0.5);
          b.addRecordsName(new DataView(src.buffer), skip, skip + records.length, name.length, account, project, 0, 0, i, 0.5);
          a.add(Uint8Array.of(9), i, i); // the next row names another series
          b.addName(Uint8Array.of(9), 0, 1, i, i);
        }
        expect(Buffer.from(b.finish()).toString("hex")).toBe(Buffer.from(a.finish()).toString("hex"));
      }),
      { numRuns: 300 },
    );
  });

  it("truncated or random batches only throw BadDataError", () => {
    const w = new RowsBatchWriter();
    w.add(new Uint8Array([1, 2, 3]), 1000, 1.5);
    w.add(new Uint8Array([1, 2, 3]), 2000, 2.5);
    const good = w.finish();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fc.nat(good.length).map((n) => good.slice(0, n))), (bytes) => {
        try {
          countRows(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(BadDataError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
