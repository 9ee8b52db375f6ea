import { assertNever, newMatcher, StrataError, type LabelMatcher, type MatchType } from "@strata/core";
import {
  AGGREGATE_OPS,
  AGGREGATE_PARAM_TYPE,
  FUNCTIONS,
  describeType,
  isComparisonOp,
  isSetOp,
  node,
  typeOf,
  type AggregateExpr,
  type AggregateOp,
  type AtModifier,
  type BinaryExpr,
  type BinaryOp,
  type Call,
  type Cardinality,
  type Expr,
  type FunctionDef,
  type MatrixSelector,
  type NumberLiteral,
  type PosRange,
  type SubqueryExpr,
  type ValueType,
  type VectorMatching,
  type VectorSelector,
} from "../ast.js";
import { parseDurationExpr, parseOffsetDuration, type DurationValue } from "./duration-parser.js";
import { parseDurationMs, type Token, type TokenType } from "./lexer.js";
import { describe, KEYWORDS, MAX_DEPTH, POW_PREC, PREC, TOKEN_OPS, TokenStream, WORD_OPS } from "./stream.js";
import { goQuote, unquote } from "./strings.js";

/** Parses a PromQL expression; throws ParseError (a BadDataError) with position and reason. */
export function parseExpr(query: string): Expr {
  return new Parser(query).parseQuery();
}

/**
 * Parses a series selector as the HTTP API's `match[]` takes it (Prometheus'
 * ParseMetricSelector): `name`, `name{…}` or `{…}` and nothing else — no offset, @, range or
 * operators. Throws ParseError.
 */
export function parseMetricSelector(input: string): LabelMatcher[] {
  return new Parser(input).parseSelectorOnly();
}

const CASE_INSENSITIVE_FUNCS = new Set(["step", "range", "start", "end", "min_of", "max_of"]);

/** Keywords the grammar never accepts as a metric name. */
const NOT_METRIC_NAMES = new Set(["on", "ignoring", "group_left", "group_right", "bool", "atan2"]);

const MATCH_OPS: Partial<Record<TokenType, MatchType>> = { EQL: "=", NEQ: "!=", EQL_REGEX: "=~", NEQ_REGEX: "!~" };

class Parser extends TokenStream {
  /** Selectors without a non-empty matcher; an error unless exempted (info's 2nd argument). */
  private readonly emptySelectors = new Set<VectorSelector>();
  /** Heights of parsed sub-expressions (see heightOf). */
  private readonly heights = new WeakMap<Expr, number>();

  parseQuery(): Expr {
    if (this.peek().type === "EOF") throw this.errAt(this.peek(), "no expression found in input");
    const e = this.parseBinary(0);
    const t = this.peek();
    if (t.type !== "EOF") throw this.errAt(t, `unexpected ${describe(t)}`);
    if (this.emptySelectors.size > 0) {
      const first = [...this.emptySelectors].sort((a, b) => a.pos.start - b.pos.start)[0]!;
      throw this.errPos(first.pos, "vector selector must contain at least one non-empty matcher");
    }
    return e;
  }

  parseSelectorOnly(): LabelMatcher[] {
    const t = this.peek();
    let sel: VectorSelector;
    if (t.type === "LBRACE") sel = this.parseSelector(undefined);
    else if (t.type === "IDENT" || t.type === "METRIC_IDENT") {
      this.next();
      sel = this.parseSelector(t);
    } else if (t.type === "EOF") throw this.errAt(t, "no expression found in input");
    else throw this.errAt(t, `unexpected ${describe(t)}`);
    const end = this.peek();
    if (end.type !== "EOF") throw this.errAt(end, `unexpected ${describe(end)}`);
    if (this.emptySelectors.size > 0) throw this.errPos(sel.pos, "vector selector must contain at least one non-empty matcher");
    return [...sel.matchers];
  }

  // ---- expressions ----------------------------------------------------------------------

