/**
 * The subset of Go's text/template that Prometheus rule files use, as a tree: text, actions,
 * if / range / with (with else and else if), variables, pipelines, parenthesized pipelines.
 * `pos` is the byte offset of the node in the template text (for error messages).
 */

export type Node = TextNode | ActionNode | IfNode | RangeNode | WithNode;

export interface TextNode {
  readonly kind: "text";
  readonly text: string;
}

export interface ActionNode {
  readonly kind: "action";
  readonly pos: number;
  readonly pipe: Pipeline;
}

interface Branching {
  readonly pos: number;
  readonly pipe: Pipeline;
  readonly list: readonly Node[];
  readonly elseList: readonly Node[] | undefined;
}

export interface IfNode extends Branching {
  readonly kind: "if";
}
export interface RangeNode extends Branching {
  readonly kind: "range";
}
export interface WithNode extends Branching {
  readonly kind: "with";
}

/** `$a, $b := cmd | cmd` (decl empty when nothing is declared; assign for `=`). */
export interface Pipeline {
  readonly pos: number;
  readonly decl: readonly string[];
  readonly assign: boolean;
  readonly cmds: readonly Command[];
}

export interface Command {
  readonly pos: number;
  readonly args: readonly Arg[];
}

export type Arg =
  | { readonly kind: "dot"; readonly pos: number }
  | { readonly kind: "field"; readonly pos: number; readonly chain: readonly string[] }
  | { readonly kind: "variable"; readonly pos: number; readonly name: string; readonly chain: readonly string[] }
  | { readonly kind: "ident"; readonly pos: number; readonly name: string }
  | { readonly kind: "string"; readonly pos: number; readonly value: string }
  | { readonly kind: "number"; readonly pos: number; readonly value: number; readonly isInt: boolean }
  | { readonly kind: "bool"; readonly pos: number; readonly value: boolean }
  | { readonly kind: "nil"; readonly pos: number }
  | { readonly kind: "pipe"; readonly pos: number; readonly pipe: Pipeline; readonly chain: readonly string[] };
