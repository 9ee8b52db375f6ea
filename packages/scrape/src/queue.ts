import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, statSync, ftruncateSync, unlinkSync, writevSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";

/**
 * A durable FIFO of byte blocks in a directory (one per remote write URL), the format of
 * docs/format/agent-queue.md. `append` writes the block to the current segment file with one
 * write(2) before it returns, so a block survives SIGKILL of the process once append returned
 * (the page cache holds it); the data is fsynced every `fsyncIntervalMs`. The reader position
 * is kept in the `reader` file on the same interval and on close: after a crash, blocks sent
 * since the last kept position are sent again (at least once, never lost).
 *
 * Disk use is bounded by `maxBytes`: when an append passes it, whole segments are deleted from
 * the oldest end (unsent blocks in them are dropped and counted).
 */

const HEADER = 8;
const SEGMENT_RE = /^([0-9a-f]{16})\.seg$/;

export interface QueueOptions {
  readonly dir: string;
  /** Bound of the bytes kept on disk (0: unbounded). */
  readonly maxBytes: number;
  /** Segment file size; smaller than maxBytes so that dropping is gradual. */
  readonly segmentBytes?: number;
  readonly fsyncIntervalMs?: number;
}

interface Segment {
  readonly start: number;
  fd: number;
  size: number;
}

export interface QueueBlock {
  readonly data: Uint8Array;
  /** The position after this block (what `ack` takes). */
  readonly next: number;
}

/** A reusable buffer a caller lends to peek() and mergeSnappyBlocks(). */
export interface Scratch {
  buf: Buffer;
}

export class DurableQueue {
  private readonly segments: Segment[] = [];
  private readonly segmentBytes: number;
  private readPos: number;
  private writePos: number;
  private dirty = false;
  private readerDirty = false;
  private readonly timer: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private closed = false;
  private readonly header = Buffer.alloc(HEADER);
  /** Blocks and bytes deleted unsent because of maxBytes. */
  droppedBlocks = 0;
  droppedBytes = 0;
  /** Bytes cut off the end on open (a block torn by a crash mid-write). */
  readonly tornBytes: number = 0;

  constructor(private readonly opts: QueueOptions) {
    mkdirSync(opts.dir, { recursive: true });
    this.segmentBytes = Math.max(64 * 1024, opts.segmentBytes ?? (opts.maxBytes > 0 ? Math.min(32 * 1024 * 1024, Math.floor(opts.maxBytes / 4)) : 32 * 1024 * 1024));
    const starts = readdirSync(opts.dir)
      .map((f) => SEGMENT_RE.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number.parseInt(m[1]!, 16))
      .sort((a, b) => a - b);
    for (const start of starts) {
      const fd = openSync(this.segPath(start), "r+");
      this.segments.push({ start, fd, size: statSync(this.segPath(start)).size });
    }
    // The last segment may end in a torn block: keep its whole blocks only.
    const last = this.segments[this.segments.length - 1];
    if (last !== undefined) {
      const valid = this.scanValid(last);
      if (valid < last.size) {
        (this as { tornBytes: number }).tornBytes = last.size - valid;
        ftruncateSync(last.fd, valid);
        last.size = valid;
      }
    }
    this.writePos = last === undefined ? 0 : last.start + last.size;
    const first = this.segments[0]?.start ?? this.writePos;
    this.readPos = Math.min(Math.max(this.loadReader() ?? first, first), this.writePos);
    if (this.segments.length === 0) this.newSegment(0);
    const every = opts.fsyncIntervalMs ?? 1000;
    this.timer = every > 0 ? setInterval(() => this.sync(), every) : undefined;
    this.timer?.unref();
  }

  /** Bytes not yet acknowledged (what the sender still has to send). */
  get pendingBytes(): number {
    return this.writePos - this.readPos;
  }

  /** Bytes of the segment files on disk. */
  get diskBytes(): number {
    return this.writePos - (this.segments[0]?.start ?? this.writePos);
  }