  private binaryOpAt(t: Token): BinaryOp | undefined {
    const op = TOKEN_OPS[t.type];
    if (op !== undefined) return op;
    if (t.type === "IDENT") return WORD_OPS[t.text.toLowerCase()];
    return undefined;
  }

  private parseBinary(minPrec: number): Expr {
    this.enter();
    try {
      return this.parseBinaryInner(minPrec);
    } finally {
      this.leave();
    }
  }

  private parseBinaryInner(minPrec: number): Expr {
    let lhs = this.parseUnary();
    for (;;) {
      const t = this.peek();
      const op = this.binaryOpAt(t);
      if (op === undefined) break;
      const prec = PREC[op];
      if (prec < minPrec) break;
      this.next();
      const mods = this.parseBinModifiers(op);
      const rhs = this.parseBinary(op === "^" ? prec : prec + 1);
      // A chain `a + a + … + a` is parsed in this loop but nests one BinaryExpr per operator; type
      // checks, the printer and the evaluator recurse over that tree, so its height is bounded too.
      if (Math.max(heightOf(lhs, this.heights), heightOf(rhs, this.heights)) + 1 + this.depth > MAX_DEPTH) {
        throw this.errAt(t, `expression nesting exceeds ${MAX_DEPTH} levels (each operator of a chain is one level)`);
      }
      lhs = this.makeBinary(op, t, lhs, rhs, mods);
    }
    return lhs;
  }

  private parseBinModifiers(op: BinaryOp): BinModifiers {
    let returnBool = false;
    let on: boolean | undefined;
    let labels: string[] = [];
    let card: Cardinality = "one-to-one";
    let include: string[] = [];
    let fillLeft: number | undefined;
    let fillRight: number | undefined;
    if (this.isWord(this.peek(), "bool")) {
      this.next();
      returnBool = true;
    }
    const t = this.peek();
    if (this.isWord(t, "on") || this.isWord(t, "ignoring")) {
      this.next();
      on = t.text.toLowerCase() === "on";
      labels = this.parseLabelList("grouping opts");
      const g = this.peek();
      if (this.isWord(g, "group_left") || this.isWord(g, "group_right")) {
        this.next();
        card = g.text.toLowerCase() === "group_left" ? "many-to-one" : "one-to-many";
        if (this.peek().type === "LPAREN") include = this.parseLabelList("grouping opts");
      }
    }
    for (;;) {
      const f = this.peek();
      if (f.type !== "IDENT" || this.peek(1).type !== "LPAREN") break;
      const w = f.text.toLowerCase();
      if (w !== "fill" && w !== "fill_left" && w !== "fill_right") break;
      this.next();
      this.next();
      const v = this.parseSignedNumber(`${w} modifier`);
      this.expect("RPAREN", `${w} modifier`, '")"');
      if (w !== "fill_right") fillLeft = v;
      if (w !== "fill_left") fillRight = v;
    }
    if (isSetOp(op) && card === "one-to-one") card = "many-to-many";
    return { returnBool, on, labels, card, include, fillLeft, fillRight };
  }

  private parseSignedNumber(context: string): number {
    let sign = 1;
    const s = this.peek();
    if (s.type === "SUB" || s.type === "ADD") {
      this.next();
      if (s.type === "SUB") sign = -1;
    }
    const t = this.peek();
    if (t.type === "NUMBER") {
      this.next();
      return sign * this.number(t);
    }
    if (t.type === "IDENT" && (t.text.toLowerCase() === "inf" || t.text.toLowerCase() === "nan")) {
      this.next();
      return sign * (t.text.toLowerCase() === "inf" ? Infinity : NaN);
    }
    throw this.errAt(t, `unexpected ${describe(t)} in ${context}, expected number`);
  }

