import { describe, expect, it } from "vitest";
import { encodeMetricName } from "@strata/core";
import { RawLabelsCache } from "@strata/protocol";

const te = new TextEncoder();
const key = (i: number): Uint8Array => te.encode(`labels-of-series-${i}-${"x".repeat(40)}`);
const name = (i: number): Uint8Array => te.encode(`canonical-name-${i}-${"y".repeat(40)}`);

/** Looks i up and adds it on a miss, as RemoteWriteDecoder does; returns whether it hit. */
function touch(c: RawLabelsCache, i: number, account = 0): boolean {
  const k = key(i);
  if (c.find(k, 0, k.length, account, 0)) {
    expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen)).toString()).toBe(Buffer.from(name(i)).toString());
    expect([c.hashLo, c.hashHi]).toEqual([i, i + 1]);
    return true;
  }
  c.add(k, 0, k.length, account, 0, name(i), i, i + 1);
  return false;
}

describe("RawLabelsCache", () => {
  it("finds what it holds, by tenant, with its name and hash", () => {
    const c = new RawLabelsCache(1 << 20);
    for (let i = 0; i < 100; i++) expect(touch(c, i)).toBe(false);
    for (let i = 0; i < 100; i++) expect(touch(c, i)).toBe(true);
    expect(touch(c, 5, 7)).toBe(false);
    expect([c.hits, c.misses, c.entries]).toEqual([100, 101, 101]);
  });

  it("stays under its cap and rotates instead of starting over: a rotation keeps the newer half", () => {
    const cap = 1 << 20;
    const c = new RawLabelsCache(cap);
    let i = 0;
    while (c.rotations === 0) touch(c, i++);
    // Right after the first rotation the previous generation still answers for everything.
    const afterRotation = c.entries;
    expect(afterRotation).toBe(i);
    for (let j = 0; j < i; j++) expect(touch(c, j)).toBe(true);
    for (let j = 0; j < 50_000; j++) touch(c, 1_000_000 + j);
    expect(c.bytes).toBeLessThanOrEqual(cap * 1.1);
    expect(c.entries).toBeGreaterThan(afterRotation / 2);
  });

  it("keeps a working set that fits in half the cap through any number of rotations", () => {
    const c = new RawLabelsCache(1 << 20);
    const hot = Array.from({ length: 500 }, (_, i) => i);
    for (const h of hot) touch(c, h);
    let hotMisses = 0;
    for (let round = 0; round < 40; round++) {
      for (let j = 0; j < 2000; j++) touch(c, 10_000 + round * 2000 + j);
      for (const h of hot) if (!touch(c, h)) hotMisses++;
    }
    expect(c.rotations).toBeGreaterThan(10);
    expect(hotMisses).toBe(0);
  });

  it("names handed out before a rotation keep their bytes", () => {
    const c = new RawLabelsCache(1 << 17);
    touch(c, 1);
    const k = key(1);
    expect(c.find(k, 0, k.length, 0, 0)).toBe(true);
    const view = c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen);
    const before = Buffer.from(view).toString();
    for (let j = 0; j < 5000; j++) touch(c, 100 + j);
    expect(c.rotations).toBeGreaterThan(2);
    expect(Buffer.from(view).toString()).toBe(before);
  });
});

