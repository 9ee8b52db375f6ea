import { readdirSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { loadRuleFile, RuleFileError, type GroupConfig } from "./rulefile.js";

/**
 * Expands `-rule` patterns (`/etc/strata/rules/*.yml`, `dir/**\/*.yaml`; `*`, `?`, `[…]` and
 * `**` in any path segment) to files, and loads every group from them. A pattern that matches
 * nothing is an error, as with vmalert.
 */

function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const j = seg.indexOf("]", i + 1);
      if (j < 0) re += "\\[";
      else {
        re += `[${seg.slice(i + 1, j).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

const hasMagic = (s: string): boolean => /[*?[]/.test(s);

function walk(base: string, segs: readonly string[], out: string[]): void {
  if (segs.length === 0) {
    if (statSync(base, { throwIfNoEntry: false })?.isFile()) out.push(base);
    return;
  }
  const [seg, ...rest] = segs as [string, ...string[]];
  if (seg === "**") {
    walk(base, rest, out);
    for (const e of safeReaddir(base)) if (statSync(join(base, e), { throwIfNoEntry: false })?.isDirectory()) walk(join(base, e), segs, out);
    return;
  }
  if (!hasMagic(seg)) {
    walk(join(base, seg), rest, out);
    return;
  }
  const re = segmentRegex(seg);
  for (const e of safeReaddir(base).sort()) if (re.test(e) && !e.startsWith(".")) walk(join(base, e), rest, out);
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Files matching a glob pattern, sorted. */
export function expandGlob(pattern: string, cwd = process.cwd()): string[] {
  const abs = resolve(cwd, pattern);
  if (!hasMagic(pattern)) return statSync(abs, { throwIfNoEntry: false })?.isFile() ? [abs] : [];
  const root = abs.startsWith(sep) ? sep : "";
  const out: string[] = [];
  walk(root, abs.split(sep).filter((s) => s !== ""), out);
  return [...new Set(out)].sort();
}

/** Loads every group of every file the patterns match (all or nothing). */
export function loadRules(patterns: readonly string[], cwd = process.cwd()): GroupConfig[] {
  const groups: GroupConfig[] = [];
  for (const p of patterns) {
    const files = expandGlob(p, cwd);
    if (files.length === 0) throw new RuleFileError(`-rule=${JSON.stringify(p)}: no rule files match`);
    for (const f of files) groups.push(...loadRuleFile(f));
  }
  return groups;
}
