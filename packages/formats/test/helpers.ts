import { BadDataError, labelsToRecord } from "@strata/core";
import type { StreamParser, RowSink } from "@strata/formats";
import { CollectingSink } from "@strata/formats";

export type Series = [Record<string, string>, number[], number[]];

/** Parses `input` (split into small chunks to exercise carry-over) and returns the series. */
export function collect(make: (sink: RowSink) => StreamParser, input: string, chunk = 7): Series[] {
  const sink = new CollectingSink();
  const p = make(sink);
  const bytes = new TextEncoder().encode(input);
  for (let i = 0; i < bytes.length; i += chunk) p.write(bytes.subarray(i, i + chunk));
  p.end();
  return sink.series_.map((s) => [labelsToRecord(s.labels), s.timestamps, s.values]);
}

/** The BadDataError message produced by parsing `input`, or "no error". */
export function errorOf(make: (sink: RowSink) => StreamParser, input: string | Uint8Array): string {
  try {
    const p = make(new CollectingSink());
    p.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    p.end();
  } catch (err) {
    if (err instanceof BadDataError) return err.message;
    throw err;
  }
  return "no error";
}

/** Runs the parser on arbitrary bytes: only BadDataError may escape. */
export function onlyBadData(make: (sink: RowSink) => StreamParser, input: Uint8Array): void {
  try {
    const p = make(new CollectingSink());
    const cut = input.length >> 1;
    p.write(input.subarray(0, cut));
    p.write(input.subarray(cut));
    p.end();
  } catch (err) {
    if (!(err instanceof BadDataError)) throw err;
  }
}