describe("RawLabelsCache with protobuf label records", () => {
  const enc = (s: string): number[] => [...te.encode(s)];
  /** Label records of remote write 1.0: `0a <len> { 0a <ln> name 12 <lv> value }` per label, in the given order. */
  const raw = (labels: [string, string][]): Uint8Array =>
    new Uint8Array(labels.flatMap(([n, v]) => [0x0a, 4 + n.length + v.length, 0x0a, n.length, ...enc(n), 0x12, v.length, ...enc(v)]));
  const canonical = (labels: [string, string][]): Uint8Array =>
    encodeMetricName({ tenant: { accountID: 0, projectID: 0 }, labels: labels.map(([n, v]) => ({ name: n, value: v })) });
  const up: [string, string][] = [["__name__", "up"], ["instance", "host-1:9100"], ["job", "node"]];

  it.each<[string, [string, string][], [string, string][], boolean]>([
    ["sorted labels: the name spells the key", up, up, true],
    ["unsorted labels", [up[2]!, up[0]!, up[1]!], up, false],
    ["an empty value left out of the name", [...up, ["zone", ""]], up, false],
    ["a label the name does not have (relabeled)", up, [...up, ["zone", "a"]], false],
    ["a long value (two-byte record length)", [["__name__", "up"], ["v", "x".repeat(130)]], [["__name__", "up"], ["v", "x".repeat(130)]], false],
  ])("%s: found again, and only by its own bytes", (_, rawLabels, nameLabels, compact) => {
    const c = new RawLabelsCache(1 << 20);
    const k = raw(rawLabels);
    const n = canonical(nameLabels);
    expect(c.find(k, 0, k.length, 0, 0)).toBe(false);
    c.add(k, 0, k.length, 0, 0, n, 1, 2);
    expect(c.find(k, 0, k.length, 0, 0)).toBe(true);
    expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen))).toEqual(Buffer.from(n));
    // The same length, one byte different (in a name, a value, a length): a miss.
    for (const at of [4, k.length - 1, 1]) {
      const other = k.slice();
      other[at] = other[at]! ^ 1;
      expect(c.find(other, 0, other.length, 0, 0)).toBe(false);
    }
    expect(c.find(k, 0, k.length, 0, 1)).toBe(false);
    // Label records that spell their name take a fingerprint slot and no arena bytes.
    const before = (c as unknown as { cur: { used: number } }).cur.used;
    const k2 = raw([...rawLabels, ["~extra", "1"]]);
    c.add(k2, 0, k2.length, 0, 0, canonical([...nameLabels, ["~extra", "1"]]), 3, 4);
    const grew = (c as unknown as { cur: { used: number } }).cur.used - before;
    expect(grew === 0).toBe(compact);
    expect(c.fingerprintHits).toBe(compact ? 1 : 0);
  });

  it("fingerprints: names rebuilt per tenant from the request's bytes, ~24 bytes a series", () => {
    const c = new RawLabelsCache(64 << 20, { chunkBytes: 64 << 10 });
    const labels = (i: number): [string, string][] => [["__name__", `m${i % 7}`], ["instance", `host-${i}:9100`], ["job", "node"]];
    const tenants = [[0, 0], [1, 0], [0xffff_fffe, 7]] as const;
    const n = 6000;
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < n; i++) {
        const [account, project] = tenants[i % 3]!;
        const k = raw(labels(i));
        const want = encodeMetricName({ tenant: { accountID: account, projectID: project }, labels: labels(i).map(([name, value]) => ({ name, value })) });
        if (c.find(k, 0, k.length, account, project)) {
          expect(round).toBe(1);
          expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen))).toEqual(Buffer.from(want));
          expect([c.hashLo, c.hashHi]).toEqual([i, account]);
        } else {
          expect(round).toBe(0);
          c.add(k, 0, k.length, account, project, want, i, account);
        }
      }
    }
    expect([c.hits, c.fingerprintHits, c.misses, c.entries]).toEqual([n, n, n, n]);
    // The second round came in the order of the first: every hit but the first was the record after the previous one.
    expect(c.predicted).toBe(n - 1);
    // Backwards, so that no hit is the record after the previous one: each goes through the
    // index, which doubled three times on the way to 6000 records.
    for (let i = n - 1; i >= 0; i--) {
      const [account, project] = tenants[i % 3]!;
      const k = raw(labels(i));
      expect(c.find(k, 0, k.length, account, project)).toBe(true);
      expect([c.hashLo, c.hashHi]).toEqual([i, account]);
    }
    expect([c.fingerprintHits, c.predicted]).toEqual([2 * n, n - 1]);
    // No arena chunk: 16-byte records (two 64 KiB chunks) and 4-byte index slots at load ≤ ½
    // (16,384 for 6000 series); the other tables empty.
    expect(c.bytes).toBeLessThanOrEqual(2 * 65_536 + 4 * 16_384 + 32 * 1024);
    // Another tenant's, and a record that differs in one byte: misses.
    const k = raw(labels(3));
    expect(c.find(k, 0, k.length, 2, 0)).toBe(false);
    k[k.length - 1] = k[k.length - 1]! ^ 1;
    expect(c.find(k, 0, k.length, 0, 0)).toBe(false);
  });

  it("compact entries survive promotion from the previous generation", () => {
    const c = new RawLabelsCache(1 << 17);
    const labels = (i: number): [string, string][] => [["__name__", "m"], ["i", String(i)]];
    const touchP = (i: number): boolean => {
      const k = raw(labels(i));
      if (c.find(k, 0, k.length, 0, 0)) {
        expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen))).toEqual(Buffer.from(canonical(labels(i))));
        return true;
      }
      c.add(k, 0, k.length, 0, 0, canonical(labels(i)), i, 0);
      return false;
    };
    expect(touchP(0)).toBe(false);
    let i = 1;
    while (c.rotations === 0) touchP(i++);
    expect(touchP(0)).toBe(true); // promoted
    expect(touchP(0)).toBe(true); // found in the current generation
  });
});

