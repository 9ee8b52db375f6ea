import { close, closeSync, fdatasync, fsync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rm, writeSync, writevSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { BadDataError } from "@strata/core";
import { lz4Decompress } from "@strata/encoding";
import { WAL_LZ4_FLAG, WAL_MAGIC, WAL_MAGIC_V1, WAL_MAX_BATCH_BYTES, WAL_RECORD_HEADER, WAL_SEGMENT_SUFFIX } from "./constants.js";
import { fsyncDirAsync } from "./fsutil.js";

/**
 * Write-ahead log: numbered segments `wal/<16 hex digits>.wal`, each `STRWAL02` followed by
 * records `u32 LE length | u32 LE crc32(payload) | payload` (payload = one rows batch v1,
 * unchanged, or — bit 31 of the length word set — its lz4 block as the cluster RPC carried
 * it, so the node neither checksums nor writes the several times larger plain batch).
 * `STRWAL01` segments of older versions (plain payloads only) are still replayed. `append`
 * returns after write(2); fsync runs every `fsyncIntervalMs` (0 = on every append). Replay
 * stops at the first torn or corrupt record of a segment (an interrupted write that was never
 * acknowledged).
 */
export class Wal {
  private fd = -1;
  private seq = 0;
  private segBytes = 0;
  private dirty = false;
  private syncing = false;
  private timer: NodeJS.Timeout | undefined;
  bytesWritten = 0;
  /** Bytes in segments not removed yet (rows not yet in on-disk parts, roughly). */
  pendingBytes = 0;
  private readonly segSizes = new Map<number, number>();
  appends = 0;
  fsyncs = 0;
  private readonly hdr = Buffer.alloc(WAL_RECORD_HEADER);

  private constructor(
    readonly dir: string,
    private readonly fsyncIntervalMs: number,
    private readonly maxSegmentBytes: number,
  ) {}

  /** Opens the WAL directory; returns the WAL and the segment numbers that hold rows to replay. */
  static open(dir: string, fsyncIntervalMs: number, maxSegmentBytes: number): { wal: Wal; segments: number[] } {
    mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    const wal = new Wal(dir, fsyncIntervalMs, maxSegmentBytes);
    wal.seq = segments.length > 0 ? segments[segments.length - 1]! : 0;
    wal.rotate();
    if (fsyncIntervalMs > 0) {
      wal.timer = setInterval(() => wal.syncAsync(), fsyncIntervalMs);
      wal.timer.unref();
    }
    return { wal, segments };
  }

  /** Number of the segment appends go to now. */
  get currentSegment(): number {
    return this.seq;
  }

  /**
   * Starts a new segment; returns its number. Rows appended before live in lower numbers.
   * The fsyncs (the old segment's tail, the new file and the directory) run on the thread pool:
   * acknowledged rows only promise write(2), fsync follows within the interval, and the event
   * loop keeps ingesting meanwhile.
   */
  rotate(): number {
    if (this.fd >= 0) {
      const old = this.fd;
      if (this.dirty) {
        this.fsyncs++;
        fdatasync(old, () => close(old, ignore));
      } else {
        close(old, ignore);
      }
    }
    this.seq++;
    this.fd = openSync(join(this.dir, segmentName(this.seq)), "wx");
    writeAllSync(this.fd, WAL_MAGIC);
    fsync(this.fd, ignore);
    fsyncDirAsync(this.dir).catch(ignore);
    this.segBytes = WAL_MAGIC.length;
    this.dirty = false;
    return this.seq;
  }

  /**
   * Appends one rows batch; returns after write(2). `lz4`, when given, is the batch as an lz4
   * block (@strata/encoding lz4Compress layout) that decompresses to exactly `batch`: the record
   * then holds it instead.
   */
  append(batch: Uint8Array, lz4?: Uint8Array): void {
    if (this.segBytes >= this.maxSegmentBytes) this.rotate();
    const hdr = this.hdr;
    if (lz4 !== undefined && lz4.length < batch.length) {
      hdr.writeUInt32LE((lz4.length | WAL_LZ4_FLAG) >>> 0, 0);
      batch = lz4;
    } else {
      hdr.writeUInt32LE(batch.length, 0);
    }
    hdr.writeUInt32LE(crc32(batch), 4);
    // One writev(2) for header and payload (a short write finishes with plain writes).
    const n = writevSync(this.fd, [hdr, batch]);
    if (n < WAL_RECORD_HEADER) {
      writeAllSync(this.fd, hdr.subarray(n));
      writeAllSync(this.fd, batch);
    } else if (n < WAL_RECORD_HEADER + batch.length) {
      writeAllSync(this.fd, batch.subarray(n - WAL_RECORD_HEADER));
    }
    this.segBytes += WAL_RECORD_HEADER + batch.length;
    this.bytesWritten += WAL_RECORD_HEADER + batch.length;
    this.pendingBytes += WAL_RECORD_HEADER + batch.length;
    this.segSizes.set(this.seq, this.segBytes);
    this.appends++;
    if (this.fsyncIntervalMs <= 0) {
      fsyncSync(this.fd);
      this.fsyncs++;
    } else {
      this.dirty = true;
    }
  }

  private syncAsync(): void {
    if (!this.dirty || this.syncing || this.fd < 0) return;
    this.dirty = false;
    this.syncing = true;
    const fd = this.fd;
    fdatasync(fd, () => {
      this.syncing = false;
      this.fsyncs++;
    });
  }

  /**
   * Removes every segment numbered below `seq` (their rows are in durable parts). The unlinks
   * run on the thread pool (freeing a big file's pages takes a while); resolves when done.
   */
  removeSegmentsBefore(seq: number): Promise<void> {
    const gone: Promise<void>[] = [];
    for (const s of listSegments(this.dir)) {
      if (s < seq) gone.push(new Promise((resolve) => rm(join(this.dir, segmentName(s)), { force: true }, () => resolve())));
    }
    for (const [s, size] of this.segSizes) {
      if (s < seq) {
        this.pendingBytes -= size;
        this.segSizes.delete(s);
      }
    }
    return Promise.all(gone).then(ignore);
  }

  get segmentsCount(): number {
    return listSegments(this.dir).length;
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.fd >= 0) {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}

function ignore(): void {}

export function segmentName(seq: number): string {
  return seq.toString(16).padStart(16, "0") + WAL_SEGMENT_SUFFIX;
}

function listSegments(dir: string): number[] {
  const out: number[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(WAL_SEGMENT_SUFFIX)) continue;
    const n = parseInt(f.slice(0, -WAL_SEGMENT_SUFFIX.length), 16);
    if (Number.isSafeInteger(n)) out.push(n);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Reads the intact records of a segment (STRWAL02, or STRWAL01 of older versions); a torn or
 * corrupt tail ends it. A record whose checksum matches but whose lz4 payload does not
 * decompress throws BadDataError (that is damage, not an interrupted write).
 */
export function readSegment(dir: string, seq: number, onBatch: (batch: Uint8Array) => void): { records: number; torn: boolean } {
  const buf = readFileSync(join(dir, segmentName(seq)));
  let records = 0;
  const magic = buf.subarray(0, WAL_MAGIC.length);
  const v2 = buf.length >= WAL_MAGIC.length && magic.equals(WAL_MAGIC);
  if (!v2 && (buf.length < WAL_MAGIC_V1.length || !magic.equals(WAL_MAGIC_V1))) {
    return { records, torn: buf.length > 0 };
  }
  let pos = WAL_MAGIC.length;
  while (pos + WAL_RECORD_HEADER <= buf.length) {
    const word = buf.readUInt32LE(pos);
    const compressed = v2 && (word & WAL_LZ4_FLAG) !== 0;
    const len = v2 ? word & ~WAL_LZ4_FLAG : word;
    const sum = buf.readUInt32LE(pos + 4);
    const end = pos + WAL_RECORD_HEADER + len;
    if (end > buf.length) return { records, torn: true };
    const payload = buf.subarray(pos + WAL_RECORD_HEADER, end);
    if (crc32(payload) !== sum) return { records, torn: true };
    if (compressed) {
      let batch: Uint8Array;
      try {
        batch = lz4Decompress(payload, WAL_MAX_BATCH_BYTES);
      } catch (err) {
        throw new BadDataError(`WAL segment ${segmentName(seq)}: record at byte ${pos} does not decompress: ${String(err)}`, "STRATA_CORRUPT_DATA");
      }
      onBatch(batch);
    } else {
      onBatch(payload);
    }
    records++;
    pos = end;
  }
  return { records, torn: pos !== buf.length };
}

function writeAllSync(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}
