import type { ServerResponse } from "node:http";
import { formatPromValue, type QueryResult } from "@strata/promql";
import type { Annotations } from "./respond.js";
import { labelsJson, sampleJson, tsJson } from "./respond.js";
import { matrixChunks, type StepGrid } from "./matrix-bytes.js";

/**
 * Query results as Prometheus JSON, streamed in chunks of about CHUNK characters. A wide range
 * query answers tens of MB: building that as one string (and a Buffer copy of it) made GC the
 * largest cost of query_range. A matrix is written as byte chunks (matrix-bytes.ts), other
 * results as flat strings; chunks are written as they fill, with backpressure.
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
