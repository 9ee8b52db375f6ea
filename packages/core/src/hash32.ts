/**
 * A fast 32-bit hash of a byte range for in-process hash tables and routing: little-endian
 * 32-bit words read through a DataView (one load per 4 bytes), each folded in as
 * `h = (h ^ w) · 0x01000193; h ^= h >>> 15`, then the tail bytes, then a final mix. The
 * initial state is `0x811c9dc5 ^ seed ^ length`. Not for anything stored on disk (use xxhash64).
 */
export function hash32(dv: DataView, start: number, end: number, seed = 0): number {
  let h = (0x811c9dc5 ^ seed ^ (end - start)) | 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ dv.getInt32(i, true), 0x01000193);
    h ^= h >>> 15;
  }
  for (; i < end; i++) h = Math.imul(h ^ dv.getUint8(i), 0x01000193);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  return (h ^ (h >>> 15)) >>> 0;
}

/** A DataView over exactly the bytes of `b`. */
export function dataViewOf(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
