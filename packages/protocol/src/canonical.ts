import { BadDataError, formatLabels, type Label, type LabelLimits, type Tenant } from "@strata/core";

/**
 * Builds canonical metric-name bytes (docs/format/metric-name.md, the same bytes as
 * @strata/core encodeMetricName) straight from label byte ranges inside a request body,
 * validating them with the rules of @strata/core validateLabels. Nothing is allocated per
 * label on the success path: ranges live in reused typed arrays and the name is written into
 * one of two alternating scratch buffers (RowsBatchWriter compares a row's name with the
 * previous row's, so the previous name must stay intact while the next one is built).
 */
export class LabelCanonicalizer {
  private body: Uint8Array = new Uint8Array(0);
  private n = 0;
  private ns = new Int32Array(64);
  private ne = new Int32Array(64);
  private vs = new Int32Array(64);
  private ve = new Int32Array(64);
  private order = new Int32Array(64);
  private readonly scratch: Uint8Array[] = [new Uint8Array(1024), new Uint8Array(1024)];
  private flip = 0;
  private checkUtf8 = true;
  private readonly tenantBytes = new Uint8Array(8);
  private readonly maxLabels: number;
  private readonly maxNameLen: number;
  private readonly maxValueLen: number;
  private readonly legacyNames: boolean;

  constructor(limits: LabelLimits = {}) {
    this.maxLabels = limits.maxLabels ?? Infinity;
    this.maxNameLen = limits.maxLabelNameLen ?? Infinity;
    this.maxValueLen = limits.maxLabelValueLen ?? Infinity;
    this.legacyNames = limits.legacyNames ?? false;
  }

  setTenant(t: Tenant): void {
    const dv = new DataView(this.tenantBytes.buffer);
    dv.setUint32(0, t.accountID >>> 0);
    dv.setUint32(4, t.projectID >>> 0);
  }

  /**
   * Starts a new label set whose ranges refer to `body`. `checkUtf8` false skips the UTF-8
   * check for bytes the caller has validated already (the remote write 2.0 symbols table).
   */
  begin(body: Uint8Array, checkUtf8 = true): void {
    this.body = body;
    this.n = 0;
    this.checkUtf8 = checkUtf8;
  }

  /** Adds a label by byte ranges; empty values are dropped (an empty value means absent). */
  add(nameStart: number, nameEnd: number, valueStart: number, valueEnd: number): void {
    if (this.checkUtf8) {
      if (!isUtf8Range(this.body, nameStart, nameEnd)) {
        throw new BadDataError(`label name at byte ${nameStart} is not valid UTF-8`, "STRATA_INVALID_LABEL_NAME");
      }
      if (!isUtf8Range(this.body, valueStart, valueEnd)) {
        throw new BadDataError(`label value at byte ${valueStart} is not valid UTF-8`, "STRATA_INVALID_LABEL_VALUE");
      }
    }
    if (valueEnd === valueStart) return;
    if (this.n === this.ns.length) this.grow();
    const i = this.n++;
    this.ns[i] = nameStart;
    this.ne[i] = nameEnd;
    this.vs[i] = valueStart;
    this.ve[i] = valueEnd;
  }

  private grow(): void {
    const cap = this.ns.length * 2;
    const g = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.ns = g(this.ns);
    this.ne = g(this.ne);
    this.vs = g(this.vs);
    this.ve = g(this.ve);
    this.order = new Int32Array(cap);
  }

  /** Labels added so far (after dropping empty values) as objects — for error messages and metadata. */
  labels(): Label[] {
    const out: Label[] = [];
    const dec = new TextDecoder();
    for (let k = 0; k < this.n; k++) {
      const i = this.order[k] ?? k;
      out.push({
        name: dec.decode(this.body.subarray(this.ns[i]!, this.ne[i]!)),
        value: dec.decode(this.body.subarray(this.vs[i]!, this.ve[i]!)),
      });
    }
    return out;
  }

  private fail(msg: (series: string) => string, code: ConstructorParameters<typeof BadDataError>[1]): never {
    let s = formatLabels(this.labels());
    if (s.length > 200) s = `${s.slice(0, 200)}…`;
    throw new BadDataError(msg(s), code);
  }

