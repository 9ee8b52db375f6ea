import { readFileSync } from "node:fs";
import { BadDataError, isLegacyLabelName, isLegacyMetricName, parseDuration } from "@strata/core";
import { parseExpr } from "@strata/promql";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type Pair, type YAMLMap } from "yaml";
import { Template, TemplateError } from "./template/exec.js";

/**
 * Prometheus rule files (rulefmt): `groups:` with name, interval, limit, query_offset, labels
 * and rules; a rule is a recording rule (record, expr, labels) or an alerting rule (alert,
 * expr, for, keep_firing_for, labels, annotations). Loading checks everything Prometheus checks
 * (and parses every template), failing with the file, line, column, group and rule.
 */

export interface RecordingRuleConfig {
  readonly kind: "recording";
  readonly name: string;
  readonly expr: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface AlertingRuleConfig {
  readonly kind: "alerting";
  readonly name: string;
  readonly expr: string;
  readonly forMs: number;
  readonly keepFiringForMs: number;
  /** Label templates by name. */
  readonly labels: Readonly<Record<string, Template>>;
  readonly annotations: Readonly<Record<string, Template>>;
}

export type RuleConfig = RecordingRuleConfig | AlertingRuleConfig;

export interface GroupConfig {
  readonly file: string;
  readonly name: string;
  /** Evaluation interval in ms (undefined: the global one). */
  readonly intervalMs: number | undefined;
  readonly queryOffsetMs: number | undefined;
  readonly limit: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly rules: readonly RuleConfig[];
}

export class RuleFileError extends BadDataError {
  constructor(message: string) {
    super(message, "STRATA_BAD_REQUEST");
  }
}

const GROUP_KEYS = new Set(["name", "interval", "limit", "query_offset", "labels", "rules"]);
const RULE_KEYS = new Set(["record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"]);

class Loc {
  constructor(
    readonly file: string,
    readonly lc: LineCounter,
  ) {}
  at(node: YamlNode | null | undefined): string {
    const off = node?.range?.[0];
    if (off === undefined) return this.file;
    const p = this.lc.linePos(off);
    return `${this.file}:${p.line}:${p.col}`;
  }
  /** Line and column of character `i` of a scalar's value (for templates inside quoted values). */
  lineOf(node: YamlNode | null | undefined): { line: number; col: number } {
    const off = node?.range?.[0];
    return off === undefined ? { line: 0, col: 0 } : this.lc.linePos(off);
  }
}

function pairs(map: YAMLMap): Pair<YamlNode, YamlNode>[] {
  return map.items as Pair<YamlNode, YamlNode>[];
}

function keyOf(p: Pair<YamlNode, YamlNode>): string {
  return isScalar(p.key) ? String(p.key.value) : String(p.key);
}

function scalarString(node: YamlNode | null, where: string, what: string): string {
  if (!isScalar(node) || node.value === null || typeof node.value === "object") throw new RuleFileError(`${where}: ${what} must be a string`);
  return String(node.value);
}

function durationMs(node: YamlNode | null, where: string, what: string): number {
  const s = scalarString(node, where, what);
  try {
    if (!/^(\d+(ms|[smhdwy]))+$/.test(s)) throw new Error(`not a valid duration string: ${JSON.stringify(s)}`);
    return parseDuration(s);
  } catch (err) {
    throw new RuleFileError(`${where}: ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function stringMap(node: YamlNode | null, loc: Loc, ctx: string, what: string, check: (name: string, valueNode: YamlNode | null, where: string) => void): Record<string, YamlNode | null> {
  if (node === null || (isScalar(node) && node.value === null)) return {};
  if (!isMap(node)) throw new RuleFileError(`${loc.at(node)}: ${ctx}: ${what} must be a map of strings`);
  const out: Record<string, YamlNode | null> = {};
  for (const p of pairs(node)) {
    const k = keyOf(p);
    const where = `${loc.at(p.key)}: ${ctx}`;
    if (Object.hasOwn(out, k)) throw new RuleFileError(`${where}: ${what}: duplicate key ${JSON.stringify(k)}`);
    check(k, p.value, where);
    out[k] = p.value;
  }
  return out;
}

function checkLabelName(name: string, where: string, what: string): void {
  if (!isLegacyLabelName(name) && (name === "" || !isValidUtf8(name))) throw new RuleFileError(`${where}: invalid ${what} name: ${JSON.stringify(name)}`);
}

function isValidUtf8(s: string): boolean {
  return !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));
}

function parseTemplateAt(text: string, loc: Loc, node: YamlNode | null, ctx: string, what: string): Template {
  try {
    return new Template(text);
  } catch (err) {
    if (err instanceof TemplateError) {
      const base = loc.lineOf(node);
      // Position of the error inside the file when the value is on one line; always inside the value.
      const quoted = isScalar(node) && (node.type === "QUOTE_SINGLE" || node.type === "QUOTE_DOUBLE") ? 1 : 0;
      const inFile = err.line === 1 && base.line > 0 ? `${loc.file}:${base.line}:${base.col + quoted + err.col - 1}` : loc.at(node);
      throw new RuleFileError(`${inFile}: ${ctx}: ${what}: template position ${err.line}:${err.col}: ${err.message.replace(/^\d+:\d+: /, "")}`);
    }
    throw err;
  }
}

function loadRule(node: YamlNode, loc: Loc, groupName: string, index: number): RuleConfig {
  if (!isMap(node)) throw new RuleFileError(`${loc.at(node)}: group ${JSON.stringify(groupName)}, rule ${index + 1}: a rule must be a map`);
  const fields = new Map<string, Pair<YamlNode, YamlNode>>();
  for (const p of pairs(node)) {
    const k = keyOf(p);
    if (!RULE_KEYS.has(k)) throw new RuleFileError(`${loc.at(p.key)}: group ${JSON.stringify(groupName)}, rule ${index + 1}: field ${k} not found in type rulefmt.Rule`);
    fields.set(k, p);
  }
  const str = (k: string): string | undefined => {
    const p = fields.get(k);
    return p === undefined ? undefined : scalarString(p.value, loc.at(p.value ?? p.key), `field ${k}`);
  };
  const record = str("record");
  const alert = str("alert");
  const name = record ?? alert ?? "";
  const ctx = `group ${JSON.stringify(groupName)}, rule ${index + 1} (${record !== undefined ? "record" : "alert"} ${JSON.stringify(name)})`;
  const here = (k?: string): string => loc.at(k === undefined ? node : fields.get(k)?.key ?? node);
  if (record !== undefined && alert !== undefined) throw new RuleFileError(`${here("alert")}: ${ctx}: only one of 'record' and 'alert' must be set`);
  if (record === undefined && alert === undefined) throw new RuleFileError(`${here()}: group ${JSON.stringify(groupName)}, rule ${index + 1}: one of 'record' or 'alert' must be set`);
  if (name.trim() === "") throw new RuleFileError(`${here(record !== undefined ? "record" : "alert")}: ${ctx}: ${record !== undefined ? "record" : "alert"} name must not be empty`);
  const exprText = str("expr");
  if (exprText === undefined || exprText.trim() === "") throw new RuleFileError(`${here("expr")}: ${ctx}: field 'expr' must be set in rule`);
  try {
    // Parsed to validate only: the datasource parses the text again, so the tree is not kept
    // (it was most of a rule's memory).
    parseExpr(exprText);
  } catch (err) {
    throw new RuleFileError(`${loc.at(fields.get("expr")!.value)}: ${ctx}: could not parse expression: ${err instanceof Error ? err.message : String(err)}`);
  }
  const labelsNode = fields.get("labels")?.value ?? null;
  if (record !== undefined) {
    for (const k of ["for", "keep_firing_for", "annotations"]) {
      if (fields.has(k)) throw new RuleFileError(`${here(k)}: ${ctx}: invalid field '${k}' in recording rule`);
    }
    if (!isLegacyMetricName(record)) throw new RuleFileError(`${here("record")}: ${ctx}: invalid recording rule name: ${record}`);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(
      stringMap(labelsNode, loc, ctx, "labels", (k, v, where) => {
        checkLabelName(k, where, "label");
        if (k === "__name__") throw new RuleFileError(`${where}: invalid label name: __name__`);
        scalarString(v, where, `label ${k}`);
      }),
    )) {
      labels[k] = scalarString(v, "", k);
    }
    return Object.freeze({ kind: "recording", name: record, expr: exprText, labels: Object.freeze(labels) });
  }
  const forMs = fields.has("for") ? durationMs(fields.get("for")!.value, here("for"), `${ctx}: for`) : 0;
  const keepFiringForMs = fields.has("keep_firing_for") ? durationMs(fields.get("keep_firing_for")!.value, here("keep_firing_for"), `${ctx}: keep_firing_for`) : 0;
  const labels: Record<string, Template> = {};
  for (const [k, v] of Object.entries(
    stringMap(labelsNode, loc, ctx, "labels", (k, v, where) => {
      checkLabelName(k, where, "label");
      if (k === "__name__" || k === "alertname") throw new RuleFileError(`${where}: invalid label name: ${k}`);
      scalarString(v, where, `label ${k}`);
    }),
  )) {
    labels[k] = parseTemplateAt(scalarString(v, "", k), loc, v, ctx, `label ${k}`);
  }
  const annotations: Record<string, Template> = {};
  for (const [k, v] of Object.entries(
    stringMap(fields.get("annotations")?.value ?? null, loc, ctx, "annotations", (k, v, where) => {
      checkLabelName(k, where, "annotation");
      scalarString(v, where, `annotation ${k}`);
    }),
  )) {
    annotations[k] = parseTemplateAt(scalarString(v, "", k), loc, v, ctx, `annotation ${k}`);
  }
  if (!isLegacyMetricName(name) && !isValidUtf8(name)) throw new RuleFileError(`${here("alert")}: ${ctx}: invalid alert name: ${name}`);
  return Object.freeze({ kind: "alerting", name, expr: exprText, forMs, keepFiringForMs, labels: Object.freeze(labels), annotations: Object.freeze(annotations) });
}

/** Parses one rule file's text; `file` names it in errors. */
export function parseRuleFile(text: string, file: string): GroupConfig[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const loc = new Loc(file, lc);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const p = lc.linePos(e.pos[0]);
    throw new RuleFileError(`${file}:${p.line}:${p.col}: invalid YAML: ${e.message.split("\n")[0]}`);
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return [];
  if (!isMap(root)) throw new RuleFileError(`${loc.at(root)}: a rule file must be a map with 'groups'`);
  let groupsNode: YamlNode | null = null;
  for (const p of pairs(root)) {
    const k = keyOf(p);
    if (k !== "groups") throw new RuleFileError(`${loc.at(p.key)}: field ${k} not found in type rulefmt.RuleGroups`);
    groupsNode = p.value;
  }
  if (groupsNode === null || (isScalar(groupsNode) && groupsNode.value === null)) return [];
  if (!isSeq(groupsNode)) throw new RuleFileError(`${loc.at(groupsNode)}: groups must be a list`);
  const out: GroupConfig[] = [];
  const names = new Set<string>();
  for (const g of groupsNode.items as YamlNode[]) {
    if (!isMap(g)) throw new RuleFileError(`${loc.at(g)}: a group must be a map`);
    const fields = new Map<string, Pair<YamlNode, YamlNode>>();
    for (const p of pairs(g)) {
      const k = keyOf(p);
      if (!GROUP_KEYS.has(k)) throw new RuleFileError(`${loc.at(p.key)}: field ${k} not found in type rulefmt.RuleGroup`);
      fields.set(k, p);
    }
    const nameP = fields.get("name");
    const name = nameP === undefined ? "" : scalarString(nameP.value, loc.at(nameP.value), "group name");
    if (name === "") throw new RuleFileError(`${loc.at(nameP?.value ?? g)}: groupname must not be empty`);
    const ctx = `group ${JSON.stringify(name)}`;
    if (names.has(name)) throw new RuleFileError(`${loc.at(nameP!.value)}: ${ctx}: groupname must be unique within a file`);
    names.add(name);
    const intervalMs = fields.has("interval") ? durationMs(fields.get("interval")!.value, loc.at(fields.get("interval")!.value), `${ctx}: interval`) : undefined;
    if (intervalMs === 0) throw new RuleFileError(`${loc.at(fields.get("interval")!.value)}: ${ctx}: interval must be positive`);
    const queryOffsetMs = fields.has("query_offset") ? durationMs(fields.get("query_offset")!.value, loc.at(fields.get("query_offset")!.value), `${ctx}: query_offset`) : undefined;
    let limit = 0;
    const limitP = fields.get("limit");
    if (limitP !== undefined) {
      const v = isScalar(limitP.value) ? limitP.value.value : undefined;
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new RuleFileError(`${loc.at(limitP.value)}: ${ctx}: limit must be a non-negative integer`);
      limit = v;
    }
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(
      stringMap(fields.get("labels")?.value ?? null, loc, ctx, "labels", (k, v, where) => {
        checkLabelName(k, where, "label");
        scalarString(v, where, `label ${k}`);
      }),
    )) {
      labels[k] = scalarString(v, "", k);
    }
    const rulesNode = fields.get("rules")?.value ?? null;
    const rules: RuleConfig[] = [];
    if (rulesNode !== null && !(isScalar(rulesNode) && rulesNode.value === null)) {
      if (!isSeq(rulesNode)) throw new RuleFileError(`${loc.at(rulesNode)}: ${ctx}: rules must be a list`);
      (rulesNode.items as YamlNode[]).forEach((r, i) => rules.push(loadRule(r, loc, name, i)));
    }
    out.push(Object.freeze({ file, name, intervalMs, queryOffsetMs, limit, labels: Object.freeze(labels), rules: Object.freeze(rules) }));
  }
  return out;
}

/** Reads and parses a rule file. */
export function loadRuleFile(path: string): GroupConfig[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new RuleFileError(`${path}: cannot read rule file: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseRuleFile(text, path);
}
