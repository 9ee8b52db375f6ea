import { readSync } from "node:fs";
import { BadDataError } from "@strata/core";

/** First read-ahead of a part file in a search, and the most a window grows to. */
const MIN_WINDOW_BYTES = 8 << 10;
const MAX_WINDOW_BYTES = 64 << 10;

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
 * series): a window that must move while its buffer has views of the current step gets a new
 * buffer. `clear()` when the cursor closes (windows are keyed by file descriptor).
 */
export class ReadScratch {
  private step = 0;
  private readonly windows = new Map<number, Window>();
  /** readSync calls made (strata_storage_search_file_reads_total). */
  reads = 0;

  nextStep(): void {
    this.step++;
  }

  clear(): void {
    this.windows.clear();
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
    const buf = w !== undefined && w.step !== this.step && w.buf.length >= want ? w.buf : new Uint8Array(Math.max(want, MAX_WINDOW_BYTES));
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
