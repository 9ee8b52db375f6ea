import { close, closeSync, fsync, fsyncSync, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { BadDataError, type TwoGenCache } from "@strata/core";
import { ByteBuffer, compareBytes, dataView, getInt64, putInt64 } from "./bytes.js";
import { readBlockHeader, readBlockHeaderInto, ReusedBlockHeader, writeInlineHeaderAfterTSID, type BlockHeader } from "./block.js";
import { CodecBuffer, encodeTimestamps, encodeTimestampsFast, encodeValues, encodeValuesFast, deltasSafe, IntEncoding, putDeltaVarints, putZigzag, ValuesEncoding } from "./codec.js";
import {
  BLOCK_HEADER_BYTES,
  INDEX_BIN,
  MAX_BLOCK_SAMPLES,
  MAX_HEADERS_PER_INDEX_BLOCK,
  METADATA_JSON,
  METAINDEX_BIN,
  METAINDEX_ROW_BYTES,
  PART_FORMAT_INLINE,
  PART_FORMAT_VERSION,
  TIMESTAMPS_BIN,
  TSID_BYTES,
  VALUES_BIN,
} from "./constants.js";
import { fsyncDir, fsyncDirAsync, removeDir } from "./fsutil.js";
import type { ReadScratch } from "./search-read.js";

/** metadata.json of a part. */
export interface PartMeta {
  version: number;
  rows: number;
  blocks: number;
  minT: number;
  maxT: number;
  indexBlocks: number;
  timestampsBytes: number;
  valuesBytes: number;
  indexBytes: number;
  /** -dedup.minScrapeInterval the part was written with (its samples are deduplicated by it). */
  dedupIntervalMs: number;
  /** True when blocks use the cheap raw layouts (fresh parts); a merge re-encodes them. */
  fastLayouts?: boolean;
  /** True when index.bin holds its index blocks uncompressed (fresh parts); else deflate-raw. */
  rawIndex?: boolean;
}

/** Where a search's previous findBlocks in a part began: its index row, the first header there not below its TSID, that row's block. */
export class PartSearchHint {
  row = 0;
  pos = 0;
  block: Uint8Array | undefined = undefined;
  dv: DataView | undefined = undefined;
}

/** One row of the metaindex: where an index block is and what it covers. */
export interface MetaindexRow {
  readonly firstTSID: Uint8Array;
  readonly count: number;
  readonly minT: number;
  readonly maxT: number;
  readonly offset: number;
  readonly size: number;
}

/** Random-access bytes of one part file (in memory or on disk). */
interface ByteSource {
  /** `len` bytes at `off`: a view of memory the source owns, or of `scratch`'s read-ahead when given. */
  read(off: number, len: number, scratch?: ReadScratch): Uint8Array;
  close(): void;
}

class MemSource implements ByteSource {
  constructor(readonly buf: Uint8Array) {}
  read(off: number, len: number): Uint8Array {
    if (off + len > this.buf.length) throw new BadDataError(`in-memory part: read ${off}+${len} past ${this.buf.length}`, "STRATA_CORRUPT_DATA");
    return this.buf.subarray(off, off + len);
  }
  close(): void {}
}

class FileSource implements ByteSource {
  constructor(
    readonly fd: number,
    private readonly path: string,
  ) {}
  read(off: number, len: number, scratch?: ReadScratch): Uint8Array {
    if (scratch) return scratch.read(this.fd, this.path, off, len);
    const out = Buffer.allocUnsafe(len);
    const n = len === 0 ? 0 : readSync(this.fd, out, 0, len, off);
    if (n !== len) throw new BadDataError(`${this.path}: short read ${n} of ${len} at ${off}`, "STRATA_CORRUPT_DATA");
    return out;
  }
  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Sequential reader with a read-ahead window, for merges that scan a part front to back.
 * `locate` makes a byte range available in `buf` and returns where it starts there: an
 * in-memory part's own buffer, or one window buffer reused for the whole scan (no allocation
 * per block or per refill). What `buf` holds is valid until the next locate/read.
 */
/**
 * A merge reads up to mergeFanIn (16) parts at once, through two windows each (timestamps,
 * values): at 1 MiB a window a running merge held 32 MiB of read-ahead, the most of any owner
 * at a million-series node's high-water mark after the series cache. 128 KiB (~8 syscalls a
 * MiB instead of one) keeps a merge's at 4 MiB.
 */
export const MAX_WINDOW_BYTES = 128 << 10;

class WindowReader {
  buf: Uint8Array;
  private winOff = 0;
  private winLen = 0;
  private readonly fd: number | undefined;
  private readonly windowBytes: number;
  constructor(src: ByteSource, fileBytes: number) {
    // No bigger than the file: most merges read fresh parts of a few KiB, and a MiB window per
    // file per source part made every merge allocate (and free) MiBs for nothing.
    this.windowBytes = Math.max(1, Math.min(MAX_WINDOW_BYTES, fileBytes));
    if (src instanceof FileSource) {
      this.fd = src.fd;
      this.buf = new Uint8Array(0);
    } else {
      this.fd = undefined;
      this.buf = (src as MemSource).buf;
      this.winLen = this.buf.length;
    }
  }

  /** Makes bytes [off, off + len) available in `buf`; returns their position there. */
  locate(off: number, len: number): number {
    if (off >= this.winOff && off + len <= this.winOff + this.winLen) return off - this.winOff;
    if (this.fd === undefined) throw new BadDataError(`in-memory part: read ${off}+${len} past ${this.winLen}`, "STRATA_CORRUPT_DATA");
    if (this.buf.length < len || this.buf.length === 0) this.buf = Buffer.allocUnsafe(Math.max(len, this.windowBytes));
    const n = readSync(this.fd, this.buf, 0, this.buf.length, off);
    if (n < len) throw new BadDataError(`part file: short read ${n} of ${len} at ${off}`, "STRATA_CORRUPT_DATA");
    this.winOff = off;
    this.winLen = n;
    return 0;
  }

  /** Bytes [off, off + len) as a view, valid until the next locate/read. */
  read(off: number, len: number): Uint8Array {
    const p = this.locate(off, len);
    return this.buf.subarray(p, p + len);
  }

  /** Bytes of the window buffer this reader allocated (an in-memory part's buffer is not its own). */
  get ownBytes(): number {
    return this.fd === undefined ? 0 : this.buf.length;
  }
}

let nextUid = 1;

export type IndexBlockCache = TwoGenCache<number, Uint8Array>;

/**
 * An immutable part: blocks sorted by (TSID, minT). Refcounted: the partition holds one
 * reference while the part is listed, every search/merge holds one while it reads. When the last
 * reference goes, files are closed (and the directory removed if the part was replaced).
 */
export class Part {
  readonly uid = nextUid++;
  private refs = 1;
  /** Set when the part was replaced by a merge or dropped: remove the directory on last release. */
  removeOnFree = false;

  private constructor(
    readonly name: string,
    /** Directory of an on-disk part; undefined for an in-memory part. */
    readonly dir: string | undefined,
    readonly meta: PartMeta,
    readonly metaindex: readonly MetaindexRow[],
    private readonly tsSrc: ByteSource,
    private readonly valSrc: ByteSource,
    private readonly indexSrc: ByteSource,
    private readonly cache: IndexBlockCache,
    /** In-memory parts keep index blocks uncompressed (they never reach the disk as such). */
    private readonly rawIndex = false,
  ) {}

  get inMemory(): boolean {
    return this.dir === undefined;
  }

  get sizeBytes(): number {
    return this.meta.timestampsBytes + this.meta.valuesBytes + this.meta.indexBytes + this.metaindex.length * METAINDEX_ROW_BYTES;
  }

  static fromMemory(name: string, w: WrittenPart, cache: IndexBlockCache): Part {
    if (w.mem === undefined) throw new Error("fromMemory: part was written to disk");
    return new Part(
      name,
      undefined,
      w.meta,
      parseMetaindex(w.mem.metaindex),
      new MemSource(w.mem.timestamps),
      new MemSource(w.mem.values),
      new MemSource(w.mem.index),
      cache,
      w.mem.rawIndex,
    );
  }

  /** Opens an on-disk part; throws BadDataError when a file is missing or malformed. */
  static open(dir: string, name: string, cache: IndexBlockCache): Part {
    let meta: PartMeta;
    let metaindex: MetaindexRow[];
    try {
      meta = JSON.parse(readFileSync(join(dir, METADATA_JSON), "utf8")) as PartMeta;
      metaindex = parseMetaindex(readFileSync(join(dir, METAINDEX_BIN)));
    } catch (err) {
      throw new BadDataError(`part ${dir}: cannot read metadata: ${String(err)}`, "STRATA_CORRUPT_DATA", { cause: err });
    }
    if (meta.version !== PART_FORMAT_VERSION && meta.version !== PART_FORMAT_INLINE) {
      throw new BadDataError(`part ${dir}: unsupported format version ${meta.version}`, "STRATA_CORRUPT_DATA");
    }
    const fds: number[] = [];
    try {
      for (const f of [TIMESTAMPS_BIN, VALUES_BIN, INDEX_BIN]) fds.push(openSync(join(dir, f), "r"));
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      throw new BadDataError(`part ${dir}: cannot open files: ${String(err)}`, "STRATA_CORRUPT_DATA", { cause: err });
    }
    return new Part(
      name,
      dir,
      meta,
      metaindex,
      new FileSource(fds[0]!, join(dir, TIMESTAMPS_BIN)),
      new FileSource(fds[1]!, join(dir, VALUES_BIN)),
      new FileSource(fds[2]!, join(dir, INDEX_BIN)),
      cache,
    );
  }

  acquire(): void {
    if (this.refs <= 0) throw new Error(`part ${this.name}: acquire after free`);
    this.refs++;
  }

  release(): void {
    if (--this.refs > 0) return;
    this.tsSrc.close();
    this.valSrc.close();
    this.indexSrc.close();
    // Its cached index blocks can never be read again: without this, every part a flush or
    // merge replaced kept its blocks in the cache until rotated out, filling it to the cap.
    if (!this.rawIndex) for (let i = 0; i < this.metaindex.length; i++) this.cache.delete(this.cacheKey(i));
    if (this.removeOnFree && this.dir !== undefined) removeDir(this.dir);
  }

  private cacheKey(i: number): number {
    return this.uid * 1_000_000 + i;
  }

  /**
   * Decompressed block headers of index block i, cached for on-disk parts when `keep` (searches).
   * A merge reads each block once (keep = false): caching those would only evict what searches use.
   */
  indexBlock(i: number, keep = true): Uint8Array {
    const row = this.metaindex[i]!;
    if (this.rawIndex) {
      const headers = this.indexSrc.read(row.offset, row.size);
      if (headers.length !== row.count * BLOCK_HEADER_BYTES) {
        throw new BadDataError(`part ${this.name}: index block ${i} has ${headers.length} bytes, want ${row.count * BLOCK_HEADER_BYTES}`, "STRATA_CORRUPT_DATA");
      }
      return headers;
    }
    const key = this.cacheKey(i);
    const hit = keep ? this.cache.get(key) : this.cache.peek(key);
    if (hit !== undefined) return hit;
    const raw = this.indexSrc.read(row.offset, row.size);
    let headers: Uint8Array = raw;
    if (this.meta.rawIndex !== true) {
      try {
        headers = inflateRawSync(raw);
      } catch (err) {
        throw new BadDataError(`part ${this.name}: corrupt index block ${i}`, "STRATA_CORRUPT_DATA", { cause: err });
      }
    }
    if (headers.length !== row.count * BLOCK_HEADER_BYTES) {
      throw new BadDataError(`part ${this.name}: index block ${i} has ${headers.length} bytes, want ${row.count * BLOCK_HEADER_BYTES}`, "STRATA_CORRUPT_DATA");
    }
    if (keep) this.cache.set(key, headers);
    return headers;
  }

  /**
   * Block headers of one series overlapping [minT, maxT], in time order. With `hint` (one per
   * part and search, TSIDs asked in ascending order) the lookup starts where the previous one
   * ended: the index rows and headers before it hold smaller TSIDs, so the rows and headers
   * found are the same, fewer TSIDs are compared, and the index block of the previous lookup
   * and its DataView are reused.
   */
  findBlocks(tsid: Uint8Array, minT: number, maxT: number, out: BlockHeader[], hint?: PartSearchHint): void {
    const mi = this.metaindex;
    // Last row whose first TSID is < tsid: the series may start inside it.
    let lo = hint === undefined ? 0 : hint.row;
    let hi = mi.length;
    // The previous lookup's row or the next one, usually: then the first row not below tsid is
    // one of the two rows after it (or the end), two comparisons instead of a binary search.
    if (hint !== undefined && lo + 1 < hi && compareBytes(mi[lo + 1]!.firstTSID, tsid) >= 0) hi = lo + 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(mi[mid]!.firstTSID, tsid) < 0) lo = mid + 1;
      else hi = mid;
    }
    const start = Math.max(0, lo - 1);
    let from = 0;
    if (hint !== undefined) {
      if (hint.row === start) from = hint.pos;
      else {
        hint.row = start;
        hint.pos = 0;
        hint.block = undefined;
      }
    }
    for (let r = start; r < mi.length; r++) {
      const row = mi[r]!;
      if (compareBytes(row.firstTSID, tsid) > 0) break;
      if (row.maxT < minT || row.minT > maxT) continue;
      let hb: Uint8Array;
      let hdv: DataView;
      if (r === start && hint?.block !== undefined) {
        hb = hint.block;
        hdv = hint.dv!;
      } else {
        hb = this.indexBlock(r);
        hdv = dataView(hb);
        if (r === start && hint !== undefined) {
          hint.block = hb;
          hint.dv = hdv;
        }
      }
      // First header with TSID >= tsid: a few steps forward from the previous lookup's, else by halves.
      let a = r === start ? from : 0;
      let b = row.count;
      for (let probe = 0; probe < 4 && a < b && compareTsidAt(hb, a * BLOCK_HEADER_BYTES, tsid) < 0; probe++) a++;
      if (a < b && compareTsidAt(hb, a * BLOCK_HEADER_BYTES, tsid) < 0) {
        while (a < b) {
          const mid = (a + b) >>> 1;
          if (compareTsidAt(hb, mid * BLOCK_HEADER_BYTES, tsid) < 0) a = mid + 1;
          else b = mid;
        }
      }
      if (r === start && hint !== undefined) hint.pos = a;
      for (let k = a; k < row.count; k++) {
        if (compareTsidAt(hb, k * BLOCK_HEADER_BYTES, tsid) !== 0) break;
        const h = readBlockHeader(hb, k * BLOCK_HEADER_BYTES, hdv);
        if (h.maxT >= minT && h.minT <= maxT) out.push(h);
      }
    }
  }

  readTimestamps(h: BlockHeader, scratch?: ReadScratch): Uint8Array {
    return this.tsSrc.read(h.tsOffset, h.tsSize, scratch);
  }

  readValues(h: BlockHeader, scratch?: ReadScratch): Uint8Array {
    return this.valSrc.read(h.valOffset, h.valSize, scratch);
  }

  /** A cursor over every block in order, reading payloads sequentially (for merges). */
  cursor(): PartCursor {
    return new PartCursor(this, this.tsSrc, this.valSrc);
  }
}

