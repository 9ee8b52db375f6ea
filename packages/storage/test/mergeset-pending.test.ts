import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PendingItems } from "../src/mergeset/pending.js";

/** The items of a part in its order, as hex. */
function partItems(p: PendingItems, blockSize: number): string[] {
  const part = p.toPart(blockSize, 0x01);
  const out: string[] = [];
  for (let b = 0; b < part.blocksCount; b++) {
    const blk = part.block(b);
    for (let i = 0; i < blk.n; i++) out.push(Buffer.from(blk.data.subarray(blk.offs[i]!, blk.offs[i + 1]!)).toString("hex"));
  }
  return out;
}

/** Byte order, duplicates dropped: what every part must hold. */
function want(items: readonly Uint8Array[]): string[] {
  const s = [...items].sort((a, b) => Buffer.compare(a, b)).map((a) => Buffer.from(a).toString("hex"));
  return s.filter((x, i) => i === 0 || s[i - 1] !== x);
}

// Items like the index's: a few kinds, long shared prefixes, bytes 0/1/255 (the sort's edge
// values), lengths around the 5-byte digit, prefixes of one another, duplicates.
const byte = fc.constantFrom(0, 1, 2, 0x30, 0x61, 0xfe, 0xff);
const item = fc.tuple(
  fc.constantFrom(Uint8Array.of(), Uint8Array.of(3, 0, 0, 0, 0, 0, 0, 0, 0, 0x5f, 0x5f, 0x6e), Uint8Array.of(4, 0, 0), Uint8Array.of(1)),
  fc.array(byte, { maxLength: 11, size: "max" }),
);

describe("mergeset pending items", () => {
  it("come out of toPart sorted in byte order without duplicates, in blocks", () => {
    const p = new PendingItems();
    fc.assert(
      fc.property(fc.array(item, { maxLength: 300, size: "max" }), fc.integer({ min: 1, max: 64 }), (tuples, blockSize) => {
        const items = tuples.map(([pre, rest]) => Uint8Array.from([...pre, ...rest]));
        // offsets into a shared buffer, as the index adds them
        const buf = new Uint8Array(items.reduce((n, x) => n + x.length + 3, 0));
        let pos = 0;
        for (const x of items) {
          buf.set(x, pos + 3);
          p.add(buf, pos + 3, pos + 3 + x.length);
          pos += x.length + 3;
        }
        expect(partItems(p, blockSize)).toEqual(want(items));
        expect(p.count).toBe(0); // reusable
      }),
      { numRuns: 1500 },
    );
  });

  it("sorts 100k index-like items (long ties beyond the first digits)", () => {
    const p = new PendingItems();
    const items: Uint8Array[] = [];
    for (let i = 0; i < 100_000; i++) {
      const id = Buffer.alloc(8);
      id.writeBigUInt64BE(BigInt((i * 7919) % 50_000));
      const label = `__name__\u0001node_metric_${i % 97}_total\u0001`;
      const x = Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from(i % 3 === 0 ? `i\u0001${i % 1000}\u0001` : label), ...id]);
      items.push(x);
      p.add(x, 0, x.length);
    }
    expect(partItems(p, 16 * 1024)).toEqual(want(items));
  });
});
