import type { Arg, Command, Node, Pipeline } from "./ast.js";

/**
 * Parses a template into a tree. Everything outside the supported subset (define, template,
 * block, break, continue, unknown functions) is a TemplateError with the line and column, so a
 * rule file never renders a silent empty string for a feature Strata lacks.
 */

export class TemplateError extends Error {
  override readonly name = "TemplateError";
  constructor(
    message: string,
    /** 1-based line and column inside the template text. */
    readonly line: number,
    readonly col: number,
  ) {
    super(`${line}:${col}: ${message}`);
  }
}

export function positionOf(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      col = 1;
    } else col++;
  }
  return { line, col };
}

type TokKind = "ident" | "field" | "var" | "string" | "number" | "bool" | "nil" | "dot" | "lparen" | "rparen" | "pipe" | "declare" | "assign" | "comma" | "eof";

interface Tok {
  readonly kind: TokKind;
  readonly text: string;
  readonly pos: number;
}

/** Go's strconv.Unquote for "…" strings. */
function unquoteGo(s: string, fail: (msg: string) => never): string {
  let out = "";
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = s[++i];
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'", a: "\x07", b: "\b", f: "\f", v: "\v" };
    if (e !== undefined && simple[e] !== undefined) out += simple[e];
    else if (e === "x" || e === "u" || e === "U") {
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = s.slice(i + 1, i + 1 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) fail(`invalid escape \\${e}${hex} in string ${s}`);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += n;
    } else if (e !== undefined && /[0-7]/.test(e)) {
      const oct = s.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) fail(`invalid octal escape in string ${s}`);
      out += String.fromCharCode(parseInt(oct, 8));
      i += 2;
    } else fail(`invalid escape \\${e ?? ""} in string ${s}`);
  }
  return out;
}

const KEYWORDS = new Set(["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"]);

class Parser {
  private toks: Tok[] = [];
  private ti = 0;

  constructor(
    private readonly text: string,
    private readonly isFunc: (name: string) => boolean,
  ) {}

  fail(msg: string, pos: number): never {
    const { line, col } = positionOf(this.text, pos);
    throw new TemplateError(msg, line, col);
  }

  /** Splits the text into text pieces and action token lists, honouring {{- and -}}. */
  parse(): Node[] {
    const items: ({ kind: "text"; text: string } | { kind: "action"; toks: Tok[]; pos: number })[] = [];
    let i = 0;
    const t = this.text;
    let trimNext = false;
    while (i < t.length) {
      const open = t.indexOf("{{", i);
      let piece = open < 0 ? t.slice(i) : t.slice(i, open);
      if (trimNext) piece = piece.replace(/^[ \t\r\n]+/, "");
      trimNext = false;
      if (open < 0) {
        if (piece !== "") items.push({ kind: "text", text: piece });
        break;
      }
      let j = open + 2;
      if (t.startsWith("- ", j) || t.startsWith("-\t", j) || t.startsWith("-\n", j) || t.startsWith("-\r", j)) {
        piece = piece.replace(/[ \t\r\n]+$/, "");
        j += 1;
      }
      if (piece !== "") items.push({ kind: "text", text: piece });
      // comment
      const afterWs = /^\s*/.exec(t.slice(j))![0].length;
      if (t.startsWith("/*", j + afterWs)) {
        const end = t.indexOf("*/", j + afterWs + 2);
        if (end < 0) this.fail("unclosed comment", open);
        let k = end + 2;
        k += /^\s*/.exec(t.slice(k))![0].length;
        if (t.startsWith("-}}", k)) {
          trimNext = true;
          k += 3;
        } else if (t.startsWith("}}", k)) k += 2;
        else this.fail("comment ends before closing delimiter", end);
        i = k;
        continue;
      }
      const { toks, end, trim } = this.lexAction(j, open);
      items.push({ kind: "action", toks, pos: open });
      trimNext = trim;
      i = end;
    }
    this.items = items;
    this.ii = 0;
    const list = this.parseList(new Set());
    if (this.ii < this.items.length) {
      const it = this.items[this.ii]!;
      this.fail(`unexpected {{${it.kind === "action" ? it.toks[0]?.text ?? "" : ""}}}`, it.kind === "action" ? it.pos : 0);
    }
    return list.nodes;
  }

  private items: ({ kind: "text"; text: string } | { kind: "action"; toks: Tok[]; pos: number })[] = [];
  private ii = 0;