function compareTsidAt(buf: Uint8Array, pos: number, tsid: Uint8Array): number {
  for (let i = 0; i < TSID_BYTES; i++) {
    const d = buf[pos + i]! - tsid[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Sequential block cursor: `while (c.next()) use(c.header, c.timestamps(), c.values())`.
 * `header` is one object overwritten by each next() (merges read millions of blocks): copy
 * what must outlive the step. The payload views are valid until the next call of the same
 * method; `locateTimestamps`/`locateValues` give the payload as a position in `tsBuf`/`valBuf`
 * instead (no view created).
 */
export class PartCursor {
  private row = -1;
  private k = 0;
  private headers: Uint8Array = new Uint8Array(0);
  private hdv: DataView = dataView(this.headers);
  private count = 0;
  private readonly reused = new ReusedBlockHeader();
  header: ReusedBlockHeader | undefined;
  /** The current header's 72 bytes are rawHeaders[rawPos, rawPos + 72), valid until next(). */
  rawPos = 0;
  private readonly tsR: WindowReader;
  private readonly valR: WindowReader;

  constructor(
    readonly part: Part,
    tsSrc: ByteSource,
    valSrc: ByteSource,
  ) {
    this.tsR = new WindowReader(tsSrc, part.meta.timestampsBytes);
    this.valR = new WindowReader(valSrc, part.meta.valuesBytes);
  }

  next(): boolean {
    while (this.k >= this.count) {
      this.row++;
      if (this.row >= this.part.metaindex.length) {
        this.header = undefined;
        return false;
      }
      this.headers = this.part.indexBlock(this.row, false);
      this.hdv = dataView(this.headers);
      this.count = this.part.metaindex[this.row]!.count;
      this.k = 0;
    }
    this.rawPos = this.k * BLOCK_HEADER_BYTES;
    readBlockHeaderInto(this.headers, this.rawPos, this.hdv, this.reused);
    this.header = this.reused;
    this.k++;
    return true;
  }

  get rawHeaders(): Uint8Array {
    return this.headers;
  }

  /** A DataView over rawHeaders. */
  get rawView(): DataView {
    return this.hdv;
  }

  timestamps(): Uint8Array {
    const h = this.header!;
    return this.tsR.read(h.tsOffset, h.tsSize);
  }

  values(): Uint8Array {
    const h = this.header!;
    return this.valR.read(h.valOffset, h.valSize);
  }

  /** Loads the current block's timestamps; they are tsBuf[p, p + header.tsSize) for the returned p. */
  locateTimestamps(): number {
    const h = this.header!;
    return this.tsR.locate(h.tsOffset, h.tsSize);
  }

  get tsBuf(): Uint8Array {
    return this.tsR.buf;
  }

  /** Loads the current block's values; they are valBuf[p, p + header.valSize) for the returned p. */
  locateValues(): number {
    const h = this.header!;
    return this.valR.locate(h.valOffset, h.valSize);
  }

  get valBuf(): Uint8Array {
    return this.valR.buf;
  }

  /** Bytes of the read-ahead windows this cursor holds (0 for an in-memory part: it reads in place). */
  get readAheadBytes(): number {
    return this.tsR.ownBytes + this.valR.ownBytes;
  }
}

function parseMetaindex(buf: Uint8Array): MetaindexRow[] {
  if (buf.length % METAINDEX_ROW_BYTES !== 0) {
    throw new BadDataError(`metaindex of ${buf.length} bytes is not a multiple of ${METAINDEX_ROW_BYTES}`, "STRATA_CORRUPT_DATA");
  }
  const dv = dataView(buf);
  const rows: MetaindexRow[] = [];
  for (let pos = 0; pos < buf.length; pos += METAINDEX_ROW_BYTES) {
    rows.push({
      firstTSID: buf.slice(pos, pos + TSID_BYTES),
      count: dv.getUint32(pos + 24, true),
      minT: getInt64(dv, pos + 28),
      maxT: getInt64(dv, pos + 36),
      offset: getInt64(dv, pos + 44),
      size: dv.getUint32(pos + 52, true),
    });
  }
  return rows;
}

// ---- writing ------------------------------------------------------------------------------

interface Sink {
  readonly offset: number;
  write(b: Uint8Array): void;
  /** write(b.subarray(from, from + len)) without creating the view. */
  writeRange(b: Uint8Array, from: number, len: number): void;
  finish(): void;
  /** finish with the fsync on the thread pool. */
  finishAsync(): Promise<void>;
}

class MemSink implements Sink {
  readonly bb: ByteBuffer;
  private dv: DataView;
  constructor(capacity = 64 * 1024) {
    this.bb = new ByteBuffer(Math.max(64, capacity));
    this.dv = dataView(this.bb.buf);
  }
  get offset(): number {
    return this.bb.len;
  }
  /** Makes room for `extra` bytes at bb.len; returns a DataView over the whole buffer. */
  reserve(extra: number): DataView {
    this.bb.ensure(extra);
    if (this.dv.buffer !== this.bb.buf.buffer) this.dv = dataView(this.bb.buf);
    this.bb.len += extra;
    return this.dv;
  }
  write(b: Uint8Array): void {
    this.bb.bytes(b);
  }
  writeRange(b: Uint8Array, from: number, len: number): void {
    this.bb.ensure(len);
    copyRange(b, from, len, this.bb.buf, this.bb.len);
    this.bb.len += len;
  }
  finish(): void {}
  finishAsync(): Promise<void> {
    return Promise.resolve();
  }
}

/** FileSink's buffer starts small and doubles up to this, then is written out when full. */
const MAX_SINK_BUFFER_BYTES = 1 << 20;

class FileSink implements Sink {
  private readonly fd: number;
  // Small parts (a disk flush every few seconds) stay in a small buffer: three MiB buffers per
  // part written were allocated and freed every flush.
  private readonly bb = new ByteBuffer(64 * 1024);
  private flushed = 0;
  constructor(path: string) {
    this.fd = openSync(path, "wx");
  }
  get offset(): number {
    return this.flushed + this.bb.len;
  }
  write(b: Uint8Array): void {
    if (this.bb.len + b.length > this.bb.buf.length) this.makeRoom(b.length);
    if (b.length > this.bb.buf.length) {
      writeAll(this.fd, b);
      this.flushed += b.length;
      return;
    }
    this.bb.bytes(b);
  }
  writeRange(b: Uint8Array, from: number, len: number): void {
    if (this.bb.len + len > this.bb.buf.length) this.makeRoom(len);
    if (len > this.bb.buf.length) {
      this.write(b.subarray(from, from + len));
      return;
    }
    copyRange(b, from, len, this.bb.buf, this.bb.len);
    this.bb.len += len;
  }
  /** Grows the buffer for `n` more bytes while under MAX_SINK_BUFFER_BYTES, else writes it out. */
  private makeRoom(n: number): void {
    if (this.bb.len + n <= MAX_SINK_BUFFER_BYTES) this.bb.ensure(n);
    else this.flushBuf();
  }
  private flushBuf(): void {
    if (this.bb.len === 0) return;
    writeAll(this.fd, this.bb.view());
    this.flushed += this.bb.len;
    this.bb.reset();
  }
  private closed = false;
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flushBuf();
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
  }
  finishAsync(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    try {
      this.flushBuf();
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
    return fsyncCloseAsync(this.fd);
  }
}

/** fsync then close on the thread pool; rejects when the fsync fails (the fd is closed anyway). */
function fsyncCloseAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fsync(fd, (err) => {
      close(fd, () => (err === null ? resolve() : reject(err)));
    });
  });
}