  private makeBinary(op: BinaryOp, opTok: Token, lhs: Expr, rhs: Expr, m: BinModifiers): BinaryExpr {
    const lt = typeOf(lhs);
    const rt = typeOf(rhs);
    const pos: PosRange = { start: lhs.pos.start, end: rhs.pos.end };
    const opPos = this.pos(opTok.start, opTok.end);
    if (m.returnBool && !isComparisonOp(op)) {
      throw this.errPos(opPos, "bool modifier can only be used on comparison operators");
    }
    if (isComparisonOp(op) && !m.returnBool && lt === "scalar" && rt === "scalar") {
      throw this.errPos(opPos, "comparisons between scalars must use BOOL modifier");
    }
    if (m.on === true) {
      for (const l of m.labels) {
        if (m.include.includes(l)) throw this.errPos(opPos, `label ${goQuote(l)} must not occur in ON and GROUP clause at once`);
      }
    }
    if (lt !== "scalar" && lt !== "vector") {
      throw this.errPos(lhs.pos, "binary expression must contain only scalar and instant vector types");
    }
    if (rt !== "scalar" && rt !== "vector") {
      throw this.errPos(rhs.pos, "binary expression must contain only scalar and instant vector types");
    }
    let matching: VectorMatching | undefined;
    if (lt === "vector" && rt === "vector") {
      if (isSetOp(op)) {
        if (m.card === "one-to-many" || m.card === "many-to-one") throw this.errPos(pos, `no grouping allowed for "${op}" operation`);
      }
      matching = Object.freeze({
        card: m.card,
        on: m.on === true,
        labels: Object.freeze(m.labels),
        include: Object.freeze(m.include),
        fillLeft: m.fillLeft,
        fillRight: m.fillRight,
      });
    } else if (m.labels.length > 0) {
      throw this.errPos(pos, "vector matching only allowed between instant vectors");
    }
    if ((lt === "scalar" || rt === "scalar") && isSetOp(op)) {
      throw this.errPos(pos, `set operator "${op}" not allowed in binary scalar expression`);
    }
    return node<BinaryExpr>({ kind: "BinaryExpr", op, lhs, rhs, returnBool: m.returnBool, matching, pos });
  }

  private parseUnary(): Expr {
    const t = this.peek();
    if (t.type === "ADD" || t.type === "SUB") {
      this.next();
      const e = this.parseBinary(POW_PREC);
      const pos: PosRange = { start: this.b(t.start), end: e.pos.end };
      if (e.kind === "NumberLiteral") {
        return node<NumberLiteral>({ ...e, value: t.type === "SUB" ? -e.value : e.value, pos });
      }
      const et = typeOf(e);
      if (et !== "scalar" && et !== "vector") {
        throw this.errPos(pos, `unary expression only allowed on expressions of type scalar or instant vector, got ${goQuote(describeType(et))}`);
      }
      return node({ kind: "UnaryExpr", op: t.type === "SUB" ? "-" : "+", expr: e, pos });
    }
    return this.parsePostfix(this.parsePrimary());
  }

  private parsePrimary(): Expr {
    const t = this.peek();
    switch (t.type) {
      case "NUMBER":
        this.next();
        return node<NumberLiteral>({ kind: "NumberLiteral", value: this.number(t), duration: false, pos: this.pos(t.start, t.end) });
      case "DURATION": {
        this.next();
        const ms = parseDurationMs(t.text);
        if (ms === undefined) throw this.errAt(t, `not a valid duration string: ${goQuote(t.text)}`);
        return node<NumberLiteral>({ kind: "NumberLiteral", value: ms / 1000, duration: true, pos: this.pos(t.start, t.end) });
      }
      case "STRING":
        this.next();
        return node({ kind: "StringLiteral", value: unquote(t.text), pos: this.pos(t.start, t.end) });
      case "LPAREN": {
        this.next();
        const e = this.parseBinary(0);
        const r = this.expect("RPAREN", "parenthesized expression", '")"');
        return node({ kind: "ParenExpr", expr: e, pos: this.pos(t.start, r.end) });
      }
      case "LBRACE":
        return this.parseSelector(undefined);
      case "METRIC_IDENT":
        this.next();
        return this.parseSelector(t);
      case "IDENT": {
        const lower = t.text.toLowerCase();
        const nt = this.peek(1);
        if (lower === "inf" || lower === "nan") {
          this.next();
          return node<NumberLiteral>({
            kind: "NumberLiteral",
            value: lower === "inf" ? Infinity : NaN,
            duration: false,
            pos: this.pos(t.start, t.end),
          });
        }
        if (AGGREGATE_OPS.includes(lower as AggregateOp) && (nt.type === "LPAREN" || this.isWord(nt, "by") || this.isWord(nt, "without"))) {
          return this.parseAggregate();
        }
        if (NOT_METRIC_NAMES.has(lower)) throw this.errAt(t, `unexpected ${describe(t)}`);
        // Keywords that Prometheus also accepts as metric names (by, offset, and, …) only
        // start a call when they name a function (start(), end()).
        if (nt.type === "LPAREN" && (!KEYWORDS.has(lower) && WORD_OPS[lower] === undefined || FUNCTIONS[lower] !== undefined)) {
          return this.parseCall();
        }
        this.next();
        return this.parseSelector(t);
      }
      case "EOF":
        throw this.errAt(t, "unexpected end of input");
      default:
        throw this.errAt(t, `unexpected ${describe(t)}`);
    }
  }

