import { BadDataError, InternalError } from "./errors.js";
import { growBytes } from "./bytes.js";

/**
 * Rows batch v1 — the packed form in which rows travel from insert to storage and are appended
 * to the WAL unchanged (docs/format/rows-batch.md). A batch is a sequence of rows:
 *
 *   uvarint(n) | n bytes canonical metric name   (n = 0: same metric name as the previous row)
 *   int64 LE   timestamp, milliseconds
 *   float64 LE value (any bit pattern; NaN payloads and the stale marker are kept)
 *
 * No object is created per row: the writer appends into one growable buffer, and the reader is
 * a cursor whose `metricName` is a view into the batch.
 */

const TWO_32 = 4294967296;

/**
 * Where a decoder puts rows: a RowsBatchWriter, or a sink that splits rows per storage node as
 * they arrive (@strata/cluster RoutedRows). `hashLo`/`hashHi` are the seriesHashRange of the
 * name bytes, which decoders keep cached with the name; a plain batch ignores them.
 */
/**
 * The timestamps (ms, inclusive) storage keeps: from now − retention to now + futureRetention.
 * Rows outside are ignored and counted by the side that drops them, never stored silently.
 */
export interface SampleWindow {
  readonly minT: number;
  readonly maxT: number;
}

export const ANY_TIME: SampleWindow = Object.freeze({ minT: -Infinity, maxT: Infinity });

/** The window at `now` for a retention (0: no lower bound) and a future retention, in ms. */
export function sampleWindow(retentionMs: number, futureRetentionMs: number, now: number): SampleWindow {
  return { minT: retentionMs > 0 ? now - retentionMs : -Infinity, maxT: now + futureRetentionMs };
}

export interface RowsSink {
  /** Appends a row whose metric name is src[off, off + len). */
  addHashedName(src: Uint8Array, off: number, len: number, hashLo: number, hashHi: number, timestampMs: number, value: number): void;
  /** Appends a row with the metric name of the previous row (which must exist). */
  addSameName(timestampMs: number, value: number): void;
  /**
   * Appends a row whose metric name is the tenant (account, project) followed by the labels that
   * remote write label records src[start, end) spell: `0a <4 + ln + lv> 0a <ln> name 12 <lv>
   * value` per label, every length one byte, in canonical order — which the caller has checked
   * (writeRecordsName). `len` is the name's length: 8 + (end − start) − 4 × records.
   */
  addRecordsName(src: DataView, start: number, end: number, len: number, account: number, project: number, hashLo: number, hashHi: number, timestampMs: number, value: number): void;
}

/**
 * Writes the canonical metric name (docs/format/metric-name.md) of a tenant and the labels that
 * remote write label records [start, end) of `src` spell (see RowsSink.addRecordsName) into
 * `dst` (a DataView of the bytes) from `pos`: the tenant, then per record its bytes without the
 * two tags and the record's length (`<ln> name <lv> value`). Returns the position after the name.
 */
export function writeRecordsName(src: DataView, start: number, end: number, account: number, project: number, dst: DataView, pos: number): number {
  dst.setUint32(pos, account);
  dst.setUint32(pos + 4, project);
  pos += 8;
  for (let i = start; i < end; ) {
    const rec = src.getUint8(i + 1);
    const ln = src.getUint8(i + 3);
    // `<ln> name`, then past the value's tag `<lv> value`; 4 bytes a step, the last step
    // overlapping the one before (every run is ≥ 4 bytes but a name's or value's of ≤ 2).
    for (let from = i + 3, n = 1 + ln, k = 0; k < 2; k++, from = i + 5 + ln, n = rec - 3 - ln) {
      if (n < 4) {
        for (let j = 0; j < n; j++) dst.setUint8(pos + j, src.getUint8(from + j));
      } else {
        for (let j = 0; j < n - 4; j += 4) dst.setInt32(pos + j, src.getInt32(from + j, true), true);
        dst.setInt32(pos + n - 4, src.getInt32(from + n - 4, true), true);
      }
      pos += n;
    }
    i += 2 + rec;
  }
  return pos;
}

export class RowsBatchWriter implements RowsSink {
  private buf: Uint8Array;
  private dv: DataView;
  private pos = 0;
  private rows = 0;
  private prev: Uint8Array | undefined;

  constructor(initialCapacity = 64 * 1024) {
    this.buf = new Uint8Array(initialCapacity);
    this.dv = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.rows;
  }

  get byteLength(): number {
    return this.pos;
  }

  /** Bytes allocated for the batch. */
  get capacity(): number {
    return this.buf.length;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = growBytes(this.buf, this.pos, this.pos + extra);
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }

  /** Makes room for `bytes` more bytes at once (when the caller can estimate the batch size). */
  reserve(bytes: number): void {
    this.ensure(bytes);
  }

  /** Appends a row. `metricName` is canonical metric-name bytes (see encodeMetricName). */
  add(metricName: Uint8Array, timestampMs: number, value: number): void {
    const same = this.prev !== undefined && bytesEqual(this.prev, metricName);
    const n = same ? 0 : metricName.length;
    this.ensure(5 + n + 16);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
    if (!same) {
      this.buf.set(metricName, this.pos);
      this.pos += n;
      this.prev = metricName;
    }
    writeInt64LE(this.dv, this.pos, timestampMs);
    this.dv.setFloat64(this.pos + 8, value, true);
    this.pos += 16;
    this.rows++;
  }