/** dst[at..] = src[from..from + len): a loop for the small blocks of fresh parts (a view would cost more). */
function copyRange(src: Uint8Array, from: number, len: number, dst: Uint8Array, at: number): void {
  if (len > 256) {
    dst.set(src.subarray(from, from + len), at);
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i]!;
}

function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

export interface WrittenPart {
  meta: PartMeta;
  /** The files' bytes for an in-memory part (index blocks uncompressed when rawIndex). */
  mem?: { timestamps: Uint8Array; values: Uint8Array; index: Uint8Array; metaindex: Uint8Array; rawIndex: boolean };
}

/**
 * Writes a part block by block (blocks must come in (TSID, minT) order). To memory when `dir`
 * is undefined, else into `dir` (which must exist and be empty); `finish` fsyncs every file.
 */
export class PartWriter {
  private readonly ts: Sink;
  private readonly vals: Sink;
  private readonly index: Sink;
  private readonly metaindex = new ByteBuffer(4096);
  private readonly headers = new Uint8Array(MAX_HEADERS_PER_INDEX_BLOCK * BLOCK_HEADER_BYTES);
  private readonly hdv = dataView(this.headers);
  private nHeaders = 0;
  private ibMinT = Infinity;
  private ibMaxT = -Infinity;
  private readonly encTs = new CodecBuffer(16 * 1024);
  private readonly encVals = new CodecBuffer(16 * 1024);
  private rows = 0;
  private blocks = 0;
  /** Inline one-sample blocks written (the part's format version says whether there are any). */
  private inlineBlocks = 0;
  private indexBlocks = 0;
  private minT = Infinity;
  private maxT = -Infinity;

