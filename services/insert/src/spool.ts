import { randomBytes } from "node:crypto";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RowsBatchWriter } from "@strata/core";

/**
 * Where an import request's parsed rows wait until the whole body has parsed: a rows batch in
 * memory, and once that passes `memoryBytes`, segments appended to a temp file. Only when the
 * parser reached the end without error are the segments read back (one at a time) and sent to
 * storage, so a bad line anywhere rejects the whole request with nothing stored, while memory
 * stays at about `memoryBytes` + one body chunk's rows whatever the body size.
 *
 * The file is unlinked right after it is created: it disappears when the descriptor closes,
 * including when the process is killed, so no stale spool files are left behind.
 *
 * Segments are complete rows batches (rows batch v1): each starts with a full metric name, so
 * each can be sent as one WriteRows_v1 batch.
 */
export class RowsSpool {
  readonly writer: RowsBatchWriter;
  private fh: FileHandle | null = null;
  private readonly segments: number[] = [];
  private fileBytes = 0;
  private spilledRows = 0;
  private closed = false;

  constructor(
    readonly memoryBytes: number,
    private readonly dir: string = tmpdir(),
  ) {
    this.writer = new RowsBatchWriter(Math.min(64 * 1024, Math.max(1024, memoryBytes)));
  }

  /** True when the in-memory batch has reached `memoryBytes` and should be spilled. */
  get full(): boolean {
    return this.writer.byteLength >= this.memoryBytes;
  }

  /** Rows held (in memory and spilled). */
  get rows(): number {
    return this.spilledRows + this.writer.length;
  }

  /** Bytes written to the spool file. */
  get spilledBytes(): number {
    return this.fileBytes;
  }

  /** Appends the in-memory batch to the spool file and empties it. */
  async spill(): Promise<void> {
    if (this.writer.length === 0) return;
    if (this.fh === null) {
      const path = join(this.dir, `strata-import-${process.pid}-${randomBytes(6).toString("hex")}.rows`);
      this.fh = await open(path, "wx+", 0o600);
      await unlink(path);
    }
    const view = this.writer.view();
    let off = 0;
    while (off < view.length) {
      const { bytesWritten } = await this.fh.write(view, off, view.length - off, this.fileBytes + off);
      off += bytesWritten;
    }
    this.segments.push(view.length);
    this.fileBytes += view.length;
    this.spilledRows += this.writer.length;
    this.writer.reset();
  }

  /**
   * The held rows as rows batches: the spilled segments in order, then the in-memory rest.
   * Each yielded view is valid only until the next iteration step (one buffer is reused).
   */
  async *batches(): AsyncGenerator<Uint8Array> {
    if (this.fh !== null && this.segments.length > 0) {
      let buf = new Uint8Array(Math.max(...this.segments));
      let pos = 0;
      for (const len of this.segments) {
        if (buf.length < len) buf = new Uint8Array(len);
        let off = 0;
        while (off < len) {
          const { bytesRead } = await this.fh.read(buf, off, len - off, pos + off);
          if (bytesRead === 0) throw new Error(`import spool file truncated at byte ${pos + off}`);
          off += bytesRead;
        }
        pos += len;
        yield buf.subarray(0, len);
      }
    }
    if (this.writer.length > 0) yield this.writer.view();
  }

  /** Releases the spool file (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.writer.reset();
    const fh = this.fh;
    this.fh = null;
    if (fh !== null) await fh.close();
  }
}