  /**
   * Appends a row whose metric name is src[off, off + len) (always written out: the caller knows
   * better than a byte comparison when a name repeats, see addSameName).
   */
  addName(src: Uint8Array, off: number, len: number, timestampMs: number, value: number): void {
    let pos = this.nameHeader(len);
    const buf = this.buf;
    if (len < 64) for (let i = 0; i < len; i++) buf[pos + i] = src[off + i]!;
    else buf.set(src.subarray(off, off + len), pos);
    pos += len;
    this.rowTail(pos, timestampMs, value);
  }

  /** RowsSink.addRecordsName (the batch has no use for the hash). */
  addRecordsName(src: DataView, start: number, end: number, len: number, account: number, project: number, _hashLo: number, _hashHi: number, timestampMs: number, value: number): void {
    const pos = this.nameHeader(len);
    this.rowTail(writeRecordsName(src, start, end, account, project, this.dv, pos), timestampMs, value);
  }

  /** Makes room for a row with a name of `len` bytes and writes its length; returns where the name goes. */
  private nameHeader(len: number): number {
    this.ensure(5 + len + 16);
    const buf = this.buf;
    let pos = this.pos;
    let v = len;
    while (v >= 0x80) {
      buf[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[pos++] = v;
    return pos;
  }

  /** Writes the timestamp and value of a row whose name ends at `pos`, and counts the row. */
  private rowTail(pos: number, timestampMs: number, value: number): void {
    writeInt64LE(this.dv, pos, timestampMs);
    this.dv.setFloat64(pos + 8, value, true);
    this.pos = pos + 16;
    this.rows++;
    this.prev = undefined;
  }

  /** addName for a RowsSink (the batch has no use for the hash). */
  addHashedName(src: Uint8Array, off: number, len: number, _hashLo: number, _hashHi: number, timestampMs: number, value: number): void {
    this.addName(src, off, len, timestampMs, value);
  }

  /** Appends a row with the metric name of the previous row (which must exist). */
  addSameName(timestampMs: number, value: number): void {
    if (this.rows === 0) throw new InternalError("rows batch: addSameName without a previous row");
    this.ensure(1 + 16);
    this.buf[this.pos++] = 0;
    writeInt64LE(this.dv, this.pos, timestampMs);
    this.dv.setFloat64(this.pos + 8, value, true);
    this.pos += 16;
    this.rows++;
  }

  /** A copy of the batch bytes; the writer can be reset and reused afterwards. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** A view of the batch bytes, valid until the next add/reset. */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  reset(): void {
    this.pos = 0;
    this.rows = 0;
    this.prev = undefined;
  }
}

/** Cursor over a rows batch: `while (r.next()) use(r.metricName, r.timestamp, r.value)`. */
export class RowsBatchReader {
  private readonly buf: Uint8Array;
  private readonly dv: DataView;
  private pos = 0;
  metricName: Uint8Array = new Uint8Array(0);
  timestamp = 0;
  value = 0;
  /** True when the current row's metric name is the same bytes as the previous row's. */
  sameAsPrevious = false;

  constructor(batch: Uint8Array) {
    this.buf = batch;
    this.dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  }

  /** Advances to the next row; false at the end. Throws BadDataError on a malformed batch. */
  next(): boolean {
    if (this.pos >= this.buf.length) return false;
    const nameStart = this.frame();
    if (nameStart < 0) {
      this.sameAsPrevious = true;
    } else {
      this.metricName = this.buf.subarray(nameStart, this.pos - 16);
      this.sameAsPrevious = false;
    }
    this.timestamp = readInt64LE(this.dv, this.pos - 16);
    this.value = this.dv.getFloat64(this.pos - 8, true);
    return true;
  }

  /** Moves past the next row without reading it (nothing allocated); false at the end. */
  skip(): boolean {
    if (this.pos >= this.buf.length) return false;
    this.frame();
    return true;
  }

  /**
   * Checks the framing of the row at pos and moves past it; returns where its metric name
   * starts, or -1 when it refers to the previous row's name. Throws BadDataError.
   */
  private frame(): number {
    const buf = this.buf;
    const start = this.pos;
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= buf.length || mul > 2 ** 28) {
        throw new BadDataError(`rows batch: bad metric-name length at byte ${start}`, "STRATA_CORRUPT_DATA");
      }
      const b = buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    let nameStart = -1;
    if (n === 0) {
      if (start === 0) {
        throw new BadDataError("rows batch: first row refers to a previous metric name", "STRATA_CORRUPT_DATA");
      }
    } else {
      if (this.pos + n > buf.length) {
        throw new BadDataError(`rows batch: metric name at byte ${this.pos} overruns the batch`, "STRATA_CORRUPT_DATA");
      }
      nameStart = this.pos;
      this.pos += n;
    }
    if (this.pos + 16 > buf.length) {
      throw new BadDataError(`rows batch: truncated row at byte ${start}`, "STRATA_CORRUPT_DATA");
    }
    this.pos += 16;
    return nameStart;
  }
}

/**
 * Counts rows and validates the framing of a batch without decoding names (the same
 * BadDataErrors as RowsBatchReader; nothing is allocated per row).
 */
export function countRows(batch: Uint8Array): number {
  const r = new RowsBatchReader(batch);
  let n = 0;
  while (r.skip()) n++;
  return n;
}

/** Writes an integer-valued double (|v| < 2^53) as int64 little-endian. */
export function writeInt64LE(dv: DataView, pos: number, v: number): void {
  const lo = v >>> 0; // two's complement low word, also for negatives
  const hi = Math.floor(v / TWO_32);
  dv.setUint32(pos, lo, true);
  dv.setInt32(pos + 4, hi, true);
}

/** Reads int64 little-endian as a double (exact for |v| < 2^53). */
export function readInt64LE(dv: DataView, pos: number): number {
  return dv.getInt32(pos + 4, true) * TWO_32 + dv.getUint32(pos, true);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
