import { BaseServerInterceptingCall } from "@grpc/grpc-js/build/src/server-interceptors.js";

/** gRPC's message prefix: a compressed flag (0) and the message length (u32, big-endian). */
export const GRPC_PREFIX_BYTES = 5;

/**
 * A streamed response whose bytes were built behind 5 bytes of room for gRPC's message prefix
 * (SearchFrameWriter with `grpcPrefix`). A grpc-js server serializes a message into a new buffer
 * of prefix + bytes, a copy of every frame: on a 9 MB search that copy, the allocation of the
 * fresh buffers and the garbage they leave were ~30 % of a storage node's CPU. With
 * `sendPreFramedWithoutCopy()` in effect, grpc-js writes the prefix into the room and sends the
 * caller's memory itself; the caller must not touch it before the write's callback (the HTTP/2
 * stream has taken it). Without it, the message is serialized like any other (copied).
 */
export class PreFramedMessage {
  /** `framed`: GRPC_PREFIX_BYTES of room, then the message's bytes. */
  constructor(readonly framed: Buffer) {}

  /** The message's bytes (what a copying serializer sends). */
  get body(): Buffer {
    return this.framed.subarray(GRPC_PREFIX_BYTES);
  }

  /** Writes the prefix (uncompressed, length) into the room and returns the framed bytes. */
  frame(): Buffer {
    const f = this.framed;
    f[0] = 0;
    f.writeUInt32BE(f.length - GRPC_PREFIX_BYTES, 1);
    return f;
  }
}

let installed: boolean | undefined;
let sentWithoutCopy = 0;

/** PreFramedMessages grpc-js sent from the caller's memory since the process started. */
export function preFramedSends(): number {
  return sentWithoutCopy;
}

/**
 * Makes every grpc-js server in the process send PreFramedMessages without a copy; other
 * messages are serialized as before. grpc-js (1.x) frames a server message in
 * BaseServerInterceptingCall.serializeMessage — `handler.serialize`, then a new buffer of
 * prefix + bytes — and writes its result to the HTTP/2 stream; this wraps that method. Returns
 * whether it is in effect (false when a grpc-js version lacks the method: messages are then
 * copied as before, nothing else changes).
 */
export function sendPreFramedWithoutCopy(): boolean {
  if (installed !== undefined) return installed;
  const proto = BaseServerInterceptingCall.prototype as unknown as { serializeMessage?: (value: unknown) => Buffer };
  const serialize = proto.serializeMessage;
  if (typeof serialize !== "function") return (installed = false);
  proto.serializeMessage = function (this: unknown, value: unknown): Buffer {
    if (!(value instanceof PreFramedMessage)) return serialize.call(this, value);
    sentWithoutCopy++;
    return value.frame();
  };
  return (installed = true);
}
