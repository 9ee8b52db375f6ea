import type { ServerResponse } from "node:http";
import { formatPromValue, type MatrixSeries, type QueryResult } from "@strata/promql";
import type { Annotations } from "./respond.js";
import { labelsJson, sampleJson, tsJson } from "./respond.js";
import { VALUE_MAX_BYTES, writeValue } from "./value-bytes.js";

/**
 * Query results as Prometheus JSON, streamed in chunks of about CHUNK characters. A wide range
 * query answers tens of MB: building that as one string (and a Buffer copy of it) made GC the
 * largest cost of query_range. A matrix is written as byte chunks (values straight into the
 * chunk, see value-bytes.ts), other results as flat strings; chunks are written as they fill,
 * with backpressure, and the step timestamps of a range query are encoded once per query.
 */

/**
 * Characters per chunk string: small enough that V8 allocates it in the young generation (strings
 * over ~128 KB go to large-object space, and many MB of those per answer forced mark-compact
 * collections), so a chunk dies young and costs a scavenge, not a full GC.
 */
const CHUNK = 32 * 1024;
/** Bytes written to the socket per writev (chunks are corked until then). */
const WRITE_BATCH = 256 * 1024;

/**
 * formatPromValue, faster: JSON.stringify of a finite number gives the same shortest round-trip
 * digits as String() but skips V8's number-string cache (~170 vs ~280 ns per value measured);
 * exponent forms, ±0, NaN and infinities go the general way.
 */
export function fastValue(v: number): string {
  // Integers (counts, bytes, seconds) skip the shortest-digits search: a small one is V8's
  // cached Smi string (~12 vs ~55 ns), a large one two Smi strings (~66 vs ~123 ns).
  if ((v | 0) === v && v !== 0) return String(v);
  if (v !== 0 && Number.isInteger(v) && v < 1e15 && v > -1e15) return v > 0 ? bigInt(v) : `-${bigInt(-v)}`;
  if (v !== 0 && v - v === 0) {
    const s = JSON.stringify(v);
    if (s.indexOf("e") < 0) return s;
  }
  return formatPromValue(v);
}

const ZEROS = ["", "0", "00", "000", "0000", "00000", "000000", "0000000"];

/** Digits of an integer in (0, 1e15): the high and low 8 digits as Smi strings. */
function bigInt(v: number): string {
  const hi = Math.floor(v / 1e8);
  if (hi === 0) return String(v);
  const lo = String(v - hi * 1e8);
  return String(hi) + ZEROS[8 - lo.length]! + lo;
}

/** The step grid of a range query: every point of every series sits on start + i·step. */
export interface StepGrid {
  readonly start: number;
  readonly step: number;
  readonly count: number;
}

/**
 * The bytes before each value of a matrix series: `[<ts>,"` for its first point, `"],[<ts>,"`
 * for the next ones. Points on the step grid use bytes encoded once per query, when a series
 * first needs them (an empty or short answer encodes none or few of the grid's steps).
 */
class PointPrefixes {
  private readonly first: (Uint8Array | undefined)[] | undefined;
  private readonly next: (Uint8Array | undefined)[] | undefined;
  /** The grid's timestamps (filled as the prefixes are made; 0 before). */
  private readonly times: Float64Array | undefined;
  /** The grid index of the previous point (−1: none or off the grid). */
  private last = -1;
  constructor(private readonly grid: StepGrid | undefined) {
    if (grid !== undefined && grid.count > 0 && grid.count <= 1_000_000) {
      this.first = new Array<Uint8Array | undefined>(grid.count);
      this.next = new Array<Uint8Array | undefined>(grid.count);
      this.times = new Float64Array(grid.count);
    }
  }
  get(t: number, first: boolean): Uint8Array {
    const g = this.grid;
    const times = this.times;
    if (g !== undefined && times !== undefined) {
      // A series' next point is usually the grid's next step: one comparison, no division.
      let i = this.last + 1;
      if (first || this.last < 0 || i >= times.length || times[i] !== t || t === 0) i = (t - g.start) / g.step;
      if (i >= 0 && i < g.count && Number.isInteger(i)) {
        this.last = i;
        const list = first ? this.first! : this.next!;
        let p = list[i];
        if (p === undefined) {
          const at = g.start + i * g.step;
          times[i] = at;
          p = list[i] = Buffer.from(first ? `[${tsJson(at)},"` : `"],[${tsJson(at)},"`, "latin1");
        }
        return p;
      }
      this.last = -1;
    }
    return Buffer.from(first ? `[${tsJson(t)},"` : `"],[${tsJson(t)},"`, "latin1");
  }
}

