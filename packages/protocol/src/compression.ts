import { BadDataError } from "@strata/core";
import {
  lz4Compress,
  lz4CompressAsync,
  lz4Decompress,
  snappyDeclaredSize,
  snappyDecode as encodingSnappyDecode,
  snappyEncode as encodingSnappyEncode,
} from "@strata/encoding";
import { create } from "@bufbuild/protobuf";
import { Compression, WriteRowsRequestSchema, type WriteRowsRequest } from "./gen/strata/cluster/v1/cluster_pb.js";

/**
 * Compression at the protocol edges, over @strata/encoding's native wrappers. Snappy (block
 * format) is what remote write senders use; lz4 carries rows batches from insert to storage
 * (docs/format/cluster-rpc.md). Errors are rephrased for the edge they happen at.
 */

function why(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Decompresses a snappy block-format body; BadDataError naming the problem when it is not one. */
export function snappyDecode(body: Uint8Array, maxSize: number): Uint8Array {
  const n = snappyUncompressedLength(body);
  if (n > maxSize) {
    throw new BadDataError(`snappy body decompresses to ${n} bytes, more than the limit of ${maxSize}`, "STRATA_BAD_REQUEST");
  }
  try {
    return encodingSnappyDecode(body, maxSize);
  } catch (e) {
    throw new BadDataError(`cannot decompress snappy body: ${why(e)}`, "STRATA_PARSE_ERROR");
  }
}

/** The uncompressed length a snappy body declares; BadDataError when its header is malformed. */
export function snappyUncompressedLength(body: Uint8Array): number {
  try {
    return snappyDeclaredSize(body);
  } catch (e) {
    throw new BadDataError(`cannot decompress snappy body: bad length header (${why(e)})`, "STRATA_PARSE_ERROR");
  }
}

/** Decodes snappy bodies into one buffer it reuses (@strata/encoding; for one body at a time). */
export { SnappyBlockDecoder } from "@strata/encoding";

export function snappyEncode(data: Uint8Array): Uint8Array {
  return encodingSnappyEncode(data);
}

/**
 * Builds a WriteRows_v1 request for a rows batch. The lz4 payload is lz4-napi's block output
 * (u32 LE uncompressed size, then one LZ4 block).
 */
export function encodeWriteRows(batch: Uint8Array, rowsCount: number): WriteRowsRequest {
  return writeRowsRequest(lz4Compress(batch), batch.length, rowsCount);
}

/** encodeWriteRows compressing on a pool thread; `batch` must not change until it resolves. */
export async function encodeWriteRowsAsync(batch: Uint8Array, rowsCount: number): Promise<WriteRowsRequest> {
  return writeRowsRequest(await lz4CompressAsync(batch), batch.length, rowsCount);
}

function writeRowsRequest(rows: Uint8Array, uncompressedSize: number, rowsCount: number): WriteRowsRequest {
  return create(WriteRowsRequestSchema, { rows, compression: Compression.LZ4, rowsCount, uncompressedSize });
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
      let out: Uint8Array;
      try {
        out = lz4Decompress(req.rows, req.uncompressedSize);
      } catch (e) {
        throw new BadDataError(`WriteRows_v1: cannot decompress lz4 rows: ${why(e)}`, "STRATA_CORRUPT_DATA");
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