  constructor(
    private readonly dir: string | undefined,
    private readonly dedupIntervalMs: number,
    /** Full per-block codecs; false = cheap raw layouts for short-lived in-memory parts. */
    readonly compress = true,
    /** In-memory parts: expected rows and blocks, to size the buffers once (no regrowth copies). */
    sizeHint?: { rows: number; blocks: number },
  ) {
    if (dir === undefined) {
      const rows = sizeHint?.rows ?? 0;
      const blocks = sizeHint?.blocks ?? 0;
      // DeltaVarint timestamps: ~2 bytes per 10 s step, up to 9 for a block's first one.
      this.ts = new MemSink(sizeHint === undefined ? undefined : 3 * rows + 8 * blocks);
      this.vals = new MemSink(sizeHint === undefined ? undefined : 8 * rows);
      this.index = new MemSink(sizeHint === undefined ? undefined : BLOCK_HEADER_BYTES * blocks + 64);
    } else {
      this.ts = new FileSink(join(dir, TIMESTAMPS_BIN));
      this.vals = new FileSink(join(dir, VALUES_BIN));
      this.index = new FileSink(join(dir, INDEX_BIN));
    }
  }

  get rowsWritten(): number {
    return this.rows;
  }

  /** Index blocks stored uncompressed: in memory, and parts with the cheap layouts. */
  private get rawIndex(): boolean {
    return this.dir === undefined || !this.compress;
  }

