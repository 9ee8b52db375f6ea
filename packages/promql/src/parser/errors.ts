import { BadDataError } from "@strata/core";

/** UTF-8 byte offset of UTF-16 index `i` in `s`. */
export function byteOffset(s: string, i: number): number {
  let b = 0;
  for (let k = 0; k < i && k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x80) b += 1;
    else if (c < 0x800) b += 2;
    else if (c >= 0xd800 && c <= 0xdbff && k + 1 < s.length) {
      b += 4;
      k++;
    } else b += 3;
  }
  return b;
}

/**
 * A PromQL syntax or type error. `message` is Prometheus' form "<line>:<col>: parse error: <msg>"
 * where col is the 1-based byte column; `offset` is the UTF-8 byte offset in the query.
 */
export class ParseError extends BadDataError {
  readonly query: string;
  readonly offset: number;
  readonly endOffset: number;
  readonly line: number;
  readonly col: number;
  /** The message without the position prefix. */
  readonly detail: string;

  /** `start` / `end` are UTF-16 indexes into `query`. */
  constructor(query: string, start: number, end: number, detail: string, lineOffset = 0) {
    const offset = byteOffset(query, start);
    const before = query.slice(0, Math.max(0, start));
    const nl = before.lastIndexOf("\n");
    const line = lineOffset + 1 + (before.match(/\n/g)?.length ?? 0);
    const col = offset - (nl < 0 ? -1 : byteOffset(query, nl));
    super(`${line}:${col}: parse error: ${detail}`, "STRATA_PARSE_ERROR");
    this.query = query;
    this.offset = offset;
    this.endOffset = byteOffset(query, end);
    this.line = line;
    this.col = col;
    this.detail = detail;
  }
}
