import { readSync } from "node:fs";
import { BadDataError } from "@strata/core";

/** First read-ahead of a part file in a search, and the most a window grows to. */
const MIN_WINDOW_BYTES = 8 << 10;
const MAX_WINDOW_BYTES = 64 << 10;
/** Free window buffers a search keeps for reuse (beyond one per part file it reads). */
const MAX_SPARE_BUFFERS = 8;

/** What a search cursor has read of one part file: the window, and views handed out of it. */
interface Window {
  buf: Uint8Array;
  off: number;
  len: number;
  /** Bytes the next refill reads (grows while the reads go forward through the file). */
  size: number;
  /** ReadScratch.step when a view of `buf` was last handed out. */
  step: number;
}

/**
 * Block payloads of a search cursor, read ahead. A search walks TSIDs in order and a part
 * stores its blocks in TSID order, so the blocks of the next matching series usually follow in
 * the same file: one `readSync` of a window serves many blocks instead of one syscall per
 * timestamps and values payload (on a wide selection the syscalls were a quarter of a storage
 * node's CPU). Windows start small (a narrow selection jumps through the file) and double while
 * the reads go forward, up to 64 KiB per file.
 *
 * Views are valid until the step after the one that handed them out (`nextStep()`, once per
 * series): a window that must move while its buffer has views of the current step gets another
 * buffer, and the one it leaves is reused from the next step on (a series of 7 days at 15 s
 * spans ~60 KB of a values file, so on long ranges a window moves within most steps: a fresh
 * zero-filled 64 KiB buffer each time was garbage by the megabyte). `clear()` when the cursor
 * closes (windows are keyed by file descriptor).
 */
export class ReadScratch {
  private step = 0;
  private readonly windows = new Map<number, Window>();
  /** Buffers windows left during the current step (views of them are still valid). */
  private readonly retired: Uint8Array[] = [];
  /** Buffers no view points into any more, for the next window that must move. */
  private readonly spare: Uint8Array[] = [];
  /** readSync calls made (strata_storage_search_file_reads_total). */
  reads = 0;
  /** Window buffers allocated (strata_storage_search_read_buffers_total). */
  buffers = 0;

  nextStep(): void {
    this.step++;
    while (this.retired.length > 0) this.free(this.retired.pop()!);
  }

  /** Drops the windows (the cursor closed: no view of them is valid any more); keeps buffers. */
  clear(): void {
    for (const w of this.windows.values()) this.free(w.buf);
    this.windows.clear();
    while (this.retired.length > 0) this.free(this.retired.pop()!);
  }

  private free(b: Uint8Array): void {
    if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(b);
  }

  /** A buffer of at least `size` bytes no view points into. */
  private take(size: number): Uint8Array {
    for (let i = this.spare.length - 1; i >= 0; i--) {
      const b = this.spare[i]!;
      if (b.length < size) continue;
      this.spare[i] = this.spare[this.spare.length - 1]!;
      this.spare.pop();
      return b;
    }
    this.buffers++;
    return new Uint8Array(Math.max(size, MAX_WINDOW_BYTES));
  }

  /** `len` bytes at `off` of the file `fd` (named `path` in errors), as a view into a window. */
  read(fd: number, path: string, off: number, len: number): Uint8Array {
    let w = this.windows.get(fd);
    if (w !== undefined && off >= w.off && off + len <= w.off + w.len) {
      w.step = this.step;
      return w.buf.subarray(off - w.off, off - w.off + len);
    }
    const forward = w !== undefined && off >= w.off && off <= w.off + w.len + w.size;
    const size = forward ? Math.min(w!.size * 2, MAX_WINDOW_BYTES) : MIN_WINDOW_BYTES;
    const want = Math.max(len, size);
    let buf: Uint8Array;
    if (w !== undefined && w.step !== this.step && w.buf.length >= want) buf = w.buf;
    else {
      buf = this.take(want);
      // The window's old buffer: still viewed when it served this step, free otherwise.
      if (w !== undefined) {
        if (w.step === this.step) this.retired.push(w.buf);
        else this.free(w.buf);
      }
    }
    this.reads++;
    const n = len === 0 ? 0 : readSync(fd, buf, 0, want, off);
    if (n < len) throw new BadDataError(`${path}: short read ${n} of ${len} at ${off}`, "STRATA_CORRUPT_DATA");
    if (w === undefined) {
      w = { buf, off, len: n, size, step: this.step };
      this.windows.set(fd, w);
    } else {
      w.buf = buf;
      w.off = off;
      w.len = n;
      w.size = size;
      w.step = this.step;
    }
    return buf.subarray(0, len);
  }
}
