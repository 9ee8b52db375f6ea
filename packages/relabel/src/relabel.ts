import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { BadDataError, METRIC_NAME_LABEL, compareStrings, compileAnchoredRegex, isLegacyLabelName } from "@strata/core";
import type { Label, Labels, RE2JS } from "@strata/core";
import type { RelabelAction, RelabelConfig, RelabelConfigInput } from "./config.js";
import { DEFAULT_RELABEL_CONFIG, normalizeRelabelConfig, parseRelabelYaml } from "./config.js";
import type { Captures } from "./expand.js";
import { expandTemplate, hasTemplateVar } from "./expand.js";
import { SeriesSelector } from "./selector.js";

export interface RelabelOptions {
  /**
   * Validate label names with the pre-3.0 character set `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus'
   * legacy validation scheme). Default false: any non-empty valid UTF-8 name, as Prometheus 3.
   */
  readonly legacyNames?: boolean;
}

// Prometheus' relabelTarget (legacy scheme): a label name possibly built from $-references.
const RELABEL_TARGET_LEGACY = /^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$/s;

interface CompiledRule {
  readonly cfg: RelabelConfig;
  readonly re: RE2JS;
  readonly isDefaultRegex: boolean;
  readonly named: Readonly<Record<string, number>>;
  readonly groupCount: number;
  readonly selector: SeriesSelector | undefined;
  /**
   * Memo of regex results by input string (values and label names repeat across series, and
   * RE2 in JavaScript is slow): full-match booleans, and for replace/labelmap the expansions.
   * Bounded; cleared when full. Results depend only on the input string, so sharing is safe.
   */
  readonly testMemo: Map<string, boolean>;
  readonly expandMemo: Map<string, readonly [string, string] | null>;
  readonly hashMemo: Map<string, string>;
}

const MEMO_MAX = 4096;

function memoSet<V>(m: Map<string, V>, k: string, v: V): V {
  if (m.size >= MEMO_MAX) m.clear();
  m.set(k, v);
  return v;
}

function test(r: CompiledRule, s: string): boolean {
  const hit = r.testMemo.get(s);
  return hit !== undefined ? hit : memoSet(r.testMemo, s, r.re.testExact(s));
}

/** [target, value] after expanding target_label and replacement, or null without a match. */
function expandBoth(r: CompiledRule, val: string): readonly [string, string] | null {
  const hit = r.expandMemo.get(val);
  if (hit !== undefined) return hit;
  const caps = captures(r, val);
  const res = caps === undefined ? null : ([expandTemplate(r.cfg.targetLabel, caps), expandTemplate(r.cfg.replacement, caps)] as const);
  return memoSet(r.expandMemo, val, res);
}

type Builder = Map<string, string>;
type Apply = (r: CompiledRule, lb: Builder, val: string, opts: RelabelOptions) => boolean;

function validName(name: string, opts: RelabelOptions): boolean {
  if (name === "") return false;
  return opts.legacyNames ? isLegacyLabelName(name) : name.isWellFormed();
}

function captures(r: CompiledRule, val: string): Captures | undefined {
  const m = r.re.matcher(val);
  if (!m.matches()) return undefined;
  return { group: (i) => m.group(i), groupCount: r.groupCount, named: r.named };
}

function set(lb: Builder, name: string, value: string): void {
  if (value === "") lb.delete(name);
  else lb.set(name, value);
}

