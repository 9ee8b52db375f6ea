import { BadDataError, parseDuration, parseTimestamp, type LabelMatcher } from "@strata/core";
import { parseMetricSelector } from "@strata/promql";

/** The largest time a JavaScript Date holds (±100,000,000 days around 1970), in ms. */
const MAX_TIME_MS = 8.64e15;

/**
 * Request parameters as the Prometheus API takes them: from the URL query and, for POST with
 * `application/x-www-form-urlencoded`, from the body — merged, URL first.
 */
export class Params {
  private constructor(private readonly p: URLSearchParams) {}

  /**
   * The URL's query parameters, then the form body's (an `application/x-www-form-urlencoded`
   * POST body, as the service app's content-type parser gives it).
   */
  static from(url: URL, body: URLSearchParams | undefined): Params {
    const merged = new URLSearchParams(url.search);
    if (body !== undefined) for (const [k, v] of body) merged.append(k, v);
    return new Params(merged);
  }

  static of(init: Record<string, string | string[]>): Params {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(init)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
    return new Params(p);
  }

  get(name: string): string | undefined {
    const v = this.p.get(name);
    return v === null || v === "" ? undefined : v;
  }

  getAll(name: string): string[] {
    return this.p.getAll(name).filter((v) => v !== "");
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    return v === "1" || v === "true";
  }

  required(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw new BadDataError(`missing required parameter ${JSON.stringify(name)}`);
    return v;
  }

  /** A timestamp parameter in ms (unix seconds, RFC3339, VictoriaMetrics forms). */
  time(name: string, def: number, now: number): number {
    const v = this.get(name);
    if (v === undefined) return def;
    let ms: number;
    try {
      // Whole ms, as Prometheus' parseTime rounds: "1.001" is 1001, not 1000.9999999999999.
      ms = Math.round(parseTimestamp(v, now));
    } catch (err) {
      throw new BadDataError(`invalid parameter ${JSON.stringify(name)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!(Math.abs(ms) <= MAX_TIME_MS)) {
      throw new BadDataError(`invalid parameter ${JSON.stringify(name)}: ${JSON.stringify(v)} is outside the supported time range (years -271821 to 275760)`);
    }
    return ms;
  }

  /** A duration parameter in ms (`15`, `15s`, `1m30s`). */
  duration(name: string, def: number): number {
    const v = this.get(name);
    if (v === undefined) return def;
    try {
      return parseDuration(v);
    } catch (err) {
      throw new BadDataError(`invalid parameter ${JSON.stringify(name)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  int(name: string, def: number): number {
    const v = this.get(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
      throw new BadDataError(`invalid parameter ${JSON.stringify(name)}: want a non-negative integer up to 2^53-1, got ${JSON.stringify(v)}`);
    }
    return Number(v);
  }

  /** `match[]` selectors parsed into matcher sets (each must be a series selector). */
  matcherSets(name = "match[]"): LabelMatcher[][] {
    return this.getAll(name).map((s) => parseSelector(s, name));
  }
}

/** Parses a series selector such as `up{job="a"}` or `{__name__=~"x.*"}` into its matchers. */
export function parseSelector(s: string, param = "match[]"): LabelMatcher[] {
  try {
    return parseMetricSelector(s);
  } catch (err) {
    throw new BadDataError(`invalid parameter ${JSON.stringify(param)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
