import { BadDataError } from "@strata/core";

const TWO_32 = 4294967296;

/**
 * Allocation-free cursor over a rows batch v1 (@strata/core rows.ts; same framing and the same
 * BadDataErrors as RowsBatchReader) for the write path: the metric name is given as byte offsets
 * [nameStart, nameEnd) into the batch instead of a subarray per row, and `dv` is a DataView over
 * the batch (`dv.getInt32(i)` reads batch[i..i+4)), so the series cache can hash and compare
 * the name four bytes at a time without creating anything.
 */
export class RowsScanner {
  readonly dv: DataView;
  private pos = 0;
  nameStart = 0;
  nameEnd = 0;
  timestamp = 0;
  value = 0;
  /** True when the current row's metric name is the same bytes as the previous row's. */
  sameAsPrevious = false;

  constructor(readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** The current row's metric name as a view into the batch (allocates: slow paths only). */
  name(): Uint8Array {
    return this.buf.subarray(this.nameStart, this.nameEnd);
  }

  /** Advances to the next row; false at the end. Throws BadDataError on a malformed batch. */
  next(): boolean {
    const buf = this.buf;
    const len = buf.length;
    let pos = this.pos;
    if (pos >= len) return false;
    const start = pos;
    let b = buf[pos]!;
    let n: number;
    if (b < 0x80) {
      // one-byte length: the common case (names shorter than 128 bytes)
      n = b;
      pos++;
    } else {
      n = 0;
      let mul = 1;
      for (;;) {
        if (pos >= len || mul > 2 ** 28) {
          throw new BadDataError(`rows batch: bad metric-name length at byte ${start}`, "STRATA_CORRUPT_DATA");
        }
        b = buf[pos++]!;
        n += (b & 0x7f) * mul;
        if (b < 0x80) break;
        mul *= 128;
      }
    }
    if (n === 0) {
      if (start === 0) throw new BadDataError("rows batch: first row refers to a previous metric name", "STRATA_CORRUPT_DATA");
      this.sameAsPrevious = true;
    } else {
      if (pos + n > len) throw new BadDataError(`rows batch: metric name at byte ${pos} overruns the batch`, "STRATA_CORRUPT_DATA");
      this.nameStart = pos;
      this.nameEnd = pos + n;
      pos += n;
      this.sameAsPrevious = false;
    }
    if (pos + 16 > len) throw new BadDataError(`rows batch: truncated row at byte ${start}`, "STRATA_CORRUPT_DATA");
    const dv = this.dv;
    this.timestamp = dv.getInt32(pos + 4, true) * TWO_32 + dv.getUint32(pos, true);
    this.value = dv.getFloat64(pos + 8, true);
    this.pos = pos + 16;
    return true;
  }
}
