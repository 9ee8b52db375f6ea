import { close, closeSync, fdatasync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, readdirSync, rm, rmSync, writeSync, writevSync } from "node:fs";
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
 * returns after write(2); fsync runs every `fsyncIntervalMs` (0 = on every append).
 *
 * A failed append (ENOSPC, EIO) leaves the WAL as it was before it: the segment is truncated
 * back to its last whole record, or, when even that fails, sealed (never written again) and
 * the next append starts a new segment. So a segment never holds a damaged record in front of
 * acknowledged ones. Segments are opened lazily by the first append after `seal()`, so sealing
 * (the disk flush boundary) never needs disk space. Replay: see `readSegment`.
 */
export class Wal {
  /** The open segment's descriptor; -1 when the next append opens segment seq + 1. */
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
  /** Appends that failed (nothing of them stays in the WAL). */
  appendErrors = 0;
  /** Segments sealed after a failed append could not be truncated back. */
  sealedAfterError = 0;
  private readonly hdr = Buffer.alloc(WAL_RECORD_HEADER);

  private constructor(
    readonly dir: string,
    private readonly fsyncIntervalMs: number,
    private readonly maxSegmentBytes: number,
  ) {}

  /**
   * Opens the WAL directory; returns the WAL and the segment numbers that hold rows to replay.
   * Appends go to a new segment after them (created by the first append: a full disk does not
   * keep the node from starting).
   */
  static open(dir: string, fsyncIntervalMs: number, maxSegmentBytes: number): { wal: Wal; segments: number[] } {
    mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    const wal = new Wal(dir, fsyncIntervalMs, maxSegmentBytes);
    wal.seq = segments.length > 0 ? segments[segments.length - 1]! : 0;
    if (fsyncIntervalMs > 0) {
      wal.timer = setInterval(() => wal.syncAsync(), fsyncIntervalMs);
      wal.timer.unref();
    }
    return { wal, segments };
  }

  /** Number of the segment appends go to now (or will go to, when none is open). */
  get currentSegment(): number {
    return this.fd >= 0 ? this.seq : this.seq + 1;
  }

  /**
   * Closes the current segment: rows appended before live in segments numbered below the
   * returned number, rows appended after in it or above. The old segment's tail is fsynced on
   * the thread pool (acknowledged rows only promise write(2), fsync follows within the interval).
   */
  seal(): number {
    if (this.fd >= 0) {
      const old = this.fd;
      this.fd = -1;
      if (this.dirty) {
        this.fsyncs++;
        fdatasync(old, () => close(old, ignore));
      } else {
        close(old, ignore);
      }
      this.dirty = false;
    }
    return this.seq + 1;
  }

  /** Creates segment seq + 1 with its magic; on failure nothing of it is left. */
  private openNext(): void {
    const seq = this.seq + 1;
    const path = join(this.dir, segmentName(seq));
    // "w", not "wx": a file of this number can only be the leftover of a failed attempt.
    const fd = openSync(path, "w");
    try {
      writeAllSync(fd, WAL_MAGIC, 0);
    } catch (err) {
      closeSync(fd);
      rmSync(path, { force: true });
      throw err;
    }
    fsync(fd, ignore);
    fsyncDirAsync(this.dir).catch(ignore);
    this.fd = fd;
    this.seq = seq;
    this.segBytes = WAL_MAGIC.length;
    this.segSizes.set(seq, this.segBytes);
    this.pendingBytes += this.segBytes;
    this.dirty = false;
  }

  /**
   * Appends one rows batch; returns after write(2). `lz4`, when given, is the batch as an lz4
   * block (@strata/encoding lz4Compress layout) that decompresses to exactly `batch`: the record
   * then holds it instead. Throws the system error (ENOSPC, …) when the record could not be
   * written whole; the WAL is then as it was before the call.
   */
  append(batch: Uint8Array, lz4?: Uint8Array): void {
    if (this.fd >= 0 && this.segBytes >= this.maxSegmentBytes) this.seal();
    if (this.fd < 0) {
      try {
        this.openNext();
      } catch (err) {
        this.appendErrors++;
        throw err;
      }
    }
    const hdr = this.hdr;
    if (lz4 !== undefined && lz4.length < batch.length) {
      hdr.writeUInt32LE((lz4.length | WAL_LZ4_FLAG) >>> 0, 0);
      batch = lz4;
    } else {
      hdr.writeUInt32LE(batch.length, 0);
    }
    hdr.writeUInt32LE(crc32(batch), 4);
    const at = this.segBytes;
    try {
      // Positional writes: after a truncation the file offset could point past the end.
      // One writev(2) for header and payload (a short write finishes with plain writes).
      const n = writevSync(this.fd, [hdr, batch], at);
      if (n < WAL_RECORD_HEADER) {
        writeAllSync(this.fd, hdr.subarray(n), at + n);
        writeAllSync(this.fd, batch, at + WAL_RECORD_HEADER);
      } else if (n < WAL_RECORD_HEADER + batch.length) {
        writeAllSync(this.fd, batch.subarray(n - WAL_RECORD_HEADER), at + n);
      }
      if (this.fsyncIntervalMs <= 0) {
        fsyncSync(this.fd);
        this.fsyncs++;
      }
    } catch (err) {
      this.appendErrors++;
      this.undo(at);
      throw err;
    }
    this.segBytes += WAL_RECORD_HEADER + batch.length;
    this.bytesWritten += WAL_RECORD_HEADER + batch.length;
    this.pendingBytes += WAL_RECORD_HEADER + batch.length;
    this.segSizes.set(this.seq, this.segBytes);
    this.appends++;
    if (this.fsyncIntervalMs > 0) this.dirty = true;
  }