  private parseCall(): Expr {
    const nameTok = this.next();
    const lower = nameTok.text.toLowerCase();
    const func: FunctionDef | undefined =
      FUNCTIONS[nameTok.text] ?? (CASE_INSENSITIVE_FUNCS.has(lower) ? FUNCTIONS[lower] : undefined);
    if (func === undefined) throw this.errAt(nameTok, `unknown function with name ${goQuote(nameTok.text)}`);
    this.next(); // (
    const args: Expr[] = [];
    if (this.peek().type !== "RPAREN") {
      for (;;) {
        args.push(this.parseBinary(0));
        const t = this.peek();
        if (t.type === "COMMA") {
          this.next();
          if (this.peek().type === "RPAREN") throw this.errAt(t, "trailing commas not allowed in function call args");
          continue;
        }
        if (t.type === "RPAREN") break;
        throw this.errAt(t, `unexpected ${describe(t)} in function call args, expected "," or ")"`);
      }
    }
    const r = this.next();
    const pos = this.pos(nameTok.start, r.end);
    this.checkCall(func, args, pos);
    return node<Call>({ kind: "Call", func, args: Object.freeze(args), pos });
  }

  private checkCall(func: FunctionDef, args: readonly Expr[], pos: PosRange): void {
    const nargs = func.argTypes.length;
    if (func.variadic === 0) {
      if (nargs !== args.length) {
        throw this.errPos(pos, `expected ${nargs} argument(s) in call to ${goQuote(func.name)}, got ${args.length}`);
      }
    } else {
      const na = nargs - 1;
      if (na > args.length) {
        throw this.errPos(pos, `expected at least ${na} argument(s) in call to ${goQuote(func.name)}, got ${args.length}`);
      } else if (func.variadic > 0 && na + func.variadic < args.length) {
        throw this.errPos(pos, `expected at most ${na + func.variadic} argument(s) in call to ${goQuote(func.name)}, got ${args.length}`);
      }
    }
    const context = `call to function ${goQuote(func.name)}`;
    if (func.name === "info" && args.length > 1) {
      const a = args[1]!;
      if (typeOf(a) !== "vector") {
        throw this.errPos(a.pos, `expected type instant vector in ${context}, got ${describeType(typeOf(a))}`);
      }
      if (a.kind !== "VectorSelector") throw this.errPos(a.pos, "expected label selectors only");
      if (a.name !== "") throw this.errPos(a.pos, "expected label selectors only, got vector selector instead");
      // The info metric selector may consist of empty matchers only ({data=~".*"}).
      this.emptySelectors.delete(a);
    }
    for (let i = 0; i < args.length; i++) {
      let k = i;
      if (k >= nargs) {
        if (func.variadic === 0) break;
        k = nargs - 1;
      }
      this.expectType(args[i]!, func.argTypes[k]!, context);
    }
  }