  /** Appends one block; it is in the file (page cache) when this returns. */
  append(data: Uint8Array): void {
    if (this.closed) throw new Error("queue is closed");
    let seg = this.segments[this.segments.length - 1]!;
    if (seg.size > 0 && seg.size + HEADER + data.length > this.segmentBytes) seg = this.newSegment(this.writePos);
    const h = this.header;
    h.writeUInt32LE(data.length, 0);
    h.writeUInt32LE(crc32(data), 4);
    writevSync(seg.fd, [h, data], seg.size);
    seg.size += HEADER + data.length;
    this.writePos += HEADER + data.length;
    this.dirty = true;
    this.enforceLimit();
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Reads blocks from the reader position without consuming them: up to `maxBytes` in total
   * (at least one block). Empty when the queue is empty. With `scratch`, the blocks are views of
   * its buffer (grown when needed), valid until the next peek with it: a sender reuses one
   * buffer instead of allocating each block it sends.
   */
  peek(maxBytes: number, scratch?: Scratch): QueueBlock[] {
    const out: QueueBlock[] = [];
    let used = 0;
    let pos = this.readPos;
    let total = 0;
    while (pos < this.writePos) {
      let segIdx = this.segmentAt(pos);
      if (segIdx < 0) break;
      let seg = this.segments[segIdx]!;
      if (pos >= seg.start + seg.size) {
        segIdx++;
        if (segIdx >= this.segments.length) break;
        seg = this.segments[segIdx]!;
        pos = seg.start;
        continue;
      }
      const h = this.header;
      readSync(seg.fd, h, 0, HEADER, pos - seg.start);
      const len = h.readUInt32LE(0);
      if (out.length > 0 && total + len > maxBytes) break;
      let data: Buffer;
      if (scratch === undefined) data = Buffer.allocUnsafe(len);
      else {
        // Blocks read before a growth keep viewing the old buffer, which stays valid.
        if (used + len > scratch.buf.length) scratch.buf = Buffer.allocUnsafeSlow(Math.max(used + len, scratch.buf.length * 2));
        data = scratch.buf.subarray(used, used + len);
        used += len;
      }
      readSync(seg.fd, data, 0, len, pos - seg.start + HEADER);
      if (crc32(data) !== h.readUInt32LE(4)) throw new Error(`queue ${this.opts.dir}: checksum mismatch at offset ${pos}`);
      pos += HEADER + len;
      total += len;
      out.push({ data, next: pos });
    }
    return out;
  }

  /** Marks everything before `pos` as sent; deletes segments that are fully sent. */
  ack(pos: number): void {
    if (pos <= this.readPos) return;
    this.readPos = pos;
    while (this.segments.length > 1) {
      const s = this.segments[0]!;
      if (s.start + s.size > this.readPos) break;
      this.segments.shift();
      closeSync(s.fd);
      unlinkSync(this.segPath(s.start));
    }
    this.readerDirty = true;
  }

  /** Resolves when there is something to read (or the queue closes). */
  wait(): Promise<void> {
    if (this.readPos < this.writePos || this.closed) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  sync(): void {
    if (this.closed) return;
    if (this.readerDirty) this.saveReader();
    if (!this.dirty) return;
    this.dirty = false;
    const seg = this.segments[this.segments.length - 1];
    if (seg !== undefined) fdatasync(seg.fd, () => undefined);
  }

  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    if (this.readerDirty) this.saveReader();
    for (const s of this.segments) {
      if (this.dirty) fsyncSync(s.fd);
      closeSync(s.fd);
    }
    this.closed = true;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private enforceLimit(): void {
    const max = this.opts.maxBytes;
    if (max <= 0) return;
    while (this.segments.length > 1 && this.diskBytes > max) {
      const s = this.segments.shift()!;
      const end = s.start + s.size;
      if (this.readPos < end) {
        // Count the unsent blocks that go with the segment.
        let pos = Math.max(this.readPos, s.start);
        while (pos < end) {
          readSync(s.fd, this.header, 0, HEADER, pos - s.start);
          const len = this.header.readUInt32LE(0);
          this.droppedBlocks++;
          this.droppedBytes += len;
          pos += HEADER + len;
        }
        this.readPos = end;
        this.saveReader();
      }
      closeSync(s.fd);
      unlinkSync(this.segPath(s.start));
    }
  }

  private segmentAt(pos: number): number {
    for (let i = this.segments.length - 1; i >= 0; i--) if (this.segments[i]!.start <= pos) return i;
    return -1;
  }

  private newSegment(start: number): Segment {
    const prev = this.segments[this.segments.length - 1];
    if (prev !== undefined && this.dirty) fsyncSync(prev.fd);
    const fd = openSync(this.segPath(start), "w+");
    const seg = { start, fd, size: 0 };
    this.segments.push(seg);
    return seg;
  }

  private scanValid(seg: Segment): number {
    let pos = 0;
    const h = Buffer.alloc(HEADER);
    while (pos + HEADER <= seg.size) {
      readSync(seg.fd, h, 0, HEADER, pos);
      const len = h.readUInt32LE(0);
      if (pos + HEADER + len > seg.size) break;
      const data = Buffer.allocUnsafe(len);
      readSync(seg.fd, data, 0, len, pos + HEADER);
      if (crc32(data) !== h.readUInt32LE(4)) break;
      pos += HEADER + len;
    }
    return pos;
  }

  private segPath(start: number): string {
    return join(this.opts.dir, `${start.toString(16).padStart(16, "0")}.seg`);
  }

  private loadReader(): number | undefined {
    try {
      const b = readFileSync(join(this.opts.dir, "reader"));
      if (b.length !== 12 || crc32(b.subarray(0, 8)) !== b.readUInt32LE(8)) return undefined;
      return Number(b.readBigUInt64LE(0));
    } catch {
      return undefined;
    }
  }

  private saveReader(): void {
    this.readerDirty = false;
    const b = Buffer.alloc(12);
    b.writeBigUInt64LE(BigInt(this.readPos), 0);
    b.writeUInt32LE(crc32(b.subarray(0, 8)), 8);
    const tmp = join(this.opts.dir, "reader.tmp");
    writeFileSync(tmp, b);
    renameSync(tmp, join(this.opts.dir, "reader"));
  }
}
