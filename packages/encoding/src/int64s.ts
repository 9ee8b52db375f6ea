import { BadDataError, grownCapacity } from "@strata/core";
import { forSize, peekGroup, peekMin, peekNext, peekRangeable, peekSpan, readFor, readForSelected, setWanted, unpackRange, writeFor } from "./bitpack.js";
import { ByteBuffer } from "./bytes.js";
import {
  GROUP_SIZE,
  INT_LAYOUT_MASK,
  IntEncoding,
  LZ4_FLAG,
  LZ4_MIN_GAIN_PERCENT,
  LZ4_MIN_INPUT,
  MAX_BLOCK_COUNT,
} from "./constants.js";
import { corrupt } from "./errors.js";
import { lz4Compress, lz4Decompress } from "./compress.js";
import { getUvarint, getZigzag, putZigzag, TWO_53, uvarintSize, varintResult, writeUvarint, zigzagSize } from "./varint.js";

/**
 * Block codec for int64 sequences held in JS numbers (timestamps in ms, decimal mantissas).
 *
 * Inputs must be integers in [-(2^53-1), 2^53-1]; anything else is rejected with a BadDataError
 * (a double cannot hold a larger integer exactly, so accepting it would silently lose data).
 * Every layout is exact: a delta or delta-of-delta that would leave the safe range makes that
 * layout ineligible, and PlainVarint is always possible.
 */

export const MAX_SAFE = 9007199254740991;

/** The int64 layout without the lz4 flag. */
export type IntLayout = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

// Reused scratch (grown on demand): deltas, delta-of-deltas, residuals.
let sD = new Float64Array(8192);
let sDD = new Float64Array(8192);
let sR = new Float64Array(8192);
const scratchBuf = new ByteBuffer(64 * 1024);

function growScratch(n: number): void {
  if (sD.length >= n) return;
  const cap = grownCapacity(sD.length, n);
  sD = new Float64Array(cap);
  sDD = new Float64Array(cap);
  sR = new Float64Array(cap);
}

/** Linear-prediction step chosen by the last `chooseIntLayout` (for LinearPacked). */
let chosenStep = 0;

/**
 * Picks the smallest exact layout for x[0..n) and leaves the transformed sequence the layout
 * needs in scratch. Returns the layout and its exact payload size in `chosenSize`.
 */