  private lexAction(start: number, open: number): { toks: Tok[]; end: number; trim: boolean } {
    const t = this.text;
    const toks: Tok[] = [];
    let i = start;
    for (;;) {
      while (i < t.length && /[ \t\r\n]/.test(t[i]!)) {
        if (t.startsWith(" -}}", i) || t.startsWith("\t-}}", i) || t.startsWith("\n-}}", i) || t.startsWith("\r-}}", i)) {
          toks.push({ kind: "eof", text: "", pos: i });
          return { toks, end: i + 4, trim: true };
        }
        i++;
      }
      if (i >= t.length) this.fail("unclosed action", open);
      const c = t[i]!;
      const pos = i;
      if (t.startsWith("}}", i)) {
        toks.push({ kind: "eof", text: "", pos });
        return { toks, end: i + 2, trim: false };
      }
      if (c === '"') {
        let j = i + 1;
        while (j < t.length && t[j] !== '"') {
          if (t[j] === "\\") j++;
          if (t[j] === "\n") this.fail("unterminated quoted string", pos);
          j++;
        }
        if (j >= t.length) this.fail("unterminated quoted string", pos);
        toks.push({ kind: "string", text: unquoteGo(t.slice(i, j + 1), (m) => this.fail(m, pos)), pos });
        i = j + 1;
      } else if (c === "`") {
        const j = t.indexOf("`", i + 1);
        if (j < 0) this.fail("unterminated raw quoted string", pos);
        toks.push({ kind: "string", text: t.slice(i + 1, j), pos });
        i = j + 1;
      } else if (c === "(") {
        toks.push({ kind: "lparen", text: c, pos });
        i++;
      } else if (c === ")") {
        toks.push({ kind: "rparen", text: c, pos });
        i++;
      } else if (c === "|") {
        toks.push({ kind: "pipe", text: c, pos });
        i++;
      } else if (c === ",") {
        toks.push({ kind: "comma", text: c, pos });
        i++;
      } else if (t.startsWith(":=", i)) {
        toks.push({ kind: "declare", text: ":=", pos });
        i += 2;
      } else if (c === "=") {
        toks.push({ kind: "assign", text: "=", pos });
        i++;
      } else if (c === "$") {
        const m = /^\$[A-Za-z0-9_]*/.exec(t.slice(i))!;
        toks.push({ kind: "var", text: m[0], pos });
        i += m[0].length;
      } else if (c === ".") {
        const m = /^\.[A-Za-z_][A-Za-z0-9_]*/.exec(t.slice(i));
        if (m) {
          toks.push({ kind: "field", text: m[0].slice(1), pos });
          i += m[0].length;
        } else if (/[0-9]/.test(t[i + 1] ?? "")) {
          const n = /^\.[0-9]+(?:[eE][+-]?[0-9]+)?/.exec(t.slice(i))!;
          toks.push({ kind: "number", text: n[0], pos });
          i += n[0].length;
        } else {
          toks.push({ kind: "dot", text: ".", pos });
          i++;
        }
      } else if (/[0-9+-]/.test(c)) {
        const m = /^[+-]?(?:0[xX][0-9a-fA-F_]+|(?:[0-9][0-9_]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/.exec(t.slice(i));
        if (!m) this.fail(`unexpected ${JSON.stringify(c)} in command`, pos);
        toks.push({ kind: "number", text: m[0], pos });
        i += m[0].length;
      } else if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(t.slice(i))!;
        const w = m[0];
        toks.push({ kind: w === "true" || w === "false" ? "bool" : w === "nil" ? "nil" : "ident", text: w, pos });
        i += w.length;
      } else if (c === "'") {
        this.fail("character constants are not supported", pos);
      } else this.fail(`unexpected ${JSON.stringify(c)} in command`, pos);
    }
  }

  /** Parses nodes until one of `stops` ({{else}}, {{end}}) is next; returns which stopped it. */
  private parseList(stops: ReadonlySet<string>): { nodes: Node[]; stop: string | undefined } {
    const nodes: Node[] = [];
    while (this.ii < this.items.length) {
      const it = this.items[this.ii]!;
      if (it.kind === "text") {
        nodes.push({ kind: "text", text: it.text });
        this.ii++;
        continue;
      }
      const first = it.toks[0]!;
      const kw = first.kind === "ident" && KEYWORDS.has(first.text) ? first.text : undefined;
      if (kw === "end" || kw === "else") {
        if (!stops.has(kw)) this.fail(`unexpected {{${kw}}}`, it.pos);
        return { nodes, stop: kw };
      }
      this.ii++;
      this.toks = it.toks;
      this.ti = kw === undefined ? 0 : 1;
      if (first.kind === "eof") this.fail("missing value for command", it.pos);
      switch (kw) {
        case undefined: {
          const pipe = this.parsePipeline(true);
          this.expect("eof");
          nodes.push({ kind: "action", pos: it.pos, pipe });
          break;
        }
        case "if":
        case "range":
        case "with":
          nodes.push(this.parseControl(kw, it.pos));
          break;
        default:
          this.fail(`{{${kw}}} is not supported in rule templates (Strata renders if, range, with, variables and functions)`, it.pos);
      }
    }
    return { nodes, stop: undefined };
  }

  private parseControl(kind: "if" | "range" | "with", pos: number): Node {
    const pipe = this.parsePipeline(true, kind === "range");
    if (pipe.cmds.length === 0) this.fail(`missing value for ${kind}`, pos);
    this.expect("eof");
    const body = this.parseList(new Set(["end", "else"]));
    let elseList: Node[] | undefined;
    if (body.stop === undefined) this.fail(`unexpected EOF: {{${kind}}} without {{end}}`, pos);
    const stopItem = this.items[this.ii] as { kind: "action"; toks: Tok[]; pos: number };
    this.ii++;
    if (body.stop === "else") {
      const next = stopItem.toks[1];
      if ((kind === "if" || kind === "with") && next?.kind === "ident" && (next.text === "if" || next.text === "with")) {
        // {{else if …}} / {{else with …}}: a nested control that consumes the same {{end}}.
        this.toks = stopItem.toks;
        this.ti = 2;
        const nested = this.parseControl(next.text as "if" | "with", stopItem.pos);
        return { kind, pos, pipe, list: body.nodes, elseList: [nested] };
      }
      if (next?.kind !== "eof") this.fail("unexpected tokens after else", stopItem.pos);
      const rest = this.parseList(new Set(["end"]));
      if (rest.stop !== "end") this.fail(`unexpected EOF: {{${kind}}} without {{end}}`, pos);
      const endItem = this.items[this.ii] as { kind: "action"; toks: Tok[]; pos: number };
      if (endItem.toks[1]?.kind !== "eof") this.fail("unexpected tokens after end", endItem.pos);
      this.ii++;
      elseList = rest.nodes;
    } else if (stopItem.toks[1]?.kind !== "eof") this.fail("unexpected tokens after end", stopItem.pos);
    return { kind, pos, pipe, list: body.nodes, elseList };
  }

  private peek(): Tok {
    return this.toks[this.ti]!;
  }

  private next(): Tok {
    return this.toks[this.ti++]!;
  }

  private expect(kind: TokKind): Tok {
    const t = this.next();
    if (t.kind !== kind) this.fail(`unexpected ${t.kind === "eof" ? "end of action" : JSON.stringify(t.text)}, want ${kind === "eof" ? "}}" : kind}`, t.pos);
    return t;
  }

  private parsePipeline(allowDecl: boolean, allowTwo = false, inParens = false): Pipeline {
    const pos = this.peek().pos;
    const decl: string[] = [];
    let assign = false;
    if (allowDecl && this.peek().kind === "var") {
      const save = this.ti;
      const v1 = this.next();
      let ok = false;
      if (this.peek().kind === "declare" || this.peek().kind === "assign") {
        decl.push(v1.text);
        assign = this.next().kind === "assign";
        ok = true;
      } else if (allowTwo && this.peek().kind === "comma") {
        this.next();
        const v2 = this.expect("var");
        if (this.peek().kind !== "declare") this.fail("range can only initialize variables with :=", this.peek().pos);
        this.next();
        decl.push(v1.text, v2.text);
        ok = true;
      }
      if (!ok) this.ti = save;
    }
    const cmds: Command[] = [];
    for (;;) {
      cmds.push(this.parseCommand());
      const t = this.peek();
      if (t.kind === "pipe") {
        this.next();
        continue;
      }
      if (t.kind === "eof" || (inParens && t.kind === "rparen")) break;
      this.fail(`unexpected ${JSON.stringify(t.text)} in operand`, t.pos);
    }
    return { pos, decl, assign, cmds };
  }

  private parseCommand(): Command {
    const pos = this.peek().pos;
    const args: Arg[] = [];
    for (;;) {
      const t = this.peek();
      if (t.kind === "eof" || t.kind === "pipe" || t.kind === "rparen") break;
      args.push(this.parseOperand());
    }
    if (args.length === 0) this.fail("missing value for command", pos);
    return { pos, args };
  }

  private chain(): string[] {
    const out: string[] = [];
    while (this.peek().kind === "field" && this.toks[this.ti - 1] !== undefined) {
      const prev = this.toks[this.ti - 1]!;
      const cur = this.peek();
      // `.a .b` are two operands; `$x.a` and `(…).a` are chains (no space before the dot).
      if (cur.pos !== prev.pos + (prev.kind === "field" ? prev.text.length + 1 : prev.kind === "rparen" ? 1 : prev.text.length)) break;
      out.push(this.next().text);
    }
    return out;
  }

  private parseOperand(): Arg {
    const t = this.next();
    switch (t.kind) {
      case "dot":
        return { kind: "dot", pos: t.pos };
      case "field": {
        const chain = [t.text, ...this.chain()];
        return { kind: "field", pos: t.pos, chain };
      }
      case "var":
        return { kind: "variable", pos: t.pos, name: t.text, chain: this.chain() };
      case "ident":
        if (KEYWORDS.has(t.text)) this.fail(`unexpected keyword ${t.text} in operand`, t.pos);
        if (!this.isFunc(t.text)) this.fail(`function "${t.text}" not defined`, t.pos);
        return { kind: "ident", pos: t.pos, name: t.text };
      case "string":
        return { kind: "string", pos: t.pos, value: t.text };
      case "number": {
        const clean = t.text.replace(/_/g, "");
        const isInt = /^[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(clean);
        const value = isInt ? Number.parseInt(clean, /^[+-]?0[xX]/.test(clean) ? 16 : 10) : Number(clean);
        if (Number.isNaN(value)) this.fail(`bad number syntax: ${JSON.stringify(t.text)}`, t.pos);
        return { kind: "number", pos: t.pos, value, isInt };
      }
      case "bool":
        return { kind: "bool", pos: t.pos, value: t.text === "true" };
      case "nil":
        return { kind: "nil", pos: t.pos };
      case "lparen": {
        const pipe = this.parsePipeline(false, false, true);
        this.expect("rparen");
        return { kind: "pipe", pos: t.pos, pipe, chain: this.chain() };
      }
      default:
        this.fail(`unexpected ${t.kind === "eof" ? "end of action" : JSON.stringify(t.text)} in operand`, t.pos);
    }
  }
}

/** Parses `text`; `isFunc` says which function names exist. */
export function parseTemplate(text: string, isFunc: (name: string) => boolean): Node[] {
  return new Parser(text, isFunc).parse();
}

/** Variables a tree declares or uses that are not declared in it (checked against the predeclared ones). */
export function checkVariables(nodes: readonly Node[], predeclared: readonly string[], text: string): void {
  const fail = (msg: string, pos: number): never => {
    const { line, col } = positionOf(text, pos);
    throw new TemplateError(msg, line, col);
  };
  const walkArgs = (args: readonly Arg[], scope: Set<string>): void => {
    for (const a of args) {
      if (a.kind === "variable" && a.name !== "$" && !scope.has(a.name)) fail(`undefined variable "${a.name}"`, a.pos);
      if (a.kind === "pipe") walkPipe(a.pipe, scope);
    }
  };
  const walkPipe = (p: Pipeline, scope: Set<string>): void => {
    for (const c of p.cmds) walkArgs(c.args, scope);
    for (const d of p.decl) {
      if (p.assign && !scope.has(d)) fail(`undefined variable "${d}"`, p.pos);
      scope.add(d);
    }
  };
  const walk = (list: readonly Node[], scope: Set<string>): void => {
    for (const n of list) {
      switch (n.kind) {
        case "text":
          break;
        case "action":
          walkPipe(n.pipe, scope);
          break;
        case "if":
        case "range":
        case "with": {
          const inner = new Set(scope);
          walkPipe(n.pipe, inner);
          walk(n.list, new Set(inner));
          if (n.elseList) walk(n.elseList, new Set(inner));
          break;
        }
      }
    }
  };
  walk(nodes, new Set(predeclared));
}