  private expectType(e: Expr, want: ValueType, context: string): void {
    const got = typeOf(e);
    if (got !== want) throw this.errPos(e.pos, `expected type ${describeType(want)} in ${context}, got ${describeType(got)}`);
  }

  private parseAggregate(): Expr {
    const opTok = this.next();
    const op = opTok.text.toLowerCase() as AggregateOp;
    let grouping: string[] | undefined;
    let without = false;
    const mod = this.peek();
    if (this.isWord(mod, "by") || this.isWord(mod, "without")) {
      this.next();
      without = mod.text.toLowerCase() === "without";
      grouping = this.parseLabelList("grouping opts");
    }
    const lp = this.expect("LPAREN", "aggregation", '"("');
    void lp;
    const args: Expr[] = [];
    if (this.peek().type !== "RPAREN") {
      for (;;) {
        args.push(this.parseBinary(0));
        const t = this.peek();
        if (t.type === "COMMA") {
          this.next();
          if (this.peek().type === "RPAREN") throw this.errAt(t, "trailing commas not allowed in function call args");
          continue;
        }
        if (t.type === "RPAREN") break;
        throw this.errAt(t, `unexpected ${describe(t)} in aggregation, expected "," or ")"`);
      }
    }
    let end = this.next().end;
    if (grouping === undefined) {
      const m2 = this.peek();
      if (this.isWord(m2, "by") || this.isWord(m2, "without")) {
        this.next();
        without = m2.text.toLowerCase() === "without";
        grouping = this.parseLabelList("grouping opts");
        end = this.lastEnd();
      }
    }
    const pos = this.pos(opTok.start, end);
    if (args.length === 0) throw this.errPos(pos, "no arguments for aggregate expression provided");
    const paramType = AGGREGATE_PARAM_TYPE[op];
    const desired = paramType === undefined ? 1 : 2;
    if (args.length !== desired) {
      throw this.errPos(pos, `wrong number of arguments for aggregate expression provided, expected ${desired}, got ${args.length}`);
    }
    const expr = args[desired - 1]!;
    const param = paramType === undefined ? undefined : args[0]!;
    this.expectType(expr, "vector", "aggregation expression");
    if (param !== undefined && paramType !== undefined) this.expectType(param, paramType, "aggregation parameter");
    return node<AggregateExpr>({
      kind: "AggregateExpr",
      op,
      expr,
      param,
      grouping: Object.freeze(grouping ?? []),
      without,
      pos,
    });
  }