  /**
   * Encodes and appends samples ts/vals[0..n) of one series (sorted, unique); splits at 8192.
   * A single sample in the cheap layouts becomes an inline block.
   */
  writeSamples(tsid: Uint8Array, ts: Float64Array, vals: Float64Array, n: number): void {
    if (n === 1 && !this.compress) {
      this.addInline(tsid, ts[0]!, vals[0]!);
      return;
    }
    for (let off = 0; off < n; off += MAX_BLOCK_SAMPLES) {
      const m = Math.min(MAX_BLOCK_SAMPLES, n - off);
      const t = off === 0 ? ts : ts.subarray(off);
      const v = off === 0 ? vals : vals.subarray(off);
      this.encTs.reset();
      this.encVals.reset();
      const tsTag = this.compress ? encodeTimestamps(this.encTs, t, m) : encodeTimestampsFast(this.encTs, t, m);
      const valTag = this.compress ? encodeValues(this.encVals, v, m) : encodeValuesFast(this.encVals, v, m);
      const tsOffset = this.ts.offset;
      const valOffset = this.vals.offset;
      const tsSize = this.encTs.len;
      const valSize = this.encVals.len;
      this.ts.writeRange(this.encTs.buf, 0, tsSize);
      this.vals.writeRange(this.encVals.buf, 0, valSize);
      this.addHeader(tsid, t[0]!, t[m - 1]!, tsOffset, valOffset, m, tsSize, valSize, tsTag, valTag);
    }
  }

