import type { Arg, Command, Node, Pipeline } from "./ast.js";
import { ExecError, FUNCS, GoTime, goTimeString, truth, typeName, type FuncContext, type QueryFn, type Sample } from "./funcs.js";
import { GoInt, sprint } from "./gofmt.js";
import { checkVariables, parseTemplate, positionOf, TemplateError } from "./parse.js";

/**
 * A parsed rule template (Prometheus' Expander over text/template with missingkey=zero):
 * `$labels`, `$value`, `$externalLabels`, `$externalURL` predeclared, `.` the data below.
 */

/** The data a rule template sees as `.` (Prometheus' tmplData). */
export interface TemplateData {
  readonly labels: Readonly<Record<string, string>>;
  readonly externalLabels: Readonly<Record<string, string>>;
  readonly externalURL: string;
  readonly value: number;
}

/** The template's `.`: an object with Go field names. */
class DataObject {
  constructor(readonly fields: ReadonlyMap<string, unknown>) {}
}

const PREDECLARED = ["$labels", "$externalLabels", "$externalURL", "$value"];

const isFunc = (name: string): boolean => Object.hasOwn(FUNCS, name);

class Scope {
  private readonly vars = new Map<string, unknown>();
  constructor(private readonly parent: Scope | undefined) {}
  get(name: string): unknown {
    if (this.vars.has(name)) return this.vars.get(name);
    if (this.parent === undefined) throw new ExecError(`undefined variable: ${name}`);
    return this.parent.get(name);
  }
  declare(name: string, v: unknown): void {
    this.vars.set(name, v);
  }
  assign(name: string, v: unknown): void {
    if (this.vars.has(name)) this.vars.set(name, v);
    else if (this.parent === undefined) throw new ExecError(`undefined variable: ${name}`);
    else this.parent.assign(name, v);
  }
}

const MAX_OUTPUT = 1 << 20;

export class Template {
  private readonly nodes: readonly Node[];
  /** True when the text has no actions: render returns it as is. */
  private readonly plain: boolean;

  /** Parses `text`; throws TemplateError (line:col inside the text) for what it cannot render. */
  constructor(readonly text: string) {
    this.plain = !text.includes("{{");
    this.nodes = this.plain ? [] : parseTemplate(text, isFunc);
    if (!this.plain) checkVariables(this.nodes, PREDECLARED, text);
  }

  get usesQuery(): boolean {
    return /\bquery\b/.test(this.text);
  }

  /**
   * Renders with `data`; an error while executing gives Prometheus' placeholder
   * `<error expanding template: …>` as the result (the rule keeps working), and is returned.
   */
  async render(data: TemplateData, query?: QueryFn): Promise<{ text: string; error: string | undefined }> {
    if (this.plain) return { text: this.text, error: undefined };
    const dot = new DataObject(
      new Map<string, unknown>([
        ["Labels", new Map(Object.entries(data.labels))],
        ["ExternalLabels", new Map(Object.entries(data.externalLabels))],
        ["ExternalURL", data.externalURL],
        ["Value", data.value],
      ]),
    );
    const scope = new Scope(undefined);
    scope.declare("$", dot);
    scope.declare("$labels", dot.fields.get("Labels"));
    scope.declare("$externalLabels", dot.fields.get("ExternalLabels"));
    scope.declare("$externalURL", data.externalURL);
    scope.declare("$value", data.value);
    const run = new Run(this.text, { query, externalURL: data.externalURL });
    try {
      await run.list(this.nodes, scope, dot);
      return { text: run.out, error: undefined };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      const e = `error executing template: ${msg}`;
      return { text: `<error expanding template: ${e}>`, error: e };
    }
  }
}

class Run {
  out = "";
  constructor(
    private readonly text: string,
    private readonly ctx: FuncContext,
  ) {}

  private at(pos: number, err: unknown): never {
    if (err instanceof ExecError && /^\d+:\d+: /.test(err.message)) throw err;
    const { line, col } = positionOf(this.text, pos);
    throw new ExecError(`${line}:${col}: ${err instanceof Error ? err.message : String(err)}`);
  }

  private write(s: string): void {
    this.out += s;
    if (this.out.length > MAX_OUTPUT) throw new ExecError(`output exceeds ${MAX_OUTPUT} bytes`);
  }

  async list(nodes: readonly Node[], scope: Scope, dot: unknown): Promise<void> {
    for (const n of nodes) {
      switch (n.kind) {
        case "text":
          this.write(n.text);
          break;
        case "action": {
          const v = await this.pipeline(n.pipe, scope, dot);
          if (n.pipe.decl.length === 0) this.write(printValue(v));
          break;
        }
        case "if":
        case "with": {
          const inner = new Scope(scope);
          const v = await this.pipeline(n.pipe, inner, dot);
          if (truth(v)) await this.list(n.list, new Scope(inner), n.kind === "with" ? v : dot);
          else if (n.elseList) await this.list(n.elseList, new Scope(inner), dot);
          break;
        }
        case "range":
          await this.range(n, scope, dot);
          break;
      }
    }
  }

