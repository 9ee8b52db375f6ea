import { fromBinary } from "@bufbuild/protobuf";
import { ByteBuffer, uvarintSize, writeUvarint } from "@strata/encoding";
import { SearchEndSchema, type SearchEnd } from "./gen/strata/cluster/v1/cluster_pb.js";
import { GRPC_PREFIX_BYTES, PreFramedMessage } from "./rpc-framed.js";
import { protoError, WIRE_LEN, WIRE_VARINT, WireCursor } from "./wire.js";

/**
 * Hand-written codec of `SearchResponse { repeated SeriesBlock blocks = 1; SearchEnd end = 2 }`
 * frames, the hot path
 * of Search_v1 (docs/format/cluster-rpc.md). The bytes are exactly what protobuf-es produces and
 * reads (fields may come in any order on the wire; this writer puts `data` last so its payload
 * can be written in place), so either side may use the generated messages instead.
 *
 * The writer appends blocks into one @strata/encoding ByteBuffer whose payload the caller writes in place,
 * and `view()` hands the frame out without a copy: no message object, no per-block copy, no
 * writer growth per frame. The reader walks a received frame without allocating per field: its views
 * point into the frame.
 */

const TAG_BLOCKS = (1 << 3) | WIRE_LEN; // SearchResponse.blocks
const TAG_METRIC_NAME = (1 << 3) | WIRE_LEN;
const TAG_ENCODING = (2 << 3) | WIRE_VARINT;
const TAG_DATA = (3 << 3) | WIRE_LEN;
const TAG_ROWS = (4 << 3) | WIRE_VARINT;
const TAG_MIN_T = (5 << 3) | WIRE_VARINT;
const TAG_MAX_T = (6 << 3) | WIRE_VARINT;
const TAG_END = (2 << 3) | WIRE_LEN; // SearchResponse.end
const TAG_END_CODE = (1 << 3) | WIRE_VARINT;
const TAG_END_DETAILS = (2 << 3) | WIRE_LEN;
const TAG_END_TRACE = (3 << 3) | WIRE_LEN;

const TWO_32 = 4294967296;
const EMPTY = new Uint8Array(0);

/** Size of an int64 varint (negative numbers take 10 bytes, as in protobuf). */
function int64Size(n: number): number {
  return n < 0 ? 10 : uvarintSize(n);
}

export class SearchFrameWriter {
  private readonly out: ByteBuffer;
  /** Where the frame starts in `buf`: after room for gRPC's message prefix when asked for. */
  private readonly base: number;
  /** Blocks in the current frame. */
  blocks = 0;

  /**
   * `grpcPrefix`: keep the first 5 bytes of the memory for gRPC's length prefix, so `message()`
   * can hand the frame to a grpc-js server already framed (PreFramedMessage), without a copy.
   */
  constructor(capacity = 64 * 1024, grpcPrefix = false) {
    this.base = grpcPrefix ? GRPC_PREFIX_BYTES : 0;
    this.out = new ByteBuffer(capacity + this.base);
    this.out.len = this.base;
  }

  /** The writer's memory: appendBlock's `data` payload goes to buf[at, at + dataLen). */
  get buf(): Uint8Array {
    return this.out.buf;
  }

  /** Bytes of the frame written. */
  get len(): number {
    return this.out.len - this.base;
  }

  private int64(n: number): void {
    if (n >= 0) return writeUvarint(this.out, n);
    // Two's complement over 64 bits, 10 bytes.
    let lo = n >>> 0;
    let hi = Math.floor(n / TWO_32) >>> 0;
    const out = this.out;
    out.ensure(10);
    for (let i = 0; i < 9; i++) {
      out.buf[out.len++] = (lo & 0x7f) | 0x80;
      lo = (lo >>> 7) | ((hi & 0x7f) << 25);
      hi >>>= 7;
    }
    out.buf[out.len++] = lo & 0x01;
  }

