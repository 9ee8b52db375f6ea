import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { cluster, SearchFrameReader, SearchFrameWriter } from "@strata/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

interface Block {
  metricName: Uint8Array;
  encoding: number;
  data: Uint8Array;
  rowsCount: number;
  minT: number;
  maxT: number;
}

const int64 = fc.oneof(fc.constant(0), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.maxSafeInteger(), fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }));
const block: fc.Arbitrary<Block> = fc.record({
  metricName: fc.uint8Array({ maxLength: 300 }),
  encoding: fc.constantFrom(0, 1, 2, 200),
  data: fc.uint8Array({ maxLength: 500 }),
  rowsCount: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
  minT: int64,
  maxT: int64,
});

function write(blocks: readonly Block[]): Buffer {
  const w = new SearchFrameWriter(16);
  for (const b of blocks) {
    const at = w.appendBlock(b.metricName, b.encoding, b.rowsCount, b.minT, b.maxT, b.data.length);
    w.buf.set(b.data, at);
  }
  return Buffer.from(w.view());
}

function read(frame: Uint8Array): Block[] {
  const r = new SearchFrameReader(frame);
  const out: Block[] = [];
  while (r.next()) out.push({ metricName: Uint8Array.from(r.metricName), encoding: r.encoding, data: Uint8Array.from(r.data), rowsCount: r.rowsCount, minT: r.minT, maxT: r.maxT });
  return out;
}

describe("Search_v1 frames (SearchFrameWriter / SearchFrameReader)", () => {
  it("writes exactly what protobuf-es writes, and reads what it reads", () => {
    fc.assert(
      fc.property(fc.array(block, { maxLength: 8 }), (blocks) => {
        const frame = write(blocks);
        const msg = create(cluster.SearchResponseSchema, {
          blocks: blocks.map((b) => ({ ...b, minTimestampMs: BigInt(b.minT), maxTimestampMs: BigInt(b.maxT) })),
        });
        // Same bytes up to field order: protobuf-es decodes ours, ours decodes protobuf-es'.
        const decoded = fromBinary(cluster.SearchResponseSchema, frame);
        expect(toBinary(cluster.SearchResponseSchema, decoded)).toEqual(toBinary(cluster.SearchResponseSchema, msg));
        expect(read(toBinary(cluster.SearchResponseSchema, msg))).toEqual(blocks);
        expect(read(frame)).toEqual(blocks);
      }),
      { numRuns: 300 },
    );
  });

  it("starts a new frame in the same memory after reset()", () => {
    const w = new SearchFrameWriter(4);
    w.appendBlock(new Uint8Array([1, 2]), 2, 3, 4, 5, 0);
    expect(w.blocks).toBe(1);
    const a = Buffer.from(w.view());
    w.reset();
    expect([w.len, w.blocks]).toEqual([0, 0]);
    w.appendBlock(new Uint8Array([9]), 1, 1, -1, 1, 0);
    expect(w.view().buffer).toBe(w.buf.buffer); // a view, not a copy
    expect(read(w.view())).toEqual([{ metricName: new Uint8Array([9]), encoding: 1, data: new Uint8Array(0), rowsCount: 1, minT: -1, maxT: 1 }]);
    expect(read(a)[0]!.minT).toBe(4);
  });

  it("rejects truncated and malformed frames with a byte offset", () => {
    const frame = write([{ metricName: new Uint8Array([1, 2, 3]), encoding: 2, data: new Uint8Array(20), rowsCount: 7, minT: 1, maxT: 2 }]);
    for (let cut = 1; cut < frame.length; cut++) expect(() => read(frame.subarray(0, cut))).toThrow(/at byte \d+/);
    expect(() => read(new Uint8Array([0x0b]))).toThrow(/wire type/);
    // Unknown fields are skipped (field 15 as a varint; field 2 is SearchResponse.end).
    expect(read(new Uint8Array([0x78, 0x05, ...frame]))).toHaveLength(1);
  });
});
