import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { hashBytes, SeriesCache } from "../src/series-cache.js";
import type { TSID } from "../src/tsid.js";

function tsid(id: number): TSID {
  return { accountID: 0, projectID: 0, metricGroupID: 0, jobInstanceID: 0, metricID: id };
}

/** The metricID cached for key (through its ref), or undefined. */
function idOf(c: SeriesCache, key: Uint8Array): number | undefined {
  const ref = c.get(key);
  return ref < 0 ? undefined : c.table.metricID(ref);
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
    keys.forEach((k, i) => c.set(bytes(k), tsid(i), 0));
    keys.forEach((k, i) => expect(idOf(c, bytes(k))).toBe(i));
    expect(idOf(c, bytes("zz-not-there"))).toBeUndefined();
    expect(c.entries).toBe(keys.length);
  });

  it("copies keys: the caller may overwrite its buffer afterwards (batches are reused)", () => {
    const c = new SeriesCache(1 << 20);
    const buf = bytes("series-one");
    c.set(buf, tsid(1), 0);
    buf.fill(0x41);
    expect(idOf(c, bytes("series-one"))).toBe(1);
    expect(idOf(c, buf)).toBeUndefined();
  });

  it("finds keys given as views into a larger buffer (rows batch reader)", () => {
    const c = new SeriesCache(1 << 20);
    c.set(bytes("xyz"), tsid(7), 0);
    const big = bytes("..xyz..");
    expect(idOf(c, big.subarray(2, 5))).toBe(7);
    expect(idOf(c, Buffer.from(big).subarray(2, 5))).toBe(7);
  });

  it("keeps every key through table growth (many keys, same hash low bits)", () => {
    const c = new SeriesCache(64 << 20);
    const n = 20_000;
    for (let i = 0; i < n; i++) c.set(bytes(`metric{instance="host-${i}"}`), tsid(i), 0);
    for (let i = 0; i < n; i++) expect(idOf(c, bytes(`metric{instance="host-${i}"}`))).toBe(i);
    expect(c.hits).toBe(n);
  });

  it("stays bounded: old generations are dropped past the cap, recent keys survive", () => {
    const cap = 256 * 1024;
    const c = new SeriesCache(cap);
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      c.set(bytes(`k${i}`), tsid(i), 0);
      if (i % 1000 === 999) c.recycle(); // as the rows buffer does after each drain
    }
    expect(c.entries).toBeLessThan(n);
    expect(idOf(c, bytes(`k${n - 1}`))).toBe(n - 1);
    expect(idOf(c, bytes("k0"))).toBeUndefined();
    expect(c.sizeBytes).toBeLessThan(4 * cap);
  });

  it("holds a key in its bytes, an 8-byte record header and two 8-byte table slots at most", () => {
    // 64,000 keys fill a 2^17-slot table to ~½: the slots cost 8 bytes each (16 a key), where
    // slots that repeated each key's length and ref cost twice that.
    const n = 64_000;
    const keyLen = 100;
    const c = new SeriesCache(1 << 30, { chunkBytes: 64 << 10 });
    const key = new Uint8Array(keyLen);
    const dv = new DataView(key.buffer);
    for (let i = 0; i < n; i++) {
      dv.setUint32(0, i);
      c.set(key, tsid(i), 0);
    }
    for (let i = 0; i < n; i += 997) {
      dv.setUint32(0, i);
      expect(idOf(c, key)).toBe(i);
    }
    const keyBytes = c.sizeBytes - c.table.sizeBytes - (64 << 10) - 16 * 8;
    expect(keyBytes / n).toBeLessThanOrEqual(keyLen + 8 + 2 * 8 + 1);
  });

  it("promotes a hit from the previous generation", () => {
    const c = new SeriesCache(40 * 1024);
    c.set(bytes("first"), tsid(1), 0);
    // ~76 accounted bytes per entry, a generation holds 20 KiB: "first" moves to the previous
    // generation after ~269 more keys and, unless promoted, is dropped after ~538.
    for (let i = 0; i < 300; i++) c.set(bytes(`f${i}`), tsid(100 + i), 0);
    expect(idOf(c, bytes("first"))).toBe(1);
    for (let j = 0; j < 350; j++) c.set(bytes(`g${j}`), tsid(j), 0);
    expect(idOf(c, bytes("first"))).toBe(1);
    expect(c.rotations).toBe(2);
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
    for (let i = 0; i < n; i++) c.set(key(i), tsid(i), 0);
    for (const i of order(n)) expect(idOf(c, key(i))).toBe(i < n ? i : undefined);
  });

  it("predicts the next key when lookups follow insertion order", () => {
    const c = new SeriesCache(64 << 20);
    const n = 1000;
    for (let i = 0; i < n; i++) c.set(bytes(`m{i="${i}"}`), tsid(i), 0);
    for (let round = 0; round < 3; round++) for (let i = 0; i < n; i++) expect(idOf(c, bytes(`m{i="${i}"}`))).toBe(i);
    expect(c.predicted).toBeGreaterThanOrEqual(3 * (n - 1));
  });

  it("clear() forgets everything", () => {
    const c = new SeriesCache(1 << 20);
    c.set(bytes("a"), tsid(1), 0);
    c.clear();
    expect(idOf(c, bytes("a"))).toBeUndefined();
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
            c.set(k, tsid(i), 0);
            model.set(s, i);
          } else {
            expect(idOf(c, k)).toBe(model.get(s));
          }
        });
        for (const [s, id] of model) expect(idOf(c, Buffer.from(s, "latin1"))).toBe(id);
      }),
      { numRuns: 100 },
    );
  });

  it("reuses a released ref only after recycle(), and keeps the columns bounded through rotations", () => {
    const c = new SeriesCache(64 * 1024);
    const handed = new Set<number>();
    let peakLive = 0;
    for (let round = 0; round < 20; round++) {
      // Between two recycles (one rows-buffer lifetime) every ref handed out is distinct: a
      // ref the rows buffer may still hold is never given to another series.
      handed.clear();
      for (let i = 0; i < 1000; i++) {
        const ref = c.set(bytes(`r${round}-${i}`), tsid(round * 1000 + i), 0);
        expect(handed.has(ref)).toBe(false);
        handed.add(ref);
        expect(c.table.metricID(ref)).toBe(round * 1000 + i);
      }
      c.recycle();
      peakLive = Math.max(peakLive, c.table.live);
      expect(c.table.live).toBe(c.entries);
    }
    expect(c.rotations).toBeGreaterThan(10);
    // 20,000 series went through a cache holding ~700: the columns did not grow with them.
    expect(c.table.sizeBytes).toBeLessThan(8 * peakLive * 48 + 4096 * 48);
  });

  it("set() of a cached key gives a new ref (a new series to the rows buffer) with the new TSID", () => {
    const c = new SeriesCache(1 << 20);
    const a = c.set(bytes("k"), tsid(1), 5);
    const b = c.set(bytes("k"), tsid(2), 6);
    expect(b).not.toBe(a);
    expect(c.get(bytes("k"))).toBe(b);
    expect(c.table.metricID(b)).toBe(2);
    expect(c.table.day[b]).toBe(6);
    expect(c.entries).toBe(1);
    expect(c.table.live).toBe(1);
  });

  it("all() yields each cached key once with its current ref", () => {
    const c = new SeriesCache(40 * 1024);
    for (let i = 0; i < 300; i++) c.set(bytes(`k${i}`), tsid(i), 0);
    c.get(bytes("k0")); // promoted from the previous generation
    c.set(bytes("k1"), tsid(1001), 0); // replaced
    const seen = new Map<string, number>();
    for (const [k, ref] of c.all()) {
      const s = Buffer.from(k).toString("latin1");
      expect(seen.has(s)).toBe(false);
      seen.set(s, c.table.metricID(ref));
    }
    expect(seen.get("k0")).toBe(0);
    expect(seen.get("k1")).toBe(1001);
    expect(seen.get("k299")).toBe(299);
    expect(seen.size).toBe(c.entries - 2);
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

describe("SeriesCache arena chunks", () => {
  type Internal = { cur: { arena: { chunks: Uint8Array[] } } };
  /** Keys of 1–600 bytes, and every 97th one of 5000 (larger than a 4 KiB chunk: a chunk of its own). */
  const vkey = (i: number): Uint8Array => bytes(`s${i}{${"v".repeat(i % 97 === 0 ? 5000 : (i * 41) % 600)}}`);

  it.each([
    ["no rotation (64 MiB cap)", 64 << 20],
    ["with rotations (512 KiB cap)", 512 << 10],
  ])("agrees with a Map model when records fill many 4 KiB chunks: %s", (_, cap) => {
    const c = new SeriesCache(cap, { chunkBytes: 4096 });
    const model = new Map<number, number>();
    let chunks = 0;
    let seed = 11;
    for (let step = 0; step < 20_000; step++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const i = seed % 5 === 0 ? seed % 2000 : step % 2000;
      const id = idOf(c, vkey(i));
      if (id !== undefined) expect(id).toBe(model.get(i));
      else if (cap === 64 << 20) expect(model.has(i)).toBe(false); // nothing is evicted below the cap
      // Sometimes a known key gets a new TSID (set() of a cached key).
      if (id === undefined || seed % 7 === 0) {
        c.set(vkey(i), tsid(step), 0);
        model.set(i, step);
      }
      if (step % 1000 === 999) c.recycle();
      chunks = Math.max(chunks, (c as unknown as Internal).cur.arena.chunks.length);
    }
    expect(chunks).toBeGreaterThan(20);
    if (cap === 64 << 20) {
      expect(c.entries).toBe(2000);
      // Sequential prediction crosses chunk ends and oversized records: keys looked up in
      // arena order (the order all() yields) are each predicted from the one before.
      const order = [...c.all()].map(([k]) => Buffer.from(k));
      const predicted = c.predicted;
      for (const k of order) expect(c.get(k)).toBeGreaterThanOrEqual(0);
      expect(c.predicted - predicted).toBeGreaterThanOrEqual(order.length - 1);
      for (const [i, id] of model) expect(idOf(c, vkey(i))).toBe(id);
    } else expect(c.rotations).toBeGreaterThan(3);
  });

  it("grows without copying: the first chunk stays in place while many more are added", () => {
    const c = new SeriesCache(64 << 20, { chunkBytes: 4096 });
    c.set(bytes("first"), tsid(1), 0);
    const first = (c as unknown as Internal).cur.arena.chunks[0];
    for (let i = 0; i < 5000; i++) c.set(bytes(`metric{instance="host-${i}"}`), tsid(i), 0);
    expect((c as unknown as Internal).cur.arena.chunks.length).toBeGreaterThan(40);
    expect((c as unknown as Internal).cur.arena.chunks[0]).toBe(first);
    expect(idOf(c, bytes("first"))).toBe(1);
  });
});