let chosenSize = 0;
export function chooseIntLayout(x: ArrayLike<number>, n: number): IntLayout {
  linearReady = false;
  if (n === 0) {
    chosenSize = 0;
    return IntEncoding.PlainVarint;
  }
  growScratch(n);
  const x0 = x[0] as number;
  checkInt(x0, 0);
  let allEqual = true;
  let deltaSafe = true;
  const D = sD;
  let prev = x0;
  for (let i = 1; i < n; i++) {
    const v = x[i] as number;
    checkInt(v, i);
    const d = v - prev;
    prev = v;
    if (d !== 0) allEqual = false;
    if (d > MAX_SAFE || d < -MAX_SAFE) deltaSafe = false;
    D[i - 1] = d;
  }
  if (allEqual) {
    chosenSize = zigzagSize(x0);
    return IntEncoding.Const;
  }
  if (!deltaSafe) {
    let plain = 0;
    for (let i = 0; i < n; i++) plain += zigzagSize(x[i] as number);
    chosenSize = plain;
    return IntEncoding.PlainVarint;
  }
  const d0 = D[0] as number;
  let arith = true;
  for (let i = 1; i < n - 1; i++) {
    if (D[i] !== d0) {
      arith = false;
      break;
    }
  }
  if (arith) {
    chosenSize = zigzagSize(x0) + zigzagSize(d0);
    return IntEncoding.Arith;
  }
  const head = zigzagSize(x0);
  let best: IntLayout = IntEncoding.DeltaPacked;
  let bestSize = head + forSize(D, 0, n - 1);
  // Delta of deltas.
  let dodSafe = true;
  const DD = sDD;
  for (let i = 1; i < n - 1; i++) {
    const dd = (D[i] as number) - (D[i - 1] as number);
    if (dd > MAX_SAFE || dd < -MAX_SAFE) {
      dodSafe = false;
      break;
    }
    DD[i - 1] = dd;
  }
  if (dodSafe) {
    const dodPacked = head + zigzagSize(d0) + forSize(DD, 0, n - 2);
    if (dodPacked < bestSize) {
      best = IntEncoding.DodPacked;
      bestSize = dodPacked;
    }
  }
  // Residuals against the line x0 + i*step: a jittered scrape grid becomes pure jitter, and a
  // missed scrape only shifts the residuals. The step must be exact (an error of 1 drifts by n
  // over the block), so it is the mean of the deltas near the median delta (gaps and resets
  // excluded): jitter telescopes away in the mean.
  const med = medianDelta(D, n - 1);
  const tol = Math.abs(med) / 2;
  let sum = 0;
  let cnt = 0;
  for (let i = 0; i < n - 1; i++) {
    const d = D[i] as number;
    if (Math.abs(d - med) <= tol) {
      sum += d;
      cnt++;
    }
  }
  const step = cnt > 0 && Math.abs(sum) <= MAX_SAFE ? Math.round(sum / cnt) : med;
  const lin = linearSize(x, n, step);
  if (lin < bestSize) {
    best = IntEncoding.LinearPacked;
    bestSize = lin;
    chosenStep = step;
    linearReady = true;
  }
  // Varint layouts take at least a byte per value: only worth sizing when packing does worse.
  if (bestSize >= n) {
    let deltaVar = head;
    for (let i = 0; i < n - 1; i++) deltaVar += zigzagSize(D[i] as number);
    if (deltaVar < bestSize) {
      best = IntEncoding.DeltaVarint;
      bestSize = deltaVar;
    }
    if (dodSafe) {
      let dodVar = head + zigzagSize(d0);
      for (let i = 0; i < n - 2; i++) dodVar += zigzagSize(DD[i] as number);
      if (dodVar < bestSize) {
        best = IntEncoding.DodVarint;
        bestSize = dodVar;
      }
    }
    let plain = 0;
    for (let i = 0; i < n; i++) plain += zigzagSize(x[i] as number);
    if (plain < bestSize) {
      best = IntEncoding.PlainVarint;
      bestSize = plain;
    }
  }
  chosenSize = bestSize;
  return best;
}

/** True while sR / lc* hold the residuals of the chosen LinearPacked step. */
let linearReady = false;

// Level changes of the last linearSize call: residual index and jump.
let lcIdx = new Uint32Array(64);
let lcJump = new Float64Array(64);
let lcCount = 0;
const jumpSample = new Float64Array(255);

/**
 * Payload size of LinearPacked with `step` (Infinity if not exact); leaves the packed residuals
 * in sR and the level changes in lc*.
 *
 * Residuals r[i] = x[i] - (x0 + i*step). A jump between consecutive residuals larger than a
 * threshold (4 × the 90th percentile jump, at least 16) is a level change — a missed scrape, a
 * counter reset — stored once as (index, jump) instead of widening every following group; the
 * packed value is then p[i] = r[i] - level[i].
 */
