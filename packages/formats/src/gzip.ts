import { createGunzip, createInflate } from "node:zlib";
import type { Transform } from "node:stream";
import { BadDataError, PayloadTooLargeError, UnsupportedMediaTypeError } from "@strata/core";

export interface DecompressOptions {
  /** Largest decompressed size accepted; more is a PayloadTooLargeError (413). */
  readonly maxBytes: number;
}

/**
 * Decompresses a gzip (or zlib `deflate`) stream chunk by chunk with a cap on the decompressed
 * size, so a small "zip bomb" body cannot exhaust memory: zlib output is pulled only as the
 * consumer asks for it, and the stream is destroyed as soon as the cap is passed.
 * Corrupt input is a BadDataError naming the compressed byte offset reached.
 */
export async function* decompressChunks(
  chunks: AsyncIterable<Uint8Array>,
  encoding: "gzip" | "deflate",
  opts: DecompressOptions,
): AsyncGenerator<Uint8Array> {
  const z: Transform = encoding === "gzip" ? createGunzip() : createInflate();
  let inBytes = 0;
  let outBytes = 0;
  let feedError: unknown;
  const feed = (async () => {
    try {
      for await (const c of chunks) {
        inBytes += c.length;
        if (z.destroyed) return;
        if (!z.write(c)) await drainOrClose(z);
        if (z.destroyed) return;
      }
      z.end();
    } catch (err) {
      feedError = err;
      z.destroy();
    }
  })();
  try {
    for await (const out of z as AsyncIterable<Buffer>) {
      outBytes += out.length;
      if (outBytes > opts.maxBytes) {
        throw new PayloadTooLargeError(`${encoding}: decompressed body is larger than ${opts.maxBytes} bytes`);
      }
      yield new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
  } catch (err) {
    if (feedError !== undefined) throw feedError;
    if (err instanceof PayloadTooLargeError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new BadDataError(`${encoding}: invalid compressed body near byte ${inBytes}: ${msg}`, "STRATA_BAD_REQUEST", { cause: err });
  } finally {
    z.destroy();
    await feed.catch(() => undefined);
  }
  if (feedError !== undefined) throw feedError;
}

/**
 * Chunks of a request body decoded by its Content-Encoding: identity (none), `gzip`,
 * `x-gzip` or `deflate`; anything else is an UnsupportedMediaTypeError (415).
 * `maxBytes` caps the decoded size for every encoding (including identity).
 */
export function decodeBody(
  chunks: AsyncIterable<Uint8Array>,
  contentEncoding: string | undefined,
  opts: DecompressOptions,
): AsyncIterable<Uint8Array> {
  const enc = (contentEncoding ?? "").trim().toLowerCase();
  switch (enc) {
    case "":
    case "identity":
      return capChunks(chunks, opts.maxBytes);
    case "gzip":
    case "x-gzip":
      return decompressChunks(chunks, "gzip", opts);
    case "deflate":
      return decompressChunks(chunks, "deflate", opts);
    default:
      throw new UnsupportedMediaTypeError(`unsupported Content-Encoding ${JSON.stringify(contentEncoding)}; want gzip, deflate or none`);
  }
}

async function* capChunks(chunks: AsyncIterable<Uint8Array>, max: number): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    if (n > max) throw new PayloadTooLargeError(`body is larger than ${max} bytes`);
    yield c;
  }
}

function drainOrClose(z: Transform): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      z.off("drain", done);
      z.off("close", done);
      resolve();
    };
    z.on("drain", done);
    z.on("close", done);
  });
}