  /**
   * Drops what a failed append left past `at`: truncates the segment back, or — when that
   * fails too — seals it, so that no later record lands behind the partial one.
   */
  private undo(at: number): void {
    try {
      ftruncateSync(this.fd, at);
      return;
    } catch {
      // fall through: seal
    }
    this.sealedAfterError++;
    const fd = this.fd;
    this.fd = -1;
    this.dirty = false;
    try {
      closeSync(fd);
    } catch {
      // the descriptor is gone either way
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

/** What replaying one segment found. */
export interface SegmentReplay {
  /** Records handed to onBatch. */
  records: number;
  /** The segment ends in an incomplete record (an interrupted write, never acknowledged). */
  torn: boolean;
  /** Byte offset of the incomplete tail (when torn). */
  tornAt: number;
  /** Damaged records with whole records after them: where each starts and how many bytes were skipped. */
  damaged: { offset: number; bytes: number }[];
}

/**
 * Replays a segment (STRWAL02, or STRWAL01 of older versions): hands every whole record's rows
 * batch to onBatch, in order. A bad record (checksum mismatch, length past the end) is
 * - a torn tail when no whole record follows it: an interrupted write, never acknowledged —
 *   replay ends there;
 * - damage when whole records follow: they are recovered (replay resumes at the next one) and
 *   the damaged bytes are reported in `damaged`, with their offset, for the caller to log.
 * A record whose checksum matches but whose lz4 payload does not decompress throws
 * BadDataError naming the file and offset (damage no checksum explains: refuse to guess).
 */
export function readSegment(dir: string, seq: number, onBatch: (batch: Uint8Array) => void): SegmentReplay {
  const buf = readFileSync(join(dir, segmentName(seq)));
  const out: SegmentReplay = { records: 0, torn: false, tornAt: 0, damaged: [] };
  const magic = buf.subarray(0, WAL_MAGIC.length);
  const v2 = buf.length >= WAL_MAGIC.length && magic.equals(WAL_MAGIC);
  if (!v2 && (buf.length < WAL_MAGIC_V1.length || !magic.equals(WAL_MAGIC_V1))) {
    // A segment whose magic never made it to disk holds no acknowledged record.
    out.torn = buf.length > 0;
    return out;
  }
  let pos = WAL_MAGIC.length;
  while (pos < buf.length) {
    const end = recordEnd(buf, pos, v2);
    if (end < 0) {
      const next = findNextRecord(buf, pos + 1, v2);
      if (next < 0) {
        out.torn = true;
        out.tornAt = pos;
        return out;
      }
      out.damaged.push({ offset: pos, bytes: next - pos });
      pos = next;
      continue;
    }
    const payload = buf.subarray(pos + WAL_RECORD_HEADER, end);
    if (v2 && (buf.readUInt32LE(pos) & WAL_LZ4_FLAG) !== 0) {
      let batch: Uint8Array;
      try {
        batch = lz4Decompress(payload, WAL_MAX_BATCH_BYTES);
      } catch (err) {
        throw new BadDataError(`WAL segment ${join(dir, segmentName(seq))}: record at byte ${pos} does not decompress: ${String(err)}`, "STRATA_CORRUPT_DATA");
      }
      onBatch(batch);
    } else {
      onBatch(payload);
    }
    out.records++;
    pos = end;
  }
  return out;
}

/**
 * End offset of the whole record at pos (checksum verified), or -1 when there is none. An empty
 * record counts as none: appends never write one, and zeros (a tail the filesystem extended
 * but never wrote) would otherwise read as a run of valid empty records.
 */
function recordEnd(buf: Buffer, pos: number, v2: boolean): number {
  if (pos + WAL_RECORD_HEADER > buf.length) return -1;
  const word = buf.readUInt32LE(pos);
  const len = v2 ? word & ~WAL_LZ4_FLAG : word;
  if (len === 0) return -1;
  const end = pos + WAL_RECORD_HEADER + len;
  if (end > buf.length) return -1;
  return crc32(buf.subarray(pos + WAL_RECORD_HEADER, end)) === buf.readUInt32LE(pos + 4) ? end : -1;
}

/**
 * The first offset ≥ from where a whole non-empty record starts that either ends the segment
 * or is followed by another whole record (one checksum matching by chance is ~2^-32 per
 * offset; two in a row, or one ending exactly at the end, is not worth considering). Cheap
 * checks first: only offsets whose length word (and the next one) fit are checksummed.
 */
function findNextRecord(buf: Buffer, from: number, v2: boolean): number {
  for (let q = from; q + WAL_RECORD_HEADER < buf.length; q++) {
    const word = buf.readUInt32LE(q);
    const len = v2 ? word & ~WAL_LZ4_FLAG : word;
    if (len === 0) continue;
    const end = q + WAL_RECORD_HEADER + len;
    if (end > buf.length) continue;
    if (end !== buf.length) {
      if (end + WAL_RECORD_HEADER > buf.length) continue;
      const w2 = buf.readUInt32LE(end);
      const len2 = v2 ? w2 & ~WAL_LZ4_FLAG : w2;
      if (len2 === 0 || end + WAL_RECORD_HEADER + len2 > buf.length) continue;
    }
    if (recordEnd(buf, q, v2) !== end) continue;
    if (end === buf.length || recordEnd(buf, end, v2) > 0) return q;
  }
  return -1;
}

/** Writes all of b at file offset `pos` (positional: the file offset is neither used nor moved). */
function writeAllSync(fd: number, b: Uint8Array, pos: number): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
}