  /**
   * Appends a SeriesBlock whose `data` holds `dataLen` bytes and returns the offset in `buf` where
   * the caller must write them (before the next call). `metricName` empty: the previous block's.
   */
  appendBlock(metricName: Uint8Array, encoding: number, rowsCount: number, minT: number, maxT: number, dataLen: number): number {
    let size = 0;
    if (metricName.length > 0) size += 1 + uvarintSize(metricName.length) + metricName.length;
    if (encoding !== 0) size += 1 + uvarintSize(encoding);
    if (rowsCount !== 0) size += 1 + uvarintSize(rowsCount);
    if (minT !== 0) size += 1 + int64Size(minT);
    if (maxT !== 0) size += 1 + int64Size(maxT);
    if (dataLen > 0) size += 1 + uvarintSize(dataLen) + dataLen;
    const out = this.out;
    // Room for the whole block up front, so the payload's place cannot move before it is written.
    out.ensure(1 + uvarintSize(size) + size);
    out.byte(TAG_BLOCKS);
    writeUvarint(out, size);
    if (metricName.length > 0) {
      out.byte(TAG_METRIC_NAME);
      writeUvarint(out, metricName.length);
      out.bytes(metricName);
    }
    if (encoding !== 0) {
      out.byte(TAG_ENCODING);
      writeUvarint(out, encoding);
    }
    if (rowsCount !== 0) {
      out.byte(TAG_ROWS);
      writeUvarint(out, rowsCount);
    }
    if (minT !== 0) {
      out.byte(TAG_MIN_T);
      this.int64(minT);
    }
    if (maxT !== 0) {
      out.byte(TAG_MAX_T);
      this.int64(maxT);
    }
    let at = out.len;
    if (dataLen > 0) {
      out.byte(TAG_DATA);
      writeUvarint(out, dataLen);
      at = out.len;
      out.len += dataLen;
    }
    this.blocks++;
    return at;
  }

  /**
   * Appends `end` (SearchStream_v1: the search is over; `code` 0 when it is complete). Nothing
   * may be appended after it in this frame.
   */
  appendEnd(code: number, details: string, trace: string): void {
    const d = Buffer.from(details, "utf8");
    const t = Buffer.from(trace, "utf8");
    let size = 0;
    if (code !== 0) size += 1 + uvarintSize(code);
    if (d.length > 0) size += 1 + uvarintSize(d.length) + d.length;
    if (t.length > 0) size += 1 + uvarintSize(t.length) + t.length;
    const out = this.out;
    out.ensure(1 + uvarintSize(size) + size);
    out.byte(TAG_END);
    writeUvarint(out, size);
    if (code !== 0) {
      out.byte(TAG_END_CODE);
      writeUvarint(out, code);
    }
    for (const [tag, b] of [[TAG_END_DETAILS, d], [TAG_END_TRACE, t]] as const) {
      if (b.length === 0) continue;
      out.byte(tag);
      writeUvarint(out, b.length);
      out.bytes(b);
    }
  }

  /**
   * The frame so far, without a copy: a view of the writer's memory, valid until the writer is
   * reset or appended to (for a sender that copies it and says when: grpc-js serializes a
   * message before the write callback).
   */
  view(): Buffer {
    const b = this.out.buf;
    return Buffer.from(b.buffer, b.byteOffset + this.base, this.len);
  }

  /**
   * The frame as a gRPC message with its length prefix written in front, without a copy (a
   * writer made with `grpcPrefix`); valid until the writer is reset or appended to.
   */
  message(): PreFramedMessage {
    if (this.base !== GRPC_PREFIX_BYTES) throw new Error("SearchFrameWriter.message() needs a writer made with grpcPrefix");
    const b = this.out.buf;
    return new PreFramedMessage(Buffer.from(b.buffer, b.byteOffset, this.out.len));
  }

  /** Starts a new frame in the same memory. */
  reset(): void {
    this.out.len = this.base;
    this.blocks = 0;
  }
}

/**
 * Cursor over the SeriesBlocks of one SearchResponse frame: `while (r.next()) use(r.metricName,
 * r.data, …)`. The byte fields are views into the frame, valid as long as it is, cut when read
 * (a wide search's reader that keeps only positions — `nameStart`/`nameEnd`, `dataStart`/
 * `dataEnd`, offsets in the frame — builds no object per block); a field the block lacks has its
 * default (empty bytes, 0). Unknown fields are skipped; malformed frames throw BadDataError
 * naming the byte offset.
 */
