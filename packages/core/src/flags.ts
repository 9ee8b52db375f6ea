import { BadDataError } from "./errors.js";
import { parseDuration, formatDuration } from "./duration.js";

/**
 * VictoriaMetrics-style command-line flags: `-name=value`, `--name=value`, `-name value`,
 * booleans as `-name` or `-name=false`, lists by repetition or comma (`-storageNode=a,b` or
 * `-storageNode=a -storageNode=b`), `-help` listing every flag with its default and meaning.
 * An unknown flag is an error that names it.
 */

interface FlagBase<T> {
  readonly description: string;
  readonly default: T;
  /** Parses one occurrence; `prev` is the value so far (for lists). */
  // Method syntax on purpose: parameters are then bivariant, so a Flag<number> is a
  // Flag<unknown> and a spec record can hold flags of every type.
  parse(raw: string, prev: T, name: string): T;
  format(v: T): string;
  readonly typeName: string;
  readonly isBool?: boolean;
  readonly isList?: boolean;
  /** How -help shows the default when it was given as text (e.g. `-retentionPeriod` "1"). */
  readonly defaultText?: string;
}

export type Flag<T> = FlagBase<T>;
export type FlagSpecs = Readonly<Record<string, Flag<unknown>>>;
export type FlagValues<S extends FlagSpecs> = { -readonly [K in keyof S]: S[K] extends Flag<infer V> ? V : never };

function invalid(name: string, raw: string, why: string): BadDataError {
  return new BadDataError(`invalid value ${JSON.stringify(raw)} for flag -${name}: ${why}`, "STRATA_INVALID_FLAG");
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
  ki: 1024,
  mi: 1024 ** 2,
  gi: 1024 ** 3,
  ti: 1024 ** 4,
};

/** Parses `32MiB`, `1.5GB`, `100KB`, `4096` into bytes (VictoriaMetrics units: KB=1000, KiB=1024). */
export function parseBytes(raw: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  const mul = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || mul === undefined) {
    throw new BadDataError(`cannot parse size ${JSON.stringify(raw)}: want a number with an optional unit (KB, MB, GB, KiB, MiB, GiB)`, "STRATA_INVALID_FLAG");
  }
  return Math.round(Number(m[1]) * mul);
}