  /**
   * Sorts and validates the labels and returns the canonical metric-name bytes. The returned
   * view stays valid until the call after next.
   */
  finish(): Uint8Array {
    const body = this.body;
    const n = this.n;
    const order = this.order;
    for (let i = 0; i < n; i++) order[i] = i;
    // Insertion sort: senders almost always send sorted labels, which makes this one pass.
    for (let i = 1; i < n; i++) {
      const x = order[i]!;
      let j = i - 1;
      while (j >= 0 && this.cmpName(order[j]!, x) > 0) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = x;
    }
    if (n > this.maxLabels) {
      this.fail((s) => `series ${s} has ${n} labels, more than the limit of -maxLabelsPerTimeseries=${this.maxLabels}`, "STRATA_TOO_MANY_LABELS");
    }
    let hasName = false;
    let size = 8;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      const nl = this.ne[i]! - this.ns[i]!;
      const vl = this.ve[i]! - this.vs[i]!;
      if (nl === 0) this.fail((s) => `series ${s} has a label with an empty name`, "STRATA_INVALID_LABEL_NAME");
      if (k > 0 && this.cmpName(order[k - 1]!, i) === 0) {
        const name = new TextDecoder().decode(body.subarray(this.ns[i]!, this.ne[i]!));
        this.fail((s) => `series ${s} has duplicate label name ${JSON.stringify(name)}`, "STRATA_DUPLICATE_LABEL");
      }
      if (nl > this.maxNameLen) {
        const name = new TextDecoder().decode(body.subarray(this.ns[i]!, this.ne[i]!));
        this.fail(
          (s) => `series ${s}: label name ${JSON.stringify(name.slice(0, 64))} is ${nl} bytes, longer than -maxLabelNameLen=${this.maxNameLen}`,
          "STRATA_LABEL_TOO_LONG",
        );
      }
      if (vl > this.maxValueLen) {
        const name = new TextDecoder().decode(body.subarray(this.ns[i]!, this.ne[i]!));
        this.fail(
          (s) => `series ${s}: value of label ${JSON.stringify(name)} is ${vl} bytes, longer than -maxLabelValueLen=${this.maxValueLen}`,
          "STRATA_LABEL_TOO_LONG",
        );
      }
      const isMetricName = this.isMetricNameLabel(i);
      if (isMetricName) hasName = true;
      if (this.legacyNames) this.checkLegacy(i, isMetricName);
      size += uvarintSize(nl) + nl + uvarintSize(vl) + vl;
    }
    if (!hasName) this.fail((s) => `series ${s} has no metric name (__name__)`, "STRATA_INVALID_METRIC_NAME");

