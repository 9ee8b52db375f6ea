/** Growth of the buffers that writers append into. */

/** `cap` doubled until it holds `need` (at least 16). */
export function grownCapacity(cap: number, need: number): number {
  let c = Math.max(16, cap);
  while (c < need) c *= 2;
  return c;
}

/** A new buffer of at least `need` bytes (doubling `buf`'s size) holding a copy of buf[0, used). */
export function growBytes(buf: Uint8Array, used: number, need: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(grownCapacity(buf.length * 2, need));
  next.set(buf.subarray(0, used));
  return next;
}