function linearSize(x: ArrayLike<number>, n: number, step: number): number {
  const x0 = x[0] as number;
  if (!(Math.abs(step) * n <= MAX_SAFE && Math.abs(x0) + Math.abs(step) * n <= MAX_SAFE)) return Infinity;
  const R = sR;
  for (let i = 0; i < n; i++) {
    const r = (x[i] as number) - (x0 + i * step);
    if (r > MAX_SAFE || r < -MAX_SAFE) return Infinity;
    R[i] = r;
  }
  // Threshold from a sample of |r[i] - r[i-1]|.
  const k = Math.min(n - 1, jumpSample.length);
  const stride = (n - 1) / k;
  for (let j = 0; j < k; j++) {
    const i = 1 + Math.floor(j * stride);
    jumpSample[j] = Math.abs((R[i] as number) - (R[i - 1] as number));
  }
  const sorted = jumpSample.subarray(0, k).sort();
  const threshold = Math.max(16, 4 * (sorted[Math.floor(k * 0.9)] as number));
  lcCount = 0;
  let extra = uvarintSize(0);
  let level = 0;
  let prevR = R[0] as number;
  let lastIdx = 0;
  for (let i = 1; i < n; i++) {
    const r = R[i] as number;
    const jump = r - prevR;
    prevR = r;
    if ((jump > threshold || jump < -threshold) && jump <= MAX_SAFE && jump >= -MAX_SAFE) {
      if (lcCount === lcIdx.length) {
        const ni = new Uint32Array(lcCount * 2);
        ni.set(lcIdx);
        lcIdx = ni;
        const nj = new Float64Array(lcCount * 2);
        nj.set(lcJump);
        lcJump = nj;
      }
      lcIdx[lcCount] = i;
      lcJump[lcCount++] = jump;
      extra += uvarintSize(i - lastIdx) + zigzagSize(jump);
      lastIdx = i;
      level += jump;
    }
    if (level !== 0) {
      const p = r - level;
      if (p > MAX_SAFE || p < -MAX_SAFE) return Infinity;
      R[i] = p;
    }
  }
  extra += uvarintSize(lcCount) - uvarintSize(0);
  return zigzagSize(x0) + zigzagSize(step) + extra + forSize(R, 0, n);
}

const sample = new Float64Array(255);

/** Median of (up to 255 evenly spaced) deltas. */
function medianDelta(D: Float64Array, m: number): number {
  const k = Math.min(m, sample.length);
  const stride = m / k;
  for (let j = 0; j < k; j++) sample[j] = D[Math.floor(j * stride)] as number;
  const s = sample.subarray(0, k).sort();
  return s[k >>> 1] as number;
}

function checkInt(v: number, i: number): void {
  if (!Number.isInteger(v) || v > MAX_SAFE || v < -MAX_SAFE) {
    throw new BadDataError(`int64 codec: value ${v} at index ${i} is not an integer within ±(2^53-1)`, "STRATA_BAD_REQUEST");
  }
}

/** Exact payload size of the layout chosen by the last chooseIntLayout call. */
export function lastChosenSize(): number {
  return chosenSize;
}

/** Writes x[0..n) in `layout`; must directly follow chooseIntLayout(x, n) (it reuses its scratch). */
export function writeIntLayout(layout: IntLayout, x: ArrayLike<number>, n: number, out: ByteBuffer): void {
  if (n === 0) return;
  const x0 = x[0] as number;
  out.ensure(9 * 3);
  switch (layout) {
    case IntEncoding.Const:
      out.len = putZigzag(out.buf, out.len, x0);
      return;
    case IntEncoding.Arith:
      out.len = putZigzag(out.buf, out.len, x0);
      out.len = putZigzag(out.buf, out.len, n > 1 ? (x[1] as number) - x0 : 0);
      return;
    case IntEncoding.DeltaPacked:
      out.len = putZigzag(out.buf, out.len, x0);
      writeFor(out, sD, 0, n - 1);
      return;
    case IntEncoding.DodPacked:
      out.len = putZigzag(out.buf, out.len, x0);
      if (n > 1) out.len = putZigzag(out.buf, out.len, sD[0] as number);
      if (n > 2) writeFor(out, sDD, 0, n - 2);
      return;
    case IntEncoding.LinearPacked:
      if (!linearReady) linearSize(x, n, chosenStep);
      out.ensure(9 * (2 + lcCount) + 9 * lcCount);
      out.len = putZigzag(out.buf, out.len, x0);
      out.len = putZigzag(out.buf, out.len, chosenStep);
      writeUvarint(out, lcCount);
      for (let j = 0; j < lcCount; j++) {
        writeUvarint(out, (lcIdx[j] as number) - (j > 0 ? (lcIdx[j - 1] as number) : 0));
        out.len = putZigzag(out.buf, out.len, lcJump[j] as number);
      }
      writeFor(out, sR, 0, n);
      return;
    case IntEncoding.DeltaVarint:
      writeVarints(out, x0, sD, 0, n - 1);
      return;
    case IntEncoding.DodVarint:
      out.len = putZigzag(out.buf, out.len, x0);
      if (n > 1) writeVarints(out, sD[0] as number, sDD, 0, n - 2);
      return;
    case IntEncoding.PlainVarint:
      out.ensure(9 * n);
      for (let i = 0; i < n; i++) out.len = putZigzag(out.buf, out.len, x[i] as number);
      return;
  }
}

