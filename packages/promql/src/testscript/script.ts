import { BadDataError, type Label } from "@strata/core";
import { parseDurationMs } from "../parser/lexer.js";
import { unquote } from "../parser/strings.js";
import { parseScriptNumber, parseSeriesLine, type SeriesDesc, type SequenceValue } from "./series.js";

/**
 * Parser for Prometheus' PromQL test-script language (promql/promqltest, FORMAT.md):
 * `load <step>` blocks, `clear`, `eval instant at <t> <expr>` / `eval range from <t> to <t>
 * step <d> <expr>` with `expect …` lines and expected results. Line numbers are 1-based.
 */

export interface LoadCommand {
  readonly kind: "load";
  readonly line: number;
  readonly intervalMs: number;
  /** `load_with_nhcb`: classic histograms also loaded as native histograms (unsupported). */
  readonly withNhcb: boolean;
  readonly series: readonly (SeriesDesc & { readonly line: number })[];
}

export interface ClearCommand {
  readonly kind: "clear";
  readonly line: number;
}

export type ExpectKind = "fail" | "warn" | "info" | "no_warn" | "no_info" | "ordered";

export interface Expectation {
  readonly kind: ExpectKind;
  /**
   * "expect": an `expect …` line; "legacy": `eval_fail`/`eval_warn`/… and
   * `expected_fail_message`/`expected_fail_regexp` (checked like promqltest checks those).
   */
  readonly source: "expect" | "legacy";
  /** `msg:` exact match or `regex:` (unanchored, like Go's MatchString); undefined = any. */
  readonly match: { readonly type: "msg" | "regex"; readonly text: string } | undefined;
}

export interface ExpectedSeries {
  readonly line: number;
  readonly labels: readonly Label[];
  readonly values: readonly SequenceValue[];
  /** 1-based position among the expected series (for `expect ordered`). */
  readonly pos: number;
}

export interface EvalCommand {
  readonly kind: "eval";
  readonly line: number;
  readonly query: string;
  readonly instant: boolean;
  /** Instant: `at`; range: start/end/step. All ms. */
  readonly at: number;
  readonly start: number;
  readonly end: number;
  readonly step: number;
  readonly expectations: readonly Expectation[];
  readonly fail: boolean;
  readonly ordered: boolean;
  /** Scalar expected (a bare number line). */
  readonly expectScalar: number | undefined;
  /** `expect string "…"`. */
  readonly expectString: string | undefined;
  /** `expect range vector from <t> to <t> step <d>` for an instant query returning a matrix. */
  readonly expectRangeVector: { readonly start: number; readonly end: number; readonly step: number } | undefined;
  readonly expected: readonly ExpectedSeries[];
  /** Any expected value is a native histogram. */
  readonly expectsHistogram: boolean;
}

export type Command = LoadCommand | ClearCommand | EvalCommand;

export class ScriptError extends BadDataError {
  constructor(
    readonly file: string,
    readonly line: number,
    msg: string,
  ) {
    super(`${file}:${line}: ${msg}`);
  }
}

const PAT_INSTANT = /^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$/;
const PAT_RANGE = /^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$/;
const PAT_EXPECT = /^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.*))?$/;
const PAT_RANGE_VECTOR = /^expect\s+range\s+vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$/;
const PAT_LOAD = /^(load|load_with_nhcb)\s+(\S+)$/;

function parseTime(s: string): number | undefined {
  return parseDurationMs(s.trim());
}

/** Parses a script; throws ScriptError naming file and line for malformed input. */
export function parseScript(text: string, file = "<script>"): Command[] {
  // Like promqltest's getLines: trim every line; comment lines become blank (ending blocks).
  const lines = text.split("\n").map((l) => {
    const t = l.trim();
    return t.startsWith("#") ? "" : t;
  });
  const cmds: Command[] = [];
  const fail = (i: number, msg: string): ScriptError => new ScriptError(file, i + 1, msg);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l === "") continue;
    const lm = PAT_LOAD.exec(l);
    if (lm) {
      const interval = parseTime(lm[2]!);
      if (interval === undefined) throw fail(i, `invalid load interval ${JSON.stringify(lm[2])}`);
      const series: (SeriesDesc & { line: number })[] = [];
      const start = i;
      while (i + 1 < lines.length && lines[i + 1] !== "") {
        i++;
        try {
          series.push({ ...parseSeriesLine(lines[i]!), line: i + 1 });
        } catch (e) {
          throw fail(i, e instanceof Error ? e.message : String(e));
        }
      }
      cmds.push({ kind: "load", line: start + 1, intervalMs: interval, withNhcb: lm[1] === "load_with_nhcb", series });
      continue;
    }
    if (l === "clear") {
      cmds.push({ kind: "clear", line: i + 1 });
      continue;
    }
    if (l.startsWith("eval")) {
      const r = parseEval(lines, i, fail);
      cmds.push(r.cmd);
      i = r.last;
      continue;
    }
    throw fail(i, `invalid command ${JSON.stringify(l)}`);
  }
  return cmds;
}

