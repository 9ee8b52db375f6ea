/**
 * Float parsing and formatting shared by the parsers and writers.
 * The stale marker (STALE_NAN, isStaleNaN) is @strata/core's; writers detect it by its bits.
 */
export { STALE_NAN, STALE_NAN_BITS, isStaleNaN } from "@strata/core";

const scratchF64 = new Float64Array(1);
const scratchU32 = new Uint32Array(scratchF64.buffer);
// Typed arrays use the platform byte order; every supported platform is little-endian.
const LO = 0;
const HI = 1;


/** The 64 bits of a double, for bit-exact comparisons in tests and round trips. */
export function float64Bits(v: number): bigint {
  scratchF64[0] = v;
  return (BigInt(scratchU32[HI]!) << 32n) | BigInt(scratchU32[LO]!);
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses a metric value: decimal with optional exponent, `NaN`, `Inf`/`+Inf`/`-Inf`/
 * `Infinity` (any case). Returns undefined when `s` is not a number. Like Prometheus' text
 * parser (and unlike Go's ParseFloat) hexadecimal floats and `_` digit separators are rejected.
 */
export function parseFloatStrict(s: string): number | undefined {
  if (s.length === 0) return undefined;
  if (DECIMAL.test(s)) return Number(s);
  switch (s.toLowerCase()) {
    case "nan":
      return NaN;
    case "inf":
    case "+inf":
    case "infinity":
    case "+infinity":
      return Infinity;
    case "-inf":
    case "-infinity":
      return -Infinity;
    default:
      return undefined;
  }
}

/**
 * Shortest decimal that parses back to exactly `v` (JavaScript's Number→String is the
 * shortest round-trip repr), for finite values only. Used in JSON lines where `1e21` and
 * `1.5e-7` are valid JSON numbers.
 */
export function formatShortest(v: number): string {
  return String(v);
}

/**
 * Formats a finite or special value as Go's strconv.FormatFloat(v, 'g', -1, 64) does, which
 * is how Prometheus writes sample values in the text exposition format: shortest digits,
 * exponent form when the decimal exponent is < -4 or >= 6 (Go's rule for shortest 'g'), the
 * exponent with a sign and at least two digits (`1e+06`, `1.5e-07`). `NaN`, `+Inf`, `-Inf`.
 */
export function formatPromFloat(v: number): string {
  if (v !== v) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const e = v.toExponential(); // shortest digits: "d.ddde±x"
  const ePos = e.indexOf("e");
  const exp = Number(e.slice(ePos + 1));
  if (exp < -4 || exp >= 6) {
    const mant = e.slice(0, ePos);
    const absExp = Math.abs(exp);
    return `${mant}e${exp < 0 ? "-" : "+"}${absExp < 10 ? "0" : ""}${absExp}`;
  }
  // In this range JavaScript's own formatting is plain decimal with the same digits.
  return String(v);
}
