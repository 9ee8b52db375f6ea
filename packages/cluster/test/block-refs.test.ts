import { describe, expect, it } from "vitest";
import { BlockRefs } from "../src/block-refs.js";
import { packRefsJob } from "../src/decode.js";

/**
 * select's blocks as rows into the received frames: a series' chain gives its blocks in the
 * order they arrived, across frames and nodes; a frame is dropped only when none of its blocks
 * is wanted any more.
 */

const bytes = (...b: number[]) => Uint8Array.from(b);

describe("BlockRefs", () => {
  it("chains blocks across frames, copies and views them in order, and drops a frame with its last block", () => {
    const refs = new BlockRefs();
    // Two "nodes'" frames; series a has a block in each, series b two in the first.
    const f0 = refs.addFrame(bytes(9, 1, 2, 3, 9, 4, 5, 6, 7));
    const f1 = refs.addFrame(bytes(8, 8, 10, 11));
    const a = refs.add(f0, 1, 4);
    const b = refs.add(f0, 5, 7);
    refs.link(b, refs.add(f0, 7, 9));
    const a2 = refs.add(f1, 2, 4);
    refs.link(a, a2);
    const table: [number, number[], number][] = [
      [a, [1, 2, 3, 10, 11], 2],
      [b, [4, 5, 6, 7], 2],
      [-1, [], 0],
    ];
    for (const [first, want, blocks] of table) {
      expect(refs.chainBlocks(first)).toBe(blocks);
      expect(refs.chainBytes).toBe(want.length);
      const out = new Uint8Array(want.length + 2);
      expect(refs.copyChain(first, out, 1)).toBe(want.length + 1);
      expect(Array.from(out.subarray(1, want.length + 1))).toEqual(want);
      expect(refs.views(first).flatMap((v) => Array.from(v))).toEqual(want);
    }
    refs.release(a);
    // f0 still holds b's blocks; f1's only block is gone.
    expect([refs.frames[f0]!.length, refs.frames[f1]!.length]).toEqual([9, 0]);
    refs.release(b);
    expect(refs.frames[f0]!.length).toBe(0);
  });

  it("packs a job with each series' blocks in chain order", () => {
    const big = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const { refs, firsts } = BlockRefs.ofWire([[bytes(1, 2)], [big.subarray(0, 100), big.subarray(100, 300)], []]);
    const job = packRefsJob(7, refs, firsts, 10, 20, 0);
    expect(Array.from(job.meta)).toEqual([10, 20, 0, 3, 1, 2, 0]);
    expect(Array.from(job.data)).toEqual([1, 2, ...Array.from(big)]);
  });
});
