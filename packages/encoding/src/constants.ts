/**
 * Every number of the encoding package that reaches disk or the wire lives here: block encoding
 * tags, flags and layout limits. Values are stable: add new ones, never renumber or reuse one.
 * Byte layouts: docs/format/encoding.md.
 */

/**
 * How a sequence of int64 values (timestamps in ms, decimal mantissas) is laid out.
 * The low 6 bits name the layout; bit 0x80 (`LZ4_FLAG`) says the payload is additionally
 * lz4-compressed (see docs/format/encoding.md).
 */
export const IntEncoding = {
  /** One value repeated: zigzag varint(v). */
  Const: 1,
  /** Arithmetic progression: zigzag varint(first), zigzag varint(step). */
  Arith: 2,
  /** zigzag varint(first), then n-1 deltas in FOR bit-packed groups. */
  DeltaPacked: 3,
  /** zigzag varint(first), zigzag varint(first delta), then n-2 delta-of-deltas in FOR groups. */
  DodPacked: 4,
  /** zigzag varint(first), zigzag varint(step), then n residuals x[i]-(first+i*step) in FOR groups. */
  LinearPacked: 5,
  /** zigzag varint(first), then n-1 zigzag varint deltas. */
  DeltaVarint: 6,
  /** zigzag varint(first), zigzag varint(first delta), then n-2 zigzag varint delta-of-deltas. */
  DodVarint: 7,
  /** n zigzag varint values (the fallback when a delta would leave the safe integer range). */
  PlainVarint: 8,

  DeltaPackedLz4: 0x83,
  DodPackedLz4: 0x84,
  LinearPackedLz4: 0x85,
  DeltaVarintLz4: 0x86,
  DodVarintLz4: 0x87,
  PlainVarintLz4: 0x88,
} as const;
export type IntEncoding = (typeof IntEncoding)[keyof typeof IntEncoding];

/** Timestamps use the int64 layouts unchanged. */
export const TimestampsEncoding = IntEncoding;
export type TimestampsEncoding = IntEncoding;

/**
 * How a block of float64 values is laid out. Decimal tags are `DECIMAL_BASE | IntEncoding`:
 * the payload is the decimal header (exponent, exceptions) followed by the mantissas in that
 * int64 layout.
 */
export const ValuesEncoding = {
  /** n raw float64 little-endian (any bit pattern). */
  RawFloat: 1,
  /** One raw float64 little-endian repeated n times (any bit pattern, e.g. all stale markers). */
  ConstFloat: 2,
  /** Gorilla-style XOR with the previous value's bits, byte aligned (see format doc). */
  XorFloat: 3,
  RawFloatLz4: 0x81,
  XorFloatLz4: 0x83,

  DecimalConst: 0x40 | IntEncoding.Const,
  DecimalArith: 0x40 | IntEncoding.Arith,
  DecimalDeltaPacked: 0x40 | IntEncoding.DeltaPacked,
  DecimalDodPacked: 0x40 | IntEncoding.DodPacked,
  DecimalLinearPacked: 0x40 | IntEncoding.LinearPacked,
  DecimalDeltaVarint: 0x40 | IntEncoding.DeltaVarint,
  DecimalDodVarint: 0x40 | IntEncoding.DodVarint,
  DecimalPlainVarint: 0x40 | IntEncoding.PlainVarint,
  DecimalDeltaPackedLz4: 0xc0 | IntEncoding.DeltaPacked,
  DecimalDodPackedLz4: 0xc0 | IntEncoding.DodPacked,
  DecimalLinearPackedLz4: 0xc0 | IntEncoding.LinearPacked,
  DecimalDeltaVarintLz4: 0xc0 | IntEncoding.DeltaVarint,
  DecimalDodVarintLz4: 0xc0 | IntEncoding.DodVarint,
  DecimalPlainVarintLz4: 0xc0 | IntEncoding.PlainVarint,
} as const;
export type ValuesEncoding = (typeof ValuesEncoding)[keyof typeof ValuesEncoding];

/** Tag bit: the payload is an lz4 block (uvarint raw length, then lz4 bytes). */
export const LZ4_FLAG = 0x80;
/** Tag bit of ValuesEncoding: decimal mantissas follow, laid out as `tag & INT_LAYOUT_MASK`. */
export const DECIMAL_FLAG = 0x40;
export const INT_LAYOUT_MASK = 0x3f;

/** Values per FOR bit-packing group (the last group of a sequence may be shorter). */
export const GROUP_SIZE = 128;
/** Group header bit: a shift byte follows (all packed values share that many trailing zeros). */
export const GROUP_SHIFT_FLAG = 0x40;
/**
 * Group header bit: radix packing — the width bits are 0, a uvarint range R follows the
 * minimum, and values are digits of base R+1 packed into chunks (see docs/format/encoding.md).
 */
export const GROUP_RADIX_FLAG = 0x80;
/** Largest bit width of a plain packed value (a group range must stay below 2^53). */
export const MAX_PACK_WIDTH = 53;

/** Decimal exponents span [-MAX_DECIMAL_EXP, MAX_DECIMAL_EXP]: powers of ten that are exact doubles. */
export const MAX_DECIMAL_EXP = 22;

/** Decimal exception kinds (one byte each; docs/format/encoding.md "Decimal header"). */
export const EXC_RAW = 0; // 8 raw bytes follow
export const EXC_STALE_NAN = 1; // 0x7ff0000000000002
export const EXC_POS_INF = 2;
export const EXC_NEG_INF = 3;
export const EXC_NEG_ZERO = 4;
export const EXC_CANONICAL_NAN = 5; // 0x7ff8000000000000

/** The Prometheus stale marker: a NaN with bits 0x7ff0000000000002 (hi word, lo word). */
export const STALE_NAN_HI = 0x7ff00000;
export const STALE_NAN_LO = 0x00000002;

/**
 * lz4 is tried only on payloads at least this long, and kept only when it saves at least
 * LZ4_MIN_GAIN_PERCENT of the bytes (decompression is not free).
 */
export const LZ4_MIN_INPUT = 64;
export const LZ4_MIN_GAIN_PERCENT = 10;

/** Upper bound on the samples of one block a decoder accepts (far above the 8192 the engine uses). */
export const MAX_BLOCK_COUNT = 1 << 24;

const intNames = new Map<number, string>(Object.entries(IntEncoding).map(([k, v]) => [v, k]));
const valueNames = new Map<number, string>(Object.entries(ValuesEncoding).map(([k, v]) => [v, k]));

/** Name of an int64/timestamps tag ("LinearPacked"), or "unknown(0x..)" — for logs and debug tools. */
export function intEncodingName(tag: number): string {
  return intNames.get(tag) ?? `unknown(0x${tag.toString(16)})`;
}

/** Name of a values tag ("DecimalDeltaPackedLz4"), or "unknown(0x..)". */
export function valuesEncodingName(tag: number): string {
  return valueNames.get(tag) ?? `unknown(0x${tag.toString(16)})`;
}