/** Each action exactly as Prometheus' model/relabel `relabel()` does it. */
const ACTIONS: Record<RelabelAction, Apply> = {
  drop: (r, _lb, val) => !test(r, val),
  keep: (r, _lb, val) => test(r, val),
  dropequal: (r, lb, val) => (lb.get(r.cfg.targetLabel) ?? "") !== val,
  keepequal: (r, lb, val) => (lb.get(r.cfg.targetLabel) ?? "") === val,
  replace: (r, lb, val, opts) => {
    const { targetLabel, replacement } = r.cfg;
    // Prometheus' fast path: add or delete a fixed label without running the regex.
    if (val === "" && r.isDefaultRegex && !hasTemplateVar(targetLabel) && !hasTemplateVar(replacement)) {
      set(lb, targetLabel, replacement);
      return true;
    }
    const res = expandBoth(r, val);
    if (res === null) return true;
    if (!validName(res[0], opts)) return true;
    set(lb, res[0], res[1]);
    return true;
  },
  lowercase: (r, lb, val) => {
    set(lb, r.cfg.targetLabel, val.toLowerCase());
    return true;
  },
  uppercase: (r, lb, val) => {
    set(lb, r.cfg.targetLabel, val.toUpperCase());
    return true;
  },
  hashmod: (r, lb, val) => {
    let h = r.hashMemo.get(val);
    if (h === undefined) h = memoSet(r.hashMemo, val, hashMod(val, r.cfg.modulus).toString());
    set(lb, r.cfg.targetLabel, h);
    return true;
  },
  labelmap: (r, lb) => {
    // Over a sorted snapshot, as Prometheus ranges over its (sorted) label set.
    for (const [name, value] of [...lb].sort((a, b) => compareStrings(a[0], b[0]))) {
      const res = expandBoth(r, name);
      if (res !== null) set(lb, res[1], value);
    }
    return true;
  },
  keep_metrics: (r, lb) => test(r, lb.get(METRIC_NAME_LABEL) ?? ""),
  drop_metrics: (r, lb) => !test(r, lb.get(METRIC_NAME_LABEL) ?? ""),
  labeldrop: (r, lb) => {
    for (const name of [...lb.keys()]) if (test(r, name)) lb.delete(name);
    return true;
  },
  labelkeep: (r, lb) => {
    for (const name of [...lb.keys()]) if (!test(r, name)) lb.delete(name);
    return true;
  },
};

/**
 * Prometheus' hashmod: md5 of the value, the LAST 8 bytes of the digest read as a big-endian
 * uint64, modulo `modulus` (Prometheus: "Use only the last 8 bytes of the hash to give the
 * same result as earlier versions of this code").
 */
export function hashMod(value: string, modulus: bigint): bigint {
  const sum = createHash("md5").update(value, "utf8").digest();
  return sum.readBigUInt64BE(8) % modulus;
}

function ruleError(index: number, field: string, what: string): BadDataError {
  return new BadDataError(`relabel_configs[${index}]: ${field}: ${what}`, "STRATA_PARSE_ERROR");
}

/** Prometheus' Config.Validate, with the field named in the error. */
function validate(c: RelabelConfig, i: number, opts: RelabelOptions): void {
  const a = c.action;
  if (a === "hashmod" && c.modulus === 0n) throw ruleError(i, "modulus", "relabel configuration for hashmod requires non-zero modulus");
  if ((a === "replace" || a === "hashmod" || a === "lowercase" || a === "uppercase" || a === "keepequal" || a === "dropequal") && c.targetLabel === "") {
    throw ruleError(i, "target_label", `relabel configuration for ${a} action requires 'target_label' value`);
  }
  if (a === "replace" && !hasTemplateVar(c.targetLabel) && !validName(c.targetLabel, opts)) {
    throw ruleError(i, "target_label", `${JSON.stringify(c.targetLabel)} is invalid 'target_label' for ${a} action`);
  }
  if (a === "replace" && hasTemplateVar(c.targetLabel) && opts.legacyNames && !RELABEL_TARGET_LEGACY.test(c.targetLabel)) {
    throw ruleError(i, "target_label", `${JSON.stringify(c.targetLabel)} is invalid 'target_label' for ${a} action`);
  }
  // These actions do not expand templates, so a `$` in the target is a mistake (Prometheus'
  // documented test rejects "${3}" for lowercase).
  if (
    (a === "lowercase" || a === "uppercase" || a === "keepequal" || a === "dropequal" || a === "hashmod") &&
    (!validName(c.targetLabel, opts) || hasTemplateVar(c.targetLabel))
  ) {
    throw ruleError(i, "target_label", `${JSON.stringify(c.targetLabel)} is invalid 'target_label' for ${a} action`);
  }
  if (a === "labelmap" && opts.legacyNames && !RELABEL_TARGET_LEGACY.test(c.replacement)) {
    throw ruleError(i, "replacement", `${JSON.stringify(c.replacement)} is invalid 'replacement' for ${a} action`);
  }
  if (a === "labeldrop" || a === "labelkeep") {
    const d = DEFAULT_RELABEL_CONFIG;
    const extra =
      c.sourceLabels.length > 0 ? "source_labels" :
      c.targetLabel !== d.targetLabel ? "target_label" :
      c.modulus !== d.modulus ? "modulus" :
      c.separator !== d.separator ? "separator" :
      c.replacement !== d.replacement ? "replacement" : undefined;
    if (extra !== undefined) throw ruleError(i, extra, `${a} action requires only 'regex', and no other fields`);
  }
  if ((a === "keep_metrics" || a === "drop_metrics") && c.sourceLabels.length > 0) {
    throw ruleError(i, "source_labels", `${a} action matches regex against __name__ and takes no 'source_labels'`);
  }
  if (a === "keepequal" || a === "dropequal") {
    const d = DEFAULT_RELABEL_CONFIG;
    const extra =
      c.regex !== d.regex ? "regex" :
      c.modulus !== d.modulus ? "modulus" :
      c.separator !== d.separator ? "separator" :
      c.replacement !== d.replacement ? "replacement" : undefined;
    if (extra !== undefined) throw ruleError(i, extra, `${a} action requires only 'source_labels' and 'target_label', and no other fields`);
  }
}

