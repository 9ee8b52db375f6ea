import type { Labels } from "@strata/core";
import type { MatrixSeries } from "@strata/promql";
import { tsJson } from "./respond.js";
import { VALUE_MAX_BYTES, writeValue } from "./value-bytes.js";

/**
 * A matrix answer (`{"resultType":"matrix","result":[…]}`) written as bytes, chunk by chunk: label
 * sets, step prefixes and values go straight into a chunk buffer (no string per series or per
 * point, no join, no UTF-8 conversion when the socket writes the chunk), and each full chunk is
 * handed on as is.
 */

/** The step grid of a range query: every point of every series sits on start + i·step. */
export interface StepGrid {
  readonly start: number;
  readonly step: number;
  readonly count: number;
}

/** Bytes a chunk holds before it is handed on (a few values and a prefix may follow). */
const CHUNK_BYTES = 64 * 1024;
/** Room after CHUNK_BYTES for the point that crosses it: a prefix (a whole table row), a value of any length, the closing bytes. */
const CHUNK_SLACK = 64 + VALUE_MAX_BYTES;

/** Bytes per step in GridPrefixes' table: `"],[` + a timestamp of up to 17 characters + `,"`, in whole doubles. */
const STRIDE = 24;
/** Grids longer than this write each prefix the general way (the table would take STRIDE bytes a step). */
const MAX_TABLE_STEPS = 1_000_000;
/** GridPrefixes' length of a step whose prefix is longer than a row. */
const NO_ROW = 255;
/** Whether this machine stores numbers little-endian (the table's doubles are written back in the order they were read). */
const NATIVE_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The bytes before each value of a matrix series on the step grid: `"],[<ts>,"` (`[<ts>,"` for a
 * series' first point), made once per query when a series first reaches the step (an empty or
 * short answer makes few), kept in a table of STRIDE bytes a step padded with zeros, and copied
 * into a chunk as two or three doubles through a DataView. A double read from the table and
 * written back keeps its bits: ASCII text and zero padding never form a NaN (the top byte of
 * each double is at most 0x7e, so its exponent is below 0x7ff).
 */
class GridPrefixes {
  private readonly bytes: Uint8Array;
  private readonly words: Float64Array;
  /** Each step's prefix length (`"],[<ts>,"`), 0 until made, NO_ROW when it does not fit a row. */
  readonly lengths: Uint8Array;
  /** Each made step's timestamp. */
  readonly times: Float64Array;
  constructor(readonly grid: StepGrid) {
    const n = grid.count > 0 && grid.count <= MAX_TABLE_STEPS ? grid.count : 0;
    this.words = new Float64Array((n * STRIDE) / 8);
    this.bytes = new Uint8Array(this.words.buffer);
    this.lengths = new Uint8Array(n);
    this.times = new Float64Array(n);
  }

  /** The step of timestamp t (−1: off the grid or not in the table), its prefix made. */
  step(t: number): number {
    const g = this.grid;
    const i = (t - g.start) / g.step;
    if (!(i >= 0 && i < this.lengths.length && Number.isInteger(i))) return -1;
    if (this.lengths[i] === 0) {
      const at = g.start + i * g.step;
      const s = `"],[${tsJson(at)},"`;
      if (s.length > STRIDE) {
        this.lengths[i] = NO_ROW;
      } else {
        for (let j = 0; j < s.length; j++) this.bytes[i * STRIDE + j] = s.charCodeAt(j);
        this.lengths[i] = s.length;
      }
      this.times[i] = at;
    }
    return this.lengths[i] === NO_ROW ? -1 : i;
  }

  /** Writes step i's `"],[<ts>,"` at pos (and up to 8 bytes of padding after it); returns the position after the prefix. */
  writeNext(dv: DataView, pos: number, i: number): number {
    const w = this.words;
    const b = i * (STRIDE / 8);
    const len = this.lengths[i]!;
    dv.setFloat64(pos, w[b]!, NATIVE_LE);
    dv.setFloat64(pos + 8, w[b + 1]!, NATIVE_LE);
    if (len > 16) dv.setFloat64(pos + 16, w[b + 2]!, NATIVE_LE);
    return pos + len;
  }

  /** Writes step i's `[<ts>,"` at pos; returns the position after it. */
  writeFirst(buf: Uint8Array, pos: number, i: number): number {
    const bytes = this.bytes;
    const from = i * STRIDE + 3; // `[` of `"],[`
    const to = i * STRIDE + this.lengths[i]!;
    for (let j = from; j < to; j++) buf[pos++] = bytes[j]!;
    return pos;
  }
}

