/**
 * Go's regexp.Expand template semantics, which Prometheus uses for `replacement` and
 * `target_label`: `$1`, `${1}`, `$name`, `${name}`, `$$` for a literal `$`. In `$name` the name
 * is the longest run of letters, digits and `_` (so `$1x` means the group named `1x`, which
 * does not exist and expands to ""). A malformed reference (`$`, `${`, `${}`, `${1`) is kept as
 * a literal `$` followed by the rest. Groups that did not participate expand to "".
 */

/** Captured groups of one match: `group(i)` and named groups resolved to indices. */
export interface Captures {
  group(i: number): string | null;
  readonly groupCount: number;
  readonly named: Readonly<Record<string, number>>;
}

function isNameChar(c: string): boolean {
  return /[\p{L}\p{Nd}_]/u.test(c);
}

interface Ref {
  readonly name: string;
  readonly num: number; // -1 when the name is not a number
  readonly rest: number; // index after the reference
}

function extract(t: string, start: number): Ref | undefined {
  let i = start;
  if (i >= t.length) return undefined;
  let brace = false;
  if (t[i] === "{") {
    brace = true;
    i++;
  }
  const nameStart = i;
  while (i < t.length) {
    const cp = t.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (!isNameChar(ch)) break;
    i += ch.length;
  }
  if (i === nameStart) return undefined;
  const name = t.slice(nameStart, i);
  if (brace) {
    if (i >= t.length || t[i] !== "}") return undefined;
    i++;
  }
  let num = 0;
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c < 0x30 || c > 0x39 || num >= 1e8) {
      num = -1;
      break;
    }
    num = num * 10 + (c - 0x30);
  }
  if (name[0] === "0" && name.length > 1) num = -1;
  return { name, num, rest: i };
}

export function expandTemplate(template: string, caps: Captures): string {
  if (!template.includes("$")) return template;
  let out = "";
  let i = 0;
  while (i < template.length) {
    const d = template.indexOf("$", i);
    if (d < 0) break;
    out += template.slice(i, d);
    i = d + 1;
    if (template[i] === "$") {
      out += "$";
      i++;
      continue;
    }
    const ref = extract(template, i);
    if (ref === undefined) {
      out += "$";
      continue;
    }
    i = ref.rest;
    if (ref.num >= 0) {
      if (ref.num <= caps.groupCount) out += caps.group(ref.num) ?? "";
    } else {
      const idx = caps.named[ref.name];
      if (idx !== undefined) out += caps.group(idx) ?? "";
    }
  }
  return out + template.slice(i);
}

/** True when the template refers to a capture group (Prometheus' varInRegexTemplate). */
export function hasTemplateVar(s: string): boolean {
  return s.includes("$");
}