export class SearchFrameReader {
  private readonly c: WireCursor;
  private frameEnd: number;
  /** The metric name's bytes in the frame: [nameStart, nameEnd) (equal when the block has none). */
  nameStart = 0;
  nameEnd = 0;
  encoding = 0;
  /** The block's wire form in the frame: [dataStart, dataEnd). */
  dataStart = 0;
  dataEnd = 0;
  rowsCount = 0;
  minT = 0;
  maxT = 0;
  /** The frame's `end` (SearchStream_v1: its search is over) in [endStart, endEnd), once `next()` passed it. */
  ended = false;
  private endStart = 0;
  private endEnd = 0;
  /** Bytes the frame's `end` field takes (tag and length included; 0 without one). */
  endBytes = 0;

  constructor(frame: Uint8Array = EMPTY) {
    this.c = new WireCursor(frame);
    this.frameEnd = frame.length;
  }

  reset(frame: Uint8Array): void {
    this.c.reset(frame);
    this.frameEnd = frame.length;
    this.ended = false;
    this.endBytes = 0;
  }

  /** The frame's `end`, decoded (after `next()` returned false with `ended` set). */
  end(): SearchEnd {
    return fromBinary(SearchEndSchema, this.c.buf.subarray(this.endStart, this.endEnd));
  }

  get metricName(): Uint8Array {
    return this.nameEnd > this.nameStart ? this.c.buf.subarray(this.nameStart, this.nameEnd) : EMPTY;
  }

  get data(): Uint8Array {
    return this.dataEnd > this.dataStart ? this.c.buf.subarray(this.dataStart, this.dataEnd) : EMPTY;
  }

  next(): boolean {
    const c = this.c;
    for (;;) {
      c.limit = this.frameEnd;
      if (c.pos >= this.frameEnd) return false;
      const at = c.pos;
      c.tag();
      if (c.fieldNo === 2) {
        c.expect(WIRE_LEN, "SearchResponse.end");
        const e = c.lenEnd();
        this.endStart = c.pos;
        this.endEnd = e;
        this.ended = true;
        this.endBytes += e - at;
        c.pos = e;
        continue;
      }
      if (c.fieldNo !== 1) {
        c.skip();
        continue;
      }
      c.expect(WIRE_LEN, "SearchResponse.blocks");
      const end = c.lenEnd();
      this.readBlock(end);
      return true;
    }
  }

  private readBlock(end: number): void {
    const c = this.c;
    this.nameStart = this.nameEnd = 0;
    this.encoding = 0;
    this.dataStart = this.dataEnd = 0;
    this.rowsCount = 0;
    this.minT = 0;
    this.maxT = 0;
    c.limit = end;
    while (c.pos < end) {
      switch (c.tag()) {
        case 1: {
          c.expect(WIRE_LEN, "SeriesBlock.metric_name");
          const e = c.lenEnd();
          this.nameStart = c.pos;
          this.nameEnd = e;
          c.pos = e;
          break;
        }
        case 2:
          c.expect(WIRE_VARINT, "SeriesBlock.encoding");
          this.encoding = c.uint32();
          break;
        case 3: {
          c.expect(WIRE_LEN, "SeriesBlock.data");
          const e = c.lenEnd();
          this.dataStart = c.pos;
          this.dataEnd = e;
          c.pos = e;
          break;
        }
        case 4:
          c.expect(WIRE_VARINT, "SeriesBlock.rows_count");
          this.rowsCount = c.uint32();
          break;
        case 5:
          c.expect(WIRE_VARINT, "SeriesBlock.min_timestamp_ms");
          this.minT = c.int64("SeriesBlock.min_timestamp_ms");
          break;
        case 6:
          c.expect(WIRE_VARINT, "SeriesBlock.max_timestamp_ms");
          this.maxT = c.int64("SeriesBlock.max_timestamp_ms");
          break;
        default:
          c.skip();
      }
    }
    if (c.pos !== end) throw protoError("SeriesBlock overruns its length", c.pos);
  }
}
