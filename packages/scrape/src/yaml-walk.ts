import { BadDataError, parseDuration } from "@strata/core";
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node } from "yaml";

/**
 * A read-only walk over a parsed YAML document that keeps each value's position, so that every
 * error names the file, the line and the key path (`prometheus.yml:12: scrape_configs[0].scrape_interval: …`).
 */
export class YamlNode {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
    readonly node: Node | null,
    readonly path: string,
    private readonly keyLine?: number,
  ) {}

  static parse(file: string, text: string): YamlNode {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, logLevel: "silent", prettyErrors: false });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem !== undefined) {
      const line = lines.linePos(problem.pos[0]).line;
      throw new BadDataError(`${file}:${line}: invalid YAML: ${problem.message.split("\n")[0]}`, "STRATA_PARSE_ERROR");
    }
    return new YamlNode(file, lines, (doc.contents as Node | null) ?? null, "");
  }

  get line(): number {
    if (this.keyLine !== undefined) return this.keyLine;
    const r = this.node?.range;
    return r ? this.lines.linePos(r[0]).line : 1;
  }

  error(what: string): BadDataError {
    return new BadDataError(`${this.file}:${this.line}: ${this.path === "" ? "" : `${this.path}: `}${what}`, "STRATA_PARSE_ERROR");
  }

  get isNull(): boolean {
    return this.node === null || (isScalar(this.node) && this.node.value === null);
  }

  /** The entries of a mapping, checked against `known` keys (an unknown key is an error naming it). */
  map(known: ReadonlySet<string>): Map<string, YamlNode> {
    const out = new Map<string, YamlNode>();
    if (this.isNull) return out;
    if (!isMap(this.node)) throw this.error("want a mapping");
    for (const pair of this.node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : "";
      const keyNode = pair.key as Node | null;
      const kl = keyNode?.range ? this.lines.linePos(keyNode.range[0]).line : this.line;
      const path = this.path === "" ? k : `${this.path}.${k}`;
      if (!known.has(k)) throw new BadDataError(`${this.file}:${kl}: ${path}: unknown field`, "STRATA_PARSE_ERROR");
      const value = (pair.value as Node | null) ?? null;
      out.set(k, new YamlNode(this.file, this.lines, value, path, value === null ? kl : undefined));
    }
    return out;
  }

  /** The entries of a mapping with any keys (e.g. `params`, `labels`). */
  anyMap(): Map<string, YamlNode> {
    const out = new Map<string, YamlNode>();
    if (this.isNull) return out;
    if (!isMap(this.node)) throw this.error("want a mapping");
    for (const pair of this.node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : "";
      const value = (pair.value as Node | null) ?? null;
      const keyNode = pair.key as Node | null;
      const kl = keyNode?.range ? this.lines.linePos(keyNode.range[0]).line : this.line;
      out.set(k, new YamlNode(this.file, this.lines, value, `${this.path}.${k}`, value === null ? kl : undefined));
    }
    return out;
  }

  seq(): YamlNode[] {
    if (this.isNull) return [];
    if (!isSeq(this.node)) throw this.error("want a list");
    return this.node.items.map((n, i) => new YamlNode(this.file, this.lines, (n as Node | null) ?? null, `${this.path}[${i}]`));
  }

  string(): string {
    if (!isScalar(this.node)) throw this.error("want a string");
    const v = this.node.value;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    throw this.error("want a string");
  }

  bool(): boolean {
    if (!isScalar(this.node) || typeof this.node.value !== "boolean") throw this.error("want true or false");
    return this.node.value;
  }

  int(min = 0): number {
    if (!isScalar(this.node) || typeof this.node.value !== "number" || !Number.isSafeInteger(this.node.value)) throw this.error("want an integer");
    if (this.node.value < min) throw this.error(`want an integer >= ${min}`);
    return this.node.value;
  }

  /** A Prometheus duration (`15s`, `1m30s`), in ms; must be positive. */
  duration(): number {
    const s = this.string();
    let ms: number;
    try {
      ms = parseDuration(s);
    } catch (err) {
      throw this.error(`invalid duration ${JSON.stringify(s)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!(ms > 0)) throw this.error(`duration ${JSON.stringify(s)} must be positive`);
    return ms;
  }

  stringList(): string[] {
    return this.seq().map((n) => n.string());
  }

  /** The plain JS value (for handing a sub-tree to another parser, e.g. relabel rules). */
  toJS(): unknown {
    return this.node === null ? null : this.node.toJSON();
  }
}
