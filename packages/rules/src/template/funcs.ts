import { parseDuration, RE2JS } from "@strata/core";
import { formatFloat, GoInt, goTypeName, sprint, sprintf } from "./gofmt.js";

/**
 * The functions a rule template may call: Go's text/template builtins and Prometheus'
 * template functions (prometheus/template/template.go), with the same output.
 */

/** One element of a `query` result, as Prometheus' templates see it (`.Labels`, `.Value`). */
export interface Sample {
  readonly labels: Map<string, string>;
  readonly value: number;
}

/** A Go time.Time (from toTime), printed like Go's Time.String in UTC. */
export class GoTime {
  constructor(readonly ms: number, readonly nanos: bigint) {}
}

/** Runs a PromQL instant query at the evaluation time for `query` (rules: through the datasource). */
export type QueryFn = (query: string) => Promise<readonly Sample[]>;

export interface FuncContext {
  readonly query: QueryFn | undefined;
  readonly externalURL: string;
}

export type Func = (args: readonly unknown[], ctx: FuncContext) => unknown;

export class ExecError extends Error {
  override readonly name = "ExecError";
}

function want(name: string, args: readonly unknown[], n: number): void {
  if (args.length !== n) throw new ExecError(`wrong number of args for ${name}: want ${n} got ${args.length}`);
}

function str(name: string, v: unknown): string {
  if (typeof v !== "string") throw new ExecError(`wrong type for value; expected string; got ${typeName(v)} (in ${name})`);
  return v;
}

export function typeName(v: unknown): string {
  return v instanceof GoTime ? "time.Time" : goTypeName(v);
}

function isSample(v: unknown): v is Sample {
  return typeof v === "object" && v !== null && !(v instanceof Map) && !Array.isArray(v) && "labels" in v && "value" in v;
}

/** Prometheus' convertToFloat. */
function toFloat(v: unknown): number {
  if (typeof v === "number") return v;
  if (v instanceof GoInt) return v.v;
  if (typeof v === "string") {
    const t = v.trim();
    const n = /^[+-]?(inf|infinity)$/i.test(t) ? (t.startsWith("-") ? -Infinity : Infinity) : /^nan$/i.test(t) ? NaN : Number(t);
    if (t === "" || (Number.isNaN(n) && !/^nan$/i.test(t))) throw new ExecError(`strconv.ParseFloat: parsing ${JSON.stringify(v)}: invalid syntax`);
    return n;
  }
  if (v instanceof GoTime) return v.ms / 1000;
  throw new ExecError(`can't convert ${typeName(v)} to float`);
}

const g4 = (v: number): string => formatFloat(v, "g", 4);

