import { goQuote } from "@strata/promql";

/**
 * Go's number formatting (strconv.FormatFloat and the fmt verbs templates use), so rendered
 * annotations match Prometheus byte for byte: `{{ $value }}` of 1e6 is "1e+06", `%.4g` rounds
 * halves to even on the exact binary value, exponents have at least two digits.
 */

/** A Go `int` in a template (integer constants, len, range indexes); plain numbers are float64. */
export class GoInt {
  constructor(readonly v: number) {}
}

interface Digits {
  /** Significant decimal digits without trailing zeros ("" for zero). */
  d: string;
  /** Decimal point position: value = 0.d × 10^dp. */
  dp: number;
}

/** The exact digits of |v| (finite, non-zero), as many as JS gives (100 significant). */
function exactDigits(v: number): Digits {
  const s = Math.abs(v).toExponential(99);
  const [mant, exp] = s.split("e") as [string, string];
  const d = mant.replace(".", "").replace(/0+$/, "");
  return { d, dp: Number(exp) + 1 };
}

function shortestDigits(v: number): Digits {
  const s = Math.abs(v).toExponential();
  const [mant, exp] = s.split("e") as [string, string];
  const d = mant.replace(".", "").replace(/0+$/, "");
  return { d, dp: Number(exp) + 1 };
}

/** Rounds to `nd` digits, half to even on exact ties (Go's decimal.Round). */
function roundDigits(x: Digits, nd: number): Digits {
  if (nd < 0) return { d: "", dp: 0 };
  if (nd >= x.d.length) return x;
  const next = x.d.charCodeAt(nd) - 48;
  let up = next > 5;
  if (next === 5) {
    const tie = nd + 1 === x.d.length;
    up = !tie || (nd > 0 && (x.d.charCodeAt(nd - 1) - 48) % 2 === 1);
  }
  let digits = x.d.slice(0, nd).split("").map(Number);
  let dp = x.dp;
  if (up) {
    let i = digits.length - 1;
    while (i >= 0 && digits[i] === 9) {
      digits[i] = 0;
      i--;
    }
    if (i < 0) {
      digits = [1, ...digits];
      dp++;
    } else digits[i]!++;
  }
  return { d: digits.join("").replace(/0+$/, ""), dp };
}

function digitAt(x: Digits, i: number): string {
  return i >= 0 && i < x.d.length ? x.d[i]! : "0";
}

function fmtE(x: Digits, prec: number, e: string): string {
  let out = x.d === "" ? "0" : x.d[0]!;
  if (prec > 0) {
    out += ".";
    for (let i = 1; i <= prec; i++) out += digitAt(x, i);
  }
  const exp = x.d === "" ? 0 : x.dp - 1;
  const a = Math.abs(exp);
  return `${out}${e}${exp < 0 ? "-" : "+"}${a < 10 ? "0" : ""}${a}`;
}

function fmtF(x: Digits, prec: number): string {
  let out = "";
  if (x.dp > 0) for (let i = 0; i < x.dp; i++) out += digitAt(x, i);
  else out = "0";
  if (prec > 0) {
    out += ".";
    for (let i = 0; i < prec; i++) out += digitAt(x, x.dp + i);
  }
  return out;
}

/** strconv.FormatFloat(v, fmt, prec, 64) for fmt ∈ e, f, g (prec -1: shortest). */
export function formatFloat(v: number, fmt: "e" | "f" | "g" | "E" | "G", prec: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const neg = v < 0 || Object.is(v, -0);
  const sign = neg ? "-" : "";
  const zero: Digits = { d: "", dp: 0 };
  const shortest = prec < 0;
  const lower = fmt.toLowerCase();
  const eChar = fmt === "E" || fmt === "G" ? "E" : "e";
  let x: Digits;
  if (v === 0) x = zero;
  else if (shortest) x = shortestDigits(v);
  else {
    const ex = exactDigits(v);
    if (lower === "e") x = roundDigits(ex, prec + 1);
    else if (lower === "f") x = roundDigits(ex, ex.dp + prec);
    else x = roundDigits(ex, prec === 0 ? 1 : prec);
  }
  if (lower === "e") return sign + fmtE(x, shortest ? Math.max(x.d.length - 1, 0) : prec, eChar);
  if (lower === "f") return sign + fmtF(x, shortest ? Math.max(x.d.length - x.dp, 0) : prec);
  let p = shortest ? x.d.length : prec === 0 ? 1 : prec;
  let eprec = p;
  if (eprec > x.d.length && x.d.length >= x.dp) eprec = x.d.length;
  if (shortest) eprec = 6;
  const exp = x.d === "" ? -1 : x.dp - 1;
  if (x.d !== "" && (exp < -4 || exp >= eprec)) {
    if (p > x.d.length) p = x.d.length;
    return sign + fmtE(x, Math.max(p - 1, 0), eChar);
  }
  if (p > x.dp) p = x.d.length;
  return sign + fmtF(x, Math.max(p - x.dp, 0));
}