/** A prefix off the grid (or not in its table), the general way. */
function writePrefix(buf: Buffer, pos: number, t: number, first: boolean): number {
  return pos + buf.write(first ? `[${tsJson(t)},"` : `"],[${tsJson(t)},"`, pos, "latin1");
}

/**
 * The `data` of a matrix, chunk by chunk. Series must already be sorted. Label sets are written
 * as JSON.stringify writes their strings (see writeLabels), values by writeValue.
 */
export function* matrixChunks(series: readonly MatrixSeries[], grid?: StepGrid): Generator<Uint8Array> {
  const prefixes = new GridPrefixes(grid ?? { start: 0, step: 1, count: 0 });
  const { lengths, times } = prefixes;
  const steps = lengths.length;
  let buf = Buffer.allocUnsafe(CHUNK_BYTES + CHUNK_SLACK);
  let dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = buf.write('{"resultType":"matrix","result":[', 0, "latin1");
  for (let k = 0; k < series.length; k++) {
    const s = series[k]!;
    const room = labelsRoom(s.labels) + 32;
    if (pos + room > CHUNK_BYTES) {
      if (pos > 0) yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, room) + CHUNK_SLACK);
      dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      pos = 0;
    }
    if (k > 0) buf[pos++] = 44; // ','
    pos += buf.write('{"metric":', pos, "latin1");
    pos = writeLabels(buf, pos, s.labels);
    pos += buf.write(',"values":[', pos, "latin1");
    const t = s.timestamps;
    const v = s.values;
    const n = t.length;
    // A value equal to the previous one copies its bytes (gauges and counts often stay flat
    // over many steps; NaN never compares equal and is written each time).
    let prev = NaN;
    let prevBuf = buf;
    let prevStart = 0;
    let prevEnd = 0;
    // The grid step of the previous point: a series' next point is usually the next step.
    let g = -1;
    for (let i = 0; i < n; i++) {
      const ti = t[i]!;
      g++;
      if (!(g < steps && lengths[g] !== 0 && lengths[g] !== NO_ROW && times[g] === ti)) g = steps === 0 ? -1 : prefixes.step(ti);
      if (g < 0) pos = writePrefix(buf, pos, ti, i === 0);
      else if (i === 0) pos = prefixes.writeFirst(buf, pos, g);
      else pos = prefixes.writeNext(dv, pos, g);
      const vi = v[i]!;
      if (vi === prev && (vi !== 0 || 1 / vi === 1 / prev)) {
        for (let j = prevStart; j < prevEnd; j++) buf[pos++] = prevBuf[j]!;
      } else {
        prev = vi;
        prevBuf = buf;
        prevStart = pos;
        pos = writeValue(buf, pos, vi);
        prevEnd = pos;
      }
      if (pos >= CHUNK_BYTES) {
        yield buf.subarray(0, pos);
        buf = Buffer.allocUnsafe(CHUNK_BYTES + CHUNK_SLACK);
        dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        pos = 0;
      }
    }
    pos += buf.write(n === 0 ? "]}" : '"]]}', pos, "latin1");
  }
  pos += buf.write("]}", pos, "latin1");
  yield buf.subarray(0, pos);
}

/**
 * The most bytes writeLabels may write for labels: a UTF-16 unit takes at most 6 (`\u001f`, a
 * lone surrogate's `\udc00`; a character outside ASCII takes 2–3 in UTF-8, a surrogate pair 4).
 */
export function labelsRoom(labels: Labels): number {
  let n = 2;
  for (let i = 0; i < labels.length; i++) n += 6 * (labels[i]!.name.length + labels[i]!.value.length) + 6;
  return n;
}

/**
 * Writes labels as `{"name":"value",…}`, each string as JSON.stringify writes it, in UTF-8, at
 * buf[pos] (which must have labelsRoom(labels) bytes of room); returns the position after it.
 */
export function writeLabels(buf: Buffer, pos: number, labels: Labels): number {
  buf[pos++] = 123; // '{'
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (i > 0) buf[pos++] = 44; // ','
    pos = writeString(buf, pos, l.name);
    buf[pos++] = 58; // ':'
    pos = writeString(buf, pos, l.value);
  }
  buf[pos++] = 125; // '}'
  return pos;
}

/** A JSON string: printable ASCII without `"` and `\` byte by byte, anything else through JSON.stringify. */
function writeString(buf: Buffer, pos: number, s: string): number {
  let p = pos;
  buf[p++] = 34; // '"'
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) return pos + buf.write(JSON.stringify(s), pos, "utf8");
    buf[p++] = c;
  }
  buf[p++] = 34;
  return p;
}