export function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return g4(v);
  if (Math.abs(v) >= 1) {
    let prefix = "";
    for (const p of ["k", "M", "G", "T", "P", "E", "Z", "Y"]) {
      if (Math.abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return g4(v) + prefix;
  }
  let prefix = "";
  for (const p of ["m", "u", "n", "p", "f", "a", "z", "y"]) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return g4(v) + prefix;
}

export function humanize1024(v: number): string {
  if (Math.abs(v) <= 1 || !Number.isFinite(v)) return g4(v);
  let prefix = "";
  for (const p of ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]) {
    if (Math.abs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return g4(v) + prefix;
}

export function humanizeDuration(v: number): string {
  if (!Number.isFinite(v)) return g4(v);
  if (v === 0) return `${g4(v)}s`;
  if (Math.abs(v) >= 1) {
    let sign = "";
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    const d = Math.trunc(v);
    const seconds = d % 60;
    const minutes = Math.trunc(d / 60) % 60;
    const hours = Math.trunc(d / 3600) % 24;
    const days = Math.trunc(d / 86400);
    if (days !== 0) return `${sign}${days}d ${hours}h ${minutes}m ${seconds}s`;
    if (hours !== 0) return `${sign}${hours}h ${minutes}m ${seconds}s`;
    if (minutes !== 0) return `${sign}${minutes}m ${seconds}s`;
    return `${sign}${g4(v)}s`;
  }
  let prefix = "";
  for (const p of ["m", "u", "n", "p", "f", "a", "z", "y"]) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return `${g4(v)}${prefix}s`;
}

/** Go's Time.String() of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`. */
export function goTimeString(t: GoTime): string {
  const d = new Date(t.ms);
  const p2 = (n: number): string => String(n).padStart(2, "0");
  const date = `${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}`;
  const frac = t.nanos === 0n ? "" : `.${t.nanos.toString().padStart(9, "0").replace(/0+$/, "")}`;
  return `${date}${frac} +0000 UTC`;
}

/** Prometheus' floatToTime: seconds → time, NaN/Inf rejected. */
function floatToTime(v: number): GoTime | undefined {
  if (!Number.isFinite(v)) return undefined;
  if (v > 9.2e9 || v < -9.2e9) throw new ExecError(`${formatFloat(v, "g", -1)} cannot be represented as a nanoseconds timestamp since it overflows int64`);
  const sec = Math.floor(v);
  const nanos = BigInt(Math.round((v - sec) * 1e9));
  return new GoTime(sec * 1000 + Number(nanos / 1_000_000n), nanos);
}

/** Go's url.QueryEscape. */
function queryEscape(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === " ") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function htmlEscape(s: string): string {
  return s.replace(/[&'<>"\0]/g, (c) => ({ "&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\0": "\uFFFD" })[c]!);
}

const regexCache = new Map<string, RE2JS>();
function compileRegex(re: string): RE2JS {
  let r = regexCache.get(re);
  if (r === undefined) {
    try {
      r = RE2JS.compile(re);
    } catch (err) {
      throw new ExecError(`error parsing regexp: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(re, r);
  }
  return r;
}

/** Go's regexp.Expand template syntax ($1, ${1}, $name, $$) on one match. */
function expandGo(repl: string, groups: (string | null)[], names: Map<string, number>): string {
  let out = "";
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i]!;
    if (c !== "$" || i + 1 >= repl.length) {
      out += c;
      continue;
    }
    if (repl[i + 1] === "$") {
      out += "$";
      i++;
      continue;
    }
    let name: string;
    let end: number;
    if (repl[i + 1] === "{") {
      const close = repl.indexOf("}", i + 2);
      const m = close < 0 ? null : /^[A-Za-z0-9_]+$/.exec(repl.slice(i + 2, close));
      if (m === null) {
        out += c;
        continue;
      }
      name = m[0];
      end = close + 1;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(repl.slice(i + 1));
      if (m === null) {
        out += c;
        continue;
      }
      name = m[0];
      end = i + 1 + name.length;
    }
    const idx = /^\d+$/.test(name) ? Number(name) : names.get(name) ?? -1;
    out += idx >= 0 && idx < groups.length ? groups[idx] ?? "" : "";
    i = end - 1;
  }
  return out;
}

function reReplaceAll(pattern: string, repl: string, text: string): string {
  const re = compileRegex(pattern);
  const m = re.matcher(text);
  const names = new Map<string, number>(Object.entries(re.namedGroups() as Record<string, number>));
  let out = "";
  let last = 0;
  let searchFrom = 0;
  while (searchFrom <= text.length && m.find(searchFrom)) {
    const start = m.start();
    const end = m.end();
    const groups: (string | null)[] = [];
    for (let g = 0; g <= m.groupCount(); g++) groups.push(m.group(g));
    out += text.slice(last, start) + expandGo(repl, groups, names);
    last = end;
    searchFrom = end === start ? end + 1 : end;
  }
  return out + text.slice(last);
}

/** strings.Title: upper-cases the first letter of each word. */
function title(s: string): string {
  let prevLetter = false;
  let out = "";
  for (const ch of s) {
    const isWordChar = /[\p{L}\p{N}_']/u.test(ch);
    out += !prevLetter && isWordChar ? ch.toUpperCase() : ch;
    prevLetter = isWordChar;
  }
  return out;
}

/** Go's net.SplitHostPort, or undefined when `hp` is not host:port. */
function splitHostPort(hp: string): { host: string; port: string } | undefined {
  const m = /^\[([^\]]*)\]:([^:]*)$/.exec(hp) ?? /^([^:[\]]*):([^:]*)$/.exec(hp);
  return m ? { host: m[1]!, port: m[2]! } : undefined;
}

function isIP(h: string): boolean {
  return /^(\d{1,3}\.){3}\d{1,3}$/.test(h) || (h.includes(":") && /^[0-9a-fA-F:.]+$/.test(h));
}

function truth(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return v !== "";
  if (v instanceof GoInt) return v.v !== 0;
  if (v instanceof Map) return v.size > 0;
  if (Array.isArray(v)) return v.length > 0;
  return true;
}

type BasicKind = "bool" | "int" | "float" | "string";

function basicKind(v: unknown): BasicKind | undefined {
  if (typeof v === "boolean") return "bool";
  if (v instanceof GoInt) return "int";
  if (typeof v === "number") return "float";
  if (typeof v === "string") return "string";
  return undefined;
}

function prim(v: unknown): string | number | boolean {
  return v instanceof GoInt ? v.v : (v as string | number | boolean);
}

function eq(args: readonly unknown[]): boolean {
  if (args.length < 2) throw new ExecError("missing argument for comparison");
  const k1 = basicKind(args[0]);
  for (const b of args.slice(1)) {
    const k2 = basicKind(b);
    if (k1 === undefined || k2 === undefined) {
      if (args[0] === null && b === null) return true;
      throw new ExecError("incompatible types for comparison");
    }
    if (k1 !== k2) throw new ExecError("incompatible types for comparison");
    if (prim(args[0]) === prim(b)) return true;
  }
  return false;
}

function lt(name: string, args: readonly unknown[]): boolean {
  want(name, args, 2);
  const [a, b] = args;
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 === undefined || k2 === undefined || k1 === "bool" || k2 === "bool") throw new ExecError("invalid type for comparison");
  if (k1 !== k2) throw new ExecError("incompatible types for comparison");
  return (prim(a) as number | string) < (prim(b) as number | string);
}

export const FUNCS: Readonly<Record<string, Func>> = {
  // Go text/template builtins.
  and: (args) => {
    for (const a of args) if (!truth(a)) return a;
    return args[args.length - 1];
  },
  or: (args) => {
    for (const a of args) if (truth(a)) return a;
    return args[args.length - 1];
  },
  not: (args) => {
    want("not", args, 1);
    return !truth(args[0]);
  },
  eq: (args) => eq(args),
  ne: (args) => {
    want("ne", args, 2);
    return !eq(args);
  },
  lt: (args) => lt("lt", args),
  le: (args) => lt("le", args) || eq(args),
  gt: (args) => !(lt("gt", args) || eq(args)),
  ge: (args) => !lt("ge", args),
  len: (args) => {
    want("len", args, 1);
    const v = args[0];
    if (typeof v === "string") return new GoInt(Buffer.byteLength(v, "utf8"));
    if (Array.isArray(v)) return new GoInt(v.length);
    if (v instanceof Map) return new GoInt(v.size);
    throw new ExecError(`len of type ${typeName(v)}`);
  },
  index: (args) => {
    let v = args[0];
    for (const k of args.slice(1)) {
      if (v instanceof Map) v = (v as Map<string, string>).get(str("index", k)) ?? "";
      else if (Array.isArray(v)) {
        if (!(k instanceof GoInt)) throw new ExecError(`cannot index slice/array with type ${typeName(k)}`);
        if (k.v < 0 || k.v >= v.length) throw new ExecError(`index out of range: ${k.v}`);
        v = v[k.v];
      } else throw new ExecError(`can't index item of type ${typeName(v)}`);
    }
    return v;
  },
  print: (args) => {
    let out = "";
    for (let i = 0; i < args.length; i++) {
      if (i > 0 && typeof args[i] !== "string" && typeof args[i - 1] !== "string") out += " ";
      out += sprint(args[i]);
    }
    return out;
  },
  println: (args) => `${args.map(sprint).join(" ")}\n`,
  printf: (args) => sprintf(str("printf", args[0]), args.slice(1)),
  html: (args) => htmlEscape(args.map(sprint).join("")),
  urlquery: (args) => queryEscape(args.map(sprint).join("")),

  // Prometheus' template functions.
  query: async (args, ctx) => {
    want("query", args, 1);
    if (ctx.query === undefined) throw new ExecError("query is not available here");
    return [...(await ctx.query(str("query", args[0])))];
  },
  first: (args) => {
    want("first", args, 1);
    const v = args[0];
    if (!Array.isArray(v)) throw new ExecError(`wrong type for value; expected template.queryResult; got ${typeName(v)}`);
    if (v.length === 0) throw new ExecError("first() called on vector with no elements");
    return v[0];
  },
  label: (args) => {
    want("label", args, 2);
    const s = args[1];
    if (!isSample(s)) throw new ExecError(`wrong type for value; expected *template.sample; got ${typeName(s)}`);
    return s.labels.get(str("label", args[0])) ?? "";
  },
  value: (args) => {
    want("value", args, 1);
    const s = args[0];
    if (!isSample(s)) throw new ExecError(`wrong type for value; expected *template.sample; got ${typeName(s)}`);
    return s.value;
  },
  strvalue: (args) => {
    want("strvalue", args, 1);
    const s = args[0];
    if (!isSample(s)) throw new ExecError(`wrong type for value; expected *template.sample; got ${typeName(s)}`);
    return s.labels.get("__value__") ?? "";
  },
  sortByLabel: (args) => {
    want("sortByLabel", args, 2);
    const name = str("sortByLabel", args[0]);
    const v = args[1];
    if (!Array.isArray(v)) throw new ExecError(`wrong type for value; expected template.queryResult; got ${typeName(v)}`);
    return [...(v as Sample[])].sort((a, b) => {
      const x = a.labels.get(name) ?? "";
      const y = b.labels.get(name) ?? "";
      return x < y ? -1 : x > y ? 1 : 0;
    });
  },
  reReplaceAll: (args) => {
    want("reReplaceAll", args, 3);
    return reReplaceAll(str("reReplaceAll", args[0]), str("reReplaceAll", args[1]), str("reReplaceAll", args[2]));
  },
  match: (args) => {
    want("match", args, 2);
    return compileRegex(str("match", args[0])).matcher(str("match", args[1])).find();
  },
  safeHtml: (args) => {
    want("safeHtml", args, 1);
    return str("safeHtml", args[0]);
  },
  title: (args) => {
    want("title", args, 1);
    return title(str("title", args[0]));
  },
  toUpper: (args) => {
    want("toUpper", args, 1);
    return str("toUpper", args[0]).toUpperCase();
  },
  toLower: (args) => {
    want("toLower", args, 1);
    return str("toLower", args[0]).toLowerCase();
  },
  graphLink: (args) => `/graph?g0.expr=${queryEscape(str("graphLink", args[0]))}&g0.tab=0`,
  tableLink: (args) => `/graph?g0.expr=${queryEscape(str("tableLink", args[0]))}&g0.tab=1`,
  humanize: (args) => {
    want("humanize", args, 1);
    return humanize(toFloat(args[0]));
  },
  humanize1024: (args) => {
    want("humanize1024", args, 1);
    return humanize1024(toFloat(args[0]));
  },
  humanizeDuration: (args) => {
    want("humanizeDuration", args, 1);
    return humanizeDuration(toFloat(args[0]));
  },
  humanizePercentage: (args) => {
    want("humanizePercentage", args, 1);
    return `${g4(toFloat(args[0]) * 100)}%`;
  },
  humanizeTimestamp: (args) => {
    want("humanizeTimestamp", args, 1);
    const v = toFloat(args[0]);
    const t = floatToTime(v);
    return t === undefined ? g4(v) : goTimeString(t);
  },
  toTime: (args) => {
    want("toTime", args, 1);
    const v = toFloat(args[0]);
    const t = floatToTime(v);
    if (t === undefined) throw new ExecError(`${formatFloat(v, "g", -1)} is not a valid timestamp: NaN or Inf`);
    return t;
  },
  parseDuration: (args) => {
    want("parseDuration", args, 1);
    try {
      return parseDuration(str("parseDuration", args[0])) / 1000;
    } catch (err) {
      throw new ExecError(err instanceof Error ? err.message : String(err));
    }
  },
  externalURL: (_args, ctx) => ctx.externalURL,
  pathPrefix: (_args, ctx) => {
    try {
      return new URL(ctx.externalURL).pathname.replace(/^\/$/, "");
    } catch {
      return "";
    }
  },
  stripPort: (args) => {
    want("stripPort", args, 1);
    const hp = str("stripPort", args[0]);
    return splitHostPort(hp)?.host ?? hp;
  },
  stripDomain: (args) => {
    want("stripDomain", args, 1);
    const hp = str("stripDomain", args[0]);
    const sp = splitHostPort(hp);
    const host = sp?.host ?? hp;
    if (isIP(host)) return hp;
    const short = host.split(".")[0]!;
    if (sp !== undefined && sp.port !== "") return short.includes(":") ? `[${short}]:${sp.port}` : `${short}:${sp.port}`;
    return short;
  },
};

export { truth };