  /**
   * Appends the cursor's current block unchanged (merges: the payload is copied from the
   * cursor's buffers, nothing is created per block).
   */
  copyBlock(tsid: Uint8Array, c: PartCursor): void {
    const h = c.header!;
    if (h.inline) {
      this.copyInline(c);
      return;
    }
    // locate first: each may replace its buffer.
    const tp = c.locateTimestamps();
    const vp = c.locateValues();
    const tsOffset = this.ts.offset;
    const valOffset = this.vals.offset;
    this.ts.writeRange(c.tsBuf, tp, h.tsSize);
    this.vals.writeRange(c.valBuf, vp, h.valSize);
    this.addHeader(tsid, h.minT, h.maxT, tsOffset, valOffset, h.count, h.tsSize, h.valSize, h.tsTag, h.valTag);
  }

  /**
   * In-memory parts only: appends samples ts/vals[a..b) of one series (sorted, unique; TSID
   * given as 6 u32 words at tsidWords[tsidAt..]) in the
   * cheap layouts — DeltaVarint timestamps, RawFloat values — straight into the part's buffers
   * (no subarray, no scratch copy). Splits at 8192 samples.
   */
  writeSamplesFast(tsidWords: Uint32Array, tsidAt: number, ts: Float64Array, vals: Float64Array, a: number, b: number): void {
    if (!(this.ts instanceof MemSink) || !(this.vals instanceof MemSink)) throw new Error("writeSamplesFast: in-memory parts only");
    if (b - a === 1) {
      // One sample (every series of a drain at high cardinality): the header holds it.
      const pos = this.nHeaders * BLOCK_HEADER_BYTES;
      const dv = this.hdv;
      for (let w = 0; w < 6; w++) dv.setUint32(pos + 4 * w, tsidWords[tsidAt + w]!);
      this.inlineAfterTSID(pos, ts[a]!, vals[a]!);
      return;
    }
    const tsBB = this.ts.bb;
    const valSink = this.vals;
    for (let off = a; off < b; off += MAX_BLOCK_SAMPLES) {
      const end = Math.min(b, off + MAX_BLOCK_SAMPLES);
      const m = end - off;
      const tsOffset = tsBB.len;
      tsBB.ensure(10 + 9 * m);
      const tb = tsBB.buf;
      let p = tsOffset;
      let tsTag: number = IntEncoding.DeltaVarint;
      if (deltasSafe(ts, off, end)) p = putDeltaVarints(tb, tsOffset, ts, off, end);
      else {
        tsTag = IntEncoding.PlainVarint;
        for (let i = off; i < end; i++) p = putZigzag(tb, p, ts[i]!);
      }
      tsBB.len = p;
      const valOffset = valSink.bb.len;
      const vdv = valSink.reserve(8 * m);
      for (let i = 0; i < m; i++) vdv.setFloat64(valOffset + 8 * i, vals[off + i]!, true);
      // The TSID as 6 big-endian u32 words.
      const pos = this.nHeaders * BLOCK_HEADER_BYTES;
      const dv = this.hdv;
      for (let w = 0; w < 6; w++) dv.setUint32(pos + 4 * w, tsidWords[tsidAt + w]!);
      this.addHeaderAfterTSID(ts[off]!, ts[end - 1]!, tsOffset, valOffset, m, p - tsOffset, 8 * m, tsTag, ValuesEncoding.RawFloat);
    }
  }

