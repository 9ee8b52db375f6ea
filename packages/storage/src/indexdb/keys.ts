import { BadDataError, type Tenant } from "@strata/core";
import { ByteBuffer } from "../bytes.js";

/**
 * Item kinds (first byte of every item). Byte layouts are in docs/format/indexdb.md; all
 * integers big-endian, so byte order of items equals numeric order of their fields.
 */
export const NS_NAME_TO_TSID = 0x01; // 01 | xxhash64(metricName) u64 | metricID u64 (format 1 indexes: | TSID)
export const NS_ID = 0x02; //            02 | metricID u64 | TSID | metricName
export const NS_TAG = 0x03; //           03 | acc u32 | proj u32 | esc(name) 01 | esc(value) 01 | metricID u64
export const NS_DAY_TAG = 0x04; //       04 | acc u32 | proj u32 | day u32 | esc(name) 01 | esc(value) 01 | metricID u64
export const NS_DAY_ALL = 0x05; //       05 | acc u32 | proj u32 | day u32 | metricID u64
export const NS_DELETED = 0x06; //       06 | metricID u64

/** Names of the item kinds in metrics and benchmarks (by the two hex digits of the kind byte). */
export const KIND_NAMES: Readonly<Record<string, string>> = {
  "01": "name_to_tsid",
  "02": "id_to_name",
  "03": "tag",
  "04": "day_tag",
  "05": "day",
  "06": "deleted",
};

export const TAG_SEP = 0x01;
export const ESC = 0x00;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8");

/** Appends `src[s:e)` with 0x00 → 00 30 and 0x01 → 00 31, so the separator 0x01 never occurs. */
export function putEscaped(bb: ByteBuffer, src: Uint8Array, s = 0, e = src.length): void {
  bb.ensure((e - s) * 2);
  const b = bb.buf;
  let p = bb.len;
  for (let i = s; i < e; i++) {
    const c = src[i]!;
    if (c <= 1) {
      b[p++] = ESC;
      b[p++] = 0x30 + c;
    } else b[p++] = c;
  }
  bb.len = p;
}

export function putEscapedString(bb: ByteBuffer, s: string): void {
  putEscaped(bb, enc.encode(s));
}

/** Decodes an escaped UTF-8 range back to a string. */
export function unescapeString(b: Uint8Array, s: number, e: number): string {
  let hasEsc = false;
  for (let i = s; i < e; i++) {
    if (b[i] === ESC) {
      hasEsc = true;
      break;
    }
  }
  if (!hasEsc) return dec.decode(b.subarray(s, e));
  const out = new Uint8Array(e - s);
  let n = 0;
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    if (c === ESC && i + 1 < e) out[n++] = b[++i]! - 0x30;
    else out[n++] = c;
  }
  return dec.decode(out.subarray(0, n));
}

/** `ns | acc | proj [| day]`. */
export function putScope(bb: ByteBuffer, ns: number, tenant: Tenant, day: number | undefined): void {
  bb.byte(ns);
  bb.u32(tenant.accountID);
  bb.u32(tenant.projectID);
  if (day !== undefined) bb.u32(day);
}

/** Offset of the next TAG_SEP at or after `s` (or `e` when none). */
export function findSep(b: Uint8Array, s: number, e: number): number {
  for (let i = s; i < e; i++) if (b[i] === TAG_SEP) return i;
  return e;
}

/**
 * Label byte ranges of canonical metric-name bytes (`acc u32 | proj u32 | {uvarint len name,
 * uvarint len value}*`): ranges[4i..4i+3] = nameStart, nameEnd, valueStart, valueEnd.
 */
export class LabelRanges {
  ranges = new Int32Array(64);
  count = 0;

  parse(b: Uint8Array): void {
    if (b.length < 8) throw new BadDataError(`metric name of ${b.length} bytes is shorter than 8`, "STRATA_CORRUPT_DATA");
    this.pos = 8;
    let n = 0;
    const end = b.length;
    while (this.pos < end) {
      if ((n + 1) * 4 > this.ranges.length) {
        const r = new Int32Array(this.ranges.length * 2);
        r.set(this.ranges);
        this.ranges = r;
      }
      const nl = this.len(b);
      const ns = this.pos;
      this.pos += nl;
      if (this.pos > end) throw new BadDataError(`metric name: label name overruns at byte ${ns}`, "STRATA_CORRUPT_DATA");
      const vl = this.len(b);
      const vs = this.pos;
      this.pos += vl;
      if (this.pos > end) throw new BadDataError(`metric name: label value overruns at byte ${vs}`, "STRATA_CORRUPT_DATA");
      const r = this.ranges;
      r[n * 4] = ns;
      r[n * 4 + 1] = ns + nl;
      r[n * 4 + 2] = vs;
      r[n * 4 + 3] = vs + vl;
      n++;
    }
    this.count = n;
  }

  /** Parse position (a field, not a closure: parse runs several times per new series). */
  private pos = 0;

  /** The uvarint length at `pos` (advancing past it). */
  private len(b: Uint8Array): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= b.length) break;
      const c = b[this.pos++]!;
      v += (c & 0x7f) * mul;
      if (c < 0x80) return v;
      mul *= 128;
    }
    throw new BadDataError(`metric name: bad length varint at byte ${this.pos}`, "STRATA_CORRUPT_DATA");
  }

  /** Index of the label whose name bytes equal `name`, or -1. */
  find(b: Uint8Array, name: Uint8Array): number {
    const r = this.ranges;
    outer: for (let i = 0; i < this.count; i++) {
      const s = r[i * 4]!;
      const e = r[i * 4 + 1]!;
      if (e - s !== name.length) continue;
      for (let j = 0; j < name.length; j++) if (b[s + j] !== name[j]) continue outer;
      return i;
    }
    return -1;
  }
}

export const NAME_BYTES = enc.encode("__name__");
export const JOB_BYTES = enc.encode("job");
export const INSTANCE_BYTES = enc.encode("instance");

export function tenantOfName(b: Uint8Array): Tenant {
  return {
    accountID: ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0,
    projectID: ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0,
  };
}

export const utf8 = { enc, dec };