function compileRule(c: RelabelConfig, i: number, opts: RelabelOptions): CompiledRule {
  validate(c, i, opts);
  let re: RE2JS;
  try {
    re = compileAnchoredRegex(c.regex);
  } catch (err) {
    throw ruleError(i, "regex", err instanceof Error ? err.message : String(err));
  }
  let selector: SeriesSelector | undefined;
  if (c.if.length > 0) {
    try {
      selector = SeriesSelector.any(c.if.map((s) => SeriesSelector.parse(s)));
    } catch (err) {
      throw ruleError(i, "if", err instanceof Error ? err.message : String(err));
    }
  }
  return {
    cfg: c,
    re,
    isDefaultRegex: c.regex === DEFAULT_RELABEL_CONFIG.regex,
    named: re.namedGroups(),
    groupCount: re.groupCount(),
    selector,
    testMemo: new Map(),
    expandMemo: new Map(),
    hashMemo: new Map(),
  };
}

/**
 * A compiled list of relabel rules. `apply` takes a label set and returns the relabeled,
 * canonical set (sorted, empty values removed) or null when a rule dropped the series.
 * Immutable and safe to share; swap the whole object to reload a config.
 */
export class Relabeler {
  private readonly rules: readonly CompiledRule[];

  constructor(configs: readonly RelabelConfig[], opts: RelabelOptions = {}) {
    this.opts = opts;
    this.rules = configs.map((c, i) => compileRule(c, i, opts));
  }

  private readonly opts: RelabelOptions;

  /** From YAML text (a list of rules, or `relabel_configs:`). */
  static fromYaml(text: string, opts: RelabelOptions = {}): Relabeler {
    return new Relabeler(parseRelabelYaml(text), opts);
  }

  /** From already-parsed objects with YAML field names (`source_labels`, …). */
  static fromInputs(inputs: readonly RelabelConfigInput[], opts: RelabelOptions = {}): Relabeler {
    return new Relabeler(inputs.map((r, i) => normalizeRelabelConfig(r, i)), opts);
  }

  get length(): number {
    return this.rules.length;
  }

  get configs(): readonly RelabelConfig[] {
    return this.rules.map((r) => r.cfg);
  }

  apply(labels: Labels): Label[] | null {
    if (this.rules.length === 0) return labels.filter((l) => l.value !== "");
    const lb: Builder = new Map();
    for (const l of labels) if (l.value !== "") lb.set(l.name, l.value);
    const get = (name: string): string | undefined => lb.get(name);
    for (const r of this.rules) {
      if (r.selector !== undefined) {
        if (!r.selector.matchesWith(get)) {
          // VictoriaMetrics: `action: keep` drops series that do not match `if`.
          if (r.cfg.action === "keep") return null;
          continue;
        }
      }
      const sl = r.cfg.sourceLabels;
      let val = "";
      for (let k = 0; k < sl.length; k++) {
        if (k > 0) val += r.cfg.separator;
        val += lb.get(sl[k]!) ?? "";
      }
      if (!ACTIONS[r.cfg.action](r, lb, val, this.opts)) return null;
    }
    return toLabels(lb);
  }
}

function toLabels(lb: Builder): Label[] {
  const out: Label[] = [];
  for (const [name, value] of lb) out.push({ name, value });
  out.sort((a, b) => compareStrings(a.name, b.name));
  return out;
}

/** Reads and compiles a `-relabelConfig` file. */
export async function loadRelabelConfigFile(path: string, opts: RelabelOptions = {}): Promise<Relabeler> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new BadDataError(`cannot read relabel config ${JSON.stringify(path)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return Relabeler.fromYaml(text, opts);
  } catch (err) {
    if (err instanceof BadDataError) throw new BadDataError(`${path}: ${err.message}`, err.code, { cause: err });
    throw err;
  }
}