/** What fmt.Sprint prints for a template value. */
export function sprint(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatFloat(v, "g", -1);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v instanceof GoInt) return String(v.v);
  if (Array.isArray(v)) return `[${v.map(sprint).join(" ")}]`;
  if (v instanceof Map) {
    const keys = [...(v as Map<string, unknown>).keys()].sort();
    return `map[${keys.map((k) => `${k}:${sprint((v as Map<string, unknown>).get(k))}`).join(" ")}]`;
  }
  if (typeof v === "object" && "labels" in v && "value" in v) {
    const s = v as { labels: Map<string, string>; value: number };
    return `{${sprint(s.labels)} ${sprint(s.value)}}`;
  }
  return String(v);
}

/** The Go type a template value has, as Go's error messages name it. */
export function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "string") return "string";
  if (typeof v === "number") return "float64";
  if (typeof v === "boolean") return "bool";
  if (v instanceof GoInt) return "int";
  if (v instanceof Map) return "map[string]string";
  if (Array.isArray(v)) return "template.queryResult";
  return "*template.sample";
}

function pad(s: string, width: number, left: boolean, zero: boolean): string {
  if (s.length >= width) return s;
  if (left) return s + " ".repeat(width - s.length);
  if (zero) {
    const signed = /^[+-]/.test(s);
    const body = signed ? s.slice(1) : s;
    return (signed ? s[0]! : "") + "0".repeat(width - s.length) + body;
  }
  return " ".repeat(width - s.length) + s;
}

/** fmt.Sprintf over the verbs rule templates use: %s %v %d %f %e %g %q %x %X %t %c %%. */
export function sprintf(format: string, args: readonly unknown[]): string {
  let out = "";
  let ai = 0;
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== "%") {
      out += c;
      continue;
    }
    let j = i + 1;
    let left = false;
    let plus = false;
    let zero = false;
    let space = false;
    let sharp = false;
    for (; j < format.length; j++) {
      const f = format[j];
      if (f === "-") left = true;
      else if (f === "+") plus = true;
      else if (f === "0") zero = true;
      else if (f === " ") space = true;
      else if (f === "#") sharp = true;
      else break;
    }
    let width = -1;
    const wm = /^\d+/.exec(format.slice(j));
    if (wm) {
      width = Number(wm[0]);
      j += wm[0].length;
    }
    let prec = -1;
    if (format[j] === ".") {
      j++;
      const pm = /^\d*/.exec(format.slice(j))!;
      prec = pm[0] === "" ? 0 : Number(pm[0]);
      j += pm[0].length;
    }
    const verb = format[j];
    i = j;
    if (verb === undefined) {
      out += "%!(NOVERB)";
      break;
    }
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (ai >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[ai++];
    const bad = (): string => `%!${verb}(${goTypeName(a)}=${sprint(a)})`;
    let s: string;
    const signNum = (t: string): string => (t.startsWith("-") ? t : plus ? `+${t}` : space ? ` ${t}` : t);
    switch (verb) {
      case "v":
      case "s":
        if (verb === "s" && typeof a !== "string") {
          s = typeof a === "number" ? bad() : sprint(a);
        } else s = typeof a === "number" ? signNum(formatFloat(a, "g", prec)) : sprint(a);
        if (verb === "s" && typeof a === "string" && prec >= 0) s = [...s].slice(0, prec).join("");
        break;
      case "d":
        s = a instanceof GoInt ? signNum(String(a.v)) : bad();
        break;
      case "f":
      case "F":
      case "e":
      case "E":
      case "g":
      case "G": {
        const n = typeof a === "number" ? a : undefined;
        if (n === undefined) {
          s = bad();
          break;
        }
        const f = verb === "F" ? "f" : verb;
        s = signNum(formatFloat(n, f, prec < 0 && (f === "f" || f === "e" || f === "E") ? 6 : prec));
        if (sharp) s = s.includes(".") ? s : `${s}.`;
        break;
      }
      case "q":
        s = typeof a === "string" ? goQuote(a) : bad();
        break;
      case "x":
      case "X": {
        let t: string;
        if (a instanceof GoInt) t = a.v.toString(16);
        else if (typeof a === "string") t = Buffer.from(a, "utf8").toString("hex");
        else {
          s = bad();
          break;
        }
        s = verb === "X" ? t.toUpperCase() : t;
        break;
      }
      case "t":
        s = typeof a === "boolean" ? String(a) : bad();
        break;
      case "c":
        s = a instanceof GoInt ? String.fromCodePoint(a.v) : bad();
        break;
      default:
        s = bad();
    }
    out += width >= 0 ? pad(s, width, left, zero && !left && verb !== "s" && verb !== "q") : s;
  }
  if (ai < args.length) out += `%!(EXTRA ${args.slice(ai).map((a) => `${goTypeName(a)}=${sprint(a)}`).join(", ")})`;
  return out;
}
