import type { Labels } from "@strata/core";

/**
 * Group ids of label sets without key strings: the labels a grouping keeps (`by (a, b)`, or all
 * but `without (…)` and `__name__`) are read in their canonical order, each (name, value) pair is
 * interned to a small integer, and the sequence of those integers walks a trie held in an
 * open-addressing table of integer pairs. Two label sets get the same id exactly when the labels
 * they keep are equal, as the old `name\0value\1…` key strings compared them (and without their
 * ambiguity when a value holds those bytes). A wide `sum by (instance, le)` over 24 000 series
 * built a concatenated key string per series, hashed it into a Map, and made one garbage string
 * per series; here a series costs a Set test per label and a Map lookup per kept label, whose
 * strings already carry their hash.
 *
 * Ids are dense from 0 in first-seen order.
 */
export class GroupKeyer {
  /** Interned (name, value) pairs: name → value → id (from 1). */
  private readonly pairIds = new Map<string, Map<string, number>>();
  private nextPair = 1;
  /** Trie edges (node, pair) → child node, open addressing; node 0 is the empty key. */
  private edgeNode = new Int32Array(1024);
  private edgePair = new Int32Array(1024);
  private edgeChild = new Int32Array(1024);
  private edges = 0;
  private nextNode = 1;
  /** Group id of each trie node, or -1. */
  private groupOfNode = new Int32Array(1024).fill(-1);
  private groups = 0;

  /**
   * `without`: keep every label but `grouping`'s; `dropName` (by default with `without`, as
   * aggregations do): leave `__name__` out too.
   */
  constructor(
    private readonly grouping: ReadonlySet<string>,
    private readonly without: boolean,
    private readonly dropName = without,
  ) {}

  /** Groups seen so far. */
  get size(): number {
    return this.groups;
  }

  /** The group id of `labels`. */
  id(labels: Labels): number {
    const grouping = this.grouping;
    const without = this.without;
    const dropName = this.dropName;
    let node = 0;
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i]!;
      const name = l.name;
      if (without ? grouping.has(name) || (dropName && name === "__name__") : !grouping.has(name)) continue;
      let values = this.pairIds.get(name);
      if (values === undefined) this.pairIds.set(name, (values = new Map()));
      let pair = values.get(l.value);
      if (pair === undefined) values.set(l.value, (pair = this.nextPair++));
      node = this.child(node, pair);
    }
    if (node >= this.groupOfNode.length) this.growNodes(node + 1);
    let g = this.groupOfNode[node]!;
    if (g < 0) this.groupOfNode[node] = g = this.groups++;
    return g;
  }

  /** The trie node after `node` by `pair`, added when new. */
  private child(node: number, pair: number): number {
    let mask = this.edgeChild.length - 1;
    let h = (Math.imul(node, 0x9e3779b1) ^ Math.imul(pair, 0x85ebca77)) & mask;
    for (;;) {
      const c = this.edgeChild[h]!;
      if (c === 0) break;
      if (this.edgeNode[h] === node && this.edgePair[h] === pair) return c;
      h = (h + 1) & mask;
    }
    if (2 * (this.edges + 1) > this.edgeChild.length) {
      this.growEdges();
      mask = this.edgeChild.length - 1;
      h = (Math.imul(node, 0x9e3779b1) ^ Math.imul(pair, 0x85ebca77)) & mask;
      while (this.edgeChild[h] !== 0) h = (h + 1) & mask;
    }
    const c = this.nextNode++;
    this.edgeNode[h] = node;
    this.edgePair[h] = pair;
    this.edgeChild[h] = c;
    this.edges++;
    return c;
  }

  private growEdges(): void {
    const oldNode = this.edgeNode;
    const oldPair = this.edgePair;
    const oldChild = this.edgeChild;
    const size = oldChild.length * 2;
    const mask = size - 1;
    this.edgeNode = new Int32Array(size);
    this.edgePair = new Int32Array(size);
    this.edgeChild = new Int32Array(size);
    for (let i = 0; i < oldChild.length; i++) {
      const c = oldChild[i]!;
      if (c === 0) continue;
      const node = oldNode[i]!;
      const pair = oldPair[i]!;
      let h = (Math.imul(node, 0x9e3779b1) ^ Math.imul(pair, 0x85ebca77)) & mask;
      while (this.edgeChild[h] !== 0) h = (h + 1) & mask;
      this.edgeNode[h] = node;
      this.edgePair[h] = pair;
      this.edgeChild[h] = c;
    }
  }

  private growNodes(min: number): void {
    const next = new Int32Array(Math.max(min, this.groupOfNode.length * 2)).fill(-1);
    next.set(this.groupOfNode);
    this.groupOfNode = next;
  }
}

/** Series → group of a grouping: the group of each series and each group's first series. */
export interface Partition {
  readonly groupOf: Int32Array;
  readonly groups: number;
  /** Index of each group's first series. */
  readonly first: Int32Array;
}

/** Groups of `labels` for `by (grouping)` or `without (grouping)`, numbered in first-seen order. */
export function partitionLabels(labels: readonly Labels[], grouping: ReadonlySet<string>, without: boolean): Partition {
  const keyer = new GroupKeyer(grouping, without);
  const groupOf = new Int32Array(labels.length);
  let first = new Int32Array(16);
  for (let i = 0; i < labels.length; i++) {
    const before = keyer.size;
    const g = keyer.id(labels[i]!);
    groupOf[i] = g;
    if (g === before) {
      if (g >= first.length) {
        const f = new Int32Array(first.length * 2);
        f.set(first);
        first = f;
      }
      first[g] = i;
    }
  }
  return { groupOf, groups: keyer.size, first: first.subarray(0, keyer.size) };
}

/**
 * The partitions of one query, by series list and grouping: the cost estimate counts a
 * selection's groups (engine.ts) and the fold then partitions the same series by the same
 * grouping (aggregate.ts SimpleAgg.partition); the second asks here and gets the first's.
 */
export class PartitionCache {
  private readonly byLabels = new Map<readonly Labels[], Map<string, Partition>>();

  get(labels: readonly Labels[], grouping: ReadonlySet<string>, without: boolean): Partition {
    let m = this.byLabels.get(labels);
    if (m === undefined) this.byLabels.set(labels, (m = new Map()));
    const key = `${without ? "without" : "by"}\u0000${[...grouping].sort().join("\u0000")}`;
    let p = m.get(key);
    if (p === undefined) m.set(key, (p = partitionLabels(labels, grouping, without)));
    return p;
  }
}