function writeVarints(out: ByteBuffer, first: number, x: Float64Array, start: number, n: number): void {
  out.ensure(9 * (n + 1));
  const buf = out.buf;
  let p = putZigzag(buf, out.len, first);
  for (let i = start; i < start + n; i++) p = putZigzag(buf, p, x[i] as number);
  out.len = p;
}

/**
 * Largest payload the encoder writes for n values before lz4 (bounds what lz4 may inflate to):
 * it never picks a layout larger than PlainVarint (<= 8 bytes/value).
 */
export function maxIntPayload(n: number): number {
  return 9 * (n + 2) + 11 * Math.ceil(n / GROUP_SIZE);
}

/**
 * Encodes the integers x[0..n) (n defaults to x.length) into `out` and returns the tag.
 * Chooses the smallest exact layout; lz4 is applied only where it saves at least
 * LZ4_MIN_GAIN_PERCENT of the bytes.
 */
export function encodeInt64s(x: ArrayLike<number>, out: ByteBuffer, n = x.length): IntEncoding {
  const layout = chooseIntLayout(x, n);
  const size = chosenSize;
  if (size < LZ4_MIN_INPUT || layout === IntEncoding.Const || layout === IntEncoding.Arith) {
    writeIntLayout(layout, x, n, out);
    return layout;
  }
  scratchBuf.reset();
  writeIntLayout(layout, x, n, scratchBuf);
  return appendMaybeLz4(layout, scratchBuf.view(), out) as IntEncoding;
}

/** Appends payload to out, lz4-compressed if that pays; returns tag (with LZ4_FLAG if compressed). */
export function appendMaybeLz4(tag: number, payload: Uint8Array, out: ByteBuffer): number {
  if (payload.length >= LZ4_MIN_INPUT) {
    const c = lz4Compress(payload);
    if (c.length * 100 <= payload.length * (100 - LZ4_MIN_GAIN_PERCENT)) {
      out.bytes(c);
      return tag | LZ4_FLAG;
    }
  }
  out.bytes(payload);
  return tag;
}

const INT_TAGS = new Set<number>(Object.values(IntEncoding));

export function isIntEncoding(tag: number): tag is IntEncoding {
  return INT_TAGS.has(tag);
}

/**
 * Validates the caller's count. It usually comes from a block header on disk, so a bad one is
 * corrupt data too, not a programming error.
 */
export function checkCount(count: number, out: Float64Array): void {
  if (!Number.isInteger(count) || count < 0 || count > MAX_BLOCK_COUNT) throw corrupt(`sample count ${count} outside 0..${MAX_BLOCK_COUNT}`);
  if (out.length < count) throw corrupt(`sample count ${count} exceeds the output's ${out.length} slots`);
}

/**
 * Decodes `count` integers encoded with `tag` from `bytes` (exactly: trailing bytes are an
 * error) into out[0..count). Throws STRATA_CORRUPT_DATA on malformed input.
 */
