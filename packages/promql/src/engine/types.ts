import { compareStrings, STALE_NAN_HI, STALE_NAN_HI_QUIET, STALE_NAN_LO } from "@strata/core";
import type { Label, Labels } from "@strata/core";

/**
 * An instant vector evaluated at every step of a context: one entry per output series with a
 * value per step. `present[k]` says whether the series has a sample at step k (values of absent
 * steps are meaningless). Labels still carry `__name__` when `dropName` is set: Prometheus 3
 * removes names only at the end of the query (delayed name removal).
 */
export interface VSeries {
  readonly labels: Labels;
  dropName: boolean;
  readonly values: Float64Array;
  readonly present: Uint8Array;
}

export interface VectorValue {
  readonly kind: "vector";
  readonly series: VSeries[];
}

/** A scalar at every step. */
export interface ScalarValue {
  readonly kind: "scalar";
  readonly values: Float64Array;
}

export interface StringValue {
  readonly kind: "string";
  readonly value: string;
}

/** One series of raw samples (stale markers removed), as range functions see it. */
export interface MSeries {
  readonly labels: Labels;
  readonly dropName: boolean;
  readonly ts: Float64Array;
  readonly vs: Float64Array;
  /** Start timestamps per sample (ms, 0 = unknown); only for selected data (subqueries drop them). */
  readonly st?: Float64Array | undefined;
}

/**
 * A range-vector argument: per step k the window is (ends[k] - range, ends[k]] over each
 * series' samples.
 */
export interface RangeArg {
  readonly series: MSeries[];
  readonly ends: Float64Array;
  readonly range: number;
  /** Prometheus 3 extended range selectors (`anchored`, `smoothed`); "" for plain ones. */
  readonly extended: "" | "anchored" | "smoothed";
}

export type Value = VectorValue | ScalarValue | StringValue;

/** The evaluation times of one (sub)query. */
export interface StepCtx {
  readonly times: Float64Array;
  readonly start: number;
  readonly end: number;
  readonly interval: number;
}

export function stepCount(ctx: StepCtx): number {
  return ctx.times.length;
}

/** Map key of a label set (injective). */
export function labelsKey(labels: Labels): string {
  let k = "";
  for (const l of labels) k += `${l.name}\u0000${l.value}\u0001`;
  return k;
}

const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** Go's labels.Labels.String(): `{a="b", c="d"}` (all labels, __name__ included). */
export function labelsString(labels: Labels): string {
  const parts: string[] = [];
  for (const l of labels) parts.push(`${LEGACY_LABEL.test(l.name) ? l.name : goQuote(l.name)}=${goQuote(l.value)}`);
  return `{${parts.join(", ")}}`;
}

export function getLabel(labels: Labels, name: string): string {
  for (const l of labels) if (l.name === name) return l.value;
  return "";
}

export function dropLabel(labels: Labels, name: string): Labels {
  let i = -1;
  for (let j = 0; j < labels.length; j++) if (labels[j]!.name === name) i = j;
  if (i < 0) return labels;
  return labels.slice(0, i).concat(labels.slice(i + 1));
}

/** Sets (or with "" removes) a label, keeping canonical order. */
export function setLabel(labels: Labels, name: string, value: string): Labels {
  const out: Label[] = [];
  let placed = value === "";
  for (const l of labels) {
    if (l.name === name) continue;
    if (!placed && compareStrings(name, l.name) < 0) {
      out.push({ name, value });
      placed = true;
    }
    out.push(l);
  }
  if (!placed) out.push({ name, value });
  return out;
}

/** A 32-bit view of a Float64Array, to test NaN payloads (stale markers) bit-exactly. */
export function bitsView(vs: Float64Array): Uint32Array {
  return new Uint32Array(vs.buffer, vs.byteOffset, vs.length * 2);
}

/**
 * True when value i is a stale marker (little-endian word order): 0x7ff0000000000002 or its
 * quieted form 0x7ff8000000000002 (V8 sets the quiet bit when a signalling NaN passes through a
 * plain JS array; nothing else produces that payload).
 */
export function isStaleAt(bits: Uint32Array, i: number): boolean {
  if (bits[2 * i] !== STALE_NAN_LO) return false;
  const hi = bits[2 * i + 1];
  return hi === STALE_NAN_HI || hi === STALE_NAN_HI_QUIET;
}

export { STALE_NAN } from "@strata/core";

/** Neumaier-compensated summation step, as Prometheus' kahanSumInc. Returns via `out`. */
export function kahanInc(inc: number, sum: number, c: number, out: Float64Array): void {
  const t = sum + inc;
  if (t === Infinity || t === -Infinity) c = 0;
  else if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
  else c += inc - t + sum;
  out[0] = t;
  out[1] = c;
}

/**
 * Removes the metric name, and with it the type and unit metadata labels (`__type__`,
 * `__unit__`) as Prometheus 3 does when an operation changes a metric's meaning.
 */
export function dropMetricName(labels: Labels): Labels {
  let found = false;
  for (const l of labels) if (l.name === "__name__" || l.name === "__type__" || l.name === "__unit__") found = true;
  if (!found) return labels;
  return labels.filter((l) => l.name !== "__name__" && l.name !== "__type__" && l.name !== "__unit__");
}
