import type { ByteBuffer } from "./bytes.js";
import { GROUP_RADIX_FLAG, GROUP_SHIFT_FLAG, GROUP_SIZE, MAX_PACK_WIDTH } from "./constants.js";
import { corrupt } from "./errors.js";
import { getUvarint, getZigzag, putZigzag, uvarintSize, varintResult, writeUvarint, zigzagSize } from "./varint.js";

/**
 * Frame-of-reference bit-packing in groups of GROUP_SIZE integers.
 *
 * Each group stores its minimum once and every value as `(x - min) >> shift` in `width` bits,
 * where `shift` is the count of trailing zero bits all `x - min` share (page-sized byte gauges,
 * sector counters, quantised deltas). Groups keep one outlier (a counter reset, a missed scrape)
 * from widening a whole block: it only widens its own group.
 *
 *   group := header:u8 [shift:u8 if header & 0x40] zigzag(min) packed:ceil(len*width/8) bytes
 *   header := width (0..53) | 0x40 if a shift byte follows
 *
 * Bits are packed little-endian: value i occupies bits [i*width, (i+1)*width) of the group's
 * byte string, bit 0 being the least significant bit of the first byte.
 *
 * Inputs are integers with |x| < 2^53. A group whose range max-min is >= 2^53 cannot be
 * represented exactly; `forSize` reports Infinity for such input and the caller must pick
 * another layout.
 */

const TWO_32 = 4294967296;
export const MAX_SAFE_RANGE = 9007199254740991;
const POW2: number[] = [];
for (let i = 0; i <= 64; i++) POW2.push(2 ** i);

/** Bits needed for 0 <= v < 2^53. */
export function bitLength(v: number): number {
  if (v < TWO_32) return 32 - Math.clz32(v);
  return 64 - Math.clz32(Math.floor(v / TWO_32));
}

function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

// Group analysis results (module state instead of an object per group).
let gMin = 0;
let gWidth = 0;
let gShift = 0;
/** (max - min) >> shift of the analysed group. */
let gRange = 0;
/** Values equal to the minimum in the analysed group. */
let gAtMin = 0;