/** Bytes a matrix chunk holds before it is handed on (a few values and a prefix may follow). */
const CHUNK_BYTES = 64 * 1024;
/** Room after CHUNK_BYTES for the point that crosses it: a prefix and a value of any length. */
const CHUNK_SLACK = 64 + VALUE_MAX_BYTES;

/**
 * The `data` of a matrix, chunk by chunk. Series must already be sorted. Prefixes and values are
 * written as bytes into a chunk buffer (values by writeValue, without a string per value), and
 * each full chunk is handed on as is: no per-point strings, no join, no UTF-8 conversion when the
 * socket writes it. Label sets are strings (once per series) and are encoded into the chunk.
 */
export function* matrixChunks(series: readonly MatrixSeries[], grid?: StepGrid): Generator<Uint8Array> {
  const prefixes = new PointPrefixes(grid);
  let buf = Buffer.allocUnsafe(CHUNK_BYTES + CHUNK_SLACK);
  let pos = buf.write('{"resultType":"matrix","result":[', 0, "latin1");
  for (let k = 0; k < series.length; k++) {
    const s = series[k]!;
    const head = `${k === 0 ? "" : ","}{"metric":${labelsJson(s.labels)},"values":[`;
    const headBytes = Buffer.byteLength(head);
    if (pos + headBytes > CHUNK_BYTES) {
      if (pos > 0) yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, headBytes) + CHUNK_SLACK);
      pos = 0;
    }
    pos += buf.write(head, pos, "utf8");
    const t = s.timestamps;
    const v = s.values;
    const n = t.length;
    // A value equal to the previous one copies its bytes (gauges and counts often stay flat
    // over many steps; NaN never compares equal and is written each time).
    let prev = NaN;
    let prevBuf = buf;
    let prevStart = 0;
    let prevEnd = 0;
    for (let i = 0; i < n; i++) {
      const p = prefixes.get(t[i]!, i === 0);
      const pl = p.length;
      // A step's prefix is ~16 bytes: one native copy beats a byte loop (−8 ms over 289k points in bench:render).
      if (pl > 12) {
        buf.set(p, pos);
        pos += pl;
      } else for (let j = 0; j < pl; j++) buf[pos++] = p[j]!;
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
        pos = 0;
      }
    }
    pos += buf.write(n === 0 ? "]}" : '"]]}', pos, "latin1");
  }
  pos += buf.write("]}", pos, "latin1");
  yield buf.subarray(0, pos);
}

/** The `data` of any result (a matrix is sorted by the caller). */
export function* resultChunks(r: QueryResult, grid?: StepGrid): Generator<string | Uint8Array> {
  switch (r.type) {
    case "scalar":
      yield `{"resultType":"scalar","result":${sampleJson(r.timestamp, r.value)}}`;
      return;
    case "string":
      yield `{"resultType":"string","result":[${tsJson(r.timestamp)},${JSON.stringify(r.value)}]}`;
      return;
    case "vector": {
      const tsStr = tsJson(r.timestamp);
      let chunk = '{"resultType":"vector","result":[';
      for (let i = 0; i < r.labels.length; i++) {
        chunk += `${i === 0 ? "" : ","}{"metric":${labelsJson(r.labels[i]!)},"value":[${tsStr},"${fastValue(r.values[i]!)}"]}`;
        if (chunk.length >= CHUNK) {
          yield chunk;
          chunk = "";
        }
      }
      yield `${chunk}]}`;
      return;
    }
    case "matrix":
      yield* matrixChunks(r.series, grid);
      return;
  }
}

