import { createRequire } from "node:module";
import type { xxh64 as NativeXxh64 } from "@node-rs/xxhash";

/**
 * xxhash64 (XXH64) two ways, with the same values: the native `@node-rs/xxhash` addon for the
 * hot paths (index creation, limitk), loaded on the first call because mapping it costs a process
 * ~10 MB of RSS; and a pure-JS BigInt version for a few hashes per process (a rule group's
 * evaluation offset), so processes that only need those never load the addon.
 */

let native: typeof NativeXxh64 | undefined;

function loadNative(): typeof NativeXxh64 {
  const mod = createRequire(import.meta.url)("@node-rs/xxhash") as { xxh64: typeof NativeXxh64 };
  native = mod.xxh64;
  return native;
}

/** xxhash64 of bytes (or a string's UTF-8 bytes) as an unsigned bigint, through the native addon. */
export function xxhash64Native(input: Uint8Array | string, seed: bigint): bigint {
  return (native ?? loadNative())(input, seed);
}

const MASK = 0xffff_ffff_ffff_ffffn;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & MASK;
const round = (acc: bigint, input: bigint): bigint => (rotl((acc + input * P2) & MASK, 31n) * P1) & MASK;
const mergeRound = (acc: bigint, v: bigint): bigint => (((acc ^ round(0n, v)) * P1) + P4) & MASK;

/**
 * xxhash64 in pure JS (BigInt arithmetic, about a microsecond per short input): the same value as
 * the native addon, for callers that hash a handful of inputs per process.
 */
export function xxhash64Small(bytes: Uint8Array, seed = 0n): bigint {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  seed &= MASK;
  let i = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & MASK;
    let v2 = (seed + P2) & MASK;
    let v3 = seed;
    let v4 = (seed - P1) & MASK;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, dv.getBigUint64(i, true));
      v2 = round(v2, dv.getBigUint64(i + 8, true));
      v3 = round(v3, dv.getBigUint64(i + 16, true));
      v4 = round(v4, dv.getBigUint64(i + 24, true));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & MASK;
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = (seed + P5) & MASK;
  }
  h = (h + BigInt(len)) & MASK;
  for (; i + 8 <= len; i += 8) {
    h ^= round(0n, dv.getBigUint64(i, true));
    h = (rotl(h, 27n) * P1 + P4) & MASK;
  }
  if (i + 4 <= len) {
    h ^= (BigInt(dv.getUint32(i, true)) * P1) & MASK;
    h = (rotl(h, 23n) * P2 + P3) & MASK;
    i += 4;
  }
  for (; i < len; i++) {
    h ^= (BigInt(bytes[i]!) * P5) & MASK;
    h = (rotl(h, 11n) * P1) & MASK;
  }
  h ^= h >> 33n;
  h = (h * P2) & MASK;
  h ^= h >> 29n;
  h = (h * P3) & MASK;
  h ^= h >> 32n;
  return h;
}
