import { BadDataError } from "@strata/core";
import type { Label } from "@strata/core";

/** Names used in error messages and per-format metrics (`format` label). */
export type FormatName =
  | "jsonline"
  | "prometheus"
  | "openmetrics"
  | "csv"
  | "influx"
  | "opentsdb"
  | "graphite";

/**
 * Where parsed rows go. A parser calls `series(labels)` once per series it reads (once per line
 * for line formats, once per JSON line for a whole `values` array) and then `sample(ts, v)` for
 * each of that series' samples. No object is created per sample.
 *
 * Contract: `labels` is only valid during the call (parsers reuse the array); it is in input
 * order, not sorted, may contain empty values (meaning "absent") and includes `__name__`; extra
 * labels (`extra_label=`) are already applied. Timestamps are integer milliseconds; values are
 * any float64 (the stale marker's bits are kept).
 */
export interface RowSink {
  series(labels: readonly Label[]): void;
  sample(timestampMs: number, value: number): void;
}

/** Options every parser accepts. */
export interface CommonParseOptions {
  /** `extra_label=name=value` pairs: added to every series, replacing a label of the same name. */
  readonly extraLabels?: readonly Label[];
  /** Timestamp (ms) for samples that carry none; defaults to Date.now() when the parser starts. */
  readonly defaultTimestampMs?: number;
  /** Longest accepted line in bytes (line formats); longer lines are rejected, never buffered. */
  readonly maxLineBytes?: number;
  /**
   * Line formats: report an invalid line here and go on with the next one, instead of failing
   * the whole input (for streams without a request to reject, e.g. Graphite over TCP). Lines
   * are validated before any of their rows is emitted, so a skipped line adds nothing. Invalid
   * UTF-8 and over-long lines still fail the input.
   */
  readonly onInvalidLine?: (err: BadDataError) => void;
}

/** A push parser: feed chunks with `write`, then call `end` once. Throws BadDataError. */
export interface StreamParser {
  write(chunk: Uint8Array): void;
  end(): void;
  /** Samples emitted so far. */
  readonly rowsRead: number;
}

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;

const located = new WeakSet<Error>();

/** The error every parser throws: `<format>: line N: what` (or `byte N`). */
export function parseError(format: FormatName, where: string, what: string): BadDataError {
  const err = new BadDataError(`${format}: ${where}: ${what}`, "STRATA_PARSE_ERROR");
  located.add(err);
  return err;
}

/**
 * Gives an error thrown while handling input at `where` (e.g. by a sink rejecting a label set)
 * the format and location prefix; errors that already have one pass through unchanged.
 */
export function locate(err: unknown, format: FormatName, where: string): unknown {
  if (!(err instanceof BadDataError) || located.has(err)) return err;
  const out = new BadDataError(`${format}: ${where}: ${err.message}`, err.code, { cause: err });
  located.add(out);
  return out;
}

/** A short, quoted excerpt of bad input for error messages. */
export function excerpt(s: string, max = 64): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/**
 * Parses `extra_label` query parameter values (`name=value`) into labels. Throws BadDataError
 * for a value without `=` or with an empty name.
 */
export function parseExtraLabels(params: Iterable<string>): Label[] {
  const out: Label[] = [];
  for (const p of params) {
    const eq = p.indexOf("=");
    if (eq <= 0) {
      throw new BadDataError(`extra_label ${excerpt(p)}: want name=value`, "STRATA_BAD_REQUEST");
    }
    out.push({ name: p.slice(0, eq), value: p.slice(eq + 1) });
  }
  return out;
}

/**
 * Applies extra labels to a scratch label array in place: a label with the same name is
 * replaced (VictoriaMetrics: extra labels win), others are appended.
 */
export function applyExtraLabels(labels: Label[], extra: readonly Label[] | undefined): void {
  if (extra === undefined || extra.length === 0) return;
  for (const e of extra) {
    let found = false;
    for (let i = 0; i < labels.length; i++) {
      if (labels[i]!.name === e.name) {
        labels[i] = e;
        found = true;
      }
    }
    if (!found) labels.push(e);
  }
}

/** Feeds an async stream of chunks through a push parser. */
export async function parseStream(parser: StreamParser, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  for await (const chunk of chunks) parser.write(chunk);
  parser.end();
  return parser.rowsRead;
}

/** Parses a whole body held in memory (tests, small requests). */
export function parseAll(parser: StreamParser, body: Uint8Array | string): number {
  parser.write(typeof body === "string" ? new TextEncoder().encode(body) : body);
  parser.end();
  return parser.rowsRead;
}

/** Milliseconds as an integer in the range storage accepts (|t| < 2^53). */
export function isValidTimestamp(ms: number): boolean {
  return Number.isSafeInteger(ms);
}

/**
 * An integer string divided by 10^drop, truncated toward zero, exactly (no float rounding even
 * for 19-digit nanoseconds). `tok` must match /^-?\d+$/.
 */
export function truncDigits(tok: string, drop: number): number {
  const neg = tok.startsWith("-");
  const digits = neg ? tok.slice(1) : tok;
  const kept = digits.length > drop ? digits.slice(0, digits.length - drop) : "0";
  const v = Number(kept);
  return neg && v !== 0 ? -v : v;
}

/**
 * Like parseStream, but hands the rows batch to `flush` whenever it holds `flushBytes` or more
 * (checked after each chunk) and once at the end, so a huge import never holds more than about
 * `flushBytes` + one chunk of rows. The batch view passed to `flush` is only valid until the
 * returned promise settles (the writer is reset and reused afterwards).
 *
 * Trade-off: rows flushed before a later parse error stay written (VictoriaMetrics behaves the
 * same way for big imports). For all-or-nothing requests use parseStream and send once.
 */
export async function parseStreamFlushing(
  parser: StreamParser,
  chunks: AsyncIterable<Uint8Array>,
  writer: { readonly byteLength: number; readonly length: number; view(): Uint8Array; reset(): void },
  flushBytes: number,
  flush: (batch: Uint8Array, rows: number) => Promise<void>,
): Promise<number> {
  for await (const chunk of chunks) {
    parser.write(chunk);
    if (writer.byteLength >= flushBytes) {
      await flush(writer.view(), writer.length);
      writer.reset();
    }
  }
  parser.end();
  if (writer.length > 0) {
    await flush(writer.view(), writer.length);
    writer.reset();
  }
  return parser.rowsRead;
}
