/**
 * Per-part bloom filters over "keyed" items: items whose first byte is the table's bloom
 * namespace carry a uniformly distributed 8-byte key right after it (indexdb: the xxhash64 of
 * the metric name). Point lookups skip parts whose filter rules the key out.
 *
 * Layout (bloom.bin): `u32 magic "SBF1" | u32 bitsLog2 | u32 probes | words u32[] | u32 crc32`.
 */
import { fmix32 } from "@strata/core";
import { readU32 } from "../bytes.js";

export const BLOOM_BITS_PER_KEY = 16;
export const BLOOM_PROBES = 4;

export class Bloom {
  constructor(
    readonly words: Uint32Array,
    readonly mask: number,
  ) {}

  /** Builds a filter from key halves (hi, lo pairs). */
  static build(keys: Uint32Array, n: number): Bloom {
    let bits = 64;
    while (bits < n * BLOOM_BITS_PER_KEY) bits *= 2;
    const b = new Bloom(new Uint32Array(bits / 32), bits - 1);
    for (let i = 0; i < n; i++) b.add(keys[2 * i]!, keys[2 * i + 1]!);
    return b;
  }

  add(h1: number, h2: number): void {
    const w = this.words;
    const a = fmix32(h1 ^ fmix32(h2 ^ 0x5bd1e995));
    h2 = fmix32(h2) | 1;
    h1 = a;
    for (let i = 0; i < BLOOM_PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      w[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  mayContain(h1: number, h2: number): boolean {
    const w = this.words;
    if (w.length === 0) return false;
    const a = fmix32(h1 ^ fmix32(h2 ^ 0x5bd1e995));
    h2 = fmix32(h2) | 1;
    h1 = a;
    for (let i = 0; i < BLOOM_PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((w[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  get bytes(): number {
    return this.words.byteLength;
  }
}

/** Collects bloom keys (bytes 1..9 of keyed items) while a part is built. */
export class BloomKeys {
  keys = new Uint32Array(256);
  n = 0;

  constructor(readonly ns: number) {}

  addItem(b: Uint8Array, start: number, end: number): void {
    if (b[start] !== this.ns || end - start < 9) return;
    if (2 * this.n + 2 > this.keys.length) {
      const k = new Uint32Array(this.keys.length * 2);
      k.set(this.keys);
      this.keys = k;
    }
    this.keys[2 * this.n] = readU32(b, start + 1);
    this.keys[2 * this.n + 1] = readU32(b, start + 5);
    this.n++;
  }

  build(): Bloom | undefined {
    return this.n === 0 ? undefined : Bloom.build(this.keys, this.n);
  }
}