  /** `( label, "quoted label", … )` with an optional trailing comma. */
  private parseLabelList(context: string): string[] {
    this.expect("LPAREN", context, '"("');
    const out: string[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === "RPAREN") {
        this.next();
        return out;
      }
      if (t.type === "IDENT") {
        out.push(t.text);
      } else if (t.type === "STRING") {
        const v = unquote(t.text);
        if (!v.isWellFormed()) throw this.errAt(t, `invalid label name ${goQuote(v)}`);
        out.push(v);
      } else {
        throw this.errAt(t, `unexpected ${describe(t)} in ${context}, expected label`);
      }
      this.next();
      const s = this.peek();
      if (s.type === "COMMA") {
        this.next();
      } else if (s.type !== "RPAREN") {
        throw this.errAt(s, `unexpected ${describe(s)} in ${context}, expected "," or ")"`);
      }
    }
  }

  // ---- selectors ------------------------------------------------------------------------

  private parseSelector(nameTok: Token | undefined): VectorSelector {
    const name = nameTok?.text ?? "";
    const start = nameTok?.start ?? this.peek().start;
    let end = nameTok?.end ?? start;
    const matchers: LabelMatcher[] = [];
    if (this.peek().type === "LBRACE") {
      this.next();
      for (;;) {
        const t = this.peek();
        if (t.type === "RBRACE") {
          end = this.next().end;
          break;
        }
        let label: string;
        if (t.type === "IDENT") {
          label = t.text;
        } else if (t.type === "STRING") {
          label = unquote(t.text);
        } else {
          throw this.errAt(t, `unexpected ${describe(t)} in label matching, expected identifier or "}"`);
        }
        this.next();
        const opTok = this.peek();
        const op = MATCH_OPS[opTok.type];
        if (op === undefined) {
          if (t.type === "STRING" && (opTok.type === "COMMA" || opTok.type === "RBRACE")) {
            // {"metric.name"}: a quoted metric name inside the braces, i.e. a __name__ matcher
            // in place (Prometheus leaves the selector's Name empty; repeats are allowed).
            matchers.push(this.matcher("=", "__name__", label, t));
          } else {
            throw this.errAt(opTok, `unexpected ${describe(opTok)} in label matching, expected label matching operator`);
          }
        } else {
          this.next();
          const v = this.peek();
          if (v.type !== "STRING") throw this.errAt(v, `unexpected ${describe(v)} in label matching, expected string`);
          this.next();
          matchers.push(this.matcher(op, label, unquote(v.text), v));
        }
        const s = this.peek();
        if (s.type === "COMMA") this.next();
        else if (s.type !== "RBRACE") throw this.errAt(s, `unexpected ${describe(s)} in label matching, expected "," or "}"`);
      }
    }
    if (name !== "") {
      for (const m of matchers) {
        if (m.name === "__name__") {
          throw this.errPos(this.pos(start, end), `metric name must not be set twice: ${goQuote(name)} or ${goQuote(m.value)}`);
        }
      }
      matchers.push(this.matcher("=", "__name__", name, nameTok!));
    }
    const sel = node<VectorSelector>({
      kind: "VectorSelector",
      name,
      matchers: Object.freeze(matchers),
      offset: 0,
      offsetExpr: undefined,
      at: undefined,
      atModifier: undefined,
      anchored: false,
      smoothed: false,
      pos: this.pos(start, end),
    });
    if (!matchers.some((m) => !m.matches(""))) this.emptySelectors.add(sel);
    return sel;
  }

  private matcher(op: MatchType, name: string, value: string, at: Token): LabelMatcher {
    try {
      return newMatcher(op, name, value);
    } catch (e) {
      if (e instanceof StrataError) throw this.errAt(at, e.message);
      throw e;
    }
  }

  // ---- postfix: ranges, subqueries, offset, @, anchored/smoothed ------------------------

  private parsePostfix(e: Expr): Expr {
    for (;;) {
      const t = this.peek();
      if (t.type === "LBRACKET") {
        e = this.parseRangeOrSubquery(e);
      } else if (this.isWord(t, "offset")) {
        this.next();
        e = this.applyOffset(e, parseOffsetDuration(this), t);
      } else if (t.type === "AT") {
        this.next();
        e = this.applyAt(e, t);
      } else if ((this.isWord(t, "anchored") || this.isWord(t, "smoothed")) && (e.kind === "VectorSelector" || e.kind === "MatrixSelector")) {
        this.next();
        e = this.applyExtended(e, t.text.toLowerCase() === "anchored" ? "anchored" : "smoothed", t);
      } else {
        return e;
      }
    }
  }

  private parseRangeOrSubquery(e: Expr): Expr {
    const lb = this.next();
    const range = parseDurationExpr(this);
    if (this.peek().type === "COLON") {
      this.next();
      let step: DurationValue = { ms: 0, expr: undefined };
      if (this.peek().type !== "RBRACKET") step = parseDurationExpr(this);
      const rb = this.expect("RBRACKET", "subquery selector", '"]"');
      const t = typeOf(e);
      const pos: PosRange = { start: e.pos.start, end: this.b(rb.end) };
      if (t !== "vector") throw this.errPos(pos, `subquery is only allowed on instant vector, got ${t} instead`);
      this.checkRange(range, lb);
      return node<SubqueryExpr>({
        kind: "SubqueryExpr",
        expr: e,
        range: range.ms,
        rangeExpr: range.expr,
        step: step.ms,
        stepExpr: step.expr,
        offset: 0,
        offsetExpr: undefined,
        at: undefined,
        atModifier: undefined,
        pos,
      });
    }
    const rb = this.expect("RBRACKET", "range selector", '":" or "]"');
    const pos: PosRange = { start: e.pos.start, end: this.b(rb.end) };
    if (e.kind !== "VectorSelector") throw this.errPos(pos, "ranges only allowed for vector selectors");
    if (e.offset !== 0 || e.offsetExpr !== undefined) throw this.errPos(pos, "no offset modifiers allowed before range");
    if (e.at !== undefined || e.atModifier !== undefined) throw this.errPos(pos, "no @ modifiers allowed before range");
    this.checkRange(range, lb);
    return node<MatrixSelector>({ kind: "MatrixSelector", vector: e, range: range.ms, rangeExpr: range.expr, pos });
  }

  private checkRange(d: DurationValue, at: Token): void {
    if (d.expr === undefined && d.ms <= 0) {
      throw this.errAt(at, `duration must be greater than 0`);
    }
  }

  private applyOffset(e: Expr, d: DurationValue, tok: Token): Expr {
    const end = this.b(this.lastEnd());
    switch (e.kind) {
      case "VectorSelector":
        if (e.offset !== 0 || e.offsetExpr !== undefined) throw this.errAt(tok, "offset may not be set multiple times");
        return node<VectorSelector>({ ...e, offset: d.ms, offsetExpr: d.expr, pos: { start: e.pos.start, end } });
      case "MatrixSelector": {
        const v = e.vector;
        if (v.offset !== 0 || v.offsetExpr !== undefined) throw this.errAt(tok, "offset may not be set multiple times");
        return node<MatrixSelector>({ ...e, vector: node<VectorSelector>({ ...v, offset: d.ms, offsetExpr: d.expr }), pos: { start: e.pos.start, end } });
      }
      case "SubqueryExpr":
        if (e.offset !== 0 || e.offsetExpr !== undefined) throw this.errAt(tok, "offset may not be set multiple times");
        return node<SubqueryExpr>({ ...e, offset: d.ms, offsetExpr: d.expr, pos: { start: e.pos.start, end } });
      default:
        throw this.errAt(tok, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery");
    }
  }

  private applyAt(e: Expr, tok: Token): Expr {
    let at: number | undefined;
    let atModifier: AtModifier | undefined;
    const t = this.peek();
    if ((this.isWord(t, "start") || this.isWord(t, "end")) && this.peek(1).type === "LPAREN") {
      this.next();
      this.next();
      this.expect("RPAREN", "@ modifier", '")"');
      atModifier = t.text.toLowerCase() === "start" ? "start" : "end";
    } else {
      let sign = 1;
      const s = this.peek();
      if (s.type === "SUB" || s.type === "ADD") {
        this.next();
        if (s.type === "SUB") sign = -1;
      }
      const n = this.peek();
      let secs: number;
      if (n.type === "NUMBER") secs = this.number(n);
      else if (n.type === "DURATION") {
        const ms = parseDurationMs(n.text);
        if (ms === undefined) throw this.errAt(n, `not a valid duration string: ${goQuote(n.text)}`);
        secs = ms / 1000;
      } else if (n.type === "IDENT" && (n.text.toLowerCase() === "inf" || n.text.toLowerCase() === "nan")) {
        secs = n.text.toLowerCase() === "inf" ? Infinity : NaN;
      } else throw this.errAt(n, `unexpected ${describe(n)} in @, expected timestamp`);
      this.next();
      secs *= sign;
      // Go's math.Round: halves away from zero (Math.round rounds them up).
      const ms = Math.sign(secs) * Math.round(Math.abs(secs * 1000));
      if (!Number.isFinite(secs) || !Number.isFinite(ms) || Math.abs(ms) > 9.2233720368547e18) {
        throw this.errAt(n, `timestamp out of bounds for @ modifier: ${formatGoFloatF(secs)}`);
      }
      at = ms;
    }
    const end = this.b(this.lastEnd());
    const twice = "@ <timestamp> may not be set multiple times";
    switch (e.kind) {
      case "VectorSelector":
        if (e.at !== undefined || e.atModifier !== undefined) throw this.errAt(tok, twice);
        return node<VectorSelector>({ ...e, at, atModifier, pos: { start: e.pos.start, end } });
      case "MatrixSelector": {
        const v = e.vector;
        if (v.at !== undefined || v.atModifier !== undefined) throw this.errAt(tok, twice);
        return node<MatrixSelector>({ ...e, vector: node<VectorSelector>({ ...v, at, atModifier }), pos: { start: e.pos.start, end } });
      }
      case "SubqueryExpr":
        if (e.at !== undefined || e.atModifier !== undefined) throw this.errAt(tok, twice);
        return node<SubqueryExpr>({ ...e, at, atModifier, pos: { start: e.pos.start, end } });
      default:
        throw this.errAt(tok, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery");
    }
  }

  private applyExtended(e: VectorSelector | MatrixSelector, which: "anchored" | "smoothed", tok: Token): Expr {
    const v = e.kind === "VectorSelector" ? e : e.vector;
    if (v.anchored || v.smoothed) throw this.errAt(tok, `${which} modifier may not be combined with another one`);
    const nv = node<VectorSelector>({ ...v, [which]: true });
    const end = this.b(tok.end);
    if (e.kind === "VectorSelector") return node<VectorSelector>({ ...nv, pos: { start: nv.pos.start, end } });
    return node<MatrixSelector>({ ...e, vector: nv, pos: { start: e.pos.start, end } });
  }
}

interface BinModifiers {
  readonly returnBool: boolean;
  readonly on: boolean | undefined;
  readonly labels: string[];
  readonly card: Cardinality;
  readonly include: string[];
  readonly fillLeft: number | undefined;
  readonly fillRight: number | undefined;
}

/** Go's %f (6 decimals), for error messages. */
function formatGoFloatF(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return v.toFixed(6);
}

/** The sub-expressions of a node (durations included), in no particular order. */
function childrenOf(e: Expr): (Expr | undefined)[] {
  switch (e.kind) {
    case "NumberLiteral":
    case "StringLiteral":
      return [];
    case "VectorSelector":
      return [e.offsetExpr];
    case "MatrixSelector":
      return [e.vector, e.rangeExpr];
    case "SubqueryExpr":
      return [e.expr, e.rangeExpr, e.stepExpr, e.offsetExpr];
    case "Call":
      return [...e.args];
    case "AggregateExpr":
      return [e.expr, e.param];
    case "BinaryExpr":
      return [e.lhs, e.rhs];
    case "UnaryExpr":
    case "ParenExpr":
    case "StepInvariantExpr":
      return [e.expr];
    default:
      return assertNever(e, "expression kind");
  }
}

/**
 * The height of an expression tree (a leaf is 1), without recursion: a tree too deep for the
 * call stack must still be measurable. Heights of visited nodes are kept in `memo`, so measuring
 * each new operator of a chain costs only its new operand.
 */
function heightOf(root: Expr, memo: WeakMap<Expr, number>): number {
  const known = memo.get(root);
  if (known !== undefined) return known;
  const stack: Expr[] = [root];
  while (stack.length > 0) {
    const e = stack[stack.length - 1]!;
    if (memo.has(e)) {
      stack.pop();
      continue;
    }
    let h = 0;
    let pending = false;
    for (const c of childrenOf(e)) {
      if (c === undefined) continue;
      const ch = memo.get(c);
      if (ch === undefined) {
        stack.push(c);
        pending = true;
      } else if (ch > h) h = ch;
    }
    if (!pending) {
      memo.set(e, h + 1);
      stack.pop();
    }
  }
  return memo.get(root)!;
}
