import { BadDataError } from "@strata/core";
import type { FormatName } from "./common.js";
import { locate, parseError } from "./common.js";

const NL = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines in bounded memory and hands each line (without `\n` or a
 * trailing `\r`) to `onLine` with its 1-based number. Bytes are decoded as strict UTF-8; a line
 * with invalid UTF-8 or longer than `maxLineBytes` is a parse error naming the line.
 *
 * Complete lines of a chunk are decoded in one TextDecoder call and split in JavaScript, which
 * is far cheaper than decoding line by line; only the partial last line is carried over.
 */
export class LineSplitter {
  private carry: Uint8Array = new Uint8Array(0);
  private carryLen = 0;
  private lineNo = 0;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });

  constructor(
    private readonly format: FormatName,
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string, lineNo: number) => void,
    private readonly onInvalidLine?: (err: BadDataError) => void,
  ) {}

  /** The number of the last line handed out. */
  get line(): number {
    return this.lineNo;
  }

  write(chunk: Uint8Array): void {
    let start = 0;
    if (this.carryLen > 0) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.appendCarry(chunk);
        return;
      }
      this.appendCarry(chunk.subarray(0, nl));
      this.emitBlock(this.carry.subarray(0, this.carryLen), true);
      this.carryLen = 0;
      start = nl + 1;
    }
    const lastNl = chunk.lastIndexOf(NL);
    if (lastNl >= start) {
      this.emitBlock(chunk.subarray(start, lastNl), true);
      start = lastNl + 1;
    }
    if (start < chunk.length) this.appendCarry(chunk.subarray(start));
  }

  end(): void {
    if (this.carryLen > 0) {
      this.emitBlock(this.carry.subarray(0, this.carryLen), false);
      this.carryLen = 0;
    }
  }

  private appendCarry(bytes: Uint8Array): void {
    const need = this.carryLen + bytes.length;
    if (need > this.maxLineBytes) {
      throw parseError(this.format, `line ${this.lineNo + 1}`, `line longer than ${this.maxLineBytes} bytes`);
    }
    if (need > this.carry.length) {
      const next = new Uint8Array(Math.min(Math.max(need, this.carry.length * 2, 4096), this.maxLineBytes));
      next.set(this.carry.subarray(0, this.carryLen));
      this.carry = next;
    }
    this.carry.set(bytes, this.carryLen);
    this.carryLen = need;
  }

  /** `block` is one or more whole lines separated by `\n` (no trailing `\n`). */
  private emitBlock(block: Uint8Array, _complete: boolean): void {
    let text: string;
    try {
      text = this.decoder.decode(block);
    } catch {
      this.failUtf8(block);
    }
    let pos = 0;
    for (;;) {
      const nl = text.indexOf("\n", pos);
      const end = nl < 0 ? text.length : nl;
      let line = text.slice(pos, end);
      this.lineNo++;
      if (line.length > 0 && line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
      if (line.length > this.maxLineBytes) {
        throw parseError(this.format, `line ${this.lineNo}`, `line longer than ${this.maxLineBytes} bytes`);
      }
      try {
        this.onLine(line, this.lineNo);
      } catch (err) {
        const located = locate(err, this.format, `line ${this.lineNo}`);
        if (this.onInvalidLine === undefined || !(located instanceof BadDataError)) throw located;
        this.onInvalidLine(located);
      }
      if (nl < 0) break;
      pos = nl + 1;
    }
  }

  private failUtf8(block: Uint8Array): never {
    let lineStart = 0;
    let n = this.lineNo;
    for (;;) {
      const nl = block.indexOf(NL, lineStart);
      const end = nl < 0 ? block.length : nl;
      n++;
      try {
        this.decoder.decode(block.subarray(lineStart, end));
      } catch {
        throw parseError(this.format, `line ${n}`, "invalid UTF-8");
      }
      if (nl < 0) break;
      lineStart = nl + 1;
    }
    throw parseError(this.format, `line ${n}`, "invalid UTF-8");
  }
}