/** Analyses x[i0, i0+len): sets gMin, gWidth, gShift. Returns false if the range is unsafe. */
function analyse(x: Float64Array, i0: number, len: number): boolean {
  const end = i0 + len;
  let min = x[i0] as number;
  let max = min;
  for (let i = i0 + 1; i < end; i++) {
    const v = x[i] as number;
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  const range = max - min;
  gMin = min;
  gShift = 0;
  if (range > MAX_SAFE_RANGE) return false;
  if (range === 0) {
    gWidth = 0;
    gRange = 0;
    return true;
  }
  let orLo = 0;
  let orHi = 0;
  gAtMin = 0;
  if (range < TWO_32) {
    for (let i = i0; i < end; i++) {
      const d = (x[i] as number) - min;
      orLo |= d;
      if (d === 0) gAtMin++;
    }
  } else {
    for (let i = i0; i < end; i++) {
      const d = (x[i] as number) - min;
      orLo |= d >>> 0;
      orHi |= Math.floor(d / TWO_32);
    }
  }
  const shift = orLo !== 0 ? ctz32(orLo) : ctz32(orHi) + 32;
  gShift = shift;
  gRange = shift === 0 ? range : range / (POW2[shift] as number);
  gWidth = bitLength(gRange);
  return true;
}

// Radix packing: when the range is far from a power of two (jitter of ±5 ms has 11 values,
// 3.46 bits of information, 4 bits packed), values are packed as digits of base range+1:
// k digits make one chunk c = Σ v[j]·base^j < 2^30 (so decoding stays in small-integer
// arithmetic), written in bitLength(base^k - 1) bits.
let rK = 0;
let rChunkBits = 0;

/** radixBytes' last arguments and answer (rK and rChunkBits follow the range alone). */
let lastRange = 0;
let lastLen = 0;
let lastBytes = 0;

/** Packed bytes of len values in radix mode for base = range+1 (sets rK, rChunkBits). */
function radixBytes(range: number, len: number): number {
  if (range === lastRange && len === lastLen) return lastBytes;
  lastBytes = radixBytesOf(range, len);
  lastRange = range;
  lastLen = len;
  return lastBytes;
}

function radixBytesOf(range: number, len: number): number {
  const base = range + 1;
  let p = 1;
  let k = 0;
  while (p * base <= TWO_30) {
    p *= base;
    k++;
  }
  rK = k;
  rChunkBits = bitLength(p - 1);
  const full = Math.floor(len / k);
  const rest = len - full * k;
  let bits = full * rChunkBits;
  if (rest > 0) bits += bitLength(base ** rest - 1);
  return (bits + 7) >>> 3;
}

const TWO_30 = 1073741824;
const TWO_M40 = 2 ** -40;

/** Whether radix mode packs this group smaller than plain FOR; leaves rK etc. set if so. */
function useRadix(len: number): boolean {
  // Mostly-constant groups stay plain: their zero bits are byte-aligned runs lz4 can find.
  if (gWidth < 2 || gRange > 0xffff || gAtMin * 2 > len) return false;
  const plain = (len * gWidth + 7) >>> 3;
  return radixBytes(gRange, len) + uvarintSize(gRange) < plain;
}

/** Exact byte size of n values from x[start] in FOR groups, or Infinity if not representable. */
export function forSize(x: Float64Array, start: number, n: number): number {
  let size = 0;
  for (let i = 0; i < n; i += GROUP_SIZE) {
    const len = Math.min(GROUP_SIZE, n - i);
    if (!analyse(x, start + i, len)) return Infinity;
    const head = 1 + (gShift > 0 ? 1 : 0) + zigzagSize(gMin);
    size += head + (useRadix(len) ? radixBytes(gRange, len) + uvarintSize(gRange) : (len * gWidth + 7) >>> 3);
  }
  return size;
}

/** Appends n values from x[start] as FOR groups. Caller checked forSize(...) is finite. */
export function writeFor(out: ByteBuffer, x: Float64Array, start: number, n: number): void {
  for (let i = 0; i < n; i += GROUP_SIZE) {
    const len = Math.min(GROUP_SIZE, n - i);
    const i0 = start + i;
    if (!analyse(x, i0, len)) throw new RangeError("FOR group range exceeds 2^53");
    const width = gWidth;
    const shift = gShift;
    const min = gMin;
    if (useRadix(len)) {
      writeRadixGroup(out, x, i0, len, min, shift);
      continue;
    }
    const nbytes = (len * width + 7) >>> 3;
    out.ensure(11 + nbytes + 4);
    const buf = out.buf;
    let p = out.len;
    buf[p++] = width | (shift > 0 ? GROUP_SHIFT_FLAG : 0);
    if (shift > 0) buf[p++] = shift;
    p = putZigzag(buf, p, min);
    if (width > 0) {
      const end = i0 + len;
      const div = POW2[shift] as number;
      if (width <= 32) {
        let acc = 0;
        let nb = 0;
        for (let j = i0; j < end; j++) {
          const v = shift === 0 ? (x[j] as number) - min : ((x[j] as number) - min) / div;
          acc |= v << nb;
          nb += width;
          if (nb >= 32) {
            buf[p] = acc;
            buf[p + 1] = acc >>> 8;
            buf[p + 2] = acc >>> 16;
            buf[p + 3] = acc >>> 24;
            p += 4;
            nb -= 32;
            acc = nb === 0 ? 0 : v >>> (width - nb);
          }
        }
        while (nb > 0) {
          buf[p++] = acc;
          acc >>>= 8;
          nb -= 8;
        }
      } else {
        // Wide values (rare): split into a 32-bit low part and a high part.
        bw.buf = buf;
        bw.p = p;
        bw.acc = 0;
        bw.nb = 0;
        const hiWidth = width - 32;
        for (let j = i0; j < end; j++) {
          const v = ((x[j] as number) - min) / div;
          putBits(v >>> 0, 32);
          putBits(Math.floor(v / TWO_32), hiWidth);
        }
        while (bw.nb > 0) {
          bw.buf[bw.p++] = bw.acc;
          bw.acc >>>= 8;
          bw.nb -= 8;
        }
        p = bw.p;
      }
    }
    out.len = p;
  }
}

function writeRadixGroup(out: ByteBuffer, x: Float64Array, i0: number, len: number, min: number, shift: number): void {
  const base = gRange + 1;
  const k = rK;
  const chunkBits = rChunkBits;
  const nbytes = radixBytes(gRange, len);
  out.ensure(11 + 9 + nbytes + 8);
  const buf = out.buf;
  let p = out.len;
  buf[p++] = GROUP_RADIX_FLAG | (shift > 0 ? GROUP_SHIFT_FLAG : 0);
  if (shift > 0) buf[p++] = shift;
  p = putZigzag(buf, p, min);
  out.len = p;
  writeUvarint(out, gRange);
  p = out.len;
  const div = POW2[shift] as number;
  const b = out.buf;
  let acc = 0;
  let nb = 0;
  for (let j = 0; j < len; j += k) {
    const kk = Math.min(k, len - j);
    let c = 0;
    for (let d = kk - 1; d >= 0; d--) c = c * base + ((x[i0 + j + d] as number) - min) / div;
    const bits = kk === k ? chunkBits : bitLength(base ** kk - 1);
    acc |= c << nb;
    nb += bits;
    if (nb >= 32) {
      b[p] = acc;
      b[p + 1] = acc >>> 8;
      b[p + 2] = acc >>> 16;
      b[p + 3] = acc >>> 24;
      p += 4;
      nb -= 32;
      acc = nb === 0 ? 0 : c >>> (bits - nb);
    }
  }
  while (nb > 0) {
    b[p++] = acc;
    acc >>>= 8;
    nb -= 8;
  }
  out.len = p;
}

const bw: { buf: Uint8Array; p: number; acc: number; nb: number } = { buf: new Uint8Array(0), p: 0, acc: 0, nb: 0 };

function putBits(v: number, w: number): void {
  bw.acc |= v << bw.nb;
  bw.nb += w;
  if (bw.nb >= 32) {
    const b = bw.buf;
    const a = bw.acc;
    b[bw.p] = a;
    b[bw.p + 1] = a >>> 8;
    b[bw.p + 2] = a >>> 16;
    b[bw.p + 3] = a >>> 24;
    bw.p += 4;
    bw.nb -= 32;
    bw.acc = bw.nb === 0 ? 0 : v >>> (w - bw.nb);
  }
}

// The packed bytes of the group being read, copied to word alignment: the unpacking loops read
// whole little-endian 32-bit words, each value from at most two of them, with no branch on word
// boundaries. A group of values narrower than 32 bits (and a radix group: chunks < 2^30) fits
// in GROUP_SIZE words; one more word is read past the last value's word, whose bits are masked.
// A wide value (32 to 53 bits: wideAt) spans up to three words, two past the last value's.
const words = new Uint32Array(Math.ceil((GROUP_SIZE * MAX_PACK_WIDTH) / 32) + 2);
const wordBytes = new Uint8Array(words.buffer);

function loadWords(buf: Uint8Array, p: number, nbytes: number): void {
  // A narrow group is copied byte by byte: cheaper than the view `set` needs.
  if (nbytes <= 64) {
    const w = wordBytes;
    for (let i = 0; i < nbytes; i++) w[i] = buf[p + i]!;
  } else {
    wordBytes.set(buf.subarray(p, p + nbytes));
  }
}

/**
 * out[o..o+len) = min + mul × the len `width`-bit values (0 < width < 32) in `words` (mul =
 * 2^shift; times 1 is exact and costs less than a test per value).
 */
function unpack(out: Float64Array, o: number, len: number, width: number, min: number, mul: number): void {
  const W = words;
  const mask = 0xffffffff >>> (32 - width);
  let pos = 0;
  const end = o + len;
  for (let j = o; j < end; j++) {
    const w = pos >>> 5;
    const b = pos & 31;
    // `(x << 1) << (31 - b)` is x << (32 - b) for b = 0 too (a shift count of 32 is 0 in JS).
    out[j] = min + (((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) & mask) * mul;
    pos += width;
  }
}

/**
 * Reads n values of FOR groups at buf[p] (bounded by end) into out[outStart...]; returns the
 * position after the last group. Throws STRATA_CORRUPT_DATA on any malformed group.
 */
export function readFor(buf: Uint8Array, p: number, end: number, out: Float64Array, outStart: number, n: number): number {
  for (let i = 0; i < n; i += GROUP_SIZE) {
    const len = Math.min(GROUP_SIZE, n - i);
    p = readGroupHeader(buf, p, end);
    const width = hWidth;
    const shift = hShift;
    const min = hMin;
    if (hRadix) {
      p = readRadixGroup(buf, p, end, out, outStart + i, len, min, shift);
      continue;
    }
    const nbytes = (len * width + 7) >>> 3;
    if (nbytes > end - p) throw corrupt(`bit-packed group needs ${nbytes} bytes, have ${end - p}`, p);
    const o0 = outStart + i;
    const oEnd = o0 + len;
    if (width === 0) {
      out.fill(min, o0, oEnd);
    } else if (width < 32) {
      loadWords(buf, p, nbytes);
      unpack(out, o0, len, width, min, POW2[shift] as number);
    } else {
      loadWords(buf, p, nbytes);
      const mul = POW2[shift] as number;
      const hiMask = width === 32 ? 0 : 0xffffffff >>> (64 - width);
      let pos = 0;
      for (let j = o0; j < oEnd; j++) {
        const lo = wideAt(pos, hiMask);
        out[j] = min + (wideHi * TWO_32 + lo) * mul;
        pos += width;
      }
    }
    p += nbytes;
  }
  return p;
}

/** A radix group's base and packed size (readRadixHead). */
let radixBase = 0;
let radixNbytes = 0;

/**
 * Reads a radix group's range (at buf[p], after the group's header) and checks its packed size;
 * sets radixBase, radixNbytes (and rK, rChunkBits) and returns the position of the packed bytes.
 */
function readRadixHead(buf: Uint8Array, p: number, end: number, len: number): number {
  p = getUvarint(buf, p, end, 0xffff);
  const range = varintResult.v;
  if (range < 2) throw corrupt(`bad radix group range ${range}`, p);
  const nbytes = radixBytes(range, len);
  if (nbytes > end - p) throw corrupt(`radix group needs ${nbytes} bytes, have ${end - p}`, p);
  radixBase = range + 1;
  radixNbytes = nbytes;
  return p;
}

/** Bits of a chunk of kk digits in the radix group readRadixHead read last. */
function chunkBitsOf(kk: number): number {
  return kk === rK ? rChunkBits : bitLength(radixBase ** kk - 1);
}

/**
 * The field of `width` bits (32 ≤ width ≤ 53) at bit `pos` of the loaded words, as its low 32
 * bits (returned, unsigned) and the rest (left in wideHi): the value is wideHi·2^32 + the result.
 */
let wideHi = 0;
function wideAt(pos: number, hiMask: number): number {
  const w = pos >>> 5;
  const b = pos & 31;
  const W = words;
  // `(x << 1) << (31 - b)` is x << (32 - b) for b = 0 too (a shift count of 32 is 0 in JS).
  wideHi = ((W[w + 1]! >>> b) | ((W[w + 2]! << 1) << (31 - b))) & hiMask;
  return ((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) >>> 0;
}

/** The `bits`-bit field (bits < 32) at bit `pos` of the loaded words. */
function fieldAt(pos: number, bits: number): number {
  const w = pos >>> 5;
  const b = pos & 31;
  return ((words[w]! >>> b) | ((words[w + 1]! << 1) << (31 - b))) & (0xffffffff >>> (32 - bits));
}

function readRadixGroup(buf: Uint8Array, p: number, end: number, out: Float64Array, o0: number, len: number, min: number, shift: number): number {
  p = readRadixHead(buf, p, end, len);
  const base = radixBase;
  const nbytes = radixNbytes;
  const k = rK;
  const mul = POW2[shift] as number;
  // floor(c / base) as floor(c × inv): a multiplication in the chain of digits instead of a
  // division. inv is 1/base raised by 2^-40 (relative), so c × inv ≥ c / base even after
  // rounding, and for c < 2^30 it stays below floor(c / base) + 1 (the excess is at most
  // c / base × 2^-39 < 2^-9 / base, less than the 1/base gap to the next integer).
  const inv = (1 / base) * (1 + TWO_M40);
  loadWords(buf, p, nbytes);
  let pos = 0;
  for (let j = 0; j < len; j += k) {
    const kk = Math.min(k, len - j);
    const bits = chunkBitsOf(kk);
    let c = fieldAt(pos, bits);
    pos += bits;
    const o = o0 + j;
    for (let d = 0; d < kk; d++) {
      const t = (c * inv) | 0;
      out[o + d] = min + (c - t * base) * mul;
      c = t;
    }
    if (c !== 0) throw corrupt("radix chunk out of range", p);
  }
  return p + nbytes;
}

// ---- reading only the groups a caller wants ----------------------------------------------------

/**
 * Output indexes a selective read must produce, as sorted, disjoint [from, to) pairs in
 * `wantSegs[0..2·wantCount)`; set by `setWanted` before `readForSelected`. Groups are visited in
 * order, so a cursor finds each group's answer in amortised O(1).
 */
let wantSegs: Uint32Array = new Uint32Array(0);
let wantCount = 0;
let wantCursor = 0;

export function setWanted(segs: Uint32Array, count: number): void {
  wantSegs = segs;
  wantCount = count;
  wantCursor = 0;
}

/** Whether a wanted segment meets [a, b). Calls must come with non-decreasing a. */
export function wanted(a: number, b: number): boolean {
  const s = wantSegs;
  let c = wantCursor;
  while (c < wantCount && s[2 * c + 1]! <= a) c++;
  wantCursor = c;
  return c < wantCount && s[2 * c]! < b;
}

/** The running sum a `readForSelected(…, sum = true)` ends with. */
export let forSum = 0;

/** Values of one group decoded aside, for groups that are summed through their values. */
const groupScratch = new Float64Array(GROUP_SIZE);

/**
 * Like readFor, but only groups whose output range [outStart + i, outStart + i + len) meets a
 * wanted segment (setWanted) are written; the others are checked for size and skipped, and the
 * output there is left as it was.
 *
 * With `sum`, the values are deltas: out[j] receives the running sum `acc` (starting at `acc`)
 * after adding value j — what readIntLayout's DeltaPacked loop computes — and a skipped group
 * adds its total without writing: len·min + 2^shift·Σ fields, exact because every term and
 * partial sum is an integer below 2^53 (checked; a group outside that bound, a radix group and
 * a wide one are decoded aside and summed value by value, as the whole reader would). The final
 * sum is left in `forSum`.
 */
export function readForSelected(buf: Uint8Array, p: number, end: number, out: Float64Array, outStart: number, n: number, sum: boolean, acc: number): number {
  for (let i = 0; i < n; i += GROUP_SIZE) {
    const len = Math.min(GROUP_SIZE, n - i);
    const o0 = outStart + i;
    if (wanted(o0, o0 + len)) {
      const header = buf[p];
      if (sum && header !== undefined && (header & GROUP_RADIX_FLAG) === 0) {
        p = (header & 0x3f) < 32 ? sumGroupWanted(buf, p, end, out, o0, len, acc) : sumWideGroupWanted(buf, p, end, out, o0, len, acc);
        acc = forSum;
        continue;
      }
      if (sum && header !== undefined && (header & GROUP_RADIX_FLAG) !== 0) {
        p = sumRadixGroup(buf, p, end, out, o0, len, acc, true);
        acc = forSum;
        continue;
      }
      p = readFor(buf, p, end, out, o0, len);
      if (sum) {
        for (let j = o0; j < o0 + len; j++) {
          acc += out[j]!;
          out[j] = acc;
        }
      }
    } else if (!sum) {
      p = skipGroup(buf, p, end, len);
    } else {
      const header = buf[p];
      if (header !== undefined && (header & GROUP_RADIX_FLAG) === 0 && (header & 0x3f) < 32) {
        p = sumGroup(buf, p, end, len);
        acc += forSum;
      } else if (header !== undefined && (header & GROUP_RADIX_FLAG) === 0 && wideSummable(buf, p, end, len)) {
        p = sumWideGroup(buf, p, end, len);
        acc += forSum;
      } else if (header !== undefined && (header & GROUP_RADIX_FLAG) !== 0) {
        p = sumRadixGroup(buf, p, end, out, o0, len, acc, false);
        acc = forSum;
      } else {
        p = readFor(buf, p, end, groupScratch, 0, len);
        for (let j = 0; j < len; j++) acc += groupScratch[j]!;
      }
    }
  }
  forSum = acc;
  return p;
}

/**
 * Whether the group loadPlainGroup read last can be summed as integers: `n·min + 2^shift·Σ fields`
 * over any n of its values is the same number as adding them value by value, every partial sum
 * an exact integer (|min|·len + 2^(width + shift + 7) within 2^53; each running sum is a decoded
 * integer, so adding it to acc is exact as well).
 */
let plainGrouped = false;

/**
 * Reads the header of the plain group of len values at buf[p] (hWidth, hShift, hMin), checks its
 * size, loads its packed bytes (loadWords) and sets plainGrouped; returns the position after it.
 */
function loadPlainGroup(buf: Uint8Array, p: number, end: number, len: number): number {
  p = readGroupHeader(buf, p, end);
  const nbytes = (len * hWidth + 7) >>> 3;
  if (nbytes > end - p) throw corrupt(`bit-packed group needs ${nbytes} bytes, have ${end - p}`, p);
  loadWords(buf, p, nbytes);
  plainGrouped = Math.abs(hMin) * len + (POW2[hWidth + hShift + 7] as number) <= MAX_SAFE_RANGE;
  return p + nbytes;
}

/**
 * A plain group (width < 32) of deltas that meets a wanted segment: adds every value to the
 * running sum in order (as the whole reader does) and stores the sum only at wanted indexes;
 * leaves the final sum in forSum.
 */
function sumGroupWanted(buf: Uint8Array, p: number, end: number, out: Float64Array, o0: number, len: number, acc: number): number {
  const next = loadPlainGroup(buf, p, end, len);
  const width = hWidth;
  const min = hMin;
  const mul = POW2[hShift] as number;
  const mask = width === 0 ? 0 : 0xffffffff >>> (32 - width);
  const W = words;
  const segs = wantSegs;
  const grouped = plainGrouped;
  let c = wantCursor;
  let j = 0;
  let pos = 0;
  while (j < len) {
    // [j, from): not wanted, summed only; [from, to): wanted, stored.
    const from = c < wantCount ? Math.min(len, Math.max(j, segs[2 * c]! - o0)) : len;
    if (grouped) {
      let fields = 0;
      const j0 = j;
      for (; j < from; j++) {
        const w = pos >>> 5;
        const b = pos & 31;
        fields += ((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) & mask;
        pos += width;
      }
      if (j > j0) acc += (j - j0) * min + fields * mul;
    }
    for (; j < from; j++) {
      const w = pos >>> 5;
      const b = pos & 31;
      acc += min + (((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) & mask) * mul;
      pos += width;
    }
    if (j >= len) break;
    const segEnd = segs[2 * c + 1]! - o0;
    const to = Math.min(len, segEnd);
    for (; j < to; j++) {
      const w = pos >>> 5;
      const b = pos & 31;
      acc += min + (((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) & mask) * mul;
      out[o0 + j] = acc;
      pos += width;
    }
    if (segEnd <= len) c++;
  }
  forSum = acc;
  return next;
}

/**
 * sumGroupWanted for a plain group of values 32 to 53 bits wide (wideAt): every value is added
 * to the running sum in order, as the whole reader adds it (`min + (hi·2^32 + lo)·2^shift`),
 * and the sum is stored at wanted indexes only; leaves the final sum in forSum.
 */
function sumWideGroupWanted(buf: Uint8Array, p: number, end: number, out: Float64Array, o0: number, len: number, acc: number): number {
  const next = loadPlainGroup(buf, p, end, len);
  const width = hWidth;
  const min = hMin;
  const mul = POW2[hShift] as number;
  const hiMask = width === 32 ? 0 : 0xffffffff >>> (64 - width);
  const segs = wantSegs;
  // Unwanted stretches are summed as sumWideGroup sums a group.
  const grouped = plainGrouped;
  let c = wantCursor;
  let j = 0;
  let pos = 0;
  while (j < len) {
    // [j, from): not wanted, summed only; [from, to): wanted, stored.
    const from = c < wantCount ? Math.min(len, Math.max(j, segs[2 * c]! - o0)) : len;
    if (grouped && j < from) {
      let los = 0;
      let his = 0;
      const j0 = j;
      for (; j < from; j++) {
        los += wideAt(pos, hiMask);
        his += wideHi;
        pos += width;
      }
      acc += (j - j0) * min + (his * TWO_32 + los) * mul;
    }
    for (; j < from; j++) {
      const lo = wideAt(pos, hiMask);
      acc += min + (wideHi * TWO_32 + lo) * mul;
      pos += width;
    }
    if (j >= len) break;
    const segEnd = segs[2 * c + 1]! - o0;
    const to = Math.min(len, segEnd);
    for (; j < to; j++) {
      const lo = wideAt(pos, hiMask);
      acc += min + (wideHi * TWO_32 + lo) * mul;
      out[o0 + j] = acc;
      pos += width;
    }
    if (segEnd <= len) c++;
  }
  forSum = acc;
  return next;
}

/**
 * Whether the plain group of len values at buf[p] is wide (32 to 53 bits) and sumWideGroup can
 * add it as integers: len·|min| + Σ fields · 2^shift (< 2^(width + shift + 7)) within the
 * exact integers, so every partial sum is exact.
 */
function wideSummable(buf: Uint8Array, p: number, end: number, len: number): boolean {
  readGroupHeader(buf, p, end);
  return hWidth >= 32 && Math.abs(hMin) * len + (POW2[hWidth + hShift + 7] as number) <= MAX_SAFE_RANGE;
}

/**
 * Sets forSum to the sum of a wide plain group's len values (wideSummable) without storing them:
 * the low and high words of the fields are summed apart (each sum exact), then
 * len·min + 2^shift·(Σ hi · 2^32 + Σ lo) — the same integer as adding value by value.
 */
function sumWideGroup(buf: Uint8Array, p: number, end: number, len: number): number {
  const next = loadPlainGroup(buf, p, end, len);
  const width = hWidth;
  const hiMask = width === 32 ? 0 : 0xffffffff >>> (64 - width);
  let los = 0;
  let his = 0;
  let pos = 0;
  for (let j = 0; j < len; j++) {
    los += wideAt(pos, hiMask);
    his += wideHi;
    pos += width;
  }
  forSum = len * hMin + (his * TWO_32 + los) * (POW2[hShift] as number);
  return next;
}

/** B^i and 1/B^i · (1 + 2^-40) for i ≤ K of the radix base `radixPowBase` (K ≤ 30: B ≥ 3), kept across groups. */
const radixPow = new Float64Array(32);
const radixInv = new Float64Array(32);
let radixPowBase = 0;

/**
 * A radix group of deltas: adds its values to the running sum `acc` (leaving the final sum in
 * forSum); with `store` (the group meets a wanted segment), writes the running sum at every
 * index of each chunk that holds a wanted one. Chunks with no wanted index are added as
 * `kk·min + 2^shift·(digit sum)` per run of such chunks, a chunk's digit sum taken without
 * splitting the digits out, as `c − (B−1)·Σ_{i≥1} ⌊c / B^i⌋` — the same number as adding value
 * by value while that stays an exact integer (bounded here, as sumGroupWanted does).
 */
function sumRadixGroup(buf: Uint8Array, p: number, end: number, out: Float64Array, o0: number, len: number, acc: number, store: boolean): number {
  p = readGroupHeader(buf, p, end);
  if (!hRadix) throw corrupt("expected a radix group", p);
  const min = hMin;
  const mul = POW2[hShift] as number;
  p = readRadixHead(buf, p, end, len);
  const base = radixBase;
  const nbytes = radixNbytes;
  const k = rK;
  // Digits < 2^16, len ≤ 2^7: a digit sum of the group is below 2^23.
  const grouped = Math.abs(min) * len + (POW2[23 + hShift] as number) <= MAX_SAFE_RANGE;
  // As in readRadixGroup: floor(c / base) as (c × inv) | 0, exact for chunks < 2^30.
  const inv = (1 / base) * (1 + TWO_M40);
  if (grouped && radixPowBase !== base) {
    let pw = 1;
    for (let i = 1; i <= k; i++) {
      pw *= base;
      radixPow[i] = pw;
      radixInv[i] = (1 / pw) * (1 + TWO_M40);
    }
    radixPowBase = base;
  }
  loadWords(buf, p, nbytes);
  const segs = wantSegs;
  let sc = wantCursor;
  let pos = 0;
  // The current run of chunks added by their digit sums: digits and the sum of those digits.
  let runDigits = 0;
  let runSum = 0;
  for (let j = 0; j < len; j += k) {
    const kk = Math.min(k, len - j);
    const bits = chunkBitsOf(kk);
    let c = fieldAt(pos, bits);
    pos += bits;
    let wantedHere = false;
    if (store) {
      while (sc < wantCount && segs[2 * sc + 1]! <= o0 + j) sc++;
      wantedHere = sc < wantCount && segs[2 * sc]! < o0 + j + kk;
    }
    if (wantedHere || !grouped) {
      if (runDigits > 0) {
        acc += runDigits * min + runSum * mul;
        runDigits = 0;
        runSum = 0;
      }
      const o = o0 + j;
      for (let d = 0; d < kk; d++) {
        const t = (c * inv) | 0;
        acc += min + (c - t * base) * mul;
        if (wantedHere) out[o + d] = acc;
        c = t;
      }
    } else {
      if (!(c < radixPow[kk]!)) throw corrupt("radix chunk out of range", p);
      // The quotients ⌊c / B^i⌋ taken independently (no chain of divisions), each exact as
      // readRadixGroup's: c < 2^30 and B^i ≤ 2^30.
      let quotients = 0;
      for (let d = 1; d < kk; d++) quotients += (c * radixInv[d]!) | 0;
      runSum += c - (base - 1) * quotients;
      runDigits += kk;
      continue;
    }
    if (c !== 0) throw corrupt("radix chunk out of range", p);
  }
  if (runDigits > 0) acc += runDigits * min + runSum * mul;
  forSum = acc;
  return p + nbytes;
}

/** Parses a group header at buf[p]; sets hWidth, hShift, hMin, hRadix and returns the position after it. */
let hWidth = 0;
let hShift = 0;
let hMin = 0;
let hRadix = false;
function readGroupHeader(buf: Uint8Array, p: number, end: number): number {
  if (p >= end) throw corrupt("truncated bit-packed group", p);
  const header = buf[p++] as number;
  const width = header & 0x3f;
  const radix = (header & GROUP_RADIX_FLAG) !== 0;
  if (width > MAX_PACK_WIDTH || (radix && width !== 0)) throw corrupt(`bad bit-packed group header 0x${header.toString(16)}`, p - 1);
  let shift = 0;
  if (header & GROUP_SHIFT_FLAG) {
    if (p >= end) throw corrupt("truncated bit-packed group", p);
    shift = buf[p++] as number;
    if (shift === 0 || shift > 53) throw corrupt(`bad bit-packed group shift ${shift}`, p - 1);
  }
  p = getZigzag(buf, p, end);
  hMin = varintResult.v;
  hWidth = width;
  hShift = shift;
  hRadix = radix;
  return p;
}

/** Moves past one group of len values without decoding it. */
function skipGroup(buf: Uint8Array, p: number, end: number, len: number): number {
  p = readGroupHeader(buf, p, end);
  let nbytes: number;
  if (hRadix) {
    p = getUvarint(buf, p, end, 0xffff);
    const range = varintResult.v;
    if (range < 2) throw corrupt(`bad radix group range ${range}`, p);
    nbytes = radixBytes(range, len);
  } else {
    nbytes = (len * hWidth + 7) >>> 3;
  }
  if (nbytes > end - p) throw corrupt(`bit-packed group needs ${nbytes} bytes, have ${end - p}`, p);
  return p + nbytes;
}

/**
 * Sets forSum to the sum of a plain group's len values (width < 32) without storing them; falls
 * back to decoding them aside when the sum could leave the exact integers.
 */
function sumGroup(buf: Uint8Array, p: number, end: number, len: number): number {
  const start = p;
  p = readGroupHeader(buf, p, end);
  const width = hWidth;
  const nbytes = (len * width + 7) >>> 3;
  if (nbytes > end - p) throw corrupt(`bit-packed group needs ${nbytes} bytes, have ${end - p}`, p);
  const min = hMin;
  // len < 2^8, fields < 2^width: Σ fields · 2^shift < 2^(8 + width + shift).
  if (Math.abs(min) * len > MAX_SAFE_RANGE || width + hShift + 8 > 53) {
    readFor(buf, start, end, groupScratch, 0, len);
    let s = 0;
    for (let j = 0; j < len; j++) s += groupScratch[j]!;
    forSum = s;
    return p + nbytes;
  }
  let fields = 0;
  if (width > 0) {
    loadWords(buf, p, nbytes);
    const W = words;
    const mask = 0xffffffff >>> (32 - width);
    let pos = 0;
    for (let j = 0; j < len; j++) {
      const w = pos >>> 5;
      const b = pos & 31;
      fields += ((W[w]! >>> b) | ((W[w + 1]! << 1) << (31 - b))) & mask;
      pos += width;
    }
  }
  forSum = len * min + fields * (POW2[hShift] as number);
  return p + nbytes;
}

/** What peekGroup found: the group's minimum, its largest value minus the minimum (an upper bound), the position after it. */
export let peekMin = 0;
export let peekSpan = 0;
export let peekNext = 0;

/** Reads the header of the group of len values at buf[p] without decoding it (sets peekMin, peekSpan, peekNext). */
export function peekGroup(buf: Uint8Array, p: number, end: number, len: number): void {
  const q = readGroupHeader(buf, p, end);
  const mul = POW2[hShift] as number;
  let nbytes: number;
  let p2 = q;
  if (hRadix) {
    p2 = getUvarint(buf, q, end, 0xffff);
    const range = varintResult.v;
    if (range < 2) throw corrupt(`bad radix group range ${range}`, p2);
    nbytes = radixBytes(range, len);
    peekSpan = range * mul;
  } else {
    nbytes = (len * hWidth + 7) >>> 3;
    peekSpan = ((POW2[hWidth] as number) - 1) * mul;
  }
  if (nbytes > end - p2) throw corrupt(`bit-packed group needs ${nbytes} bytes, have ${end - p2}`, p2);
  peekMin = hMin;
  peekNext = p2 + nbytes;
  peekData = p2;
  peekBase = hRadix ? peekSpan / mul + 1 : 0;
}

/** Where the last peeked group's packed bits start, and its radix base (0: plain). */
let peekData = 0;
let peekBase = 0;

/** Whether unpackRange can read the last peeked group: radix, or plain narrower than 26 bits. */
export function peekRangeable(): boolean {
  return peekBase !== 0 || hWidth <= 25;
}

/**
 * out[o0 + j] = the value j of the last peeked group (peekGroup), for j in [a, b) only, reading
 * bits straight from buf (a radix group splits the chunks that hold them). The group must be
 * peekRangeable.
 */
export function unpackRange(buf: Uint8Array, out: Float64Array, o0: number, len: number, a: number, b: number): void {
  const min = hMin;
  const mul = POW2[hShift] as number;
  const p = peekData;
  if (peekBase === 0) {
    const width = hWidth;
    if (width === 0) {
      out.fill(min, o0 + a, o0 + b);
      return;
    }
    const mask = 0xffffffff >>> (32 - width);
    let pos = a * width;
    for (let j = a; j < b; j++) {
      const q = p + (pos >>> 3);
      // Bytes past the group only feed masked bits; past the array they read as 0.
      const w = buf[q]! | (buf[q + 1]! << 8) | (buf[q + 2]! << 16) | (buf[q + 3]! << 24);
      out[o0 + j] = min + ((w >>> (pos & 7)) & mask) * mul;
      pos += width;
    }
    return;
  }
  const base = peekBase;
  radixBytes(base - 1, len);
  const k = rK;
  const chunkBits = rChunkBits;
  const inv = (1 / base) * (1 + TWO_M40);
  for (let j = a - (a % k); j < b; j += k) {
    const kk = Math.min(k, len - j);
    const bits = kk === k ? chunkBits : bitLength(base ** kk - 1);
    const pos = (j / k) * chunkBits;
    const q = p + (pos >>> 3);
    const off = pos & 7;
    const w = (buf[q]! | (buf[q + 1]! << 8) | (buf[q + 2]! << 16) | (buf[q + 3]! << 24)) >>> 0;
    let c = ((w >>> off) | ((buf[q + 4]! << 1) << (31 - off))) & (0xffffffff >>> (32 - bits));
    const o = o0 + j;
    for (let d = 0; d < kk; d++) {
      const t = (c * inv) | 0;
      if (j + d >= a && j + d < b) out[o + d] = min + (c - t * base) * mul;
      c = t;
    }
    if (c !== 0) throw corrupt("radix chunk out of range", p);
  }
}