    this.flip ^= 1;
    let out = this.scratch[this.flip]!;
    if (out.length < size) {
      out = new Uint8Array(Math.max(size, out.length * 2));
      this.scratch[this.flip] = out;
    }
    out.set(this.tenantBytes, 0);
    let pos = 8;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      pos = putRange(out, pos, body, this.ns[i]!, this.ne[i]!);
      pos = putRange(out, pos, body, this.vs[i]!, this.ve[i]!);
    }
    return out.subarray(0, pos);
  }

  /**
   * Whether remote write label records body[start, end) — each `0a <rec> 0a <ln> name 12 <lv>
   * value`, every length one byte, which the caller has checked — are labels that finish() would
   * accept as they are: names in strictly ascending byte order (no duplicates), none empty, no
   * empty value, valid UTF-8, within the limits, `__name__` among them, and legacy names not
   * asked for. Their canonical name is then the records without tags (@strata/core
   * writeRecordsName). False means "take the full way" (which reports what is wrong), not that
   * the labels are invalid.
   */
  recordsCanonical(body: Uint8Array, start: number, end: number): boolean {
    if (this.legacyNames) return false;
    let count = 0;
    let hasName = false;
    let prevStart = 0;
    let prevLen = -1;
    for (let i = start; i < end; ) {
      const ln = body[i + 3]!;
      const ns = i + 4;
      const lv = body[ns + ln + 1]!;
      const vs = ns + ln + 2;
      if (ln === 0 || lv === 0 || ln > this.maxNameLen || lv > this.maxValueLen) return false;
      if (!isUtf8Range(body, ns, ns + ln) || !isUtf8Range(body, vs, vs + lv)) return false;
      if (prevLen >= 0) {
        // Names must ascend: compare with the previous one, byte by byte.
        const n = Math.min(prevLen, ln);
        let k = 0;
        while (k < n && body[prevStart + k] === body[ns + k]) k++;
        if (k < n ? body[prevStart + k]! > body[ns + k]! : prevLen >= ln) return false;
      }
      if (ln === 8 && body[ns] === 0x5f && body[ns + 1] === 0x5f && body[ns + 2] === 0x6e && body[ns + 3] === 0x61 && body[ns + 4] === 0x6d && body[ns + 5] === 0x65 && body[ns + 6] === 0x5f && body[ns + 7] === 0x5f) {
        hasName = true;
      }
      prevStart = ns;
      prevLen = ln;
      count++;
      i = vs + lv;
    }
    return hasName && count <= this.maxLabels;
  }

  /** Byte range of the `__name__` value of the set validated last (after finish). */
  metricNameRange(): [number, number] {
    for (let i = 0; i < this.n; i++) if (this.isMetricNameLabel(i)) return [this.vs[i]!, this.ve[i]!];
    return [0, 0];
  }

  private checkLegacy(i: number, isMetricName: boolean): void {
    const dec = new TextDecoder();
    if (isMetricName) {
      const v = dec.decode(this.body.subarray(this.vs[i]!, this.ve[i]!));
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(v)) {
        this.fail((s) => `series ${s}: invalid metric name ${JSON.stringify(v)}`, "STRATA_INVALID_METRIC_NAME");
      }
    } else {
      const name = dec.decode(this.body.subarray(this.ns[i]!, this.ne[i]!));
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) {
        this.fail((s) => `series ${s}: invalid label name ${JSON.stringify(name)}`, "STRATA_INVALID_LABEL_NAME");
      }
    }
  }

  private isMetricNameLabel(i: number): boolean {
    const s = this.ns[i]!;
    if (this.ne[i]! - s !== 8) return false;
    const b = this.body;
    // "__name__"
    return (
      b[s] === 0x5f && b[s + 1] === 0x5f && b[s + 2] === 0x6e && b[s + 3] === 0x61 &&
      b[s + 4] === 0x6d && b[s + 5] === 0x65 && b[s + 6] === 0x5f && b[s + 7] === 0x5f
    );
  }

  /** Compares two label names in byte (= code point) order. */
  private cmpName(a: number, b: number): number {
    const body = this.body;
    let i = this.ns[a]!;
    let j = this.ns[b]!;
    const ie = this.ne[a]!;
    const je = this.ne[b]!;
    while (i < ie && j < je) {
      const d = body[i]! - body[j]!;
      if (d !== 0) return d;
      i++;
      j++;
    }
    return ie - i - (je - j);
  }
}

function uvarintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function putRange(out: Uint8Array, pos: number, src: Uint8Array, start: number, end: number): number {
  let n = end - start;
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[pos++] = n;
  // A byte loop: label strings are short, and subarray() would allocate (a Buffer, even).
  for (let i = start; i < end; i++) out[pos++] = src[i]!;
  return pos;
}

/** Strict UTF-8 validation of buf[start, end): no overlongs, no surrogates, ≤ U+10FFFF. */
export function isUtf8Range(buf: Uint8Array, start: number, end: number): boolean {
  let acc = 0;
  for (let j = start; j < end; j++) acc |= buf[j]!;
  if (acc < 0x80) return true; // ASCII, the common case
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) {
      if (i + 1 >= end || (buf[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2;
    } else if (b >= 0xe0 && b <= 0xef) {
      if (i + 2 >= end) return false;
      const b1 = buf[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2]! & 0xc0) !== 0x80) return false;
      if (b === 0xe0 && b1 < 0xa0) return false; // overlong
      if (b === 0xed && b1 >= 0xa0) return false; // surrogate
      i += 3;
    } else if (b >= 0xf0 && b <= 0xf4) {
      if (i + 3 >= end) return false;
      const b1 = buf[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (buf[i + 2]! & 0xc0) !== 0x80 || (buf[i + 3]! & 0xc0) !== 0x80) return false;
      if (b === 0xf0 && b1 < 0x90) return false; // overlong
      if (b === 0xf4 && b1 >= 0x90) return false; // > U+10FFFF
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}