function parseEval(lines: string[], i: number, fail: (i: number, msg: string) => ScriptError): { cmd: EvalCommand; last: number } {
  const l = lines[i]!;
  let mod: string | undefined;
  let query: string;
  let instant: boolean;
  let at = 0;
  let start = 0;
  let end = 0;
  let step = 0;
  const im = PAT_INSTANT.exec(l);
  const rm = im ? null : PAT_RANGE.exec(l);
  if (im) {
    instant = true;
    mod = im[1];
    const t = im[2] === undefined ? 0 : parseTime(im[2]);
    if (t === undefined) throw fail(i, `invalid evaluation time ${JSON.stringify(im[2])}`);
    at = t;
    query = im[3]!;
  } else if (rm) {
    instant = false;
    mod = rm[1];
    const s = parseTime(rm[2]!);
    const e = parseTime(rm[3]!);
    const st = parseTime(rm[4]!);
    if (s === undefined || e === undefined || st === undefined) throw fail(i, "invalid range query times");
    if (e < s) throw fail(i, "end timestamp must not be before start timestamp");
    if (st <= 0) throw fail(i, "step must be positive");
    start = s;
    end = e;
    step = st;
    query = rm[5]!;
  } else {
    throw fail(i, `invalid evaluation command ${JSON.stringify(l)}`);
  }
  const expectations: Expectation[] = [];
  if (mod === "fail") expectations.push({ kind: "fail", source: "legacy", match: undefined });
  if (mod === "warn") expectations.push({ kind: "warn", source: "legacy", match: undefined });
  if (mod === "info") expectations.push({ kind: "info", source: "legacy", match: undefined });
  if (mod === "ordered") expectations.push({ kind: "ordered", source: "legacy", match: undefined });
  let expectScalar: number | undefined;
  let expectString: string | undefined;
  let expectRangeVector: EvalCommand["expectRangeVector"];
  const expected: ExpectedSeries[] = [];
  const seen = new Set<string>();
  let j = i;
  while (j + 1 < lines.length && lines[j + 1] !== "") {
    j++;
    const d = lines[j]!;
    if (d.startsWith("expected_fail_message")) {
      expectations.push({ kind: "fail", source: "legacy", match: { type: "msg", text: d.slice("expected_fail_message".length).trim() } });
      continue;
    }
    if (d.startsWith("expected_fail_regexp")) {
      expectations.push({ kind: "fail", source: "legacy", match: { type: "regex", text: d.slice("expected_fail_regexp".length).trim() } });
      continue;
    }
    const rv = PAT_RANGE_VECTOR.exec(d);
    if (rv) {
      const s = parseTime(rv[1]!);
      const e = parseTime(rv[2]!);
      const st = parseTime(rv[3]!);
      if (s === undefined || e === undefined || st === undefined) throw fail(j, "invalid range vector expectation");
      expectRangeVector = { start: s, end: e, step: st };
      continue;
    }
    if (d.startsWith("expect string")) {
      const q = d.slice("expect string".length).trim();
      if (!/^(".*"|`.*`)$/.test(q)) throw fail(j, "expected string must be in double or back quotes");
      expectString = unquote(q);
      continue;
    }
    const em = PAT_EXPECT.exec(d);
    if (em) {
      const kind = em[1] as ExpectKind;
      const match = em[2] === undefined ? undefined : { type: em[2] as "msg" | "regex", text: em[3]!.trim() };
      if (match !== undefined && (kind === "ordered" || kind === "no_warn" || kind === "no_info")) {
        throw fail(j, `expect ${kind} takes no message`);
      }
      expectations.push({ kind, source: "expect", match });
      continue;
    }
    if (d.startsWith("expect")) throw fail(j, `invalid expect line ${JSON.stringify(d)}`);
    const num = parseScriptNumber(d);
    if (num !== undefined) {
      expectScalar = num;
      continue;
    }
    expectScalar = undefined;
    let sd: SeriesDesc;
    try {
      sd = parseSeriesLine(d);
    } catch (e) {
      throw fail(j, e instanceof Error ? e.message : String(e));
    }
    if (instant && expectRangeVector === undefined && sd.values.length > 1) {
      throw fail(j, "expecting multiple values in instant evaluation not allowed");
    }
    const key = JSON.stringify(sd.labels);
    if (seen.has(key)) throw fail(j, "duplicate expected series");
    seen.add(key);
    expected.push({ line: j + 1, labels: sd.labels, values: sd.values, pos: expected.length + 1 });
  }
  const failExpected = expectations.some((e) => e.kind === "fail");
  const ordered = expectations.some((e) => e.kind === "ordered");
  return {
    cmd: {
      kind: "eval",
      line: i + 1,
      query,
      instant,
      at,
      start,
      end,
      step,
      expectations,
      fail: failExpected,
      ordered,
      expectScalar,
      expectString,
      expectRangeVector,
      expected,
      expectsHistogram: expected.some((s) => s.values.some((v) => v.histogram !== undefined)),
    },
    last: j,
  };
}