export function decodeInt64s(tag: number, bytes: Uint8Array, count: number, out: Float64Array): void {
  checkCount(count, out);
  if (!isIntEncoding(tag)) throw corrupt(`unknown int64 encoding tag ${tag}`);
  let src = bytes;
  if (tag & LZ4_FLAG) src = lz4Decompress(bytes, maxIntPayload(count));
  const p = readIntLayout((tag & INT_LAYOUT_MASK) as IntLayout, src, 0, src.length, count, out);
  if (p !== src.length) throw corrupt(`${src.length - p} unexpected trailing bytes`, p);
}

/** The progression int64sProgression found: value i is `x0 + i·step`. */
export const progression = { x0: 0, step: 0 };

/**
 * Whether `count` integers (count > 0) are stored as an arithmetic progression — layout Arith
 * without lz4, or Const — and if so its first value and step in `progression`, so that a reader
 * computes only the values it needs (a perfect scrape grid's timestamps). Validates the payload
 * as decodeInt64s does; false for every other layout.
 */
export function int64sProgression(tag: number, bytes: Uint8Array, count: number): boolean {
  if (count <= 0 || (tag !== IntEncoding.Arith && tag !== IntEncoding.Const)) return false;
  if (!Number.isInteger(count) || count > MAX_BLOCK_COUNT) throw corrupt(`sample count ${count} outside 0..${MAX_BLOCK_COUNT}`);
  const end = bytes.length;
  let p = getZigzag(bytes, 0, end);
  const x0 = varintResult.v;
  let step = 0;
  if (tag === IntEncoding.Arith) {
    p = getZigzag(bytes, p, end);
    step = varintResult.v;
  }
  if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`, p);
  progression.x0 = x0;
  progression.step = step;
  return true;
}

// LinearPacked's head as readLinearHead found it.
let linX0 = 0;
let linStep = 0;
let linChanges = 0;
let linChangesAt = 0;

/** Reads LinearPacked's x0, step and level changes (checked for bounds only); returns the position of its FOR groups. */
function readLinearHead(buf: Uint8Array, p: number, end: number, count: number): number {
  p = getZigzag(buf, p, end);
  linX0 = varintResult.v;
  p = getZigzag(buf, p, end);
  linStep = varintResult.v;
  p = getUvarint(buf, p, end, count);
  linChanges = varintResult.v;
  linChangesAt = p;
  for (let j = 0; j < linChanges; j++) {
    p = getUvarint(buf, p, end, count);
    p = getZigzag(buf, p, end);
  }
  return p;
}

/** x0 and step of the Const (step 0) or Arith payload readProgression read last. */
let progX0 = 0;
let progStep = 0;

function readProgression(layout: IntLayout, buf: Uint8Array, p: number, end: number): number {
  p = getZigzag(buf, p, end);
  progX0 = varintResult.v;
  progStep = 0;
  if (layout === IntEncoding.Arith) {
    p = getZigzag(buf, p, end);
    progStep = varintResult.v;
  }
  return p;
}

/**
 * out[i] = x0 + i·step for i in [from, to) (readProgression's). A long Const range is filled; a
 * short one (a window's few samples) is stored in a loop: a fill call costs more than that.
 */
function progressionAt(out: Float64Array, from: number, to: number): void {
  const x0 = progX0;
  const step = progStep;
  if (step === 0 && to - from > 64) {
    out.fill(x0, from, to);
    return;
  }
  for (let i = from; i < to; i++) out[i] = x0 + i * step;
}

/** Reads count integers in `layout` at buf[p..end) into out; returns the position after them. */
export function readIntLayout(layout: IntLayout, buf: Uint8Array, p: number, end: number, count: number, out: Float64Array): number {
  if (count === 0) return p;
  switch (layout) {
    case IntEncoding.Const:
    case IntEncoding.Arith:
      p = readProgression(layout, buf, p, end);
      progressionAt(out, 0, count);
      return p;
    case IntEncoding.DeltaPacked: {
      p = getZigzag(buf, p, end);
      out[0] = varintResult.v;
      p = readFor(buf, p, end, out, 1, count - 1);
      let acc = out[0];
      for (let i = 1; i < count; i++) {
        acc += out[i] as number;
        out[i] = acc;
      }
      return p;
    }
    case IntEncoding.DodPacked: {
      p = getZigzag(buf, p, end);
      let x = varintResult.v;
      out[0] = x;
      if (count === 1) return p;
      p = getZigzag(buf, p, end);
      let d = varintResult.v;
      x += d;
      out[1] = x;
      p = readFor(buf, p, end, out, 2, count - 2);
      for (let i = 2; i < count; i++) {
        d += out[i] as number;
        x += d;
        out[i] = x;
      }
      return p;
    }
    case IntEncoding.LinearPacked: {
      p = readLinearHead(buf, p, end, count);
      const x0 = linX0;
      const step = linStep;
      const nlc = linChanges;
      const lcStart = linChangesAt;
      p = readFor(buf, p, end, out, 0, count);
      // Walk the level changes again while adding line and level.
      let q = lcStart;
      let next = count;
      let idx = 0;
      let left = nlc;
      if (left > 0) {
        q = getUvarint(buf, q, end, count);
        idx = varintResult.v;
        next = idx;
      }
      let level = 0;
      for (let i = 0; i < count; i++) {
        if (i === next) {
          q = getZigzag(buf, q, end);
          level += varintResult.v;
          left--;
          if (left > 0) {
            q = getUvarint(buf, q, end, count);
            if (varintResult.v === 0) throw corrupt("level change indexes not increasing", q);
            idx += varintResult.v;
            next = idx;
          } else {
            next = count;
          }
        }
        out[i] = (out[i] as number) + (x0 + i * step) + level;
      }
      if (left > 0) throw corrupt("level change index beyond the block", q);
      return p;
    }
    case IntEncoding.DeltaVarint: {
      p = getZigzag(buf, p, end);
      let x = varintResult.v;
      out[0] = x;
      for (let i = 1; i < count; i++) {
        p = getZigzag(buf, p, end);
        x += varintResult.v;
        out[i] = x;
      }
      return p;
    }
    case IntEncoding.DodVarint: {
      p = getZigzag(buf, p, end);
      let x = varintResult.v;
      out[0] = x;
      if (count === 1) return p;
      p = getZigzag(buf, p, end);
      let d = varintResult.v;
      x += d;
      out[1] = x;
      for (let i = 2; i < count; i++) {
        p = getZigzag(buf, p, end);
        d += varintResult.v;
        x += d;
        out[i] = x;
      }
      return p;
    }
    case IntEncoding.PlainVarint: {
      for (let i = 0; i < count; i++) {
        p = getZigzag(buf, p, end);
        out[i] = varintResult.v;
      }
      return p;
    }
    default:
      throw corrupt(`unknown int64 layout ${String(layout)}`);
  }
}

/**
 * Like readIntLayout, but only the indexes in the sorted, disjoint [from, to) pairs
 * segs[0..2·nseg) must come out right; the others are left unspecified. Const and Arith write
 * only those indexes, DeltaPacked skips the groups no segment meets by their sums, LinearPacked
 * skips them outright; the other layouts are read whole. Validates what it reads as readIntLayout does; the bytes of skipped groups
 * are bounds-checked, not decoded.
 */
export function readIntLayoutAt(
  layout: IntLayout,
  buf: Uint8Array,
  p: number,
  end: number,
  count: number,
  out: Float64Array,
  segs: Uint32Array,
  nseg: number,
): number {
  if (count === 0) return p;
  switch (layout) {
    case IntEncoding.Const:
    case IntEncoding.Arith:
      p = readProgression(layout, buf, p, end);
      for (let s = 0; s < nseg; s++) progressionAt(out, segs[2 * s]!, segs[2 * s + 1]!);
      return p;
    case IntEncoding.DeltaPacked: {
      p = getZigzag(buf, p, end);
      const x0 = varintResult.v;
      out[0] = x0;
      setWanted(segs, nseg);
      return readForSelected(buf, p, end, out, 1, count - 1, true, x0);
    }
    case IntEncoding.LinearPacked: {
      p = readLinearHead(buf, p, end, count);
      const x0 = linX0;
      const step = linStep;
      const nlc = linChanges;
      setWanted(segs, nseg);
      p = readForSelected(buf, p, end, out, 0, count, false, 0);
      levels.q = linChangesAt;
      levels.left = nlc;
      levels.level = 0;
      levels.next = count;
      if (nlc > 0) {
        levels.q = getUvarint(buf, linChangesAt, end, count);
        levels.idx = varintResult.v;
        levels.next = levels.idx;
      }
      for (let s = 0; s < nseg; s++) {
        const b = segs[2 * s + 1]!;
        for (let i = segs[2 * s]!; i < b; i++) {
          if (i >= levels.next) levelsUpTo(buf, end, count, i);
          out[i] = (out[i] as number) + (x0 + i * step) + levels.level;
        }
      }
      if (levels.left > 0 && levels.next < count) levelsUpTo(buf, end, count, count - 1);
      if (levels.left > 0) throw corrupt("level change index beyond the block", levels.q);
      return p;
    }
    default:
      return readIntLayout(layout, buf, p, end, count, out);
  }
}

/**
 * Intervals (e_k - range, e_k] for e_k = first + k·step, k < count (one interval when count is
 * 1): the windows a query reads, for decodeInt64sNear.
 */
export interface IntervalGrid {
  readonly first: number;
  readonly step: number;
  readonly count: number;
  readonly range: number;
}

/** The first k with e_k >= lo (count when none). */
function firstEndAtOrAfter(g: IntervalGrid, lo: number): number {
  if (g.count === 1 || !(g.step > 0) || lo <= g.first) return g.count === 1 && g.first < lo ? 1 : 0;
  let k = Math.floor((lo - g.first) / g.step);
  if (g.first + k * g.step < lo) k++;
  return Math.min(k, g.count);
}

/** Whether some interval of g meets [lo, hi]. */
function gridMeets(g: IntervalGrid, lo: number, hi: number): boolean {
  const k = firstEndAtOrAfter(g, lo);
  if (k >= g.count) return false;
  const e = g.first + k * g.step;
  return e >= lo && e - g.range < hi;
}

let chIdx = new Uint32Array(64);
let chLevel = new Float64Array(64);

/**
 * Decodes `count` ascending integers (a block's timestamps) so that every value inside an
 * interval of `grid` comes out exactly, and returns whether some did not: for LinearPacked, a
 * bit-packed group whose bounds (line, levels, group minimum and width) lie outside every
 * interval is not unpacked, and its slots get a placeholder in its bounds no smaller than the
 * value before it — so the output stays ascending (not strictly) and no placeholder falls in an
 * interval. Other layouts are decoded whole (returns false). Validates as decodeInt64s does.
 */
export function decodeInt64sNear(tag: number, bytes: Uint8Array, count: number, out: Float64Array, grid: IntervalGrid): boolean {
  if (tag !== IntEncoding.LinearPacked || count === 0) {
    decodeInt64s(tag, bytes, count, out);
    return false;
  }
  checkCount(count, out);
  const buf = bytes;
  const end = buf.length;
  let p = getZigzag(buf, 0, end);
  const x0 = varintResult.v;
  p = getZigzag(buf, p, end);
  const step = varintResult.v;
  p = getUvarint(buf, p, end, count);
  const nlc = varintResult.v;
  if (chIdx.length < nlc) {
    chIdx = new Uint32Array(grownCapacity(chIdx.length, nlc));
    chLevel = new Float64Array(chIdx.length);
  }
  let idx = 0;
  let level = 0;
  for (let j = 0; j < nlc; j++) {
    p = getUvarint(buf, p, end, count);
    if (j > 0 && varintResult.v === 0) throw corrupt("level change indexes not increasing", p);
    idx += varintResult.v;
    if (idx >= count) throw corrupt("level change index beyond the block", p);
    p = getZigzag(buf, p, end);
    level += varintResult.v;
    chIdx[j] = idx;
    chLevel[j] = level;
  }
  let c = 0; // level changes at indexes <= the current one
  let c2 = 0; // the same for the unpacked values
  let lv2 = 0;
  let skipped = false;
  let prev = -Infinity;
  for (let i0 = 0; i0 < count; i0 += GROUP_SIZE) {
    const len = Math.min(GROUP_SIZE, count - i0);
    const i1 = i0 + len - 1;
    while (c < nlc && chIdx[c]! <= i0) c++;
    const l0 = c > 0 ? chLevel[c - 1]! : 0;
    let minL = l0;
    let maxL = l0;
    for (let j = c; j < nlc && chIdx[j]! <= i1; j++) {
      const l = chLevel[j]!;
      if (l < minL) minL = l;
      else if (l > maxL) maxL = l;
    }
    peekGroup(buf, p, end, len);
    const lo = x0 + Math.min(i0 * step, i1 * step) + minL + peekMin;
    const hi = x0 + Math.max(i0 * step, i1 * step) + maxL + peekMin + peekSpan;
    if (gridMeets(grid, lo, hi)) {
      // Each value's own bounds: x0 + i·step + [minL + min, maxL + min + span]. Only the
      // indexes whose bounds meet a window are unpacked; the others get placeholders as below.
      const baseLo = x0 + minL + peekMin;
      const baseHi = x0 + maxL + peekMin + peekSpan;
      let j = i0;
      if (step > 0 && peekRangeable()) {
        let k = firstEndAtOrAfter(grid, lo);
        for (; k < grid.count; k++) {
          const e = grid.first + k * grid.step;
          const st = e - grid.range;
          if (st >= hi) break;
          const ia = Math.max(j, Math.floor((st - baseHi) / step));
          const ib = Math.min(i1, Math.floor((e - baseLo) / step) + 1);
          if (ib >= ia) {
            for (; j < ia; j++) out[j] = prev = Math.max(prev, baseLo + j * step);
            unpackRange(buf, out, i0, len, ia - i0, ib + 1 - i0);
            for (let i = ia; i <= ib; i++) {
              while (c2 < nlc && chIdx[c2]! <= i) lv2 = chLevel[c2++]!;
              out[i] = (out[i] as number) + (x0 + i * step) + lv2;
            }
            prev = out[ib]!;
            j = ib + 1;
          }
          if (grid.count === 1 || j > i1) break;
        }
        for (; j <= i1; j++) out[j] = prev = Math.max(prev, baseLo + j * step);
      } else {
        readFor(buf, p, end, out, i0, len);
        for (let i = i0; i <= i1; i++) {
          while (c2 < nlc && chIdx[c2]! <= i) lv2 = chLevel[c2++]!;
          out[i] = (out[i] as number) + (x0 + i * step) + lv2;
        }
        prev = out[i1]!;
      }
    } else {
      const v = lo > prev ? lo : prev;
      out.fill(v, i0, i1 + 1);
      prev = v;
      skipped = true;
    }
    p = peekNext;
  }
  if (p !== end) throw corrupt(`${end - p} unexpected trailing bytes`, p);
  return skipped;
}

/** The walk over LinearPacked's level changes in readIntLayoutAt. */
const levels = { q: 0, left: 0, idx: 0, next: 0, level: 0 };

/** Applies the level changes at indexes <= i. */
function levelsUpTo(buf: Uint8Array, end: number, count: number, i: number): void {
  const L = levels;
  while (L.left > 0 && L.next <= i) {
    L.q = getZigzag(buf, L.q, end);
    L.level += varintResult.v;
    L.left--;
    if (L.left > 0) {
      L.q = getUvarint(buf, L.q, end, count);
      if (varintResult.v === 0) throw corrupt("level change indexes not increasing", L.q);
      L.idx += varintResult.v;
      L.next = L.idx;
    } else {
      L.next = count;
    }
  }
}

export { TWO_53 };
