/**
 * The Prometheus stale marker: the NaN with bits 0x7ff0000000000002 (Prometheus'
 * `value.StaleNaN`). Doubles keep their NaN payload through typed arrays and DataView, so the
 * marker survives rows batches and blocks; V8 may set the quiet bit (0x7ff8000000000002) when a
 * signalling NaN passes through a plain JS array, and nothing else produces that payload, so both
 * forms count as the marker.
 */

/** Bits of the stale marker. */
export const STALE_NAN_BITS = 0x7ff0000000000002n;
/** High 32 bits of the marker, and of its quieted form. */
export const STALE_NAN_HI = 0x7ff00000;
export const STALE_NAN_HI_QUIET = 0x7ff80000;
/** Low 32 bits of the marker (the payload). */
export const STALE_NAN_LO = 0x00000002;

/** The marker as a one-element array: copy it with `.set` to write its exact bits. */
export const STALE_NAN_ARRAY: Float64Array = new Float64Array(new BigUint64Array([STALE_NAN_BITS]).buffer);
/** The marker's 8 bytes (little endian), for writers that copy bytes. */
export const STALE_NAN_BYTES: Uint8Array = new Uint8Array(STALE_NAN_ARRAY.buffer);
/** The marker as a double. */
export const STALE_NAN: number = STALE_NAN_ARRAY[0]!;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// Typed arrays use the platform byte order; every supported platform is little-endian.

/** True when `v` is the stale marker (either form). */
export function isStaleNaN(v: number): boolean {
  if (v === v) return false;
  f64[0] = v;
  return u32[0] === STALE_NAN_LO && (u32[1] === STALE_NAN_HI || u32[1] === STALE_NAN_HI_QUIET);
}