  /**
   * Appends a one-sample block held in its header (docs/format/storage.md §inline one-sample
   * blocks): parts with the cheap layouts only (a merge into full codecs encodes the sample).
   */
  private addInline(tsid: Uint8Array, t: number, v: number): void {
    const pos = this.nHeaders * BLOCK_HEADER_BYTES;
    const hb = this.headers;
    for (let i = 0; i < TSID_BYTES; i++) hb[pos + i] = tsid[i]!;
    this.inlineAfterTSID(pos, t, v);
  }

  /** Appends the cursor's current inline block: its header as it is (it holds no offsets). */
  private copyInline(c: PartCursor): void {
    const pos = this.nHeaders * BLOCK_HEADER_BYTES;
    const from = c.rawPos;
    const src = c.rawView;
    const dst = this.hdv;
    for (let i = 0; i < BLOCK_HEADER_BYTES; i += 4) dst.setUint32(pos + i, src.getUint32(from + i));
    this.inlineAdded(c.header!.minT);
  }

  private inlineAfterTSID(pos: number, t: number, v: number): void {
    writeInlineHeaderAfterTSID(this.headers, this.hdv, pos, t, v);
    this.inlineAdded(t);
  }

  private inlineAdded(t: number): void {
    this.inlineBlocks++;
    this.nHeaders++;
    if (t < this.ibMinT) this.ibMinT = t;
    if (t > this.ibMaxT) this.ibMaxT = t;
    if (t < this.minT) this.minT = t;
    if (t > this.maxT) this.maxT = t;
    this.rows++;
    this.blocks++;
    if (this.nHeaders === MAX_HEADERS_PER_INDEX_BLOCK) this.flushIndexBlock();
  }

  private addHeader(
    tsid: Uint8Array,
    minT: number,
    maxT: number,
    tsOffset: number,
    valOffset: number,
    count: number,
    tsSize: number,
    valSize: number,
    tsTag: number,
    valTag: number,
  ): void {
    const pos = this.nHeaders * BLOCK_HEADER_BYTES;
    const hb = this.headers;
    for (let i = 0; i < TSID_BYTES; i++) hb[pos + i] = tsid[i]!;
    this.addHeaderAfterTSID(minT, maxT, tsOffset, valOffset, count, tsSize, valSize, tsTag, valTag);
  }

