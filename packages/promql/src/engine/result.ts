import type { Labels } from "@strata/core";

/** One series of a matrix result: samples in time order (ms timestamps). */
export interface MatrixSeries {
  readonly labels: Labels;
  readonly timestamps: Float64Array;
  readonly values: Float64Array;
}

/** What a query read: samples selected from the querier and samples run through functions. */
export interface QueryStats {
  /** Samples returned by the querier for all selectors (Prometheus' "samples queried"). */
  readonly samplesSelected: number;
  /** Samples visited by range functions, summed over every window (Prometheus' totalQueryableSamples for ranges). */
  readonly samplesScanned: number;
  /** Series returned by the querier. */
  readonly seriesSelected: number;
  /** Bytes the query was estimated to need before evaluation (what it was admitted with). */
  readonly memoryEstimated: number;
  /** Bytes counted while it ran: selected samples plus every evaluated node's output. */
  readonly memoryCharged: number;
}

interface Annotated {
  /** "PromQL warning: … (line:col)" strings, as Prometheus' API renders them. */
  readonly warnings: readonly string[];
  /** "PromQL info: … (line:col)" strings. */
  readonly infos: readonly string[];
  readonly stats?: QueryStats;
}

export interface ScalarResult extends Annotated {
  readonly type: "scalar";
  readonly timestamp: number;
  readonly value: number;
}

export interface StringResult extends Annotated {
  readonly type: "string";
  readonly timestamp: number;
  readonly value: string;
}

/** An instant vector: `labels[i]` has `values[i]`, all at `timestamp`. */
export interface VectorResult extends Annotated {
  readonly type: "vector";
  readonly timestamp: number;
  readonly labels: readonly Labels[];
  readonly values: Float64Array;
}

export interface MatrixResult extends Annotated {
  readonly type: "matrix";
  readonly series: readonly MatrixSeries[];
}

/** The outcome of a query: what Prometheus' API puts under `data` (plus annotations). */
export type QueryResult = ScalarResult | StringResult | VectorResult | MatrixResult;

/**
 * A float as Prometheus' JSON API writes it: "NaN", "+Inf", "-Inf", else the shortest decimal
 * that round-trips, never in exponent form (Go's strconv.FormatFloat(v, 'f', -1, 64)).
 */
export function formatPromValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const s = String(v);
  const e = s.indexOf("e");
  if (e < 0) return s;
  // Expand d.ddde±x (the shortest round-trip digits from JS) into plain decimal form.
  let mant = s.slice(0, e);
  const exp = Number(s.slice(e + 1));
  let sign = "";
  if (mant.startsWith("-")) {
    sign = "-";
    mant = mant.slice(1);
  }
  const dot = mant.indexOf(".");
  const digits = dot < 0 ? mant : mant.slice(0, dot) + mant.slice(dot + 1);
  const intLen = (dot < 0 ? mant.length : dot) + exp;
  if (intLen <= 0) return `${sign}0.${"0".repeat(-intLen)}${digits}`;
  if (intLen >= digits.length) return `${sign}${digits}${"0".repeat(intLen - digits.length)}`;
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}
