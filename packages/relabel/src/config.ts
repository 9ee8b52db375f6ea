import { BadDataError } from "@strata/core";
import { parseDocument } from "yaml";

export type RelabelAction =
  | "replace"
  | "keep"
  | "drop"
  | "keepequal"
  | "dropequal"
  | "hashmod"
  | "labelmap"
  | "labeldrop"
  | "labelkeep"
  | "lowercase"
  | "uppercase"
  // VictoriaMetrics shorthands: keep/drop by metric name (`regex` over `__name__`).
  | "keep_metrics"
  | "drop_metrics";

export const RELABEL_ACTIONS: readonly RelabelAction[] = [
  "replace",
  "keep",
  "drop",
  "keepequal",
  "dropequal",
  "hashmod",
  "labelmap",
  "labeldrop",
  "labelkeep",
  "lowercase",
  "uppercase",
  "keep_metrics",
  "drop_metrics",
];

/** One relabel rule with Prometheus' defaults filled in. */
export interface RelabelConfig {
  readonly sourceLabels: readonly string[];
  readonly separator: string;
  /** The regex as written (unanchored); it is matched as `^(?s:regex)$`. */
  readonly regex: string;
  readonly modulus: bigint;
  readonly targetLabel: string;
  readonly replacement: string;
  readonly action: RelabelAction;
  /** VictoriaMetrics `if:` selectors; the rule applies only to matching series. */
  readonly if: readonly string[];
}

/** Prometheus' DefaultRelabelConfig. */
export const DEFAULT_RELABEL_CONFIG: RelabelConfig = {
  sourceLabels: [],
  separator: ";",
  regex: "(.*)",
  modulus: 0n,
  targetLabel: "",
  replacement: "$1",
  action: "replace",
  if: [],
};

/** A rule as written in YAML/JSON (snake_case keys), before defaults. */
export interface RelabelConfigInput {
  readonly source_labels?: readonly string[];
  readonly separator?: string;
  readonly regex?: string | readonly string[];
  readonly modulus?: number;
  readonly target_label?: string;
  readonly replacement?: string;
  readonly action?: string;
  readonly if?: string | readonly string[];
}

const KNOWN_KEYS = new Set(["source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action", "if"]);

function fieldError(index: number, field: string, what: string): BadDataError {
  return new BadDataError(`relabel_configs[${index}]: ${field}: ${what}`, "STRATA_PARSE_ERROR");
}

function scalarString(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/**
 * Fills in Prometheus' defaults and checks field types of one rule. An explicit empty string
 * stays empty (e.g. `replacement: ""` deletes the target label); a missing field gets its
 * default. `regex` may be a list (VictoriaMetrics), joined with `|`.
 */
export function normalizeRelabelConfig(raw: unknown, index: number): RelabelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new BadDataError(`relabel_configs[${index}]: want a mapping with source_labels, regex, action, …`, "STRATA_PARSE_ERROR");
  }
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN_KEYS.has(k)) throw fieldError(index, k, "unknown field");
  }
  const d = DEFAULT_RELABEL_CONFIG;
  let sourceLabels: string[] = [];
  if (o["source_labels"] !== undefined && o["source_labels"] !== null) {
    const sl = o["source_labels"];
    if (!Array.isArray(sl)) throw fieldError(index, "source_labels", "want a list of label names");
    sourceLabels = sl.map((x, k) => {
      const s = scalarString(x);
      if (s === undefined || s === "") throw fieldError(index, `source_labels[${k}]`, "want a non-empty label name");
      return s;
    });
  }
  const str = (key: string, def: string): string => {
    const v = o[key];
    if (v === undefined || v === null) return def;
    const s = scalarString(v);
    if (s === undefined) throw fieldError(index, key, "want a string");
    return s;
  };
  let regex = d.regex;
  const rv = o["regex"];
  if (Array.isArray(rv)) {
    regex = rv
      .map((x, k) => {
        const s = scalarString(x);
        if (s === undefined) throw fieldError(index, `regex[${k}]`, "want a string");
        return s;
      })
      .join("|");
  } else if (rv !== undefined && rv !== null) {
    const s = scalarString(rv);
    if (s === undefined) throw fieldError(index, "regex", "want a string");
    regex = s;
  }
  let modulus = 0n;
  const mv = o["modulus"];
  if (mv !== undefined && mv !== null) {
    if (typeof mv !== "number" || !Number.isSafeInteger(mv) || mv < 0) throw fieldError(index, "modulus", "want a non-negative integer");
    modulus = BigInt(mv);
  }
  const actionRaw = str("action", d.action).toLowerCase();
  if (actionRaw === "") throw fieldError(index, "action", "relabel action cannot be empty");
  if (!(RELABEL_ACTIONS as readonly string[]).includes(actionRaw)) {
    throw fieldError(index, "action", `unknown relabel action ${JSON.stringify(actionRaw)}; want one of ${RELABEL_ACTIONS.join(", ")}`);
  }
  let ifs: string[] = [];
  const iv = o["if"];
  if (typeof iv === "string") ifs = [iv];
  else if (Array.isArray(iv)) {
    ifs = iv.map((x, k) => {
      if (typeof x !== "string") throw fieldError(index, `if[${k}]`, "want a series selector string");
      return x;
    });
  } else if (iv !== undefined && iv !== null) throw fieldError(index, "if", "want a series selector or a list of them");
  return {
    sourceLabels,
    separator: str("separator", d.separator),
    regex,
    modulus,
    targetLabel: str("target_label", d.targetLabel),
    replacement: str("replacement", d.replacement),
    action: actionRaw as RelabelAction,
    if: ifs,
  };
}

/**
 * Parses relabel rules from YAML: either a list of rules (the `-relabelConfig` file format of
 * VictoriaMetrics) or a mapping with a `relabel_configs` list. Throws BadDataError naming the
 * rule index and field.
 */
export function parseRelabelYaml(text: string): RelabelConfig[] {
  let doc: unknown;
  try {
    const d = parseDocument(text, { logLevel: "silent", uniqueKeys: true });
    // Unknown tags and similar warnings would silently change meaning: reject them too.
    const problem = d.errors[0] ?? d.warnings[0];
    if (problem !== undefined) throw problem;
    doc = d.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new BadDataError(`relabel config: invalid YAML: ${err instanceof Error ? err.message : String(err)}`, "STRATA_PARSE_ERROR");
  }
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc) && typeof doc === "object" && "relabel_configs" in doc) {
    doc = (doc as Record<string, unknown>)["relabel_configs"] ?? [];
  }
  if (!Array.isArray(doc)) throw new BadDataError("relabel config: want a list of relabel rules", "STRATA_PARSE_ERROR");
  return doc.map((r, i) => normalizeRelabelConfig(r, i));
}