export function formatBytes(n: number): string {
  for (const [u, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size}${u}`;
  }
  return `${n}`;
}

export const flag = {
  string(def: string, description: string): Flag<string> {
    return { description, default: def, typeName: "string", parse: (raw) => raw, format: (v) => JSON.stringify(v) };
  },
  int(def: number, description: string): Flag<number> {
    return {
      description,
      default: def,
      typeName: "int",
      parse: (raw, _prev, name) => {
        if (!/^[+-]?\d+$/.test(raw.trim())) throw invalid(name, raw, "want an integer");
        const n = Number(raw);
        if (!Number.isSafeInteger(n)) throw invalid(name, raw, "out of range");
        return n;
      },
      format: String,
    };
  },
  float(def: number, description: string): Flag<number> {
    return {
      description,
      default: def,
      typeName: "float",
      parse: (raw, _prev, name) => {
        const n = Number(raw);
        if (raw.trim() === "" || Number.isNaN(n)) throw invalid(name, raw, "want a number");
        return n;
      },
      format: String,
    };
  },
  bool(def: boolean, description: string): Flag<boolean> {
    return {
      description,
      default: def,
      typeName: "bool",
      isBool: true,
      parse: (raw, _prev, name) => {
        const v = raw.toLowerCase();
        if (v === "true" || v === "1" || v === "t") return true;
        if (v === "false" || v === "0" || v === "f") return false;
        throw invalid(name, raw, "want true or false");
      },
      format: String,
    };
  },
  /**
   * A duration in milliseconds. `bareNumberMs` is what a number without a unit means: seconds
   * by default; VictoriaMetrics' -retentionPeriod uses months (31 days).
   */
  duration(def: string, description: string, opts: { bareNumberMs?: number } = {}): Flag<number> {
    const bare = opts.bareNumberMs ?? 1000;
    const parse = (raw: string, name: string): number => {
      const t = raw.trim();
      if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * bare);
      try {
        return parseDuration(t);
      } catch (err) {
        throw invalid(name, raw, err instanceof Error ? err.message : String(err));
      }
    };
    return {
      description,
      default: parse(def, "default"),
      defaultText: def,
      typeName: "duration",
      parse: (raw, _prev, name) => parse(raw, name),
      format: (v) => formatDuration(v),
    };
  },
  /** A size in bytes (`32MiB`, `1GB`, `4096`). */
  bytes(def: number, description: string): Flag<number> {
    return {
      description,
      default: def,
      typeName: "size",
      parse: (raw, _prev, name) => {
        try {
          return parseBytes(raw);
        } catch (err) {
          throw invalid(name, raw, err instanceof Error ? err.message : String(err));
        }
      },
      format: formatBytes,
    };
  },
  /** A list: by repetition or comma-separated; the first occurrence replaces the default. */
  /**
   * With `keepEmpty`, empty items stay in place (`-a=,x` is ["", "x"]): lists whose values go by
   * position, as vmagent's per -remoteWrite.url flags.
   */
  stringList(def: readonly string[], description: string, opts: { readonly keepEmpty?: boolean } = {}): Flag<string[]> {
    const seen = new WeakSet<string[]>();
    return {
      description,
      default: [...def],
      typeName: "list",
      isList: true,
      parse: (raw, prev) => {
        const all = raw.split(",").map((s) => s.trim());
        const items = opts.keepEmpty === true ? all : all.filter((s) => s !== "");
        if (seen.has(prev)) {
          prev.push(...items);
          return prev;
        }
        const next = [...items];
        seen.add(next);
        return next;
      },
      format: (v) => JSON.stringify(v.join(",")),
    };
  },
} as const;

export function defineFlags<S extends FlagSpecs>(specs: S): S {
  return specs;
}

export interface ParsedFlags<S extends FlagSpecs> {
  readonly values: FlagValues<S>;
  /** True when -help / --help / -h was given: print formatHelp() and exit 0. */
  readonly help: boolean;
  /** True when -version / --version was given: print the version and exit 0. */
  readonly version: boolean;
  /** Arguments that are not flags (after `--` or not starting with `-`). */
  readonly args: string[];
}

/** Parses argv (without node and script). Throws BadDataError naming an unknown or bad flag. */
export function parseFlags<S extends FlagSpecs>(specs: S, argv: readonly string[]): ParsedFlags<S> {
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) values[name] = spec.default;
  const args: string[] = [];
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      args.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === "help" || name === "h") {
      help = true;
      continue;
    }
    if (name === "version" && specs[name] === undefined) {
      version = true;
      continue;
    }
    const spec = specs[name];
    if (spec === undefined) {
      throw new BadDataError(`unknown flag -${name} (run with -help to list flags)`, "STRATA_UNKNOWN_FLAG");
    }
    let raw: string;
    if (eq >= 0) raw = body.slice(eq + 1);
    else if (spec.isBool) raw = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined) throw invalid(name, "", "missing value");
      raw = next;
      i++;
    }
    values[name] = spec.parse(raw, values[name], name);
  }
  return { values: values as FlagValues<S>, help, version, args };
}

/** The -help text: every flag with its type, default and meaning, sorted by name. */
export function formatHelp(specs: FlagSpecs, program: string, summary: string): string {
  const lines = [`${program}: ${summary}`, "", `Usage: ${program} [flags]`, "", "  -help", "    \tPrints this list of flags and exits", "  -version", "    \tPrints the version and exits", ""];
  for (const name of Object.keys(specs).sort()) {
    const spec = specs[name]!;
    lines.push(`  -${name} ${spec.typeName}`);
    lines.push(`    \t${spec.description}`);
    const defText = spec.defaultText ?? spec.format(spec.default);
    lines.push(`    \t(default ${defText === "" ? '""' : defText})${spec.isList ? " (may be repeated or comma-separated)" : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Flag names whose values are never shown (/flags, /api/v1/status/flags). */
const SECRET_FLAG = /password|authkey|token|secret/i;

/** The password of a URL's user info (`https://user:pass@host`), in any list item. */
const URL_PASSWORD = /(:\/\/[^/@\s,:]*:)[^/@\s,]*@/g;

/**
 * Flag values as text, the way `-help` writes defaults (without quotes); values of flags whose
 * names mention a password, authKey, token or secret are shown as `secret` (as VictoriaMetrics'
 * /flags does), and so is the password of a URL (`-remoteWrite.url=https://u:secret@host`).
 * Every service's /flags page and select's /api/v1/status/flags show this map.
 */
export function displayFlags(specs: FlagSpecs, values: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(specs).sort()) {
    const spec = specs[name]!;
    out[name] = SECRET_FLAG.test(name) ? "secret" : unquoted(spec.format(values[name] ?? spec.default)).replace(URL_PASSWORD, "$1secret@");
  }
  return out;
}

/** The /flags page: one `-name="value"` line per flag of a displayFlags map. */
export function formatFlagsPage(shown: Readonly<Record<string, string>>): string {
  return Object.entries(shown)
    .map(([k, v]) => `-${k}=${JSON.stringify(v)}\n`)
    .join("");
}

/** -help quotes text values (`":8481"`); the flags page shows them bare, as Prometheus does. */
function unquoted(s: string): string {
  if (!/^".*"$/.test(s)) return s;
  try {
    const v: unknown = JSON.parse(s);
    return typeof v === "string" ? v : s;
  } catch {
    return s;
  }
}

/** `-flagsAuthKey`, which every service's /flags page takes (read it through httpsec's readSecret). */
export const flagsPageFlags = defineFlags({
  flagsAuthKey: flag.string("", "Key that /flags wants as the authKey query arg (overrides -httpAuth.* there); file:///path reads it from a file. Never logged."),
});