  private async range(n: Extract<Node, { kind: "range" }>, scope: Scope, dot: unknown): Promise<void> {
    const inner = new Scope(scope);
    const decl = n.pipe.decl;
    const v = await this.pipeline({ ...n.pipe, decl: [] }, inner, dot);
    const items: [unknown, unknown][] = [];
    if (Array.isArray(v)) v.forEach((x, i) => items.push([new GoInt(i), x]));
    else if (v instanceof Map) for (const k of [...(v as Map<string, string>).keys()].sort()) items.push([k, v.get(k)]);
    else if (v instanceof GoInt) for (let i = 0; i < v.v; i++) items.push([new GoInt(i), new GoInt(i)]);
    else this.at(n.pos, new ExecError(`range can't iterate over ${v === null || v === undefined ? "<nil>" : sprint(v)}`));
    if (items.length === 0) {
      if (n.elseList) await this.list(n.elseList, new Scope(inner), dot);
      return;
    }
    for (const [k, x] of items) {
      const s = new Scope(inner);
      if (decl.length === 1) s.declare(decl[0]!, x);
      else if (decl.length === 2) {
        s.declare(decl[0]!, k);
        s.declare(decl[1]!, x);
      }
      await this.list(n.list, s, x);
    }
  }

  private async pipeline(p: Pipeline, scope: Scope, dot: unknown): Promise<unknown> {
    let v: unknown = undefined;
    let first = true;
    for (const c of p.cmds) {
      v = await this.command(c, scope, dot, first ? undefined : { v });
      first = false;
    }
    for (const d of p.decl) {
      if (p.assign) scope.assign(d, v);
      else scope.declare(d, v);
    }
    return v;
  }

  private async command(c: Command, scope: Scope, dot: unknown, piped: { v: unknown } | undefined): Promise<unknown> {
    const head = c.args[0]!;
    if (head.kind === "ident") {
      const args: unknown[] = [];
      for (const a of c.args.slice(1)) args.push(await this.arg(a, scope, dot));
      if (piped) args.push(piped.v);
      try {
        return await FUNCS[head.name]!(args, this.ctx);
      } catch (err) {
        this.at(head.pos, new ExecError(`error calling ${head.name}: ${err instanceof Error ? err.message : String(err)}`));
      }
    }
    if (c.args.length > 1 || piped) this.at(head.pos, new ExecError(`can't give argument to non-function ${argText(head)}`));
    return this.arg(head, scope, dot);
  }

  private async arg(a: Arg, scope: Scope, dot: unknown): Promise<unknown> {
    switch (a.kind) {
      case "dot":
        return dot;
      case "field":
        return this.chain(dot, a.chain, a.pos);
      case "variable": {
        let v: unknown;
        try {
          v = scope.get(a.name);
        } catch (err) {
          this.at(a.pos, err);
        }
        return this.chain(v, a.chain, a.pos);
      }
      case "ident":
        try {
          return await FUNCS[a.name]!([], this.ctx);
        } catch (err) {
          this.at(a.pos, new ExecError(`error calling ${a.name}: ${err instanceof Error ? err.message : String(err)}`));
        }
      // falls through (unreachable: at() throws)
      case "string":
        return a.value;
      case "number":
        return a.isInt ? new GoInt(a.value) : a.value;
      case "bool":
        return a.value;
      case "nil":
        return null;
      case "pipe":
        return this.chain(await this.pipeline(a.pipe, new Scope(scope), dot), a.chain, a.pos);
    }
  }

  private chain(v: unknown, chain: readonly string[], pos: number): unknown {
    for (const f of chain) {
      if (v instanceof Map) v = (v as Map<string, string>).get(f) ?? "";
      else if (v instanceof DataObject) {
        if (!v.fields.has(f)) this.at(pos, new ExecError(`can't evaluate field ${f} in type *template.tmplData`));
        v = v.fields.get(f);
      } else if (typeof v === "object" && v !== null && !Array.isArray(v) && "labels" in v && "value" in v) {
        const s = v as Sample;
        if (f === "Labels") v = s.labels;
        else if (f === "Value") v = s.value;
        else this.at(pos, new ExecError(`can't evaluate field ${f} in type *template.sample`));
      } else if (v === null || v === undefined) this.at(pos, new ExecError(`nil pointer evaluating interface {}.${f}`));
      else this.at(pos, new ExecError(`can't evaluate field ${f} in type ${typeName(v)}`));
    }
    return v;
  }
}

function argText(a: Arg): string {
  switch (a.kind) {
    case "field":
      return `.${a.chain.join(".")}`;
    case "variable":
      return a.name + a.chain.map((c) => `.${c}`).join("");
    case "string":
      return JSON.stringify(a.value);
    case "number":
      return String(a.value);
    default:
      return a.kind;
  }
}

/** How text/template prints an action's value (fmt.Fprint; nil prints "<no value>"). */
function printValue(v: unknown): string {
  if (v === null || v === undefined) return "<no value>";
  if (v instanceof GoTime) return goTimeString(v);
  return sprint(v);
}

export { TemplateError };
