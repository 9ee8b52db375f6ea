import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { SeriesEntry } from "../src/rows-buffer.js";
import { hashBytes, SeriesCache } from "../src/series-cache.js";

function entry(id: number): SeriesEntry {
  return {
    accountID: 0,
    projectID: 0,
    metricGroupID: 0,
    jobInstanceID: 0,
    metricID: id,
    day: 0,
    gen: 0,
    slot: 0,
    ord: 0,
    ordPos: 0,
  };
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("SeriesCache", () => {
  it.each([
    ["empty key", [""]],
    ["one key", ["a"]],
    ["prefixes of each other", ["ab", "abc", "a", "abcd"]],
    ["same length, one byte apart", ["node_cpu{a=1}", "node_cpu{a=2}", "node_cpu{b=1}"]],
  ])("finds every stored key and only those: %s", (_, keys) => {
    const c = new SeriesCache(1 << 20);
    keys.forEach((k, i) => c.set(bytes(k), entry(i)));
    keys.forEach((k, i) => expect(c.get(bytes(k))?.metricID).toBe(i));
    expect(c.get(bytes("zz-not-there"))).toBeUndefined();
    expect(c.entries).toBe(keys.length);
  });

  it("copies keys: the caller may overwrite its buffer afterwards (batches are reused)", () => {
    const c = new SeriesCache(1 << 20);
    const buf = bytes("series-one");
    c.set(buf, entry(1));
    buf.fill(0x41);
    expect(c.get(bytes("series-one"))?.metricID).toBe(1);
    expect(c.get(buf)).toBeUndefined();
  });

  it("finds keys given as views into a larger buffer (rows batch reader)", () => {
    const c = new SeriesCache(1 << 20);
    c.set(bytes("xyz"), entry(7));
    const big = bytes("..xyz..");
    expect(c.get(big.subarray(2, 5))?.metricID).toBe(7);
    expect(c.get(Buffer.from(big).subarray(2, 5))?.metricID).toBe(7);
  });

  it("keeps every key through table growth (many keys, same hash low bits)", () => {
    const c = new SeriesCache(64 << 20);
    const n = 20_000;
    for (let i = 0; i < n; i++) c.set(bytes(`metric{instance="host-${i}"}`), entry(i));
    for (let i = 0; i < n; i++) expect(c.get(bytes(`metric{instance="host-${i}"}`))?.metricID).toBe(i);
    expect(c.hits).toBe(n);
  });

  it("stays bounded: old generations are dropped past the cap, recent keys survive", () => {
    const cap = 256 * 1024;
    const c = new SeriesCache(cap);
    const n = 10_000;
    for (let i = 0; i < n; i++) c.set(bytes(`k${i}`), entry(i));
    expect(c.entries).toBeLessThan(n);
    expect(c.get(bytes(`k${n - 1}`))?.metricID).toBe(n - 1);
    expect(c.get(bytes("k0"))).toBeUndefined();
    expect(c.sizeBytes).toBeLessThan(4 * cap);
  });

  it("promotes a hit from the previous generation", () => {
    const c = new SeriesCache(40 * 1024);
    c.set(bytes("first"), entry(1));
    // ~165 accounted bytes per entry, a generation holds 20 KiB: "first" moves to the previous
    // generation after ~124 more keys and would be dropped after ~248.
    for (let i = 0; i < 130; i++) c.set(bytes(`f${i}`), entry(100 + i));
    expect(c.get(bytes("first"))?.metricID).toBe(1);
    for (let j = 0; j < 150; j++) c.set(bytes(`g${j}`), entry(j));
    expect(c.get(bytes("first"))?.metricID).toBe(1);
  });

  it.each([
    ["same order as inserted", (n: number) => Array.from({ length: n }, (_, i) => i)],
    ["reversed", (n: number) => Array.from({ length: n }, (_, i) => n - 1 - i)],
    ["every other, twice", (n: number) => [...Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0), ...Array.from({ length: n }, (_, i) => i)]],
    ["repeats and unknown keys", (n: number) => Array.from({ length: 3 * n }, (_, i) => (i * 7) % (n + 5))],
  ])("sequential prediction never returns a wrong entry: %s", (_, order) => {
    const n = 500;
    const c = new SeriesCache(64 << 20);
    // Same length keys that differ only in the last byte: a wrong guess must be caught.
    const key = (i: number): Uint8Array => bytes(`series{host="h${String(i).padStart(4, "0")}"}`);
    for (let i = 0; i < n; i++) c.set(key(i), entry(i));
    for (const i of order(n)) expect(c.get(key(i))?.metricID).toBe(i < n ? i : undefined);
  });

  it("predicts the next key when lookups follow insertion order", () => {
    const c = new SeriesCache(64 << 20);
    const n = 1000;
    for (let i = 0; i < n; i++) c.set(bytes(`m{i="${i}"}`), entry(i));
    for (let round = 0; round < 3; round++) for (let i = 0; i < n; i++) expect(c.get(bytes(`m{i="${i}"}`))?.metricID).toBe(i);
    expect(c.predicted).toBeGreaterThanOrEqual(3 * (n - 1));
  });

  it("clear() forgets everything", () => {
    const c = new SeriesCache(1 << 20);
    c.set(bytes("a"), entry(1));
    c.clear();
    expect(c.get(bytes("a"))).toBeUndefined();
    expect(c.entries).toBe(0);
  });

  it("agrees with a Map model (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.boolean()), { maxLength: 300 }), (ops) => {
        const c = new SeriesCache(1 << 24);
        const model = new Map<string, number>();
        ops.forEach(([k, isSet], i) => {
          const s = Buffer.from(k).toString("latin1");
          if (isSet) {
            c.set(k, entry(i));
            model.set(s, i);
          } else {
            expect(c.get(k)?.metricID).toBe(model.get(s));
          }
        });
        for (const [s, id] of model) expect(c.get(Buffer.from(s, "latin1"))?.metricID).toBe(id);
      }),
      { numRuns: 100 },
    );
  });

  it("hashBytes depends on every byte and the length", () => {
    const a = bytes("abcdefgh");
    const seen = new Set([hashBytes(a)]);
    for (let i = 0; i < a.length; i++) {
      const b = a.slice();
      b[i] = b[i]! ^ 1;
      seen.add(hashBytes(b));
    }
    seen.add(hashBytes(a.subarray(0, 7)));
    expect(seen.size).toBe(a.length + 2);
  });
});