/**
 * `{"status":"success","isPartial":…,"data":<chunks>,"warnings":[…],"infos":[…]}` written with
 * backpressure from the socket.
 *
 * Nothing is written until WRITE_BATCH bytes are ready: an answer smaller than that (most
 * dashboard queries) goes out whole, headers and body, in one write with its content-length; a
 * larger one as a chunked response, batch by batch. (Written as it came, a small answer took two
 * writev calls, the data and then the closing bytes, and the chunked framing.)
 *
 * The query's deadline covers writing: `signal` is checked before the first write and after every
 * batch, and between batches the event loop runs (after a drain when the socket is full), so
 * other requests and the deadline timer are served while a large answer is written.
 * Aborted before anything was sent, it throws the signal's reason (the caller answers with that
 * error); aborted after the headers, it destroys the connection — a client sees a chunked body
 * that never ends (no terminating chunk), never a truncated answer that parses — and throws.
 */
export async function successStream(res: ServerResponse, data: Iterable<string | Uint8Array>, ann: Annotations = {}, signal?: AbortSignal): Promise<void> {
  throwIfAborted(res, signal);
  let head = `{"status":"success"`;
  if (ann.isPartial !== undefined) head += `,"isPartial":${ann.isPartial}`;
  head += `,"data":`;
  // Parts not written yet (all of them until the first batch is full); strings are JSON text.
  const held: (string | Uint8Array)[] = [];
  let pending = head;
  let heldBytes = 0;
  let started = false;
  for (const chunk of data) {
    if (typeof chunk === "string") {
      pending = pending === "" ? chunk : pending + chunk;
      if (pending.length < CHUNK) continue;
      held.push(pending);
      heldBytes += pending.length;
    } else {
      if (pending !== "") held.push(pending);
      held.push(chunk);
      heldBytes += pending.length + chunk.length;
    }
    pending = "";
    if (heldBytes >= WRITE_BATCH) {
      if (!started) {
        res.writeHead(200, { "content-type": "application/json" });
        started = true;
      }
      res.cork();
      for (const c of held) res.write(c);
      res.uncork();
      held.length = 0;
      heldBytes = 0;
      if (res.writableNeedDrain) await drained(res, signal);
      // A write the socket took at once emits 'drain' on process.nextTick: without a real turn
      // the next batch would run before any other request's I/O.
      await nextTurn();
      throwIfAborted(res, signal);
    }
  }
  if (ann.warnings && ann.warnings.length > 0) pending += `,"warnings":${JSON.stringify(ann.warnings)}`;
  if (ann.infos && ann.infos.length > 0) pending += `,"infos":${JSON.stringify(ann.infos)}`;
  if (ann.trace?.enabled) pending += `,"trace":${JSON.stringify(ann.trace)}`;
  pending += "}";
  held.push(pending);
  if (!started) {
    // The parts as they are (no copy into one buffer), after a header with their length.
    let length = 0;
    for (const c of held) length += typeof c === "string" ? Buffer.byteLength(c) : c.length;
    res.writeHead(200, { "content-type": "application/json", "content-length": length });
  }
  // end() uncorks: the parts (and the headers, or the terminating chunk) go out in one writev.
  res.cork();
  for (let i = 0; i < held.length - 1; i++) res.write(held[i]!);
  res.end(pending);
}

function throwIfAborted(res: ServerResponse, signal: AbortSignal | undefined): void {
  if (signal === undefined || !signal.aborted) return;
  if (res.headersSent) res.destroy();
  throw signal.reason;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function drained(res: ServerResponse, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
    signal?.addEventListener("abort", done);
  });
}
