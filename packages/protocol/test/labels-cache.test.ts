import { describe, expect, it } from "vitest";
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
