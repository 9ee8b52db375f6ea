import { RE2JS } from "re2js";
import { BadDataError } from "./errors.js";

export type MatchType = "=" | "!=" | "=~" | "!~";

/**
 * A label matcher with Prometheus 3 semantics: regexes are RE2 syntax, fully anchored, and `.`
 * matches newlines (`^(?s:re)$`); a label that is absent has the value "" for matching.
 * Construction validates the regex; `matches` is allocation-free on the fast paths.
 */
export interface LabelMatcher {
  readonly type: MatchType;
  readonly name: string;
  readonly value: string;
  matches(value: string): boolean;
  /** For regex matchers: a literal every matching value starts with ("" when none is known). */
  readonly prefix: string;
  /**
   * For `=` and for regexes that are an alternation of literals (`a|b|c`): the exact set of
   * values that match (for `=~`) or do not match (for `!~`). Lets an index look values up
   * instead of scanning every value of the label.
   */
  readonly setMatches: readonly string[] | undefined;
  toString(): string;
}

const META = /[\\^$.|?*+()[\]{}]/;

type Predicate = (v: string) => boolean;

interface RegexPlan {
  readonly test: Predicate;
  readonly prefix: string;
  readonly set: readonly string[] | undefined;
}

function planRegex(re: string): RegexPlan {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(`(?s:${re})`);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new BadDataError(`invalid regular expression ${JSON.stringify(re)}: ${msg}`, "STRATA_PARSE_ERROR");
  }
  if (!META.test(re)) return { test: (v) => v === re, prefix: re, set: [re] };
  if (re === ".*") return { test: () => true, prefix: "", set: undefined };
  if (re === ".+") return { test: (v) => v.length > 0, prefix: "", set: undefined };
  // `lit.*` and `lit.+`
  const m = /^([^\\^$.|?*+()[\]{}]*)\.([*+])$/.exec(re);
  if (m) {
    const lit = m[1]!;
    if (m[2] === "*") return { test: (v) => v.startsWith(lit), prefix: lit, set: undefined };
    return { test: (v) => v.length > lit.length && v.startsWith(lit), prefix: lit, set: undefined };
  }
  // `a|b|c` of plain literals
  const alts = re.split("|");
  if (alts.length > 1 && alts.every((a) => !META.test(a))) {
    const set = new Set(alts);
    const sorted = [...set].sort();
    return { test: (v) => set.has(v), prefix: commonPrefix(sorted), set: sorted };
  }
  // A literal prefix lets the index skip values; the full regex still decides.
  const pm = /^[^\\^$.|?*+()[\]{}]+/.exec(re);
  let prefix = pm ? pm[0] : "";
  // A prefix followed by a quantifier applies to its last char only: drop that char.
  const next = re.charAt(prefix.length);
  if (prefix !== "" && (next === "?" || next === "*" || next === "{")) prefix = prefix.slice(0, -1);
  if (re.includes("|")) prefix = ""; // an alternation at the top level may not share it
  return { test: (v) => compiled.matches(v), prefix, set: undefined };
}

function commonPrefix(sorted: readonly string[]): string {
  if (sorted.length === 0) return "";
  const a = sorted[0]!;
  const b = sorted[sorted.length - 1]!;
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return a.slice(0, i);
}

const regexCache = new Map<string, RegexPlan>();
const REGEX_CACHE_MAX = 10_000;

function cachedPlan(re: string): RegexPlan {
  let plan = regexCache.get(re);
  if (plan === undefined) {
    plan = planRegex(re);
    if (regexCache.size >= REGEX_CACHE_MAX) regexCache.clear();
    regexCache.set(re, plan);
  }
  return plan;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

/** Creates a matcher; throws BadDataError for an invalid regex (RE2 syntax). */
export function newMatcher(type: MatchType, name: string, value: string): LabelMatcher {
  const str = `${name}${type}${quote(value)}`;
  switch (type) {
    case "=":
      return { type, name, value, matches: (v) => v === value, prefix: value, setMatches: [value], toString: () => str };
    case "!=":
      return { type, name, value, matches: (v) => v !== value, prefix: "", setMatches: [value], toString: () => str };
    case "=~": {
      const plan = cachedPlan(value);
      return { type, name, value, matches: plan.test, prefix: plan.prefix, setMatches: plan.set, toString: () => str };
    }
    case "!~": {
      const plan = cachedPlan(value);
      const t = plan.test;
      return { type, name, value, matches: (v) => !t(v), prefix: "", setMatches: plan.set, toString: () => str };
    }
  }
}

/** True when the matcher matches the empty string, i.e. also series without the label. */
export function matchesEmpty(m: LabelMatcher): boolean {
  return m.matches("");
}

/** Validates an RE2 regex without building a matcher; throws BadDataError. */
export function validateRegex(re: string): void {
  cachedPlan(re);
}

/** Compiles an anchored RE2 regex (`^(?s:re)$`) for callers that need captures (relabel, label_replace). */
export function compileAnchoredRegex(re: string): RE2JS {
  try {
    return RE2JS.compile(`^(?s:${re})$`);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new BadDataError(`invalid regular expression ${JSON.stringify(re)}: ${msg}`, "STRATA_PARSE_ERROR");
  }
}

export { RE2JS };
