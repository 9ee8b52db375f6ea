import { BadDataError } from "@strata/core";
import { compressSync as lz4Compress, uncompressSync as lz4Uncompress } from "lz4-napi";
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from "snappy";
import { create } from "@bufbuild/protobuf";
import { Compression, WriteRowsRequestSchema, type WriteRowsRequest } from "./gen/strata/cluster/v1/cluster_pb.js";

/**
 * Compression at the protocol edges. Snappy (block format) is what remote write senders use;
 * lz4 carries rows batches from insert to storage (docs/format/cluster-rpc.md).
 *
 * Both go through native bindings (snappy, lz4-napi) directly; @strata/encoding's wrappers
 * were not published yet when this was written — switch to them once they are.
 */

/** Decompresses a snappy block-format body; BadDataError naming the problem when it is not one. */
export function snappyDecode(body: Uint8Array, maxSize: number): Uint8Array {
  const n = snappyUncompressedLength(body);
  if (n > maxSize) {
    throw new BadDataError(`snappy body decompresses to ${n} bytes, more than the limit of ${maxSize}`, "STRATA_BAD_REQUEST");
  }
  try {
    const out = snappyUncompress(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { asBuffer: true });
    return out as Buffer;
  } catch (e) {
    throw new BadDataError(`cannot decompress snappy body: ${e instanceof Error ? e.message : String(e)}`, "STRATA_PARSE_ERROR");
  }
}

/** The uncompressed length from a snappy block header (uvarint); BadDataError when malformed. */
export function snappyUncompressedLength(body: Uint8Array): number {
  let n = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (i >= body.length) break;
    const b = body[i]!;
    n += (b & 0x7f) * mul;
    if (b < 0x80) return n;
    mul *= 128;
  }
  throw new BadDataError("cannot decompress snappy body: bad length header", "STRATA_PARSE_ERROR");
}

export function snappyEncode(data: Uint8Array): Uint8Array {
  return snappyCompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/**
 * Builds a WriteRows_v1 request for a rows batch. The lz4 payload is lz4-napi's block output
 * (u32 LE uncompressed size, then one LZ4 block).
 */
export function encodeWriteRows(batch: Uint8Array, rowsCount: number): WriteRowsRequest {
  const rows = lz4Compress(Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength));
  return create(WriteRowsRequestSchema, {
    rows,
    compression: Compression.LZ4,
    rowsCount,
    uncompressedSize: batch.length,
  });
}

/** The rows batch carried by a WriteRows_v1 request; BadDataError when it is malformed. */
export function decodeWriteRows(req: WriteRowsRequest, maxSize = 512 * 1024 * 1024): Uint8Array {
  switch (req.compression) {
    case Compression.NONE:
      return req.rows;
    case Compression.LZ4: {
      if (req.uncompressedSize > maxSize) {
        throw new BadDataError(`WriteRows_v1: batch of ${req.uncompressedSize} bytes exceeds ${maxSize}`);
      }
      let out: Buffer;
      try {
        out = lz4Uncompress(Buffer.from(req.rows.buffer, req.rows.byteOffset, req.rows.byteLength));
      } catch (e) {
        throw new BadDataError(`WriteRows_v1: cannot decompress lz4 rows: ${e instanceof Error ? e.message : String(e)}`, "STRATA_CORRUPT_DATA");
      }
      if (out.length !== req.uncompressedSize) {
        throw new BadDataError(
          `WriteRows_v1: rows decompress to ${out.length} bytes, header says ${req.uncompressedSize}`,
          "STRATA_CORRUPT_DATA",
        );
      }
      return out;
    }
    default:
      throw new BadDataError(`WriteRows_v1: unknown compression ${String(req.compression)}`);
  }
}