  /** Fills in the header whose TSID is already at headers[nHeaders * 72]. */
  private addHeaderAfterTSID(
    minT: number,
    maxT: number,
    tsOffset: number,
    valOffset: number,
    count: number,
    tsSize: number,
    valSize: number,
    tsTag: number,
    valTag: number,
  ): void {
    const pos = this.nHeaders * BLOCK_HEADER_BYTES;
    const hb = this.headers;
    const dv = this.hdv;
    putInt64(dv, pos + 24, minT);
    putInt64(dv, pos + 32, maxT);
    putInt64(dv, pos + 40, tsOffset);
    putInt64(dv, pos + 48, valOffset);
    dv.setUint32(pos + 56, count, true);
    dv.setUint32(pos + 60, tsSize, true);
    dv.setUint32(pos + 64, valSize, true);
    hb[pos + 68] = tsTag;
    hb[pos + 69] = valTag;
    hb[pos + 70] = 0;
    hb[pos + 71] = 0;
    this.nHeaders++;
    if (minT < this.ibMinT) this.ibMinT = minT;
    if (maxT > this.ibMaxT) this.ibMaxT = maxT;
    if (minT < this.minT) this.minT = minT;
    if (maxT > this.maxT) this.maxT = maxT;
    this.rows += count;
    this.blocks++;
    if (this.nHeaders === MAX_HEADERS_PER_INDEX_BLOCK) this.flushIndexBlock();
  }

  private flushIndexBlock(): void {
    if (this.nHeaders === 0) return;
    const raw = this.headers.subarray(0, this.nHeaders * BLOCK_HEADER_BYTES);
    // Parts with the cheap layouts (in memory, and disk flushes that the next merge rewrites)
    // keep index blocks raw: deflating one-block-per-series headers cost more than the rest of
    // building the part (at a million series, 4 % of a node for a disk flush).
    const packed = this.rawIndex ? raw : deflateRawSync(raw, { level: 1 });
    const row = new Uint8Array(METAINDEX_ROW_BYTES);
    const dv = dataView(row);
    row.set(this.headers.subarray(0, TSID_BYTES), 0);
    dv.setUint32(24, this.nHeaders, true);
    putInt64(dv, 28, this.ibMinT);
    putInt64(dv, 36, this.ibMaxT);
    putInt64(dv, 44, this.index.offset);
    dv.setUint32(52, packed.length, true);
    this.index.write(packed);
    this.metaindex.bytes(row);
    this.indexBlocks++;
    this.nHeaders = 0;
    this.ibMinT = Infinity;
    this.ibMaxT = -Infinity;
  }

  finish(): WrittenPart {
    const meta = this.finishMeta();
    this.ts.finish();
    this.vals.finish();
    this.index.finish();
    if (this.dir === undefined) return this.memPart(meta);
    const mi = openSync(join(this.dir, METAINDEX_BIN), "wx");
    writeAll(mi, this.metaindex.view());
    fsyncSync(mi);
    closeSync(mi);
    const md = openSync(join(this.dir, METADATA_JSON), "wx");
    writeAll(md, Buffer.from(JSON.stringify(meta, null, 1)));
    fsyncSync(md);
    closeSync(md);
    fsyncDir(this.dir);
    return { meta };
  }

  /**
   * finish for on-disk parts with every fsync on the thread pool (the event loop keeps
   * ingesting while a flushed or merged part becomes durable). Resolves once all files and the
   * directory are fsynced.
   */
  async finishAsync(): Promise<WrittenPart> {
    if (this.dir === undefined) return this.finish();
    const meta = this.finishMeta();
    const mi = openSync(join(this.dir, METAINDEX_BIN), "wx");
    writeAll(mi, this.metaindex.view());
    const md = openSync(join(this.dir, METADATA_JSON), "wx");
    writeAll(md, Buffer.from(JSON.stringify(meta, null, 1)));
    await Promise.all([this.ts.finishAsync(), this.vals.finishAsync(), this.index.finishAsync(), fsyncCloseAsync(mi), fsyncCloseAsync(md)]);
    await fsyncDirAsync(this.dir);
    return { meta };
  }

  private finishMeta(): PartMeta {
    this.flushIndexBlock();
    return {
      version: this.inlineBlocks > 0 ? PART_FORMAT_INLINE : PART_FORMAT_VERSION,
      rows: this.rows,
      blocks: this.blocks,
      minT: this.blocks === 0 ? 0 : this.minT,
      maxT: this.blocks === 0 ? 0 : this.maxT,
      indexBlocks: this.indexBlocks,
      timestampsBytes: this.ts.offset,
      valuesBytes: this.vals.offset,
      indexBytes: this.index.offset,
      dedupIntervalMs: this.dedupIntervalMs,
      fastLayouts: !this.compress,
      ...(this.rawIndex ? { rawIndex: true } : {}),
    };
  }

  private memPart(meta: PartMeta): WrittenPart {
    return {
      meta,
      mem: {
        timestamps: (this.ts as MemSink).bb.view(),
        values: (this.vals as MemSink).bb.view(),
        index: (this.index as MemSink).bb.view(),
        metaindex: this.metaindex.view().slice(),
        rawIndex: true,
      },
    };
  }

  /** Abandons a disk write (the caller removes the directory). */
  abort(): void {
    for (const s of [this.ts, this.vals, this.index]) {
      try {
        s.finish();
      } catch {
        // already closed or failed: the directory is removed anyway
      }
    }
  }
}
