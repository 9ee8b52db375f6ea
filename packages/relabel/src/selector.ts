import { BadDataError, METRIC_NAME_LABEL, newMatcher } from "@strata/core";
import type { LabelMatcher, Labels, MatchType } from "@strata/core";

/**
 * A VictoriaMetrics `if:` series selector: `metric`, `{a="b"}`, `metric{a=~"x.*",b!="c"}`,
 * `{"my.metric", a="b"}`, or `{a="b" or c="d"}` (alternatives). A list of selectors matches
 * when any of them does. Matching treats an absent label as "" like PromQL.
 */
export class SeriesSelector {
  private constructor(
    private readonly alternatives: readonly (readonly LabelMatcher[])[],
    readonly source: string,
  ) {}

  static parse(src: string): SeriesSelector {
    return new SeriesSelector(parseSelector(src), src);
  }

  /** Selectors joined with "or" (a YAML list under `if:`). */
  static any(list: readonly SeriesSelector[]): SeriesSelector {
    return new SeriesSelector(list.flatMap((s) => s.alternatives), list.map((s) => s.source).join(" or "));
  }

  matches(labels: Labels): boolean {
    return this.matchesWith((name) => valueOf(labels, name));
  }

  /** Matches against a lookup (absent label: undefined or ""), e.g. a Map's `get`. */
  matchesWith(get: (name: string) => string | undefined): boolean {
    for (const alt of this.alternatives) {
      let ok = true;
      for (const m of alt) {
        if (!m.matches(get(m.name) ?? "")) {
          ok = false;
          break;
        }
      }
      if (ok) return true;
    }
    return false;
  }

  toString(): string {
    return this.source;
  }
}

function valueOf(labels: Labels, name: string): string {
  for (const l of labels) if (l.name === name) return l.value;
  return "";
}

function parseSelector(src: string): LabelMatcher[][] {
  let i = 0;
  const s = src;
  const fail = (what: string): never => {
    throw new BadDataError(`invalid series selector ${JSON.stringify(src)}: ${what} at offset ${i}`, "STRATA_PARSE_ERROR");
  };
  const ws = (): void => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const ident = (): string => {
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:.]*/.exec(s.slice(i));
    if (m === null) return fail("expected a name");
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    const q = s[i];
    if (q !== '"' && q !== "'" && q !== "`") return fail("expected a quoted string");
    let j = i + 1;
    let out = "";
    while (j < s.length && s[j] !== q) {
      if (s[j] === "\\" && q !== "`") {
        const e = s[j + 1];
        if (e === undefined) break;
        out += e === "n" ? "\n" : e === "t" ? "\t" : e;
        j += 2;
        continue;
      }
      out += s[j];
      j++;
    }
    if (j >= s.length) {
      i = j;
      return fail("unterminated string");
    }
    i = j + 1;
    return out;
  };
  ws();
  let metric = "";
  if (i < s.length && s[i] !== "{") metric = ident();
  ws();
  const alts: LabelMatcher[][] = [];
  let cur: LabelMatcher[] = [];
  if (metric !== "") cur.push(newMatcher("=", METRIC_NAME_LABEL, metric));
  const base = [...cur];
  if (s[i] === "{") {
    i++;
    for (;;) {
      ws();
      if (s[i] === "}") {
        i++;
        break;
      }
      let name: string;
      if (s[i] === '"' || s[i] === "'") {
        name = quoted();
        ws();
        if (s[i] === "," || s[i] === "}") {
          // A quoted metric name: {"my.metric"}.
          cur.push(newMatcher("=", METRIC_NAME_LABEL, name));
          if (s[i] === ",") i++;
          continue;
        }
      } else {
        name = ident();
        if (name === "or") {
          ws();
          if (cur.length === base.length) fail("empty alternative before or");
          alts.push(cur);
          cur = [...base];
          continue;
        }
      }
      ws();
      const op = /^(=~|!~|!=|=)/.exec(s.slice(i));
      if (op === null) return fail(`expected =, !=, =~ or !~ after ${JSON.stringify(name)}`);
      i += op[0].length;
      ws();
      const value = quoted();
      try {
        cur.push(newMatcher(op[0] as MatchType, name, value));
      } catch (err) {
        throw new BadDataError(`invalid series selector ${JSON.stringify(src)}: ${err instanceof Error ? err.message : String(err)}`, "STRATA_PARSE_ERROR");
      }
      ws();
      if (s[i] === ",") {
        i++;
        continue;
      }
      if (s[i] !== "}" && !s.startsWith("or", i)) fail("expected , or }");
    }
  }
  ws();
  if (i < s.length) fail(`unexpected ${JSON.stringify(s.slice(i, i + 10))}`);
  if (metric === "" && cur.length === 0 && alts.length === 0) fail("empty selector");
  alts.push(cur);
  return alts;
}