describe("RawLabelsCache arena chunks", () => {
  type Internal = { cur: { chunks: Uint8Array[] } };
  /** Keys and names of varied lengths (20–300 bytes), so entries end anywhere in a 4 KiB chunk. */
  const vkey = (i: number): Uint8Array => te.encode(`k${i}-${"x".repeat((i * 37) % 280)}`);
  const vname = (i: number): Uint8Array => te.encode(`n${i}-${"y".repeat((i * 53) % 200)}`);

  it.each([
    ["no rotation (64 MiB cap)", 64 << 20],
    ["with rotations (256 KiB cap)", 256 << 10],
  ])("agrees with a Map model when entries fill many 4 KiB chunks: %s", (_, cap) => {
    const c = new RawLabelsCache(cap, { chunkBytes: 4096 });
    const model = new Map<number, number>();
    let chunks = 0;
    let seed = 7;
    for (let step = 0; step < 30_000; step++) {
      // Mostly a sequential sweep (as senders repeat series in order), sometimes a random key.
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const i = seed % 5 === 0 ? seed % 3000 : step % 3000;
      const k = vkey(i);
      if (c.find(k, 0, k.length, 0, 0)) {
        expect(model.has(i)).toBe(true);
        expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen)).toString()).toBe(Buffer.from(vname(i)).toString());
        expect([c.hashLo, c.hashHi]).toEqual([i, model.get(i)]);
      } else {
        if (cap === 64 << 20) expect(model.has(i)).toBe(false); // nothing is evicted below the cap
        c.add(k, 0, k.length, 0, 0, vname(i), i, i * 3);
        model.set(i, i * 3);
      }
      chunks = Math.max(chunks, (c as unknown as Internal).cur.chunks.length);
      expect(c.bytes).toBeLessThanOrEqual(Math.max(cap, 1 << 17));
    }
    expect(chunks).toBeGreaterThan(20);
    if (cap === 64 << 20) {
      expect(c.entries).toBe(3000);
      // Sequential prediction follows successors across chunk boundaries: two sweeps in order,
      // the first relinks, the second is predicted throughout (key 0 follows key 2999).
      for (let round = 0; round < 2; round++) {
        const predicted = c.predicted;
        for (let i = 0; i < 3000; i++) {
          const k = vkey(i);
          expect(c.find(k, 0, k.length, 0, 0)).toBe(true);
          expect(Buffer.from(c.buffer.subarray(c.nameOff, c.nameOff + c.nameLen)).toString()).toBe(Buffer.from(vname(i)).toString());
        }
        if (round === 1) expect(c.predicted - predicted).toBe(3000);
      }
    } else expect(c.rotations).toBeGreaterThan(3);
  });

  it("grows without copying: a name found early is read from the same chunk after many more entries", () => {
    const c = new RawLabelsCache(64 << 20, { chunkBytes: 4096 });
    expect(touch(c, 0)).toBe(false);
    expect(touch(c, 0)).toBe(true);
    const first = c.buffer;
    for (let i = 1; i < 5000; i++) touch(c, i);
    expect((c as unknown as Internal).cur.chunks.length).toBeGreaterThan(50);
    expect(touch(c, 0)).toBe(true);
    expect(c.buffer).toBe(first);
  });

  it("does not cache an entry larger than a chunk", () => {
    const c = new RawLabelsCache(64 << 20, { chunkBytes: 4096 });
    const k = te.encode("k".repeat(5000));
    c.add(k, 0, k.length, 0, 0, name(1), 1, 2);
    expect(c.find(k, 0, k.length, 0, 0)).toBe(false);
    expect(touch(c, 1)).toBe(false);
    expect(touch(c, 1)).toBe(true);
  });
});
